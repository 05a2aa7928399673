package app_test

import (
	"net/http"
	"testing"

	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/chdb/chdbtest"
	"github.com/otpscope/otpscope/internal/sink/sinktest"
	"github.com/otpscope/otpscope/internal/store"
)

// TestServiceServesTheAPI checks the wiring: the service mounts the API on
// its listener and runs the report schedule next to the consumer.
func TestServiceServesTheAPI(t *testing.T) {
	srv := brokertest.NewServer(t)
	ch := chdbtest.Serve(t)
	cfg := newConfig(t, "reporter")
	cfg.NATS.URL = srv.URL()
	cfg.ClickHouse = store.Config{DSN: ch.DSN + "/" + ch.Database}
	cfg.Sink = sinktest.Config()
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
