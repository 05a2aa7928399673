package ingest_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/ingest"
)

// rawPost sends a POST's headers announcing n body bytes, then body (maybe
// fewer), and returns the answer read within a few seconds.
func rawPost(t *testing.T, addr, tokenHeader string, n int, body string, closeWrite bool) (*http.Response, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	head := "POST " + ingest.WebhookPath + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + tokenHeader +
		"Content-Length: " + strconv.Itoa(n) + "\r\n\r\n" + body
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	if closeWrite {
		_ = c.(*net.TCPConn).CloseWrite()
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// A caller without a token is answered 401 at once, even when it never sends
// the body it announced (no waiting for the read timeout).
func TestUnauthorizedAnsweredBeforeTheBody(t *testing.T) {
	f := newFixture(t)
	addr := strings.TrimPrefix(f.http.URL, "http://")
	resp, _ := rawPost(t, addr, "", 1000, "", false)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d; want 401", resp.StatusCode)
	}
}

// A body cut off is a 400 whose answer names no internal address.
func TestCutOffBodyAnswerNamesNoAddress(t *testing.T) {
	f := newFixture(t)
	addr := strings.TrimPrefix(f.http.URL, "http://")
	resp, body := rawPost(t, addr, "X-Webhook-Token: "+token+"\r\n", 1000, `{"channel":"SMS"`, true)
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d; want 400", resp.StatusCode)
	}
	if strings.Contains(body, "127.0.0.1") || strings.Contains(body, "tcp") {
		t.Errorf("answer leaks a connection detail: %s", body)
	}
	if got := f.subjects(t); len(got) != 0 {
		t.Errorf("the stream holds %v; want nothing", got)
	}
}
