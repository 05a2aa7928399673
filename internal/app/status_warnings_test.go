package app_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/app"
	"github.com/otpscope/otpscope/internal/ingest"
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

// TestStatusSaysTyntecsWebhooksAreRefused: ten of tyntec's webhooks refused
// for their token, none accepted since, are a warning of /api/v1/status
// (the operator's review: every webhook refused for 70 s, and `otpscope
// status` said "no warnings"); a webhook accepted ends it.
func TestStatusSaysTyntecsWebhooksAreRefused(t *testing.T) {
	cfg := newConfig(t, "ingest")
	cfg.AdminListen = "127.0.0.1:0"
	cfg.Ingest.Tokens = []string{token}
	a := serve(t, cfg)
	api := apiGetter(t, "http://"+a.AdminAddr(), "")
	warnings := func() string {
		var st app.StatusResponse
		api("/api/v1/status", &st)
		return strings.Join(st.Warnings, "\n")
	}
	body := webhook("5a0c6a4e-0000-4000-8000-00000000e001", "SMS", "DELIVERED", "2026-02-01T10:00:00Z")
	for i := range 10 {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+a.Addr()+ingest.WebhookPath, strings.NewReader(body))
		req.Header.Set("X-Webhook-Token", "a-token-of-yesterday-0123")
		req.Header.Set("Content-Type", "application/json")
		if code := do(t, req); code != http.StatusUnauthorized {
			t.Fatalf("webhook %d with a wrong token = %d; want 401", i, code)
		}
		if w := warnings(); i < 9 && strings.Contains(w, "refused for their token") {
			t.Fatalf("after %d refusals the status warns %q; want no warning before ten", i+1, w)
		}
	}
	if w := warnings(); !strings.Contains(w, "10 webhooks refused for their token since start") || !strings.Contains(w, "--webhook-token") {
		t.Fatalf("after ten refusals the status warns %q; want them told, naming --webhook-token", w)
	}
	if code := postTo(t, "http://"+a.Addr(), body); code != http.StatusOK {
		t.Fatalf("a webhook with the token = %d", code)
	}
	if w := warnings(); strings.Contains(w, "refused for their token") {
		t.Errorf("after a webhook accepted the status still warns %q", w)
	}
}
