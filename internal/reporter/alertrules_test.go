package reporter_test

import (
	"flag"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/reporter"
)

// The rules in force (GET /api/v1/alerts/rules) are the flags' rules in
// words: each threshold, a channel's own beside the default (0: off for
// it), the volume each needs, and when they are evaluated and who hears.
func TestAlertRulesInForce(t *testing.T) {
	var cfg reporter.ReportsConfig
	fs := flag.NewFlagSet("reporter", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	if err := fs.Parse([]string{"--alert-channel-min-delivery-rate", "SILENT=0.6,PUSH=0"}); err != nil {
		t.Fatal(err)
	}
	got := cfg.InForce()
	says := map[string]string{}
	on := map[string]bool{}
	for _, r := range got.Rules {
		says[r.Rule], on[r.Rule] = r.Says, r.On
	}
	for rule, want := range map[string]string{
		reporter.RuleDeliveryRateLow:  "a channel's delivery rate below 80.0% (PUSH off, SILENT 60.0%), with at least 50 settled attempts in the window",
		reporter.RuleDeliverySlow:     "a channel's p95 latency (dispatch → DELIVERED) above 60.0 s, with at least 50 delivered attempts in the window",
		reporter.RuleDeliveryRateDrop: "off: --alert-max-delivery-rate-drop is 0",
		reporter.RuleFallbackRateHigh: "the share of journeys that fell back above 20.0%, with at least 50 journeys in the window",
	} {
		if says[rule] != want {
			t.Errorf("%s says %q; want %q", rule, says[rule], want)
		}
		if on[rule] != (rule != reporter.RuleDeliveryRateDrop) {
			t.Errorf("%s on %v", rule, on[rule])
		}
	}
	if len(got.Rules) != 4 || got.Rules[0].Channels["PUSH"] != 0 || got.Rules[0].Channels["SILENT"] != 0.6 || got.Rules[1].Threshold != 60000 || got.Rules[3].MinVolume != 50 {
		t.Errorf("rules %+v", got.Rules)
	}
	if want := `Evaluated on "*/5 * * * *" (--alert-schedule) over the last 1 h (--alert-window). A rule fires at the first evaluation it holds at and resolves at the first it does not. No webhook (--alert-webhook-url); no Alertmanager (--alertmanager-url); every firing and resolution is published on NATS and stored.`; got.Says != want {
		t.Errorf("says %q; want %q", got.Says, want)
	}
	if got.Schedule != "*/5 * * * *" || got.WindowSeconds != 3600 || got.RepeatSeconds != 4*3600 || got.TZ != "UTC" {
		t.Errorf("in force %+v", got)
	}

	// Only channels of their own, a drop judged on its chance, and where
	// the alerts go; no address given.
	cfg.Rules.MinDeliveryRate, cfg.Rules.ChannelMinDeliveryRate = 0, reporter.ChannelRates{"SMS": 0.95, "VOICE": 0.7}
	cfg.Rules.MaxDeliveryRateDrop, cfg.Rules.ChannelMaxDeliveryRateDrop = 0.1, reporter.ChannelRates{"PUSH": 0}
	cfg.Rules.MaxFallbackRate = 0
	cfg.AlertFor, cfg.AlertKeepFiringFor, cfg.Alerts = 10*time.Minute, 15*time.Minute, "@every 1m"
	cfg.AlertWebhookURL, cfg.AlertmanagerURLs = "https://hooks.slack.example/T000/B000/secret", []string{"http://am-0:9093", "http://am-1:9093"}
	got = cfg.InForce()
	for i, want := range []string{
		"a channel's delivery rate below SMS 95.0%, VOICE 70.0% (no other channel), with at least 50 settled attempts in the window",
		"",
		"a channel's delivery rate more than 10.0 points (PUSH off) below the window before's, with at least 50 settled attempts in each, and a fall as large, were nothing changed, a chance under 5%",
		"off: --alert-max-fallback-rate is 0",
	} {
		if want != "" && got.Rules[i].Says != want {
			t.Errorf("%s says %q; want %q", got.Rules[i].Rule, got.Rules[i].Says, want)
		}
	}
	if c := got.Rules[2].Confidence; c == nil || *c != 0.95 {
		t.Errorf("the drop's confidence %v; want 0.95", c)
	}
	if want := `Evaluated on "@every 1m" (--alert-schedule) over the last 1 h (--alert-window). A rule fires once it has held at every evaluation for 10 min (--alert-for) and resolves 15 min after it last held (--alert-keep-firing-for). The webhook hears when one fires, every 4 h while it fires (--alert-repeat) and when it resolves; 2 Alertmanagers hear every evaluation; every firing and resolution is published on NATS and stored.`; got.Says != want {
		t.Errorf("says %q; want %q", got.Says, want)
	}
	if !got.Webhook || got.Alertmanagers != 2 || got.ForSeconds != 600 || got.KeepFiringForSeconds != 900 {
		t.Errorf("in force %+v", got)
	}
	cfg.Alerts = ""
	if got := cfg.InForce(); got.Says != "Not evaluated: --alert-schedule is empty." {
		t.Errorf("without a schedule: %q", got.Says)
	}
}
