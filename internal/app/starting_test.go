package app_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/otpscope/otpscope/internal/app"
	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/ingest"
	"github.com/otpscope/otpscope/internal/polltest"
)

// While a process starts — here ingest waiting for an external NATS
// server that is down — its listeners answer at once: /healthz 200, a
// webhook and /readyz 503 with Retry-After. Once NATS is back the process
// serves, and the webhook is acknowledged.
func TestListenersAnswerWhileStarting(t *testing.T) {
	nats := brokertest.NewServer(t)
	nats.Stop()
	cfg := newConfig(t, "ingest")
	cfg.Listen, cfg.AdminListen = freeAddr(t), freeAddr(t)
	cfg.NATS.URL = nats.URL()
	cfg.Ingest.Tokens = []string{token}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx, cfg, brokertest.Logger(t), nil) }()

	base, admin := "http://"+cfg.Listen, "http://"+cfg.AdminListen
	client := &http.Client{Timeout: 2 * time.Second}
	polltest.Until(t, 10*time.Second, "/healthz answered while starting", func() bool {
		resp, err := client.Get(base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	id := uuid.NewString()
	body := webhook(id, "sms", "DELIVERED", time.Now().UTC().Format(time.RFC3339Nano))
	for name, do := range map[string]func() (*http.Response, error){
		"webhook": func() (*http.Response, error) { return client.Do(webhookRequest(t, base, body)) },
		"readyz":  func() (*http.Response, error) { return client.Get(base + "/readyz") },
		"admin":   func() (*http.Response, error) { return client.Get(admin + "/readyz") },
	} {
		resp, err := do()
		if err != nil {
			t.Fatalf("%s while starting: %v", name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s while starting = %d, Retry-After %q; want 503 with Retry-After", name, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}

	nats.Start()
	polltest.Until(t, 30*time.Second, "the webhook acknowledged once NATS is up", func() bool {
		resp, err := client.Do(webhookRequest(t, base, body))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if code, body := get(t, admin+"/readyz"); code != http.StatusOK {
		t.Errorf("admin /readyz after the start = %d %s", code, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func webhookRequest(t *testing.T, base, body string) *http.Request {
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+ingest.WebhookPath, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	return req
}

// freeAddr is a loopback address free a moment ago.
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
