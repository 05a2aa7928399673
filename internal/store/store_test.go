package store_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/chdb"
	"github.com/otpscope/otpscope/internal/chdb/chdbtest"
	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/store"
)

// backupDir is the shared engine's backups.allowed_path.
var backupDir string

// TestMain shares one engine, which keeps backups (TestBackupAndRestore)
// in a directory of its own.
func TestMain(m *testing.M) {
	chdbtest.Main(m, chdbtest.WithSetup(func(dir string) ([]chdb.Option, error) {
		backupDir = filepath.Join(dir, "backups")
		return []chdb.Option{chdb.WithBackupDir(backupDir)}, nil
	}))
}

// backend is one place the contract suite runs: the embedded engine always,
// and the ClickHouse server named by OTPSCOPE_CLICKHOUSE_DSN when set.
type backend struct {
	name string
	dsn  func(t *testing.T) string
}

func backends(t *testing.T) []backend {
	bs := []backend{{"embedded", func(t *testing.T) string {
		srv := chdbtest.Serve(t)
		return srv.DSN + "/" + srv.Database
	}}}
	if dsn := os.Getenv("OTPSCOPE_CLICKHOUSE_DSN"); dsn != "" {
		bs = append(bs, backend{"server", func(t *testing.T) string { return dsn }})
	} else {
		t.Log("OTPSCOPE_CLICKHOUSE_DSN is not set: the sink contract suite runs against the embedded engine only")
	}
	return bs
}

func forEachBackend(t *testing.T, test func(t *testing.T, db *store.DB)) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			db, err := store.Connect(t.Context(), b.dsn(t), brokertest.Logger(t))
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			t.Cleanup(func() { db.Close() })
			if err := db.Migrate(t.Context()); err != nil {
				t.Fatalf("Migrate: %v", err)
			}
			test(t, db)
		})
	}
}

func count(t *testing.T, db *store.DB, query string) uint64 {
	t.Helper()
	var n uint64
	if err := db.Conn().QueryRow(t.Context(), query).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func delivery(i int, status events.Status) store.DeliveryRow {
	ev := events.DeliveryStatus{
		Channel: events.ChannelSMS, Status: status, Source: events.SourceWebhook,
		OTPID:      fmt.Sprintf("00000000-0000-4000-8000-%012d", i),
		ProfileID:  "adbe6521-f5bd-4295-9fd9-776debdf7dc2",
		Timestamp:  time.Date(2026, 5, 1, 12, 0, i%60, 0, time.UTC),
		ReceivedAt: time.Date(2026, 5, 1, 12, 0, 1, 0, time.UTC),
	}
	if status.Failed() {
		ev.Error = &events.DeliveryError{Code: "tyntec::delivery::1", Message: "unreachable"}
	}
	return store.DeliveryRow{DeliveryStatus: ev, EventID: events.DeliveryID(&ev), Seq: uint64(i + 1)}
}

// insertDelivered inserts the deliveries from to to-1, delivered.
func insertDelivered(t *testing.T, db *store.DB, from, to int) {
	t.Helper()
	var b store.Batch
	for i := from; i < to; i++ {
		b.Deliveries = append(b.Deliveries, delivery(i, events.StatusDelivered))
	}
	if err := db.Insert(t.Context(), &b); err != nil {
		t.Fatal(err)
	}
}

func TestMigrateIsIdempotent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		for range 2 {
			if err := db.Migrate(t.Context()); err != nil {
				t.Fatalf("Migrate again: %v", err)
			}
		}
		if n := count(t, db, "SELECT count() FROM otpscope_schema_migrations FINAL"); n == 0 {
			t.Fatal("no migration recorded")
		}
		for _, table := range []string{"delivery_events", "otp_status", "v1_events", "resends", "dead_letters", "reconciliations"} {
			if n := count(t, db, "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = '"+table+"'"); n != 1 {
				t.Errorf("table %s: found %d", table, n)
			}
		}
		// Migration 0017 dropped the tables nothing reads.
		if n := count(t, db, "SELECT count() FROM system.tables WHERE database = currentDatabase() AND (name = 'attempts' OR name LIKE 'daily\\_%' OR name IN ('rollup_days', 'rolled_days'))"); n != 0 {
			t.Errorf("%d unread tables left", n)
		}
	})
}

