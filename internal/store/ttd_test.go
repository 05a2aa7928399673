package store_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/store"
)

// A journey whose first known fact is its DELIVERED (the DISPATCHED webhook
// lost, not recovered) is delivered but has no time to deliver: not a 0 in
// the percentiles, live or rolled up, and none in Journey. An hour an
// older build summed with that 0 is summed again from its stored rows by
// the job's next run, facts or no facts.
func TestTimeToDeliverNeedsAKnownStart(t *testing.T) {
	noSlack(t)
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		markClock(t, db)
		t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
		b := insertDeliveries(t, db, t0, []delivered{{1, 0, 5 * time.Second}, {2, -1, time.Minute}, {3, 2 * time.Minute, 9 * time.Second}})
		hour := store.Window{From: t0.Truncate(time.Hour), To: t0.Truncate(time.Hour).Add(time.Hour)}
		day := store.Window{From: t0.Truncate(24 * time.Hour), To: t0.Truncate(24 * time.Hour).Add(24 * time.Hour)}
		// want is the time to deliver of journeys 1 and 3 (5 s, 9 s):
		// quantileExact's element ⌊q·n⌋ is the 9 s one at 0.5 and 0.95.
		// With journey 2's 0 it would be 5 s at 0.5.
		check := func(when string, wantP50 float64) {
			t.Helper()
			for _, w := range []store.Window{hour, day} {
				for _, raw := range []bool{true, false} {
					w.Raw = raw
					fb, err := db.Fallback(t.Context(), w)
					if err != nil {
						t.Fatal(err)
					}
					want := wantP50
					if raw {
						want = 9000 // the facts, by today's definition
					}
					if fb.Outcomes.DeliveredPrimary != 3 || fb.TimeToDeliverMS == nil || fb.TimeToDeliverMS.P50 != want || fb.TimeToDeliverMS.P95 != 9000 {
						t.Errorf("%s: Fallback(%s, raw=%v) = %+v, time to deliver %+v; want 3 delivered, p50 %v ms, p95 9000", when, w.To.Sub(w.From), raw, fb.Outcomes, fb.TimeToDeliverMS, want)
					}
				}
			}
		}
		check("live", 9000)
		if _, err := db.RefreshRollups(t.Context()); err != nil {
			t.Fatal(err)
		}
		if whole, _, err := store.RolledHours(t.Context(), db, hour); err != nil || whole != 1 {
			t.Fatalf("the hour reads %d rolled-up hours (%v); want 1", whole, err)
		}
		check("rolled up", 9000)
		for otp, want := range map[int]string{1: "5000", 2: "<nil>", 3: "9000"} {
			j, err := db.Journey(t.Context(), deliveryAt(otp, events.StatusDelivered, t0).OTPID, t0.Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(deref(j.TimeToDeliverMS)); j.Outcome != "delivered_primary" || got != want {
				t.Errorf("Journey(%d) = %s, time to deliver %s; want delivered_primary, %s", otp, j.Outcome, got, want)
			}
		}

		// What an older build summed: journey 2 at 0 ms in the hour's
		// histogram, at the hour's version, summed before schema 0025
		// (definition 0, journeys' j_timed 0).
		v := count(t, db, fmt.Sprintf("SELECT max(version) FROM rolled_hours WHERE hour = toDateTime(%d, 'UTC')", hour.From.Unix()))
		for _, q := range []string{
			"INSERT INTO hourly_latency (metric, key, bucket, hour, version, profile_id, ms, n) VALUES ('ttd', 'SMS', 0, toDateTime(%[1]d, 'UTC'), %[2]d, '%[3]s', 0, 1)",
			"INSERT INTO hourly_latency_buckets (hour, version, metric, key, profile_id, bucket, n) VALUES (toDateTime(%[1]d, 'UTC'), %[2]d, 'ttd', 'SMS', '%[3]s', 0, 1)",
			"ALTER TABLE rolled_hours UPDATE definition = 0 WHERE hour = toDateTime(%[1]d, 'UTC') AND version = %[2]d SETTINGS mutations_sync = 2",
			"ALTER TABLE hour_journeys UPDATE j_timed = 0 WHERE hour = toDateTime(%[1]d, 'UTC') AND version = %[2]d SETTINGS mutations_sync = 2",
		} {
			if err := db.Conn().Exec(t.Context(), fmt.Sprintf(q, hour.From.Unix(), v, b.Deliveries[0].ProfileID)); err != nil {
				t.Fatal(err)
			}
		}
		w := hour
		if fb, err := db.Fallback(t.Context(), w); err != nil || fb.TimeToDeliverMS == nil || fb.TimeToDeliverMS.P50 != 5000 {
			t.Fatalf("the older build's hour: time to deliver %+v (%v); want p50 5000 (the test's emulation did not take)", fb.TimeToDeliverMS, err)
		}
		// The facts are gone (retention): the hour is summed from its rows.
		if _, err := db.ApplyRetention(t.Context(), store.RetentionConfig{Events: store.Retention(30 * 24 * time.Hour), Attempts: store.Retention(30 * 24 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
		for _, table := range []string{"delivery_events", "channel_events"} {
			if err := db.Conn().Exec(t.Context(), "TRUNCATE TABLE "+table); err != nil {
				t.Fatal(err)
			}
		}
		run, err := refreshLater(t, db)
		if err != nil {
			t.Fatal(err)
		}
		if run.Redefined != 1 || len(run.Hours) != 1 || !run.Hours[0].Equal(hour.From) || run.Computed+run.Patched != 0 {
			t.Errorf("the run after the older build's hour = %+v; want that hour redefined, nothing computed or patched", run)
		}
		// Raw now reads no facts: compare the rolled-up answers only.
		for _, w := range []store.Window{hour, day} {
			fb, err := db.Fallback(t.Context(), w)
			if err != nil || fb.Outcomes.DeliveredPrimary != 3 || fb.TimeToDeliverMS == nil || fb.TimeToDeliverMS.P50 != 9000 || fb.TimeToDeliverMS.P95 != 9000 {
				t.Errorf("redefined, Fallback(%s) = %+v, %+v (%v); want 3 delivered, p50 and p95 9000", w.To.Sub(w.From), fb.Outcomes, fb.TimeToDeliverMS, err)
			}
			chs, err := db.Channels(t.Context(), w)
			if err != nil || len(chs) != 1 || chs[0].Delivered != 3 || chs[0].LatencyMS == nil || chs[0].LatencyMS.P50 != 9000 {
				t.Errorf("redefined, Channels(%s) = %+v (%v); want 3 SMS delivered, latency p50 9000", w.To.Sub(w.From), chs, err)
			}
		}
		if run, err := refreshLater(t, db); err != nil || run.Redefined != 0 || len(run.Hours) != 0 {
			t.Errorf("the next run = %+v, %v; want nothing to redefine", run, err)
		}
	})
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// tyntec's times may be whole seconds: a DISPATCHED and DELIVERED within one
// second carry one time, a delivery of 0 ms, counted like any other, live
// and rolled up — unlike a DELIVERED with no DISPATCHED, which has no known
// start. Hours with such a 0 are not taken for hours an older build summed.
func TestTimeToDeliverOfOneInstant(t *testing.T) {
	noSlack(t)
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		markClock(t, db)
		t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
		insertDeliveries(t, db, t0, []delivered{{1, 0, 0}, {2, time.Minute, 0}, {3, 2 * time.Minute, 4 * time.Second}, {4, -1, 3 * time.Minute}, {5, 4 * time.Minute, 6 * time.Second}})
		hour := store.Window{From: t0.Truncate(time.Hour), To: t0.Truncate(time.Hour).Add(time.Hour)}
		day := store.Window{From: t0.Truncate(24 * time.Hour), To: t0.Truncate(24 * time.Hour).Add(24 * time.Hour)}
		part := store.Window{From: t0.Add(-time.Minute), To: t0.Add(10 * time.Minute)}
		// Known: 0, 0, 4 s, 6 s; quantileExact's element ⌊q·n⌋ is 4 s at
		// 0.5 and 6 s at 0.95. Counting OTP 4 at 0 ms would make p50 0;
		// leaving out the 0 ms deliveries, 6 s.
		check := func(when string) {
			t.Helper()
			for _, w := range []store.Window{hour, day, part} {
				for _, raw := range []bool{true, false} {
					w.Raw = raw
					fb, err := db.Fallback(t.Context(), w)
					if err != nil {
						t.Fatal(err)
					}
					if fb.Outcomes.DeliveredPrimary != 5 || fb.TimeToDeliverMS == nil || fb.TimeToDeliverMS.P50 != 4000 || fb.TimeToDeliverMS.P95 != 6000 {
						t.Errorf("%s: Fallback(%s, raw=%v) = %+v, time to deliver %+v; want 5 delivered, p50 4000 ms, p95 6000", when, w.To.Sub(w.From), raw, fb.Outcomes, fb.TimeToDeliverMS)
					}
				}
			}
		}
		check("live")
		if _, err := db.RefreshRollups(t.Context()); err != nil {
			t.Fatal(err)
		}
		check("rolled up")
		for otp, want := range map[int]string{1: "0", 3: "4000", 4: "<nil>"} {
			j, err := db.Journey(t.Context(), deliveryAt(otp, events.StatusDelivered, t0).OTPID, t0.Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(deref(j.TimeToDeliverMS)); got != want {
				t.Errorf("Journey(%d): time to deliver %s; want %s", otp, got, want)
			}
		}
		if run, err := refreshLater(t, db); err != nil || run.Redefined != 0 || len(run.Hours) != 0 {
			t.Errorf("the next run = %+v, %v; want nothing to redefine (the 0s are of this definition)", run, err)
		}
		check("after the next run")
	})
}

// delivered is an SMS OTP delivered took after its DISPATCHED at start
// (from t0; -1: the DISPATCHED was lost, the DELIVERED at t0+took).
type delivered struct {
	otp   int
	start time.Duration
	took  time.Duration
}

// insertDeliveries inserts the facts of ds and returns them.
func insertDeliveries(t *testing.T, db *store.DB, t0 time.Time, ds []delivered) store.Batch {
	t.Helper()
	var b store.Batch
	for _, d := range ds {
		if d.start >= 0 {
			b.Deliveries = append(b.Deliveries, deliveryAt(d.otp, events.StatusDispatched, t0.Add(d.start)))
		}
		b.Deliveries = append(b.Deliveries, deliveryAt(d.otp, events.StatusDelivered, t0.Add(max(d.start, 0)+d.took)))
	}
	if err := db.Insert(t.Context(), &b); err != nil {
		t.Fatal(err)
	}
	return b
}

// An hour an older build summed (before schema 0025, or after it by a
// rollback) has journeys that do not say whether their time to deliver is
// known (j_timed 0, read by the older rule, which leaves a delivery of one
// instant out). While its facts are kept the job computes it again from
// them: when nothing touched it (redefined) and when a late fact did
// (computed, not patched, since a patch would keep the older rows).
func TestOlderDefinitionComputedAgain(t *testing.T) {
	noSlack(t)
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		// The job's versions by the server's clock, each run well after
		// the inserts before it: a late fact's run then touches only its
		// own OTP, as in production.
		settle := func() { time.Sleep(100 * time.Millisecond) }
		t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
		b := insertDeliveries(t, db, t0, []delivered{{1, 0, 0}, {2, time.Minute, 0}, {3, 2 * time.Minute, 4 * time.Second}, {4, -1, 3 * time.Minute}, {5, 4 * time.Minute, 6 * time.Second}})
		hour := store.Window{From: t0.Truncate(time.Hour), To: t0.Truncate(time.Hour).Add(time.Hour)}
		day := store.Window{From: t0.Truncate(24 * time.Hour), To: t0.Truncate(24 * time.Hour).Add(24 * time.Hour)}
		part := store.Window{From: t0.Add(-time.Minute), To: t0.Add(10 * time.Minute)}
		check := func(when string, windows []store.Window, delivered uint64, p50 float64) {
			t.Helper()
			for _, w := range windows {
				fb, err := db.Fallback(t.Context(), w)
				if err != nil {
					t.Fatal(err)
				}
				if fb.Outcomes.DeliveredPrimary != delivered || fb.TimeToDeliverMS == nil || fb.TimeToDeliverMS.P50 != p50 || fb.TimeToDeliverMS.P95 != 6000 {
					t.Errorf("%s: Fallback(%s) = %+v, time to deliver %+v; want %d delivered, p50 %v ms, p95 6000", when, w.To.Sub(w.From), fb.Outcomes, fb.TimeToDeliverMS, delivered, p50)
				}
			}
		}
		hourSQL := fmt.Sprintf("toDateTime(%d, 'UTC')", hour.From.Unix())
		current := fmt.Sprintf("hour = %s AND version = (SELECT max(version) FROM rolled_hours WHERE hour = %s)", hourSQL, hourSQL)
		asAnOlderBuild := func() {
			t.Helper()
			v := count(t, db, "SELECT max(version) FROM rolled_hours WHERE hour = "+hourSQL)
			for _, q := range []string{
				"ALTER TABLE rolled_hours UPDATE definition = 0 WHERE hour = %[1]s AND version = %[2]d SETTINGS mutations_sync = 2",
				"ALTER TABLE hour_journeys UPDATE j_timed = 0 WHERE hour = %[1]s AND version = %[2]d SETTINGS mutations_sync = 2",
			} {
				if err := db.Conn().Exec(t.Context(), fmt.Sprintf(q, hourSQL, v)); err != nil {
					t.Fatal(err)
				}
			}
		}
		underToday := func(when string) {
			t.Helper()
			if n := count(t, db, "SELECT count() FROM hour_journeys WHERE j_timed = 0 AND "+current); n != 0 {
				t.Errorf("%s: %d journeys of the hour under the older definition; want none", when, n)
			}
			if d := count(t, db, "SELECT toUInt64(any(definition)) FROM rolled_hours WHERE "+current); d != 1 {
				t.Errorf("%s: the hour's definition %d; want 1", when, d)
			}
		}
		settle()
		if _, err := db.RefreshRollups(t.Context()); err != nil {
			t.Fatal(err)
		}

		// Known: 0, 0, 4 s, 6 s: p50 4 s. By the older rule the two of one
		// instant are left out: 4 s, 6 s, p50 6 s, which the window with
		// partial hours reads from the hour's stored journeys.
		asAnOlderBuild()
		check("the older build's hour", []store.Window{part}, 5, 6000)
		settle()
		run, err := db.RefreshRollups(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if run.Redefined != 1 || run.Computed+run.Patched != 0 {
			t.Errorf("the run after the older build's hour = %+v; want that hour redefined, nothing computed or patched", run)
		}
		underToday("redefined")
		check("redefined", []store.Window{hour, day, part}, 5, 4000)

		// A late fact in an hour of the older definition: a sixth OTP,
		// delivered in 2 s. Known 0, 0, 2, 4, 6 s: p50 2 s; a patch would
		// keep the five older journeys under the older rule (p50 4 s).
		asAnOlderBuild()
		late := store.Batch{Deliveries: []store.DeliveryRow{deliveryAt(6, events.StatusDispatched, t0.Add(5*time.Minute)), deliveryAt(6, events.StatusDelivered, t0.Add(5*time.Minute+2*time.Second))}}
		late.Deliveries[0].ProfileID, late.Deliveries[1].ProfileID = b.Deliveries[0].ProfileID, b.Deliveries[0].ProfileID
		if err := db.Insert(t.Context(), &late); err != nil {
			t.Fatal(err)
		}
		settle()
		if run, err = db.RefreshRollups(t.Context()); err != nil {
			t.Fatal(err)
		}
		if run.Patched != 0 || run.Computed < 1 {
			t.Errorf("the run after a late fact in the older build's hour = %+v; want it computed, nothing patched", run)
		}
		underToday("after a late fact")
		check("after a late fact", []store.Window{hour, day, part}, 6, 2000)
	})
}

// Facts retention lengthened after it deleted facts brings nothing back:
// hours whose rollups outlived their facts (--retention-rollups 0 over a
// 30-day facts retention, then raised to forever) are not frozen by the
// facts' TTL any more, yet computed again from their facts they would hold
// nothing. An hour an older build summed (definition 0) is brought under
// today's definitions with its attempts, and a late fact into such an hour
// is counted beside them rather than in their place.
func TestLengthenedRetentionKeepsRolledUpHours(t *testing.T) {
	noSlack(t)
	// As for an hour last computed more than a day ago: a late fact's hour
	// is computed again, not patched.
	t.Cleanup(store.SetPatchAge(0))
	for _, olderBuild := range []bool{true, false} {
		t.Run(fmt.Sprintf("olderBuild=%v", olderBuild), func(t *testing.T) { lengthenedRetention(t, olderBuild) })
	}
}

// lengthenedRetention is TestLengthenedRetentionKeepsRolledUpHours with
// the hours summed by an older build, or by this one (only the late fact
// computes them again).
func lengthenedRetention(t *testing.T, olderBuild bool) {
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		old := time.Now().UTC().AddDate(0, 0, -40).Truncate(time.Hour)
		var rows []store.DeliveryRow
		for h := range 3 {
			for i := range 5 {
				ts := old.Add(time.Duration(h)*time.Hour + time.Duration(5+i)*time.Minute)
				rows = append(rows, deliveryAt(700+10*h+i, events.StatusDispatched, ts), deliveryAt(700+10*h+i, events.StatusDelivered, ts.Add(2*time.Second)))
			}
		}
		if err := db.Insert(t.Context(), &store.Batch{Deliveries: rows}); err != nil {
			t.Fatal(err)
		}
		refresh := func() store.RollupRun {
			t.Helper()
			time.Sleep(100 * time.Millisecond) // the job's version after the marks
			run, err := db.RefreshRollups(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			return run
		}
		attempts := func(from time.Time, hours int) (n, delivered uint64) {
			t.Helper()
			chs, err := db.Channels(t.Context(), store.Window{From: from, To: from.Add(time.Duration(hours) * time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range chs {
				n, delivered = n+c.Attempts, delivered+c.Delivered
			}
			return n, delivered
		}
		check := func(when string, lastHour uint64) {
			t.Helper()
			for h, want := range []uint64{5, 5, lastHour} {
				if n, d := attempts(old.Add(time.Duration(h)*time.Hour), 1); n != want || d != 5 {
					t.Errorf("%s: hour %d reads %d attempts, %d delivered; want %d, 5", when, h, n, d, want)
				}
			}
			if n, d := attempts(old, 3); n != 10+lastHour || d != 15 {
				t.Errorf("%s: the three hours read %d attempts, %d delivered; want %d, 15", when, n, d, 10+lastHour)
			}
		}
		refresh()
		check("rolled up", 5)

		// What a build before schema 0025 summed: every hour definition 0.
		for _, q := range []string{
			"ALTER TABLE rolled_hours UPDATE definition = 0 WHERE 1 SETTINGS mutations_sync = 2",
			"ALTER TABLE hour_journeys UPDATE j_timed = 0 WHERE 1 SETTINGS mutations_sync = 2",
		} {
			if !olderBuild {
				break
			}
			if err := db.Conn().Exec(t.Context(), q); err != nil {
				t.Fatal(err)
			}
		}
		// 30 days of facts, the rollups kept forever: the old hours' facts
		// go, their rollups stay.
		thirty := store.Retention(30 * 24 * time.Hour)
		if _, err := db.ApplyRetention(t.Context(), store.RetentionConfig{Events: thirty, Attempts: thirty}); err != nil {
			t.Fatal(err)
		}
		for _, table := range []string{"channel_events", "channel_deliveries", "delivery_events"} {
			if err := db.Conn().Exec(t.Context(), "OPTIMIZE TABLE "+table+" FINAL"); err != nil {
				t.Fatal(err)
			}
		}
		if n := count(t, db, "SELECT count() FROM channel_events"); n != 0 {
			t.Fatalf("%d channel_events rows left after retention; the test proves nothing", n)
		}
		check("after retention", 5)
		// The operator then keeps the facts forever: the old hours are no
		// longer frozen by the facts' TTL, but their facts stay gone.
		if _, err := db.ApplyRetention(t.Context(), store.RetentionConfig{}); err != nil {
			t.Fatal(err)
		}
		redefined := 0
		for range 10 {
			run := refresh()
			if run.Redefined == 0 {
				break
			}
			redefined += run.Redefined
		}
		if olderBuild && redefined < 3 {
			t.Errorf("%d hours redefined; want the old ones among them", redefined)
		}
		if n := count(t, db, "SELECT count() FROM (SELECT hour FROM rolled_hours GROUP BY hour HAVING argMax(definition, version) < 1)"); n != 0 {
			t.Errorf("%d hours left under the older definition", n)
		}
		check("redefined", 5)

		// A late fact: a new OTP dispatched in the last old hour.
		late := []store.DeliveryRow{deliveryAt(799, events.StatusDispatched, old.Add(2*time.Hour+40*time.Minute))}
		if err := db.Insert(t.Context(), &store.Batch{Deliveries: late}); err != nil {
			t.Fatal(err)
		}
		if run := refresh(); run.Computed == 0 {
			t.Errorf("the run after the late fact = %+v; want its hours computed again", run)
		}
		check("after a late fact", 6)
	})
}
