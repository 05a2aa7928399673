package poller

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/tyntecsim"
	"github.com/otpscope/otpscope/internal/tyntecsim/simtest"
	"github.com/otpscope/otpscope/internal/webtest"
)

// TestRunServesOps runs the service as cmd/poller does: it connects to NATS,
// registers the callback on start and serves /healthz, /readyz and /metrics.
func TestRunServesOps(t *testing.T) {
	ns := brokertest.NewServer(t)
	sim, url := simtest.Start(t, tyntecsim.Config{Seed: 1})
	addr := webtest.FreeAddr(t)

	cfg := testConfig(sim, url)
	cfg.Listen = addr
	cfg.NATS = brokertest.Config(t)
	cfg.NATS.URL = ns.URL()
	cfg.RegisterCallbackURL = "http://127.0.0.1:8080/webhooks/tyntec"
	cfg.RegisterCallbackHeaders = Headers{"X-Webhook-Token": "0123456789abcdef0123"}
	goRun(t, func(ctx context.Context) error { return Run(ctx, cfg, brokertest.Logger(t)) })

	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
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
	brokertest.WaitFor(t, 10*time.Second, "the callback registration", func() bool {
		cbs, err := simClient(t, url).ListCallbacks(t.Context())
		return err == nil && len(cbs) == 1 && cbs[0].URL == cfg.RegisterCallbackURL
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
	if code, _ := get("/nope"); code != http.StatusNotFound {
		t.Errorf("/nope = %d; want 404", code)
	}
}
