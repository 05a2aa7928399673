package poller

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/tyntec"
	"github.com/otpscope/otpscope/internal/tyntecsim"
	"github.com/otpscope/otpscope/internal/tyntecsim/simtest"
)

// TestBudgetNeverExceeded runs the poller on its schedule against a backlog
// far larger than the budget (every webhook dropped) and checks, with the
// simulator's own count, that no window of the rate period held more calls
// than the budget and that tyntec never answered 429.
func TestBudgetNeverExceeded(t *testing.T) {
	forEachWorld(t, func(t *testing.T, shared bool) {
		const limit, period = 10, time.Second
		ns := brokertest.NewServer(t)
		b := ns.Broker(t)
		sim, url := simtest.Start(t, tyntecsim.Config{
			SharedVersions: shared,
			Seed:           2, TimeScale: scale,
			Faults: tyntecsim.Faults{RateLimit: limit, RatePeriod: period},
		})
		sendSettled(t, sim, 200, "+49152")

		cfg := testConfig(sim, url)
		cfg.Tyntec.Limiter = nil // the poller builds its limiter from the budget
		cfg.Tyntec.RateLimit, cfg.Tyntec.RatePeriod, cfg.Tyntec.RateBurst = limit, period, 2
		cfg.Schedule = "@every 1s"
		cfg.Grace = time.Hour // keep the backlog for the whole test
		reg := prometheus.NewRegistry()
		p, err := New(t.Context(), cfg, b, brokertest.Logger(t), reg)
		if err != nil {
			t.Fatal(err)
		}
		stop := goRun(t, p.Run)
		brokertest.WaitFor(t, 20*time.Second, "the poller to make 3 windows' worth of calls", func() bool {
			return len(sim.Calls()) >= 3*limit
		})
		due := metricValue(t, p.metrics.due.WithLabelValues("delivery"))
		stop()

		calls := sim.Calls()
		if got := tyntecsim.MaxInWindow(calls, period); got > limit {
			t.Errorf("%d calls within %v; budget %d", got, period, limit)
		}
		for _, c := range calls {
			if c.Status == http.StatusTooManyRequests {
				t.Errorf("call %s %s answered 429", c.Method, c.Path)
			}
		}
		if due <= limit {
			t.Errorf("delivery backlog %v; want more than the budget, or the budget never bound", due)
		}
		if got := metricValue(t, p.metrics.leader); got != 0 {
			t.Errorf("leader gauge after stop = %v; want 0", got)
		}
		if got := metricValue(t, p.metrics.due); got != 0 {
			t.Errorf("delivery backlog after stop = %v; want 0 (the lease given up)", got)
		}
	})
}

