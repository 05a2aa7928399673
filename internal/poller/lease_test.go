package poller

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/tyntec"
)

// TestLeaseLostForgetsTheBacklog: a leader that loses the lease to another
// replica without a restart (a NATS blip moves it) stops exporting its
// last cycle's backlog. Kept, its stale oldest fired OtpscopePollerBehind
// and its stale tracked armed OtpscopeNoWebhooks until a restart, whatever
// the new leader read.
func TestLeaseLostForgetsTheBacklog(t *testing.T) {
	ns := brokertest.NewServer(t)
	b := ns.Broker(t)
	// tyntec fails every call, so each cycle's discovery fails before any
	// poll and the backlog stays as the records below make it.
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, `{"status":503,"title":"Service Unavailable"}`)
	}))
	t.Cleanup(down.Close)
	cfg := Config{
		Tyntec: tyntec.Config{
			BaseURL: down.URL, APIKey: "key", MaxRetries: -1,
			Limiter: rate.NewLimiter(1000, 100),
		},
		Schedule:          "@every 1s",
		DiscoveryInterval: time.Minute,
		Replica:           "a",
		LeaderTTL:         3 * time.Second,
	}
	p, err := New(t.Context(), cfg, b, brokertest.Logger(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	const n = 3
	sent := time.Now().Add(-20 * time.Minute)
	for i := range n {
		id := fmt.Sprintf("otp-%d", i)
		if _, err := p.store.update(t.Context(), id, func(r *Record, _ bool) error {
			*r = Record{OTPID: id, API: "v1", FirstSeen: sent, LastFact: sent, Expires: time.Now().Add(time.Hour)}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, _, counted := p.Backlog(); counted {
		t.Fatal("Backlog() counted before any cycle ran; want its zeros said to be no count")
	}
	goRun(t, p.Run)

	m := p.metrics
	brokertest.WaitFor(t, 20*time.Second, "the leader's cycle to read the backlog", func() bool {
		return metricValue(t, m.leader) == 1 && metricValue(t, m.tracked) == n && metricValue(t, m.due) == n
	})
	if tracked, _, _, counted := p.Backlog(); tracked != n || !counted {
		t.Errorf("Backlog() = %d tracked, counted %v while leading; want %d, counted", tracked, counted, n)
	}
	if oldest := metricValue(t, m.oldest); oldest < 19*60 {
		t.Fatalf("oldest unreconciled %v s while leading; want about 20 min", oldest)
	}

	// Replica b takes the lease: the key purged under a (whose next refresh
	// fails) and created by b, which keeps it.
	kv, err := brokertest.JetStream(t, b).KeyValue(t.Context(), BucketLeader)
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Purge(t.Context(), leaderKey); err != nil {
		t.Fatal(err)
	}
	rev, err := kv.Create(t.Context(), leaderKey, []byte("b"))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-t.Context().Done():
				return
			case <-tick.C:
			}
			if r, err := kv.Update(t.Context(), leaderKey, []byte("b"), rev); err == nil {
				rev = r
			}
		}
	}()
	brokertest.WaitFor(t, 20*time.Second, "a to lose the lease", func() bool { return metricValue(t, m.leader) == 0 })
	for _, g := range []struct {
		name string
		c    prometheus.Collector
	}{{"otpscope_poller_tracked_otps", m.tracked}, {"otpscope_poller_oldest_unreconciled_seconds", m.oldest}, {"otpscope_poller_due_otps", m.due}} {
		if v := metricValue(t, g.c); v != 0 {
			t.Errorf("%s = %v after the lease was lost; want 0", g.name, v)
		}
	}
	if tracked, due, oldest, counted := p.Backlog(); tracked != 0 || due != 0 || oldest != 0 || counted {
		t.Errorf("Backlog() = %d, %d, %v, counted %v after the lease was lost; want zeros, no count", tracked, due, oldest, counted)
	}
}
