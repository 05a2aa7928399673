package cronspec

import (
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for spec, ok := range map[string]bool{
		"*/5 * * * *":                     true,
		"@hourly":                         true,
		"@every 1s":                       true,
		"@every 90m":                      true,
		"CRON_TZ=Europe/Berlin 0 3 * * *": true,
		"TZ=UTC @daily":                   true,
		"CRON_TZ=Europe/Berlin":           false, // robfig panics
		"TZ=UTC":                          false,
		"TZ=UTC ":                         false,
		"@every 0s":                       false, // robfig: every second
		"@every -24h":                     false,
		"@every 999ms":                    false,
		"0 0 30 2 *":                      false, // 30 February: never
		"61 * * * *":                      false,
		"":                                false,
	} {
		if _, err := Parse(spec); (err == nil) != ok {
			t.Errorf("Parse(%q) = %v; want ok=%v", spec, err, ok)
		}
	}
}

// Gaps are the shortest and longest between runs: a schedule twice a day
// at 09:00 and 17:00 has 8 hours and its 16 overnight.
func TestGaps(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	for spec, want := range map[string][2]time.Duration{"@every 30s": {30 * time.Second, 30 * time.Second}, "*/5 * * * *": {5 * time.Minute, 5 * time.Minute},
		"0 9,17 * * *": {8 * time.Hour, 16 * time.Hour}, "0 3 * * 1": {7 * 24 * time.Hour, 7 * 24 * time.Hour}, "0 3 * * 1-5": {24 * time.Hour, 72 * time.Hour}} {
		sched, err := Parse(spec)
		if err != nil {
			t.Fatal(err)
		}
		if shortest, longest := Gaps(sched, now); shortest != want[0] || longest != want[1] {
			t.Errorf("Gaps(%q) = %v, %v; want %v, %v", spec, shortest, longest, want[0], want[1])
		}
	}
}
