package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/otpscope/otpscope/internal/app"
	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/polltest"
	"github.com/otpscope/otpscope/internal/problem"
	"github.com/otpscope/otpscope/internal/reporter"
)

// A read token reads every route the API token does, with the same answer,
// and acts on none: every route that is not GET or HEAD — walked from the
// router, so one added later is covered — answers it 403 problem+json and
// changes nothing, while the API token goes through. The routes that act
// are exactly those README's Security names.
func TestAPIReadTokenReadsAndDoesNotAct(t *testing.T) {
	cfg := reporterConfig(t)
	const full, read = "api-token-0123456789", "api-read-token-0123456789"
	cfg.APITokens = []string{full}
	cfg.APIReadTokens = []string{read}
	a := serve(t, cfg)
	base := "http://" + a.AdminAddr()
	type answer struct {
		status      int
		contentType string
		problem     problem.Details
		backups     reporter.BackupsResponse // GET /api/v1/backups
	}
	do := func(method, path, token, body string) answer {
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		ans := answer{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type")}
		if path != "/api/v1/live" { // a stream: its headers say enough
			raw, _ := io.ReadAll(resp.Body)
			switch {
			case ans.contentType == problem.ContentType:
				_ = json.Unmarshal(raw, &ans.problem)
			case path == "/api/v1/backups":
				_ = json.Unmarshal(raw, &ans.backups)
			}
		}
		return ans
	}

	// A dead letter, for the replays to find.
	webhook := fmt.Sprintf(`{"channel":"SMS","otpId":"a4762c77-94cb-43d6-bbab-9f37e088ad31","status":"DELIVERED","timestamp":%q}`, time.Now().UTC().Format(time.RFC3339Nano))
	dead, err := events.NewDeadLetterMessage(events.DeadLetter{Reason: `Content-Type "text/plain": want application/json`, Status: 415, Source: "ingest", ReceivedAt: time.Now().UTC()}, []byte(webhook), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Broker().Publish(t.Context(), dead); err != nil {
		t.Fatal(err)
	}
	pending := func() int {
		var st app.StatusResponse
		req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/status", nil)
		req.Header.Set("Authorization", "Bearer "+read)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || st.DeadLetters == nil {
			t.Fatalf("status: %v %+v", err, st)
		}
		return int(st.DeadLetters.Pending)
	}
	polltest.Until(t, 30*time.Second, "the dead letter stored", func() bool { return pending() == 1 })

	// Every route, by method, as the router has it.
	var reads, acts []string
	err = chi.Walk(a.AdminRoutes(), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if method == http.MethodGet || method == http.MethodHead {
			reads = append(reads, route)
		} else if route != "/metrics" { // any method scrapes it
			acts = append(acts, method+" "+route)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(acts)
	acts = slices.Compact(acts)
	// The actions README's Security lists; the profiler's symbol lookup
	// takes any method, and is a read to a read token only as GET.
	wantActs := []string{"DELETE /api/v1/alerts/silences/{id}", "DELETE /api/v1/backups/{name}", "DELETE /api/v1/deadletters", "POST /api/v1/alerts/silences", "POST /api/v1/alerts/test", "POST /api/v1/backups", "POST /api/v1/deadletters/replay"}
	var otherActs []string
	for _, r := range acts {
		if !strings.HasSuffix(r, " /debug/pprof/symbol") {
			otherActs = append(otherActs, r)
		}
	}
	if !slices.Equal(otherActs, wantActs) {
		t.Errorf("routes that act: %q; want %q (a new one: say so in README's Security)", otherActs, wantActs)
	}

	// Reads: the same answer to either token. Path parameters and
	// profiles made concrete; the console's pages are open anyway.
	concrete := strings.NewReplacer("{otpId}", "a4762c77-94cb-43d6-bbab-9f37e088ad31", "{profile}", "heap", "*", "")
	for _, route := range slices.Compact(slices.Sorted(slices.Values(reads))) {
		path := concrete.Replace(route)
		if route == "/debug/pprof/profile" || route == "/debug/pprof/trace" {
			path += "?seconds=1"
		}
		got, want := do(http.MethodGet, path, read, ""), do(http.MethodGet, path, full, "")
		if got.status != want.status || got.status == http.StatusUnauthorized || got.status == http.StatusForbidden {
			t.Errorf("GET %s with the read token = %d; with the API token %d", path, got.status, want.status)
		}
	}
	if got := do(http.MethodHead, "/api/v1/channels", read, ""); got.status != http.StatusOK {
		t.Errorf("HEAD /api/v1/channels with the read token = %d; want 200", got.status)
	}

	// The test's engine is served as a ClickHouse server, whose backups
	// are the server's: past the token the handler refuses (500, 501).
	// cmd/otpscope's TestReadTokenCannotBackUp takes and deletes real ones.
	backups := func() int {
		got := do(http.MethodGet, "/api/v1/backups", read, "")
		if got.status != http.StatusOK {
			t.Fatalf("GET /api/v1/backups = %d", got.status)
		}
		return len(got.backups.Backups)
	}
	before := backups()

	// Actions: 403 problem+json to the read token, which changes nothing.
	bodies := map[string]string{"/api/v1/deadletters/replay": `{"all":true}`}
	for _, act := range acts {
		method, route, _ := strings.Cut(act, " ")
		path := strings.ReplaceAll(route, "{name}", "nonesuch")
		got := do(method, path, read, bodies[route])
		if got.status != http.StatusForbidden || got.contentType != problem.ContentType || !strings.HasPrefix(got.problem.Detail, "this token may only read") {
			t.Errorf("%s %s with the read token = %d %s %+v; want 403 problem+json, \"this token may only read\"", method, path, got.status, got.contentType, got.problem)
		}
	}
	if n := pending(); n != 1 {
		t.Errorf("%d dead letters pending after the read token's replay; want 1, not replayed", n)
	}
	if n := backups(); n != before {
		t.Errorf("%d backups listed after the read token's POST; want %d, as before", n, before)
	}

	// The API token acts: the same requests go through.
	for _, tt := range []struct {
		method, path, body string
		want               int
	}{
		{http.MethodPost, "/api/v1/deadletters/replay", `{"all":true}`, http.StatusOK},
		{http.MethodPost, "/debug/pprof/symbol", "", http.StatusOK},
		{http.MethodPost, "/api/v1/backups", "", http.StatusInternalServerError}, // the server has no backups.allowed_path
		{http.MethodDelete, "/api/v1/backups/nonesuch", "", http.StatusNotImplemented},
	} {
		if got := do(tt.method, tt.path, full, tt.body); got.status != tt.want {
			t.Errorf("%s %s with the API token = %d %+v; want %d", tt.method, tt.path, got.status, got.problem, tt.want)
		}
	}
	polltest.Until(t, 30*time.Second, "the API token's replay done", func() bool { return pending() == 0 })

}
