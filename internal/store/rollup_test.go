package store_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/polltest"
	"github.com/otpscope/otpscope/internal/store"
	"github.com/otpscope/otpscope/schema"
)

var rollStart = time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)

// rollupData is six days of journeys: two profiles, three priorities, every
// outcome, latencies from 0.1 s to 70 s, journeys crossing midnight,
// undocumented statuses, polled facts, duplicates stored by a later insert,
// and polled OTP statuses.
func rollupData(r *rand.Rand, days, perDay int, tag string) (first, second []store.DeliveryRow, statuses []store.OTPStatusRow) {
	prios := [][]string{{"SMS", "VIBER"}, {"WHATSAPP", "SMS"}, {"SMS"}}
	for d := 0; d < days; d++ {
		for i := 0; i < perDay; i++ {
			otp := fmt.Sprintf("bbbbbbbb-%04d-4000-8000-%012d", d, i)
			if tag != "" {
				otp = fmt.Sprintf("cccccccc-%04d-4000-8000-%012d", d, i)
			}
			start := rollStart.AddDate(0, 0, d).Add(time.Duration(r.Int64N(int64(24 * time.Hour))))
			if i%10 == 0 { // crosses midnight
				start = rollStart.AddDate(0, 0, d+1).Add(-time.Duration(r.IntN(30)) * time.Second)
			}
			profile := []string{"prof-a", "prof-b"}[r.IntN(2)]
			prio := prios[r.IntN(len(prios))]
			at := start
			for k, ch := range prio {
				mk := func(st string, t time.Time, mods ...func(*events.DeliveryStatus)) store.DeliveryRow {
					e := events.DeliveryStatus{OTPID: otp, ProfileID: profile, Channel: events.Channel(ch), Status: events.Status(st),
						Timestamp: t, ReceivedAt: t.Add(time.Second), Source: events.SourceWebhook}
					if events.Status(st).Failed() {
						e.Error = &events.DeliveryError{Code: fmt.Sprintf("tyntec::%s::%d", ch, r.IntN(3))}
					}
					if !events.Status(st).Known() {
						e.UnknownStatus = true
					}
					for _, m := range mods {
						m(&e)
					}
					return store.DeliveryRow{DeliveryStatus: e, EventID: events.DeliveryID(&e)}
				}
				first = append(first, mk("DISPATCHED", at))
				lat := time.Duration(100+r.IntN(70000)) * time.Millisecond
				var mods []func(*events.DeliveryStatus)
				if r.IntN(8) == 0 {
					mods = append(mods, polled)
				}
				outcome := r.IntN(10)
				var last store.DeliveryRow
				switch {
				case outcome < 6:
					last = mk("DELIVERED", at.Add(lat), mods...)
				case outcome < 8:
					last = mk("UNDELIVERABLE", at.Add(lat), mods...)
				case outcome < 9:
					last = mk("TIMED_OUT", at.Add(lat), mods...)
				default:
					last = mk("QUEUED_AT_CARRIER", at.Add(lat)) // undocumented: stays pending
				}
				first = append(first, last)
				if r.IntN(4) == 0 {
					second = append(second, last) // stored twice
				}
				if last.Status == "DELIVERED" || k == len(prio)-1 || r.IntN(5) == 0 {
					if last.Status == "DELIVERED" && r.IntN(2) == 0 {
						st := []events.OTPState{events.OTPVerified, events.OTPExpired, events.OTPActive}[r.IntN(3)]
						statuses = append(statuses, store.OTPStatusRow{
							OTPStatus: events.OTPStatus{OTPID: otp, API: "v4", Status: st, ObservedAt: at.Add(lat + time.Minute), Source: events.SourcePoll, SampleRate: []float64{1, 0.5}[r.IntN(2)]},
							EventID:   "st-" + otp + string(st),
						})
					}
					break
				}
				at = at.Add(lat + 200*time.Millisecond)
			}
		}
	}
	return first, second, statuses
}

