package store

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestGridProperties holds the grid to what a series' buckets promise, over
// random windows and steps in zones whose clocks do odd things: half and
// quarter hours (Kolkata, Kathmandu, Chatham, St John's), a half-hour
// change (Lord Howe), a day skipped (Apia, 30 December 2011), a negative
// daylight-saving time (Dublin), changes around Ramadan (Casablanca), a
// two-hour change (Troll). Every instant of the window, the changes of
// the clocks and the millisecond before each among them, falls in a
// bucket of the window that starts at or before it, before the next
// bucket starts; starts never go back; and a bucket that holds its own
// start is numbered by it (a skipped one holds nothing).
func TestGridProperties(t *testing.T) {
	zones := []string{"UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Asia/Kathmandu", "Pacific/Chatham",
		"America/St_Johns", "Australia/Lord_Howe", "Pacific/Apia", "Europe/Dublin", "Africa/Casablanca", "Antarctica/Troll"}
	steps := []time.Duration{time.Minute, 15 * time.Minute, 30 * time.Minute, 45 * time.Minute, time.Hour, 90 * time.Minute,
		3 * time.Hour, 24 * time.Hour, 48 * time.Hour, 7 * 24 * time.Hour}
	r := rand.New(rand.NewPCG(7, 11))
	lo, hi := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli(), time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	for c := range 3000 {
		zone, err := Zone(zones[r.IntN(len(zones))])
		if err != nil {
			t.Fatal(err)
		}
		step := steps[r.IntN(len(steps))]
		from := time.UnixMilli(lo + r.Int64N(hi-lo)).UTC()
		if c%4 == 0 { // around a change of the clocks
			_, end := from.In(zone).ZoneBounds()
			if !end.IsZero() {
				from = end.Add(-time.Duration(r.Int64N(int64(3 * step))))
			}
		}
		w := Window{From: from, To: from.Add(time.Duration(1 + r.Int64N(int64(min(100*step, 60*24*time.Hour)))))}
		g := newGrid(w, step, zone)
		if g.n < 1 {
			t.Fatalf("%s by %s over %s – %s: no bucket", zone, step, w.From, w.To)
		}
		if g.n > MaxBuckets {
			continue // refused (ErrTooManyBuckets): by the minute over Apia's skipped day, 1,440 empty ones
		}
		starts := make([]time.Time, g.n+1)
		for i := range starts {
			starts[i] = g.start(i)
			if i > 0 && starts[i].Before(starts[i-1]) {
				t.Fatalf("%s by %s: bucket %d starts at %s, before bucket %d's %s", zone, step, i, starts[i], i-1, starts[i-1])
			}
		}
		instants := []time.Time{w.From, w.To.Add(-time.Millisecond)}
		for range 40 {
			instants = append(instants, w.From.Add(time.Duration(r.Int64N(int64(w.To.Sub(w.From))))).Truncate(time.Millisecond))
		}
		for at := w.From; ; {
			_, end := at.In(zone).ZoneBounds()
			if end.IsZero() || !end.Before(w.To) {
				break
			}
			instants, at = append(instants, end, end.Add(-time.Millisecond)), end
		}
		for _, at := range instants {
			if at.Before(w.From) || !at.Before(w.To) {
				continue
			}
			i := g.index(at)
			if i < 0 || i >= int64(g.n) {
				t.Fatalf("%s by %s over %s – %s: %s in bucket %d of %d", zone, step, w.From, w.To, at, i, g.n)
			}
			if at.Before(starts[i]) || !at.Before(starts[i+1]) {
				t.Fatalf("%s by %s over %s – %s: %s in bucket %d, [%s, %s)", zone, step, w.From, w.To, at, i, starts[i], starts[i+1])
			}
		}
		for i := range g.n {
			if starts[i].Before(starts[i+1]) && !starts[i].Before(w.From) && starts[i].Before(w.To) && g.index(starts[i]) != int64(i) {
				t.Fatalf("%s by %s: bucket %d's start %s is in bucket %d", zone, step, i, starts[i], g.index(starts[i]))
			}
		}
	}
}
