package ingest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/otpscope/otpscope/internal/broker"
	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/ingest"
	"github.com/otpscope/otpscope/internal/ops"
	"github.com/otpscope/otpscope/internal/polltest"
	"github.com/otpscope/otpscope/internal/problem"
)

const (
	token    = "s3cret-token-0123456789"
	oldToken = "previous-token-abcdefghij"
)

// fixture is the ingest endpoints (webhook, tracking, methods) served on
// one server, publishing to a real embedded NATS server.
type fixture struct {
	srv    *brokertest.Server
	broker *broker.Broker
	url    string
	reg    *prometheus.Registry
	logs   *polltest.Buffer // what the handler logged
}

// A server is one way the endpoints are served: fasthttp, the public
// listener's own server (ingest.NewServer), or a net/http router (when the
// API shares the listener).
type server string

const (
	fastServer   server = "fasthttp"
	routerServer server = "net/http"
)

// eachServer runs test on each server.
func eachServer(t *testing.T, test func(t *testing.T, on server)) {
	for _, on := range []server{fastServer, routerServer} {
		t.Run(string(on), func(t *testing.T) { test(t, on) })
	}
}

// newFixture serves the endpoints as the public listener does by default.
func newFixture(t *testing.T, mutate ...func(*ingest.Config)) *fixture {
	return newFixtureOn(t, fastServer, mutate...)
}

func newFixtureOn(t *testing.T, on server, mutate ...func(*ingest.Config)) *fixture {
	t.Helper()
	srv := brokertest.NewServer(t)
	b := srv.Broker(t)
	cfg := ingest.Config{
		Tokens:       []string{token, oldToken},
		MaxBodyBytes: ingest.DefaultMaxBodyBytes, PublishTimeout: time.Second,
		RetryAfter: 3 * time.Second,
	}
	for _, m := range mutate {
		m(&cfg)
	}
	reg := prometheus.NewRegistry()
	logs := new(polltest.Buffer)
	h := ingest.NewHandler(cfg, b, slog.New(slog.NewTextHandler(logs, nil)), reg)
	routes := append(h.Routes(), ingest.NewMethods(h, []byte(pseudonymKey), reg).Routes()...)
	r := ops.NewRouter()
	ingest.Mount(r, routes...)
	f := &fixture{srv: srv, broker: b, reg: reg, logs: logs}
	switch on {
	case routerServer:
		hs := httptest.NewServer(r)
		t.Cleanup(hs.Close)
		f.url = hs.URL
	case fastServer:
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		fs := h.NewServer(r, ops.NewHTTPMetrics(reg).Recorder("public"), routes...)
		done := make(chan error, 1)
		go func() { done <- fs.Serve(ln) }()
		t.Cleanup(func() {
			if err := fs.Shutdown(); err != nil {
				t.Errorf("shutdown: %v", err)
			}
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		})
		f.url = "http://" + ln.Addr().String()
	}
	return f
}

// post posts body to the webhook endpoint, with the token unless header
// (name, value, ...) says otherwise.
func (f *fixture) post(t *testing.T, body string, header ...string) *http.Response {
	t.Helper()
	if len(header) == 0 {
		header = []string{"X-Webhook-Token", token}
	}
	return f.postTo(t, ingest.WebhookPath, body, header...)
}

// postTo posts body to path with header (name, value, ...); the response
// body is closed when the test ends.
func (f *fixture) postTo(t *testing.T, path, body string, header ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, f.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// subjects counts the stream's messages by subject.
func (f *fixture) subjects(t *testing.T) map[string]uint64 {
	t.Helper()
	s, err := brokertest.JetStream(t, f.broker).Stream(t.Context(), f.broker.StreamName())
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context(), jetstream.WithSubjectFilter(">"))
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Subjects == nil {
		return map[string]uint64{}
	}
	return info.State.Subjects
}

