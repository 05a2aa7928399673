package ingest_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/ingest"
)

// startService runs the whole ingest service, hosting the embedded NATS server
// under dataDir, and returns its base URL and a stop function that waits for a
// clean shutdown.
func startService(t *testing.T, dataDir string) (string, *ingest.Service, func()) {
	t.Helper()
	cfg := ingest.Config{
		Listen: "127.0.0.1:0", Tokens: []string{token},
		MaxBodyBytes: ingest.DefaultMaxBodyBytes, PublishTimeout: 2 * time.Second,
		RetryAfter: time.Second, ShutdownTimeout: 5 * time.Second,
		NATS: brokertest.Config(t),
	}
	cfg.NATS.DataDir = dataDir
	s, err := ingest.New(t.Context(), cfg, brokertest.Logger(t))
	if err != nil {
		t.Fatalf("ingest.New: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}
	return "http://" + s.Addr(), s, stop
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
	base, _, stop := startService(t, dataDir)

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
	_, metrics := get(t, base+"/metrics")
	for _, want := range []string{
		fmt.Sprintf(`otpscope_ingest_requests_total{outcome="accepted"} %d`, n),
		fmt.Sprintf(`otpscope_ingest_events_total{channel="SMS",status="DELIVERED"} %d`, n),
		fmt.Sprintf("otpscope_ingest_publish_seconds_count %d", n),
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

func TestConfigValidate(t *testing.T) {
	valid := func() ingest.Config {
		return ingest.Config{Listen: "127.0.0.1:8080", Tokens: []string{token}, MaxBodyBytes: 65536,
			PublishTimeout: time.Second, RetryAfter: time.Second, ShutdownTimeout: time.Second, NATS: brokertest.Config(t)}
	}
	tests := []struct {
		name   string
		mutate func(*ingest.Config)
		ok     bool
	}{
		{"valid", func(*ingest.Config) {}, true},
		{"no tokens", func(c *ingest.Config) { c.Tokens = nil }, false},
		{"insecure without tokens", func(c *ingest.Config) { c.Tokens = nil; c.InsecureNoAuth = true }, true},
		{"insecure with tokens", func(c *ingest.Config) { c.InsecureNoAuth = true }, false},
		{"short token", func(c *ingest.Config) { c.Tokens = []string{"abc"} }, false},
		{"tiny body limit", func(c *ingest.Config) { c.MaxBodyBytes = 10 }, false},
		{"bad listen", func(c *ingest.Config) { c.Listen = "8080" }, false},
		{"bad nats", func(c *ingest.Config) { c.NATS.Sync = "never" }, false},
	}
	for _, tt := range tests {
		c := valid()
		tt.mutate(&c)
		if err := c.Validate(); (err == nil) != tt.ok {
			t.Errorf("%s: Validate() = %v; want ok=%v", tt.name, err, tt.ok)
		}
	}
}
