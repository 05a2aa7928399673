package store_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/chdb/chdbtest"
	"github.com/otpscope/otpscope/internal/grafanatest"
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
	insertDelivered(t, db, 0, 20)
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

// The Grafana dashboards cannot tell a single server from a cluster: they
// read a rolled-up hour from the rollups while a run computed or checked it
// in the last five minutes, or when its last mark came more than five
// minutes before that run. A single server's run knows an hour exact a
// second after its last mark, so it records checks of such hours until one
// lands five minutes after the mark; else, once five minutes passed, the
// dashboards would compute nearly every hour live from its facts for good.
func TestSingleServerRunsVouchForTheDashboards(t *testing.T) {
	db := openSingle(t)
	insertDelivered(t, db, 0, 20)
	var marked int64
	if err := db.Conn().QueryRow(t.Context(), "SELECT toInt64(toUnixTimestamp64Milli(max(inserted_at))) FROM rollup_dirty").Scan(&marked); err != nil {
		t.Fatal(err)
	}
	mark := time.UnixMilli(marked)
	time.Sleep(1100 * time.Millisecond)
	first, err := db.RefreshRollups(t.Context())
	if err != nil || first.Computed == 0 {
		t.Fatalf("first run = %+v, %v; want the hours the insert marked computed", first, err)
	}
	hours := uint64(first.Computed)
	from, to := first.Hours[0], first.Hours[len(first.Hours)-1].Add(time.Hour)

	// The dashboards' own rule: the hours of [from, to) a panel reads from
	// the rollups at now.
	boards, err := grafanatest.Load("../../dashboards")
	if err != nil {
		t.Fatal(err)
	}
	var with string
	for _, p := range boards["channel-success.json"].Panels {
		if p.Title == "Attempts" {
			sql := p.Targets[0].RawSQL
			i := strings.Index(sql, "AS live_from")
			if i < 0 {
				t.Fatalf("the Attempts panel has no live_from:\n%s", sql)
			}
			with = sql[:i+len("AS live_from")] + "\nSELECT count() FROM rolled"
		}
	}
	rolled := func(now time.Time) uint64 {
		t.Helper()
		sql, err := grafanatest.Expand(with, from, to, time.Minute, map[string]string{"profile": grafanatest.All, "channel": grafanatest.All})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(sql, "now64(3)") {
			t.Fatalf("the rule reads no clock:\n%s", sql)
		}
		return count(t, db, strings.ReplaceAll(sql, "now64(3)", fmt.Sprintf("fromUnixTimestamp64Milli(%d)", now.UnixMilli())))
	}
	if n := rolled(mark.Add(time.Minute)); n != hours {
		t.Errorf("a minute after the marks: the dashboards read %d of the %d hours from the rollups; want all (computed in the last five minutes)", n, hours)
	}
	if n := rolled(mark.Add(10 * time.Minute)); n != 0 {
		t.Errorf("ten minutes after the marks, no run since: %d hours read from the rollups; want none (the job may have stopped)", n)
	}

	// Runs a minute apart, as scheduled: each checks the hours again until
	// a check lands five minutes after their last mark; from then on the
	// dashboards read them from the rollups whenever they read.
	for m := 2; m <= 7; m++ {
		at := mark.Add(time.Duration(m) * time.Minute)
		store.SetRollupClock(db, func() time.Time { return at })
		run, err := db.RefreshRollups(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		want := hours
		if m == 7 {
			want = 0 // the check at six minutes was the last one needed
		}
		if uint64(run.Vouched) != want || len(run.Hours) != 0 {
			t.Errorf("run at %d min: vouched for %d hours, brought %d up to date; want %d and none", m, run.Vouched, len(run.Hours), want)
		}
		if n := rolled(at.Add(4 * time.Minute)); n != hours {
			t.Errorf("four minutes after the run at %d min: %d of %d hours read from the rollups", m, n, hours)
		}
	}
	store.SetRollupClock(db, nil)
	if n := rolled(mark.Add(30 * 24 * time.Hour)); n != hours {
		t.Errorf("a month later with no run since: %d of %d hours read from the rollups; want all (no mark came near their last check)", n, hours)
	}
}