func seed(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "events", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func webhook(otpID, channel, status, ts string) string {
	return fmt.Sprintf(`{"channel":%q,"otpId":%q,"status":%q,"timestamp":%q}`, channel, otpID, status, ts)
}

func TestWebhookAccepted(t *testing.T) { eachServer(t, testWebhookAccepted) }

func testWebhookAccepted(t *testing.T, on server) {
	f := newFixtureOn(t, on)
	tests := []struct {
		file     string
		subjects map[string]uint64
	}{
		{"seed_delivered.json", map[string]uint64{"tyntec.2fa.delivery.SMS.DELIVERED": 1}},
		{"seed_undeliverable_error.json", map[string]uint64{"tyntec.2fa.delivery.SMS.UNDELIVERABLE": 1}},
		{"no_profile.json", map[string]uint64{"tyntec.2fa.delivery.VIBER.DISPATCHED": 1}},
		{"unknown_values.json", map[string]uint64{"tyntec.2fa.delivery.RCS.READ": 1}},
		{"array.json", map[string]uint64{
			"tyntec.2fa.delivery.SMS.DISPATCHED": 1, "tyntec.2fa.delivery.SMS.UNDELIVERABLE": 1, "tyntec.2fa.delivery.VIBER.DELIVERED": 1}},
	}
	want := map[string]uint64{}
	// A body after a UTF-8 byte-order mark (some senders' JSON libraries
	// write one) is read as without it.
	bom := "\uFEFF" + `{"channel":"VOICE","otpId":"6f1c2a4e-93b5-4d0e-8a7f-2c9e5b1d3a70","status":"DELIVERED","timestamp":"2026-11-22T09:00:00Z"}`
	if resp := f.post(t, bom); resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST after a byte-order mark = %d %s; want 200", resp.StatusCode, b)
	}
	want["tyntec.2fa.delivery.VOICE.DELIVERED"] = 1
	for _, tt := range tests {
		resp := f.post(t, seed(t, tt.file))
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("POST %s = %d %s; want 200", tt.file, resp.StatusCode, b)
		}
		for k, v := range tt.subjects {
			want[k] += v
		}
	}
	// seed_delivered and the array share no fact, seed_undeliverable_error's
	// UNDELIVERABLE at 03:00:00 differs from the array's at 03:00:05.
	if got := f.subjects(t); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("stream subjects = %v; want %v", got, want)
	}
}

func TestAuthentication(t *testing.T) { eachServer(t, testAuthentication) }

func testAuthentication(t *testing.T, on server) {
	f := newFixtureOn(t, on)
	body := webhook("0b7e2d3c-1d39-4c4e-9d1b-5b8c1e0a9f01", "SMS", "DELIVERED", "2026-01-01T00:00:00Z")
	tests := []struct {
		name   string
		header []string
		want   int
	}{
		{"no token", []string{"X-Other", "x"}, http.StatusUnauthorized},
		{"wrong token", []string{"X-Webhook-Token", "wrong-token-0123456789"}, http.StatusUnauthorized},
		{"token prefix", []string{"X-Webhook-Token", token[:10]}, http.StatusUnauthorized},
		{"basic auth", []string{"Authorization", "Basic " + token}, http.StatusUnauthorized},
		{"bearer wrong", []string{"Authorization", "Bearer nope"}, http.StatusUnauthorized},
		{"header token", []string{"X-Webhook-Token", token}, http.StatusOK},
		{"bearer token", []string{"Authorization", "Bearer " + token}, http.StatusOK},
		{"rotated previous token", []string{"X-Webhook-Token", oldToken}, http.StatusOK},
	}
	for _, tt := range tests {
		resp := f.post(t, body, tt.header...)
		if resp.StatusCode != tt.want {
			t.Errorf("%s: status %d; want %d", tt.name, resp.StatusCode, tt.want)
		}
		if tt.want == http.StatusUnauthorized && resp.Header.Get("Content-Type") != problem.ContentType {
			t.Errorf("%s: Content-Type %q; want problem+json", tt.name, resp.Header.Get("Content-Type"))
		}
	}
	// The refusals are logged once each kind within the interval: the
	// first whose token was missing and the first whose token was wrong,
	// from the test's address; never a token.
	logged := f.logs.String()
	if n := strings.Count(logged, "request refused for its webhook token"); n != 2 ||
		!regexp.MustCompile(`refused=1 path=/webhooks/tyntec token=missing remote=127\.0\.0\.1:\d+`).MatchString(logged) ||
		!regexp.MustCompile(`refused=1 path=/webhooks/tyntec token=wrong remote=127\.0\.0\.1:\d+`).MatchString(logged) {
		t.Errorf("refusals logged %d times:\n%s\nwant twice, the first of each: a missing token, a wrong one, from 127.0.0.1", n, logged)
	}
	if strings.Contains(logged, "wrong-token") || strings.Contains(logged, token[:10]) {
		t.Errorf("a presented token is logged:\n%s", logged)
	}
	// The three accepted posts are one fact: one message. No 401 left anything.
	if got := f.subjects(t); len(got) != 1 || got["tyntec.2fa.delivery.SMS.DELIVERED"] != 1 {
		t.Errorf("stream subjects = %v; want one delivery", got)
	}
}

