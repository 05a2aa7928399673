package store

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// hoursSQL ORs a few ranges of hours that share a version (history rolled
// up in one run); a running system's hours, each of its own version, are
// one set of integer pairs within their bounds: an OR of a term per hour
// took the engine seconds over 30 days (bench/HISTORY.md, sixty-sixth
// session).
func TestHoursSQLSelectsManyVersionsAsOneSet(t *testing.T) {
	start := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	var oneRun, eachOwn []rolledHour
	for i := range 12 {
		h := start.Add(time.Duration(i) * time.Hour)
		oneRun = append(oneRun, rolledHour{hour: h, version: 7})
		eachOwn = append(eachOwn, rolledHour{hour: h, version: uint64(100 + i)})
	}
	if got, want := hoursSQL(oneRun), fmt.Sprintf("((hour >= %s AND hour < %s AND version = 7))", sqlHour(start), sqlHour(start.Add(12*time.Hour))); got != want {
		t.Errorf("one run's hours: %s; want %s", got, want)
	}
	got := hoursSQL(eachOwn)
	if strings.Contains(got, " OR ") || !strings.HasPrefix(got, fmt.Sprintf("(hour >= %s AND hour <= %s AND (hour, version) IN (", sqlHour(start), sqlHour(start.Add(11*time.Hour)))) {
		t.Errorf("hours of their own versions: %s; want one set within their bounds", got)
	}
	for _, h := range eachOwn {
		if pair := fmt.Sprintf("(%d, %d)", h.hour.Unix(), h.version); !strings.Contains(got, pair) {
			t.Errorf("hours of their own versions: %s lacks %s", got, pair)
		}
	}
	// A few ranges stay ranges, and none is nothing.
	few := append(oneRun[:3:3], rolledHour{hour: start.Add(5 * time.Hour), version: 8})
	if got := hoursSQL(few); strings.Count(got, " OR ") != 1 || strings.Contains(got, " IN ") {
		t.Errorf("two ranges: %s; want their OR", got)
	}
	if hoursSQL(nil) != "0" || versionsSQL(nil) != "0" {
		t.Error("no hours select rows")
	}
}
