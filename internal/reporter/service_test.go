package reporter_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/chdb/chdbtest"
	"github.com/otpscope/otpscope/internal/reporter"
	"github.com/otpscope/otpscope/internal/sink/sinktest"
	"github.com/otpscope/otpscope/internal/store"
)

// TestServiceServesTheAPI checks the wiring: the service mounts the API on
// its listener and runs the report schedule next to the consumer.
func TestServiceServesTheAPI(t *testing.T) {
	srv := brokertest.NewServer(t)
	ch := chdbtest.Serve(t)
	cfg := reporter.Config{
		Listen: "127.0.0.1:0", ShutdownTimeout: time.Second,
		NATS:       brokertest.Config(t),
		ClickHouse: store.Config{DSN: ch.DSN + "/" + ch.Database},
		Sink:       sinktest.Config(),
		Reports:    reporter.ReportsConfig{Hourly: reporter.DefaultReportHourly, Daily: reporter.DefaultReportDaily, Alerts: reporter.DefaultAlerts, Rules: reporter.AlertRules{Window: time.Hour}},
	}
	cfg.NATS.URL = srv.URL()
	s, err := reporter.New(t.Context(), cfg, brokertest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
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
