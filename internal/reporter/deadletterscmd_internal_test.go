package reporter

import (
	"strings"
	"testing"
	"time"
)

// A replay of named dead letters fails (exit 1) when one is unknown or
// cannot be replayed; one replayed before, or what --all skips, does not.
func TestNotReplayed(t *testing.T) {
	replayed := ReplayOutcome{ID: "dl-a", Messages: 1}
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	before := ReplayOutcome{ID: "dl-b", Skipped: "replayed already at 2026-12-03T10:00:00Z", ReplayedAt: &at}
	unknown := ReplayOutcome{ID: "dl-typo", Skipped: "no such dead letter"}
	invalid := ReplayOutcome{ID: "dl-c", Skipped: "still not a valid webhook: otpId: required"}
	for _, c := range []struct {
		ids     []string
		skipped []ReplayOutcome
		fails   bool
	}{
		{[]string{"dl-a"}, nil, false},
		{[]string{"dl-a", "dl-b"}, []ReplayOutcome{before}, false},
		{[]string{"dl-a", "dl-typo"}, []ReplayOutcome{unknown}, true},
		{[]string{"dl-c"}, []ReplayOutcome{invalid}, true},
		{nil, []ReplayOutcome{invalid, before}, false}, // --all
	} {
		err := notReplayed(c.ids, ReplayResult{Replayed: []ReplayOutcome{replayed}, Skipped: c.skipped})
		if (err != nil) != c.fails {
			t.Errorf("ids %v, skipped %v: %v; want failure %v", c.ids, c.skipped, err, c.fails)
		}
	}
}

// An --api without a scheme is said to be one, not "first path segment in
// URL cannot contain colon".
func TestAPICallWantsABaseURL(t *testing.T) {
	_, err := APICall{Method: "GET", API: "127.0.0.1:8081", Path: "/api/v1/status"}.Do(t.Context())
	if err == nil || !strings.Contains(err.Error(), "want the API's base URL") {
		t.Errorf("APICall to 127.0.0.1:8081 = %v; want a hint to give a URL", err)
	}
}