// TestMigrateWarnsOfFutureMigrations: a recorded migration this build does
// not know (a newer build's) draws a warning naming it, and the start goes on.
func TestMigrateWarnsOfFutureMigrations(t *testing.T) {
	srv := chdbtest.Serve(t)
	var log bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return log.Write(p)
	}), nil))
	db, err := store.Connect(t.Context(), srv.DSN+"/"+srv.Database, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(log.String(), "level=WARN") {
		t.Fatalf("a first migration warned:\n%s", log.String())
	}
	if err := db.Conn().Exec(t.Context(), "INSERT INTO otpscope_schema_migrations (version, name, checksum) VALUES (9999, 'from_the_future', 'x')"); err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate with a future migration recorded: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !regexp.MustCompile(`level=WARN msg="the database holds schema migrations this build does not know[^"]*" unknown=9999_from_the_future latest_known=\d{4}_\w+`).MatchString(log.String()) {
		t.Errorf("log:\n%s\nwant a warning naming 9999_from_the_future", log.String())
	}
}

// TestMigrateAcceptsSupersededTexts: a database whose 0017 was recorded with
// the text a released build applied (schema/superseded) migrates; one
// recorded with a text no build shipped is refused, naming the migration.
func TestMigrateAcceptsSupersededTexts(t *testing.T) {
	srv := chdbtest.Serve(t)
	db, err := store.Connect(t.Context(), srv.DSN+"/"+srv.Database, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	record := func(checksum string, later int) {
		t.Helper()
		// applied_at later than any before: the record keeps the latest row.
		if err := db.Conn().Exec(t.Context(), "INSERT INTO otpscope_schema_migrations (version, name, checksum, applied_at) VALUES (17, 'drop_unread_tables', ?, now64(3) + toIntervalSecond(?))", checksum, later); err != nil {
			t.Fatal(err)
		}
	}
	record("af46b9b4b1416f04", 10) // 174b23c's text, single server
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate with 0017 recorded by 174b23c's text: %v", err)
	}
	record("deadbeefdeadbeef", 20)
	err = db.Migrate(t.Context())
	if err == nil || !strings.Contains(err.Error(), "0017_drop_unread_tables") || !strings.Contains(err.Error(), "deadbeefdeadbeef") {
		t.Fatalf("Migrate with 0017 recorded by an unknown text: %v; want a refusal naming it", err)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestInsertEveryTableAndReadBack(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		var b store.Batch
		for i := range 100 {
			b.Deliveries = append(b.Deliveries, delivery(i, events.StatusDelivered))
		}
		b.Deliveries = append(b.Deliveries, delivery(1000, events.StatusUndeliverable))
		otp := "00000000-0000-4000-8000-000000000001"
		b.Statuses = append(b.Statuses, store.OTPStatusRow{EventID: "os-1", OTPStatus: events.OTPStatus{
			OTPID: otp, API: "v4", Status: events.OTPVerified, ObservedAt: time.Now().UTC(), Source: events.SourcePoll, SampleRate: 0.5,
			Expires: time.Date(2026, 5, 1, 12, 5, 0, 0, time.UTC)}})
		b.V1Events = append(b.V1Events, store.V1EventRow{EventID: "v1-1", V1Event: events.V1Event{
			OTPID: otp, Type: "SMS", Status: "success", StatusText: "DELIVERED", Created: time.Now().UTC(), ObservedAt: time.Now().UTC()}})
		b.Resends = append(b.Resends, store.ResendRow{EventID: "rs-1", Resend: events.Resend{
			OTPID: otp, DecisionID: "d1", Result: events.ResendDryRun, Via: "VOICE", Attempt: 1, DecidedAt: time.Now().UTC(), DryRun: true}})
		b.DeadLetters = append(b.DeadLetters, store.DeadLetterRow{EventID: "dl-1", DeadLetter: events.DeadLetter{
			Reason: "otpId: not a UUID", Field: "otpId", Status: 400, Source: "ingest", ReceivedAt: time.Now().UTC(), Path: "/webhooks/tyntec", Body: "{\"otpId\":\"x\"}\n", BodyBytes: 14}})
		if err := db.Insert(t.Context(), &b); err != nil {
			t.Fatalf("Insert: %v", err)
		}
		for query, want := range map[string]uint64{
			"SELECT count() FROM delivery_events":                                                      101,
			"SELECT count() FROM delivery_events WHERE error_code = 'tyntec::delivery::1'":             1,
			"SELECT count() FROM otp_status WHERE otp_status = 'VERIFIED' AND sample_rate = 0.5":       1,
			"SELECT count() FROM otp_status WHERE otp_created IS NULL AND otp_expire IS NOT NULL":      1,
			"SELECT count() FROM v1_events WHERE status_text = 'DELIVERED'":                            1,
			"SELECT count() FROM resends WHERE dry_run AND via = 'VOICE'":                              1,
			"SELECT count() FROM dead_letters WHERE body = '{\"otpId\":\"x\"}\\n' AND field = 'otpId'": 1,
		} {
			if got := count(t, db, query); got != want {
				t.Errorf("%s = %d; want %d", query, got, want)
			}
		}
		if dls, err := db.DeadLetters(t.Context(), store.DeadLetterFilter{}); err != nil || len(dls) != 1 || dls[0].Path != "/webhooks/tyntec" {
			t.Errorf("DeadLetters = %+v, %v; want the one, with its path", dls, err)
		}
		// Pages of one: dead letters of one id and millisecond from two
		// sources (the cursor compared the time and id only, and skipped
		// the second), and one older.
		at := time.Now().UTC().Truncate(time.Millisecond)
		var more store.Batch
		for _, dl := range []struct{ id, source string }{{"dl-2", "sink"}, {"dl-2", "ingest"}, {"dl-3", "ingest"}} {
			more.DeadLetters = append(more.DeadLetters, store.DeadLetterRow{EventID: dl.id, DeadLetter: events.DeadLetter{
				Reason: "r", Status: 400, Source: dl.source, ReceivedAt: at.Add(time.Hour), Body: "{}"}})
		}
		more.DeadLetters[2].ReceivedAt = at.Add(-time.Hour)
		if err := db.Insert(t.Context(), &more); err != nil {
			t.Fatalf("Insert: %v", err)
		}
		var paged []string
		f := store.DeadLetterFilter{Limit: 1}
		for range 10 {
			page, err := db.DeadLetters(t.Context(), f)
			if err != nil || len(page) == 0 {
				break
			}
			paged = append(paged, page[0].Source+"/"+page[0].ID)
			f.After = &page[0]
		}
		if got, want := strings.Join(paged, " "), "ingest/dl-2 sink/dl-2 ingest/dl-1 ingest/dl-3"; got != want {
			t.Errorf("dead letters a page at a time = %s; want %s", got, want)
		}
		var when time.Time
		var id string
		if err := db.Conn().QueryRow(t.Context(), "SELECT event_time, toString(otp_id) FROM delivery_events WHERE stream_seq = 6").Scan(&when, &id); err != nil {
			t.Fatal(err)
		}
		if want := b.Deliveries[5]; !when.Equal(want.Timestamp) || id != want.OTPID {
			t.Errorf("row 6 = %v %s; want %v %s", when, id, want.Timestamp, want.OTPID)
		}
	})
}

