package poller

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/otpscope/otpscope/internal/backoff"
	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/polltest"
	"github.com/otpscope/otpscope/internal/tyntec"
	"github.com/otpscope/otpscope/internal/tyntecsim"
	"github.com/otpscope/otpscope/internal/tyntecsim/simtest"
)

// TestRegistrationDoesNotHoldTheLeader: tyntec answers the callbacks'
// calls 429 with a Retry-After of a day. The leader's reconciliation
// cycles run all the same (the registration waits beside them, each wait
// at most tyntec.MaxRetryAfter), and losing the lease ends the leader at
// once, registration included.
func TestRegistrationDoesNotHoldTheLeader(t *testing.T) {
	b := brokertest.NewServer(t).Broker(t)
	sim, simURL := simtest.Start(t, tyntecsim.Config{Seed: seed(3), TimeScale: scale})
	var refused atomic.Int64
	front := callbacksFront(t, simURL, func(w http.ResponseWriter) bool {
		refused.Add(1)
		w.Header().Set("Retry-After", "86400")
		http.Error(w, `{"status":429,"title":"Too Many Requests"}`, http.StatusTooManyRequests)
		return true
	})

	cfg := testConfig(sim, front)
	cfg.Tyntec.MaxBackoff = 0 // the client's defaults: Retry-After honoured
	cfg.Tyntec.MinBackoff = 0
	cfg.RegisterCallbackURL = "https://otpscope.example.com/webhooks/tyntec"
	p := newPoller(t, b, cfg)
	stop := goRun(t, p.runLeader)

	polltest.Until(t, 10*time.Second, "a reconciliation cycle while the registration waits", func() bool {
		return testutil.ToFloat64(p.metrics.cycles) >= 2
	})
	if refused.Load() == 0 {
		t.Fatal("the registration never called tyntec; the test proves nothing")
	}
	ended := make(chan struct{})
	go func() { stop(); close(ended) }()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the leader did not end within 5 s of losing the lease: the registration holds it")
	}
}

// TestRegistrationRetried: tyntec refuses the callback's registration (a
// 400, which the client does not retry) three times or more, then takes
// it. The leader tries again after each failure and registers it, once,
// without a restart or a new leader; while refused it says so
// (RegistrationFailing, which the status warns of), and once registered
// no longer.
func TestRegistrationRetried(t *testing.T) {
	b := brokertest.NewServer(t).Broker(t)
	sim, simURL := simtest.Start(t, tyntecsim.Config{Seed: seed(4), TimeScale: scale})
	var refused, calls atomic.Int64
	var hold atomic.Bool // refusing on past three, until the test saw it told
	hold.Store(true)
	front := callbacksFront(t, simURL, func(w http.ResponseWriter) bool {
		calls.Add(1)
		if refused.Load() >= 3 && !hold.Load() {
			return false
		}
		refused.Add(1)
		http.Error(w, `{"status":400,"title":"Bad Request"}`, http.StatusBadRequest)
		return true
	})

	cfg := testConfig(sim, front)
	cfg.RegisterCallbackURL = "https://otpscope.example.com/webhooks/tyntec"
	p := newPoller(t, b, cfg)
	p.registerRetry = backoff.Policy{First: 10 * time.Millisecond, Max: 40 * time.Millisecond}
	if f := p.RegistrationFailing(); f != nil {
		t.Fatalf("RegistrationFailing before any attempt = %+v; want nil", f)
	}
	goRun(t, p.runLeader)

	// While refused, the poller says so (the status warns of it).
	var failing *RegistrationFailure
	polltest.Until(t, 10*time.Second, "the refusals told", func() bool {
		failing = p.RegistrationFailing()
		return failing != nil && failing.Attempts >= 3
	})
	if !strings.Contains(failing.Err, "400") || failing.Since.IsZero() {
		t.Errorf("RegistrationFailing while refused = %+v; want since when, the 400", failing)
	}
	hold.Store(false)
	polltest.Until(t, 10*time.Second, "the callback registered after three refusals", func() bool {
		all, err := p.api.ListCallbacks(t.Context())
		return err == nil && countURL(all, cfg.RegisterCallbackURL) > 0
	})
	polltest.Until(t, 10*time.Second, "the refusal forgotten once registered", func() bool { return p.RegistrationFailing() == nil })
	if refused.Load() < 3 {
		t.Errorf("tyntec refused %d registration calls; want at least 3 before the one taken", refused.Load())
	}
	after := calls.Load()
	time.Sleep(100 * time.Millisecond) // more than the retries' spacing: none follows a success
	if n := calls.Load() - after; n != 0 {
		t.Errorf("%d callback calls followed the registration; want none", n)
	}
}

func countURL(cs []tyntec.CallbackConfig, u string) int {
	n := 0
	for _, c := range cs {
		if c.URL == u {
			n++
		}
	}
	return n
}

// callbacksFront is a proxy to the simulator at simURL whose callback
// configuration calls answer answers first (true: it answered them).
func callbacksFront(t *testing.T, simURL string, answer func(w http.ResponseWriter) bool) string {
	t.Helper()
	return faultFront(t, simURL, func(w http.ResponseWriter, r *http.Request) bool {
		return strings.Contains(r.URL.Path, "/configurations/callbacks") && answer(w)
	})
}
