package reporter_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/reporter"
	"github.com/otpscope/otpscope/internal/store"
)

// fact is one delivery event of a journey, at a second offset.
type fact struct {
	ch, st string
	at     float64
}

// wantAttempts are one channel's expected figures:
// attempts/delivered/undeliverable/timed_out/pending.
type wantAttempts [5]uint64

// TestResendsAreAttempts checks journeys with resends on the same channel:
// each dispatch is one attempt, whatever order the facts are stored in and
// however often.
func TestResendsAreAttempts(t *testing.T) {
	base := time.Date(2026, 7, 1, 8, 0, 0, 0, time.UTC)
	cases := []struct {
		name     string
		facts    []fact
		channels map[string]wantAttempts
		path     string
		fallback uint64
		resends  uint64
		outcome  string
		attempts []string // channel#no:outcome, in order
		pending  uint64
	}{
		{"SMS fails, a resend on SMS delivers",
			[]fact{{"SMS", "DISPATCHED", 0}, {"SMS", "UNDELIVERABLE", 3}, {"SMS", "DISPATCHED", 10}, {"SMS", "DELIVERED", 12}},
			map[string]wantAttempts{"SMS": {2, 1, 1, 0, 0}}, "SMS", 0, 1, store.OutcomeDeliveredPrimary,
			[]string{"SMS#1:failed", "SMS#2:delivered"}, 0},
		{"timeout, resend, then fallback",
			[]fact{{"SMS", "DISPATCHED", 0}, {"SMS", "TIMED_OUT", 40}, {"SMS", "DISPATCHED", 41}, {"SMS", "UNDELIVERABLE", 45}, {"VIBER", "DISPATCHED", 46}, {"VIBER", "DELIVERED", 50}},
			map[string]wantAttempts{"SMS": {2, 0, 1, 1, 0}, "VIBER": {1, 1, 0, 0, 0}}, "SMS>VIBER", 1, 1, store.OutcomeDeliveredFallback,
			[]string{"SMS#1:failed", "SMS#2:failed", "VIBER#1:delivered"}, 0},
		{"a DISPATCHED at the settling millisecond sorts first",
			[]fact{{"SMS", "DISPATCHED", 0}, {"SMS", "DELIVERED", 5}, {"SMS", "DISPATCHED", 5}},
			map[string]wantAttempts{"SMS": {1, 1, 0, 0, 0}}, "SMS", 0, 0, store.OutcomeDeliveredPrimary,
			[]string{"SMS#1:delivered"}, 0},
		{"a resend still pending",
			[]fact{{"SMS", "DISPATCHED", 0}, {"SMS", "UNDELIVERABLE", 2}, {"SMS", "DISPATCHED", 3}, {"SMS", "QUEUED", 4}},
			map[string]wantAttempts{"SMS": {2, 0, 1, 0, 1}}, "SMS", 0, 1, store.OutcomePending,
			[]string{"SMS#1:failed", "SMS#2:pending"}, 1},
		{"a failure whose dispatch was never stored",
			[]fact{{"SMS", "UNDELIVERABLE", 2}, {"SMS", "DISPATCHED", 3}, {"SMS", "DELIVERED", 4.5}},
			map[string]wantAttempts{"SMS": {2, 1, 1, 0, 0}}, "SMS", 0, 1, store.OutcomeDeliveredPrimary,
			[]string{"SMS#1:failed", "SMS#2:delivered"}, 0},
		{"two failures of one dispatch: the first one names it",
			[]fact{{"SMS", "DISPATCHED", 0}, {"SMS", "TIMED_OUT", 30}, {"SMS", "UNDELIVERABLE", 31}},
			map[string]wantAttempts{"SMS": {1, 0, 0, 1, 0}}, "SMS", 0, 0, store.OutcomeFailed,
			[]string{"SMS#1:failed"}, 0},
		{"back to the primary after a fallback",
			[]fact{{"SMS", "DISPATCHED", 0}, {"SMS", "UNDELIVERABLE", 2}, {"VIBER", "DISPATCHED", 3}, {"VIBER", "UNDELIVERABLE", 5}, {"SMS", "DISPATCHED", 6}, {"SMS", "DELIVERED", 8}},
			map[string]wantAttempts{"SMS": {2, 1, 1, 0, 0}, "VIBER": {1, 0, 1, 0, 0}}, "SMS>VIBER", 1, 1, store.OutcomeDeliveredPrimary,
			[]string{"SMS#1:failed", "VIBER#1:failed", "SMS#2:delivered"}, 0},
	}

	f := newFixture(t)
	ar := chi.NewRouter()
	reporter.NewAPI(f.DB, reporter.AlertRules{}, brokertest.Logger(t)).Mount(ar)
	api := httptest.NewServer(ar)
	t.Cleanup(api.Close)
	tr := &traffic{f: f, api: api}

	r := rand.New(rand.NewPCG(1, 2))
	type stored struct {
		otp      string
		from, to time.Time
	}
	var ids []stored
	var first, second []store.DeliveryRow
	for i, c := range cases {
		otp := fmt.Sprintf("dddddddd-0000-4000-8000-%012d", i)
		start := base.Add(time.Duration(i) * time.Hour)
		ids = append(ids, stored{otp, start, start.Add(time.Hour)})
		var rows []store.DeliveryRow
		for _, e := range c.facts {
			d := events.DeliveryStatus{OTPID: otp, ProfileID: "prof-r", Channel: events.Channel(e.ch), Status: events.Status(e.st),
				Timestamp: start.Add(time.Duration(e.at * float64(time.Second))), ReceivedAt: start.Add(time.Minute), Source: events.SourceWebhook}
			if d.Status.Failed() {
				d.Error = &events.DeliveryError{Code: "tyntec::" + e.ch + "::" + e.st}
			}
			d.UnknownStatus = !d.Status.Known()
			rows = append(rows, store.DeliveryRow{DeliveryStatus: d, EventID: events.DeliveryID(&d)})
		}
		// Reordered, and half of the facts stored again by a later insert
		// (one of them as the poller's recovery of the same fact).
		r.Shuffle(len(rows), func(a, b int) { rows[a], rows[b] = rows[b], rows[a] })
		first = append(first, rows...)
		for k, row := range rows {
			if k%2 == 0 {
				if k == 0 {
					row.Source, row.MissedWebhook = events.SourcePoll, true
				}
				second = append([]store.DeliveryRow{row}, second...)
			}
		}
	}
	for _, b := range []*store.Batch{{Deliveries: first}, {Deliveries: second}} {
		if err := f.DB.Insert(t.Context(), b); err != nil {
			t.Fatal(err)
		}
	}

	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := ids[i]
			q := url.Values{"from": {id.from.Format(time.RFC3339)}, "to": {id.to.Format(time.RFC3339)}}
			var chs reporter.ChannelsResponse
			if resp := tr.get(t, "/api/v1/channels", q, &chs); resp.StatusCode != http.StatusOK {
				t.Fatalf("/channels: %s", resp.Status)
			}
			got := map[string]wantAttempts{}
			for _, ch := range chs.Channels {
				if ch.Failed != ch.Undeliverable+ch.TimedOut {
					t.Errorf("%s failed %d != undeliverable %d + timed_out %d", ch.Channel, ch.Failed, ch.Undeliverable, ch.TimedOut)
				}
				got[ch.Channel] = wantAttempts{ch.Attempts, ch.Delivered, ch.Undeliverable, ch.TimedOut, ch.Pending}
			}
			if fmt.Sprint(got) != fmt.Sprint(c.channels) {
				t.Errorf("/channels = %v; want %v (attempts/delivered/undeliverable/timed_out/pending)", got, c.channels)
			}
			if chs.Completeness.Pending != c.pending || chs.Completeness.Final != (c.pending == 0) || (chs.Completeness.SettledUntil == nil) != (c.pending == 0) {
				t.Errorf("/channels completeness = %+v; want %d pending", chs.Completeness, c.pending)
			}

			var fb reporter.FallbackResponse
			if resp := tr.get(t, "/api/v1/fallback", q, &fb); resp.StatusCode != http.StatusOK {
				t.Fatalf("/fallback: %s", resp.Status)
			}
			if fb.OTPs != 1 || len(fb.Paths) != 1 || fb.Paths[0].Path != c.path || fb.FallbackOTPs != c.fallback || fb.Resends != c.resends || fb.Completeness.Pending != c.pending {
				t.Errorf("/fallback = %d OTPs, paths %+v, %d fallback, %d resends, %+v; want 1, %s, %d, %d, %d pending",
					fb.OTPs, fb.Paths, fb.FallbackOTPs, fb.Resends, fb.Completeness, c.path, c.fallback, c.resends, c.pending)
			}

			var j store.Journey
			if resp := tr.get(t, "/api/v1/otps/"+id.otp, nil, &j); resp.StatusCode != http.StatusOK {
				t.Fatalf("/otps: %s", resp.Status)
			}
			var atts []string
			for _, a := range j.Attempts {
				atts = append(atts, fmt.Sprintf("%s#%d:%s", a.Channel, a.Attempt, a.Outcome))
			}
			if fmt.Sprint(atts) != fmt.Sprint(c.attempts) || j.Path != c.path || j.Outcome != c.outcome || j.ResendAttempts != c.resends || j.Completeness.Pending != c.pending {
				t.Errorf("/otps = %v, path %s, %s, %d resends, %+v; want %v, %s, %s, %d, %d pending",
					atts, j.Path, j.Outcome, j.ResendAttempts, j.Completeness, c.attempts, c.path, c.outcome, c.resends, c.pending)
			}
			if c.outcome != store.OutcomePending && fb.Outcomes == (store.Outcomes{}) {
				t.Errorf("/fallback outcomes empty")
			}
		})
	}
}
