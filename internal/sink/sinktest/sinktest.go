// Package sinktest gives tests the pipeline behind the webhook: a broker on a
// real in-process NATS server, a migrated store on the real embedded engine,
// and the sink moving events from one to the other.
package sinktest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpscope/otpscope/internal/broker"
	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/chdb/chdbtest"
	"github.com/otpscope/otpscope/internal/polltest"
	"github.com/otpscope/otpscope/internal/sink"
	"github.com/otpscope/otpscope/internal/store"
)

// Pipeline is a broker and a store, closed when the test ends.
type Pipeline struct {
	NATS   *brokertest.Server
	Broker *broker.Broker
	DB     *store.DB
	// CH is the endpoint DB is connected to, for reading as Grafana does.
	CH *chdbtest.Server
}

// Open starts NATS, opens a broker on it (natsCfg may adjust its config) and
// opens a migrated store in a fresh database of the test engine.
func Open(t testing.TB, natsCfg ...func(*broker.Config)) *Pipeline {
	t.Helper()
	srv := brokertest.NewServer(t)
	cfg := brokertest.Config(t)
	cfg.URL = srv.URL()
	for _, m := range natsCfg {
		m(&cfg)
	}
	b, err := broker.Open(t.Context(), cfg, "test", brokertest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	ch := chdbtest.Serve(t)
	db, err := store.Open(t.Context(), store.Config{DSN: ch.DSN + "/" + ch.Database}, brokertest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &Pipeline{NATS: srv, Broker: b, DB: db, CH: ch}
}

// Config is a sink configuration for tests: small batches, flushed quickly.
func Config() sink.Config {
	return sink.Config{Durable: "sink-test", MaxRows: 500, MaxBytes: 1 << 20, FlushInterval: 100 * time.Millisecond, AckWait: 5 * time.Second}
}

// Start is Open with the sink running on Config.
func Start(t testing.TB) *Pipeline {
	t.Helper()
	p := Open(t)
	p.Run(t, Config(), p.DB)
	return p
}

// Run starts a sink inserting into db and returns a function that stops it
// and waits (also called when the test ends).
func (p *Pipeline) Run(t testing.TB, cfg sink.Config, db sink.Inserter) (stop func()) {
	t.Helper()
	c := sink.NewConsumer(cfg, p.Broker, db, brokertest.Logger(t), prometheus.NewRegistry())
	return polltest.Go(t, "sink", c.Run)
}

// Count runs a query returning one number.
func (p *Pipeline) Count(t testing.TB, query string) uint64 {
	t.Helper()
	var n uint64
	if err := p.DB.Conn().QueryRow(context.Background(), query).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// WaitCount waits until query counts at least want, then fails the test
// unless it counts exactly want.
func (p *Pipeline) WaitCount(t testing.TB, query string, want uint64) {
	t.Helper()
	brokertest.WaitFor(t, 30*time.Second, fmt.Sprintf("%s = %d", query, want), func() bool { return p.Count(t, query) >= want })
	if got := p.Count(t, query); got != want {
		t.Fatalf("%s = %d; want %d", query, got, want)
	}
}