// sameAsRaw checks that every window's figures equal those computed from raw
// events: fixed windows, and random ones with edges at odd milliseconds.
// The windows are checked side by side (sameAsRawAtOnce at a time): each
// answer is mostly the engine planning its queries one at a time, so one
// window after the other left a core idle (140 % of two cores).
func sameAsRaw(t *testing.T, db *store.DB, when string) {
	t.Helper()
	end := rollStart.AddDate(0, 0, 7)
	windows := []store.Window{
		{From: rollStart, To: end},
		{From: rollStart.Add(7*time.Hour + 30*time.Minute), To: end.Add(-35 * time.Hour)},
		{From: rollStart.AddDate(0, 0, 1), To: rollStart.AddDate(0, 0, 4)},
		{From: rollStart, To: end, Profile: "prof-b"},
		{From: rollStart, To: end, Channel: "SMS"},
		{From: rollStart.Add(time.Hour), To: end, Channel: "VIBER", Profile: "prof-a"},
		{From: rollStart, To: end, Channel: "WHATSAPP"},
		{From: rollStart, To: end, Profile: "nobody"},
		{From: rollStart.Add(13*time.Hour + 17*time.Minute), To: rollStart.Add(13*time.Hour + 43*time.Minute)}, // inside one hour
	}
	r := rand.New(rand.NewPCG(uint64(len(when)), 9))
	for range 4 {
		from := rollStart.Add(time.Duration(r.Int64N(int64(6 * 24 * time.Hour))))
		windows = append(windows, store.Window{From: from, To: from.Add(time.Duration(r.Int64N(int64(3 * 24 * time.Hour))))})
	}
	raw := rawAnswersOf(t, db)
	var g errgroup.Group
	g.SetLimit(sameAsRawAtOnce)
	for _, w := range windows {
		g.Go(func() error { return windowSameAsRaw(t, db, raw, when, w) })
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
}

// sameAsRawAtOnce is how many windows sameAsRaw checks at a time.
const sameAsRawAtOnce = 3

// rawAnswers are the raw-events answers computed for one state of the raw
// tables, by endpoint and window: a test calls sameAsRaw before and after
// the rollup job, or with readers set differently, over the same raw
// events, and the raw answers are a third of each call's time.
type rawAnswers struct {
	state string // the tables' active parts when the answers were computed
	mu    sync.Mutex
	byKey map[string]any
}

// rawAnswerCache holds each database's raw answers for its latest state.
var rawAnswerCache sync.Map // database name → *rawAnswers

// rawAnswersOf is the raw answers for db's raw tables as they are now. The
// state is, per table and partition, the newest block number (an insert
// takes a new one), the newest data version (so does a delete) and the rows
// (a merge that drops rows changes them: that only costs the answers again).
// Only the tables the rollup job writes are left out; raw answers never
// read them.
func rawAnswersOf(t *testing.T, db *store.DB) *rawAnswers {
	t.Helper()
	var name, state string
	err := db.Conn().QueryRow(t.Context(), `SELECT currentDatabase(), arrayStringConcat(arraySort(groupArray(concat(table, '/', partition_id, '/', toString(b), '/', toString(v), '/', toString(r)))), ',')
FROM (
    SELECT table, partition_id, max(max_block_number) AS b, max(data_version) AS v, sum(rows) AS r
    FROM system.parts WHERE database = currentDatabase() AND active AND NOT match(table, '^(hour_|hourly_|rolled_|day_|rollup_)')
    GROUP BY table, partition_id
)`).Scan(&name, &state)
	if err != nil {
		t.Fatalf("state of the raw tables: %v", err)
	}
	if c, ok := rawAnswerCache.Load(name); ok && c.(*rawAnswers).state == state {
		t.Logf("raw answers: the raw tables are unchanged; %d answers reused", len(c.(*rawAnswers).byKey))
		return c.(*rawAnswers)
	}
	c := &rawAnswers{state: state, byKey: map[string]any{}}
	rawAnswerCache.Store(name, c)
	return c
}

// get is the raw answer of ep (and step) for w, computed by compute the first
// time.
func (c *rawAnswers) get(ep string, w store.Window, step time.Duration, compute func(raw store.Window) (any, error)) (any, error) {
	key := fmt.Sprintf("%s %s %+v", ep, step, w)
	c.mu.Lock()
	v, ok := c.byKey[key]
	c.mu.Unlock()
	if ok {
		return v, nil
	}
	raw := w
	raw.Raw = true
	v, err := compute(raw)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.byKey[key] = v
	c.mu.Unlock()
	return v, nil
}

// windowSameAsRaw is sameAsRaw for one window: differences are reported
// with t.Errorf, and an error ends the window's check (t.Fatal may not be
// called off the test's goroutine).
func windowSameAsRaw(t *testing.T, db *store.DB, raws *rawAnswers, when string, w store.Window) error {
	for _, ep := range []string{"channels", "fallback", "completeness", "timeseries", "timeseries hourly", "timeseries daily"} {
		var got, want any
		var err1, err2 error
		switch ep {
		case "channels":
			got, err1 = db.Channels(t.Context(), w)
			want, err2 = raws.get(ep, w, 0, func(raw store.Window) (any, error) { return db.Channels(t.Context(), raw) })
		case "fallback":
			got, err1 = db.Fallback(t.Context(), w)
			want, err2 = raws.get(ep, w, 0, func(raw store.Window) (any, error) { return db.Fallback(t.Context(), raw) })
		case "timeseries", "timeseries hourly", "timeseries daily":
			// Buckets cutting hours, whole hours, and whole days (their
			// histograms from the day level).
			step := (w.To.Sub(w.From)/13 + time.Second).Truncate(time.Second)
			switch ep {
			case "timeseries hourly":
				step = time.Hour
				if w.To.Sub(w.From) > 900*time.Hour {
					continue
				}
			case "timeseries daily":
				step = 24 * time.Hour
			}
			got, err1 = db.Timeseries(t.Context(), w, step, nil)
			want, err2 = raws.get(ep, w, step, func(raw store.Window) (any, error) { return db.Timeseries(t.Context(), raw, step, nil) })
			if err1 == nil {
				if err := edgeBuckets(t, db, w, got.(store.Timeseries)); err != nil {
					return err
				}
			}
		default:
			now := week.To.AddDate(0, 0, 1)
			got, err1 = db.Completeness(t.Context(), w, now)
			want, err2 = raws.get(ep, w, 0, func(raw store.Window) (any, error) { return db.Completeness(t.Context(), raw, now) })
		}
		if err1 != nil || err2 != nil {
			return fmt.Errorf("%s %s %+v: %v, %v", when, ep, w, err1, err2)
		}
		if !reflect.DeepEqual(got, want) {
			g, _ := json.Marshal(got)
			r, _ := json.Marshal(want)
			t.Errorf("%s: %s %+v from rollups differs from raw events:\n got %s\nwant %s", when, ep, w, g, r)
		}
	}
	return nil
}

// edgeBuckets checks what a series' buckets are: aligned to multiples of
// its step since the epoch, the first cut at w.From and the last at w.To,
// each holding what Channels gives for its part of the window.
func edgeBuckets(t *testing.T, db *store.DB, w store.Window, ts store.Timeseries) error {
	step := time.Duration(ts.Step)
	if len(ts.Start) == 0 {
		return nil
	}
	if first := ts.Start[0]; first.After(w.From) || !first.Add(step).After(w.From) || first.UnixMilli()%step.Milliseconds() != 0 {
		t.Errorf("timeseries %+v step %s starts at %s: want the multiple of step holding from", w, step, first)
	}
	last := len(ts.Start) - 1
	for _, b := range slices.Compact([]int{0, last}) { // one bucket: checked once
		part := w
		part.From, part.To = store.MaxTime(w.From, ts.Start[b]), store.MinTime(w.To, ts.Start[b].Add(step))
		chs, err := db.Channels(t.Context(), part)
		if err != nil {
			return fmt.Errorf("timeseries %+v bucket %d: Channels of [%s, %s): %w", w, b, part.From, part.To, err)
		}
		for _, c := range chs {
			for _, s := range ts.Channels {
				if s.Channel == c.Channel && (s.Attempts[b] != c.Attempts || s.Delivered[b] != c.Delivered) {
					t.Errorf("timeseries %+v bucket %d %s = %d attempts, %d delivered; /channels of [%s, %s) %d, %d",
						w, b, c.Channel, s.Attempts[b], s.Delivered[b], part.From, part.To, c.Attempts, c.Delivered)
				}
			}
		}
	}
	return nil
}

// rolledHours is how many whole and partial hours of the test's week the
// readers take from the rollups.
func rolledHours(t *testing.T, db *store.DB, w store.Window) (whole, partial int) {
	t.Helper()
	whole, partial, err := store.RolledHours(t.Context(), db, w)
	if err != nil {
		t.Fatalf("RolledHours: %v", err)
	}
	return whole, partial
}

var week = store.Window{From: rollStart, To: rollStart.AddDate(0, 0, 7)}

// markClock has the rollups' versions stand a millisecond after the newest
// dirty mark: each run's version is newer than every mark inserted before it,
// and the marks inserted after a run (which takes milliseconds) are not
// older than its version. Waiting for the wall clock to move on between
// inserts and runs gives the same; this needs no wait.
func markClock(t *testing.T, db *store.DB) {
	store.SetRollupClock(db, func() time.Time {
		var newest time.Time
		if err := db.Conn().QueryRow(t.Context(), "SELECT max(inserted_at) FROM rollup_dirty").Scan(&newest); err != nil {
			t.Errorf("newest mark: %v", err)
		}
		return newest.Add(time.Millisecond)
	})
}

// refreshLater runs the rollup job under a version newer than every one
// written so far, then goes back to markClock. Without inserts since the
// last run, markClock would give that run's version again, and a day summed
// again would be written beside its rows of that run, under the same version.
func refreshLater(t *testing.T, db *store.DB) (store.RollupRun, error) {
	next := count(t, db, "SELECT greatest((SELECT max(version) FROM rolled_hours), (SELECT max(version) FROM rolled_day_lists)) + 1")
	store.SetRollupClock(db, func() time.Time { return time.UnixMilli(int64(next)) })
	defer markClock(t, db)
	return db.RefreshRollups(t.Context())
}

func noSlack(t *testing.T) {
	slack := store.RollupSlack
	store.RollupSlack = 0 // this test's inserts are visible when Insert returns
	t.Cleanup(func() { store.RollupSlack = slack })
}

// hoursNear are the hours a fact at each of ts can change: its own and 24
// on either side (MaxAttemptSpan).
func hoursNear(ts ...time.Time) map[time.Time]bool {
	out := map[time.Time]bool{}
	for _, t := range ts {
		h := t.UTC().Truncate(time.Hour)
		for k := -24; k <= 24; k++ {
			out[h.Add(time.Duration(k)*time.Hour)] = true
		}
	}
	return out
}

func sameHours(got []time.Time, want map[time.Time]bool) bool {
	if len(got) != len(want) {
		return false
	}
	for _, h := range got {
		if !want[h] {
			return false
		}
	}
	return true
}

func TestRollupsEqualRawEvents(t *testing.T) {
	noSlack(t)
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		markClock(t, db)
		r := rand.New(rand.NewPCG(6, 6))
		first, second, statuses := rollupData(r, 6, 40, "")
		for _, b := range []*store.Batch{{Deliveries: first}, {Deliveries: second}, {Statuses: statuses}} {
			if err := db.Insert(t.Context(), b); err != nil {
				t.Fatalf("Insert: %v", err)
			}
		}
		sameAsRaw(t, db, "before any rollup")

		// Every hour within a day of a fact is computed, once.
		var times []time.Time
		for _, e := range append(first, second...) {
			times = append(times, e.Timestamp)
		}
		for _, s := range statuses {
			times = append(times, s.ObservedAt)
		}
		hours, err := hoursOf(db.RefreshRollups(t.Context()))
		if err != nil {
			t.Fatalf("RefreshRollups: %v", err)
		}
		if want := hoursNear(times...); !sameHours(hours, want) {
			t.Fatalf("RefreshRollups computed %d hours; want the %d within a day of a fact", len(hours), len(want))
		}
		if whole, partial := rolledHours(t, db, week); whole != 7*24 || partial != 0 {
			t.Fatalf("the week reads %d whole and %d partial rolled-up hours; want 168 and 0", whole, partial)
		}
		odd := store.Window{From: rollStart.Add(90 * time.Minute), To: rollStart.Add(5*time.Hour + 7*time.Millisecond)}
		if whole, partial := rolledHours(t, db, odd); whole != 3 || partial != 2 {
			t.Fatalf("01:30 to 05:00.007 reads %d whole and %d partial rolled-up hours; want 3 and 2", whole, partial)
		}
		// The job summed each day's histograms: a week's percentiles read 7
		// days, not 168 hours; a day cut by the window is read by hours.
		if days, err := store.PlannedDays(t.Context(), db, week); err != nil || days != 7 {
			t.Errorf("the week reads %d days of histograms (%v); want 7", days, err)
		}
		if days, err := store.PlannedDays(t.Context(), db, store.Window{From: rollStart.Add(time.Hour), To: rollStart.AddDate(0, 0, 2)}); err != nil || days != 1 {
			t.Errorf("01:00 on day 1 to day 3 reads %d days of histograms (%v); want 1", days, err)
		}
		sameAsRaw(t, db, "all hours rolled up")

		// A history summed before schema 0018 has day records without
		// lists of values: readers take its days by hours until the job
		// sums them again, lists included.
		if err := db.Conn().Exec(t.Context(), "TRUNCATE TABLE rolled_day_lists"); err != nil {
			t.Fatal(err)
		}
		if days, err := store.PlannedDays(t.Context(), db, week); err != nil || days != 0 {
			t.Errorf("without day records the week reads %d days of histograms (%v); want 0", days, err)
		}
		sameAsRaw(t, db, "day records of before schema 0018")
		days := int(count(t, db, "SELECT uniqExact(toStartOfDay(hour)) FROM rolled_hours"))
		if run, err := refreshLater(t, db); err != nil || len(run.Hours) != 0 || run.Days != days {
			t.Fatalf("RefreshRollups = %d hours, %d days, %v; want none, and every day with rolled-up hours (%d) summed", len(run.Hours), run.Days, err, days)
		}
		if days, err := store.PlannedDays(t.Context(), db, week); err != nil || days != 7 {
			t.Errorf("after the job the week reads %d days of histograms (%v); want 7", days, err)
		}

		// A run that computed an hour again and stopped before its day
		// (killed, timed out) leaves the day's record naming the hour's
		// older version: readers take that day by hours, and the next run
		// sums it again though none of its hours is dirty.
		if err := store.RecomputeWithoutDay(t.Context(), db, rollStart.AddDate(0, 0, 2).Add(5*time.Hour)); err != nil {
			t.Fatalf("RecomputeWithoutDay: %v", err)
		}
		if days, err := store.PlannedDays(t.Context(), db, week); err != nil || days != 6 {
			t.Errorf("with a day summed before its hour was computed again the week reads %d days of histograms (%v); want 6", days, err)
		}
		if run, err := refreshLater(t, db); err != nil || len(run.Hours) != 0 || run.Days != 1 {
			t.Fatalf("RefreshRollups = %d hours, %d days, %v; want none, and the stale day summed", len(run.Hours), run.Days, err)
		}
		if days, err := store.PlannedDays(t.Context(), db, week); err != nil || days != 7 {
			t.Errorf("after the job the week reads %d days of histograms (%v); want 7", days, err)
		}
		sameAsRaw(t, db, "a day summed again after its hour")

		totals := func() (attempts, delivered uint64) {
			chs, err := db.Channels(t.Context(), store.Window{From: rollStart, To: rollStart.AddDate(0, 0, 7), Raw: true})
			if err != nil {
				t.Fatalf("Channels: %v", err)
			}
			for _, c := range chs {
				attempts, delivered = attempts+c.Attempts, delivered+c.Delivered
			}
			return attempts, delivered
		}
		attempts0, delivered0 := totals()

		// Late facts land in rolled-up hours: a replayed backlog (new OTPs and
		// duplicates of stored events), outcomes of pending attempts, statuses
		// polled late. Readers compute the dirty hours live.
		r2 := rand.New(rand.NewPCG(7, 7))
		late, dup, lateStatuses := rollupData(r2, 2, 15, "late")
		late = append(late, first[:50]...)
		late = append(late, dup...)
		for _, e := range first {
			if e.Status == "QUEUED_AT_CARRIER" && e.Timestamp.Before(rollStart.AddDate(0, 0, 2)) {
				d := e.DeliveryStatus
				d.Status, d.Timestamp, d.UnknownStatus = "DELIVERED", d.Timestamp.Add(time.Second), false
				late = append(late, store.DeliveryRow{DeliveryStatus: d, EventID: events.DeliveryID(&d)})
			}
		}
		for _, e := range first {
			if e.Status == "DELIVERED" && e.Timestamp.After(rollStart.AddDate(0, 0, 4)) && len(lateStatuses) < 40 {
				lateStatuses = append(lateStatuses, store.OTPStatusRow{OTPStatus: events.OTPStatus{OTPID: e.OTPID, API: "v4", Status: events.OTPVerified,
					ObservedAt: e.Timestamp.Add(20 * time.Hour), AttemptCount: 9, Source: events.SourcePoll, SampleRate: 1}, EventID: "late-" + e.OTPID})
			}
		}
		for _, b := range []*store.Batch{{Deliveries: late}, {Statuses: lateStatuses}} {
			if err := db.Insert(t.Context(), b); err != nil {
				t.Fatalf("Insert: %v", err)
			}
		}
		if a, d := totals(); a <= attempts0 || d <= delivered0 {
			t.Fatalf("late facts: %d attempts, %d delivered; want more than %d and %d", a, d, attempts0, delivered0)
		}
		if whole, _ := rolledHours(t, db, week); whole >= 7*24 {
			t.Errorf("the week reads %d rolled-up hours after late facts; want fewer than 168", whole)
		}
		// The dirty hours are patched (their stored rows, with the OTPs the
		// late facts touched computed live) or, where those OTPs have no
		// rows, read whole.
		if whole, _, patched, err := store.PlannedHours(t.Context(), db, week); err != nil || patched == 0 || whole+patched != 7*24 {
			t.Errorf("the week after late facts plans %d whole and %d patched hours (%v); want every dirty hour patched or whole", whole, patched, err)
		}
		sameAsRaw(t, db, "late facts, before the job")
		// Past the age readers patch (the job has not run for a day), the
		// dirty hours are read live, and answer the same.
		restore := store.SetPatchAge(0)
		if _, _, patched, err := store.PlannedHours(t.Context(), db, week); err != nil || patched != 0 {
			t.Errorf("with patching off, the week plans %d patched hours (%v); want 0", patched, err)
		}
		sameAsRaw(t, db, "late facts, before the job, read live")
		restore()

		// The job recomputes the hours the late facts can change, no others.
		times = times[:0]
		for _, e := range late {
			times = append(times, e.Timestamp)
		}
		for _, s := range lateStatuses {
			times = append(times, s.ObservedAt)
		}
		hours, err = hoursOf(db.RefreshRollups(t.Context()))
		if err != nil {
			t.Fatalf("RefreshRollups after late facts: %v", err)
		}
		if want := hoursNear(times...); !sameHours(hours, want) {
			t.Errorf("RefreshRollups after late facts computed %d hours; want the %d within a day of a late fact", len(hours), len(want))
		}
		if whole, _ := rolledHours(t, db, week); whole != 7*24 {
			t.Errorf("the week reads %d rolled-up hours after the job; want 168", whole)
		}
		sameAsRaw(t, db, "late facts rolled up")

		// A second run has nothing to do, and replaced versions are gone.
		if hours, err = hoursOf(db.RefreshRollups(t.Context())); err != nil || len(hours) != 0 {
			t.Errorf("idle RefreshRollups computed %v, %v; want nothing", hours, err)
		}
		for _, table := range []string{"hour_attempts", "hour_journeys", "hourly_attempts", "hourly_latency", "rolled_hours"} {
			polltest.Until(t, time.Minute, "replaced versions of "+table+" deleted", func() bool {
				return count(t, db, "SELECT count() FROM (SELECT hour FROM "+table+" GROUP BY hour HAVING uniqExact(version) > 1)") == 0
			})
		}
		sameAsRaw(t, db, "after cleanup")
	})
}