// TestSenderTokens: with --app-token and --push-token each sender's
// endpoints accept its own tokens only, so a token one sender holds cannot
// write as another (the app backend's cannot forge tyntec's statuses);
// refused before the body is read, as a wrong webhook token is. Without
// them every endpoint takes the webhook tokens (TestTrack, methods_test).
func TestSenderTokens(t *testing.T) { eachServer(t, testSenderTokens) }

func testSenderTokens(t *testing.T, on server) {
	const appToken, pushToken = "app-backend-token-0123456", "push-provider-token-0123456"
	f := newFixtureOn(t, on, func(c *ingest.Config) {
		c.AppTokens, c.PushTokens = []string{appToken}, []string{pushToken}
	})
	bodies := map[string]string{
		ingest.WebhookPath: webhook("0b7e2d3c-1d39-4c4e-9d1b-5b8c1e0a9f02", "SMS", "DELIVERED", "2026-01-01T00:00:00Z"),
		ingest.TrackPath:   `{"otpId":"0b7e2d3c-1d39-4c4e-9d1b-5b8c1e0a9f02","api":"v1"}`,
		ingest.SilentPath:  `{"attemptId":"sa-tokens-1","startedAt":"2026-01-01T00:00:00Z","finishedAt":"2026-01-01T00:00:01Z","result":"verified"}`,
		ingest.PushPath:    `{"uuid":"push-tokens-1","status":"approved","createdAt":"2026-01-01T00:00:00Z"}`,
	}
	owner := map[string]string{ingest.WebhookPath: token, ingest.TrackPath: appToken, ingest.SilentPath: appToken, ingest.PushPath: pushToken}
	for path, body := range bodies {
		for _, tok := range []string{token, oldToken, appToken, pushToken} {
			want := http.StatusUnauthorized
			if tok == owner[path] || (path == ingest.WebhookPath && tok == oldToken) {
				want = http.StatusOK
				if path == ingest.SilentPath {
					want = http.StatusAccepted
				}
			}
			if resp := f.postTo(t, path, body, "Authorization", "Bearer "+tok); resp.StatusCode != want {
				t.Errorf("POST %s with %s: %d; want %d", path, tok[:8], resp.StatusCode, want)
			}
		}
	}
	// One message an endpoint: the owners' posts (the webhook's twice, one fact).
	var n uint64
	for _, c := range f.subjects(t) {
		n += c
	}
	if n != 4 {
		t.Errorf("stream holds %d messages: %v; want 4, one an endpoint", n, f.subjects(t))
	}
	if got, want := gathered(t, f, "otpscope_ingest_requests_total"), `otpscope_ingest_requests_total{endpoint="push",outcome="unauthorized"} 3`; !strings.Contains(got, want+"\n") {
		t.Errorf("lacks %s:\n%s", want, got)
	}
}

func TestBadInput(t *testing.T) { eachServer(t, testBadInput) }

