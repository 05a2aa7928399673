package reporter_test

import (
	"fmt"
	"maps"
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