// TestRateLimitedPauses: a 429 with Retry-After stops the cycle and pauses the
// poller; a cycle during the pause makes no call.
func TestRateLimitedPauses(t *testing.T) {
	forEachWorld(t, func(t *testing.T, shared bool) {
		ns := brokertest.NewServer(t)
		b := ns.Broker(t)
		sim, url := simtest.Start(t, tyntecsim.Config{
			SharedVersions: shared,
			Seed:           4, TimeScale: scale,
			Faults: tyntecsim.Faults{RateLimit: 3, RatePeriod: time.Minute, RetryAfter: 30 * time.Second},
		})
		sendSettled(t, sim, 10, "+49153")
		cfg := testConfig(sim, url)
		cfg.Tyntec.MaxRetries = -1 // let the poller, not the client, see the 429
		p := newPoller(t, b, cfg)

		st, err := p.ReconcileOnce(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		limited := countCalls(sim, func(c tyntecsim.Call) bool { return c.Status == http.StatusTooManyRequests })
		if !st.Paused || limited != 1 {
			t.Fatalf("cycle %+v with %d 429s; want paused after exactly one 429", st, limited)
		}
		if got := metricValue(t, p.metrics.rateLimited); got != 1 {
			t.Errorf("rate-limited counter = %v; want 1", got)
		}
		if wait := time.Until(p.pausedUntil()); wait < 20*time.Second {
			t.Errorf("paused for %v; want about the 30 s Retry-After", wait)
		}
		before := len(sim.Calls())
		st, err = p.ReconcileOnce(t.Context())
		if err != nil || !st.Paused {
			t.Errorf("cycle during the pause: %+v, %v; want paused", st, err)
		}
		if after := len(sim.Calls()); after != before {
			t.Errorf("%d calls during the pause; want none", after-before)
		}
	})
}

// sendSettled sends n OTPs to the numbers prefix+0000000 onwards, then waits
// for their webhooks and for their delivery to settle in simulated time.
func sendSettled(t *testing.T, sim *tyntecsim.Sim, n int, prefix string) {
	t.Helper()
	for i := range n {
		if _, err := sim.Send(tyntec.NewOTPRequest{To: fmt.Sprintf("%s%07d", prefix, i)}); err != nil {
			t.Fatal(err)
		}
	}
	simtest.WaitIdle(t, sim)
	waitSim(t, sim, sim.Now().Add(DefaultSettle))
}

// TestDiscoveryRetriedAfterAFailure: a discovery that tyntec refuses (a key
// revoked, then mended) is tried again at the next cycle, not a
// DiscoveryInterval later; one refused again waits a minute, not a cycle.
func TestDiscoveryRetriedAfterAFailure(t *testing.T) {
	ns := brokertest.NewServer(t)
	b := ns.Broker(t)
	sim, simURL := simtest.Start(t, tyntecsim.Config{Seed: 5, TimeScale: scale})
	sendSettled(t, sim, 5, "+49155") // no callback: only discovery finds them
	var refuse atomic.Bool
	var lists atomic.Int32
	refuse.Store(true)
	front := faultFront(t, simURL, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodGet && r.URL.Path == "/2fa/v4/otp" {
			lists.Add(1)
		}
		if refuse.Load() {
			problem(w, http.StatusUnauthorized)
			return true
		}
		return false
	})
	cfg := testConfig(sim, front)
	cfg.DiscoveryInterval = time.Hour
	p := newPoller(t, b, cfg)

	for i := range 3 {
		if st, err := p.ReconcileOnce(t.Context()); err != nil || st.Discovered != 0 {
			t.Fatalf("cycle %d with the key refused: %+v, %v; want nothing discovered", i+1, st, err)
		}
	}
	if n := lists.Load(); n != 2 {
		t.Errorf("three cycles with the key refused listed %d times; want 2 (the third within a minute of the second miss)", n)
	}
	p.mu.Lock()
	p.lastDiscovery = p.lastDiscovery.Add(-time.Minute) // a minute on
	p.mu.Unlock()
	refuse.Store(false) // the key mended
	st, err := p.ReconcileOnce(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.Discovered != 5 {
		t.Errorf("the cycle after the refused one discovered %d OTPs; want the 5 sent", st.Discovered)
	}
	if st, _ := p.ReconcileOnce(t.Context()); st.Discovered != 0 || countCalls(sim, func(c tyntecsim.Call) bool { return c.Method == http.MethodGet && c.Path == "/2fa/v4/otp" }) != 1 {
		t.Errorf("a cycle within the interval: %+v; want no second listing", st)
	}
}

// TestDiscoveryWait: after misses in a row, the next cycle, then a minute
// doubling to the interval; after a listing, the interval.
func TestDiscoveryWait(t *testing.T) {
	for misses, want := range []time.Duration{5 * time.Minute, 0, time.Minute, 2 * time.Minute, 4 * time.Minute, 5 * time.Minute, 5 * time.Minute} {
		if got := discoveryWait(misses, 5*time.Minute); got != want {
			t.Errorf("discoveryWait(%d misses) = %v; want %v", misses, got, want)
		}
	}
	if got := discoveryWait(1000, time.Hour); got != time.Hour {
		t.Errorf("discoveryWait(1000 misses, 1h) = %v; want 1h", got)
	}
}
