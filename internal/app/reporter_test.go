package app_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/app"
	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/chdb"
	"github.com/otpscope/otpscope/internal/chdb/chdbtest"
	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/polltest"
	"github.com/otpscope/otpscope/internal/sink/sinktest"
	"github.com/otpscope/otpscope/internal/store"
	"github.com/otpscope/otpscope/internal/webtest"
)

// reporterConfig is the reporter binary's configuration on a test NATS server
// and ClickHouse endpoint of its own.
func reporterConfig(t *testing.T) app.Config {
	t.Helper()
	srv := brokertest.NewServer(t)
	ch := chdbtest.Serve(t)
	cfg := newConfig(t, "reporter")
	cfg.NATS.URL = srv.URL()
	cfg.ClickHouse = store.Config{DSN: ch.DSN + "/" + ch.Database}
	cfg.Sink = sinktest.Config()
	return cfg
}

// TestServiceServesTheAPI checks the wiring: the service mounts the API on
// its listener and runs the report schedule next to the consumer.
func TestServiceServesTheAPI(t *testing.T) {
	cfg := reporterConfig(t)
	s := serve(t, cfg)
	for _, path := range []string{"/api/v1/channels", "/api/v1/fallback"} {
		resp, err := http.Get("http://" + s.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %s", path, resp.Status)
		}
	}
}

