package store_test

import (
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/store"
)

// An attempt the poller declared unrecoverable stays pending, counted
// apart (unrecoverable) and not as awaiting reconciliation. A late webhook that settles an
// attempt declared lost makes it a settled attempt like any other. The
// same live, from the raw tables and from the rollups.
func TestCompletenessCountsTheUnrecoverableApart(t *testing.T) {
	noSlack(t)
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		markClock(t, db)
		seedJourneys(t, db) // D: pending, its outcome declared lost
		w := store.Window{From: t0, To: t0.Add(time.Hour)}
		now := t0.Add(time.Hour)
		journeyD := func(when string, lost bool, want store.Completeness) {
			t.Helper()
			j, err := db.Journey(t.Context(), otpD, now)
			if err != nil {
				t.Fatal(err)
			}
			j.Completeness.SettledUntil = nil
			if len(j.Attempts) != 1 || j.Attempts[0].Unrecoverable != lost || j.Completeness != want {
				t.Errorf("%s: Journey(D) attempts %+v, completeness %+v; want one attempt, unrecoverable %v, %+v", when, j.Attempts, j.Completeness, lost, want)
			}
		}
		check := func(when string, want store.Completeness) {
			t.Helper()
			for _, raw := range []bool{false, true} {
				w.Raw = raw
				c, err := db.Completeness(t.Context(), w, now)
				c.SettledUntil = nil
				if err != nil || c != want {
					t.Errorf("%s: Completeness(raw=%v) = %+v, %v; want %+v", when, raw, c, err, want)
				}
			}
		}
		check("D lost", store.Completeness{Pending: 1, Unrecoverable: 1})
		journeyD("D lost", true, store.Completeness{Pending: 1, Unrecoverable: 1})
		if _, err := db.RefreshRollups(t.Context()); err != nil {
			t.Fatal(err)
		}
		check("D lost, rolled up", store.Completeness{Pending: 1, Unrecoverable: 1})

		const otpG = "aaaaaaaa-0000-4000-8000-000000000007" // pending, no verdict
		if err := db.Insert(t.Context(), &store.Batch{Deliveries: []store.DeliveryRow{ev(otpG, "SMS", "DISPATCHED", 5*time.Second)}}); err != nil {
			t.Fatal(err)
		}
		check("G pending", store.Completeness{Pending: 2, AwaitingReconciliation: 1, Unrecoverable: 1})
		if _, err := refreshLater(t, db); err != nil {
			t.Fatal(err)
		}
		check("G pending, rolled up", store.Completeness{Pending: 2, AwaitingReconciliation: 1, Unrecoverable: 1})

		// D's outcome webhook arrives after all.
		if err := db.Insert(t.Context(), &store.Batch{Deliveries: []store.DeliveryRow{ev(otpD, "SMS", "DELIVERED", 20*time.Second)}}); err != nil {
			t.Fatal(err)
		}
		check("D delivered late", store.Completeness{Pending: 1, AwaitingReconciliation: 1})
		journeyD("D delivered late", false, store.Completeness{Final: true})
		if _, err := refreshLater(t, db); err != nil {
			t.Fatal(err)
		}
		check("D delivered late, rolled up", store.Completeness{Pending: 1, AwaitingReconciliation: 1})
	})
}
