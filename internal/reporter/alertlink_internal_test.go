package reporter

import (
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
