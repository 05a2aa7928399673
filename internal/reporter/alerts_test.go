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
		{rules, reporter.RuleFallbackRateHigh, "", sms, fb, 0.1, 100, "fallback rate back to 10.0%, at most 20.0% (10 of 100 journeys fell back"},
		{rules, reporter.RuleFallbackRateHigh, "", sms, store.FallbackStats{OTPs: 5, FallbackOTPs: 5, FallbackRate: rate(1)}, 1, 5, "fallback rate no longer judged: 5 journeys, the rule needs 50"},
		{off, reporter.RuleFallbackRateHigh, "", sms, fb, 0.1, 100, "fallback rate no longer watched"},
		{rules, "conversion_drop", "", sms, fb, 0, 0, "conversion_drop no longer evaluated by this release"},
	} {
		al := c.rules.Resolved(c.rule, c.channel, since, from, to, c.chs, c.fb, reporter.Figures{})
		if al.State != events.AlertResolved || al.Rule != c.rule || al.Channel != c.channel || !al.Since.Equal(since) || !al.From.Equal(from) || !al.To.Equal(to) ||
			al.Value != c.value || al.Volume != c.volume || !strings.HasPrefix(al.Summary, c.says) || !strings.Contains(al.Summary, "firing since 2026-11-03T11:30:00Z") {
			t.Errorf("%s on %q resolved as %+v; want value %v, volume %d, saying %q and since when it fired", c.rule, c.channel, al, c.value, c.volume, c.says)
		}
		// A rule turned off or unknown is not watched (not kept firing
		// under --alert-keep-firing-for); one short of volume still is.
		if got, want := c.rules.Watches(c.rule, c.channel), !strings.Contains(c.says, "no longer watched") && !strings.Contains(c.says, "no longer evaluated"); got != want {
			t.Errorf("%s on %q (resolved saying %q): watched %v; want %v", c.rule, c.channel, c.says, got, want)
		}
	}
	// Channels otpscope does not know are watched together, as OTHER, on
	// their delivery rate only.
	rules.MaxLatencyP95 = time.Minute
	for _, c := range []struct {
		rule, channel string
		want          bool
	}{
		{reporter.RuleDeliveryRateLow, "PAGE_ONCALL", false},
		{reporter.RuleDeliveryRateLow, reporter.OtherChannels, true},
		{reporter.RuleDeliverySlow, reporter.OtherChannels, false},
		{reporter.RuleDeliverySlow, "SMS", true},
		{reporter.RuleDeliveryRateDrop, "SMS", false}, // its limit 0 by default
	} {
		if got := rules.Watches(c.rule, c.channel); got != c.want {
			t.Errorf("%s on %s watched %v; want %v", c.rule, c.channel, got, c.want)
		}
	}
}

