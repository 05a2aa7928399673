package reporter

import (
	"strings"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/webtest"
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
	// A query or fragment would end up before the path (http://h?x/api/…).
	for _, api := range []string{"http://127.0.0.1:8081?x", "http://127.0.0.1:8081/#top", "http:///api"} {
		if _, err := (APICall{Method: "GET", API: api, Path: "/api/v1/status"}).Do(t.Context()); err == nil || !strings.Contains(err.Error(), "want the API's base URL") {
			t.Errorf("APICall to %s = %v; want it refused as no base URL", api, err)
		}
	}
}

// Neither a refused --api nor the hint after a failed call quotes the
// URL's password.
func TestAPICallHidesThePassword(t *testing.T) {
	for _, api := range []string{"ftp://ops:apiURLpw@127.0.0.1:1", "http://ops:apiURLpw@" + webtest.FreeAddr(t)} {
		_, err := APICall{Method: "GET", API: api, Path: "/api/v1/status"}.Do(t.Context())
		if err == nil || strings.Contains(err.Error(), "apiURLpw") {
			t.Errorf("APICall to %s = %v; want an error without the password", api, err)
		}
	}
}
