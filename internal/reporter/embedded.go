package reporter

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/otpscope/otpscope/internal/sink/chdb"
)

// EmbeddedClickHouse is the embedded engine (chDB) under a data directory and
// its ClickHouse HTTP endpoint, which this process reaches as the owner (the
// only client that may write) and Grafana reaches read-only.
type EmbeddedClickHouse struct {
	engine *chdb.Engine
	server *chdb.Server
	stop   context.CancelFunc
	served chan error
	logger *slog.Logger
}

// HostClickHouse opens the embedded engine under dataDir/clickhouse and serves
// its endpoint on listen until Close — not until some service's context ends,
// since a stopping sink inserts what it holds through it.
func HostClickHouse(dataDir, listen string, logger *slog.Logger) (*EmbeddedClickHouse, error) {
	dir := filepath.Join(dataDir, "clickhouse")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("embedded clickhouse: %w", err)
	}
	engine, err := chdb.Open(dir, chdb.WithLogger(logger))
	if err != nil {
		return nil, fmt.Errorf("embedded clickhouse: %w", err)
	}
	server, err := chdb.Listen(listen, chdb.NewHandler(engine, chdb.HandlerConfig{Logger: logger}))
	if err != nil {
		engine.Close()
		return nil, err
	}
	ctx, stop := context.WithCancel(context.Background())
	e := &EmbeddedClickHouse{engine: engine, server: server, stop: stop, served: make(chan error, 1), logger: logger}
	go func() { e.served <- server.Serve(ctx) }()
	return e, nil
}

// DSN is the owner's clickhouse-go DSN (http://user:password@addr).
func (e *EmbeddedClickHouse) DSN() string { return e.server.DSN() }

// Addr is the endpoint's address, where Grafana connects.
func (e *EmbeddedClickHouse) Addr() string { return e.server.Addr() }

// Dir is the engine's data directory.
func (e *EmbeddedClickHouse) Dir() string { return e.engine.Dir() }

// Close stops the endpoint (requests in flight may finish) and closes the engine.
func (e *EmbeddedClickHouse) Close() error {
	e.stop()
	if err := <-e.served; err != nil {
		e.logger.Warn("embedded ClickHouse endpoint", "err", err)
	}
	return e.engine.Close()
}

// Engine is the engine itself, for benchmarks that bypass the endpoint.
func (e *EmbeddedClickHouse) Engine() *chdb.Engine { return e.engine }
