package store_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/store"
)

// Resend decisions are counted once each, placed by when they were made,
// and each is told what became of its OTP: delivered on via after it,
// delivered otherwise, or not delivered.
func TestResendsAndWhatBecameOfThem(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		t0 := time.Date(2026, 11, 3, 12, 0, 0, 0, time.UTC)
		otp := func(i int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", 700+i) }
		const profile, other = "profile-resends", "profile-other"
		var b store.Batch
		seq := uint64(0)
		fact := func(i int, ch events.Channel, st events.Status, after time.Duration) {
			seq++
			ev := events.DeliveryStatus{Channel: ch, Status: st, Source: events.SourceWebhook, OTPID: otp(i), ProfileID: profile,
				Timestamp: t0.Add(after), ReceivedAt: t0.Add(after)}
			b.Deliveries = append(b.Deliveries, store.DeliveryRow{DeliveryStatus: ev, EventID: events.DeliveryID(&ev), Seq: seq})
		}
		decide := func(i int, result, via string, ch events.Channel, st events.Status, after time.Duration, prof string) {
			seq++
			r := events.Resend{OTPID: otp(i), ProfileID: prof, DecisionID: fmt.Sprintf("%s.%s.%s", otp(i), ch, st), Result: result, Via: via,
				TriggerChannel: ch, TriggerStatus: st, Attempt: 1, DecidedAt: t0.Add(after), DryRun: result == events.ResendDryRun}
			b.Resends = append(b.Resends, store.ResendRow{EventID: "rs-" + r.DecisionID, Resend: r, Seq: seq})
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
		}
	})
}

func msOf(p *int64) string {
	if p == nil {
		return "none"
	}
	return fmt.Sprintf("%d ms", *p)
}