// Between runs of the job a dirty hour is patched only where the OTPs
// touched since its version have rows, stored at the version or now; the
// other dirty hours are exact as stored and read whole. A late fact can
// start a row at another, older fact of its OTP, in another hour: that
// hour is patched too.
// hoursOf is the hours a run of the rollup job brought up to date.
func hoursOf(run store.RollupRun, err error) ([]time.Time, error) { return run.Hours, err }

// deliveryAt is delivery i with status at ts.
func deliveryAt(i int, status events.Status, ts time.Time) store.DeliveryRow {
	r := delivery(i, status)
	r.Timestamp = ts
	r.EventID = events.DeliveryID(&r.DeliveryStatus)
	return r
}

// rollUpDayBeforeLateFacts inserts a day — a delivered OTP in every hour,
// OTP 1 dispatched at 10:10 and again at 11:20 with nothing settled between
// (one attempt, in hour 10), OTP 2 dispatched at 23:50 — and rolls it up. It
// returns two late facts, not inserted: a DELIVERED for OTP 1 at 10:30,
// which splits its attempt (the 11:20 dispatch now opens a second one, in
// hour 11), and OTP 2's delivery at 00:10 the next day, whose facts are
// then in channel_events rows of two days.
func rollUpDayBeforeLateFacts(t *testing.T, db *store.DB) (late []store.DeliveryRow) {
	t.Helper()
	var rows []store.DeliveryRow
	for i := range 24 {
		ts := rollStart.Add(time.Duration(i)*time.Hour + 5*time.Minute)
		rows = append(rows, deliveryAt(100+i, events.StatusDispatched, ts), deliveryAt(100+i, events.StatusDelivered, ts.Add(3*time.Second)))
	}
	rows = append(rows, deliveryAt(1, events.StatusDispatched, rollStart.Add(10*time.Hour+10*time.Minute)),
		deliveryAt(1, events.StatusDispatched, rollStart.Add(11*time.Hour+20*time.Minute)),
		deliveryAt(2, events.StatusDispatched, rollStart.Add(23*time.Hour+50*time.Minute)))
	if err := db.Insert(t.Context(), &store.Batch{Deliveries: rows}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the job's version after the marks
	if done, err := hoursOf(db.RefreshRollups(t.Context())); err != nil || len(done) == 0 {
		t.Fatalf("RefreshRollups = %v, %v; want the day rolled up", done, err)
	}
	return []store.DeliveryRow{deliveryAt(1, events.StatusDelivered, rollStart.Add(10*time.Hour+30*time.Minute)),
		deliveryAt(2, events.StatusDelivered, rollStart.Add(24*time.Hour+10*time.Minute))}
}

// checkDayAfterLateFacts checks /channels over the day of
// rollUpDayBeforeLateFacts once its late facts are in: 27 attempts, 26 of
// them delivered.
func checkDayAfterLateFacts(t *testing.T, db *store.DB, day store.Window) {
	t.Helper()
	chs, err := db.Channels(t.Context(), day)
	if err != nil || len(chs) != 1 || chs[0].Attempts != 27 || chs[0].Delivered != 26 {
		t.Errorf("Channels over the day = %+v, %v; want 27 SMS attempts, 26 delivered", chs, err)
	}
}

func TestPatchOnlyChangedHours(t *testing.T) {
	noSlack(t)
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		// No markClock: the views stamp an insert's marks and touched OTPs
		// a few milliseconds apart, and a version between the two would
		// count the first insert's OTPs as touched since it. The job runs
		// on the server's clock, a while after the insert.
		late := rollUpDayBeforeLateFacts(t, db)
		if err := db.Insert(t.Context(), &store.Batch{Deliveries: late}); err != nil {
			t.Fatal(err)
		}
		day := store.Window{From: rollStart, To: rollStart.AddDate(0, 0, 1)}
		if whole, partial, patched, err := store.PlannedHours(t.Context(), db, day); err != nil || whole != 21 || partial != 0 || patched != 3 {
			t.Errorf("the day after late facts plans %d whole, %d partial and %d patched hours (%v); want 21, 0 and 3 (10:00, 11:00 and 23:00)", whole, partial, patched, err)
		}
		checkDayAfterLateFacts(t, db, day)
		sameAsRaw(t, db, "a late fact splitting an attempt, before the job")
		// One plan for a request's answers: the same figures, each with
		// its own filters.
		once := store.PlanOnce(t.Context())
		for _, w := range []store.Window{day, {From: day.From, To: day.To, Channel: "VIBER"}, {From: day.From, To: day.To, Profile: "nobody"}, day} {
			got, err1 := db.Channels(once, w)
			want, err2 := db.Channels(t.Context(), w)
			if err1 != nil || err2 != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("Channels %+v planned once = %+v, %v; want %+v, %v", w, got, err1, want, err2)
			}
		}
		raw := day
		raw.Raw = true
		// sameDay checks the day's figures, read how, and the raw ones.
		sameDay := func(how string) {
			t.Helper()
			for _, w := range []store.Window{day, raw} {
				chs, err := db.Channels(t.Context(), w)
				if err != nil || len(chs) != 1 || chs[0].Attempts != 27 || chs[0].Pending != 1 {
					t.Errorf("Channels over the day (raw: %v), %s = %+v, %v; want 27 SMS attempts, 1 pending", w.Raw, how, chs, err)
				}
				fb, err := db.Fallback(t.Context(), w)
				if err != nil || fb.OTPs != 26 {
					t.Errorf("Fallback over the day (raw: %v), %s = %+v, %v; want 26 OTPs", w.Raw, how, fb, err)
				}
			}
		}
		// More touched OTPs than a list holds: the same, from the subquery.
		restore := store.SetMaxTouchedList(0)
		defer restore()
		if _, _, patched, err := store.PlannedHours(t.Context(), db, day); err != nil || patched != 3 {
			t.Errorf("without the touched list the day plans %d patched hours (%v); want 3", patched, err)
		}
		sameDay("the touched OTPs as a subquery")
		restore()
		// More than a bulk insert's worth: which dirty hours they changed
		// is not asked, and all of them — here the whole day — are
		// computed live instead of patched, to the same figures.
		restore = store.SetMaxTouchedSet(0)
		defer restore()
		if whole, partial, patched, err := store.PlannedHours(t.Context(), db, day); err != nil || whole != 0 || partial != 0 || patched != 0 {
			t.Errorf("past maxTouchedSet the day plans %d whole, %d partial and %d patched hours (%v); want every hour live", whole, partial, patched, err)
		}
		sameDay("the dirty hours live")
		restore()

		// Under one plan, the completeness of /channels' window counts the
		// attempts its channel rows counted: their pending attempts come
		// with them. OTP 1's open attempt (first fact 11:20) settles after
		// Channels answered; the answer's completeness still has it
		// pending, as the answer does, while a new plan sees it settled.
		once = store.PlanOnce(t.Context())
		if chs, err := db.Channels(once, day); err != nil || len(chs) != 1 || chs[0].Pending != 1 {
			t.Fatalf("Channels over the day = %+v, %v; want 1 pending", chs, err)
		}
		for _, now := range []time.Time{rollStart.Add(11*time.Hour + 30*time.Minute), rollStart.Add(12 * time.Hour)} {
			got, err1 := db.Completeness(once, day, now)
			want, err2 := db.Completeness(t.Context(), day, now)
			if err1 != nil || err2 != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("Completeness at %v after Channels, one plan = %+v, %v; want %+v, %v", now, got, err1, want, err2)
			}
		}
		settle := []store.DeliveryRow{deliveryAt(1, events.StatusDelivered, rollStart.Add(11*time.Hour+25*time.Minute))}
		if err := db.Insert(t.Context(), &store.Batch{Deliveries: settle}); err != nil {
			t.Fatal(err)
		}
		now := rollStart.Add(12 * time.Hour)
		if c, err := db.Completeness(once, day, now); err != nil || c.Pending != 1 || c.AwaitingReconciliation != 1 || c.SettledUntil == nil || !c.SettledUntil.Equal(rollStart.Add(11*time.Hour+20*time.Minute)) {
			t.Errorf("Completeness under the answer's plan after OTP 1 settled = %+v, %v; want the answer's view: 1 pending since 11:20, overdue at 12:00", c, err)
		}
		if c, err := db.Completeness(t.Context(), day, now); err != nil || c.Pending != 0 || !c.Final {
			t.Errorf("Completeness under a new plan after OTP 1 settled = %+v, %v; want nothing pending", c, err)
		}
	})
}