// The summaries give their times on the rules' zone's clock
// (--report-timezone), with its offset: a team in Kolkata reads its own
// hours. The alert's fields stay instants.
func TestAlertSummariesOnTheZonesClock(t *testing.T) {
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Fatal(err)
	}
	since := time.Date(2026, 11, 3, 11, 0, 0, 0, time.UTC)
	from, to := since.Add(30*time.Minute), since.Add(90*time.Minute)
	rate := func(x float64) *float64 { return &x }
	rules := reporter.AlertRules{Window: time.Hour, MinDeliveryRate: 0.9, MinSettled: 10, Zone: kolkata}
	sms := []store.ChannelStats{{Channel: "SMS", Delivered: 8, Failed: 2, DeliveryRate: rate(0.8)}}
	fired := rules.Evaluate(from, to, sms, store.FallbackStats{})
	if len(fired) != 1 || !strings.HasSuffix(fired[0].Summary, "(8 of 10 settled attempts delivered, 2026-11-03T17:00:00+05:30 – 2026-11-03T18:00:00+05:30)") ||
		!fired[0].From.Equal(from) || !fired[0].To.Equal(to) {
		t.Errorf("fired %+v; want one summary on Kolkata's clock", fired)
	}
	back := []store.ChannelStats{{Channel: "SMS", Delivered: 10, DeliveryRate: rate(1)}}
	al := rules.Resolved(reporter.RuleDeliveryRateLow, "SMS", since, from, to, back, store.FallbackStats{}, reporter.Figures{})
	if want := "firing since 2026-11-03T16:30:00+05:30; 2026-11-03T17:00:00+05:30 – 2026-11-03T18:00:00+05:30"; !strings.Contains(al.Summary, want) {
		t.Errorf("resolved: %q; want %q", al.Summary, want)
	}
	// Without a zone, UTC's.
	rules.Zone = nil
	if fired := rules.Evaluate(from, to, sms, store.FallbackStats{}); len(fired) != 1 || !strings.Contains(fired[0].Summary, "2026-11-03T11:30:00Z – 2026-11-03T12:30:00Z") {
		t.Errorf("fired %+v; want its summary in UTC", fired)
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
// figures are milliseconds, read in seconds to a tenth.
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
			if !strings.HasPrefix(al.Summary, al.Channel+" p95 latency (dispatch → DELIVERED) ") || !strings.Contains(al.Summary, "above 60.0 s") || al.Volume != chs[slices.IndexFunc(chs, func(s store.ChannelStats) bool { return s.Channel == al.Channel })].Delivered {
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
		"SMS":      "SMS p95 latency (dispatch → DELIVERED) back to 75.0 s, at most 120.0 s (90 delivered attempts",
		"WHATSAPP": "WHATSAPP latency no longer judged: 5 delivered attempts, the rule needs 50",
		"PUSH":     "PUSH latency no longer judged: 0 delivered attempts",
	} {
		al := rules.Resolved(reporter.RuleDeliverySlow, channel, since, from, to, chs, store.FallbackStats{}, reporter.Figures{})
		if al.State != events.AlertResolved || al.Threshold != 120_000 || !strings.HasPrefix(al.Summary, says) {
			t.Errorf("delivery_slow on %s resolved as %+v; want threshold 120000 ms, saying %q", channel, al, says)
		}
	}
	if al := (reporter.AlertRules{}).Resolved(reporter.RuleDeliverySlow, "SMS", since, from, to, chs, store.FallbackStats{}, reporter.Figures{}); !strings.HasPrefix(al.Summary, "SMS latency no longer watched") {
		t.Errorf("delivery_slow turned off resolves saying %q", al.Summary)
	}
	for rule, want := range map[string]string{reporter.RuleDeliverySlow: "75.0 s", reporter.RuleDeliveryRateLow: "75.0%"} {
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

// TestAlertUnknownChannelsTogether: the channels otpscope does not know,
// which anyone with a webhook token can make up, are judged together as
// OTHER, one alert per rule at most, on the delivery rate only (their
// percentiles cannot be summed), naming the few that failed most; a known
// channel and one named in a threshold flag keep their own alerts; OTHER
// in --alert-channel-min-delivery-rate is the threshold of them all.
func TestAlertUnknownChannelsTogether(t *testing.T) {
	from, to := time.Date(2026, 11, 3, 11, 0, 0, 0, time.UTC), time.Date(2026, 11, 3, 12, 0, 0, 0, time.UTC)
	rate := func(d, f uint64) *float64 { r := float64(d) / float64(d+f); return &r }
	slow := &store.Percentiles{P50: 100_000, P95: 300_000}
	var chs []store.ChannelStats
	for i := range 40 {
		chs = append(chs, store.ChannelStats{Channel: fmt.Sprintf("MADE_UP_%02d", i), Attempts: 10, Delivered: 5, Failed: 5, DeliveryRate: rate(5, 5), LatencyMS: slow})
	}
	chs = append(chs,
		store.ChannelStats{Channel: "OTHER", Attempts: 10, Delivered: 2, Failed: 8, DeliveryRate: rate(2, 8), LatencyMS: slow}, // a channel so named is one of them
		store.ChannelStats{Channel: "BIG", Attempts: 70, Delivered: 0, Failed: 70, DeliveryRate: rate(0, 70)},
		store.ChannelStats{Channel: "VIBER", Attempts: 120, Delivered: 60, Failed: 60, DeliveryRate: rate(60, 60), LatencyMS: slow},
		store.ChannelStats{Channel: "RCS", Attempts: 120, Delivered: 60, Failed: 60, DeliveryRate: rate(60, 60), LatencyMS: slow},
	)
	var rcsLatency reporter.ChannelDurations
	if err := rcsLatency.Set("rcs=2m"); err != nil {
		t.Fatal(err)
	}
	var otherRate reporter.ChannelRates
	if err := otherRate.Set("other=0.2"); err != nil {
		t.Fatal(err)
	}
	base := reporter.AlertRules{MinDeliveryRate: 0.8, MinSettled: 50, MaxLatencyP95: time.Minute}
	named := base
	named.ChannelMaxLatencyP95 = rcsLatency
	lenient := named
	lenient.ChannelMinDeliveryRate = otherRate
	for _, c := range []struct {
		name    string
		rules   reporter.AlertRules
		want    []string
		unknown uint64 // channels in OTHER
	}{
		{"unknown together", base, []string{"delivery_rate_low/OTHER", "delivery_rate_low/VIBER", "delivery_slow/VIBER"}, 43},
		{"RCS named in a flag", named, []string{"delivery_rate_low/OTHER", "delivery_rate_low/RCS", "delivery_rate_low/VIBER", "delivery_slow/RCS", "delivery_slow/VIBER"}, 42},
		{"OTHER's own threshold", lenient, []string{"delivery_rate_low/RCS", "delivery_rate_low/VIBER", "delivery_slow/RCS", "delivery_slow/VIBER"}, 42},
	} {
		alerts := c.rules.Evaluate(from, to, chs, store.FallbackStats{})
		var got []string
		for _, al := range alerts {
			got = append(got, al.Rule+"/"+al.Channel)
		}
		if slices.Sort(got); !slices.Equal(got, c.want) {
			t.Errorf("%s: alerts %v; want %v", c.name, got, c.want)
			continue
		}
		i := slices.IndexFunc(alerts, func(al reporter.Alert) bool { return al.Channel == reporter.OtherChannels })
		if i < 0 {
			continue
		}
		other := alerts[i]
		settled, delivered := uint64(40*10+10+70), uint64(40*5+2)
		if c.unknown == 43 {
			settled, delivered = settled+120, delivered+60 // RCS with them
		}
		if other.Volume != settled || other.Value != float64(delivered)/float64(settled) || other.Threshold != 0.8 {
			t.Errorf("%s: OTHER's alert %+v; want %d of %d settled delivered, threshold 0.8", c.name, other, delivered, settled)
		}
		says := fmt.Sprintf("; %d channels otpscope does not know, judged together: BIG 70 failed of 70 settled, ", c.unknown)
		if !strings.HasPrefix(other.Summary, "OTHER delivery rate ") || !strings.Contains(other.Summary, says) || !strings.HasSuffix(other.Summary, fmt.Sprintf(" and %d more)", c.unknown-3)) {
			t.Errorf("%s: OTHER's summary %q; want it to name BIG first, three in all, and count %d more", c.name, other.Summary, c.unknown-3)
		}
	}

	// A resolution of OTHER names its channels too; one that fired by
	// itself before (an older release) resolves saying why.
	since := from.Add(-time.Hour)
	if al := lenient.Resolved(reporter.RuleDeliveryRateLow, "OTHER", since, from, to, chs, store.FallbackStats{}, reporter.Figures{}); al.Volume != 480 || al.Threshold != 0.2 ||
		!strings.HasPrefix(al.Summary, "OTHER delivery rate back to 42.1%, at least 20.0% (202 of 480 settled attempts delivered; firing since ") ||
		!strings.Contains(al.Summary, "; 42 channels otpscope does not know, judged together: BIG 70 failed of 70 settled, ") {
		t.Errorf("OTHER resolved as %+v; want its 480 settled attempts and its channels named", al)
	}
	for _, rule := range []string{reporter.RuleDeliveryRateLow, reporter.RuleDeliverySlow} {
		if al := base.Resolved(rule, "MADE_UP_07", since, from, to, chs, store.FallbackStats{}, reporter.Figures{}); al.State != events.AlertResolved ||
			!strings.HasPrefix(al.Summary, "MADE_UP_07 no longer judged by itself: the channels otpscope does not know are judged together, as OTHER") {
			t.Errorf("%s on MADE_UP_07, fired by an older release, resolved as %+v; want it to say OTHER judges it now", rule, al)
		}
	}
	if al := base.Resolved(reporter.RuleDeliverySlow, "OTHER", since, from, to, chs, store.FallbackStats{}, reporter.Figures{}); !strings.HasPrefix(al.Summary, "OTHER latency no longer judged: the channels otpscope does not know are judged together on their delivery rate only") {
		t.Errorf("delivery_slow on OTHER resolved as %q", al.Summary)
	}

	// OTHER's rate is a threshold, not a typo to warn of; it has no latency.
	if u := otherRate.Unknown(); len(u) != 0 {
		t.Errorf("--alert-channel-min-delivery-rate OTHER=0.2: unknown channels %v; want none", u)
	}
	var d reporter.ChannelDurations
	if err := d.Set("SMS=30s,other=1m"); err == nil || !strings.Contains(err.Error(), "no latency alert") {
		t.Errorf("--alert-channel-max-latency-p95 OTHER=1m: %v (%v); want it refused: OTHER has no latency alert", err, d)
	}
}

// TestAlertFiguresReadAsTheConsole: delivery_slow's figures read as the
// console's fmtMs writes them (seconds to a tenth, whole milliseconds
// under a second), and a firing's value never reads as its threshold:
// 16620 ms above 10 s read "17 s above 10 s", and 60400 ms above the
// default 1 min "1 min above 1 min". The rates' summaries alike.
func TestAlertFiguresReadAsTheConsole(t *testing.T) {
	// What the console's fmtMs(ms) gives (app.js, run in node).
	for ms, want := range map[float64]string{
		850: "850 ms", 998.5: "999 ms", 999.5: "1000 ms", 1250: "1.3 s", 16250: "16.3 s", 16620: "16.6 s",
		16650: "16.6 s", 18448: "18.4 s", 60000: "60.0 s", 60400: "60.4 s", 125000: "125.0 s",
	} {
		if got := reporter.AlertFigure(reporter.RuleDeliverySlow, ms); got != want {
			t.Errorf("AlertFigure(delivery_slow, %v) = %q; want %q, as the console", ms, got, want)
		}
	}
	from, to := time.Date(2026, 11, 3, 11, 0, 0, 0, time.UTC), time.Date(2026, 11, 3, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		p95       float64
		threshold time.Duration
		says      string
	}{
		{16_620, 10 * time.Second, "16.6 s above 10.0 s"},
		{60_400, reporter.DefaultMaxLatencyP95, "60.4 s above 60.0 s"},
		{10_040, 10 * time.Second, "10.04 s above 10.0 s"},
		{60_000.5, time.Minute, "60.001 s above 60.0 s"},
		{850.4, 850 * time.Millisecond, "850.4 ms above 850 ms"},
	} {
		rules := reporter.AlertRules{MaxLatencyP95: c.threshold, MinSettled: 1}
		chs := []store.ChannelStats{{Channel: "SMS", Delivered: 10, LatencyMS: &store.Percentiles{P50: 1, P95: c.p95}}}
		als := rules.Evaluate(from, to, chs, store.FallbackStats{})
		if want := "SMS p95 latency (dispatch → DELIVERED) " + c.says + " ("; len(als) != 1 || !strings.HasPrefix(als[0].Summary, want) {
			t.Errorf("p95 %v ms over %s fires %+v; want one alert saying %q", c.p95, c.threshold, als, want)
		}
	}
	rate := func(x float64) *float64 { return &x }
	rules := reporter.AlertRules{MinDeliveryRate: 0.8, MinSettled: 1, MaxFallbackRate: 0.2, MinOTPs: 1}
	chs := []store.ChannelStats{{Channel: "SMS", Delivered: 7996, Failed: 2004, DeliveryRate: rate(0.7996)}}
	fb := store.FallbackStats{OTPs: 10_000, FallbackOTPs: 2004, FallbackRate: rate(0.2004)}
	says := map[string]string{}
	for _, al := range rules.Evaluate(from, to, chs, fb) {
		says[al.Rule] = al.Summary
	}
	for rule, want := range map[string]string{
		reporter.RuleDeliveryRateLow:  "SMS delivery rate 79.96% below 80.0% (",
		reporter.RuleFallbackRateHigh: "fallback rate 20.04% above 20.0% (2004 of 10000 journeys fell back,",
	} {
		if !strings.HasPrefix(says[rule], want) {
			t.Errorf("%s says %q; want %q", rule, says[rule], want)
		}
	}
}

// Each firing takes its figure in the window before, named for the
// windows' length, in its rule's unit, or says there was none to judge;
// the OTHER series sums the window before's unknown channels as it sums
// the window's; a resolution is left as it was.
func TestAlertBeforeFigures(t *testing.T) {
	rate := func(x float64) *float64 { return &x }
	from, to := time.Date(2026, 11, 3, 11, 50, 0, 0, time.UTC), time.Date(2026, 11, 3, 12, 0, 0, 0, time.UTC)
	rules := reporter.AlertRules{MinDeliveryRate: 0.8, MaxLatencyP95: time.Minute, MaxFallbackRate: 0.2}
	alerts := []reporter.Alert{
		{Rule: reporter.RuleDeliveryRateLow, Channel: "SMS", State: events.AlertFiring, Summary: "sms"},
		{Rule: reporter.RuleDeliveryRateLow, Channel: "OTHER", State: events.AlertFiring, Summary: "other"},
		{Rule: reporter.RuleDeliveryRateLow, Channel: "VOICE", State: events.AlertFiring, Summary: "voice"},
		{Rule: reporter.RuleDeliverySlow, Channel: "SMS", State: events.AlertFiring, Summary: "slow"},
		{Rule: reporter.RuleFallbackRateHigh, State: events.AlertFiring, Summary: "fallback"},
		{Rule: reporter.RuleDeliveryRateLow, Channel: "VIBER", State: events.AlertResolved, Summary: "back"},
	}
	chs := []store.ChannelStats{
		{Channel: "SMS", Delivered: 96, Failed: 4, DeliveryRate: rate(0.96), LatencyMS: &store.Percentiles{P50: 2000, P95: 12_345}},
		{Channel: "MADE_UP_1", Delivered: 3, Failed: 1, DeliveryRate: rate(0.75)},
		{Channel: "MADE_UP_2", Delivered: 5, Failed: 1, DeliveryRate: rate(5.0 / 6)},
	}
	fb := store.FallbackStats{OTPs: 400, FallbackOTPs: 36, FallbackRate: rate(0.09)}
	rules.Before(alerts, reporter.Figures{From: from, To: to, Channels: chs, Fallback: fb})
	for i, want := range []struct {
		summary string
		value   *float64
		volume  uint64
	}{
		{"sms; the 10 min before: 96.0% (96 of 100 settled attempts delivered)", rate(0.96), 100},
		{"other; the 10 min before: 80.0% (8 of 10 settled attempts delivered)", rate(0.8), 10},
		{"voice; the 10 min before: no settled attempts", nil, 0},
		{"slow; the 10 min before: 12.3 s (96 delivered attempts)", rate(12_345), 96},
		{"fallback; the 10 min before: 9.0% (36 of 400 journeys fell back)", rate(0.09), 400},
	} {
		al := alerts[i]
		b := al.Before
		if al.Summary != want.summary || b == nil || !b.From.Equal(from) || !b.To.Equal(to) || b.Volume != want.volume ||
			(b.Value == nil) != (want.value == nil) || (b.Value != nil && *b.Value != *want.value) {
			t.Errorf("%s on %q: %q, before %+v; want %q, value %v of %d", al.Rule, al.Channel, al.Summary, b, want.summary, want.value, want.volume)
		}
	}
	if al := alerts[5]; al.Before != nil || al.Summary != "back" {
		t.Errorf("a resolution took the window before: %+v", al)
	}
	// The window before of the default --alert-window is the hour before.
	hour := []reporter.Alert{{Rule: reporter.RuleFallbackRateHigh, State: events.AlertFiring}}
	rules.Before(hour, reporter.Figures{From: to.Add(-time.Hour), To: to})
	if hour[0].Summary != "; the hour before: no journeys" {
		t.Errorf("an hour's window before says %q", hour[0].Summary)
	}
}

// delivery_rate_drop fires for a channel whose rate fell more than its
// limit below its rate in the window before, both windows with enough
// settled attempts, its threshold that rate less the limit; a channel's
// own limit replaces the default (0 turns it off), OTHER's channels are
// judged together; it resolves saying why.
func TestAlertDeliveryRateDrop(t *testing.T) {
	from, to := time.Date(2026, 11, 3, 11, 0, 0, 0, time.UTC), time.Date(2026, 11, 3, 12, 0, 0, 0, time.UTC)
	since := to.Add(-10 * time.Minute)
	rate := func(d, f uint64) store.ChannelStats {
		r := float64(d) / float64(d+f)
		return store.ChannelStats{Delivered: d, Failed: f, DeliveryRate: &r}
	}
	named := func(ch string, c store.ChannelStats) store.ChannelStats { c.Channel = ch; return c }
	now := []store.ChannelStats{
		named("SMS", rate(86, 14)), named("WHATSAPP", rate(90, 10)), named("VOICE", rate(60, 40)), named("PUSH", rate(50, 50)),
		named("VIBER", rate(70, 30)), named("MADE_UP_1", rate(5, 25)), named("MADE_UP_2", rate(5, 25)),
	}
	now[0].Errors = []store.ErrorCount{{Code: "tyntec::sms::blocked", Count: 14}}
	before := reporter.Figures{From: from.Add(-time.Hour), To: from, Channels: []store.ChannelStats{
		named("SMS", rate(98, 2)), named("WHATSAPP", rate(95, 5)), named("VOICE", rate(9, 1)), named("PUSH", rate(95, 5)),
		named("VIBER", rate(95, 5)), named("MADE_UP_1", rate(30, 0)), named("MADE_UP_2", rate(25, 5)),
	}}
	var own reporter.ChannelRates
	if err := own.Set("push=0,VIBER=0.3"); err != nil {
		t.Fatal(err)
	}
	rules := reporter.AlertRules{MinDeliveryRate: 0.5, MaxDeliveryRateDrop: 0.1, ChannelMaxDeliveryRateDrop: own, MinSettled: 50}
	if !rules.WatchesDrops() || (reporter.AlertRules{ChannelMaxDeliveryRateDrop: own}).WatchesDrops() != true || (reporter.AlertRules{MinDeliveryRate: 0.8}).WatchesDrops() {
		t.Error("WatchesDrops: want it on with a limit, default or a channel's, and off without")
	}
	for _, bad := range []float64{-0.1, 1.5} {
		if err := (&reporter.ReportsConfig{Rules: reporter.AlertRules{MaxDeliveryRateDrop: bad}}).Validate(); err == nil {
			t.Errorf("--alert-max-delivery-rate-drop %v accepted; want it within 0..1", bad)
		}
	}
	got := map[string]reporter.Alert{}
	for _, al := range rules.Drops(from, to, now, before) {
		got[al.Channel] = al
	}
	// SMS fell 12 points (more than 10); WHATSAPP 5; VOICE had 10 settled
	// the hour before; PUSH is off; VIBER fell 25 of its own 30; OTHER
	// fell from 55 of 60 to 10 of 60.
	if len(got) != 2 {
		t.Fatalf("drops on %v; want SMS and OTHER", slices.Sorted(maps.Keys(got)))
	}
	sms := got["SMS"]
	if want := "SMS delivery rate 86.0% below 88.0%, more than 10.0 points under the hour before (86 of 100 settled attempts delivered, 2026-11-03T11:00:00Z – 2026-11-03T12:00:00Z; failed: tyntec::sms::blocked 14); the hour before: 98.0% (98 of 100 settled attempts delivered); a fall as large by chance, were nothing changed: 0.14%"; sms.Summary != want ||
		sms.Rule != reporter.RuleDeliveryRateDrop || sms.Value != 0.86 || fmt.Sprintf("%.4f", sms.Threshold) != "0.8800" || sms.Volume != 100 ||
		sms.Before == nil || *sms.Before.Value != 0.98 || sms.Before.Volume != 100 || !sms.Before.From.Equal(before.From) {
		t.Errorf("SMS's drop %+v (before %+v); want 86%% below 98%% less 10 points, summary %q", sms, sms.Before, want)
	}
	if o := got["OTHER"]; !strings.Contains(o.Summary, "2 channels otpscope does not know, judged together") || o.Volume != 60 || o.Before == nil || o.Before.Volume != 60 {
		t.Errorf("OTHER's drop %+v; want its channels judged together in both windows", o)
	}
	// Its figure there is its own: Before leaves it, and sets the others'.
	als := []reporter.Alert{sms, {Rule: reporter.RuleDeliveryRateLow, Channel: "VOICE", State: events.AlertFiring}}
	rules.Before(als, before)
	if als[0].Summary != sms.Summary || als[1].Summary != "; the hour before: 90.0% (9 of 10 settled attempts delivered)" {
		t.Errorf("Before over a drop and a low rate: %q, %q", als[0].Summary, als[1].Summary)
	}

	for _, c := range []struct {
		rules   reporter.AlertRules
		channel string
		now     []store.ChannelStats
		says    string
	}{
		{rules, "SMS", []store.ChannelStats{named("SMS", rate(95, 5))}, "SMS delivery rate 95.0%, within 10.0 points of the hour before's 98.0% (95 of 100 settled attempts delivered; firing since "},
		{rules, "SMS", []store.ChannelStats{named("SMS", rate(9, 1))}, "SMS delivery rate drop no longer judged: 10 settled attempts, the hour before 100, the rule needs 50 in each"},
		{reporter.AlertRules{MinSettled: 50}, "SMS", now, "SMS delivery rate drop no longer watched: its limit is 0"},
		{rules, "PUSH", now, "PUSH delivery rate drop no longer watched"},
	} {
		al := c.rules.Resolved(reporter.RuleDeliveryRateDrop, c.channel, since, from, to, c.now, store.FallbackStats{}, before)
		if al.State != events.AlertResolved || !strings.HasPrefix(al.Summary, c.says) {
			t.Errorf("%s's drop resolved as %q; want %q…", c.channel, al.Summary, c.says)
		}
	}
}

// delivery_rate_drop fires on a fall more than its limit that chance would
// make less often than 1 − --alert-delivery-rate-drop-confidence: a few
// dozen attempts swing ten points by chance.
func TestAlertDeliveryRateDropIsSure(t *testing.T) {
	from, to := time.Date(2026, 11, 3, 11, 0, 0, 0, time.UTC), time.Date(2026, 11, 3, 12, 0, 0, 0, time.UTC)
	rate := func(ch string, d, f uint64) store.ChannelStats {
		r := float64(d) / float64(d+f)
		return store.ChannelStats{Channel: ch, Delivered: d, Failed: f, DeliveryRate: &r}
	}
	// SMS's fall from 98 to 86 of 100 is a 0.15 % chance; WHATSAPP's from
	// 30 to 26 of 30, 13 points against a limit of 10, a 5.6 % one.
	now := []store.ChannelStats{rate("SMS", 86, 14), rate("WHATSAPP", 26, 4)}
	before := reporter.Figures{From: from.Add(-time.Hour), To: from, Channels: []store.ChannelStats{rate("SMS", 98, 2), rate("WHATSAPP", 30, 0)}}
	for _, c := range []struct {
		confidence float64
		want       []string
	}{
		{reporter.DefaultDropConfidence, []string{"SMS"}},
		{0.9, []string{"SMS", "WHATSAPP"}},
		{0, []string{"SMS", "WHATSAPP"}}, // points alone
	} {
		rules := reporter.AlertRules{MaxDeliveryRateDrop: 0.1, MinSettled: 30, DropConfidence: c.confidence}
		var got []string
		for _, al := range rules.Drops(from, to, now, before) {
			got = append(got, al.Channel)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("at confidence %v drops on %v; want %v", c.confidence, got, c.want)
		}
	}
	// A drop as deep that chance could have made resolves saying so.
	rules := reporter.AlertRules{MaxDeliveryRateDrop: 0.1, MinSettled: 30, DropConfidence: reporter.DefaultDropConfidence}
	al := rules.Resolved(reporter.RuleDeliveryRateDrop, "WHATSAPP", from, from, to, now, store.FallbackStats{}, before)
	if want := "WHATSAPP delivery rate 86.7%, more than 10.0 points under the hour before's 100.0%, but a fall as large by chance, were nothing changed: 5.61%, the rule needs under 5% (26 of 30 settled attempts delivered; firing since "; !strings.HasPrefix(al.Summary, want) {
		t.Errorf("WHATSAPP's drop resolved as %q; want %q…", al.Summary, want)
	}
	for _, bad := range []float64{-0.1, 1, 1.5} {
		if err := (&reporter.ReportsConfig{Rules: reporter.AlertRules{DropConfidence: bad}}).Validate(); err == nil || !strings.Contains(err.Error(), "alert-delivery-rate-drop-confidence") {
			t.Errorf("--alert-delivery-rate-drop-confidence %v: %v; want it refused", bad, err)
		}
	}
}