// With an API token the API, /metrics and the profiler answer only a caller
// that sends it; health stays open for probes. A metrics token reads
// /metrics and nothing else.
func TestAPITokenGuardsTheAPIAndMetrics(t *testing.T) {
	cfg := reporterConfig(t)
	const apiToken, metricsToken = "api-token-0123456789", "metrics-token-0123456789"
	cfg.APITokens = []string{apiToken}
	cfg.MetricsTokens = []string{metricsToken}
	s := serve(t, cfg)
	status := func(path, token string) int {
		req, _ := http.NewRequest(http.MethodGet, "http://"+s.AdminAddr()+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tt := range []struct {
		path, token string
		want        int
	}{
		{"/api/v1/channels", "", http.StatusUnauthorized},
		{"/api/v1/channels", "wrong-token-0123456789", http.StatusUnauthorized},
		{"/api/v1/channels", apiToken, http.StatusOK},
		{"/metrics", "", http.StatusUnauthorized},
		{"/metrics", apiToken, http.StatusOK},
		{"/metrics", metricsToken, http.StatusOK},
		{"/api/v1/channels", metricsToken, http.StatusUnauthorized},
		{"/api/v1/status", metricsToken, http.StatusUnauthorized},
		{"/api/v1/deadletters", metricsToken, http.StatusUnauthorized},
		{"/api/v1/backups", metricsToken, http.StatusUnauthorized},
		{"/debug/pprof/heap", metricsToken, http.StatusUnauthorized},
		{"/debug/pprof/", "", http.StatusUnauthorized},
		{"/debug/pprof/heap", "", http.StatusUnauthorized},
		{"/debug/pprof/heap", apiToken, http.StatusOK},
		{"/debug/pprof/goroutine?debug=1", apiToken, http.StatusOK},
		{"/debug/pprof/profile?seconds=1", apiToken, http.StatusOK},
		{"/debug/pprof/profile?seconds=600", apiToken, http.StatusBadRequest}, // beyond MaxProfileSeconds
		{"/debug/pprof/profile?seconds=-1", apiToken, http.StatusBadRequest},  // not the default 30 s, silently
		{"/debug/pprof/cmdline", apiToken, http.StatusNotFound},               // may hold secrets
		{"/debug/pprof/nonesuch", apiToken, http.StatusNotFound},
		{"/healthz", "", http.StatusOK},
		// The console's pages hold no data; what they show needs the token.
		{"/console/", "", http.StatusOK},
		{"/api/v1/timeseries", "", http.StatusUnauthorized},
		{"/api/v1/events", "", http.StatusUnauthorized},
		{"/api/v1/live", "", http.StatusUnauthorized},
		{"/api/v1/alerts", "", http.StatusUnauthorized},
		{"/api/v1/alerts/firing", "", http.StatusUnauthorized},
		{"/api/v1/alerts/firing", apiToken, http.StatusOK},
		{"/api/v1/alerts/episodes", "", http.StatusUnauthorized},
		{"/api/v1/alerts/episodes?state=pending", apiToken, http.StatusBadRequest},
		{"/api/v1/resends", "", http.StatusUnauthorized},
		{"/api/v1/status", "", http.StatusUnauthorized},
		{"/api/v1/status", apiToken, http.StatusOK},
		{"/api/v1/resends", apiToken, http.StatusOK},
		{"/api/v1/resends?limit=1001", apiToken, http.StatusBadRequest},
		{"/api/v1/deadletters?limit=1000", apiToken, http.StatusOK},
		{"/api/v1/deadletters?limit=1001", apiToken, http.StatusBadRequest}, // each may hold 64 KiB
		{"/api/v1/resends?since=forever", apiToken, http.StatusBadRequest},
	} {
		if got := status(tt.path, tt.token); got != tt.want {
			t.Errorf("GET %s with token %q = %d; want %d", tt.path, tt.token, got, tt.want)
		}
	}
}

// An API without a token refuses what a web page could send it: a
// cross-site form's POST (no CORS preflight) and, on loopback, any request
// to a name rebound to 127.0.0.1. Curl, the CLIs and the console pass.
func TestOpenAPIRefusesBrowsersOfOtherSites(t *testing.T) {
	s := serve(t, reporterConfig(t))
	do := func(method, path, host, origin, body string) int {
		req, _ := http.NewRequest(method, "http://"+s.AdminAddr()+path, strings.NewReader(body))
		if host != "" {
			req.Host = host
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	self := "http://" + s.AdminAddr()
	for _, tt := range []struct {
		method, path, host, origin string
		want                       int
	}{
		{"POST", "/api/v1/deadletters/replay", "", "https://evil.example", http.StatusForbidden},
		{"POST", "/api/v1/backups", "", "https://evil.example", http.StatusForbidden},
		{"GET", "/api/v1/deadletters", "rebound.evil.example", "", http.StatusForbidden},
		{"GET", "/metrics", "rebound.evil.example", "", http.StatusForbidden},
		{"GET", "/console/", "rebound.evil.example", "", http.StatusForbidden},
		{"GET", "/api/v1/deadletters", "", "", http.StatusOK},
		{"GET", "/api/v1/deadletters", "", "https://evil.example", http.StatusOK}, // its answer is the browser's to withhold
		{"POST", "/api/v1/deadletters/replay", "", self, http.StatusOK},
		{"POST", "/api/v1/deadletters/replay", "", "", http.StatusOK},
	} {
		if got := do(tt.method, tt.path, tt.host, tt.origin, `{"all":true}`); got != tt.want {
			t.Errorf("%s %s Host %q Origin %q = %d; want %d", tt.method, tt.path, tt.host, tt.origin, got, tt.want)
		}
	}
}

// /api/v1/status counts the dead letters never replayed, and when the
// newest arrived, so that the console and `otpscope status` show webhooks
// waiting there; a replay takes them off. They are not a warning.
func TestStatusCountsPendingDeadLetters(t *testing.T) {
	a := serve(t, reporterConfig(t))
	api := "http://" + a.AdminAddr()
	var st app.StatusResponse
	webtest.GetJSON(t, api+"/api/v1/status", &st)
	if d := st.DeadLetters; d == nil || d.Pending != 0 || d.NewestPending != nil || d.Error != "" {
		t.Fatalf("status of a reporter without dead letters: %+v; want 0 pending", d)
	}
	at := time.Now().UTC().Truncate(time.Millisecond)
	webhook := fmt.Sprintf(`{"channel":"SMS","otpId":"a4762c77-94cb-43d6-bbab-9f37e088ad21","status":"DELIVERED","timestamp":%q}`, at.Format(time.RFC3339Nano))
	dead, err := events.NewDeadLetterMessage(events.DeadLetter{Reason: `Content-Type "text/plain": want application/json`, Status: 415, Source: "ingest", ReceivedAt: at}, []byte(webhook), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Broker().Publish(t.Context(), dead); err != nil {
		t.Fatal(err)
	}
	pending := func(n uint64) bool {
		st = app.StatusResponse{}
		webtest.GetJSON(t, api+"/api/v1/status", &st)
		return st.DeadLetters != nil && st.DeadLetters.Pending == n
	}
	polltest.Until(t, 30*time.Second, "the dead letter counted", func() bool { return pending(1) })
	if d := st.DeadLetters; d.NewestPending == nil || !d.NewestPending.Equal(at) {
		t.Errorf("newest pending dead letter at %v; want %v", d.NewestPending, at)
	}
	if len(st.Warnings) != 0 {
		t.Errorf("warnings %q; want none for a dead letter", st.Warnings)
	}
	if text := st.Text(api, nil, nil); !strings.Contains(text, "  dead letters  1 never replayed, the newest ") || !strings.Contains(text, "otpscope deadletters list --pending") {
		t.Errorf("otpscope status says:\n%s\nwant the dead letter never replayed and where to look", text)
	}
	resp, err := http.Post(api+"/api/v1/deadletters/replay", "application/json", strings.NewReader(`{"all":true}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("replay: %s", resp.Status)
	}
	polltest.Until(t, 30*time.Second, "the replayed dead letter no longer counted", func() bool { return pending(0) })
	if d := st.DeadLetters; d.NewestPending != nil {
		t.Errorf("with none pending, the newest pending at %v; want null", d.NewestPending)
	}
}

// TestBackupsListIsBounded: GET /api/v1/backups reads ClickHouse like the
// API's other reads, so it waits for one of their --api-queries places (and
// reads on their pool). Here the one place is held by a read waiting for
// the engine's readers, which other requests' slow queries hold: the list
// is refused 429. Mounted beside the limit it read at once, on the
// process's own pool and the reader the engine keeps from requests.
func TestBackupsListIsBounded(t *testing.T) {
	cfg := reporterConfig(t)
	cfg.APIQueries = 1
	s := serve(t, cfg)
	base := "http://" + s.AdminAddr()

	// Requests' slow queries, from another pool to the same engine, hold
	// its readers for requests.
	db, err := store.Open(t.Context(), cfg.ClickHouse, brokertest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	slow, stopSlow := context.WithCancel(store.ForRequest(t.Context()))
	var slowQueries sync.WaitGroup
	defer slowQueries.Wait()
	defer stopSlow()
	const sleep = "SELECT sleep(3) AS holds_the_readers"
	for range 3 * chdb.DefaultOwnerReaders() {
		slowQueries.Go(func() { _ = db.Conn().Exec(slow, sleep) })
	}
	running := fmt.Sprintf("SELECT count() FROM system.processes WHERE query = '%s'", sleep)
	brokertest.WaitFor(t, 30*time.Second, "the slow queries running", func() bool {
		var n uint64
		return db.Conn().QueryRow(t.Context(), running).Scan(&n) == nil && n >= uint64(chdb.DefaultOwnerReaders())
	})

	// A read takes the place and waits behind them.
	go func() {
		if resp, err := http.Get(base + "/api/v1/channels"); err == nil {
			resp.Body.Close()
		}
	}()
	time.Sleep(300 * time.Millisecond)
	resp, err := http.Get(base + "/api/v1/backups")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("GET /api/v1/backups while the API's place is taken: %s; want 429", resp.Status)
	}
}
