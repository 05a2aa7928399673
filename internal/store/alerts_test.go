package store_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/store"
)

// Alerts arrive as the reporter publishes them, are stored once however
// often they are delivered, and are listed newest first by when they were
// evaluated, a channel's with those of no channel.
func TestAlertsStoredAndListed(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		at := time.Date(2026, 11, 3, 12, 0, 0, 0, time.UTC)
		wasRate := 0.1
		alerts := []events.Alert{
			// As published before alerts had states: fired, since its evaluation.
			{Rule: "delivery_rate_low", Channel: "SMS", From: at.Add(-time.Hour), To: at, Value: 0.61, Threshold: 0.8, Volume: 120, Summary: "SMS low"},
			{Rule: "fallback_rate_high", State: events.AlertFiring, Since: at.Add(-10 * time.Minute), From: at.Add(-time.Hour), To: at, Value: 0.3, Threshold: 0.2, Volume: 90, Summary: "fallback high",
				Before: &events.AlertBefore{From: at.Add(-2 * time.Hour), To: at.Add(-time.Hour), Value: &wasRate, Volume: 80}},
			{Rule: "delivery_rate_low", Channel: "VIBER", State: events.AlertResolved, Since: at.Add(-30 * time.Minute), From: at.Add(-55 * time.Minute), To: at.Add(5 * time.Minute), Value: 0.9, Threshold: 0.8, Volume: 60, Summary: "VIBER back",
				SilencedBy: "6f1c2d3e-0000-4000-8000-000000000001"},
		}
		var b store.Batch
		for i := range alerts {
			m, err := events.NewAlertMessage(&alerts[i])
			if err != nil {
				t.Fatal(err)
			}
			// Each twice, as a redelivery would: one row each.
			for range 2 {
				if err := b.Add(m.Subject, m.ID, m.Data, uint64(i+1)); err != nil {
					t.Fatalf("Add %s: %v", m.Subject, err)
				}
			}
		}
		if err := db.Insert(t.Context(), &b); err != nil {
			t.Fatal(err)
		}

		all, err := db.Alerts(t.Context(), store.AlertFilter{From: at.Add(-time.Hour), To: at.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 3 || all[0].Channel != "VIBER" || all[1].Rule != "delivery_rate_low" || all[2].Rule != "fallback_rate_high" {
			t.Fatalf("alerts %+v; want VIBER's, then SMS's and the fallback rate's, once each", all)
		}
		if got := all[1]; !got.From.Equal(at.Add(-time.Hour)) || !got.To.Equal(at) || got.Value != 0.61 || got.Threshold != 0.8 || got.Volume != 120 || got.Summary != "SMS low" || got.ID == "" ||
			got.State != events.AlertFiring || !got.Since.Equal(at) {
			t.Errorf("SMS alert read back as %+v; want it firing since its evaluation", got)
		}
		if got := all[0]; got.State != events.AlertResolved || !got.Since.Equal(at.Add(-30*time.Minute)) || got.SilencedBy != alerts[2].SilencedBy {
			t.Errorf("VIBER's resolution read back as %+v", got)
		}
		if got := all[2]; got.State != events.AlertFiring || !got.Since.Equal(at.Add(-10*time.Minute)) {
			t.Errorf("the fallback rate's alert read back as %+v", got)
		}
		// Its figure in the window before, as published; none on the
		// others, which had none.
		if b := all[2].Before; b == nil || !b.From.Equal(at.Add(-2*time.Hour)) || !b.To.Equal(at.Add(-time.Hour)) || b.Value == nil || *b.Value != wasRate || b.Volume != 80 {
			t.Errorf("the fallback rate's alert's window before read back as %+v; want %+v", b, alerts[1].Before)
		}
		if all[1].SilencedBy != "" || all[2].SilencedBy != "" {
			t.Errorf("alerts no silence covered read back silenced by %q, %q", all[1].SilencedBy, all[2].SilencedBy)
		}
		if all[0].Before != nil || all[1].Before != nil {
			t.Errorf("alerts without a window before read back with one: %+v, %+v", all[0].Before, all[1].Before)
		}
		for state, want := range map[string]int{events.AlertFiring: 2, events.AlertResolved: 1} {
			got, err := db.Alerts(t.Context(), store.AlertFilter{From: at.Add(-time.Hour), To: at.Add(time.Hour), State: state})
			if err != nil || len(got) != want {
				t.Errorf("%s alerts: %d, %v; want %d", state, len(got), err, want)
			}
		}
		sms, err := db.Alerts(t.Context(), store.AlertFilter{From: at.Add(-time.Hour), To: at.Add(time.Hour), Channel: "SMS"})
		if err != nil {
			t.Fatal(err)
		}
		if len(sms) != 2 || sms[0].Channel != "SMS" || sms[1].Channel != "" {
			t.Errorf("SMS's alerts %+v; want SMS's and the fallback rate's", sms)
		}
		// [from, to): the alerts evaluated at `at` are outside a window ending there.
		before, err := db.Alerts(t.Context(), store.AlertFilter{From: at.Add(-time.Hour), To: at, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(before) != 0 {
			t.Errorf("alerts before %v: %+v; want none", at, before)
		}
		one, err := db.Alerts(t.Context(), store.AlertFilter{From: at.Add(-time.Hour), To: at.Add(time.Hour), Limit: 1})
		if err != nil || len(one) != 1 || one[0].Channel != "VIBER" {
			t.Errorf("limit 1: %+v, %v; want the newest", one, err)
		}
	})
}

// An alert whose body disagrees with its subject, or has no window, can
// never be stored: it is dead-lettered rather than retried.
func TestBatchAddBadAlert(t *testing.T) {
	at := time.Date(2026, 11, 3, 12, 0, 0, 0, time.UTC)
	for _, data := range []string{
		`{}`,
		`{"rule":"fallback_rate_high","from":"2026-11-03T11:00:00Z","to":"2026-11-03T12:00:00Z"}`,
		`{"rule":"delivery_rate_low","from":"2026-11-03T13:00:00Z","to":"2026-11-03T12:00:00Z"}`,
		`{"rule":"delivery_rate_low"`,
		`{"rule":"delivery_rate_low","state":"pending","from":"2026-11-03T11:00:00Z","to":"2026-11-03T12:00:00Z"}`,
		`{"rule":"delivery_rate_low","since":"2026-11-03T12:00:01Z","from":"2026-11-03T11:00:00Z","to":"2026-11-03T12:00:00Z"}`,
	} {
		var b store.Batch
		if err := b.Add(events.AlertSubject("delivery_rate_low"), "al-1", []byte(data), 1); !errors.Is(err, store.ErrPermanent) {
			t.Errorf("Add(%s) = %v; want a permanent error", data, err)
		}
	}
	var b store.Batch
	good := events.Alert{Rule: "delivery_rate_low", Channel: "SMS", From: at.Add(-time.Hour), To: at}
	m, _ := events.NewAlertMessage(&good)
	if err := b.Add(m.Subject, m.ID, m.Data, 1); err != nil || len(b.Alerts) != 1 {
		t.Errorf("Add(a good alert) = %v, %d rows", err, len(b.Alerts))
	}
}

// Evaluations of one firing are one episode: its latest evaluation (the
// resolution once resolved), how many firing evaluations the window holds,
// and the worst value among them.
func TestAlertEpisodes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		at := time.Date(2026, 11, 3, 12, 0, 0, 0, time.UTC)
		minute := func(m int) time.Time { return at.Add(time.Duration(m) * time.Minute) }
		// A firing has its figure in the window before (none at 35:
		// nothing to judge there), a resolution none.
		sms := func(state string, since, to int, value float64) events.Alert {
			al := events.Alert{Rule: "delivery_rate_low", Channel: "SMS", State: state, Since: minute(since), From: minute(to - 60), To: minute(to),
				Value: value, Threshold: 0.8, Volume: 100, Summary: fmt.Sprintf("SMS %v at %d", value, to)}
			if state == events.AlertFiring {
				was := 0.9 + float64(to)/1000
				al.Before = &events.AlertBefore{From: minute(to - 120), To: minute(to - 60), Value: &was, Volume: uint64(200 + to)}
				if to == 35 {
					al.Before.Value, al.Before.Volume = nil, 0
				}
			}
			return al
		}
		alerts := []events.Alert{
			// SMS fired at 0, evaluated at 0, 5, 10, resolved at 15.
			sms(events.AlertFiring, 0, 0, 0.7), sms(events.AlertFiring, 0, 5, 0.6), sms(events.AlertFiring, 0, 10, 0.75), sms(events.AlertResolved, 0, 15, 0.85),
			// and fired again at 30, still firing at 35.
			sms(events.AlertFiring, 30, 30, 0.79), sms(events.AlertFiring, 30, 35, 0.7),
			// The fallback rate, firing since before the window.
			{Rule: "fallback_rate_high", State: events.AlertFiring, Since: minute(-120), From: minute(-40), To: minute(20), Value: 0.4, Threshold: 0.2, Volume: 90, Summary: "fallback"},
		}
		// Silences covered the first firing at 5 and 10, not its resolution.
		alerts[1].SilencedBy, alerts[2].SilencedBy = "silence-at-5", "silence-at-10"
		var b store.Batch
		for i := range alerts {
			m, err := events.NewAlertMessage(&alerts[i])
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Add(m.Subject, m.ID, m.Data, uint64(i+1)); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.Insert(t.Context(), &b); err != nil {
			t.Fatal(err)
		}
		eps, err := db.AlertEpisodes(t.Context(), store.AlertFilter{From: minute(-30), To: minute(60)})
		if err != nil {
			t.Fatal(err)
		}
		type ep struct {
			rule, state  string
			since, to    time.Time
			evaluations  uint64
			value, worst float64
			silencedBy   string
		}
		var got []ep
		for _, e := range eps {
			got = append(got, ep{e.Rule, e.State, e.Since, e.To, e.Evaluations, e.Value, e.Worst, e.SilencedBy})
		}
		want := []ep{
			{"delivery_rate_low", events.AlertFiring, minute(30), minute(35), 2, 0.7, 0.7, ""},
			{"fallback_rate_high", events.AlertFiring, minute(-120), minute(20), 1, 0.4, 0.4, ""},
			{"delivery_rate_low", events.AlertResolved, minute(0), minute(15), 3, 0.85, 0.6, "silence-at-10"},
		}
		if !slices.Equal(got, want) {
			t.Errorf("episodes:\n%+v\nwant:\n%+v", got, want)
		}
		if len(eps) == 3 && (eps[2].Summary != "SMS 0.85 at 15" || eps[2].ID == "" || !eps[2].From.Equal(minute(-45)) || eps[2].Before != nil) {
			t.Errorf("the resolved episode reads as its resolution, without a window before: %+v (before %+v)", eps[2], eps[2].Before)
		}
		if len(eps) == 3 {
			if b := eps[0].Before; b == nil || !b.From.Equal(minute(-85)) || !b.To.Equal(minute(-25)) || b.Value != nil || b.Volume != 0 {
				t.Errorf("the firing episode's window before %+v; want its latest evaluation's, with nothing to judge", b)
			}
		}
		for _, c := range []struct {
			f    store.AlertFilter
			want int
		}{
			{store.AlertFilter{From: minute(-30), To: minute(60), State: events.AlertResolved}, 1},
			{store.AlertFilter{From: minute(-30), To: minute(60), State: events.AlertFiring}, 2},
			{store.AlertFilter{From: minute(-30), To: minute(60), Channel: "VIBER"}, 1}, // the fallback rate's
			{store.AlertFilter{From: minute(-30), To: minute(60), Limit: 1}, 1},
			{store.AlertFilter{From: minute(12), To: minute(60)}, 3}, // the resolution alone: an episode too
		} {
			if eps, err := db.AlertEpisodes(t.Context(), c.f); err != nil || len(eps) != c.want {
				t.Errorf("%+v: %d episodes, %v; want %d", c.f, len(eps), err, c.want)
			}
		}
		late, _ := db.AlertEpisodes(t.Context(), store.AlertFilter{From: minute(12), To: minute(20)})
		if len(late) != 1 || late[0].Evaluations != 0 || late[0].Worst != 0.85 || late[0].State != events.AlertResolved {
			t.Errorf("a window holding only the resolution: %+v; want the resolution, no firing evaluation", late)
		}
	})
}
