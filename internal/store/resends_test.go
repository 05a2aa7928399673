package store_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/store"
)

// Resend decisions are counted once each, placed by when they were made,
// and each is told what became of its OTP: delivered on via after it,
// delivered otherwise, or not delivered.
func TestResendsAndWhatBecameOfThem(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		t0, otp := insertResends(t, db)
		const profile = "profile-resends"

		window := store.ResendFilter{From: t0, To: t0.Add(time.Hour)}
		rep, err := db.Resends(t.Context(), window)
		if err != nil {
			t.Fatal(err)
		}
		twenty := int64(20000)
		want := []store.ResendGroup{
			{Result: events.ResendSent, TriggerChannel: "SMS", TriggerStatus: "UNDELIVERABLE", Via: "VOICE", Decisions: 2, DeliveredVia: 1, NotDelivered: 1, DeliverAfterMS: &twenty},
			{Result: events.ResendDryRun, TriggerChannel: "SMS", TriggerStatus: "TIMED_OUT", Via: "VOICE", Decisions: 1, DeliveredOtherwise: 1},
			{Result: events.ResendSkipped, TriggerChannel: "VIBER", TriggerStatus: "UNDELIVERABLE", Via: "SMS", Decisions: 1, DeliveredOtherwise: 1},
		}
		if rep.Decisions != 4 || len(rep.Groups) != len(want) {
			t.Fatalf("%d decisions in %+v; want 4 in %+v", rep.Decisions, rep.Groups, want)
		}
		for i, g := range rep.Groups {
			w := want[i]
			if (g.DeliverAfterMS == nil) != (w.DeliverAfterMS == nil) || g.DeliverAfterMS != nil && *g.DeliverAfterMS != *w.DeliverAfterMS {
				t.Errorf("group %d deliver after %s; want %s", i, msOf(g.DeliverAfterMS), msOf(w.DeliverAfterMS))
			}
			g.DeliverAfterMS, w.DeliverAfterMS = nil, nil
			if g != w {
				t.Errorf("group %d: %+v; want %+v", i, g, w)
			}
		}

		// Newest first, each with the delivery its outcome names.
		wantLatest := []struct {
			otp, outcome, channel string
			at                    time.Duration // of the delivery; 0: none
		}{
			{otp(3), store.ResendDeliveredOtherwise, "SMS", 90 * time.Second},
			{otp(2), store.ResendNotDelivered, "", 0},
			{otp(1), store.ResendDeliveredVia, "VOICE", time.Minute},
			{otp(4), store.ResendDeliveredOtherwise, "SMS", time.Second},
		}
		if len(rep.Latest) != len(wantLatest) {
			t.Fatalf("latest %+v; want %d decisions", rep.Latest, len(wantLatest))
		}
		for i, d := range rep.Latest {
			w := wantLatest[i]
			if d.OTPID != w.otp || d.Outcome != w.outcome || d.DeliveredChannel != w.channel || (d.DeliveredAt == nil) != (w.at == 0) ||
				d.DeliveredAt != nil && !d.DeliveredAt.Equal(t0.Add(w.at)) {
				t.Errorf("latest %d: %+v (delivered %v); want %s %s on %q at +%v", i, d, d.DeliveredAt, w.otp, w.outcome, w.channel, w.at)
			}
		}
		if d := rep.Latest[2]; d.Result != events.ResendSent || d.Via != "VOICE" || d.TriggerChannel != "SMS" || d.TriggerStatus != "UNDELIVERABLE" ||
			d.Attempt != 1 || d.DryRun || !d.DecidedAt.Equal(t0.Add(40*time.Second)) {
			t.Errorf("decision read back as %+v", d)
		}

		// The filters: a profile, the channel that failed, how many to list.
		for _, c := range []struct {
			f         store.ResendFilter
			decisions uint64
			latest    int
		}{
			{store.ResendFilter{From: t0, To: t0.Add(time.Hour), Profile: profile}, 3, 3},
			{store.ResendFilter{From: t0, To: t0.Add(time.Hour), Channel: "VIBER"}, 1, 1},
			{store.ResendFilter{From: t0, To: t0.Add(time.Hour), Latest: 2}, 4, 2},
			{store.ResendFilter{From: t0, To: t0.Add(time.Hour), Latest: -1}, 4, 0},
			{store.ResendFilter{From: t0.Add(time.Hour), To: t0.Add(3 * time.Hour)}, 1, 1},
			{store.ResendFilter{From: t0.Add(-time.Hour), To: t0}, 0, 0},
		} {
			got, err := db.Resends(t.Context(), c.f)
			if err != nil || got.Decisions != c.decisions || len(got.Latest) != c.latest || got.Groups == nil {
				t.Errorf("%+v: %d decisions, %d listed, %v; want %d, %d", c.f, got.Decisions, len(got.Latest), err, c.decisions, c.latest)
			}
			// Listing fewer lists the newest of all, whichever group
			// each is in (the first two are in different groups).
			if c.f.Latest == 2 && err == nil && len(got.Latest) == 2 && (got.Latest[0].OTPID != wantLatest[0].otp || got.Latest[1].OTPID != wantLatest[1].otp) {
				t.Errorf("%+v: listed %s, %s; want %s, %s", c.f, got.Latest[0].OTPID, got.Latest[1].OTPID, wantLatest[0].otp, wantLatest[1].otp)
			}
		}
	})
}