// A batch inserted twice (the consumer crashed after the insert and before the
// ack) is dropped by ClickHouse's insert deduplication, and a single event
// re-inserted in another batch collapses in the ReplacingMergeTree: each
// counts once.
func TestReinsertCountsOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		// With merges stopped, only the insert_deduplication_token can keep the
		// second copy out.
		if err := db.Conn().Exec(t.Context(), "SYSTEM STOP MERGES delivery_events"); err != nil {
			t.Fatal(err)
		}
		var b store.Batch
		for i := range 50 {
			b.Deliveries = append(b.Deliveries, delivery(i, events.StatusDelivered))
		}
		for range 2 {
			if err := db.Insert(t.Context(), &b); err != nil {
				t.Fatalf("Insert: %v", err)
			}
		}
		if n := count(t, db, "SELECT count() FROM delivery_events"); n != 50 {
			t.Errorf("rows after inserting one batch twice = %d; want 50", n)
		}
		if err := db.Conn().Exec(t.Context(), "SYSTEM START MERGES delivery_events"); err != nil {
			t.Fatal(err)
		}
		var other store.Batch
		other.Deliveries = append(other.Deliveries, delivery(7, events.StatusDelivered), delivery(99, events.StatusDelivered))
		if err := db.Insert(t.Context(), &other); err != nil {
			t.Fatalf("Insert: %v", err)
		}
		if n := count(t, db, "SELECT count() FROM delivery_events FINAL"); n != 51 {
			t.Errorf("rows after re-inserts = %d; want 51", n)
		}
		if n := count(t, db, "SELECT uniqExact(event_id) FROM delivery_events"); n != 51 {
			t.Errorf("distinct event ids = %d; want 51", n)
		}
	})
}

