package reporter

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/ops"
	"github.com/otpscope/otpscope/internal/problem"
	"github.com/otpscope/otpscope/internal/sink/sinktest"
	"github.com/otpscope/otpscope/internal/store"
)

// A request past the limit waits for a place: it is answered when one
// frees within the wait, and 429 with Retry-After when none does.
func TestLimitWaitsThenRefuses(t *testing.T) {
	l := NewLimit(1)
	l.wait = 200 * time.Millisecond
	entered, leave := make(chan bool, 3), make(chan struct{})
	h := l.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- true
		<-leave
	}))
	serve := func() chan *httptest.ResponseRecorder {
		out := make(chan *httptest.ResponseRecorder, 1)
		go func() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/channels", nil))
			out <- rec
		}()
		return out
	}

	first := serve()
	<-entered
	refused := <-serve() // the place stays taken past the wait
	if refused.Code != http.StatusTooManyRequests || refused.Header().Get("Retry-After") != "1" || refused.Header().Get("Content-Type") != problem.ContentType {
		t.Fatalf("past the limit: %d, Retry-After %q, %q; want 429, 1, %s", refused.Code, refused.Header().Get("Retry-After"), refused.Header().Get("Content-Type"), problem.ContentType)
	}
	var p problem.Details
	if err := json.Unmarshal(refused.Body.Bytes(), &p); err != nil || p.Title != "Too many analytics queries at once" {
		t.Errorf("429 body %s (%v); want the title %q", refused.Body, err, "Too many analytics queries at once")
	}

	l.wait = time.Minute
	waiting := serve()
	leave <- struct{}{} // the first ends: the waiting one takes its place
	if rec := <-first; rec.Code != http.StatusOK {
		t.Errorf("first: %d; want 200", rec.Code)
	}
	<-entered
	leave <- struct{}{}
	if rec := <-waiting; rec.Code != http.StatusOK {
		t.Errorf("waiting while the first ran: %d; want 200", rec.Code)
	}
}

// TestLimitServesTheClientWithFewestPlacesFirst: a place that frees goes
// to the waiting request whose client holds the fewest, not to the earliest:
// a client that sent many waits behind its own, another's one goes next;
// one client alone is served in arrival order.
func TestLimitServesTheClientWithFewestPlacesFirst(t *testing.T) {
	l := NewLimit(2)
	l.wait = time.Minute
	order := make(chan string, 8)
	leave := map[string]chan struct{}{}
	for _, k := range []string{"script-1", "script-2", "script-3", "script-4", "operator"} {
		leave[k] = make(chan struct{})
	}
	h := l.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k := r.URL.Query().Get("k")
		order <- k
		<-leave[k]
	}))
	done := make(chan struct{}, 8)
	send := func(k, token string) {
		go func() {
			req := httptest.NewRequest(http.MethodGet, "/api/v1/channels?k="+k, nil)
			req.Header.Set("Authorization", "Bearer "+token)
			h.ServeHTTP(httptest.NewRecorder(), req)
			done <- struct{}{}
		}()
	}
	waiting := func(n int) { // until n requests wait
		t.Helper()
		brokertest.WaitFor(t, 5*time.Second, fmt.Sprintf("%d waiting", n), func() bool {
			l.mu.Lock()
			defer l.mu.Unlock()
			return len(l.waiting) == n
		})
	}
	// The script takes both places, and two more of its requests wait.
	send("script-1", "script-token")
	send("script-2", "script-token")
	first := []string{<-order, <-order}
	send("script-3", "script-token")
	waiting(1)
	send("script-4", "script-token")
	waiting(2)
	// The operator's request comes last, and goes first.
	send("operator", "operator-token")
	waiting(3)
	close(leave[first[0]])
	if got := <-order; got != "operator" {
		t.Fatalf("a place freed went to %s; want the operator's request (its client held none)", got)
	}
	// Among the script's own, arrival order.
	close(leave[first[1]])
	if got := <-order; got != "script-3" {
		t.Fatalf("next: %s; want script-3, the script's earliest waiting", got)
	}
	close(leave["operator"])
	if got := <-order; got != "script-4" {
		t.Fatalf("next: %s; want script-4", got)
	}
	close(leave["script-3"])
	close(leave["script-4"])
	for range 5 {
		<-done
	}
	if l.free != 2 || len(l.held) != 0 || len(l.waiting) != 0 {
		t.Errorf("after all: %d free, held %v, %d waiting; want 2, none, none", l.free, l.held, len(l.waiting))
	}
}