// The rollup job keeps each decision's outcome (resend_outcomes), and a
// read takes the kept ones but for the OTPs touched since the job ran,
// which it computes from their facts: before the job, after it, and after
// a late fact or a new decision, the answers are those computed from the
// facts alone. The touched OTPs are named as a list of ids up to a bound,
// past it by a subquery: both are run.
func TestResendOutcomesKeptAsTheFactsArrive(t *testing.T) {
	noSlack(t)
	t.Run("touched as a list", func(t *testing.T) { forEachBackend(t, resendOutcomesKept) })
	t.Run("touched as a subquery", func(t *testing.T) {
		t.Cleanup(store.SetMaxTouchedList(0))
		forEachBackend(t, resendOutcomesKept)
	})
}

func resendOutcomesKept(t *testing.T, db *store.DB) {
	t0, otp := insertResends(t, db)
	filters := []store.ResendFilter{
		{From: t0, To: t0.Add(time.Hour)},
		{From: t0.Add(-45 * 24 * time.Hour), To: t0.Add(45 * 24 * time.Hour)},
		{From: t0, To: t0.Add(time.Hour), Profile: "profile-resends", Latest: 2},
		{From: t0, To: t0.Add(3 * time.Hour), Channel: "SMS"},
	}
	answers := func() []store.ResendReport {
		t.Helper()
		var out []store.ResendReport
		for _, f := range filters {
			rep, err := db.Resends(t.Context(), f)
			if err != nil {
				t.Fatalf("%+v: %v", f, err)
			}
			out = append(out, rep)
		}
		return out
	}
	same := func(when string, got, want []store.ResendReport) {
		t.Helper()
		for i := range want {
			if !reflect.DeepEqual(got[i], want[i]) {
				t.Errorf("%s, %+v:\n%+v\nwant (from the facts)\n%+v", when, filters[i], got[i], want[i])
			}
		}
	}
	outcome := func(reps []store.ResendReport, otp string) string {
		for _, d := range reps[1].Latest {
			if d.OTPID == otp {
				return d.Outcome
			}
		}
		return "not listed"
	}
	refresh := func(want int) {
		t.Helper()
		run, err := db.RefreshRollups(t.Context())
		if err != nil || run.Resends != want {
			t.Fatalf("rollup job: %d resend outcomes computed, %v; want %d", run.Resends, err, want)
		}
	}

	fromFacts := answers() // the job never ran: every outcome from the facts
	for i, f := range filters {
		if rep, err := db.ResendsFromFacts(t.Context(), f); err != nil || !reflect.DeepEqual(rep, fromFacts[i]) {
			t.Errorf("%+v from the facts: %+v, %v; want %+v", f, rep, err, fromFacts[i])
		}
	}
	refresh(5) // its first run: every decision
	if n := count(t, db, "SELECT count() FROM resend_outcomes FINAL"); n != 5 {
		t.Fatalf("%d outcomes kept; want one per decision, 5", n)
	}
	same("after the job", answers(), fromFacts)

	// OTP 2's resend delivers, late: read at once, and the job's next
	// run computes that decision alone.
	late := store.Batch{Deliveries: []store.DeliveryRow{resendFact(2, events.ChannelVoice, events.StatusDelivered, 3*time.Minute, 100)}}
	if err := db.Insert(t.Context(), &late); err != nil {
		t.Fatal(err)
	}
	patched := answers()
	if got := outcome(patched, otp(2)); got != store.ResendDeliveredVia {
		t.Errorf("OTP 2 after its late delivery: %s; want %s", got, store.ResendDeliveredVia)
	}
	if patched[0].Groups[0].DeliveredVia != 2 {
		t.Errorf("sent via VOICE: %+v; want both delivered via", patched[0].Groups[0])
	}
	refresh(1)
	same("after the job's next run", answers(), patched)

	// A decision made after the run is counted before the next one.
	decided := store.Batch{Resends: []store.ResendRow{resendDecision(6, events.ResendSent, "VOICE", events.ChannelSMS, events.StatusUndeliverable, 10*time.Minute, "profile-resends", 101)}}
	if err := db.Insert(t.Context(), &decided); err != nil {
		t.Fatal(err)
	}
	if got := answers(); got[0].Decisions != 5 || outcome(got, otp(6)) != store.ResendNotDelivered {
		t.Errorf("a new decision: %d decisions, OTP 6 %s; want 5, %s", got[0].Decisions, outcome(got, otp(6)), store.ResendNotDelivered)
	}
	refresh(1)

	// A run more than a day after the last (the job stopped, and
	// rollup_touched may have lost what was touched since) computes
	// every decision again.
	var last uint64
	if err := db.Conn().QueryRow(t.Context(), "SELECT max(version) FROM resend_outcome_runs").Scan(&last); err != nil {
		t.Fatal(err)
	}
	store.SetRollupClock(db, func() time.Time { return time.UnixMilli(int64(last)).Add(25 * time.Hour) })
	refresh(6)
	store.SetRollupClock(db, nil)
	withNew := answers()
	for i, f := range filters {
		if rep, err := db.ResendsFromFacts(t.Context(), f); err != nil || !reflect.DeepEqual(rep, withNew[i]) {
			t.Errorf("%+v kept: %+v; from the facts %+v, %v", f, withNew[i], rep, err)
		}
	}

	// An untouched decision is read from its kept row: one written
	// over it (a newer version) is what the answer says.
	if err := db.Conn().Exec(t.Context(), `INSERT INTO resend_outcomes SELECT version + 1, decided_at, decision_id, otp_id, profile_id, result, reason, via,
  trigger_channel, trigger_status, attempt, dry_run, 'not_delivered', first_at, first_channel FROM resend_outcomes FINAL WHERE otp_id = ?`, otp(3)); err != nil {
		t.Fatal(err)
	}
	if got := outcome(answers(), otp(3)); got != store.ResendNotDelivered || outcome(withNew, otp(3)) != store.ResendDeliveredOtherwise {
		t.Errorf("OTP 3 over a kept row saying not delivered: %s (before: %s)", got, outcome(withNew, otp(3)))
	}
}

