package cronspec

import "testing"

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
