package store_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/chdb/chdbtest"
	"github.com/otpscope/otpscope/internal/store"
)

// TestRecoverParts: a part broken as a full disk leaves it is found by
// CheckParts, set aside by RecoverParts (the engine restarts), and the
// table reads again; the rollups computed since are marked dirty. With no
// engine to restart, RecoverParts says what an operator has to do.
func TestRecoverParts(t *testing.T) {
	srv := chdbtest.Serve(t)
	db, err := store.Connect(t.Context(), srv.DSN+"/"+srv.Database, brokertest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	insert := func(from, n int) { t.Helper(); insertDelivered(t, db, from, from+n) }
	insert(0, 40)
	// Parts are dated by the second: since is the next one.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
	since := time.Now()
	insert(40, 10)
	if _, err := db.RefreshRollups(t.Context()); err != nil {
		t.Fatal(err)
	}
	if broken, err := db.CheckParts(t.Context(), since); err != nil || len(broken) != 0 {
		t.Fatalf("CheckParts before anything broke = %v, %v; want none", broken, err)
	}

	part := chdbtest.BreakPart(t, db.Conn(), srv.Database+".delivery_events", "")
	readIDs := "SELECT uniqExact(otp_id) FROM delivery_events"
	if err := db.Conn().QueryRow(t.Context(), readIDs).Scan(new(uint64)); err == nil {
		t.Fatal("the broken part reads; the test breaks nothing")
	}
	broken, err := db.CheckParts(t.Context(), since)
	if err != nil || len(broken) != 1 || broken[0].Table != "delivery_events" || broken[0].Part != part {
		t.Fatalf("CheckParts = %v, %v; want delivery_events part %s", broken, err, part)
	}

	if _, err := db.RecoverParts(t.Context(), since); err == nil || !strings.Contains(err.Error(), "DETACH PART") {
		t.Errorf("RecoverParts without an engine to restart: %v; want the operator told to detach the part", err)
	}

	db, err = store.ConnectEngine(t.Context(), srv.DSN+"/"+srv.Database, srv.Engine, brokertest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	recovering := time.Now()
	recovered, err := db.RecoverParts(t.Context(), since)
	if err != nil || len(recovered) != 1 {
		t.Fatalf("RecoverParts = %v, %v; want the one broken part", recovered, err)
	}
	if n := count(t, db, readIDs); n != 40 {
		t.Errorf("after the recovery delivery_events holds %d OTPs; want the 40 of the intact part (the broken part's 10 come back from the stream)", n)
	}
	if n := count(t, db, fmt.Sprintf("SELECT count() FROM rollup_dirty WHERE inserted_at >= fromUnixTimestamp64Milli(%d) AND hour IN (SELECT hour FROM rolled_hours)", recovering.UnixMilli())); n == 0 {
		t.Error("the hours rolled up since the disk filled are not marked dirty")
	}
	if broken, err := db.CheckParts(t.Context(), since); err != nil || len(broken) != 0 {
		t.Errorf("CheckParts after the recovery = %v, %v; want none", broken, err)
	}
}
