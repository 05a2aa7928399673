package store_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/store"
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
// events.
func sameAsRaw(t *testing.T, db *store.DB, when string) {
	t.Helper()
	end := rollStart.AddDate(0, 0, 7)
	for _, w := range []store.Window{
		{From: rollStart, To: end},
		{From: rollStart.Add(7*time.Hour + 30*time.Minute), To: end.Add(-35 * time.Hour)},
		{From: rollStart.AddDate(0, 0, 1), To: rollStart.AddDate(0, 0, 4)},
		{From: rollStart, To: end, Profile: "prof-b"},
		{From: rollStart, To: end, Channel: "SMS"},
		{From: rollStart.Add(time.Hour), To: end, Channel: "VIBER", Profile: "prof-a"},
		{From: rollStart, To: end, Channel: "WHATSAPP"},
		{From: rollStart, To: end, Profile: "nobody"},
	} {
		raw := w
		raw.Raw = true
		for _, ep := range []string{"channels", "fallback"} {
			var got, want any
			var err1, err2 error
			if ep == "channels" {
				got, err1 = db.Channels(t.Context(), w)
				want, err2 = db.Channels(t.Context(), raw)
			} else {
				got, err1 = db.Fallback(t.Context(), w)
				want, err2 = db.Fallback(t.Context(), raw)
			}
			if err1 != nil || err2 != nil {
				t.Fatalf("%s %s %+v: %v, %v", when, ep, w, err1, err2)
			}
			if !reflect.DeepEqual(got, want) {
				g, _ := json.Marshal(got)
				r, _ := json.Marshal(want)
				t.Errorf("%s: %s %+v from rollups differs from raw events:\n got %s\nwant %s", when, ep, w, g, r)
			}
		}
	}
}

func rolledDays(t *testing.T, db *store.DB) int {
	t.Helper()
	n, err := store.RolledDays(t.Context(), db, store.Window{From: rollStart, To: rollStart.AddDate(0, 0, 7)})
	if err != nil {
		t.Fatalf("RolledDays: %v", err)
	}
	return n
}

