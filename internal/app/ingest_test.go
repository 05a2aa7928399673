package app_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/app"
	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/ingest"
)

// startService runs the ingest binary's modules, hosting the embedded NATS
// server under dataDir, and returns its base URL and a stop function that
// waits for a clean shutdown.
func startService(t *testing.T, dataDir string) (string, *app.App, func()) {
	t.Helper()
	cfg := newConfig(t, "ingest")
	cfg.AdminListen = "127.0.0.1:0"
	cfg.DataDir = dataDir
	cfg.Ingest.Tokens = []string{token}
	cfg.Ingest.PublishTimeout = 2 * time.Second
	cfg.Ingest.RetryAfter = time.Second
	a, stop := start(t, cfg)
	return "http://" + a.Addr(), a, stop
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func postTo(t *testing.T, base, body string) int {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, base+ingest.WebhookPath, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestServiceEndToEndAndDurable(t *testing.T) {
	dataDir := t.TempDir()
	base, a, stop := startService(t, dataDir)

	if code, body := get(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d %s", code, body)
	}
	if code, body := get(t, base+"/readyz"); code != http.StatusOK || !strings.Contains(body, "nats: ok") {
		t.Errorf("/readyz = %d %s", code, body)
	}
	const n = 200
	for i := range n {
		body := webhook(fmt.Sprintf("5a0c6a4e-0000-4000-8000-%012d", i), "SMS", "DELIVERED", "2026-02-01T10:00:00Z")
		if code := postTo(t, base, body); code != http.StatusOK {
			t.Fatalf("post %d: %d", i, code)
		}
	}
	if code, _ := get(t, base+"/metrics"); code != http.StatusNotFound {
		t.Errorf("/metrics on the public listener = %d; want 404 (it is on the admin listener)", code)
	}
	_, metrics := get(t, "http://"+a.AdminAddr()+"/metrics")
	for _, want := range []string{
		fmt.Sprintf(`otpscope_ingest_requests_total{endpoint="webhook",outcome="accepted"} %d`, n),
		fmt.Sprintf(`otpscope_ingest_events_total{channel="SMS",status="DELIVERED"} %d`, n),
		fmt.Sprintf("otpscope_ingest_publish_seconds_count %d", n),
		// fasthttp's webhooks are counted as the router's routes are.
		fmt.Sprintf(`otpscope_http_requests_total{code="200",handler="/webhooks/tyntec",listener="public",method="post"} %d`, n),
		`otpscope_http_requests_total{code="404",handler="unmatched",listener="public",method="get"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	stop()

	// A new process on the same data directory finds every acknowledged event.
	_, s2, stop2 := startService(t, dataDir)
	defer stop2()
	if got := brokertest.StreamMsgs(t, s2.Broker()); got != n {
		t.Fatalf("after restart the stream holds %d messages; want %d", got, n)
	}
}

const token = "s3cret-token-0123456789"

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		binary string
		name   string
		mutate func(*app.Config)
		ok     bool
	}{
		{"ingest", "valid", func(*app.Config) {}, true},
		{"ingest", "no tokens", func(c *app.Config) { c.Ingest.Tokens = nil }, false},
		{"ingest", "bad listen", func(c *app.Config) { c.Listen = "8080" }, false},
		{"ingest", "bad nats", func(c *app.Config) { c.NATS.Sync = "never" }, false},
		{"ingest", "no shutdown time", func(c *app.Config) { c.ShutdownTimeout = 0 }, false},
		{"reporter", "valid", func(*app.Config) {}, true},
		{"reporter", "bad clickhouse-listen", func(c *app.Config) { c.ClickHouse.Listen = "8123" }, false},
		{"otpscope", "valid", func(*app.Config) {}, true},
		// The all-in-one checks the engine's address as the reporter does.
		{"otpscope", "bad clickhouse-listen", func(c *app.Config) { c.ClickHouse.Listen = "8123" }, false},
		// Beyond loopback, anyone could read: only with a reader password.
		{"reporter", "clickhouse-listen 0.0.0.0 without reader password", func(c *app.Config) { c.ClickHouse.Listen = "0.0.0.0:8123" }, false},
		{"otpscope", "clickhouse-listen :8123 without reader password", func(c *app.Config) { c.ClickHouse.Listen = ":8123" }, false},
		{"otpscope", "clickhouse-listen 0.0.0.0 with reader password", func(c *app.Config) {
			c.ClickHouse.Listen, c.ClickHouse.ReaderPassword = "0.0.0.0:8123", "s3cret-reader"
		}, true},
		{"reporter", "clickhouse-listen localhost", func(c *app.Config) { c.ClickHouse.Listen = "localhost:8123" }, true},
		{"otpscope", "simulate without a token", func(c *app.Config) { c.Ingest.Tokens = nil; c.Simulate.Enabled = true }, true},
		{"poller", "no API key", func(c *app.Config) { c.Poller.Tyntec.APIKey = "" }, false},
		// A metrics token guards /metrics only beside an API token.
		{"reporter", "metrics token and API token", func(c *app.Config) { c.APITokens, c.MetricsTokens = []string{token}, []string{token + "-metrics"} }, true},
		{"poller", "metrics token without API token", func(c *app.Config) { c.MetricsTokens = []string{token} }, false},
		{"ingest", "short metrics token", func(c *app.Config) { c.APITokens, c.MetricsTokens = []string{token}, []string{"short"} }, false},
		// A read token narrows an API token's access; alone it would guard
		// nothing an open API does not give away.
		{"reporter", "read token and API token", func(c *app.Config) { c.APITokens, c.APIReadTokens = []string{token}, []string{token + "-read"} }, true},
		{"otpscope", "read token without API token", func(c *app.Config) { c.APIReadTokens = []string{token + "-read"} }, false},
		{"ingest", "short read token", func(c *app.Config) { c.APITokens, c.APIReadTokens = []string{token}, []string{"short"} }, false},
	}
	for _, tt := range tests {
		c := newConfig(t, tt.binary)
		c.Ingest.Tokens = []string{token}
		c.Poller.Tyntec.APIKey = "key"
		tt.mutate(&c)
		c.Complete()
		if err := c.Validate(); (err == nil) != tt.ok {
			t.Errorf("%s %s: Validate() = %v; want ok=%v", tt.binary, tt.name, err, tt.ok)
		}
	}
}

func webhook(otpID, channel, status, ts string) string {
	return fmt.Sprintf(`{"channel":%q,"otpId":%q,"status":%q,"timestamp":%q}`, channel, otpID, status, ts)
}

// A taken port fails New at once, before NATS or the engine start.
func TestPortConflictFailsAtOnce(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg := newConfig(t, "ingest")
	cfg.Listen = taken.Addr().String()
	cfg.Ingest.Tokens = []string{token}
	cfg.NATS.URL = "nats://127.0.0.1:1" // unreachable: reaching it would retry, not fail
	_, err = app.New(t.Context(), cfg, brokertest.Logger(t))
	if err == nil || !strings.Contains(err.Error(), "listen on "+cfg.Listen) {
		t.Fatalf("New on a taken port = %v; want a listen error", err)
	}
}

// TestShutdownDelayFailsReadinessFirst: once Serve's context ends (SIGTERM),
// with --shutdown-delay /readyz answers 503 on both listeners while webhooks
// are still accepted, and the listeners close only after the delay.
func TestShutdownDelayFailsReadinessFirst(t *testing.T) {
	cfg := newConfig(t, "ingest")
	cfg.AdminListen = "127.0.0.1:0"
	cfg.Ingest.Tokens = []string{token}
	cfg.ShutdownDelay = 3 * time.Second
	a, err := app.New(t.Context(), cfg, brokertest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx) }()
	base, admin := "http://"+a.Addr(), "http://"+a.AdminAddr()
	if code, body := get(t, admin+"/readyz"); code != http.StatusOK || !strings.Contains(body, "serving: ok") {
		t.Fatalf("/readyz before the stop = %d %s", code, body)
	}

	cancel()
	stopped := time.Now()
	var code int
	var body string
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if code, body = get(t, admin+"/readyz"); code == http.StatusServiceUnavailable {
			break
		}
	}
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "serving: stopping") || !strings.Contains(body, "nats: ok") {
		t.Fatalf("admin /readyz while stopping = %d %s; want 503 naming the stop", code, body)
	}
	if code, body := get(t, base+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "serving: failing") {
		t.Errorf("public /readyz while stopping = %d %s", code, body)
	}
	// The status (`otpscope status`) says what /readyz does.
	if code, body := get(t, admin+"/api/v1/status"); code != http.StatusOK || !strings.Contains(body, `"not ready, serving: stopping`) {
		t.Errorf("/api/v1/status while stopping = %d %s; want a warning naming the failing check", code, body)
	}
	if code := postTo(t, base, webhook("5a0c6a4e-0000-4000-8000-00000000d1a1", "SMS", "DELIVERED", "2026-02-01T10:00:00Z")); code != http.StatusOK {
		t.Errorf("a webhook while stopping = %d; want 200", code)
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if waited := time.Since(stopped); waited < cfg.ShutdownDelay {
		t.Errorf("Serve returned %v after the stop; want the listeners open for the %v delay", waited, cfg.ShutdownDelay)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("the public listener still answers after Serve returned")
	}
}

// Without an API token the admin listener still answers HEAD as GET (a load
// balancer's check), counts its requests and survives a panic: its server
// serves the router with that middleware, not the browser-guarded routes
// made from it (which once answered HEAD 405 and counted nothing).
func TestAdminListenerWithoutTokenAnswersHead(t *testing.T) {
	cfg := newConfig(t, "ingest")
	cfg.AdminListen = "127.0.0.1:0"
	cfg.Ingest.Tokens = []string{token}
	a := serve(t, cfg)
	admin := "http://" + a.AdminAddr()
	for _, path := range []string{"/healthz", "/readyz", "/api/v1/status", "/metrics"} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodHead, admin+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || len(body) != 0 {
			t.Errorf("HEAD %s = %d with %d bytes; want 200 without a body", path, resp.StatusCode, len(body))
		}
	}
	_, metrics := get(t, admin+"/metrics")
	if want := `otpscope_http_requests_total{code="200",handler="/healthz",listener="admin",method="head"} 1`; !strings.Contains(metrics, want) {
		t.Errorf("/metrics lacks %s", want)
	}
}