func TestBatchAdd(t *testing.T) {
	var b store.Batch
	ev := delivery(1, events.StatusDelivered)
	m, _ := events.NewDeliveryMessage(&ev.DeliveryStatus)
	tests := []struct {
		subject, id, data string
		err               error
	}{
		{m.Subject, m.ID, string(m.Data), nil},
		{m.Subject, "", string(m.Data), store.ErrPermanent},
		{m.Subject, m.ID, "{not json", store.ErrPermanent},
		{m.Subject, m.ID, `{"otpId":"x","timestamp":"2026-01-01T00:00:00Z"}`, store.ErrPermanent},
		{"tyntec.2fa.report.hourly", "r1", `{}`, store.ErrNoTable},
		{"tyntec.2fa.track", "t1", `{}`, store.ErrNoTable},
		{"tyntec.2fa.delivery.SMS", "d1", string(m.Data), store.ErrNoTable}, // no status token
		{"other.subject", "o1", `{}`, store.ErrNoTable},
	}
	for _, tt := range tests {
		err := b.Add(tt.subject, tt.id, []byte(tt.data), 1)
		if (tt.err == nil) != (err == nil) || (tt.err != nil && !errors.Is(err, tt.err)) {
			t.Errorf("Add(%s, %q, %q) = %v; want %v", tt.subject, tt.id, tt.data, err, tt.err)
		}
	}
	if b.Len() != 1 {
		t.Errorf("batch holds %d rows; want 1", b.Len())
	}
}

// A delivery published with a date outside the sane range (by an older
// publisher) is stored at its receive time, marked, never wrapped.
func TestBatchAddOutOfRangeTimestamp(t *testing.T) {
	received := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	for _, ts := range []time.Time{time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Second)} {
		ev := delivery(1, events.StatusDelivered).DeliveryStatus
		ev.Timestamp, ev.ReceivedAt = ts, received
		m, err := events.NewDeliveryMessage(&ev)
		if err != nil {
			t.Fatal(err)
		}
		var b store.Batch
		if err := b.Add(m.Subject, m.ID, m.Data, 1); err != nil {
			t.Fatalf("Add with timestamp %v: %v", ts, err)
		}
		got := b.Deliveries[0]
		if !got.Timestamp.Equal(received) || !got.TimestampFromReceipt || got.OriginalTimestamp == "" {
			t.Errorf("timestamp %v stored as %v (from receipt %v, original %q); want the receive time, marked", ts, got.Timestamp, got.TimestampFromReceipt, got.OriginalTimestamp)
		}
	}
}

// Settings the store adds to a context accumulate: clickhouse.WithSettings
// alone replaces them, which dropped distributed_foreground_insert from the
// rollup job's patched inserts once max_query_size was added for their
// touched list.
func TestSettingsAccumulate(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		ctx := store.WithSettings(t.Context(), clickhouse.Settings{"max_query_size": 1234567})
		ctx = store.WithSettings(ctx, clickhouse.Settings{"max_execution_time": 77})
		var size, limit string
		if err := db.Conn().QueryRow(ctx, "SELECT toString(getSetting('max_query_size')), toString(getSetting('max_execution_time'))").Scan(&size, &limit); err != nil {
			t.Fatal(err)
		}
		if size != "1234567" || limit != "77" {
			t.Errorf("settings seen by the query: max_query_size %s, max_execution_time %s; want 1234567 and 77", size, limit)
		}
	})
}

// The owner's connection asks any server for the embedded engine's
// settings (on the engine they are its own), unless its DSN chose a value.
func TestOwnerAsksEngineSettings(t *testing.T) {
	for _, tt := range []struct{ dsn, want string }{
		{"clickhouse://u:p@127.0.0.1:9000/otpscope", "0"},
		{"http://u:p@127.0.0.1:8123/otpscope?optimize_and_compare_chain=1", "1"},
	} {
		opts, err := clickhouse.ParseDSN(tt.dsn)
		if err != nil {
			t.Fatal(err)
		}
		store.AskEngineSettings(opts)
		if got := fmt.Sprint(opts.Settings["optimize_and_compare_chain"]); got != tt.want {
			t.Errorf("%s: optimize_and_compare_chain %q; want %q", tt.dsn, got, tt.want)
		}
		// The store's LEFT JOINs read a missing right side as a default,
		// whatever the server's profile says.
		if got := fmt.Sprint(opts.Settings["join_use_nulls"]); got != "0" {
			t.Errorf("%s: join_use_nulls %q; want 0", tt.dsn, got)
		}
	}
}
