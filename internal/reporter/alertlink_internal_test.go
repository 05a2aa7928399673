package reporter

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// An alert links to the console's overview of the window its rule judged,
// on its channel: a link read an hour later still shows the fall; its end
// the second after the evaluation, which the window's alerts then list.
func TestAlertLinksToItsWindow(t *testing.T) {
	from := time.Date(2026, 12, 7, 4, 53, 11, 500e6, time.FixedZone("+05:30", 19800))
	to := from.Add(time.Hour)
	cfg := ReportsConfig{ConsoleURL: "https://otpscope.example.com/console/"}
	for channel, want := range map[string]string{
		"SMS":         "https://otpscope.example.com/console/#overview?range=custom&from=2026-12-06T23:23:11Z&to=2026-12-07T00:23:12Z&channel=SMS",
		"":            "https://otpscope.example.com/console/#overview?range=custom&from=2026-12-06T23:23:11Z&to=2026-12-07T00:23:12Z",
		OtherChannels: "https://otpscope.example.com/console/#overview?range=custom&from=2026-12-06T23:23:11Z&to=2026-12-07T00:23:12Z",
		"RCS&x=1":     "https://otpscope.example.com/console/#overview?range=custom&from=2026-12-06T23:23:11Z&to=2026-12-07T00:23:12Z&channel=RCS%26x%3D1",
	} {
		if got := cfg.alertLink(&Alert{Rule: RuleDeliveryRateLow, Channel: channel, From: from, To: to}); got != want {
			t.Errorf("channel %q links to %q; want %q", channel, got, want)
		}
	}
	if got := (&ReportsConfig{}).alertLink(&Alert{Channel: "SMS", From: from, To: to}); got != "" {
		t.Errorf("without --console-url the link is %q; want none", got)
	}
}

// With --alert-runbook-url a firing names its runbook, {rule} and
// {channel} its own: in the webhook's text, before the console's link, and
// its JSON; a resolution's text does not (nothing to do). A URL that is no
// http(s) one is refused at start.
func TestAlertNamesItsRunbook(t *testing.T) {
	cfg := ReportsConfig{RunbookURL: "https://wiki.example.com/otpscope/{rule}#{channel}"}
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	firing := Alert{Rule: RuleDeliveryRateLow, Channel: "SMS", State: "firing", Since: at, From: at.Add(-time.Hour), To: at, Summary: "SMS delivery rate 70.0% below 80.0% (…)"}
	if got, want := cfg.runbookLink(&firing), "https://wiki.example.com/otpscope/delivery_rate_low#SMS"; got != want {
		t.Errorf("runbook %q; want %q", got, want)
	}
	if got := cfg.runbookLink(&Alert{Rule: RuleFallbackRateHigh}); got != "https://wiki.example.com/otpscope/fallback_rate_high#" {
		t.Errorf("the fallback rate's runbook %q", got)
	}
	body, err := slackPayload(&firing, "https://console/#x", cfg.runbookLink(&firing), AlertRules{})
	var got struct {
		Text    string `json:"text"`
		Runbook string `json:"runbook_url"`
	}
	if err != nil || json.Unmarshal(body, &got) != nil ||
		got.Text != ":rotating_light: otpscope delivery_rate_low: SMS delivery rate 70.0% below 80.0% (…); runbook: https://wiki.example.com/otpscope/delivery_rate_low#SMS https://console/#x" ||
		got.Runbook != "https://wiki.example.com/otpscope/delivery_rate_low#SMS" {
		t.Errorf("the webhook's firing: %s, %v", body, err)
	}
	resolved := firing
	resolved.State = "resolved"
	if body, _ := slackPayload(&resolved, "", cfg.runbookLink(&resolved), AlertRules{}); json.Unmarshal(body, &got) != nil || strings.Contains(got.Text, "runbook") {
		t.Errorf("the webhook's resolution names the runbook: %s", body)
	}
	if am := alertmanagerAlerts([]Alert{firing}, nil, at, time.Minute, func(*Alert) string { return "" }, cfg.runbookLink); am[0].Annotations["runbook_url"] != "https://wiki.example.com/otpscope/delivery_rate_low#SMS" {
		t.Errorf("Alertmanager's annotations %v; want runbook_url", am[0].Annotations)
	}
	for _, bad := range []string{"wiki/{rule}", "ftp://wiki.example.com/{rule}"} {
		if err := (&ReportsConfig{RunbookURL: bad}).Validate(); err == nil || !strings.Contains(err.Error(), "alert-runbook-url") {
			t.Errorf("--alert-runbook-url %q: %v; want it refused", bad, err)
		}
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("--alert-runbook-url %q: %v", cfg.RunbookURL, err)
	}
}
