package reporter_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/reporter"
	"github.com/otpscope/otpscope/internal/store"
)

// A resolution says why the rule holds no longer: the figure is back, there
// is too little volume to judge, or the rule was turned off.
func TestAlertResolvedSaysWhy(t *testing.T) {
	since := time.Date(2026, 11, 3, 11, 30, 0, 0, time.UTC)
	from, to := since.Add(-30*time.Minute), since.Add(30*time.Minute)
	rate := func(x float64) *float64 { return &x }
	rules := reporter.AlertRules{Window: time.Hour, MinDeliveryRate: 0.8, MinSettled: 50, MaxFallbackRate: 0.2, MinOTPs: 50}
	off := rules
	off.MinDeliveryRate, off.MaxFallbackRate = 0, 0
	smsOff := rules
	smsOff.ChannelMinDeliveryRate = reporter.ChannelRates{"SMS": 0}
	smsStricter := rules
	smsStricter.ChannelMinDeliveryRate = reporter.ChannelRates{"SMS": 0.85}
	sms := []store.ChannelStats{{Channel: "SMS", Delivered: 90, Failed: 10, DeliveryRate: rate(0.9)}}
	few := []store.ChannelStats{{Channel: "SMS", Delivered: 9, Failed: 1, DeliveryRate: rate(0.9)}}
	fb := store.FallbackStats{OTPs: 100, FallbackOTPs: 10, FallbackRate: rate(0.1)}
	for _, c := range []struct {
		rules   reporter.AlertRules
		rule    string
		channel string
		chs     []store.ChannelStats
		fb      store.FallbackStats
		value   float64
		volume  uint64
		says    string
	}{
		{rules, reporter.RuleDeliveryRateLow, "SMS", sms, fb, 0.9, 100, "SMS delivery rate back to 90.0%, at least 80.0% (90 of 100 settled attempts delivered"},
		{rules, reporter.RuleDeliveryRateLow, "SMS", few, fb, 0.9, 10, "SMS delivery rate no longer judged: 10 settled attempts, the rule needs 50"},
		{rules, reporter.RuleDeliveryRateLow, "VIBER", sms, fb, 0, 0, "VIBER delivery rate no longer judged: 0 settled attempts"},
		{off, reporter.RuleDeliveryRateLow, "SMS", sms, fb, 0.9, 100, "SMS delivery rate no longer watched: its threshold is 0"},
		{smsOff, reporter.RuleDeliveryRateLow, "SMS", sms, fb, 0.9, 100, "SMS delivery rate no longer watched: its threshold is 0"},
		{smsStricter, reporter.RuleDeliveryRateLow, "SMS", sms, fb, 0.9, 100, "SMS delivery rate back to 90.0%, at least 85.0%"},
		{rules, reporter.RuleFallbackRateHigh, "", sms, fb, 0.1, 100, "fallback rate back to 10.0%, at most 20.0% (10 of 100 OTPs fell back"},
		{rules, reporter.RuleFallbackRateHigh, "", sms, store.FallbackStats{OTPs: 5, FallbackOTPs: 5, FallbackRate: rate(1)}, 1, 5, "fallback rate no longer judged: 5 OTPs, the rule needs 50"},
		{off, reporter.RuleFallbackRateHigh, "", sms, fb, 0.1, 100, "fallback rate no longer watched"},
		{rules, "conversion_drop", "", sms, fb, 0, 0, "conversion_drop no longer evaluated by this release"},
	} {
		al := c.rules.Resolved(c.rule, c.channel, since, from, to, c.chs, c.fb)
		if al.State != events.AlertResolved || al.Rule != c.rule || al.Channel != c.channel || !al.Since.Equal(since) || !al.From.Equal(from) || !al.To.Equal(to) ||
			al.Value != c.value || al.Volume != c.volume || !strings.HasPrefix(al.Summary, c.says) || !strings.Contains(al.Summary, "firing since 2026-11-03T11:30:00Z") {
			t.Errorf("%s on %q resolved as %+v; want value %v, volume %d, saying %q and since when it fired", c.rule, c.channel, al, c.value, c.volume, c.says)
		}
	}
}

