package app_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/santhosh-tekuri/jsonschema/v6"

	apidoc "github.com/otpscope/otpscope/docs/api"
	"github.com/otpscope/otpscope/docs/api/contract"
	"github.com/otpscope/otpscope/internal/ingest"
	"github.com/otpscope/otpscope/internal/reporter"
)

// undocumented are the routes docs/api/openapi.json leaves out, by path
// prefix, with why.
var undocumented = map[string]string{
	"/debug/pprof/": "Go's profiler: net/http/pprof's own answers",
	"/console":      "the console's static pages",
}

// isUndocumented reports whether route is one openapi.json leaves out: a
// prefix of undocumented, or / (a redirect to the console).
func isUndocumented(route string) bool {
	if route == "/" {
		return true
	}
	for prefix := range undocumented {
		if strings.HasPrefix(route, prefix) {
			return true
		}
	}
	return false
}

// anyMethod are the methods chi lists for a route that takes any (Handle).
var anyMethod = []string{"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"}

// served are the routes r serves, as "METHOD /path"; a route that takes any
// method is listed as GET only (/metrics), as documented.
func served(t *testing.T, r chi.Routes) map[string]bool {
	t.Helper()
	methods := map[string][]string{}
	if err := chi.Walk(r, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		methods[route] = append(methods[route], method)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for route, ms := range methods {
		if !slices.ContainsFunc(anyMethod, func(m string) bool { return !slices.Contains(ms, m) }) {
			ms = []string{"GET"}
		}
		for _, m := range ms {
			out[m+" "+route] = true
		}
	}
	return out
}

// publicPaths are the paths openapi.json says the public listener serves
// alone (those with servers of their own).
func publicPaths(t *testing.T) map[string]bool {
	t.Helper()
	var doc struct {
		Paths map[string]struct {
			Servers []any `json:"servers"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(apidoc.Raw(), &doc); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for p, item := range doc.Paths {
		if len(item.Servers) > 0 {
			out[p] = true
		}
	}
	return out
}

// TestEveryRouteIsDocumented: every route the all-in-one's two listeners
// serve — walked from their routers, so one added later is covered — is in
// docs/api/openapi.json with its method (but those undocumented says),
// and every operation documented is served, on the listener the document
// says: the webhooks on the public one, the rest on the admin one
// (/healthz and /readyz on both). HEAD is answered for every GET.
func TestEveryRouteIsDocumented(t *testing.T) {
	doc, err := contract.Compile()
	if err != nil {
		t.Fatal(err)
	}
	cfg := lossyConfig(t, 0)
	cfg.Simulate.Enabled = false
	cfg.Ingest.Tokens = []string{token}
	a := serve(t, cfg)
	admin, public := served(t, a.AdminRoutes()), served(t, a.PublicRoutes())
	onPublic := publicPaths(t)

	documented := map[string]bool{}
	for _, op := range doc.Operations() {
		key := op.Method + " " + op.Path
		documented[key] = true
		get := "GET " + op.Path
		switch {
		case op.Method == "HEAD" && (admin[get] || public[get]):
			// chi's GetHead answers it
		case onPublic[op.Path] && !public[key]:
			t.Errorf("%s is documented on the public listener, which does not serve it", key)
		case onPublic[op.Path] && admin[key]:
			t.Errorf("%s is documented on the public listener alone, but the admin listener serves it too", key)
		case !onPublic[op.Path] && !admin[key]:
			t.Errorf("%s is documented, but the admin listener does not serve it", key)
		}
	}
	for _, routes := range []map[string]bool{admin, public} {
		for key := range routes {
			_, route, _ := strings.Cut(key, " ")
			if !documented[key] && !isUndocumented(route) {
				t.Errorf("%s is served but not in docs/api/openapi.json", key)
			}
		}
	}
	if len(documented) < 20 {
		t.Errorf("only %d operations documented", len(documented))
	}
	checkUnknownParameters(t, doc, "http://"+a.AdminAddr())
}

// checkUnknownParameters: every operation of the JSON API (the document
// itself aside) refuses a query parameter it does not read with a 400 the
// document allows, naming it and listing the parameters the document
// gives the operation, before it acts (a backup is not taken); a GET lets
// the cache buster pass.
func checkUnknownParameters(t *testing.T, doc *contract.Doc, admin string) {
	t.Helper()
	n := 0
	for _, op := range doc.Operations() {
		if !strings.HasPrefix(op.Path, "/api/v1/") || op.Path == apidoc.Path {
			continue
		}
		n++
		path := strings.NewReplacer("{otpId}", "00000000-0000-4000-8000-000000000000", "{name}", "none").Replace(op.Path)
		ask := func(query string) (int, []byte) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, op.Method, admin+path+"?"+query, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s %s?%s: %v", op.Method, path, query, err)
			}
			defer resp.Body.Close()
			if op.Path == "/api/v1/live" && resp.StatusCode == http.StatusOK {
				return resp.StatusCode, nil // a stream: its start is enough
			}
			raw, _ := io.ReadAll(resp.Body)
			if err := doc.Validate(op.Method, op.Path, resp.StatusCode, resp.Header.Get("Content-Type"), raw); err != nil {
				t.Errorf("%s %s?%s → %d: %v\n%s", op.Method, path, query, resp.StatusCode, err, raw)
			}
			return resp.StatusCode, raw
		}
		code, raw := ask("profle=x")
		var p struct{ Title, Field, Detail string }
		_ = json.Unmarshal(raw, &p)
		want := "it reads none"
		if len(op.Query) > 0 {
			want = "it reads " + strings.Join(op.Query, ", ")
		}
		if code != http.StatusBadRequest || p.Field != "profle" || !strings.HasSuffix(p.Detail, want) {
			t.Errorf("%s %s?profle=x → %d %s; want 400 naming profle, ending %q (openapi.json's parameters)", op.Method, path, code, raw, want)
		}
		if op.Method != http.MethodGet {
			continue
		}
		if code, raw := ask("_=1700000000000"); code == http.StatusBadRequest {
			t.Errorf("GET %s?_=… → 400 %s; want the cache buster let pass", path, raw)
		}
	}
	if n < 15 {
		t.Errorf("only %d operations of the JSON API checked", n)
	}
}

// TestAnswersMatchTheDocument holds a running all-in-one to
// docs/api/openapi.json, the contract integrators code against: with the
// simulator's logins (silent auth and push first for some, webhooks lost,
// resends) flowing, every documented GET is called with realistic
// parameters (a window, a channel filter, an OTP id from /events, the
// cursor of a page, a window before any data), every error that is cheap
// to provoke (a bad parameter, an unknown OTP, a missing, wrong or
// read-only token, a replay of an unknown id, a backup taken twice, the
// webhooks' refusals), and every answer's status, media type and body must
// be what the document says for that route; every request body taken
// (2xx) must be valid against the document's request schema.
func TestAnswersMatchTheDocument(t *testing.T) {
	doc, err := contract.Compile()
	if err != nil {
		t.Fatal(err)
	}
	cfg := lossyConfig(t, 0)
	cfg.Simulate.Rate = 20
	cfg.Simulate.SilentShare, cfg.Simulate.PushShare = 0.2, 0.2
	cfg.Poller.ResendPolicy = "../../docs/examples/resend-policy.json"
	cfg.Reports.Alerts = "@every 2s"
	cfg.Reports.Rules.Objective.DeliveryRate = 0.99
	cfg.Ingest.Tokens = []string{token}
	const full, read = "api-token-0123456789", "api-read-token-0123456789"
	cfg.APITokens = []string{full}
	cfg.APIReadTokens = []string{read}
	a := serve(t, cfg)
	admin, public := "http://"+a.AdminAddr(), "http://"+a.Addr()

	var (
		mu      sync.Mutex
		checked = map[string]bool{} // "METHOD route status"
	)
	// call sends a request to base+path (route is its documented
	// template), validates the answer and returns its status and body.
	call := func(method, base, route, path, tok, contentType, body string, header ...string) (int, []byte) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if err := doc.Validate(method, route, resp.StatusCode, resp.Header.Get("Content-Type"), raw); err != nil {
			t.Errorf("%s %s → %d: %v\n%s", method, path, resp.StatusCode, err, raw)
		}
		// A body the server took, the document's request schema takes
		// too: a client generated from it can send what works.
		if body != "" && resp.StatusCode/100 == 2 {
			if err := doc.ValidateRequest(method, route, contentType, []byte(body)); err != nil {
				t.Errorf("%s %s took %s, which the document refuses: %v", method, path, body, err)
			}
		}
		mu.Lock()
		checked[fmt.Sprintf("%s %s %d", method, route, resp.StatusCode)] = true
		mu.Unlock()
		return resp.StatusCode, raw
	}
	get := func(route, path string, want int) []byte {
		t.Helper()
		status, raw := call(http.MethodGet, admin, route, path, read, "", "")
		if status != want {
			t.Errorf("GET %s = %d; want %d\n%s", path, status, want, raw)
		}
		return raw
	}

	// Wait for traffic: OTPs stored, some of them settled.
	deadline := time.Now().Add(20 * time.Second)
	var page reporter.EventsResponse
	for time.Now().Before(deadline) {
		if err := json.Unmarshal(get("/api/v1/events", "/api/v1/events?since=1h&limit=5", http.StatusOK), &page); err != nil {
			t.Fatal(err)
		}
		if page.Next != "" {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if page.Next == "" {
		t.Fatalf("no page of 5 events within 20 s: %+v", page)
	}
	// Let alerts be evaluated, resends decided and a few facts settle.
	time.Sleep(4 * time.Second)

	empty := "from=2001-01-01T00:00:00Z&to=2001-01-02T00:00:00Z"
	for route, queries := range map[string][]string{
		"/api/v1/channels":        {"since=1h", "since=1h&channel=sms&max_lag=2m", empty},
		"/api/v1/fallback":        {"", "since=1h&channel=SMS", empty},
		"/api/v1/timeseries":      {"since=1h", "since=10m&step=1m&channel=sms", "since=1h&step=300", empty},
		"/api/v1/events":          {"since=1h&limit=5&cursor=" + url.QueryEscape(page.Next), "since=1h&source=poll&status=delivered", empty},
		"/api/v1/alerts":          {"since=1h", "since=1h&channel=sms&state=firing&limit=5", empty},
		"/api/v1/alerts/episodes": {"since=1h", "since=1h&state=resolved", empty},
		"/api/v1/alerts/firing":   {""},
		"/api/v1/alerts/rules":    {""},
		"/api/v1/alerts/silences": {""},
		"/api/v1/resends":         {"since=1h", "since=1h&channel=sms&limit=3", empty},
		"/api/v1/report":          {"since=1h", "since=1h&format=csv&channel=sms", "since=1h&format=table&tz=Europe/Berlin", empty},
		"/api/v1/slo":             {"", "max_lag=2m"},
		"/api/v1/deadletters":     {"", "pending=true&limit=5", "id=dl-unknown&id=dl-unknown-2"},
		"/api/v1/backups":         {""},
		"/api/v1/status":          {""},
		"/healthz":                {""},
		"/readyz":                 {""},
		"/metrics":                {""},
	} {
		for _, q := range queries {
			get(route, route+"?"+q, http.StatusOK)
		}
	}
	for _, otp := range []string{page.Events[0].OTPID, strings.ToUpper(page.Events[len(page.Events)-1].OTPID)} {
		get("/api/v1/otps/{otpId}", "/api/v1/otps/"+otp, http.StatusOK)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if status, raw := call(http.MethodGet, public, path, path, "", "", ""); status != http.StatusOK {
			t.Errorf("public GET %s = %d\n%s", path, status, raw)
		}
	}
	if status, raw := call(http.MethodGet, admin, apidoc.Path, apidoc.Path, "", "", ""); status != http.StatusOK || !bytes.Equal(raw, apidoc.Raw()) {
		t.Errorf("GET %s without a token = %d, %d bytes; want 200 and the document", apidoc.Path, status, len(raw))
	}

	// The errors.
	for _, c := range []struct{ route, path string }{
		{"/api/v1/channels", "/api/v1/channels?from=yesterday"},
		{"/api/v1/channels", "/api/v1/channels?since=1h&since=2h"},
		{"/api/v1/fallback", "/api/v1/fallback?channel=s.m.s"},
		{"/api/v1/timeseries", "/api/v1/timeseries?step=0.5s"},
		{"/api/v1/timeseries", "/api/v1/timeseries?since=24h&step=1s"},
		{"/api/v1/events", "/api/v1/events?source=sms"},
		{"/api/v1/events", "/api/v1/events?cursor=%21%21"},
		{"/api/v1/events", "/api/v1/events?otp=42"},
		{"/api/v1/otps/{otpId}", "/api/v1/otps/not-a-uuid"},
		{"/api/v1/alerts", "/api/v1/alerts?state=pending"},
		{"/api/v1/alerts/episodes", "/api/v1/alerts/episodes?limit=0"},
		{"/api/v1/alerts/firing", "/api/v1/alerts/firing?a=1&a=2"},
		{"/api/v1/alerts/rules", "/api/v1/alerts/rules?a=1&a=2"},
		{"/api/v1/resends", "/api/v1/resends?limit=1001"},
		{"/api/v1/report", "/api/v1/report?format=pdf"},
		{"/api/v1/report", "/api/v1/report?since=1h&max_lag=1m"},
		{"/api/v1/slo", "/api/v1/slo?since=1h"},
		{"/api/v1/deadletters", "/api/v1/deadletters?pending=maybe"},
		{"/api/v1/status", "/api/v1/status?%zz"},
		{"/api/v1/alerts/silences", "/api/v1/alerts/silences?state=active"},
		{"/api/v1/live", "/api/v1/live?x=1&x=2"},
	} {
		get(c.route, c.path, http.StatusBadRequest)
	}
	get("/api/v1/otps/{otpId}", "/api/v1/otps/7d4f7c36-1111-4c7a-9d3b-1c2a3b4c5d6e", http.StatusNotFound)
	for _, route := range []string{"/api/v1/channels", "/api/v1/otps/{otpId}", "/api/v1/alerts/firing", "/api/v1/alerts/rules", "/api/v1/alerts/silences", "/api/v1/status", "/api/v1/live", "/api/v1/backups", "/metrics"} {
		path := strings.Replace(route, "{otpId}", page.Events[0].OTPID, 1)
		for _, tok := range []string{"", "wrong-token-0123456789"} {
			if status, raw := call(http.MethodGet, admin, route, path, tok, "", ""); status != http.StatusUnauthorized {
				t.Errorf("GET %s with token %q = %d; want 401\n%s", path, tok, status, raw)
			}
		}
	}

	// The actions.
	act := func(method, route, path, tok, body string, want int) []byte {
		t.Helper()
		status, raw := call(method, admin, route, path, tok, "application/json", body)
		if status != want {
			t.Errorf("%s %s %s = %d; want %d\n%s", method, path, body, status, want, raw)
		}
		return raw
	}
	const replay = "/api/v1/deadletters/replay"
	act(http.MethodPost, replay, replay, read, `{"all":true}`, http.StatusForbidden)
	act(http.MethodPost, replay, replay, "", `{"all":true}`, http.StatusUnauthorized)
	act(http.MethodPost, replay, replay, full, `{"ids":["dl-unknown"]}`, http.StatusOK)
	act(http.MethodPost, replay, replay, full, `{"all":true,"source":"sink"}`, http.StatusOK)
	act(http.MethodPost, replay, replay, full, `{}`, http.StatusBadRequest)
	act(http.MethodPost, replay, replay, full, `{"ids":`, http.StatusBadRequest)
	act(http.MethodPost, replay, replay, full, `{"ids":["`+strings.Repeat("x", 1<<20)+`"]}`, http.StatusRequestEntityTooLarge)
	act(http.MethodDelete, "/api/v1/deadletters", "/api/v1/deadletters?id=dl-unknown", full, "", http.StatusOK)
	act(http.MethodDelete, "/api/v1/deadletters", "/api/v1/deadletters", full, "", http.StatusBadRequest)
	act(http.MethodDelete, "/api/v1/deadletters", "/api/v1/deadletters?id=dl-unknown", read, "", http.StatusForbidden)
	const test = "/api/v1/alerts/test"
	if sent := act(http.MethodPost, test, test, full, "", http.StatusOK); string(bytes.TrimSpace(sent)) != `{"webhook":null,"alertmanagers":[]}` {
		t.Errorf("POST %s without a destination: %s", test, sent)
	}
	act(http.MethodPost, test, test, read, "", http.StatusForbidden)
	act(http.MethodPost, test, test, "", "", http.StatusUnauthorized)
	act(http.MethodPost, test, test+"?a=1&a=2", full, "", http.StatusBadRequest)
	// Three at once, then one every 20 s: the fourth of a burst waits.
	act(http.MethodPost, test, test, full, "", http.StatusOK)
	act(http.MethodPost, test, test, full, "", http.StatusOK)
	act(http.MethodPost, test, test, full, "", http.StatusTooManyRequests)
	const silences, silence = "/api/v1/alerts/silences", "/api/v1/alerts/silences/{id}"
	var made reporter.Silence
	if err := json.Unmarshal(act(http.MethodPost, silences, silences, full, `{"rule":"delivery_rate_low","channel":"sms","duration":"2h","comment":"carrier outage","created_by":"openapi"}`, http.StatusCreated), &made); err != nil {
		t.Fatal(err)
	}
	act(http.MethodPost, silences, silences, full, `{"starts_at":"`+time.Now().Add(time.Hour).UTC().Format(time.RFC3339)+`","ends_at":"`+time.Now().Add(3*time.Hour).UTC().Format(time.RFC3339)+`","comment":"maintenance"}`, http.StatusCreated)
	act(http.MethodPost, silences, silences, full, `{"rule":"fallback_rate_high","channel":"sms","duration":"2h","comment":"x"}`, http.StatusBadRequest)
	act(http.MethodPost, silences, silences, full, `{"comment":"`+strings.Repeat("x", 70<<10)+`"}`, http.StatusRequestEntityTooLarge)
	act(http.MethodPost, silences, silences, read, `{"duration":"2h","comment":"x"}`, http.StatusForbidden)
	act(http.MethodPost, silences, silences, "", `{"duration":"2h","comment":"x"}`, http.StatusUnauthorized)
	act(http.MethodDelete, silence, "/api/v1/alerts/silences/"+made.ID, read, "", http.StatusForbidden)
	act(http.MethodDelete, silence, "/api/v1/alerts/silences/"+made.ID, "", "", http.StatusUnauthorized)
	act(http.MethodDelete, silence, "/api/v1/alerts/silences/"+made.ID, full, "", http.StatusOK)
	act(http.MethodDelete, silence, "/api/v1/alerts/silences/7d4f7c36-4444-4c7a-9d3b-1c2a3b4c5d6e", full, "", http.StatusNotFound)
	act(http.MethodDelete, silence, "/api/v1/alerts/silences/"+made.ID+"?a=1", full, "", http.StatusBadRequest)
	get(silences, silences, http.StatusOK)

	// The test's engine is reached by its DSN, a ClickHouse server without
	// backups.allowed_path: a backup fails (500), and its backups are the
	// server's to remove (501).
	const backup = "/api/v1/backups/{name}"
	act(http.MethodPost, "/api/v1/backups", "/api/v1/backups", full, "", http.StatusInternalServerError)
	act(http.MethodPost, "/api/v1/backups", "/api/v1/backups", read, "", http.StatusForbidden)
	act(http.MethodDelete, backup, "/api/v1/backups/otpscope-20260101T000000.000Z", full, "", http.StatusNotImplemented)
	act(http.MethodDelete, backup, "/api/v1/backups/otpscope-20260101T000000.000Z", read, "", http.StatusForbidden)

	// The webhooks.
	post := func(route, tok, contentType, body string, want int) {
		t.Helper()
		status, raw := call(http.MethodPost, public, route, route, "", contentType, body, "X-Webhook-Token", tok)
		if status != want {
			t.Errorf("POST %s %s = %d; want %d\n%s", route, body, status, want, raw)
		}
	}
	now := time.Now().UTC().Format(time.RFC3339)
	post(ingest.WebhookPath, token, "application/json", webhook("7d4f7c36-2222-4c7a-9d3b-1c2a3b4c5d6e", "SMS", "DISPATCHED", now), http.StatusOK)
	post(ingest.WebhookPath, token, "application/json", `[`+webhook("7d4f7c36-2222-4c7a-9d3b-1c2a3b4c5d6e", "SMS", "DELIVERED", now)+`,{"otpId":"x"}]`, http.StatusBadRequest)
	post(ingest.WebhookPath, "wrong-token-0123456789", "application/json", webhook("7d4f7c36-2222-4c7a-9d3b-1c2a3b4c5d6e", "SMS", "DELIVERED", now), http.StatusUnauthorized)
	post(ingest.WebhookPath, token, "text/plain", webhook("7d4f7c36-2222-4c7a-9d3b-1c2a3b4c5d6e", "SMS", "DELIVERED", now), http.StatusUnsupportedMediaType)
	post(ingest.WebhookPath, token, "application/json", `"`+strings.Repeat("x", int(cfg.Ingest.MaxBodyBytes))+`"`, http.StatusRequestEntityTooLarge)
	post(ingest.SilentPath, token, "application/json", `{"attemptId":"sa-openapi-1","startedAt":"`+now+`","finishedAt":"`+now+`","result":"verified"}`, http.StatusAccepted)
	post(ingest.SilentPath, token, "application/json", `{"attemptId":"sa-openapi-2","startedAt":"`+now+`","result":"verified"}`, http.StatusBadRequest)
	post(ingest.PushPath, token, "application/json", `{"uuid":"0b5f3c1e-9d2a-4f60-8c1b-2e7d5a9f1c33","status":"approved","createdAt":"`+now+`"}`, http.StatusOK)
	post(ingest.PushPath, token, "application/json", `{"uuid":"0b5f3c1e-9d2a-4f60-8c1b-2e7d5a9f1c33"}`, http.StatusBadRequest)
	post(ingest.TrackPath, token, "application/json", `{"otpId":"7D4F7C36-3333-4C7A-9D3B-1C2A3B4C5D6E","correlationId":"login-openapi"}`, http.StatusOK)
	post(ingest.TrackPath, token, "application/json", `{"otpId":"7d4f7c36-3333-4c7a-9d3b-1c2a3b4c5d6e","api":"v2"}`, http.StatusBadRequest)
	post(ingest.TrackPath, "", "application/json", `{"otpId":"7d4f7c36-3333-4c7a-9d3b-1c2a3b4c5d6e"}`, http.StatusUnauthorized)

	checkLive(t, doc, admin, read)
	checked["GET /api/v1/live 200"] = true

	var missed []string
	for _, op := range doc.Operations() {
		for _, status := range op.Statuses {
			if !checked[op.Method+" "+op.Path+" "+status] {
				missed = append(missed, op.Method+" "+op.Path+" "+status)
			}
		}
	}
	t.Logf("%d answers of %d documented checked; not provoked: %s", len(checked), len(checked)+len(missed), strings.Join(missed, ", "))
}

// checkLive reads /api/v1/live until a delivery event arrives and holds its
// data to the document's LiveEvent.
func checkLive(t *testing.T, doc *contract.Doc, admin, tok string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, admin+"/api/v1/live", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := doc.Validate(http.MethodGet, "/api/v1/live", resp.StatusCode, resp.Header.Get("Content-Type"), nil); err != nil {
		t.Fatal(err)
	}
	schema := doc.Schema("LiveEvent")
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	event, deliveries := "", 0
	for deliveries < 20 && sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: ") && event == "delivery":
			deliveries++
			data := strings.TrimPrefix(line, "data: ")
			inst, err := jsonschema.UnmarshalJSON(strings.NewReader(data))
			if err == nil {
				err = schema.Validate(inst)
			}
			if err != nil {
				t.Errorf("GET /api/v1/live: a delivery event the document refuses: %v\n%s", err, data)
			}
		}
	}
	if deliveries == 0 {
		t.Errorf("GET /api/v1/live: no delivery event within 15 s (%v)", sc.Err())
	}
}