// With MaxLag, a dirty hour the job computed or checked within it is read as
// the job left it: the answer is the one before the facts stored since, and
// AsOf says since when it may be behind. Outside the lag, or once the job
// has run, the answer is exact again.
func TestMaxLagReadsDirtyHoursAsTheJobLeftThem(t *testing.T) {
	noSlack(t)
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		beforeJob := time.Now()
		late := rollUpDayBeforeLateFacts(t, db)
		day := store.Window{From: rollStart, To: rollStart.AddDate(0, 0, 1)}
		lag := day
		lag.MaxLag = time.Hour
		type answer struct {
			chs []store.ChannelStats
			fb  store.FallbackStats
			ts  store.Timeseries
			c   store.Completeness
		}
		now := rollStart.AddDate(0, 0, 2)
		read := func(w store.Window) (answer, time.Time, bool) {
			t.Helper()
			once := store.PlanOnce(t.Context())
			var a answer
			var err error
			if a.chs, err = db.Channels(once, w); err == nil {
				if a.fb, err = db.Fallback(once, w); err == nil {
					if a.ts, err = db.Timeseries(once, w, 3*time.Hour, nil); err == nil {
						a.c, err = db.Completeness(once, w, now)
					}
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			asOf, ok := store.AsOf(once)
			return a, asOf, ok
		}
		before, _, _ := read(day)
		if got, asOf, behind := read(lag); !reflect.DeepEqual(got, before) || behind {
			t.Errorf("with MaxLag and no dirty hour = %+v (behind since %v: %v); want the exact answer %+v", got, asOf, behind, before)
		}

		inserted := time.Now()
		if err := db.Insert(t.Context(), &store.Batch{Deliveries: late}); err != nil {
			t.Fatal(err)
		}
		after, _, behind := read(day)
		if reflect.DeepEqual(after, before) || behind {
			t.Fatalf("the late facts changed nothing, or an exact read says it is behind (%v)", behind)
		}
		checkDayAfterLateFacts(t, db, day)
		if whole, partial, patched, err := store.PlannedHours(t.Context(), db, lag); err != nil || whole != 24 || partial != 0 || patched != 0 {
			t.Errorf("with MaxLag the dirty day plans %d whole, %d partial, %d patched hours (%v); want every hour whole, as the job left it", whole, partial, patched, err)
		}
		got, asOf, behind := read(lag)
		if !reflect.DeepEqual(got, before) {
			t.Errorf("with MaxLag after late facts = %+v; want the answer before them %+v", got, before)
		}
		if !behind || asOf.Before(beforeJob.Truncate(time.Millisecond)) || !asOf.Before(inserted) {
			t.Errorf("AsOf = %v, %v; want a time between the job's start %v and the late facts' insert %v", asOf, behind, beforeJob, inserted)
		}
		// A lag shorter than the job's age: the dirty hours are patched.
		time.Sleep(20 * time.Millisecond)
		short := day
		short.MaxLag = 10 * time.Millisecond
		if _, _, patched, err := store.PlannedHours(t.Context(), db, short); err != nil || patched != 3 {
			t.Errorf("with a MaxLag shorter than the job's age the day plans %d patched hours (%v); want 3", patched, err)
		}
		if got, _, behind := read(short); !reflect.DeepEqual(got, after) || behind {
			t.Errorf("with a MaxLag shorter than the job's age = %+v (behind: %v); want the exact answer %+v", got, behind, after)
		}
		// Once the job has run, the lagged read is exact.
		time.Sleep(100 * time.Millisecond)
		if _, err := db.RefreshRollups(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got, _, behind := read(lag); !reflect.DeepEqual(got, after) || behind {
			t.Errorf("with MaxLag after the job = %+v (behind: %v); want the exact answer %+v", got, behind, after)
		}
	})
}

// The job does what readers do with a dirty hour: it patches the hours
// where an OTP touched since their version has rows (a new version: the
// stored rows but the touched OTPs', those computed again) and only checks
// the others (rolled_hour_checks): their version stays, and readers take
// them as clean from the check on, until a newer mark.
func TestJobPatchesOnlyChangedHours(t *testing.T) {
	noSlack(t)
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		insert := func(rows ...store.DeliveryRow) {
			t.Helper()
			if err := db.Insert(t.Context(), &store.Batch{Deliveries: rows}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond) // the job's version after the marks
		}
		versions := func() map[time.Time]uint64 {
			t.Helper()
			out := map[time.Time]uint64{}
			rows, err := db.Conn().Query(t.Context(), "SELECT hour, max(version) FROM rolled_hours GROUP BY hour")
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			for rows.Next() {
				var h time.Time
				var v uint64
				if err := rows.Scan(&h, &v); err != nil {
					t.Fatal(err)
				}
				out[h.UTC()] = v
			}
			return out
		}
		// recomputed are the hours whose version changed since before;
		// checked, those with a check of their unchanged version.
		recomputed := func(before map[time.Time]uint64) (got, checked []time.Time) {
			t.Helper()
			for h, v := range versions() {
				if v != before[h] {
					got = append(got, h)
				} else if count(t, db, fmt.Sprintf("SELECT count() FROM rolled_hour_checks WHERE hour = toDateTime(%d, 'UTC') AND version = %d AND checked_at > version", h.Unix(), v)) > 0 {
					checked = append(checked, h)
				}
			}
			slices.SortFunc(got, func(a, b time.Time) int { return a.Compare(b) })
			return got, checked
		}
		// Late facts: OTP 1's 10:30 delivery splits its attempt (hours 10
		// and 11 change), OTP 2's delivery at 00:10 the next day settles
		// its 23:50 attempt (hour 23; and the hour of the fact itself,
		// where a touched OTP's facts may start rows). They mark 49 hours
		// each dirty; the other hours' rows are as they were.
		late := rollUpDayBeforeLateFacts(t, db)
		before := versions()
		insert(late...)
		run, err := db.RefreshRollups(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		done := run.Hours
		// Computed again: the four, patched, and 2026-05-03 00:00, marked
		// for the first time (a day after OTP 2's delivery) and so computed
		// from its facts.
		if run.Computed != 1 || run.Patched != 4 || run.Checked != len(done)-5 {
			t.Errorf("the run after late facts computed %d hours, patched %d, checked %d of %d; want 1, 4 and the rest", run.Computed, run.Patched, run.Checked, len(done))
		}
		want := []time.Time{rollStart.Add(10 * time.Hour), rollStart.Add(11 * time.Hour), rollStart.Add(23 * time.Hour), rollStart.Add(24 * time.Hour), rollStart.Add(48 * time.Hour)}
		got, checked := recomputed(before)
		if !slices.Equal(got, want) {
			t.Errorf("after late facts the job computed %v again; want only the hours the touched OTPs have rows or facts in, and the one never rolled up: %v", got, want)
		}
		wantDone := hoursNear(late[0].Timestamp, late[1].Timestamp)
		if !sameHours(done, wantDone) || len(checked) != len(wantDone)-len(want) {
			t.Errorf("RefreshRollups brought %d hours up to date, %d of them checked; want %d, all but the %d computed", len(done), len(checked), len(wantDone), len(want))
		}
		day := store.Window{From: rollStart, To: rollStart.AddDate(0, 0, 1)}
		if whole, partial, patched, err := store.PlannedHours(t.Context(), db, day); err != nil || whole != 24 || partial != 0 || patched != 0 {
			t.Errorf("after the job the day plans %d whole, %d partial, %d patched hours (%v); want all 24 whole: the checked hours are clean", whole, partial, patched, err)
		}
		checkDayAfterLateFacts(t, db, day)
		sameAsRaw(t, db, "the job patched the changed hours and checked the others")

		// A checked hour is dirty again after a newer mark: readers patch
		// it from its check on, and the next run patches it alone.
		before = versions()
		insert(deliveryAt(3, events.StatusDispatched, rollStart.Add(5*time.Hour+40*time.Minute)))
		if _, _, patched, err := store.PlannedHours(t.Context(), db, day); err != nil || patched != 1 {
			t.Errorf("after a new fact in a checked hour the day plans %d patched hours (%v); want 1 (05:00)", patched, err)
		}
		sameAsRaw(t, db, "a new fact in a checked hour, before the job")
		// This run with the touched OTPs as a subquery, as when more than a
		// list holds moved: the same hours.
		restore := store.SetMaxTouchedList(0)
		defer restore()
		if _, err := db.RefreshRollups(t.Context()); err != nil {
			t.Fatal(err)
		}
		restore()
		if got, _ := recomputed(before); !slices.Equal(got, []time.Time{rollStart.Add(5 * time.Hour)}) {
			t.Errorf("after a new fact at 05:40 the job computed %v again; want only 05:00", got)
		}
		sameAsRaw(t, db, "a new fact in a checked hour, after the job")

		// More touched than maxTouchedSet (as after a bulk insert): the run
		// computes every dirty hour again rather than patch or check any,
		// to the same figures.
		before = versions()
		insert(deliveryAt(3, events.StatusDelivered, rollStart.Add(5*time.Hour+45*time.Minute)))
		restore = store.SetMaxTouchedSet(0)
		defer restore()
		run, err = db.RefreshRollups(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		restore()
		got, _ = recomputed(before)
		if run.Patched != 0 || run.Checked != 0 || run.Computed != len(run.Hours) || len(got) != len(run.Hours) || !slices.Contains(got, rollStart.Add(5*time.Hour)) {
			t.Errorf("past maxTouchedSet the run computed %d, patched %d, checked %d hours, %d with a new version; want every one of the %d computed", run.Computed, run.Patched, run.Checked, len(got), len(run.Hours))
		}
		sameAsRaw(t, db, "every dirty hour computed again, past maxTouchedSet")
	})
}

// The longest touched list a plan names fits in a query: the list is
// written once and max_query_size raised for it.
func TestTouchedListFitsAQuery(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		const n = 20000 // maxTouchedList
		if got, err := store.CountTouchedList(t.Context(), db, n); err != nil || got != n+1 {
			t.Errorf("a query over a list of %d touched OTPs counted %d (%v); want %d", n, got, err, n+1)
		}
	})
}

