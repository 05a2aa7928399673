package app

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/otpscope/otpscope/internal/ops"
)

// A process short of memory is not killed: it slows until webhooks get 503
// and reads 504 (ops.MajorFaults). The status says so, from the rate of
// major page faults over the last faultWindow.
const (
	faultWindow = time.Minute
	faultEvery  = 10 * time.Second
	// shortOfMemoryFaults a second make the warning. Measured on
	// 2026-12-06 under cgroup limits, at 150 webhooks a second: under
	// 1 GiB, 0 to 2 a second once started; under 512 MiB, where
	// webhooks got 503 within two minutes, hundreds to thousands.
	shortOfMemoryFaults = 50
)

// faults keeps the process's major page faults of the last faultWindow.
type faults struct {
	read func() (uint64, error)

	mu      sync.Mutex
	samples []faultSample // oldest first
}

type faultSample struct {
	at time.Time
	n  uint64
}

// watch reads the count every faultEvery until ctx ends.
func (f *faults) watch(ctx context.Context) error {
	t := time.NewTicker(faultEvery)
	defer t.Stop()
	for {
		f.note(time.Now())
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// note reads the count at now and forgets the samples older than
// faultWindow but the newest of them, where the window starts.
func (f *faults) note(now time.Time) {
	n, err := f.read()
	if err != nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.samples = append(f.samples, faultSample{now, n})
	for len(f.samples) > 2 && now.Sub(f.samples[1].at) >= faultWindow {
		f.samples = f.samples[1:]
	}
}

// warning says that the process is short of memory, when its major page
// faults came at shortOfMemoryFaults a second or more over at least half
// of faultWindow.
func (f *faults) warning() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.samples) < 2 {
		return ""
	}
	first, last := f.samples[0], f.samples[len(f.samples)-1]
	span := last.at.Sub(first.at)
	if span < faultWindow/2 || last.n < first.n {
		return ""
	}
	rate := float64(last.n-first.n) / span.Seconds()
	if rate < shortOfMemoryFaults {
		return ""
	}
	return fmt.Sprintf("the process is short of memory: the kernel read %.0f of its pages a second back from disk over the last %v (major page faults), so everything slows; give it more memory, at least 1 GiB for the all-in-one (README, Before going live)", rate, span.Round(time.Second))
}

// newFaults reads this process's major page faults.
func newFaults() *faults { return &faults{read: ops.MajorFaults} }
