package reporter

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/otpscope/otpscope/internal/broker"
)

// Reports lease: with several reporter replicas (or all-in-ones on one NATS),
// one replica runs the schedules, so each summary and alert goes out once.
const (
	BucketLeader      = "otpscope_reporter_leader"
	leaderKey         = "reports"
	leaderTTL         = 15 * time.Second
	leaderDescription = "otpscope reporter: the replica that runs reports and alerts; the one whose sink writes an embedded engine"
)

// embeddedKey is the lease of the reporter whose sink writes into an
// embedded engine. That engine is its process's own: a second such
// reporter on the stream would share the sink's durable consumer and take
// part of the events into a database nothing else reads.
const embeddedKey = "embedded-engine"

// EmbeddedSink runs a sink writing an embedded engine alone on its
// stream (Run), and says whom it waits for (Waiting).
type EmbeddedSink struct {
	waiting atomic.Pointer[string]
}

// Run runs the sink (run) while this replica holds the embedded engine's
// lease, until ctx ends; a replica that finds it held warns and waits,
// taking over when the holder stops. The lease is held in the name of the
// engine under engineDir (host and directory, and engineID's token), not
// of the process: a reporter restarted after a crash takes it back at
// once rather than after its TTL.
func (e *EmbeddedSink) Run(ctx context.Context, b *broker.Broker, engineDir string, run func(context.Context) error, logger *slog.Logger) error {
	host, _ := os.Hostname()
	if abs, err := filepath.Abs(engineDir); err == nil {
		engineDir = abs
	}
	id, err := engineID(engineDir)
	if err != nil {
		return err
	}
	lease, err := b.NewLease(ctx, BucketLeader, leaderDescription, embeddedKey, host+":"+engineDir, leaderTTL, logger)
	if err != nil {
		return err
	}
	lease.Token = id
	// The sink keeps its lease while NATS is away or its disk full (it
	// cannot read then anyway, and must drain once NATS is back): only
	// another reporter found holding it stops it.
	lease.Sticky = true
	lease.Waiting = func(holder string) {
		e.waiting.Store(&holder)
		logger.Warn(embeddedWaits, "holder", holder)
	}
	lease.Holding = func(held bool) {
		if held {
			e.waiting.Store(nil)
		}
	}
	return lease.Run(ctx, run)
}

// engineIDFile, under the engine's directory, names the engine for its
// sink's lease: one process at a time opens the directory, and a restart
// finds the name it left.
const engineIDFile = "otpscope-engine-id"

// engineID is the name of the embedded engine under engineDir, made at
// first use.
func engineID(engineDir string) (string, error) {
	path := filepath.Join(engineDir, engineIDFile)
	if b, err := os.ReadFile(path); err == nil && len(bytes.TrimSpace(b)) > 0 {
		return string(bytes.TrimSpace(b)), nil
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	s := hex.EncodeToString(id[:])
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return "", fmt.Errorf("the embedded engine's id: %w", err)
	}
	if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("the embedded engine's id: %w", err)
	}
	return s, nil
}

// Waiting is why the sink does not run, while another reporter with an
// embedded engine holds the stream ("" otherwise).
func (e *EmbeddedSink) Waiting() string {
	h := e.waiting.Load()
	if h == nil {
		return ""
	}
	return embeddedWaits + " (holder " + *h + ")"
}

// embeddedWaits says why a sink writing an embedded engine waits.
const embeddedWaits = "another reporter with an embedded ClickHouse engine reads the stream: this one's sink waits, or the events would be split between two databases; reporter replicas share one ClickHouse server (--clickhouse-dsn)"

// RunReportsLeased runs r's schedules while this replica holds the reports
// lease, until ctx ends.
func RunReportsLeased(ctx context.Context, b *broker.Broker, r *Reports, logger *slog.Logger) error {
	lease, err := b.NewLease(ctx, BucketLeader, leaderDescription, leaderKey, broker.ReplicaName(), leaderTTL, logger)
	if err != nil {
		return err
	}
	lease.Holding = func(held bool) {
		if held {
			r.leader.Set(1)
		} else {
			r.leader.Set(0)
		}
	}
	return lease.Run(ctx, r.Run)
}
