package store_test

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/store"
)

// A percentile's values of a rolled-up hour or day are read once per
// version: a reader keeps them, and reads them again only under a new
// version. Shown by taking the stored values away: the reader that kept
// them answers as before, a new one cannot; and one whose versions were
// within the slack (a cluster's inserts perhaps not all visible) kept none.
func TestRollupValuesKeptByVersion(t *testing.T) {
	noSlack(t)
	// The first windows' values are read from days (first) and from hours
	// (short); the next ones overlap them: some of their values kept, some
	// read, in the same days and hours.
	first := store.Window{From: rollStart, To: rollStart.AddDate(0, 0, 3)}
	short := store.Window{From: rollStart.Add(90 * time.Minute), To: rollStart.Add(5*time.Hour + 7*time.Millisecond)}
	odd := store.Window{From: rollStart.Add(90 * time.Minute), To: rollStart.AddDate(0, 0, 2).Add(5*time.Hour + 7*time.Millisecond)}
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			kept, open := rolledUp(t, b, markClock)
			if got, err := valueAnswers(t, kept, first, short); err != nil || got != rawValueAnswers(t, kept, first, short) {
				t.Fatalf("the first windows from rollups (%v) differ from raw events", err)
			}
			if got, err := valueAnswers(t, kept, week, odd); err != nil || got != rawValueAnswers(t, kept, week, odd) {
				t.Fatalf("windows partly read before (%v) differ from raw events", err)
			}
			want := rawValueAnswers(t, kept, week, odd)
			takeValues(t, kept)
			if got, err := valueAnswers(t, kept, week, odd); err != nil || got != want {
				t.Errorf("the reader that read the values once answers %v without them; want the same answers", err)
			}
			if _, err := valueAnswers(t, open(), week, odd); err == nil {
				t.Error("a new reader answered without the stored values; want an error (else this test shows nothing)")
			}

			// Versions an hour ahead of the reader's clock: within any slack.
			young, _ := rolledUp(t, b, func(t *testing.T, db *store.DB) {
				store.SetRollupClock(db, func() time.Time { return time.Now().Add(time.Hour) })
			})
			if got, err := valueAnswers(t, young, week, odd); err != nil || got != rawValueAnswers(t, young, week, odd) {
				t.Fatalf("the young rollups' answers (%v) differ from raw events", err)
			}
			takeValues(t, young)
			if _, err := valueAnswers(t, young, week, odd); err == nil {
				t.Error("a reader answered from values of versions within the slack after they were taken away: it kept them")
			}
		})
	}
}

// rolledUp is a fresh database of rollupData rolled up under clock's
// versions, and a function opening another reader of it.
func rolledUp(t *testing.T, b backend, clock func(*testing.T, *store.DB)) (*store.DB, func() *store.DB) {
	dsn := b.dsn(t)
	open := func() *store.DB {
		db, err := store.Connect(t.Context(), dsn, brokertest.Logger(t))
		if err != nil {
			t.Fatalf("Connect: %v", err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	db := open()
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	clock(t, db)
	first, second, statuses := rollupData(rand.New(rand.NewPCG(8, 8)), 6, 40, "")
	for _, b := range []*store.Batch{{Deliveries: first}, {Deliveries: second}, {Statuses: statuses}} {
		if err := db.Insert(t.Context(), b); err != nil {
			t.Fatalf("Insert: %v", err)
		}
	}
	if _, err := db.RefreshRollups(t.Context()); err != nil {
		t.Fatalf("RefreshRollups: %v", err)
	}
	return db, open
}

// takeValues empties the tables percentiles read their values from.
func takeValues(t *testing.T, db *store.DB) {
	for _, table := range []string{"day_latency_lists", "day_latency", "hourly_latency"} {
		if err := db.Conn().Exec(t.Context(), "TRUNCATE TABLE "+table); err != nil {
			t.Fatal(err)
		}
	}
}

// valueAnswers are db's channels and 13-hour series of each window, as
// JSON; they fail the test unless the first window has a percentile.
func valueAnswers(t *testing.T, db *store.DB, ws ...store.Window) (string, error) {
	var out []any
	for i, w := range ws {
		chs, err := db.Channels(t.Context(), w)
		if err != nil {
			return "", err
		}
		if i == 0 && !slices.ContainsFunc(chs, func(c store.ChannelStats) bool { return c.LatencyMS != nil }) {
			t.Fatalf("%v has no latency percentile: no values to read or keep", w)
		}
		ts, err := db.Timeseries(t.Context(), w, 13*time.Hour, nil)
		if err != nil {
			return "", err
		}
		out = append(out, chs, ts)
	}
	b, err := json.Marshal(out)
	return string(b), err
}

// rawValueAnswers are valueAnswers from the raw events.
func rawValueAnswers(t *testing.T, db *store.DB, ws ...store.Window) string {
	for i := range ws {
		ws[i].Raw = true
	}
	got, err := valueAnswers(t, db, ws...)
	if err != nil {
		t.Fatalf("raw answers: %v", err)
	}
	return got
}