// A channel's own threshold replaces the default for it, 0 turning the rule
// off for that channel; the default 0 watches only the channels named.
func TestAlertChannelThresholds(t *testing.T) {
	from, to := time.Date(2026, 11, 3, 11, 0, 0, 0, time.UTC), time.Date(2026, 11, 3, 12, 0, 0, 0, time.UTC)
	rate := func(x float64) *float64 { return &x }
	chs := []store.ChannelStats{
		{Channel: "SMS", Delivered: 90, Failed: 10, DeliveryRate: rate(0.9)},
		{Channel: "SILENT", Delivered: 75, Failed: 25, DeliveryRate: rate(0.75)},
		{Channel: "VIBER", Delivered: 70, Failed: 30, DeliveryRate: rate(0.7)},
	}
	var rates reporter.ChannelRates
	if err := rates.Set("sms=0.95, SILENT=0"); err != nil {
		t.Fatal(err)
	}
	if got := rates.String(); got != "SILENT=0,SMS=0.95" {
		t.Errorf("rates read back as %q", got)
	}
	for _, c := range []struct {
		name  string
		rules reporter.AlertRules
		want  map[string]float64 // channel → threshold of its alert
	}{
		{"default only", reporter.AlertRules{MinDeliveryRate: 0.8, MinSettled: 50}, map[string]float64{"SILENT": 0.8, "VIBER": 0.8}},
		{"SMS stricter, SILENT off", reporter.AlertRules{MinDeliveryRate: 0.8, MinSettled: 50, ChannelMinDeliveryRate: rates}, map[string]float64{"SMS": 0.95, "VIBER": 0.8}},
		{"only the channels named", reporter.AlertRules{MinSettled: 50, ChannelMinDeliveryRate: rates}, map[string]float64{"SMS": 0.95}},
	} {
		got := map[string]float64{}
		for _, al := range c.rules.Evaluate(from, to, chs, store.FallbackStats{}) {
			got[al.Channel] = al.Threshold
			if !strings.Contains(al.Summary, fmt.Sprintf("below %.1f%%", al.Threshold*100)) {
				t.Errorf("%s: %s's summary %q does not name its threshold", c.name, al.Channel, al.Summary)
			}
		}
		if !maps.Equal(got, c.want) {
			t.Errorf("%s: alerts with thresholds %v; want %v", c.name, got, c.want)
		}
	}
	for _, bad := range []string{"SMS", "=0.9", "SMS=1.5", "SMS=x", "SMS=0.9,sms=0.8"} {
		var r reporter.ChannelRates
		if err := r.Set(bad); err == nil {
			t.Errorf("--alert-channel-min-delivery-rate %q accepted as %v", bad, r)
		}
	}
}