func TestRollupsEqualRawEvents(t *testing.T) {
	slack := store.RollupSlack
	store.RollupSlack = 0 // this test's inserts are visible when Insert returns
	defer func() { store.RollupSlack = slack }()
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		// The rollups' clock stands a millisecond after the newest row: each
		// run's version is newer than every row inserted before it, and the
		// rows inserted after a run (which takes milliseconds) are not older
		// than its version. Waiting for the wall clock to move on between
		// inserts and runs gave the same; this needs no wait.
		store.SetRollupClock(db, func() time.Time {
			var newest time.Time
			q := "SELECT greatest((SELECT max(inserted_at) FROM delivery_events), (SELECT max(inserted_at) FROM otp_status))"
			if err := db.Conn().QueryRow(t.Context(), q).Scan(&newest); err != nil {
				t.Errorf("newest row: %v", err)
			}
			return newest.Add(time.Millisecond)
		})
		r := rand.New(rand.NewPCG(6, 6))
		first, second, statuses := rollupData(r, 6, 40, "")
		for _, b := range []*store.Batch{{Deliveries: first}, {Deliveries: second}, {Statuses: statuses}} {
			if err := db.Insert(t.Context(), b); err != nil {
				t.Fatalf("Insert: %v", err)
			}
		}
		sameAsRaw(t, db, "before any rollup")

		// Only sealed days are rolled up: on May 6 at noon, May 1–3.
		days, err := db.RefreshRollups(t.Context(), rollStart.AddDate(0, 0, 5).Add(12*time.Hour))
		if err != nil {
			t.Fatalf("RefreshRollups: %v", err)
		}
		if len(days) != 3 || !days[0].Equal(rollStart) {
			t.Fatalf("RefreshRollups on May 6 computed %v; want May 1-3", days)
		}
		if n := rolledDays(t, db); n != 3 {
			t.Fatalf("readers use %d rolled-up days; want 3", n)
		}
		sameAsRaw(t, db, "May 1-3 rolled up")

		days, err = db.RefreshRollups(t.Context(), rollStart.AddDate(0, 0, 30))
		if err != nil || len(days) != 4 { // May 4–7 (journeys crossing midnight start May 7)
			t.Fatalf("RefreshRollups later computed %v, %v; want the 4 other days", days, err)
		}
		if n := rolledDays(t, db); n != 7 {
			t.Fatalf("readers use %d rolled-up days; want 7", n)
		}
		sameAsRaw(t, db, "all days rolled up")

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

		// Late facts land in rolled-up days: a replayed backlog (new OTPs and
		// duplicates of stored events), outcomes of pending attempts, a status
		// polled within the day. Readers compute the touched days live.
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
		for _, b := range []*store.Batch{{Deliveries: late}, {Statuses: lateStatuses}} {
			if err := db.Insert(t.Context(), b); err != nil {
				t.Fatalf("Insert: %v", err)
			}
		}
		if a, d := totals(); a <= attempts0 || d <= delivered0 {
			t.Fatalf("late facts: %d attempts, %d delivered; want more than %d and %d", a, d, attempts0, delivered0)
		}
		if n := rolledDays(t, db); n >= 7 {
			t.Errorf("readers use %d rolled-up days after late facts; want fewer than 7", n)
		}
		sameAsRaw(t, db, "late facts, before the job")

		// A status polled days after its journey: the job finds the journey.
		var st []store.OTPStatusRow
		for _, e := range first {
			if e.Status == "DELIVERED" && e.Timestamp.After(rollStart.AddDate(0, 0, 4)) {
				st = append(st, store.OTPStatusRow{OTPStatus: events.OTPStatus{OTPID: e.OTPID, API: "v4", Status: events.OTPVerified,
					ObservedAt: e.Timestamp.Add(3 * 24 * time.Hour), AttemptCount: 9, Source: events.SourcePoll, SampleRate: 1}, EventID: "very-late-" + e.OTPID})
			}
		}
		if err := db.Insert(t.Context(), &store.Batch{Statuses: st[:3]}); err != nil {
			t.Fatalf("Insert: %v", err)
		}
		days, err = db.RefreshRollups(t.Context(), rollStart.AddDate(0, 0, 30))
		if err != nil || len(days) == 0 {
			t.Fatalf("RefreshRollups after late facts computed %v, %v; want the touched days", days, err)
		}
		if n := rolledDays(t, db); n != 7 {
			t.Errorf("readers use %d rolled-up days after the job; want 7", n)
		}
		sameAsRaw(t, db, "late facts rolled up")

		// A second run has nothing to do, and replaced versions are gone.
		if days, err = db.RefreshRollups(t.Context(), rollStart.AddDate(0, 0, 30)); err != nil || len(days) != 0 {
			t.Errorf("idle RefreshRollups computed %v, %v; want nothing", days, err)
		}
		if n := count(t, db, "SELECT count() FROM (SELECT day FROM daily_attempts GROUP BY day HAVING uniqExact(version) > 1)"); n != 0 {
			t.Errorf("%d days keep replaced versions", n)
		}
		sameAsRaw(t, db, "after cleanup")
	})
}

// The job's work is bounded by the days that hold attempts: an event three
// years older than the rest costs one day, not the thousand between.
func TestRollupsSkipEmptyDays(t *testing.T) {
	slack := store.RollupSlack
	store.RollupSlack = 0 // this test's inserts are visible when Insert returns
	t.Cleanup(func() { store.RollupSlack = slack })
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		old := delivery(1, events.StatusDelivered)
		old.Timestamp = time.Date(2023, 5, 1, 12, 0, 0, 0, time.UTC)
		old.EventID = events.DeliveryID(&old.DeliveryStatus)
		recent := delivery(2, events.StatusDelivered) // 2026-05-01
		if err := db.Insert(t.Context(), &store.Batch{Deliveries: []store.DeliveryRow{old, recent}}); err != nil {
			t.Fatal(err)
		}
		done, err := db.RefreshRollups(t.Context(), time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC))
		if err != nil {
			t.Fatal(err)
		}
		want := []time.Time{time.Date(2023, 5, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)}
		if !reflect.DeepEqual(done, want) {
			t.Fatalf("RefreshRollups computed %d days %v; want only the two with attempts", len(done), done)
		}
		w := store.Window{From: want[0], To: want[1].AddDate(0, 0, 1)}
		chs, err := db.Channels(t.Context(), w)
		if err != nil {
			t.Fatal(err)
		}
		if len(chs) != 1 || chs[0].Attempts != 2 {
			t.Errorf("Channels over both days = %+v; want 2 SMS attempts", chs)
		}
		// Completeness reads the rolled-up days too.
		if n, err := store.RolledDays(t.Context(), db, w); err != nil || n != 2 {
			t.Fatalf("the window reads %d rolled-up days (%v); want 2", n, err)
		}
		c, err := db.Completeness(t.Context(), w, time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC))
		if err != nil || !c.Final || c.Pending != 0 {
			t.Errorf("Completeness over rolled-up days = %+v, %v; want final, nothing pending", c, err)
		}
	})
}
