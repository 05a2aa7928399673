package broker_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpscope/otpscope/internal/broker"
	"github.com/otpscope/otpscope/internal/broker/brokertest"
)

// storeGauges scrapes b's collectors and returns the store gauges by name;
// a gauge missing from the scrape is missing from the map.
func storeGauges(t *testing.T, b *broker.Broker) map[string]float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(b.Collectors()...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		switch n := mf.GetName(); n {
		case "otpscope_nats_stream_bytes", "otpscope_nats_store_bytes", "otpscope_nats_store_limit_bytes":
			got[n] = mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return got
}

// publishSome publishes n messages and fails the test on any error.
func publishSome(t *testing.T, b *broker.Broker, n int) {
	t.Helper()
	for i := range n {
		if err := publishWithin(b, i, 5*time.Second); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
}

// TestStoreMetricsEmbedded: after publishing, the embedded server's stream
// holds bytes, its store counts at least those, and the limit is the one
// the server runs with (75 % of the free disk at start).
func TestStoreMetricsEmbedded(t *testing.T) {
	b, err := broker.Open(t.Context(), brokertest.Config(t), "store-metrics", brokertest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	publishSome(t, b, 50)
	g := storeGauges(t, b)
	if g["otpscope_nats_stream_bytes"] <= 0 {
		t.Errorf("otpscope_nats_stream_bytes = %v after 50 messages; want > 0 (scraped: %v)", g["otpscope_nats_stream_bytes"], g)
	}
	if g["otpscope_nats_store_bytes"] < g["otpscope_nats_stream_bytes"] {
		t.Errorf("otpscope_nats_store_bytes %v < the stream's %v", g["otpscope_nats_store_bytes"], g["otpscope_nats_stream_bytes"])
	}
	limit := b.Server().JetStreamConfig().MaxStore
	if limit <= 0 || g["otpscope_nats_store_limit_bytes"] != float64(limit) {
		t.Errorf("otpscope_nats_store_limit_bytes = %v; want the server's MaxStore %d", g["otpscope_nats_store_limit_bytes"], limit)
	}
}

// TestStoreMetricsExternal: with an external server the limit is the
// account's JetStream storage limit, and 0 where the account has none.
func TestStoreMetricsExternal(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "nats.conf")
	const limit = 64 << 20
	if err := os.WriteFile(conf, fmt.Appendf(nil, `
listen: "127.0.0.1:-1"
jetstream { store_dir: %q }
accounts {
  OTP {
    jetstream { max_file: %d, max_mem: -1 }
    users: [{user: otpscope, password: secret}]
  }
}
`, filepath.Join(dir, "js"), limit), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	cfg := brokertest.Config(t)
	cfg.URL = fmt.Sprintf("nats://otpscope:secret@%s", srv.Addr())
	b, err := broker.Open(t.Context(), cfg, "store-metrics", brokertest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	publishSome(t, b, 50)
	g := storeGauges(t, b)
	if g["otpscope_nats_stream_bytes"] <= 0 || g["otpscope_nats_store_bytes"] < g["otpscope_nats_stream_bytes"] {
		t.Errorf("stream bytes %v, store bytes %v after 50 messages; want > 0 and store >= stream", g["otpscope_nats_stream_bytes"], g["otpscope_nats_store_bytes"])
	}
	if g["otpscope_nats_store_limit_bytes"] != limit {
		t.Errorf("otpscope_nats_store_limit_bytes = %v; want the account's %d", g["otpscope_nats_store_limit_bytes"], limit)
	}

	// An account without limits: the server's own is not told to clients.
	plain := brokertest.NewServer(t).Broker(t)
	publishSome(t, plain, 5)
	if g := storeGauges(t, plain); g["otpscope_nats_store_limit_bytes"] != 0 || g["otpscope_nats_store_bytes"] <= 0 {
		t.Errorf("without an account limit: store %v, limit %v; want > 0 and 0", g["otpscope_nats_store_bytes"], g["otpscope_nats_store_limit_bytes"])
	}
}
