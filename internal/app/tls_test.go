package app_test

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/ingest"
	"github.com/otpscope/otpscope/internal/ops/tlstest"
)

// TestTLSListeners: with --tls-cert-file and --tls-key-file both listeners
// answer HTTPS only (a webhook is stored, the API answers), and a renewed
// certificate is served without a restart.
func TestTLSListeners(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	first := tlstest.Write(t, certFile, keyFile, "first")

	cfg := newConfig(t, "ingest")
	cfg.AdminListen = "127.0.0.1:0"
	cfg.Ingest.Tokens = []string{token}
	cfg.TLSCertFile, cfg.TLSKeyFile = certFile, keyFile
	cfg.DataDir = t.TempDir()
	cfg.Complete()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a := serve(t, cfg)

	client := func(trust *x509.Certificate) *http.Client {
		pool := x509.NewCertPool()
		pool.AddCert(trust)
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	}
	post := func(c *http.Client) (*http.Response, error) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, "https://"+a.Addr()+ingest.WebhookPath,
			strings.NewReader(webhook("7b1d2e3f-0000-4000-8000-000000000001", "SMS", "DELIVERED", "2026-02-01T10:00:00Z")))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		return c.Do(req)
	}
	resp, err := post(client(first))
	if err != nil {
		t.Fatalf("webhook over HTTPS: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.TLS == nil || resp.TLS.PeerCertificates[0].Subject.CommonName != "first" {
		t.Fatalf("webhook over HTTPS = %d, TLS %v; want 200 with the first certificate", resp.StatusCode, resp.TLS != nil)
	}
	if resp, err := client(first).Get("https://" + a.AdminAddr() + "/metrics"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("admin over HTTPS: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + a.Addr() + "/healthz"); err == nil && resp.StatusCode == http.StatusOK {
		t.Fatal("plain HTTP answered 200 on a TLS listener")
	}

	second := tlstest.Write(t, certFile, keyFile, "second")
	deadline := time.Now().Add(30 * time.Second) // ops checks the files every 10 s
	for {
		c := client(second)
		resp, err := post(c)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("webhook with the renewed certificate = %d", resp.StatusCode)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the renewed certificate was not served within 30 s: %v", err)
		}
		c.CloseIdleConnections()
		time.Sleep(500 * time.Millisecond)
	}
}

// TestTLSConfigChecks: half a pair, a file that is not a certificate and
// --simulate with TLS are refused before start.
func TestTLSConfigChecks(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	tlstest.Write(t, certFile, keyFile, "c")
	junk := filepath.Join(dir, "junk")
	if err := os.WriteFile(junk, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		cert, key string
		simulate  bool
		want      string
	}{
		{certFile, "", false, "go together"},
		{junk, keyFile, false, "tls certificate"},
		{certFile, filepath.Join(dir, "absent"), false, "no such file"},
		{certFile, keyFile, true, "--simulate with --tls-cert-file"},
	} {
		cfg := newConfig(t, "ingest")
		cfg.Ingest.InsecureNoAuth = true
		cfg.TLSCertFile, cfg.TLSKeyFile, cfg.Simulate.Enabled = tt.cert, tt.key, tt.simulate
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: Validate = %v; want %q", tt, err, tt.want)
		}
	}
}