// A fact marks exactly the hours it can change, and the job's work is those
// hours: an event three years older than the rest costs its 49 hours, not
// the years between.
func TestRollupsRecomputeOnlyDirtyHours(t *testing.T) {
	noSlack(t)
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		markClock(t, db)
		recent := delivery(2, events.StatusDelivered) // 2026-05-01 12:00:02
		if err := db.Insert(t.Context(), &store.Batch{Deliveries: []store.DeliveryRow{recent}}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.RefreshRollups(t.Context()); err != nil {
			t.Fatal(err)
		}

		old := delivery(1, events.StatusDelivered)
		old.Timestamp = time.Date(2023, 5, 1, 12, 30, 0, 0, time.UTC)
		old.EventID = events.DeliveryID(&old.DeliveryStatus)
		status := store.OTPStatusRow{OTPStatus: events.OTPStatus{OTPID: recent.OTPID, API: "v4", Status: events.OTPVerified,
			ObservedAt: time.Date(2026, 5, 1, 12, 5, 0, 0, time.UTC), Source: events.SourcePoll, SampleRate: 1}, EventID: "st-recent"}
		var before time.Time
		if err := db.Conn().QueryRow(t.Context(), "SELECT max(inserted_at) FROM rollup_dirty").Scan(&before); err != nil {
			t.Fatal(err)
		}
		if err := db.Insert(t.Context(), &store.Batch{Deliveries: []store.DeliveryRow{old}, Statuses: []store.OTPStatusRow{status}}); err != nil {
			t.Fatal(err)
		}
		want := hoursNear(old.Timestamp, status.ObservedAt)
		var marked []time.Time
		rows, err := db.Conn().Query(t.Context(), fmt.Sprintf("SELECT DISTINCT hour FROM rollup_dirty WHERE inserted_at > fromUnixTimestamp64Milli(%d) ORDER BY hour", before.UnixMilli()))
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var h time.Time
			if err := rows.Scan(&h); err != nil {
				t.Fatal(err)
			}
			marked = append(marked, h.UTC())
		}
		rows.Close()
		if !sameHours(marked, want) {
			t.Fatalf("an event and a status marked %d hours %v … ; want the %d within a day of each", len(marked), marked[:min(3, len(marked))], len(want))
		}

		done, err := hoursOf(db.RefreshRollups(t.Context()))
		if err != nil {
			t.Fatal(err)
		}
		if !sameHours(done, want) {
			t.Fatalf("RefreshRollups computed %d hours; want only the %d marked", len(done), len(want))
		}
		w := store.Window{From: old.Timestamp.Truncate(time.Hour), To: recent.Timestamp.Add(time.Hour).Truncate(time.Hour)}
		chs, err := db.Channels(t.Context(), w)
		if err != nil {
			t.Fatal(err)
		}
		if len(chs) != 1 || chs[0].Attempts != 2 || chs[0].Verification == nil || chs[0].Verification.Verified != 1 {
			t.Errorf("Channels over both = %+v; want 2 SMS attempts, one verified", chs)
		}
		if whole, _, err := store.RolledHours(t.Context(), db, w); err != nil || whole != 50 {
			t.Fatalf("the window reads %d rolled-up hours (%v); want 50: 25 of each fact, the rest never held one", whole, err)
		}
		c, err := db.Completeness(t.Context(), w, time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC))
		if err != nil || !c.Final || c.Pending != 0 {
			t.Errorf("Completeness over rolled-up hours = %+v, %v; want final, nothing pending", c, err)
		}
	})
}

