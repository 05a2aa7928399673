package webtest

import (
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

// Load is steady webhook traffic: senders each post one webhook at a time,
// every one with a new otpId, and remember which ids were answered 200 — the
// ones that must end up stored, exactly once.
type Load struct {
	mu    sync.Mutex
	acked map[string]bool
	codes map[string]int // by status code, "error" when no answer came
	stop  chan struct{}
	wg    sync.WaitGroup
}

// StartLoad runs senders goroutines calling post with a fresh id until Stop
// (or the end of the test). post returns the answer's status code.
func StartLoad(t testing.TB, senders int, post func(id string) (int, error)) *Load {
	l := &Load{acked: map[string]bool{}, codes: map[string]int{}, stop: make(chan struct{})}
	for range senders {
		l.wg.Go(func() {
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				id := uuid.NewString()
				code, err := post(id)
				l.mu.Lock()
				if err != nil {
					l.codes["error"]++
				} else {
					l.codes[fmt.Sprint(code)]++
					if code == 200 {
						l.acked[id] = true
					}
				}
				l.mu.Unlock()
				// Pacing: a steady load rather than a flood of the shared
				// cores, and slower retries while the service is down, as
				// tyntec retries.
				pause := 2 * time.Millisecond
				if err != nil || code != 200 {
					pause = 50 * time.Millisecond
				}
				time.Sleep(pause)
			}
		})
	}
	t.Cleanup(l.Stop)
	return l
}

// Stop ends the load and waits for the senders.
func (l *Load) Stop() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// Acked is how many webhooks were answered 200 so far.
func (l *Load) Acked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// AckedIDs are the otpIds answered 200 so far.
func (l *Load) AckedIDs() map[string]bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.acked)
}

// Codes counts the answers by status code ("error": no answer).
func (l *Load) Codes() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.codes)
}
