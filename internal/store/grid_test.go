package store_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/store"
)

// zoneDays are journeys over the two days of 2026 on which Berlin's clocks
// change (29 March, forward; 25 October, back), two days on either side,
// and over 5 April, when Lord Howe's clocks go back half an hour and the
// Chatham Islands' (+13:45 to +12:45) an hour.
func zoneDays(r *rand.Rand) []store.DeliveryRow {
	var rows []store.DeliveryRow
	for _, around := range []time.Time{time.Date(2026, 3, 27, 0, 0, 0, 0, time.UTC), time.Date(2026, 10, 23, 0, 0, 0, 0, time.UTC), time.Date(2026, 4, 3, 0, 0, 0, 0, time.UTC)} {
		for i := range 300 {
			at := around.Add(time.Duration(r.Int64N(int64(5 * 24 * time.Hour))))
			otp := fmt.Sprintf("dddddddd-%04d-4000-8000-%012d", around.Month(), i)
			for k, ch := range [][]string{{"SMS"}, {"VIBER", "SMS"}, {"WHATSAPP"}}[r.IntN(3)] {
				mk := func(st events.Status, t time.Time) store.DeliveryRow {
					e := events.DeliveryStatus{OTPID: otp, ProfileID: "prof-a", Channel: events.Channel(ch), Status: st,
						Timestamp: t, ReceivedAt: t.Add(time.Second), Source: events.SourceWebhook}
					if st.Failed() {
						e.Error = &events.DeliveryError{Code: "tyntec::" + ch}
					}
					return store.DeliveryRow{DeliveryStatus: e, EventID: events.DeliveryID(&e)}
				}
				rows = append(rows, mk("DISPATCHED", at))
				// Latencies within 3 s: the 256 ms buckets holding the
				// percentiles hold values of many hours.
				at = at.Add(time.Duration(100+r.IntN(3000)) * time.Millisecond)
				if k == 1 || r.IntN(3) > 0 {
					rows = append(rows, mk("DELIVERED", at))
					break
				}
				rows = append(rows, mk("UNDELIVERABLE", at))
			}
		}
	}
	// A delivery in each half of each reading of the times the clocks
	// repeat: Berlin's 02:00–03:00 on 25 October, Lord Howe's 01:30–02:00
	// on 5 April (UTC 00:00–02:00 and 14:30–15:30).
	for i, at := range []time.Time{time.Date(2026, 10, 25, 0, 10, 0, 0, time.UTC), time.Date(2026, 10, 25, 0, 40, 0, 0, time.UTC),
		time.Date(2026, 10, 25, 1, 10, 0, 0, time.UTC), time.Date(2026, 10, 25, 1, 40, 0, 0, time.UTC),
		time.Date(2026, 4, 4, 14, 35, 0, 0, time.UTC), time.Date(2026, 4, 4, 14, 50, 0, 0, time.UTC),
		time.Date(2026, 4, 4, 15, 5, 0, 0, time.UTC), time.Date(2026, 4, 4, 15, 20, 0, 0, time.UTC)} {
		otp := fmt.Sprintf("eeeeeeee-0000-4000-8000-%012d", i)
		for k, st := range []events.Status{"DISPATCHED", "DELIVERED"} {
			e := events.DeliveryStatus{OTPID: otp, ProfileID: "prof-a", Channel: "SMS", Status: st,
				Timestamp: at.Add(time.Duration(k) * time.Second), ReceivedAt: at.Add(2 * time.Second), Source: events.SourceWebhook}
			rows = append(rows, store.DeliveryRow{DeliveryStatus: e, EventID: events.DeliveryID(&e)})
		}
	}
	return rows
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	z, err := store.Zone(name)
	if err != nil {
		t.Fatal(err)
	}
	return z
}