var resendsT0 = time.Date(2026, 11, 3, 12, 0, 0, 0, time.UTC)

func resendOTP(i int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", 700+i) }

// insertResends stores five OTPs' facts and resend decisions, four of them
// decided in the hour from t0 (see TestResendsAndWhatBecameOfThem).
// With MaxLag, and the job's last run within it, a read takes the kept
// outcomes as the job left them: a decision and a late delivery stored
// since are not counted, and AsOf says since when. Without the lag, or
// with the run older than it, the read is exact.
func TestResendsWithMaxLag(t *testing.T) {
	noSlack(t)
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		t0, otp := insertResends(t, db)
		window := store.ResendFilter{From: t0, To: t0.Add(time.Hour)}
		lagged := window
		lagged.MaxLag = time.Hour
		read := func(f store.ResendFilter) (store.ResendReport, time.Time, bool) {
			t.Helper()
			ctx := store.PlanOnce(t.Context())
			rep, err := db.Resends(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			asOf, ok := store.AsOf(ctx)
			return rep, asOf, ok
		}
		outcome := func(rep store.ResendReport, id string) string {
			for _, d := range rep.Latest {
				if d.OTPID == id {
					return d.Outcome
				}
			}
			return "not listed"
		}

		// Before the job's first run there is nothing kept: exact.
		if rep, _, ok := read(lagged); ok || rep.Decisions != 4 {
			t.Fatalf("with max_lag before the job ran: %d decisions, lagged %v; want 4, exact", rep.Decisions, ok)
		}
		ran := time.Now()
		if _, err := db.RefreshRollups(t.Context()); err != nil {
			t.Fatal(err)
		}
		inserted := time.Now()
		more := store.Batch{
			Deliveries: []store.DeliveryRow{resendFact(2, events.ChannelVoice, events.StatusDelivered, 3*time.Minute, 100)},
			Resends:    []store.ResendRow{resendDecision(6, events.ResendSent, "VOICE", events.ChannelSMS, events.StatusUndeliverable, 10*time.Minute, "profile-resends", 101)},
		}
		if err := db.Insert(t.Context(), &more); err != nil {
			t.Fatal(err)
		}

		rep, asOf, ok := read(lagged)
		if rep.Decisions != 4 || outcome(rep, otp(2)) != store.ResendNotDelivered || outcome(rep, otp(6)) != "not listed" {
			t.Errorf("with max_lag 1h: %d decisions, OTP 2 %s, OTP 6 %s; want the 4 kept, OTP 2 not delivered, OTP 6 not listed",
				rep.Decisions, outcome(rep, otp(2)), outcome(rep, otp(6)))
		}
		if !ok || asOf.Before(ran.Truncate(time.Millisecond)) || asOf.After(inserted) {
			t.Errorf("with max_lag 1h: as of %v (%v); want the job's run, between %v and %v", asOf, ok, ran, inserted)
		}

		exact, _, ok := read(window)
		if ok || exact.Decisions != 5 || outcome(exact, otp(2)) != store.ResendDeliveredVia || outcome(exact, otp(6)) != store.ResendNotDelivered {
			t.Errorf("exact: %d decisions, OTP 2 %s, OTP 6 %s, lagged %v; want 5, delivered via, not delivered, exact",
				exact.Decisions, outcome(exact, otp(2)), outcome(exact, otp(6)), ok)
		}
		// A run older than the lag: exact too.
		brokertest.WaitFor(t, 5*time.Second, "the run 20 ms behind", func() bool { return time.Since(inserted) > 20*time.Millisecond })
		short := window
		short.MaxLag = 10 * time.Millisecond
		if rep, _, ok := read(short); ok || !reflect.DeepEqual(rep, exact) {
			t.Errorf("with max_lag shorter than the time since the run: %+v, lagged %v; want the exact answer %+v", rep, ok, exact)
		}
	})
}