// A query that found no connection free is said as ClickHouse being busy,
// 503 with Retry-After, not as a failed query.
func TestFailSaysBusy(t *testing.T) {
	re := responder{logger: slog.New(slog.DiscardHandler), failure: "analytics query", title: "Analytics unavailable", detail: "the ClickHouse query failed"}
	rec := httptest.NewRecorder()
	re.fail(rec, httptest.NewRequest(http.MethodGet, "/api/v1/channels", nil), fmt.Errorf("channels: read: %w", store.ErrBusy))
	var p problem.Details
	_ = json.Unmarshal(rec.Body.Bytes(), &p)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "1" || p.Title != "ClickHouse busy" {
		t.Errorf("fail(ErrBusy): %d, Retry-After %q, title %q; want 503, 1, %q", rec.Code, rec.Header().Get("Retry-After"), p.Title, "ClickHouse busy")
	}
}

// TestLimitCutsASlowRead: a read whose query runs past the read timeout is
// answered 504 at the timeout, its place freed for the next request, and
// the engine stops its query (clickhouse-go sends the deadline as
// max_execution_time) rather than running it to its end. Without the
// timeout the read held its place for the query's 50 s, and only a client
// that left freed it.
func TestLimitCutsASlowRead(t *testing.T) {
	p := sinktest.Open(t)
	l := NewLimit(1)
	l.wait, l.timeout = time.Second, 2*time.Second
	const slow = "SELECT sleepEachRow(0.25) AS cut_read FROM numbers(200) SETTINGS max_block_size = 1"
	re := responder{logger: brokertest.Logger(t), failure: "analytics query", title: "Analytics unavailable", detail: "the ClickHouse query failed"}
	api := httptest.NewServer(l.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		query := "SELECT 1"
		if r.URL.Query().Has("slow") {
			query = slow
		}
		if err := p.DB.Conn().Exec(r.Context(), query); err != nil {
			re.fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusOK)
	})))
	t.Cleanup(api.Close)
	client := &http.Client{Timeout: 20 * time.Second}

	start := time.Now()
	resp, err := client.Get(api.URL + "/api/v1/fallback?slow")
	if err != nil {
		t.Fatalf("slow read: %v (not cut at the read timeout)", err)
	}
	var prob problem.Details
	_ = json.NewDecoder(resp.Body).Decode(&prob)
	resp.Body.Close()
	took := time.Since(start)
	if resp.StatusCode != http.StatusGatewayTimeout || prob.Title != "Analytics query too costly" {
		t.Errorf("slow read: %d %q after %v; want 504 %q", resp.StatusCode, prob.Title, took, "Analytics query too costly")
	}
	if took > 6*time.Second {
		t.Errorf("slow read answered after %v; want about the 2 s timeout", took)
	}

	// Its place is free: the next read is let in, not refused 429.
	resp, err = client.Get(api.URL + "/api/v1/fallback")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("the read after the cut one: %d; want 200", resp.StatusCode)
	}

	// And the engine gives its reader back long before the query's 50 s.
	running := fmt.Sprintf("SELECT count() FROM system.processes WHERE query = '%s'", slow)
	brokertest.WaitFor(t, 20*time.Second, "the engine to stop the cut query", func() bool { return p.Count(t, running) == 0 })
	d := time.Since(start)
	t.Logf("answered 504 after %v, the engine stopped the query after %v", took, d)
	if d > 15*time.Second {
		t.Errorf("the engine stopped the cut query after %v; want within the timeout and max_execution_time's 5 s more", d)
	}
}

// TestAbandonedWaitIsCounted499: a client that leaves while its request
// waits for a place gets nothing written, and the HTTP metrics count it
// 499 (client closed request), not the 200 net/http would have answered.
func TestAbandonedWaitIsCounted499(t *testing.T) {
	reg := ops.NewRegistry()
	r := ops.NewRouter()
	r.Use(ops.NewHTTPMetrics(reg).Middleware("admin"))
	l := NewLimit(1)
	l.wait = time.Minute
	if !l.acquire(t.Context(), "another") { // another request's place
		t.Fatal("no place free")
	}
	r.With(l.Middleware).Get("/api/v1/channels", func(w http.ResponseWriter, r *http.Request) {})
	api := httptest.NewServer(r)
	t.Cleanup(api.Close)

	ctx, leave := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer leave()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, api.URL+"/api/v1/channels", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("answered %s while the place was taken", resp.Status)
	}
	// The handler returns after the client's connection closed.
	brokertest.WaitFor(t, 5*time.Second, "the abandoned request counted", func() bool {
		n, _ := testutil.GatherAndCount(reg, "otpscope_http_requests_total")
		return n > 0
	})
	want := `
# HELP otpscope_http_requests_total HTTP requests answered, by listener, route pattern, method and status code.
# TYPE otpscope_http_requests_total counter
otpscope_http_requests_total{code="499",handler="/api/v1/channels",listener="admin",method="get"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "otpscope_http_requests_total"); err != nil {
		t.Error(err)
	}
}
