package reporter

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/otpscope/otpscope/internal/ops"
	"github.com/otpscope/otpscope/internal/problem"
	"github.com/otpscope/otpscope/internal/store"
)

// DefaultAPIQueries is how many API requests that read ClickHouse are
// answered at once (--api-queries). Four is what the console's Overview
// sends together; each answer's queries already run side by side, and the
// embedded engine runs the owner's reads on one thread a core (at least two),
// so more at once would only wait in the engine.
const DefaultAPIQueries = 4

// LimitWait is how long a request past the bound waits for a place before
// it is answered 429: long enough for one of a dashboard's usual answers
// (tens to hundreds of milliseconds) to end, short of a client's timeout.
const LimitWait = 2 * time.Second

// limitRetryAfter is the Retry-After of a 429, in seconds.
const limitRetryAfter = 1

// ReadTimeout bounds an API read (GET) from taking its place to its answer:
// its queries are cancelled, the engine stops them (clickhouse-go sends the
// deadline as max_execution_time, 5 s past it), and it is answered 504.
// Without it a read held its place until its queries ended, however long a
// window took, unless its client left: four such from a script without a
// timeout kept every other client at 429. A little below the server's write
// timeout, past which the answer could not be sent anyway.
const ReadTimeout = ops.WriteTimeout - 5*time.Second

// errReadTimeout is the cause of a read's context past ReadTimeout.
var errReadTimeout = errors.New("the read took longer than the API allows")

// Limit bounds the API requests that read ClickHouse answered at once.
// Its requests' queries run on the store's pool for requests
// (store.ForRequest), apart from the sink's inserts, the readiness ping
// and the scheduled alerts, reports and rollups.
type Limit struct {
	places  chan struct{}
	wait    time.Duration
	timeout time.Duration // of a read: ReadTimeout
}

// NewLimit returns a Limit of n requests at once (at least one).
func NewLimit(n int) *Limit {
	return &Limit{places: make(chan struct{}, max(n, 1)), wait: LimitWait, timeout: ReadTimeout}
}

// Middleware answers a request when a place is free or frees within
// LimitWait, and otherwise 429 with Retry-After: a burst from one client
// waits its turn or is told to come back, rather than holding ClickHouse's
// connections until every query, its own and others', times out. A read
// that takes its place has ReadTimeout to answer.
func (l *Limit) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case l.places <- struct{}{}:
		default:
			t := time.NewTimer(l.wait)
			select {
			case l.places <- struct{}{}:
				t.Stop()
			case <-t.C:
				w.Header().Set("Retry-After", strconv.Itoa(limitRetryAfter))
				problem.Write(w, problem.Details{Status: http.StatusTooManyRequests, Title: "Too many analytics queries at once",
					Detail:   fmt.Sprintf("%d requests that read ClickHouse are answered at once (--api-queries) and this one found no place within %v: try again after Retry-After", cap(l.places), l.wait),
					Instance: r.URL.Path})
				return
			case <-r.Context().Done():
				t.Stop()
				return // the client left
			}
		}
		defer func() { <-l.places }()
		ctx := store.ForRequest(r.Context())
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			// Actions (a replay of dead letters) are not cut midway.
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeoutCause(ctx, l.timeout, errReadTimeout)
			defer cancel()
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}