// Facts stored before migration 0008 are marked by its backfill, so their
// hours are rolled up rather than read as empty.
func TestRollupBackfillMarksStoredFacts(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		e := delivery(1, events.StatusDelivered)
		if err := db.Insert(t.Context(), &store.Batch{Deliveries: []store.DeliveryRow{e}}); err != nil {
			t.Fatal(err)
		}
		if err := db.Conn().Exec(t.Context(), "TRUNCATE TABLE rollup_dirty"); err != nil {
			t.Fatal(err)
		}
		ms, err := schema.Migrations(schema.Options{})
		if err != nil {
			t.Fatal(err)
		}
		ran := 0
		for _, m := range ms {
			for _, st := range m.Statements {
				if m.Version == 8 && strings.Contains(st, "INSERT INTO rollup_dirty") {
					if err := db.Conn().Exec(t.Context(), st); err != nil {
						t.Fatalf("backfill: %v", err)
					}
					ran++
				}
			}
		}
		if ran != 1 {
			t.Fatalf("migration 0008 has %d backfills of rollup_dirty; want 1", ran)
		}
		if n := count(t, db, "SELECT uniqExact(hour) FROM rollup_dirty"); n != 49 {
			t.Errorf("the backfill marked %d hours for one stored fact; want 49", n)
		}
	})
}

