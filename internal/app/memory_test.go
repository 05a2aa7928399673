package app

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestShortOfMemoryWarning: the status warns from the rate of major page
// faults over the last minute, not from a start's burst or a reading too
// short to tell.
func TestShortOfMemoryWarning(t *testing.T) {
	var count uint64
	var failing bool
	f := &faults{read: func() (uint64, error) {
		if failing {
			return 0, errors.New("no /proc")
		}
		return count, nil
	}}
	at := time.Date(2026, 12, 6, 4, 0, 0, 0, time.UTC)
	step := func(d time.Duration, faults uint64) {
		at = at.Add(d)
		count += faults
		f.note(at)
	}

	// A start: thousands at once, then almost none.
	step(0, 0)
	step(faultEvery, 20000)
	if w := f.warning(); w != "" {
		t.Errorf("after 10 s: %q; want none (too short to tell)", w)
	}
	for range 6 {
		step(faultEvery, 5)
	}
	if w := f.warning(); w != "" {
		t.Errorf("a minute after the start's burst: %q; want none", w)
	}
	if n := len(f.samples); n > 8 {
		t.Errorf("%d samples kept; want those of a minute", n)
	}

	// Short of memory: 200 a second for a minute.
	for range 6 {
		step(faultEvery, 2000)
	}
	w := f.warning()
	if !strings.Contains(w, "short of memory") || !strings.Contains(w, "200 of its pages a second") {
		t.Errorf("at 200 faults a second: %q; want the warning with the rate", w)
	}

	// Below the threshold again.
	for range 6 {
		step(faultEvery, 100)
	}
	if w := f.warning(); w != "" {
		t.Errorf("at 10 faults a second: %q; want none", w)
	}

	// A reading that fails keeps what was read.
	failing = true
	step(faultEvery, 0)
	if n := len(f.samples); n < 2 {
		t.Errorf("after a failed read %d samples; want those before it", n)
	}
}
