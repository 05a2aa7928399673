package app_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/ingest"
	"github.com/otpscope/otpscope/internal/reload"
	"github.com/otpscope/otpscope/internal/tyntecsim"
	"github.com/otpscope/otpscope/internal/tyntecsim/simtest"
)

// TestSecretsFromFilesRotate: ingest and the poller read the webhook
// and app tokens, the API and metrics tokens and tyntec's API key from files their environment
// names (OTPSCOPE_*_FILE), as the binaries do. When the files are
// rewritten, the new secrets are in use within reload.Every and the old
// ones refused, without a restart; a rewritten file that does not load
// leaves the old secret in use and shows in /api/v1/status until mended.
func TestSecretsFromFilesRotate(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const (
		oldWebhook, newWebhook = "old-webhook-token-0123", "new-webhook-token-4567"
		oldAPI, newAPI         = "old-api-token-01234567", "new-api-token-89abcdef"
		oldKey, newKey         = "old-tyntec-key", "new-tyntec-key"
		oldMetrics, newMetrics = "old-metrics-token-0123", "new-metrics-token-4567"
		oldRead, newRead       = "old-read-token-0123456", "new-read-token-4567890"
		oldApp, newApp         = "old-app-token-01234567", "new-app-token-89abcdef"
	)
	webhookFile := write("webhook-tokens", oldWebhook+"\n")
	apiFile := write("api-token", oldAPI+"\n")
	keyFile := write("tyntec-api-key", oldKey+"\n")
	metricsFile := write("metrics-token", oldMetrics+"\n")
	readFile := write("api-read-token", oldRead+"\n")
	appFile := write("app-tokens", oldApp+"\n")

	ing := newConfigEnv(t, "ingest", []string{"OTPSCOPE_WEBHOOK_TOKENS_FILE=" + webhookFile, "OTPSCOPE_API_TOKEN_FILE=" + apiFile, "OTPSCOPE_METRICS_TOKEN_FILE=" + metricsFile, "OTPSCOPE_API_READ_TOKEN_FILE=" + readFile, "OTPSCOPE_APP_TOKEN_FILE=" + appFile})
	ing.AdminListen = "127.0.0.1:0"
	ing.Complete()
	if err := ing.Validate(); err != nil {
		t.Fatal(err)
	}
	in := serve(t, ing)

	// tyntec has already made the new key the only one it accepts.
	ns := brokertest.NewServer(t)
	sim, simURL := simtest.Start(t, tyntecsim.Config{Seed: 1, APIKeys: []string{newKey}})
	pol := newConfigEnv(t, "poller", []string{"OTPSCOPE_TYNTEC_API_KEY_FILE=" + keyFile, "OTPSCOPE_TYNTEC_URL=" + simURL, "OTPSCOPE_NATS_URL=" + ns.URL()})
	pol.Poller.Tyntec.Limiter = rate.NewLimiter(1000, 100)
	pol.Poller.Schedule = "@every 1s"
	pol.Poller.DiscoveryInterval = time.Second // lists OTPs every cycle: a call to tyntec each second
	pol.Poller.Now = sim.Now
	pol.Complete()
	if err := pol.Validate(); err != nil {
		t.Fatal(err)
	}
	po := serve(t, pol)

	webhookStatus := func(token string) int {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+in.Addr()+ingest.WebhookPath,
			strings.NewReader(webhook("7b1d2e3f-0000-4000-8000-00000000000a", "SMS", "DELIVERED", "2026-02-01T10:00:00Z")))
		req.Header.Set("X-Webhook-Token", token)
		req.Header.Set("Content-Type", "application/json")
		return do(t, req)
	}
	apiStatus := func(token string) int {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+in.AdminAddr()+"/api/v1/status", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		return do(t, req)
	}
	trackStatus := func(token string) int { // the app backend's endpoint
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+in.Addr()+ingest.TrackPath,
			strings.NewReader(`{"otpId":"7b1d2e3f-0000-4000-8000-00000000000b","api":"v1"}`))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		return do(t, req)
	}
	metricsStatus := func(token string) int {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+in.AdminAddr()+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		return do(t, req)
	}
	status := func(token string) string {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+in.AdminAddr()+"/api/v1/status", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	tyntecCalls := func(outcome string) bool {
		_, body := get(t, "http://"+po.Addr()+"/metrics")
		return regexp.MustCompile(`(?m)^otpscope_tyntec_calls_total\{op="[a-z0-9_]+",outcome="` + outcome + `"\} [1-9]`).MatchString(body)
	}

	if got := [8]int{webhookStatus(oldWebhook), webhookStatus(newWebhook), apiStatus(oldAPI), apiStatus(newAPI), metricsStatus(oldMetrics), metricsStatus(newMetrics), apiStatus(oldRead), apiStatus(newRead)}; got != [8]int{200, 401, 200, 401, 200, 401, 200, 401} {
		t.Fatalf("before the rotation: webhook, API, metrics, API read old/new token = %v; want [200 401 200 401 200 401 200 401]", got)
	}
	if got := [3]int{trackStatus(oldApp), trackStatus(newApp), trackStatus(oldWebhook)}; got != [3]int{200, 401, 401} {
		t.Fatalf("before the rotation: /otps/track with the old and new app token, the webhook token = %v; want [200 401 401]", got)
	}
	brokertest.WaitFor(t, 10*time.Second, "the poller's calls refused for the old key", func() bool { return tyntecCalls("unauthorized") })
	if tyntecCalls("ok") {
		t.Fatal("a tyntec call succeeded with the old key")
	}

	// The API token and the key rotated; the webhook tokens' file broken
	// (a token too short): the old token stays in use, and the status and
	// the metric say so.
	write("webhook-tokens", "short\n")
	write("api-token", newAPI+"\n")
	write("tyntec-api-key", newKey+"\n")
	write("metrics-token", newMetrics+"\n")
	write("api-read-token", newRead+"\n")
	write("app-tokens", newApp+"\n")
	rotated := time.Now()
	const brokenWarning = "the changed file of the webhook tokens does not load"
	brokertest.WaitFor(t, 3*reload.Every, "the rotated secrets in use, the broken file reported", func() bool {
		// A file is looked at when its secret is used: a webhook uses the tokens.
		return webhookStatus(oldWebhook) == 200 && trackStatus(newApp) == 200 && apiStatus(newAPI) == 200 && apiStatus(newRead) == 200 && metricsStatus(newMetrics) == 200 && tyntecCalls("ok") && strings.Contains(status(newAPI), brokenWarning)
	})
	t.Logf("rotated secrets in use after %s", time.Since(rotated).Round(100*time.Millisecond))
	if got := [7]int{apiStatus(oldAPI), metricsStatus(oldMetrics), apiStatus(oldRead), apiStatus(newMetrics), webhookStatus(oldWebhook), webhookStatus("short"), trackStatus(oldApp)}; got != [7]int{401, 401, 401, 401, 200, 401, 401} {
		t.Errorf("after the rotation: API, metrics and API read with the old token, API with the metrics token, webhook with the old and the broken file's, /otps/track with the old app token = %v; want [401 401 401 401 200 401 401]", got)
	}
	if _, body := get(t, "http://"+po.Addr()+"/metrics"); !strings.Contains(body, `otpscope_secret_reload_failing{secret="tyntec_api_key"} 0`) {
		t.Errorf("the poller's metrics lack the key's reload series at 0")
	}

	// The webhook tokens' file mended: the new token in use, the warning gone.
	write("webhook-tokens", newWebhook+"\n")
	brokertest.WaitFor(t, 3*reload.Every, "the mended webhook tokens in use", func() bool {
		return webhookStatus(newWebhook) == 200 && !strings.Contains(status(newAPI), brokenWarning)
	})
	if got := webhookStatus(oldWebhook); got != 401 {
		t.Errorf("webhook with the old token after the rotation = %d; want 401", got)
	}
}

// do sends req and returns the status code.
func do(t *testing.T, req *http.Request) int {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}