// An hour whose facts retention has begun to delete keeps its rolled-up
// figures when a late fact lands near it: computed again from what is
// left, it lost every attempt whose facts were gone. A recent hour is
// still computed again from its facts.
func TestRetentionFreezesOldHours(t *testing.T) {
	noSlack(t)
	// As for an hour last computed more than a day ago: it cannot be
	// patched, only computed again.
	t.Cleanup(store.SetPatchAge(0))
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		now := time.Now().UTC()
		old := now.AddDate(0, 0, -10).Truncate(time.Hour)
		recent := now.Add(-3 * time.Hour).Truncate(time.Hour)
		var rows []store.DeliveryRow
		for i := range 5 {
			for j, h := range []time.Time{old, recent} {
				ts := h.Add(time.Duration(5+i) * time.Minute)
				rows = append(rows, deliveryAt(200+10*j+i, events.StatusDispatched, ts), deliveryAt(200+10*j+i, events.StatusDelivered, ts.Add(2*time.Second)))
			}
		}
		if err := db.Insert(t.Context(), &store.Batch{Deliveries: rows}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // the job's version after the marks
		if _, err := db.RefreshRollups(t.Context()); err != nil {
			t.Fatal(err)
		}
		attempts := func(h time.Time) (n, delivered uint64) {
			t.Helper()
			chs, err := db.Channels(t.Context(), store.Window{From: h, To: h.Add(time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range chs {
				n, delivered = n+c.Attempts, delivered+c.Delivered
			}
			return n, delivered
		}
		if n, _ := attempts(old); n != 5 {
			t.Fatalf("old hour: %d attempts rolled up; want 5", n)
		}

		// Retention of 3 days deletes the old hour's facts.
		if _, err := db.ApplyRetention(t.Context(), store.RetentionConfig{Events: store.Retention(3 * 24 * time.Hour), Attempts: store.Retention(3 * 24 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
		for _, table := range []string{"channel_events", "channel_deliveries", "delivery_events"} {
			if err := db.Conn().Exec(t.Context(), "OPTIMIZE TABLE "+table+" FINAL"); err != nil {
				t.Fatal(err)
			}
		}
		if n := count(t, db, fmt.Sprintf("SELECT count() FROM channel_events WHERE day <= toDate(%d)", old.Unix())); n != 0 {
			t.Fatalf("%d channel_events rows of the old day left after retention; the test proves nothing", n)
		}

		// A late fact near each hour: a new OTP dispatched in the old hour,
		// and a late DISPATCHED that opens a sixth attempt in the recent one.
		late := []store.DeliveryRow{deliveryAt(299, events.StatusDispatched, old.Add(40*time.Minute)), deliveryAt(298, events.StatusDispatched, recent.Add(40*time.Minute))}
		if err := db.Insert(t.Context(), &store.Batch{Deliveries: late}); err != nil {
			t.Fatal(err)
		}
		for _, when := range []string{"between job runs", "after a run"} {
			if when == "after a run" {
				time.Sleep(100 * time.Millisecond)
				if _, err := db.RefreshRollups(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			if n, d := attempts(old); n != 5 || d != 5 {
				t.Errorf("%s: the old hour reads %d attempts, %d delivered; want its 5 rolled up, both", when, n, d)
			}
			if n, d := attempts(recent); n != 6 || d != 5 {
				t.Errorf("%s: the recent hour reads %d attempts, %d delivered; want 6 and 5, its late fact counted", when, n, d)
			}
		}
		if n := count(t, db, fmt.Sprintf("SELECT count() FROM hour_attempts WHERE hour = toDateTime(%d, 'UTC')", old.Unix())); n == 0 {
			t.Errorf("the old hour's stored attempts are gone")
		}
	})
}

// Two channels delivered at the same instant (tyntec's times may be whole
// seconds): the journey's outcome and delivering channel are the earlier
// attempt's, whichever way the figures are read, as the OTP lookup says.
func TestDeliveredAtOnceOnTwoChannels(t *testing.T) {
	noSlack(t)
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		h := time.Now().UTC().Add(-5 * time.Hour).Truncate(time.Hour)
		var rows []store.DeliveryRow
		const n = 20
		for i := range n {
			at := h.Add(time.Duration(i) * time.Minute)
			sms, viber := deliveryAt(400+i, events.StatusDispatched, at), deliveryAt(400+i, events.StatusDispatched, at.Add(time.Second))
			viber.Channel = events.ChannelViber
			smsOK, viberOK := deliveryAt(400+i, events.StatusDelivered, at.Add(5*time.Second)), deliveryAt(400+i, events.StatusDelivered, at.Add(5*time.Second))
			viberOK.Channel = events.ChannelViber
			for _, r := range []*store.DeliveryRow{&viber, &viberOK} {
				r.EventID = events.DeliveryID(&r.DeliveryStatus)
			}
			rows = append(rows, sms, viber, smsOK, viberOK)
		}
		if err := db.Insert(t.Context(), &store.Batch{Deliveries: rows}); err != nil {
			t.Fatal(err)
		}
		w := store.Window{From: h, To: h.Add(time.Hour)}
		check := func(when string, w store.Window) {
			t.Helper()
			fb, err := db.Fallback(t.Context(), w)
			if err != nil {
				t.Fatal(err)
			}
			if fb.OTPs != n || fb.Outcomes.DeliveredPrimary != n {
				t.Errorf("%s: %d journeys, outcomes %+v; want all %d delivered on their primary, SMS", when, fb.OTPs, fb.Outcomes, n)
			}
		}
		raw := w
		raw.Raw = true
		check("raw", raw)
		check("live", w)
		time.Sleep(100 * time.Millisecond)
		if _, err := db.RefreshRollups(t.Context()); err != nil {
			t.Fatal(err)
		}
		check("rolled up", w)
		j, err := db.Journey(t.Context(), rows[0].OTPID, time.Now())
		if err != nil || j.Outcome != store.OutcomeDeliveredPrimary {
			t.Errorf("Journey = %s, %v; want %s", j.Outcome, err, store.OutcomeDeliveredPrimary)
		}
	})
}
