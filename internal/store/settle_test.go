package store_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/chdb/chdbtest"
	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/store"
)

// openSingle opens a database of the test engine as the reporter opens a
// single server: with Open, no cluster.
func openSingle(t *testing.T) *store.DB {
	t.Helper()
	srv := chdbtest.Serve(t)
	db, err := store.Open(t.Context(), store.Config{DSN: srv.DSN + "/" + srv.Database}, brokertest.Logger(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// slowInsert starts an insert of one row into the database that runs d
// (whole seconds, at most 3: the engine's limit for sleep) and returns once
// the server lists it; done receives when it ends.
func slowInsert(t *testing.T, db *store.DB, d time.Duration) (done <-chan struct{}) {
	t.Helper()
	if err := db.Conn().Exec(t.Context(), "CREATE TABLE IF NOT EXISTS slow_insert (n UInt64) ENGINE = Memory"); err != nil {
		t.Fatal(err)
	}
	ended := make(chan struct{}, 1)
	go func() {
		q := fmt.Sprintf("INSERT INTO slow_insert SELECT number FROM numbers(1) WHERE sleep(%d) = 0", int(d.Seconds()))
		if err := db.Conn().Exec(t.Context(), q); err != nil {
			t.Errorf("slow insert: %v", err)
		}
		ended <- struct{}{}
	}()
	for deadline := time.Now().Add(5 * time.Second); ; {
		if count(t, db, "SELECT count() FROM system.processes WHERE query_kind = 'Insert' AND current_database = currentDatabase()") > 0 {
			return ended
		}
		if time.Now().After(deadline) {
			t.Fatal("the slow insert never showed in system.processes")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// On a single server a rollup run takes its version only once the inserts
// that started before it have ended, so that every dirty mark older than
// the version is visible to it; one that outlasts the wait fails the run.
func TestRollupRunWaitsForEarlierInserts(t *testing.T) {
	db := openSingle(t)
	ended := slowInsert(t, db, 2*time.Second)
	run, err := db.RefreshRollups(t.Context())
	if err != nil {
		t.Fatalf("RefreshRollups: %v", err)
	}
	if run.Waited <= 0 {
		t.Errorf("run.Waited = %v beside a running insert; want the wait counted", run.Waited)
	}
	// The insert's row is visible once it has ended (a Memory table).
	if n := count(t, db, "SELECT count() FROM slow_insert"); n != 1 {
		t.Error("the run returned while the insert that started before it was still running")
	}
	<-ended

	defer store.SetSettleWait(300 * time.Millisecond)()
	ended = slowInsert(t, db, 2*time.Second)
	_, err = db.RefreshRollups(t.Context())
	if err == nil || !strings.Contains(err.Error(), "still running") {
		t.Errorf("RefreshRollups beside an insert longer than the wait = %v; want the run refused", err)
	}
	<-ended
	if _, err := db.RefreshRollups(t.Context()); err != nil {
		t.Errorf("RefreshRollups once the insert ended: %v", err)
	}
}

// Because the run waits, a mark older than its version by more than a
// second is known to have been seen by it: the next run finds nothing
// dirty. With the cluster's five minutes of slack it would check again
// every hour the insert marked.
func TestSingleServerRollupsTrustMarksAfterASecond(t *testing.T) {
	db := openSingle(t)
	var b store.Batch
	for i := range 20 {
		b.Deliveries = append(b.Deliveries, delivery(i, events.StatusDelivered))
	}
	if err := db.Insert(t.Context(), &b); err != nil {
		t.Fatalf("Insert: %v", err)
	}
	time.Sleep(1100 * time.Millisecond)
	first, err := db.RefreshRollups(t.Context())
	if err != nil {
		t.Fatalf("RefreshRollups: %v", err)
	}
	if first.Computed == 0 {
		t.Fatalf("first run = %+v; want the hours the insert marked computed", first)
	}
	second, err := db.RefreshRollups(t.Context())
	if err != nil {
		t.Fatalf("RefreshRollups: %v", err)
	}
	if len(second.Hours) != 0 {
		t.Errorf("second run: %d hours computed, %d patched, %d checked; want none: no mark is newer than the first run's version less a second", second.Computed, second.Patched, second.Checked)
	}
}
