package reporter

import (
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/events"
)

// watched is rules that watch every rule on every channel.
func watched(rule, channel string) bool { return true }

// One rule on one channel through the evaluations of a day, with
// --alert-for 10m and --alert-repeat 1h: what is published, what the
// webhook hears, and what the state keeps once it answered.
func TestTransitions(t *testing.T) {
	t0 := time.Date(2026, 11, 3, 12, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	holds := func(m int) []Alert {
		return []Alert{{Rule: RuleDeliveryRateLow, Channel: "SMS", From: at(m - 60), To: at(m)}}
	}
	resolve := func(f firing) Alert {
		return Alert{Rule: f.Rule, Channel: f.Channel, State: events.AlertResolved, Since: f.Since}
	}
	timing := alertTiming{hold: 10 * time.Minute, repeat: time.Hour}
	key := firingKey(RuleDeliveryRateLow, "SMS")
	if key != "delivery_rate_low.SMS" || firingKey(RuleFallbackRateHigh, "") != "fallback_rate_high._" || firingKey("r", "A B*") != "r.A=B=" {
		t.Errorf("keys %q, %q, %q", key, firingKey(RuleFallbackRateHigh, ""), firingKey("r", "A B*"))
	}

	state := map[string]firing{}
	type want struct {
		published string // "", firing or resolved
		notify    bool
		kept      bool
		pending   bool
		unheard   bool
	}
	for _, step := range []struct {
		minute  int
		holding bool
		posted  bool // the webhook took the POST, if one was due
		want    want
	}{
		{0, true, true, want{"", false, true, true, false}},                  // holds: pending
		{5, true, true, want{"", false, true, true, false}},                  // still pending: 5 of 10 min
		{10, true, true, want{events.AlertFiring, true, true, false, false}}, // held 10 min: fires
		{15, true, true, want{events.AlertFiring, false, true, false, false}},
		{70, true, false, want{events.AlertFiring, true, true, false, false}}, // repeat due; the POST fails
		{75, true, true, want{events.AlertFiring, true, true, false, false}},  // tried again
		{80, true, true, want{events.AlertFiring, false, true, false, false}},
		{85, false, true, want{events.AlertResolved, true, false, false, false}}, // stops: resolves
		{90, true, true, want{"", false, true, true, false}},                     // holds again: pending anew
		{95, false, true, want{"", false, false, false, false}},                  // stops before firing: forgotten
		{100, true, true, want{"", false, true, true, false}},
		{110, true, true, want{events.AlertFiring, true, true, false, false}},
		{115, false, false, want{events.AlertResolved, true, true, false, true}}, // resolves; the POST fails: kept unheard
		{120, false, false, want{"", true, true, false, true}},                   // posted again, not published; fails again
		{125, false, true, want{"", true, false, false, false}},                  // the webhook takes it: forgotten
		{130, true, true, want{"", false, true, true, false}},
		{140, true, true, want{events.AlertFiring, true, true, false, false}},
		{145, false, false, want{events.AlertResolved, true, true, false, true}},
		{150, true, true, want{"", false, true, true, false}},                      // holds again before the webhook heard: pending anew, the resolution dropped
		{160, true, false, want{events.AlertFiring, true, true, false, false}},     // fires; the POST fails
		{165, false, true, want{events.AlertResolved, false, false, false, false}}, // resolves before the webhook heard of the firing: not posted
	} {
		var holding []Alert
		if step.holding {
			holding = holds(step.minute)
		}
		trs := transitions(holding, state, resolve, watched, timing, at(step.minute))
		if len(trs) != 1 && (step.holding || len(state) > 0) {
			t.Fatalf("minute %d: %d transitions", step.minute, len(trs))
		}
		if len(trs) == 0 {
			if step.want != (want{}) {
				t.Errorf("minute %d: nothing; want %+v", step.minute, step.want)
			}
			continue
		}
		tr := trs[0]
		tr.heard(step.posted, at(step.minute))
		got := want{notify: tr.notify, kept: tr.keep, pending: tr.state.Pending, unheard: tr.state.Unheard}
		if !tr.quiet && !tr.repost {
			got.published = tr.alert.State
		}
		if got != step.want {
			t.Errorf("minute %d: %+v; want %+v", step.minute, got, step.want)
		}
		if !tr.quiet && tr.alert.State == events.AlertFiring && !tr.alert.Since.Equal(tr.state.Since) {
			t.Errorf("minute %d: fires since %v, keeps %v", step.minute, tr.alert.Since, tr.state.Since)
		}
		if tr.repost && (tr.alert.State != events.AlertResolved || !tr.alert.Since.Equal(at(100))) {
			t.Errorf("minute %d: posts again %+v; want the resolution of the firing since minute 100", step.minute, tr.alert)
		}
		if step.minute == 150 && !tr.state.Since.Equal(at(150)) {
			t.Errorf("holding again after an unheard resolution: since %v; want %v", tr.state.Since, at(150))
		}
		if tr.keep {
			state[key] = tr.state
		} else {
			delete(state, key)
		}
		if step.minute == 15 && !state[key].Since.Equal(at(0)) {
			t.Errorf("firing since %v; want %v, the first evaluation it held at", state[key].Since, at(0))
		}
	}

	// Without --alert-for, a rule fires at the first evaluation that finds
	// it holding.
	if trs := transitions(holds(0), nil, resolve, watched, alertTiming{}, at(0)); len(trs) != 1 || trs[0].quiet || !trs[0].notify || trs[0].alert.State != events.AlertFiring {
		t.Errorf("no hold: %+v; want it firing at once", trs)
	}
}

// With --alert-keep-firing-for 10m, a firing rule that stops holding is
// kept firing, quietly, for ten minutes after it last held: holding again
// within them it fires on, since its start, the webhook hearing nothing
// new; past them it resolves.
func TestTransitionsKeepFiring(t *testing.T) {
	t0 := time.Date(2026, 11, 3, 12, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	resolve := func(f firing) Alert {
		return Alert{Rule: f.Rule, Channel: f.Channel, State: events.AlertResolved, Since: f.Since}
	}
	timing := alertTiming{repeat: time.Hour, keepFiring: 10 * time.Minute}
	key := firingKey(RuleDeliveryRateLow, "SMS")
	state := map[string]firing{}
	type want struct {
		published string // "", firing or resolved
		notify    bool
		kept      bool // held no longer, kept firing
	}
	for _, step := range []struct {
		minute  int
		holding bool
		want    want
	}{
		{0, true, want{events.AlertFiring, true, false}},
		{5, false, want{"", false, true}},                    // stops: kept firing, quietly
		{10, true, want{events.AlertFiring, false, false}},   // holds again: fires on, nothing new to say
		{15, false, want{"", false, true}},                   // kept, 5 min after it last held
		{19, false, want{"", false, true}},                   // 9 min
		{20, false, want{events.AlertResolved, true, false}}, // 10 min: resolves
		{25, true, want{events.AlertFiring, true, false}},    // a new firing
	} {
		var holding []Alert
		if step.holding {
			holding = []Alert{{Rule: RuleDeliveryRateLow, Channel: "SMS", From: at(step.minute - 60), To: at(step.minute)}}
		}
		trs := transitions(holding, state, resolve, watched, timing, at(step.minute))
		if len(trs) != 1 {
			t.Fatalf("minute %d: %d transitions", step.minute, len(trs))
		}
		tr := trs[0]
		tr.heard(true, at(step.minute))
		got := want{notify: tr.notify, kept: tr.state.Kept}
		if !tr.quiet {
			got.published = tr.alert.State
		}
		if got != step.want {
			t.Errorf("minute %d: %+v; want %+v", step.minute, got, step.want)
		}
		if tr.state.Kept && (!tr.keep || !tr.alert.To.Equal(state[key].To) || tr.alert.State != events.AlertFiring) {
			t.Errorf("minute %d: kept firing as %+v; want the firing as it last held, its state kept", step.minute, tr.alert)
		}
		if tr.keep && tr.state.Kept != step.want.kept {
			t.Errorf("minute %d: state kept %v; want it marked kept only while kept firing (/alerts/firing says so)", step.minute, tr.state.Kept)
		}
		if step.minute == 10 && !tr.alert.Since.Equal(at(0)) {
			t.Errorf("holding again while kept: since %v; want the firing's start, %v", tr.alert.Since, at(0))
		}
		if tr.keep {
			state[key] = tr.state
		} else {
			delete(state, key)
		}
	}

	// A rule turned off (or one this release does not have) is not kept
	// firing: nothing would judge it again. It resolves at once.
	firing := map[string]firing{key: {Alert: Alert{Rule: RuleDeliveryRateLow, Channel: "SMS", State: events.AlertFiring, Since: at(0), To: at(30)}, Notified: at(0)}}
	off := func(rule, channel string) bool { return false }
	if trs := transitions(nil, firing, resolve, off, timing, at(35)); len(trs) != 1 || trs[0].quiet || trs[0].keep || trs[0].alert.State != events.AlertResolved {
		t.Errorf("a rule turned off 5 min after it last held: %+v; want it resolved at once", trs)
	}
}
