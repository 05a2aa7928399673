package store_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/store"
)

// Events pages newest first through a window, reading the newest part of it
// first: the pages must list every stored event once (duplicates once), in
// order, as one FINAL query over the whole window would, whether the window's
// events are dense or days apart.
func TestEventsPagesEqualOneQuery(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		r := rand.New(rand.NewPCG(3, 3))
		base := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
		var rows, dups []store.DeliveryRow
		for i := range 300 {
			e := delivery(i, []events.Status{events.StatusDispatched, events.StatusDelivered, events.StatusUndeliverable}[i%3])
			// Dense in the last hour, sparse over the ten days before.
			if i < 200 {
				e.Timestamp = base.Add(10*24*time.Hour - time.Duration(r.Int64N(int64(time.Hour))))
			} else {
				e.Timestamp = base.Add(time.Duration(r.Int64N(int64(10 * 24 * time.Hour))))
			}
			if i%7 == 0 {
				e.Source = events.SourcePoll
			}
			e.EventID = events.DeliveryID(&e.DeliveryStatus)
			rows = append(rows, e)
			if i%5 == 0 {
				dups = append(dups, e)
			}
		}
		for _, b := range []*store.Batch{{Deliveries: rows}, {Deliveries: dups}} {
			if err := db.Insert(t.Context(), b); err != nil {
				t.Fatal(err)
			}
		}
		for _, f := range []store.EventFilter{
			{From: base, To: base.AddDate(0, 0, 11), Limit: 37},
			{From: base.Add(36 * time.Hour), To: base.AddDate(0, 0, 10).Add(-20 * time.Minute), Limit: 11},
			{From: base, To: base.AddDate(0, 0, 11), Status: "delivered", Limit: 9},
			{From: base, To: base.AddDate(0, 0, 11), Source: "poll", Limit: 5},
		} {
			where := fmt.Sprintf("event_time >= fromUnixTimestamp64Milli(%d, 'UTC') AND event_time < fromUnixTimestamp64Milli(%d, 'UTC')", f.From.UnixMilli(), f.To.UnixMilli())
			if f.Status != "" {
				where += " AND status = 'DELIVERED'"
			}
			if f.Source != "" {
				where += " AND source = 'poll'"
			}
			var want []string
			q, err := db.Conn().Query(t.Context(), "SELECT event_id FROM delivery_events FINAL WHERE "+where+" ORDER BY event_time DESC, event_id DESC")
			if err != nil {
				t.Fatal(err)
			}
			for q.Next() {
				var id string
				if err := q.Scan(&id); err != nil {
					t.Fatal(err)
				}
				want = append(want, id)
			}
			q.Close()
			var got []string
			for pages := 0; ; pages++ {
				if pages > len(want)+1 {
					t.Fatalf("%+v: more pages than events", f)
				}
				page, err := db.Events(t.Context(), f)
				if err != nil {
					t.Fatalf("Events(%+v): %v", f, err)
				}
				if len(page.Events) > f.Limit {
					t.Fatalf("Events(%+v) = %d events; want at most %d", f, len(page.Events), f.Limit)
				}
				for _, e := range page.Events {
					got = append(got, e.EventID)
				}
				if page.Next == "" {
					break
				}
				f.After = page.Next
			}
			if len(want) == 0 || !slices.Equal(got, want) {
				t.Errorf("pages of %+v list %d events; want the %d of one query, in order (equal: %v)", f, len(got), len(want), slices.Equal(got, want))
			}
		}
	})
}

// A fact tyntec gave no usable time, on a channel this build does not know,
// says so wherever its events are listed: the OTP lookup and the event list.
func TestEventsSayWhatTyntecLeftOut(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		at := time.Date(2026, 5, 2, 10, 0, 0, 0, time.UTC)
		plain := delivery(1, events.StatusDispatched)
		plain.Timestamp = at
		odd := delivery(1, events.StatusDelivered)
		odd.Channel, odd.UnknownChannel = "RCS", true
		odd.Timestamp, odd.ReceivedAt, odd.TimestampFromReceipt, odd.OriginalTimestamp = at.Add(time.Second), at.Add(time.Second), true, "soon"
		for _, r := range []*store.DeliveryRow{&plain, &odd} {
			r.EventID = events.DeliveryID(&r.DeliveryStatus)
		}
		if err := db.Insert(t.Context(), &store.Batch{Deliveries: []store.DeliveryRow{plain, odd}}); err != nil {
			t.Fatal(err)
		}
		j, err := db.Journey(t.Context(), plain.OTPID, at.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		page, err := db.Events(t.Context(), store.EventFilter{From: at, To: at.Add(time.Hour), OTPID: plain.OTPID, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		listed := []store.Event{}
		for _, e := range page.Events {
			listed = append(listed, e.Event)
		}
		for name, evs := range map[string][]store.Event{"Journey": j.Events, "Events": listed} {
			marks := map[string][2]bool{}
			for _, e := range evs {
				marks[e.Channel] = [2]bool{e.TimeFromReceipt, e.UnknownChannel}
			}
			if len(evs) != 2 || marks["RCS"] != [2]bool{true, true} || marks[string(plain.Channel)] != [2]bool{false, false} {
				t.Errorf("%s events %+v; want RCS marked time_from_receipt and unknown_channel, %s neither", name, evs, plain.Channel)
			}
		}
	})
}
