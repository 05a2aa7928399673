package app_test

import (
	"strings"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/app"
	"github.com/otpscope/otpscope/internal/polltest"
)

// TestStatusSaysTyntecRefusesTheKey: with an API key tyntec refuses, the
// poller's calls fail with 401 and /api/v1/status (so `otpscope status`)
// says so, naming the flag, where it said "no warnings" while only the
// metrics and a WARN a call told. /readyz stays ready: ingest must take
// webhooks all the same.
func TestStatusSaysTyntecRefusesTheKey(t *testing.T) {
	cfg := lossyConfig(t, 0)
	cfg.Poller.Tyntec.APIKey = "a-key-tyntec-does-not-know"
	a := serve(t, cfg)
	api := apiGetter(t, "http://"+a.AdminAddr(), "")
	var st app.StatusResponse
	polltest.Until(t, 30*time.Second, "a warning that tyntec refuses the key", func() bool {
		api("/api/v1/status", &st)
		return strings.Contains(strings.Join(st.Warnings, "\n"), "tyntec refuses the API key")
	})
	warn := strings.Join(st.Warnings, "\n")
	for _, want := range []string{"check --tyntec-api-key", "401", "lost webhooks are not recovered"} {
		if !strings.Contains(warn, want) {
			t.Errorf("warnings %q lack %q", warn, want)
		}
	}
	if code, body := get(t, "http://"+a.AdminAddr()+"/readyz"); code != 200 {
		t.Errorf("/readyz = %d with tyntec refusing the key; want 200 (ingest takes webhooks all the same)\n%s", code, body)
	}
}