// A series in a time zone has buckets on that zone's wall clock: its days
// start at local midnight, 23 and 25 hours long when the clocks change, and
// each bucket holds what /channels counts for its instants, from the
// rollups as from raw events; the engine numbers buckets as Go does.
func TestTimeseriesFollowsAZonesWallClock(t *testing.T) {
	noSlack(t)
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		markClock(t, db)
		if err := db.Insert(t.Context(), &store.Batch{Deliveries: zoneDays(rand.New(rand.NewPCG(3, 29)))}); err != nil {
			t.Fatalf("Insert: %v", err)
		}
		if _, err := db.RefreshRollups(t.Context()); err != nil {
			t.Fatalf("RefreshRollups: %v", err)
		}
		berlin := mustZone(t, "Europe/Berlin")
		windows := []store.Window{
			{From: time.Date(2026, 3, 27, 10, 17, 0, 0, time.UTC), To: time.Date(2026, 3, 31, 5, 0, 0, 0, time.UTC)},
			{From: time.Date(2026, 10, 23, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 10, 28, 0, 0, 0, 0, time.UTC), Channel: "SMS"},
		}
		for _, w := range windows {
			for _, zone := range []string{"Europe/Berlin", "Asia/Kolkata", "America/St_Johns"} {
				// 48 h: buckets that hold whole UTC days, read from the
				// day-level histograms.
				// 30 minutes: buckets whose edges fall inside the hour
				// the clocks repeat.
				for _, step := range []time.Duration{30 * time.Minute, time.Hour, 90 * time.Minute, 24 * time.Hour, 48 * time.Hour} {
					z := mustZone(t, zone)
					name := fmt.Sprintf("%s %s from %s", zone, step, w.From.Format(time.DateOnly))
					got := seriesEqualsRaw(t, db, name, w, step, z)
					if got.Zone != zone {
						t.Errorf("%s: tz %q", name, got.Zone)
					}
					bucketsAreChannels(t, db, name, w, got)
					instantsNumberedAlike(t, db, name, w, step, z)
				}
			}
		}
		// Zones of quarter hours and a half-hour change of the clocks,
		// by steps that are not whole hours too.
		south := store.Window{From: time.Date(2026, 4, 3, 7, 10, 0, 0, time.UTC), To: time.Date(2026, 4, 7, 20, 0, 0, 0, time.UTC)}
		for _, zone := range []string{"Australia/Lord_Howe", "Pacific/Chatham", "Asia/Kathmandu"} {
			for _, step := range []time.Duration{15 * time.Minute, 45 * time.Minute, time.Hour, 24 * time.Hour} {
				z := mustZone(t, zone)
				name := fmt.Sprintf("%s %s from %s", zone, step, south.From.Format(time.DateOnly))
				got := seriesEqualsRaw(t, db, name, south, step, z)
				bucketsAreChannels(t, db, name, south, got)
				instantsNumberedAlike(t, db, name, south, step, z)
				if step == 24*time.Hour {
					for i, s := range got.Start {
						if h, m, _ := s.In(z).Clock(); h != 0 || m != 0 {
							t.Errorf("%s: day bucket %d starts at %s: want local midnight", name, i, s.In(z))
						}
					}
				}
			}
		}

		// The UTC days the job summed (22 to 28 October) are read from
		// the day level, anchored in the local day holding most of their
		// hours (their other hours taken out, and split ones read from
		// their rows), when that reads fewer histograms than their hours:
		// not for buckets of an hour. The answers above equal raw ones.
		long := store.Window{From: time.Date(2026, 10, 21, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 10, 29, 0, 0, 0, 0, time.UTC)}
		for _, tc := range []struct {
			zone string
			step time.Duration
			want int
		}{{"Europe/Berlin", 24 * time.Hour, 7}, {"Europe/Berlin", 48 * time.Hour, 7}, {"Asia/Kolkata", 24 * time.Hour, 7}, {"Europe/Berlin", time.Hour, 0}} {
			if n, err := store.SeriesDays(t.Context(), db, long, tc.step, mustZone(t, tc.zone)); err != nil || n != tc.want {
				t.Errorf("%s's buckets of %s over %s – %s read %d UTC days (%v); want %d", tc.zone, tc.step, long.From, long.To, n, err, tc.want)
			}
		}

		// Berlin's days: local midnights, 23 hours on 29 March, 25 on 25 October.
		for _, w := range windows {
			ts, err := db.Timeseries(t.Context(), w, 24*time.Hour, berlin)
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range ts.Start {
				if h, m, _ := s.In(berlin).Clock(); h != 0 || m != 0 {
					t.Errorf("Berlin day bucket %d starts at %s: want local midnight", i, s)
				}
				if i == 0 {
					continue
				}
				want := 24 * time.Hour
				switch ts.Start[i-1].Format(time.DateOnly) {
				case "2026-03-29":
					want = 23 * time.Hour
				case "2026-10-25":
					want = 25 * time.Hour
				}
				if d := s.Sub(ts.Start[i-1]); d != want {
					t.Errorf("Berlin day %s lasts %s: want %s", ts.Start[i-1], d, want)
				}
			}
		}
		// The hour the clocks skip is an empty bucket starting with the
		// next; the hour they repeat is one bucket of two hours.
		spring, err := db.Timeseries(t.Context(), store.Window{From: time.Date(2026, 3, 29, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 3, 29, 3, 0, 0, 0, time.UTC)}, time.Hour, berlin)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(spring.Start); got != "[2026-03-29 01:00:00 +0100 CET 2026-03-29 03:00:00 +0200 CEST 2026-03-29 03:00:00 +0200 CEST 2026-03-29 04:00:00 +0200 CEST]" {
			t.Errorf("Berlin's hours on 29 March: %s", got)
		}
		autumn, err := db.Timeseries(t.Context(), store.Window{From: time.Date(2026, 10, 25, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 10, 25, 3, 0, 0, 0, time.UTC)}, time.Hour, berlin)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(autumn.Start); got != "[2026-10-25 02:00:00 +0200 CEST 2026-10-25 03:00:00 +0100 CET]" {
			t.Errorf("Berlin's hours on 25 October: %s", got)
		}
	})
}