// delivery_slow fires for a channel whose p95 latency (dispatch to
// DELIVERED, not a journey's time to deliver) is above its
// threshold, with enough delivered attempts; a channel's own threshold
// replaces the default, 0 turning it off; it resolves saying why; its
// figures are milliseconds, read as durations.
func TestAlertDeliverySlow(t *testing.T) {
	from, to := time.Date(2026, 11, 3, 11, 0, 0, 0, time.UTC), time.Date(2026, 11, 3, 12, 0, 0, 0, time.UTC)
	lat := func(p95 float64) *store.Percentiles { return &store.Percentiles{P50: p95 / 3, P95: p95} }
	chs := []store.ChannelStats{
		{Channel: "SMS", Delivered: 90, Failed: 10, LatencyMS: lat(75_000)},
		{Channel: "VOICE", Delivered: 60, LatencyMS: lat(90_000)},
		{Channel: "VIBER", Delivered: 100, LatencyMS: lat(59_999)},
		{Channel: "WHATSAPP", Delivered: 5, LatencyMS: lat(300_000)}, // too few delivered
		{Channel: "PUSH", Delivered: 0, Failed: 80},                  // none delivered: no latency
	}
	var own reporter.ChannelDurations
	if err := own.Set("voice=2m, SMS=0"); err != nil {
		t.Fatal(err)
	}
	if got := own.String(); got != "SMS=0s,VOICE=2m0s" {
		t.Errorf("durations read back as %q", got)
	}
	for _, c := range []struct {
		name  string
		rules reporter.AlertRules
		want  map[string]float64 // channel → threshold (ms) of its alert
	}{
		{"default", reporter.AlertRules{MaxLatencyP95: time.Minute, MinSettled: 50}, map[string]float64{"SMS": 60_000, "VOICE": 60_000}},
		{"VOICE its own, SMS off", reporter.AlertRules{MaxLatencyP95: time.Minute, MinSettled: 50, ChannelMaxLatencyP95: own}, map[string]float64{}},
		{"off", reporter.AlertRules{MinSettled: 50}, map[string]float64{}},
		{"fewer needed", reporter.AlertRules{MaxLatencyP95: time.Minute, MinSettled: 5}, map[string]float64{"SMS": 60_000, "VOICE": 60_000, "WHATSAPP": 60_000}},
	} {
		got := map[string]float64{}
		for _, al := range c.rules.Evaluate(from, to, chs, store.FallbackStats{}) {
			if al.Rule != reporter.RuleDeliverySlow {
				t.Errorf("%s: %+v; want only delivery_slow (the other rules are off)", c.name, al)
				continue
			}
			got[al.Channel] = al.Threshold
			if !strings.HasPrefix(al.Summary, al.Channel+" p95 latency (dispatch → DELIVERED) ") || !strings.Contains(al.Summary, "above 1 min") || al.Volume != chs[slices.IndexFunc(chs, func(s store.ChannelStats) bool { return s.Channel == al.Channel })].Delivered {
				t.Errorf("%s: %s's alert %+v does not name its threshold or count the delivered attempts", c.name, al.Channel, al)
			}
		}
		if !maps.Equal(got, c.want) {
			t.Errorf("%s: alerts with thresholds %v; want %v", c.name, got, c.want)
		}
	}
	since := from.Add(-time.Hour)
	rules := reporter.AlertRules{MaxLatencyP95: 2 * time.Minute, MinSettled: 50}
	for channel, says := range map[string]string{
		"SMS":      "SMS p95 latency (dispatch → DELIVERED) back to 1 min 15 s, at most 2 min (90 delivered attempts",
		"WHATSAPP": "WHATSAPP latency no longer judged: 5 delivered attempts, the rule needs 50",
		"PUSH":     "PUSH latency no longer judged: 0 delivered attempts",
	} {
		al := rules.Resolved(reporter.RuleDeliverySlow, channel, since, from, to, chs, store.FallbackStats{})
		if al.State != events.AlertResolved || al.Threshold != 120_000 || !strings.HasPrefix(al.Summary, says) {
			t.Errorf("delivery_slow on %s resolved as %+v; want threshold 120000 ms, saying %q", channel, al, says)
		}
	}
	if al := (reporter.AlertRules{}).Resolved(reporter.RuleDeliverySlow, "SMS", since, from, to, chs, store.FallbackStats{}); !strings.HasPrefix(al.Summary, "SMS latency no longer watched") {
		t.Errorf("delivery_slow turned off resolves saying %q", al.Summary)
	}
	for rule, want := range map[string]string{reporter.RuleDeliverySlow: "1 min 15 s", reporter.RuleDeliveryRateLow: "75.0%"} {
		v := map[string]float64{reporter.RuleDeliverySlow: 75_000, reporter.RuleDeliveryRateLow: 0.75}[rule]
		if got := reporter.AlertFigure(rule, v); got != want {
			t.Errorf("AlertFigure(%s, %v) = %q; want %q", rule, v, got, want)
		}
	}
	for _, bad := range []string{"SMS", "=30s", "SMS=-1s", "SMS=30", "SMS=1m,sms=2m"} {
		var d reporter.ChannelDurations
		if err := d.Set(bad); err == nil {
			t.Errorf("--alert-channel-max-latency-p95 %q accepted as %v", bad, d)
		}
	}
}

// TestAlertChannelNames: the per-channel thresholds take only names a
// channel can have; a well-formed name otpscope does not know (a channel
// tyntec added, or a typo such as SMSS) is kept, and listed as unknown so
// that the start log can say so.
func TestAlertChannelNames(t *testing.T) {
	for _, bad := range []string{"S.MS=0.5", "S.MS=0.5,VOICE=0.3", "V OICE=0.3", "SMS*=0.5", "1SMS=0.5", "SMS-2=0.5", "tyntec.2fa.>=0.5"} {
		var r reporter.ChannelRates
		if err := r.Set(bad); err == nil || !strings.Contains(err.Error(), "not a channel name") {
			t.Errorf("--alert-channel-min-delivery-rate %q: %v (%v); want it refused as not a channel name", bad, err, r)
		}
		var d reporter.ChannelDurations
		if err := d.Set(strings.ReplaceAll(bad, "0.5", "5s")); err == nil {
			t.Errorf("--alert-channel-max-latency-p95 %q accepted as %v", bad, d)
		}
	}
	var r reporter.ChannelRates
	if err := r.Set("SMSS=0.95,sms=0.9,silent=0,Push=0.5,whatsapp=0.8,VIBER=0.7,voice=0.7,RCS=0.9"); err != nil {
		t.Fatal(err)
	}
	if got := r.Unknown(); !slices.Equal(got, []string{"RCS", "SMSS"}) {
		t.Errorf("unknown channels %v; want RCS, SMSS", got)
	}
	var d reporter.ChannelDurations
	if err := d.Set("foo=5s,SMS=30s"); err != nil {
		t.Fatal(err)
	}
	if got := d.Unknown(); !slices.Equal(got, []string{"FOO"}) {
		t.Errorf("unknown channels %v; want FOO", got)
	}
}
