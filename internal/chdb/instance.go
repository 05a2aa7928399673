package chdb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/otpscope/otpscope/internal/httpurl"
)

// Instance is the embedded engine under a data directory and its ClickHouse
// HTTP endpoint, which the hosting process reaches as the owner (the only
// client that may write) and Grafana reaches read-only.
type Instance struct {
	engine *Engine
	server *Server
	stop   context.CancelFunc
	served chan error
	logger *slog.Logger
}

// Config configures Start.
type Config struct {
	// Dir is the engine's data directory.
	Dir string
	// Addr is where the endpoint listens (DefaultAddr when empty); beyond
	// loopback only with ReaderPassword.
	Addr string
	// ReaderUser and ReaderPassword are the readers' credentials (see
	// HandlerConfig); without a password anyone who reaches Addr may read.
	ReaderUser     string
	ReaderPassword string
	// Limits bound the readers' queries; nil means DefaultLimits.
	Limits *Limits
	// GuestQueue is HandlerConfig.GuestQueue: how many reader requests may
	// wait while one runs.
	GuestQueue int
	// Logger receives the engine's and the endpoint's logs.
	Logger *slog.Logger
	// Observe is HandlerConfig.Observe: told of every query request.
	Observe func(guest bool, outcome string, d time.Duration)
	// BackupDir is where BACKUP and RESTORE may read and write (WithBackupDir).
	BackupDir string
	// ListenTCP binds the endpoint's address (nil: net.Listen, no cap on
	// connections): how the process caps every listener's connections.
	ListenTCP func(addr string) (net.Listener, error)
}

// ErrInUse is a data directory another process's engine holds: the engine
// itself says so only on its standard error, and fails to connect.
var ErrInUse = errors.New("another process holds this data directory (is otpscope running on it? stop it first)")

// inUse reports whether another engine holds dir: ClickHouse keeps an
// exclusive flock on its status file while it runs.
func inUse(dir string) bool {
	f, err := os.Open(filepath.Join(dir, "status"))
	if err != nil {
		return false // never started here
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return errors.Is(err, syscall.EWOULDBLOCK)
	}
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false
}

// Start opens the engine under cfg.Dir and serves its endpoint on cfg.Addr
// until Close — not until some service's context ends, since a stopping
// sink inserts what it holds through it.
func Start(cfg Config) (*Instance, error) {
	dir, addr, logger := cfg.Dir, cfg.Addr, cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if addr == "" {
		addr = DefaultAddr
	}
	if !httpurl.Loopback(addr) && cfg.ReaderPassword == "" {
		// Before booting a 566 MB engine for nothing.
		return nil, fmt.Errorf("embedded clickhouse: listen %s: %w", addr, ErrExposed)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("embedded clickhouse: %w", err)
	}
	if inUse(dir) {
		return nil, fmt.Errorf("embedded clickhouse %s: %w", dir, ErrInUse)
	}
	opts := []Option{WithLogger(logger), WithBackupDir(cfg.BackupDir)}
	if cfg.Limits != nil {
		opts = append(opts, WithReaderLimits(*cfg.Limits))
	}
	engine, err := Open(dir, opts...)
	if err != nil {
		return nil, fmt.Errorf("embedded clickhouse: %w", err)
	}
	hcfg := HandlerConfig{Logger: logger, ReaderUser: cfg.ReaderUser, ReaderPassword: cfg.ReaderPassword, GuestQueue: cfg.GuestQueue, Observe: cfg.Observe}
	server, err := listen(addr, NewHandler(engine, hcfg), cfg.ListenTCP)
	if err != nil {
		engine.Close()
		return nil, err
	}
	ctx, stop := context.WithCancel(context.Background())
	in := &Instance{engine: engine, server: server, stop: stop, served: make(chan error, 1), logger: logger}
	go func() { in.served <- server.Serve(ctx) }()
	return in, nil
}

// Addr is the endpoint's address, where Grafana connects.
func (in *Instance) Addr() string { return in.server.Addr() }

// DSN is the owner's clickhouse-go DSN (http://user:password@addr).
func (in *Instance) DSN() string { return in.server.DSN() }

// Credentials are the owner's user and password on the endpoint.
func (in *Instance) Credentials() (user, password string) { return in.server.handler.Credentials() }

// Dir is the engine's data directory.
func (in *Instance) Dir() string { return in.engine.Dir() }

// Engine is the engine itself, for benchmarks that bypass the endpoint.
func (in *Instance) Engine() *Engine { return in.engine }

// Close stops the endpoint (requests in flight may finish) and closes the engine.
func (in *Instance) Close() error {
	in.stop()
	if err := <-in.served; err != nil {
		in.logger.Warn("embedded ClickHouse endpoint", "err", err)
	}
	return in.engine.Close()
}
