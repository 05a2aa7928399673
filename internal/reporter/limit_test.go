package reporter_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/chdb"
	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/problem"
	"github.com/otpscope/otpscope/internal/reporter"
	"github.com/otpscope/otpscope/internal/sink/sinktest"
	"github.com/otpscope/otpscope/internal/store"
)

// TestAnalyticsBurstLeavesThePipelineItsConnections is the burst a token
// holder sent: 40 requests to /api/v1/channels at once, each slow (the
// engine's readers for requests busy with other requests' queries). The
// limit answers four at a time and the rest 429 with Retry-After; none
// fails; and while they wait the readiness ping answers and the sink's
// inserts are stored. Without the bound and the requests' own pool, 7 of 40
// got 503, /readyz failed and the sink's inserts with it.
func TestAnalyticsBurstLeavesThePipelineItsConnections(t *testing.T) {
	p := sinktest.Open(t)
	r := chi.NewRouter()
	reporter.NewAPI(p.DB, reporter.AlertRules{}, brokertest.Logger(t)).Mount(r.With(reporter.NewLimit(reporter.DefaultAPIQueries).Middleware))
	api := httptest.NewServer(r)
	t.Cleanup(api.Close)

	// Other requests' slow queries hold the requests' readers for 6 s: the
	// answers let in wait behind them, well past the limit's 2 s.
	slow, stopSlow := context.WithCancel(store.ForRequest(t.Context()))
	var slowQueries sync.WaitGroup
	defer slowQueries.Wait()
	defer stopSlow()
	const sleep = "SELECT sleep(3) AS slow_request"
	for range 2 * chdb.DefaultOwnerReaders() {
		slowQueries.Go(func() { _ = p.DB.Conn().Exec(slow, sleep) })
	}
	running := fmt.Sprintf("SELECT count() FROM system.processes WHERE query = '%s'", sleep)
	brokertest.WaitFor(t, 30*time.Second, "the slow queries running", func() bool {
		return p.Count(t, running) >= uint64(chdb.DefaultOwnerReaders())
	})

	const n = 40
	codes := make([]int, n)
	bodies := make([]problem.Details, n)
	retryAfter := make([]string, n)
	var burst sync.WaitGroup
	var done atomic.Bool
	client := &http.Client{Timeout: time.Minute}
	for i := range n {
		burst.Go(func() {
			resp, err := client.Get(fmt.Sprintf("%s/api/v1/channels?from=2000-01-01T00:00:00Z&profile=u%d", api.URL, i))
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
			defer resp.Body.Close()
			codes[i], retryAfter[i] = resp.StatusCode, resp.Header.Get("Retry-After")
			if resp.StatusCode != http.StatusOK {
				if ct := resp.Header.Get("Content-Type"); ct != problem.ContentType {
					t.Errorf("request %d: %d with Content-Type %q; want %s", i, resp.StatusCode, ct, problem.ContentType)
				}
				_ = json.NewDecoder(resp.Body).Decode(&bodies[i])
			}
		})
	}
	go func() { burst.Wait(); done.Store(true) }()

	// Meanwhile the process's own work: /readyz's ping and the sink's
	// inserts, each in its own bound.
	inserted := 0
	for !done.Load() {
		start := time.Now()
		if err := p.DB.Ready(t.Context()); err != nil {
			t.Errorf("Ready during the burst: %v", err)
		}
		ev := events.DeliveryStatus{Channel: events.ChannelSMS, Status: events.StatusDelivered, Source: events.SourceWebhook,
			OTPID:     fmt.Sprintf("00000000-0000-4000-8000-%012d", inserted),
			ProfileID: "adbe6521-f5bd-4295-9fd9-776debdf7dc2", Timestamp: time.Now().UTC(), ReceivedAt: time.Now().UTC()}
		b := store.Batch{Deliveries: []store.DeliveryRow{{DeliveryStatus: ev, EventID: events.DeliveryID(&ev), Seq: uint64(inserted + 1)}}}
		if err := p.DB.Insert(t.Context(), &b); err != nil {
			t.Errorf("insert during the burst: %v", err)
		} else {
			inserted++
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("a ping and an insert took %v during the burst", d)
		}
		time.Sleep(200 * time.Millisecond)
	}
	burst.Wait()

	count := map[int]int{}
	for i, code := range codes {
		count[code]++
		switch code {
		case http.StatusOK:
		case http.StatusTooManyRequests:
			if retryAfter[i] != "1" || bodies[i].Title != "Too many analytics queries at once" {
				t.Errorf("request %d: 429 with Retry-After %q, title %q; want 1, %q", i, retryAfter[i], bodies[i].Title, "Too many analytics queries at once")
			}
		default:
			t.Errorf("request %d: %d %+v; want 200 or 429", i, code, bodies[i])
		}
	}
	t.Logf("answers: %v; %d inserts during the burst", count, inserted)
	if count[http.StatusTooManyRequests] == 0 || count[http.StatusOK] == 0 {
		t.Errorf("answers %v; want some 200 and, for those past the limit, 429", count)
	}
	if inserted == 0 {
		t.Error("no insert during the burst")
	}
	if got := p.Count(t, "SELECT count() FROM delivery_events"); got != uint64(inserted) {
		t.Errorf("delivery_events has %d rows; want the %d inserted", got, inserted)
	}
}
