package ingest_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"

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
	eachServer(t, testUnauthorizedAnsweredBeforeTheBody)
}

func testUnauthorizedAnsweredBeforeTheBody(t *testing.T, on server) {
	f := newFixtureOn(t, on)
	addr := strings.TrimPrefix(f.url, "http://")
	resp, _ := rawPost(t, addr, "", 1000, "", false)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d; want 401", resp.StatusCode)
	}
	if on == fastServer { // answered before its route ran, and still counted as the route's
		want := `otpscope_http_requests_total{code="401",handler="/webhooks/tyntec",listener="public",method="post"} 1`
		if got := gathered(t, f, "otpscope_http_requests_total"); !strings.Contains(got, want) {
			t.Errorf("metrics lack %s:\n%s", want, got)
		}
	}
}

// A body cut off is a 400 whose answer names no internal address.
func TestCutOffBodyAnswerNamesNoAddress(t *testing.T) {
	eachServer(t, testCutOffBodyAnswerNamesNoAddress)
}

func testCutOffBodyAnswerNamesNoAddress(t *testing.T, on server) {
	f := newFixtureOn(t, on)
	addr := strings.TrimPrefix(f.url, "http://")
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

// On the public listener's own server, headers beyond ingest.MaxHeaderBytes
// are a 431 problem, and the connection is closed.
func TestFastServerHeadersTooLarge(t *testing.T) {
	f := newFixture(t)
	addr := strings.TrimPrefix(f.url, "http://")
	big := "X-Padding: " + strings.Repeat("x", ingest.MaxHeaderBytes) + "\r\n"
	resp, body := rawPost(t, addr, big+"X-Webhook-Token: "+token+"\r\n", 2, "{}", false)
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || !strings.Contains(body, `"status":431`) {
		t.Fatalf("status %d %s; want a 431 problem", resp.StatusCode, body)
	}
	if got := f.subjects(t); len(got) != 0 {
		t.Errorf("the stream holds %v; want nothing", got)
	}
}

// A body sent in chunks, without Content-Length, is read as any other.
func TestChunkedBody(t *testing.T) { eachServer(t, testChunkedBody) }

func testChunkedBody(t *testing.T, on server) {
	f := newFixtureOn(t, on)
	c, err := net.Dial("tcp", strings.TrimPrefix(f.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := `{"channel":"SMS","otpId":"0b7e2d3c-1d39-4c4e-9d1b-5b8c1e0a9f01","status":"DELIVERED","timestamp":"2026-01-01T00:00:00Z"}`
	head := "POST " + ingest.WebhookPath + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Webhook-Token: " + token +
		"\r\nTransfer-Encoding: chunked\r\n\r\n"
	chunks := fmt.Sprintf("%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n", 10, body[:10], len(body)-10, body[10:])
	if _, err := io.WriteString(c, head+chunks); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d; want 200", resp.StatusCode)
	}
	if got := f.subjects(t); got["tyntec.2fa.delivery.SMS.DELIVERED"] != 1 {
		t.Errorf("the stream holds %v; want the delivery", got)
	}
}

// On the public listener's own server, a request to any other route (here a
// path that does not exist) is answered without its body being read: a
// caller announcing 10 MB and sending 8 KB gets its 404 at once.
func TestFastServerOtherRoutesLeaveTheBody(t *testing.T) {
	f := newFixture(t)
	c, err := net.Dial("tcp", strings.TrimPrefix(f.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	head := "POST /no-such-endpoint HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
		strconv.Itoa(10<<20) + "\r\n\r\n" + strings.Repeat("x", 8<<10)
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("status %d %s; want a 404 problem", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// gathered is the text exposition of the fixture's metric name.
func gathered(t *testing.T, f *fixture, name string) string {
	t.Helper()
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		if mf.GetName() == name {
			if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
				t.Fatal(err)
			}
		}
	}
	return b.String()
}

// A POST with Expect: 100-continue without a valid token is answered 401,
// not invited to send the body its endpoint refuses unread; a valid one
// is invited.
func TestExpectContinue(t *testing.T) { eachServer(t, testExpectContinue) }

func testExpectContinue(t *testing.T, on server) {
	f := newFixtureOn(t, on)
	addr := strings.TrimPrefix(f.url, "http://")
	body := `{"channel":"SMS","otpId":"0b7e2d3c-1d39-4c4e-9d1b-5b8c1e0a9f02","status":"DELIVERED","timestamp":"2026-01-01T00:00:00Z"}`
	for _, c := range []struct {
		name, tokenHeader string
		length            int
		want              int
	}{
		{"no token", "", len(body), http.StatusUnauthorized},
		{"a wrong token", "X-Webhook-Token: wrong-token-0123456789\r\n", len(body), http.StatusUnauthorized},
		{"valid", "X-Webhook-Token: " + token + "\r\n", len(body), http.StatusContinue},
	} {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		head := "POST " + ingest.WebhookPath + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\n" + c.tokenHeader +
			"Content-Length: " + strconv.Itoa(c.length) + "\r\n\r\n"
		if _, err := io.WriteString(conn, head); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		r := bufio.NewReader(conn)
		line, err := r.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "HTTP/1.1 "+strconv.Itoa(c.want)+" ") {
			t.Errorf("%s: first answer %q (%v); want %d before any body", c.name, line, err, c.want)
		}
		if c.want == http.StatusContinue {
			_, _ = r.ReadString('\n') // the blank line ending the 100
			if _, err := io.WriteString(conn, body); err != nil {
				t.Fatal(err)
			}
			if resp, err := http.ReadResponse(r, nil); err != nil || resp.StatusCode != http.StatusOK {
				t.Errorf("%s: after the body %v, %v; want 200", c.name, resp, err)
			}
		}
		conn.Close()
	}
}