func testBadInput(t *testing.T, on server) {
	const otp = "0b7e2d3c-1d39-4c4e-9d1b-5b8c1e0a9f01"
	tests := []struct {
		name        string
		body        string
		contentType string
		status      int
		field       string
		index       int    // -1: no index member
		encoding    string // Content-Encoding
	}{
		{"malformed JSON", `{"channel": "SMS", `, "", http.StatusBadRequest, "", -1, ""},
		{"wrong content", `["hello"]`, "", http.StatusBadRequest, "", 0, ""},
		{"a number", `42`, "", http.StatusBadRequest, "", -1, ""},
		{"invalid otpId", webhook("not-a-uuid", "SMS", "DELIVERED", "2026-01-01T00:00:00Z"), "", http.StatusBadRequest, "otpId", -1, ""},
		{"missing status", `{"channel":"SMS","otpId":"` + otp + `"}`, "", http.StatusBadRequest, "status", -1, ""},
		{"bad element in array", `[` + webhook(otp, "SMS", "DELIVERED", "2026-01-01T00:00:00Z") + `,` + webhook(otp, "SMS", "DEL IVERED", "") + `]`, "", http.StatusBadRequest, "status", 1, ""},
		{"empty array", `[]`, "", http.StatusBadRequest, "", -1, ""},
		{"not JSON content type", webhook(otp, "SMS", "DELIVERED", ""), "text/plain", http.StatusUnsupportedMediaType, "", -1, ""},
		// fasthttp would parse a multipart body before the handler and
		// answer a bare 400 with no dead letter.
		{"multipart content type", webhook(otp, "SMS", "DELIVERED", ""), "multipart/form-data; boundary=x", http.StatusUnsupportedMediaType, "", -1, ""},
		{"oversized body", `{"channel":"SMS","pad":"` + strings.Repeat("x", 70<<10) + `"}`, "", http.StatusRequestEntityTooLarge, "", -1, ""},
		// tyntec sends plain JSON; a compressed body is said to be one,
		// not taken for malformed JSON.
		{"compressed body", "\x1f\x8b\x08\x00", "", http.StatusUnsupportedMediaType, "", -1, "gzip"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixtureOn(t, on)
			header := []string{"X-Webhook-Token", token}
			if tt.contentType != "" {
				header = append(header, "Content-Type", tt.contentType)
			}
			if tt.encoding != "" {
				header = append(header, "Content-Encoding", tt.encoding)
			}
			resp := f.post(t, tt.body, header...)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d; want %d", resp.StatusCode, tt.status)
			}
			if ct := resp.Header.Get("Content-Type"); ct != problem.ContentType {
				t.Errorf("Content-Type %q; want %q", ct, problem.ContentType)
			}
			var p problem.Details
			if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
				t.Fatalf("problem body: %v", err)
			}
			if p.Status != tt.status || p.Field != tt.field || p.Detail == "" {
				t.Errorf("problem = %+v; want status %d, field %q and a detail", p, tt.status, tt.field)
			}
			if (p.Index == nil) != (tt.index < 0) || (p.Index != nil && *p.Index != tt.index) {
				t.Errorf("problem index = %v; want %d", p.Index, tt.index)
			}
			// Exactly one dead letter, holding the body and the reason; no delivery.
			if got := f.subjects(t); len(got) != 1 || got[events.SubjectDeadLetter] != 1 {
				t.Fatalf("stream subjects = %v; want exactly one dead letter", got)
			}
			dl := lastDeadLetter(t, f)
			if dl.Reason != p.Detail || dl.Status != tt.status || dl.Source != "ingest" || dl.Path != ingest.WebhookPath {
				t.Errorf("dead letter = %+v; want reason %q, status %d, path %s", dl, p.Detail, tt.status, ingest.WebhookPath)
			}
			wantBody := tt.body
			if len(wantBody) > ingest.DefaultMaxBodyBytes {
				wantBody = wantBody[:ingest.DefaultMaxBodyBytes]
			}
			got := dl.Body
			if dl.BodyBase64 != nil { // not UTF-8
				got = string(dl.BodyBase64)
			}
			if got != wantBody || dl.Truncated != (len(tt.body) > ingest.DefaultMaxBodyBytes) {
				t.Errorf("dead letter body has %d bytes (truncated %v); want %d", len(got), dl.Truncated, len(wantBody))
			}
		})
	}
}