// seriesEqualsRaw returns w's series and checks it equals the one computed
// from the raw events.
func seriesEqualsRaw(t *testing.T, db *store.DB, name string, w store.Window, step time.Duration, zone *time.Location) store.Timeseries {
	t.Helper()
	got, err := db.Timeseries(t.Context(), w, step, zone)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	raw := w
	raw.Raw = true
	want, err := db.Timeseries(t.Context(), raw, step, zone)
	if err != nil {
		t.Fatalf("%s, raw: %v", name, err)
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.Marshal(got)
		r, _ := json.Marshal(want)
		t.Errorf("%s: from rollups differs from raw events:\n got %s\nwant %s", name, g, r)
	}
	return got
}

// changeDays are the days of the test's data on which the zones' clocks
// change, in those zones.
var changeDays = map[string][]string{"Europe/Berlin": {"2026-03-29", "2026-10-25"}, "Australia/Lord_Howe": {"2026-04-05"}, "Pacific/Chatham": {"2026-04-05"}}

// bucketsAreChannels checks that each bucket of ts holds what Channels
// counts for its part of w (every bucket is one stretch of time, the
// times the clocks repeat included): the first and the last, and those of
// the days the zone's clocks change.
func bucketsAreChannels(t *testing.T, db *store.DB, name string, w store.Window, ts store.Timeseries) {
	t.Helper()
	for i, s := range ts.Start {
		if i > 0 && i < len(ts.Start)-1 && !slices.Contains(changeDays[ts.Zone], s.Format(time.DateOnly)) {
			continue
		}
		part := w
		part.From, part.To = store.MaxTime(w.From, s), w.To
		if i+1 < len(ts.Start) {
			part.To = ts.Start[i+1]
		}
		var attempts, delivered uint64
		if part.To.After(part.From) {
			chs, err := db.Channels(t.Context(), part)
			if err != nil {
				t.Fatalf("%s bucket %d: Channels of [%s, %s): %v", name, i, part.From, part.To, err)
			}
			for _, c := range chs {
				attempts, delivered = attempts+c.Attempts, delivered+c.Delivered
			}
		}
		var sa, sd uint64
		for _, c := range ts.Channels {
			sa, sd = sa+c.Attempts[i], sd+c.Delivered[i]
		}
		if sa != attempts || sd != delivered {
			t.Errorf("%s bucket %d (%s): %d attempts, %d delivered; /channels of [%s, %s) %d, %d", name, i, s, sa, sd, part.From, part.To, attempts, delivered)
		}
	}
}

// instantsNumberedAlike checks that the engine puts instants every 7.5
// minutes of w into the buckets Go puts them in.
func instantsNumberedAlike(t *testing.T, db *store.DB, name string, w store.Window, step time.Duration, zone *time.Location) {
	t.Helper()
	var ts []time.Time
	for at := w.From; at.Before(w.To); at = at.Add(450 * time.Second) {
		ts = append(ts, at, at.Add(-time.Millisecond))
	}
	inGo, inSQL, err := store.GridIndexes(t.Context(), db, w, step, zone, ts)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if !reflect.DeepEqual(inGo, inSQL) {
		for i := range inGo {
			if i < len(inSQL) && inGo[i] != inSQL[i] {
				t.Errorf("%s: %s is in bucket %d in Go, %d in the engine", name, ts[i], inGo[i], inSQL[i])
				return
			}
		}
		t.Errorf("%s: %d numbers in Go, %d in the engine", name, len(inGo), len(inSQL))
	}
}

func TestZoneNames(t *testing.T) {
	for name, ok := range map[string]bool{
		"": true, "UTC": true, "Europe/Berlin": true, "America/Argentina/Buenos_Aires": true, "Etc/GMT+5": true, " Asia/Kolkata ": true,
		"Local": false, "Nowhere/Land": false, "../etc/passwd": false, "Europe/Berlin'": false, "/usr/share/zoneinfo/UTC": false, "+01:00": false,
	} {
		z, err := store.Zone(name)
		if (err == nil) != ok {
			t.Errorf("Zone(%q) = %v, %v; want ok %v", name, z, err, ok)
		}
	}
	// Typed in the wrong case, the name meant is suggested.
	for name, want := range map[string]string{"utc": "did you mean UTC?", "europe/berlin": "did you mean Europe/Berlin?",
		"AMERICA/NEW_YORK": "did you mean America/New_York?", "local": "(an IANA name", "nowhere/land": "(an IANA name"} {
		if _, err := store.Zone(name); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Zone(%q): %v; want it to say %q", name, err, want)
		}
	}
}

// An empty window has a bucket only when it lies inside one, as before
// zones: on a bucket's bound, none.
func TestEmptyWindowsBuckets(t *testing.T) {
	db := openSingle(t)
	on := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		at   time.Time
		zone string
		want int
	}{
		{on, "UTC", 0}, {on.Add(time.Minute), "UTC", 1},
		{on, "Europe/Berlin", 0}, {on, "Asia/Kolkata", 1}, {on.Add(30 * time.Minute), "Asia/Kolkata", 0},
	} {
		ts, err := db.Timeseries(t.Context(), store.Window{From: tc.at, To: tc.at}, time.Hour, mustZone(t, tc.zone))
		if err != nil || len(ts.Start) != tc.want {
			t.Errorf("[%s, %s) in %s: %d buckets (%v); want %d", tc.at, tc.at, tc.zone, len(ts.Start), err, tc.want)
		}
	}
}
