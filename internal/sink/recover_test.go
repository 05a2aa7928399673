package sink_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/chdb/chdbtest"
	"github.com/otpscope/otpscope/internal/metricstest"
	"github.com/otpscope/otpscope/internal/polltest"
	"github.com/otpscope/otpscope/internal/store"
)

// diskFull fails inserts while down, as the engine does once its disk is
// full; the rest is the store's own (RecoverParts, InsertAgain).
type diskFull struct {
	*store.DB
	down     atomic.Bool
	failures atomic.Int32
}

func (d *diskFull) Insert(ctx context.Context, b *store.Batch) error {
	if d.down.Load() {
		d.failures.Add(1)
		return &clickhouse.Exception{Code: 243, CodeName: "NOT_ENOUGH_SPACE", Message: "Cannot reserve 1.00 MiB, not enough space"}
	}
	return d.DB.Insert(ctx, b)
}

// TestBrokenPartsReplayed: the disk fills while a part is written — the
// engine commits it broken, as ClickHouse 26.7 does — and the next inserts
// fail. The sink finds the broken part once they succeed again, or while
// they still fail (after an AckWait), the engine sets it aside, and the
// replay inserts its acknowledged events again: every event reads back,
// once.
func TestBrokenPartsReplayed(t *testing.T) {
	for _, tc := range []struct {
		name string
		// failing says when the inserts may succeed again.
		failing func(t *testing.T, db *store.DB, disk *diskFull) bool
	}{
		{"found when inserts recover", func(t *testing.T, db *store.DB, disk *diskFull) bool { return disk.failures.Load() < 2 }},
		{"found while inserts fail", func(t *testing.T, db *store.DB, disk *diskFull) bool {
			parts, err := db.PartsToReplay(t.Context())
			return err != nil || len(parts) == 0
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			db, err := store.ConnectEngine(t.Context(), f.CH.DSN+"/"+f.CH.Database, f.CH.Engine, brokertest.Logger(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			disk := &diskFull{DB: db}
			_, reg, logs := runConsumer(t, f, disk)

			f.publish(t, deliveries(0, 50)...)
			f.WaitCount(t, "SELECT count() FROM delivery_events", 50)
			chdbtest.BreakPart(t, db.Conn(), f.CH.Database+".delivery_events", "")
			disk.down.Store(true)
			f.publish(t, deliveries(50, 10)...)
			polltest.Until(t, 60*time.Second, "inserts failing long enough", func() bool { return !tc.failing(t, db, disk) })
			disk.down.Store(false)

			var readable uint64
			if !polltest.Within(60*time.Second, 100*time.Millisecond, func() bool {
				err := db.Conn().QueryRow(t.Context(), "SELECT uniqExact(otp_id) FROM delivery_events").Scan(&readable)
				return err == nil && readable == 60
			}) {
				t.Fatalf("delivery_events reads %d of the 60 events (or not at all):\n%s", readable, logs)
			}
			polltest.Until(t, 30*time.Second, "the replay consumer deleted", func() bool {
				has, err := f.Broker.HasConsumer(t.Context(), sinkConfig().Durable+"-replay")
				return err == nil && !has
			})
			if n := f.Count(t, "SELECT count() FROM delivery_events FINAL"); n != 60 {
				t.Errorf("delivery_events FINAL holds %d rows; want each of the 60 events once", n)
			}
			if n := metricstest.Must(t, reg, "otpscope_sink_broken_parts_total"); n != 1 {
				t.Errorf("broken parts counted = %v; want 1", n)
			}
			if n := metricstest.Must(t, reg, "otpscope_sink_replayed_rows_total"); n < 50 {
				t.Errorf("replayed rows = %v; want at least the broken part's 50", n)
			}
		})
	}
}

// partSetAsideAtStart stores 50 events, stops the sink, breaks their part
// and restarts the engine, which sets the part aside as it starts.
func partSetAsideAtStart(t *testing.T) (*fixture, *store.DB) {
	t.Helper()
	f := newFixture(t)
	db, err := store.ConnectEngine(t.Context(), f.CH.DSN+"/"+f.CH.Database, f.CH.Engine, brokertest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	// Published before the sink starts, so that one batch, one part, holds
	// all 50: published to a running sink they took two batches under
	// -race, and only the newest part's events were set aside.
	f.publish(t, deliveries(0, 50)...)
	stop := f.run(t, sinkConfig(), db)
	f.WaitCount(t, "SELECT count() FROM delivery_events", 50)
	stop()
	if n := f.Count(t, "SELECT count() FROM system.parts WHERE active AND database = currentDatabase() AND table = 'delivery_events'"); n != 1 {
		t.Fatalf("the 50 events are in %d parts; want 1", n)
	}
	chdbtest.BreakPart(t, db.Conn(), f.CH.Database+".delivery_events", "")
	if err := f.CH.Engine.Restart(); err != nil {
		t.Fatal(err)
	}
	return f, db
}

// TestPartsSetAsideAtStartReplayed: the process stops with a broken part on
// disk and the engine sets it aside as it starts again — the disk filled,
// and someone restarted the service before inserts recovered. The sink's
// start replays the part's events, once.
func TestPartsSetAsideAtStartReplayed(t *testing.T) {
	f, db := partSetAsideAtStart(t)
	if n := f.Count(t, "SELECT uniqExact(otp_id) FROM delivery_events"); n != 0 {
		t.Fatalf("after the engine's start delivery_events reads %d events; want the broken part set aside", n)
	}
	parts, err := db.PartsToReplay(t.Context())
	if err != nil || len(parts) != 1 {
		t.Fatalf("PartsToReplay = %v, %v; want the part set aside", parts, err)
	}

	_, reg, logs := runConsumer(t, f, db)
	if !polltest.Within(60*time.Second, 100*time.Millisecond, func() bool {
		return f.Count(t, "SELECT uniqExact(otp_id) FROM delivery_events") == 50
	}) {
		t.Fatalf("the set-aside part's 50 events were not replayed:\n%s", logs)
	}
	polltest.Until(t, 30*time.Second, "the replay consumer deleted", func() bool {
		has, err := f.Broker.HasConsumer(t.Context(), sinkConfig().Durable+"-replay")
		return err == nil && !has
	})
	if n := metricstest.Must(t, reg, "otpscope_sink_replayed_rows_total"); n < 50 {
		t.Errorf("replayed rows = %v; want at least 50", n)
	}
	if n := metricstest.Must(t, reg, "otpscope_sink_broken_parts_total"); n != 1 {
		t.Errorf("broken parts = %v; want the 1 the engine set aside as it started", n)
	}
	if parts, err := db.PartsToReplay(t.Context()); err != nil || len(parts) != 0 {
		t.Errorf("PartsToReplay after the replay = %v, %v; want none: a part is replayed once", parts, err)
	}
}

// TestReplayEndsUnderSteadyTraffic: a replay ends once it has inserted the
// stream as it was when it began, though webhooks keep coming; the sink's
// own consumer inserts those. Waiting for a moment with nothing pending
// never came under steady traffic, and every event was inserted twice for
// as long as it lasted.
func TestReplayEndsUnderSteadyTraffic(t *testing.T) {
	f, db := partSetAsideAtStart(t)

	// Traffic: a webhook every 5 ms until the test ends.
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int)
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		n := 0
		defer func() { done <- n }()
		for ; ctx.Err() == nil; n++ {
			if err := f.Broker.Publish(ctx, deliveries(1000+n, 1)...); err != nil && ctx.Err() == nil {
				t.Errorf("publish: %v", err)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()

	_, _, logs := runConsumer(t, f, db)
	if !polltest.Within(60*time.Second, 100*time.Millisecond, func() bool {
		return f.Count(t, "SELECT uniqExact(otp_id) FROM delivery_events WHERE otp_id < toUUID('11111111-0000-4000-8000-000000001000')") == 50
	}) {
		t.Fatalf("the set-aside part's 50 events were not replayed:\n%s", logs)
	}
	polltest.Until(t, 30*time.Second, "the replay consumer deleted while webhooks keep coming", func() bool {
		has, err := f.Broker.HasConsumer(t.Context(), sinkConfig().Durable+"-replay")
		return err == nil && !has
	})
	if ctx.Err() != nil {
		t.Fatal("the traffic stopped before the replay ended")
	}
}

// heldReplay fails the replay's inserts while held.
type heldReplay struct {
	*store.DB
	held     atomic.Bool
	failures atomic.Int32
}

func (h *heldReplay) InsertAgain(ctx context.Context, b *store.Batch) error {
	if h.held.Load() {
		h.failures.Add(1)
		return errors.New("held")
	}
	return h.DB.InsertAgain(ctx, b)
}

// TestInsertedWaitsForTheReplay: while a replay runs, the sink has
// inserted only up to the replay's ack floor, though its own consumer
// acknowledged more: a backup taken then must not record more, or a
// restore of it would replay from beyond what it holds.
func TestInsertedWaitsForTheReplay(t *testing.T) {
	f, db := partSetAsideAtStart(t) // events 1-50 set aside, replayed from the stream's start
	h := &heldReplay{DB: db}
	h.held.Store(true)
	c, _, logs := runConsumer(t, f, h)
	f.publish(t, deliveries(50, 10)...)
	f.WaitCount(t, "SELECT uniqExact(otp_id) FROM delivery_events", 10) // the sink's own consumer: 51-60
	polltest.Until(t, 60*time.Second, "the replay failing", func() bool { return h.failures.Load() > 0 })
	// Its floor is 0, which a backup would record as "unknown" (a restore
	// of it then replays from a time, too little): not a position.
	seq, err := c.Inserted(t.Context())
	if !errors.Is(err, store.ErrPositionPending) {
		t.Errorf("Inserted while the replay holds events 1-50 = %d, %v; want store.ErrPositionPending", seq, err)
	}

	h.held.Store(false)
	polltest.Until(t, 60*time.Second, "the replay consumer deleted", func() bool {
		has, err := f.Broker.HasConsumer(t.Context(), sinkConfig().Durable+"-replay")
		return err == nil && !has
	})
	if !polltest.Within(30*time.Second, 100*time.Millisecond, func() bool {
		seq, err = c.Inserted(t.Context())
		return err == nil && seq == 60
	}) {
		t.Errorf("Inserted after the replay = %d, %v; want 60:\n%s", seq, err, logs)
	}
}

// TestRestoreOfAnotherStreamReplaysAll: a backup taken of another stream (a
// machine rebuilt, whose new stream got webhooks before the restore) says a
// position in that stream: the sink inserts this one from its first
// message, or what it got before the restore would be lost with it.
func TestRestoreOfAnotherStreamReplaysAll(t *testing.T) {
	f := newFixture(t)
	stop := f.run(t, sinkConfig(), f.DB)
	f.publish(t, deliveries(0, 60)...)
	f.WaitCount(t, "SELECT uniqExact(otp_id) FROM delivery_events", 60)
	stop()
	// The restore: the backup's database has none of this stream's events,
	// and its stream and position are the old machine's.
	ctx := t.Context()
	for _, q := range []string{
		"TRUNCATE TABLE delivery_events",
		"TRUNCATE TABLE streams",
		"INSERT INTO streams (name, created_at) VALUES ('" + f.Broker.StreamName() + "', toDateTime64('2026-01-01 00:00:00', 3, 'UTC'))",
		"INSERT INTO restores (name, restored_at, started_at, stream_seq, replayed) VALUES ('otpscope-old', now64(3), now64(3), 40, 0)",
	} {
		if err := f.DB.Conn().Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	_, _, logs := runConsumer(t, f, f.DB)
	if !polltest.Within(60*time.Second, 100*time.Millisecond, func() bool {
		return f.Count(t, "SELECT uniqExact(otp_id) FROM delivery_events") == 60
	}) {
		t.Fatalf("delivery_events reads %d of this stream's 60 events after the restore:\n%s", f.Count(t, "SELECT uniqExact(otp_id) FROM delivery_events"), logs)
	}
	name, _, ok, err := f.DB.LastStream(ctx)
	if err != nil || !ok || name != f.Broker.StreamName() {
		t.Errorf("stream recorded after the replay: %q, %v, %v; want this one", name, ok, err)
	}
}
