package reporter_test

import (
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
		{off, reporter.RuleDeliveryRateLow, "SMS", sms, fb, 0.9, 100, "SMS delivery rate no longer watched: --alert-min-delivery-rate is 0"},
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