func lastDeadLetter(t *testing.T, f *fixture) events.DeadLetter {
	t.Helper()
	s, err := brokertest.JetStream(t, f.broker).Stream(t.Context(), f.broker.StreamName())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.GetLastMsgForSubject(t.Context(), events.SubjectDeadLetter)
	if err != nil {
		t.Fatal(err)
	}
	var dl events.DeadLetter
	if err := json.Unmarshal(raw.Data, &dl); err != nil {
		t.Fatal(err)
	}
	return dl
}

func TestWrongMethod(t *testing.T) { eachServer(t, testWrongMethod) }

func testWrongMethod(t *testing.T, on server) {
	f := newFixtureOn(t, on)
	for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
		req, _ := http.NewRequestWithContext(t.Context(), method, f.url+ingest.WebhookPath, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s = %d; want 405", method, resp.StatusCode)
		}
	}
	if got := f.subjects(t); len(got) != 0 {
		t.Errorf("stream subjects = %v; want none", got)
	}
}

func TestDuplicateDelivery(t *testing.T) {
	f := newFixture(t)
	body := webhook("6f1f7f5e-9a3b-4c1e-8a77-3f2b1c0d9e8a", "WHATSAPP", "DELIVERED", "2026-03-01T12:00:00.123Z")
	for i := range 5 {
		if resp := f.post(t, body); resp.StatusCode != http.StatusOK {
			t.Fatalf("post %d: status %d", i, resp.StatusCode)
		}
	}
	if got := f.subjects(t); len(got) != 1 || got["tyntec.2fa.delivery.WHATSAPP.DELIVERED"] != 1 {
		t.Fatalf("stream subjects after 5 identical posts = %v; want one message", got)
	}
	// Events are counted after deduplication; requests are not.
	want := `
# HELP otpscope_ingest_events_total Delivery events stored, by channel and status (OTHER for values tyntec did not document); duplicates the stream dropped are not counted.
# TYPE otpscope_ingest_events_total counter
otpscope_ingest_events_total{channel="WHATSAPP",status="DELIVERED"} 1
`
	if err := testutil.GatherAndCompare(f.reg, strings.NewReader(want), "otpscope_ingest_events_total"); err != nil {
		t.Error(err)
	}
}

func TestNATSDown(t *testing.T) { eachServer(t, testNATSDown) }

