package reporter

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/problem"
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