func insertResends(t *testing.T, db *store.DB) (t0 time.Time, otp func(int) string) {
	t.Helper()
	t0, otp = resendsT0, resendOTP
	const profile, other = "profile-resends", "profile-other"
	var b store.Batch
	seq := uint64(0)
	fact := func(i int, ch events.Channel, st events.Status, after time.Duration) {
		seq++
		b.Deliveries = append(b.Deliveries, resendFact(i, ch, st, after, seq))
	}
	decide := func(i int, result, via string, ch events.Channel, st events.Status, after time.Duration, prof string) {
		seq++
		b.Resends = append(b.Resends, resendDecision(i, result, via, ch, st, after, prof, seq))
	}
	// 1: SMS failed, re-sent via VOICE, which delivered 20 s later
	// (the decision delivered twice: one row).
	fact(1, events.ChannelSMS, events.StatusUndeliverable, 5*time.Second)
	decide(1, events.ResendSent, "VOICE", events.ChannelSMS, events.StatusUndeliverable, 40*time.Second, profile)
	decide(1, events.ResendSent, "VOICE", events.ChannelSMS, events.StatusUndeliverable, 40*time.Second, profile)
	fact(1, events.ChannelVoice, events.StatusDelivered, time.Minute)
	// 2: the same, and nothing delivered; another profile.
	fact(2, events.ChannelSMS, events.StatusUndeliverable, 5*time.Second)
	decide(2, events.ResendSent, "VOICE", events.ChannelSMS, events.StatusUndeliverable, 41*time.Second, other)
	// 3: SMS timed out; a dry-run would have re-sent via VOICE, and SMS
	// delivered late all the same.
	fact(3, events.ChannelSMS, events.StatusTimedOut, 5*time.Second)
	decide(3, events.ResendDryRun, "VOICE", events.ChannelSMS, events.StatusTimedOut, 42*time.Second, profile)
	fact(3, events.ChannelSMS, events.StatusDelivered, 90*time.Second)
	// 4: VIBER failed, skipped: SMS had delivered before (on via, but
	// before the decision).
	fact(4, events.ChannelSMS, events.StatusDelivered, time.Second)
	fact(4, events.ChannelViber, events.StatusUndeliverable, 2*time.Second)
	decide(4, events.ResendSkipped, "SMS", events.ChannelViber, events.StatusUndeliverable, 30*time.Second, profile)
	// 5: decided outside the window.
	decide(5, events.ResendSent, "VOICE", events.ChannelSMS, events.StatusUndeliverable, 2*time.Hour, profile)
	if err := db.Insert(t.Context(), &b); err != nil {
		t.Fatal(err)
	}
	return t0, otp
}