func testNATSDown(t *testing.T, on server) {
	f := newFixtureOn(t, on)
	body := webhook("0c5d2a8e-7b1f-4e3a-9c6d-2e8f1a4b7c90", "SMS", "DISPATCHED", "2026-01-01T00:00:00Z")
	f.srv.Stop()
	brokertest.WaitFor(t, 5*time.Second, "disconnect", func() bool { return f.broker.Ready(t.Context()) != nil })
	for range 5 {
		resp := f.post(t, body)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "3" {
			t.Fatalf("with NATS down: status %d, Retry-After %q; want 503 and 3", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	// One line for all five (a full disk refuses every webhook): the next
	// one, ten seconds on, counts those since.
	if n := strings.Count(f.logs.String(), "requests not accepted: publishing failed"); n != 1 {
		t.Errorf("five webhooks refused with NATS down logged %d lines; want 1:\n%s", n, f.logs)
	}
	// Bad input is not acknowledged either when its dead letter cannot be stored.
	if resp := f.post(t, `{`); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("bad input with NATS down: status %d; want 503", resp.StatusCode)
	}
	f.srv.Start()
	brokertest.WaitFor(t, 10*time.Second, "reconnect", func() bool { return f.broker.Ready(t.Context()) == nil })
	if resp := f.post(t, body); resp.StatusCode != http.StatusOK {
		t.Fatalf("after restart: status %d; want 200", resp.StatusCode)
	}
	if got := f.subjects(t); got["tyntec.2fa.delivery.SMS.DISPATCHED"] != 1 || len(got) != 1 {
		t.Fatalf("stream subjects = %v; want the one delivery", got)
	}
}

// slowPublisher never acknowledges within the timeout it is given.
type slowPublisher struct{}

func (slowPublisher) PublishNew(ctx context.Context, timeout time.Duration, _ ...events.Message) ([]bool, error) {
	select {
	case <-ctx.Done():
	case <-time.After(timeout):
	}
	return nil, fmt.Errorf("%w: no answer within %v", broker.ErrUnavailable, timeout)
}

func TestSlowNATSAnswers503(t *testing.T) {
	cfg := ingest.Config{Tokens: []string{token}, MaxBodyBytes: 1 << 16, PublishTimeout: 50 * time.Millisecond, RetryAfter: 1500 * time.Millisecond}
	r := ops.NewRouter()
	ingest.NewHandler(cfg, slowPublisher{}, brokertest.Logger(t), nil).Mount(r)
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, ingest.WebhookPath, strings.NewReader(webhook("0c5d2a8e-7b1f-4e3a-9c6d-2e8f1a4b7c90", "SMS", "DISPATCHED", "")))
	req.Header.Set("X-Webhook-Token", token)
	r.ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "2" {
		t.Fatalf("status %d, Retry-After %q; want 503 and 2 (rounded up)", rec.Code, rec.Header().Get("Retry-After"))
	}
}

func TestTrack(t *testing.T) {
	f := newFixture(t)
	post := func(body string, header ...string) *http.Response {
		return f.postTo(t, ingest.TrackPath, body, header...)
	}
	auth := []string{"X-Webhook-Token", token}
	tests := []struct {
		body   string
		header []string
		want   int
		field  string
	}{
		{`{"otpId":"0B7E2D3C-1D39-4C4E-9D1B-5B8C1E0A9F01","api":"v1"}`, auth, http.StatusOK, ""},
		{`{"otpId":"0b7e2d3c-1d39-4c4e-9d1b-5b8c1e0a9f01","status":"verified"}`, auth, http.StatusOK, ""},
		{`{"otpId":"0b7e2d3c-1d39-4c4e-9d1b-5b8c1e0a9f01","api":"v2"}`, auth, http.StatusBadRequest, "api"},
		{`{"otpId":"nope"}`, auth, http.StatusBadRequest, "otpId"},
		{`{"api":"v1"}`, auth, http.StatusBadRequest, "otpId"},
		{`{"otpId":"0b7e2d3c-1d39-4c4e-9d1b-5b8c1e0a9f01","status":"a.b"}`, auth, http.StatusBadRequest, "status"},
		{`{"otpId":`, auth, http.StatusBadRequest, ""},
		{`{"otpId":"0b7e2d3c-1d39-4c4e-9d1b-5b8c1e0a9f01"}`, nil, http.StatusUnauthorized, ""},
		{`{"otpId":"` + strings.Repeat("0", ingest.DefaultMaxBodyBytes) + `"}`, auth, http.StatusRequestEntityTooLarge, ""},
	}
	for _, tt := range tests {
		resp := post(tt.body, tt.header...)
		if tt.want == http.StatusRequestEntityTooLarge {
			var p problem.Details
			if err := json.NewDecoder(resp.Body).Decode(&p); err != nil || !strings.HasPrefix(p.Detail, "body larger than") {
				t.Errorf("POST of %d bytes: problem %+v, %v; want the limit said", len(tt.body), p, err)
			}
		}
		if resp.StatusCode != tt.want {
			t.Errorf("POST %s = %d; want %d", tt.body, resp.StatusCode, tt.want)
			continue
		}
		if tt.want == http.StatusBadRequest {
			var p problem.Details
			if err := json.NewDecoder(resp.Body).Decode(&p); err != nil || p.Field != tt.field {
				t.Errorf("POST %s: problem %+v, %v; want field %q", tt.body, p, err, tt.field)
			}
		}
	}
	if got := f.subjects(t); len(got) != 1 || got[events.SubjectTrack] != 2 {
		t.Fatalf("stream subjects = %v; want two registrations", got)
	}
	s, _ := brokertest.JetStream(t, f.broker).Stream(t.Context(), f.broker.StreamName())
	raw, err := s.GetLastMsgForSubject(t.Context(), events.SubjectTrack)
	if err != nil {
		t.Fatal(err)
	}
	var tr events.Track
	if err := json.Unmarshal(raw.Data, &tr); err != nil || tr.Status != "VERIFIED" || tr.API != "v4" || tr.At.IsZero() {
		t.Errorf("last registration = %s (%+v, %v)", raw.Data, tr, err)
	}
}
