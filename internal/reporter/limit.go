package reporter

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
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
//
// A place that frees goes to the waiting request whose client holds the
// fewest places, the earliest among those: a script or dashboard that
// sends many at once waits behind its own, and an operator's request
// after them takes the next place, where arrival order made it wait for
// all of them (or 429). A client is its bearer token, or its address
// without one. One client alone is served in arrival order, as before.
type Limit struct {
	size    int // places
	mu      sync.Mutex
	free    int
	held    map[string]int // places taken, by client
	waiting []*waiter      // in arrival order
	wait    time.Duration
	timeout time.Duration // of a read: ReadTimeout
}

// waiter is a request waiting for a place; ready is closed when it is
// given one.
type waiter struct {
	client string
	ready  chan struct{}
}

// NewLimit returns a Limit of n requests at once (at least one).
func NewLimit(n int) *Limit {
	n = max(n, 1)
	return &Limit{size: n, free: n, held: map[string]int{}, wait: LimitWait, timeout: ReadTimeout}
}

// clientOf names whose request r is, for the places' fairness: its bearer
// token (held in memory only, never logged), else its remote address.
func clientOf(r *http.Request) string {
	if t := ops.Presented(r, ""); t != "" {
		return "token " + t
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "address " + host
}

// acquire takes a place for client, waiting up to l.wait: false when none
// was given in time or ctx ended first.
func (l *Limit) acquire(ctx context.Context, client string) bool {
	l.mu.Lock()
	if l.free > 0 {
		l.free--
		l.held[client]++
		l.mu.Unlock()
		return true
	}
	w := &waiter{client: client, ready: make(chan struct{})}
	l.waiting = append(l.waiting, w)
	l.mu.Unlock()
	t := time.NewTimer(l.wait)
	defer t.Stop()
	select {
	case <-w.ready:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if i := slices.Index(l.waiting, w); i >= 0 {
		l.waiting = slices.Delete(l.waiting, i, i+1)
		return false
	}
	l.releaseLocked(client) // given a place as the wait ended: hand it on
	return false
}

// release gives client's place back.
func (l *Limit) release(client string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.releaseLocked(client)
}

// releaseLocked hands client's place to the waiter whose client holds the
// fewest places, the earliest among those, or frees it.
func (l *Limit) releaseLocked(client string) {
	if l.held[client]--; l.held[client] <= 0 {
		delete(l.held, client)
	}
	if len(l.waiting) == 0 {
		l.free++
		return
	}
	next := 0
	for i, w := range l.waiting {
		if l.held[w.client] < l.held[l.waiting[next].client] {
			next = i
		}
	}
	w := l.waiting[next]
	l.waiting = slices.Delete(l.waiting, next, next+1)
	l.held[w.client]++
	close(w.ready)
}

// Middleware answers a request when a place is free or is given to it
// within LimitWait, and otherwise 429 with Retry-After: a burst from one
// client waits its turn or is told to come back, rather than holding
// ClickHouse's connections until every query, its own and others', times
// out. A read that takes its place has ReadTimeout to answer.
func (l *Limit) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		client := clientOf(r)
		if !l.acquire(r.Context(), client) {
			if r.Context().Err() != nil {
				return // the client left
			}
			w.Header().Set("Retry-After", strconv.Itoa(limitRetryAfter))
			problem.Write(w, problem.Details{Status: http.StatusTooManyRequests, Title: "Too many analytics queries at once",
				Detail:   fmt.Sprintf("%d requests that read ClickHouse are answered at once (--api-queries) and this one found no place within %v: try again after Retry-After", l.size, l.wait),
				Instance: r.URL.Path})
			return
		}
		defer l.release(client)
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