// resendFact is a delivery fact of OTP i (resendOTP) at after t0.
func resendFact(i int, ch events.Channel, st events.Status, after time.Duration, seq uint64) store.DeliveryRow {
	ev := events.DeliveryStatus{Channel: ch, Status: st, Source: events.SourceWebhook, OTPID: resendOTP(i), ProfileID: "profile-resends",
		Timestamp: resendsT0.Add(after), ReceivedAt: resendsT0.Add(after)}
	return store.DeliveryRow{DeliveryStatus: ev, EventID: events.DeliveryID(&ev), Seq: seq}
}

// resendDecision is a decision about a failure of OTP i on ch, made at
// after t0.
func resendDecision(i int, result, via string, ch events.Channel, st events.Status, after time.Duration, profile string, seq uint64) store.ResendRow {
	otp := resendOTP(i)
	r := events.Resend{OTPID: otp, ProfileID: profile, DecisionID: fmt.Sprintf("%s.%s.%s", otp, ch, st), Result: result, Via: via,
		TriggerChannel: ch, TriggerStatus: st, Attempt: 1, DecidedAt: resendsT0.Add(after), DryRun: result == events.ResendDryRun}
	return store.ResendRow{EventID: "rs-" + r.DecisionID, Resend: r, Seq: seq}
}

func msOf(p *int64) string {
	if p == nil {
		return "none"
	}
	return fmt.Sprintf("%d ms", *p)
}

// More touched OTPs than half of ClickHouse's default max_query_size holds
// as a list (8,000 ids, ~296 KB): the read raises the setting for its
// queries and answers as computing every decision from the facts does.
func TestResendsWithALongTouchedList(t *testing.T) {
	noSlack(t)
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		t0, _ := insertResends(t, db)
		if _, err := db.RefreshRollups(t.Context()); err != nil {
			t.Fatal(err)
		}
		insertDelivered(t, db, 100000, 108000)
		f := store.ResendFilter{From: t0, To: t0.Add(time.Hour)}
		got, err := db.Resends(t.Context(), f)
		if err != nil {
			t.Fatalf("Resends with 8,000 OTPs touched: %v", err)
		}
		want, err := db.ResendsFromFacts(t.Context(), f)
		if err != nil {
			t.Fatal(err)
		}
		a, _ := json.Marshal(got)
		b, _ := json.Marshal(want)
		if string(a) != string(b) || got.Decisions == 0 {
			t.Errorf("Resends = %s; from the facts %s", a, b)
		}
	})
}
