package store

import (
	"context"
	"errors"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// ownConns is the connections of the process's own pool: the sink's
// inserts (one statement at a time), the readiness ping, the rollup job,
// alerts, reports and backups fit in clickhouse-go's default with room.
const ownConns = 10

// RequestConns is the connections of the API requests' pool (ForRequest).
// The requests are bounded by the API (reporter.Limit), not by this: an
// answer sends several queries at once (together), and past the engine's
// readers they wait in the engine rather than for a connection. It is a
// backstop that a query meets only when ClickHouse stalls (ErrBusy).
const RequestConns = 64

// requestsIdle is how many of the requests' connections are kept open
// between bursts: a new one costs a hello, which on the embedded engine
// waits for a request's reader like any of their queries.
const requestsIdle = 16

// requestsWait bounds a request's wait for a connection, its dial and
// hello included (clickhouse-go's DialTimeout): longer than the process's
// own 5 s, since an admitted request's new connection waits on the
// embedded engine behind the other requests' queries, as its queries
// would; short of the API's 60 s write timeout. A variable for tests.
var requestsWait = 30 * time.Second

// ErrBusy is the error of a query that found no connection to ClickHouse
// free in its pool in time (5 s on the process's own, requestsWait on the
// requests'): ClickHouse is slow or the pool's every connection in use.
// A new connection's hello cut by the same wait is ErrBusy too: net/http
// returns the deadline's cause, clickhouse-go's ErrAcquireConnTimeout,
// wrapped in "failed to query server hello". Check with errors.Is.
var ErrBusy = clickhouse.ErrAcquireConnTimeout

type requestKey struct{}

// ForRequest returns a context under which the store's queries run on the
// pool kept for API requests: however many requests read at once, they
// take no connection from the sink's inserts, the readiness ping and the
// scheduled jobs, which run on the process's own pool.
func ForRequest(ctx context.Context) context.Context {
	return context.WithValue(ctx, requestKey{}, true)
}

func forRequest(ctx context.Context) bool {
	v, _ := ctx.Value(requestKey{}).(bool)
	return v
}

// pools is the store's connection: two clickhouse-go pools to the same
// ClickHouse, a query taking its connection from the requests' pool under
// ForRequest and from the process's own otherwise. Methods without a
// context (Stats, ServerVersion), and the deprecated AsyncInsert the store
// never calls, answer for the process's own.
type pools struct {
	driver.Conn // the process's own
	requests    driver.Conn
}

func (p *pools) pick(ctx context.Context) driver.Conn {
	if forRequest(ctx) {
		return p.requests
	}
	return p.Conn
}

func (p *pools) Select(ctx context.Context, dest any, query string, args ...any) error {
	return p.pick(ctx).Select(ctx, dest, query, args...)
}

func (p *pools) Query(ctx context.Context, query string, args ...any) (driver.Rows, error) {
	return p.pick(ctx).Query(ctx, query, args...)
}

func (p *pools) QueryRow(ctx context.Context, query string, args ...any) driver.Row {
	return p.pick(ctx).QueryRow(ctx, query, args...)
}

func (p *pools) PrepareBatch(ctx context.Context, query string, opts ...driver.PrepareBatchOption) (driver.Batch, error) {
	return p.pick(ctx).PrepareBatch(ctx, query, opts...)
}

func (p *pools) Exec(ctx context.Context, query string, args ...any) error {
	return p.pick(ctx).Exec(ctx, query, args...)
}

func (p *pools) Ping(ctx context.Context) error { return p.pick(ctx).Ping(ctx) }

func (p *pools) Close() error { return errors.Join(p.Conn.Close(), p.requests.Close()) }
