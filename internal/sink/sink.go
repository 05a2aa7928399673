// Package sink is otpscope's ClickHouse side, over clickhouse-go/v2 only: it
// connects from a DSN (clickhouse:// native or http:// — a ClickHouse server or
// cluster, or the embedded engine's endpoint), applies the migrations of
// schema/, turns NATS messages into rows and inserts them in batches, and
// answers the analytics queries.
package sink

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Config says where ClickHouse is.
type Config struct {
	// DSN of a ClickHouse server: clickhouse://user:pass@host:9000/db or
	// http://user:pass@host:8123/db. Empty means the service hosts the embedded
	// engine and serves it on Listen.
	DSN string
	// Listen is the embedded engine's ClickHouse HTTP endpoint.
	Listen string
	// Cluster, when set, applies the cluster variant of the schema
	// (Replicated*MergeTree ON CLUSTER, plus Distributed tables).
	Cluster string
}

// DefaultListen is the embedded engine's endpoint, where Grafana connects.
const DefaultListen = "127.0.0.1:8123"

// RegisterFlags registers the ClickHouse flags on fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.DSN, "clickhouse-dsn", "", "external ClickHouse (clickhouse://… or http://…); empty hosts the embedded engine")
	fs.StringVar(&c.Listen, "clickhouse-listen", DefaultListen, "the embedded engine's ClickHouse HTTP endpoint")
	fs.StringVar(&c.Cluster, "clickhouse-cluster", "", "ClickHouse cluster name for the replicated schema (external clusters only)")
}

// Validate reports the first configuration error.
func (c *Config) Validate() error {
	if c.DSN != "" {
		if _, err := clickhouse.ParseDSN(c.DSN); err != nil {
			return fmt.Errorf("clickhouse-dsn: %w", err)
		}
	} else if c.Cluster != "" {
		return errors.New("clickhouse-cluster needs an external --clickhouse-dsn")
	}
	return nil
}

// DB is a connection pool to ClickHouse.
type DB struct {
	conn    driver.Conn
	cluster string
	logger  *slog.Logger
}

// Open connects to dsn and waits (while ctx lasts) until ClickHouse answers a
// ping: a server starting next to us is routine.
func Open(ctx context.Context, dsn, cluster string, logger *slog.Logger) (*DB, error) {
	opts, err := clickhouse.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("clickhouse dsn: %w", err)
	}
	if opts.DialTimeout == 0 {
		opts.DialTimeout = 5 * time.Second
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("open clickhouse: %w", err)
	}
	wait := 100 * time.Millisecond
	for {
		err = conn.Ping(ctx)
		if err == nil {
			break
		}
		var ex *clickhouse.Exception
		if errors.As(err, &ex) {
			conn.Close()
			return nil, fmt.Errorf("ping clickhouse: %w", err) // it answered: no point waiting
		}
		logger.Warn("clickhouse not reachable yet; retrying", "err", err, "in", wait)
		select {
		case <-ctx.Done():
			conn.Close()
			return nil, fmt.Errorf("ping clickhouse: %w (last error: %v)", ctx.Err(), err)
		case <-time.After(wait):
		}
		wait = min(2*wait, 3*time.Second)
	}
	return &DB{conn: conn, cluster: cluster, logger: logger}, nil
}

// Conn is the underlying clickhouse-go connection.
func (db *DB) Conn() driver.Conn { return db.conn }

// Ready reports whether ClickHouse answers.
func (db *DB) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return db.conn.Ping(ctx)
}

// Close closes the pool.
func (db *DB) Close() error { return db.conn.Close() }
