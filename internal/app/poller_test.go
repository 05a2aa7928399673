package app_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/otpscope/otpscope/internal/app"
	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/flagenv"
	"github.com/otpscope/otpscope/internal/poller"
	"github.com/otpscope/otpscope/internal/tyntec"
	"github.com/otpscope/otpscope/internal/tyntecsim"
	"github.com/otpscope/otpscope/internal/tyntecsim/simtest"
)

// TestPollerServesOps runs the poller module as cmd/poller does: it connects
// to NATS, registers the callback on start and serves /healthz, /readyz and
// /metrics.
func TestPollerServesOps(t *testing.T) {
	ns := brokertest.NewServer(t)
	sim, simURL := simtest.Start(t, tyntecsim.Config{Seed: 1})

	cfg := newConfig(t, "poller")
	cfg.NATS.URL = ns.URL()
	cfg.Poller.Tyntec = tyntec.Config{BaseURL: simURL, APIKey: tyntecsim.DefaultAPIKey, Limiter: rate.NewLimiter(1000, 100), MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond}
	cfg.Poller.Schedule = "@every 1s"
	cfg.Poller.Now = sim.Now
	cfg.Poller.RegisterCallbackURL = "http://127.0.0.1:8080/webhooks/tyntec"
	cfg.Poller.RegisterCallbackHeaders = poller.Headers{"X-Webhook-Token": "0123456789abcdef0123"}
	a := serve(t, cfg)

	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + a.Addr() + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	brokertest.WaitFor(t, 10*time.Second, "/readyz to answer 200", func() bool {
		code, _ := get("/readyz")
		return code == http.StatusOK
	})
	if code, body := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d %s", code, body)
	}
	client, err := tyntec.New(tyntec.Config{BaseURL: simURL, APIKey: tyntecsim.DefaultAPIKey, Limiter: rate.NewLimiter(rate.Inf, 1)})
	if err != nil {
		t.Fatal(err)
	}
	brokertest.WaitFor(t, 10*time.Second, "the callback registration", func() bool {
		cbs, err := client.ListCallbacks(t.Context())
		return err == nil && len(cbs) == 1 && cbs[0].URL == cfg.Poller.RegisterCallbackURL
	})
	brokertest.WaitFor(t, 10*time.Second, "a reconciliation cycle", func() bool {
		_, body := get("/metrics")
		return strings.Contains(body, "\notpscope_poller_cycles_total ") && !strings.Contains(body, "\notpscope_poller_cycles_total 0\n")
	})
	_, body := get("/metrics")
	for _, name := range []string{"otpscope_poller_leader 1", "otpscope_poller_due_otps", "otpscope_poller_oldest_unreconciled_seconds", `otpscope_tyntec_calls_total{op="v4_list_callbacks",outcome="ok"} 1`} {
		if !strings.Contains(body, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	// /api/v1/status says what this process runs: the poller alone.
	var st app.StatusResponse
	if code, body := get("/api/v1/status"); code != http.StatusOK || json.Unmarshal([]byte(body), &st) != nil {
		t.Errorf("/api/v1/status = %d %s", code, body)
	} else if st.Poller == nil || !st.Poller.Leading || st.Poller.BacklogCounted == nil || !*st.Poller.BacklogCounted || st.Ingest != nil || st.Sink != nil || len(st.Modules) != 1 || st.Stream.Error != "" {
		t.Errorf("/api/v1/status of the poller: %+v; want the poller's, leading, counted, and the stream's, nothing of ingest or the sink", st)
	}
	if code, _ := get("/nope"); code != http.StatusNotFound {
		t.Errorf("/nope = %d; want 404", code)
	}

	// With NATS away the stream is unreadable for that reason, said at
	// once, and warned of once: by the nats readiness check.
	ns.Stop()
	brokertest.WaitFor(t, 10*time.Second, "/api/v1/status to say NATS is away", func() bool {
		st = app.StatusResponse{}
		_, body := get("/api/v1/status")
		return json.Unmarshal([]byte(body), &st) == nil && strings.Contains(st.Stream.Error, "not connected to NATS")
	})
	var nats, stream int
	for _, w := range st.Warnings {
		if strings.HasPrefix(w, "not ready, nats: ") {
			nats++
		}
		if strings.HasPrefix(w, "the stream: ") {
			stream++
		}
	}
	if nats != 1 || stream != 0 {
		t.Errorf("/api/v1/status with NATS away warns %q; want the nats readiness check's warning alone", st.Warnings)
	}
}

// newConfig is binary's configuration with its flag defaults, on loopback
// ports chosen by the system and a fresh data directory.
func newConfig(t *testing.T, binary string) app.Config {
	t.Helper()
	return newConfigEnv(t, binary, nil)
}

// newConfigEnv is newConfig with binary's flags read from environ first, as
// the binary reads its environment.
func newConfigEnv(t *testing.T, binary string, environ []string) app.Config {
	t.Helper()
	var cfg app.Config
	fs := newFlagSet(&cfg, binary)
	if err := flagenv.Parse(fs, nil, flagenv.Lookup(environ)); err != nil {
		t.Fatal(err)
	}
	cfg.Listen = "127.0.0.1:0"
	if cfg.AdminListen != "" {
		cfg.AdminListen = "127.0.0.1:0"
	}
	cfg.NATS.Listen = "127.0.0.1:-1"
	cfg.ClickHouse.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	// The production default: on a loaded machine (CI running the
	// packages side by side) a request in flight took longer than 5 s to
	// finish and a clean stop was reported as a failure.
	cfg.ShutdownTimeout = 15 * time.Second
	return cfg
}

// serve builds and serves cfg until the test ends.
func serve(t *testing.T, cfg app.Config) *app.App {
	t.Helper()
	a, stop := start(t, cfg)
	t.Cleanup(stop)
	return a
}

// start builds and serves cfg; stop ends Serve and waits for a clean shutdown.
func start(t *testing.T, cfg app.Config) (a *app.App, stop func()) {
	t.Helper()
	a, err := app.New(t.Context(), cfg, brokertest.Logger(t))
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx) }()
	return a, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}
}
