package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/chdb"
	"github.com/otpscope/otpscope/internal/chdb/chdbtest"
	"github.com/otpscope/otpscope/internal/store"
)

// TestRequestsLeaveTheProcessItsConnections: API requests' queries
// (store.ForRequest) taking every connection of their pool and every
// engine reader they may, as a burst of slow requests does, the sink's
// inserts, the readiness ping and the process's own reads still run. With
// one pool for all, the ping and the insert waited for a connection until
// they failed ("clickhouse: acquire conn timeout"), and /readyz with them;
// with the engine's readers all open to requests, the ping waited behind
// their queries.
func TestRequestsLeaveTheProcessItsConnections(t *testing.T) {
	srv := chdbtest.Serve(t)
	db, err := store.Open(t.Context(), store.Config{DSN: srv.DSN + "/" + srv.Database}, brokertest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })

	// Each holds its connection while it runs or waits for a reader: the
	// engine runs a request's query a core, so together for over a minute.
	const burst = "SELECT sleep(3) AS burst"
	hold, release := context.WithCancel(store.ForRequest(t.Context()))
	var held sync.WaitGroup
	defer held.Wait()
	defer release()
	for range store.RequestConns {
		held.Go(func() { _ = db.Conn().Exec(hold, burst) })
	}
	running := fmt.Sprintf("SELECT count() FROM system.processes WHERE query = '%s'", burst)
	brokertest.WaitFor(t, 30*time.Second, "the burst's queries running", func() bool {
		return count(t, db, running) >= uint64(chdb.DefaultOwnerReaders())
	})

	start := time.Now()
	for i := range 3 {
		if err := db.Ready(t.Context()); err != nil {
			t.Errorf("Ready %d during the burst: %v", i, err)
		}
	}
	insertDelivered(t, db, 0, 10)
	if n := count(t, db, "SELECT count() FROM delivery_events"); n != 10 {
		t.Errorf("delivery_events has %d rows; want 10", n)
	}
	if n := count(t, db, running); n == 0 {
		t.Error("the burst ended before the process's own work: nothing was shown")
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("the process's own work took %v during the burst", d)
	}
}

// TestSlowHelloIsBusy: a request's new connection whose hello waits behind
// the other requests' queries past the pool's wait is ErrBusy, as a wait
// for a free connection is (the API answers "ClickHouse busy" with
// Retry-After), not a failed query: clickhouse-go cuts the hello with
// ErrAcquireConnTimeout as the deadline's cause, which net/http returns.
func TestSlowHelloIsBusy(t *testing.T) {
	srv := chdbtest.Serve(t)
	// A second's wait for a connection and its hello, the requests' and
	// the process's own (dial_timeout; else the process's 5 s): shorter
	// than the burst's queries hold the readers (3 s), so the hello cannot
	// find one free in time, whichever order the waiting statements take
	// them in. With 5 s the hello once took a reader freed at 3 s and the
	// query waited out the burst, answering after 12 s.
	defer store.SetRequestsWait(time.Second)()
	db, err := store.Open(t.Context(), store.Config{DSN: srv.DSN + "/" + srv.Database + "?dial_timeout=1s"}, brokertest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })

	// The engine's readers for requests busy for 12 s, and more waiting.
	const burst = "SELECT sleep(3) AS hello_waits"
	hold, release := context.WithCancel(store.ForRequest(t.Context()))
	var held sync.WaitGroup
	defer held.Wait()
	defer release()
	for range 4 * chdb.DefaultOwnerReaders() {
		held.Go(func() { _ = db.Conn().Exec(hold, burst) })
	}
	running := fmt.Sprintf("SELECT count() FROM system.processes WHERE query = '%s'", burst)
	brokertest.WaitFor(t, 30*time.Second, "the burst's queries running", func() bool {
		return count(t, db, running) >= uint64(chdb.DefaultOwnerReaders())
	})

	start := time.Now()
	err = db.Conn().Exec(store.ForRequest(t.Context()), "SELECT 1")
	t.Logf("after %v: %v", time.Since(start), err)
	if !errors.Is(err, store.ErrBusy) {
		t.Errorf("a request's query whose new connection waited past the pool's wait: %v; want ErrBusy", err)
	}
}
