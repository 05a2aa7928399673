package poller

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/polltest"
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
	target, _ := url.Parse(simURL)
	var refused atomic.Int64
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/configurations/callbacks") {
			refused.Add(1)
			w.Header().Set("Retry-After", "86400")
			http.Error(w, `{"status":429,"title":"Too Many Requests"}`, http.StatusTooManyRequests)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)

	cfg := testConfig(sim, front.URL)
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
