package ops_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/otpscope/otpscope/internal/ops"
)

// Before Handoff every request is answered 503 (/healthz 200) and its
// connection closed; after it the process's own server — here fasthttp,
// the public listener's — answers on the same listener, and closing that
// server's listener unbinds the port.
func TestStartingHandsTheListenerOver(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	starting := ops.ServeStarting(ln)
	client := &http.Client{Timeout: 5 * time.Second}
	answer := func(path string) (int, string, *http.Response) {
		t.Helper()
		resp, err := client.Get(base + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp
	}
	if code, body, resp := answer("/healthz"); code != http.StatusOK || body != "ok (starting)\n" || !resp.Close {
		t.Errorf("/healthz while starting = %d %q, close %v; want 200, the connection closed", code, body, resp.Close)
	}
	if code, _, resp := answer("/webhooks/tyntec"); code != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != ops.StartingRetryAfter || !resp.Close {
		t.Errorf("a request while starting = %d, Retry-After %q, close %v; want 503, %s, the connection closed", code, resp.Header.Get("Retry-After"), resp.Close, ops.StartingRetryAfter)
	}

	handed := starting.Handoff(t.Context())
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.WriteString("served") }}
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- ops.ServeFast(ctx, srv, handed, 5*time.Second) }()
	if code, body, _ := answer("/webhooks/tyntec"); code != http.StatusOK || body != "served" {
		t.Errorf("after the handoff = %d %q; want the server's own answer", code, body)
	}
	cancel()
	if err := <-served; err != nil {
		t.Fatalf("ServeFast: %v", err)
	}
	if c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Fatal("the port still accepts connections after the server stopped")
	}
}
