// Package chdbtest gives tests the real embedded ClickHouse engine and its
// HTTP endpoint.
//
// chDB runs one engine per process and the library is 566 MB, so every test
// of a binary shares one engine, opened on first use in a temporary data
// directory; tests keep apart by using their own database (Database).
// Use Main in TestMain to remove that directory when the tests end.
//
// When libchdb.so cannot be found, tests are skipped with a message saying
// how to get it, unless OTPSCOPE_CHDB_LIB is set (as `make test` does): then
// the library is expected and its absence fails the test.
package chdbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/otpscope/otpscope/internal/chdb"
)

// SkipMessage is what tests say when the library is missing.
const SkipMessage = "libchdb.so not found: run `make setup` (or set OTPSCOPE_CHDB_LIB)"

var shared struct {
	once   sync.Once
	engine *chdb.Engine
	dir    string
	err    error
}

func open() {
	dir, err := os.MkdirTemp("", "otpscope-chdb-")
	if err != nil {
		shared.err = fmt.Errorf("create engine data directory: %w", err)
		return
	}
	shared.dir = dir
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	shared.engine, shared.err = chdb.Open(dir, chdb.WithLogger(logger))
	if shared.err != nil {
		os.RemoveAll(dir)
		shared.dir = ""
	}
}

// Open returns the engine shared by the tests of this binary. It skips or
// fails the test when the library is missing (see the package doc).
func Open(t testing.TB) *chdb.Engine {
	t.Helper()
	shared.once.Do(open)
	if shared.err != nil {
		if errors.Is(shared.err, chdb.ErrLibraryNotFound) && os.Getenv(chdb.EnvLibrary) == "" {
			t.Skipf("%s\n\t(%v)", SkipMessage, shared.err)
		}
		t.Fatalf("open embedded ClickHouse engine: %v", shared.err)
	}
	return shared.engine
}

// Main runs the tests and then closes the shared engine and removes its
// data directory. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if shared.engine != nil {
		shared.engine.Close()
	}
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

var notIdent = regexp.MustCompile(`[^a-zA-Z0-9_]+`)

// Database creates a database of its own for the test on e and drops it
// when the test ends.
func Database(t testing.TB, e *chdb.Engine) string {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := strings.ToLower(notIdent.ReplaceAllString(t.Name(), "_"))
	if len(name) > 40 {
		name = name[:40]
	}
	name = "t_" + name + "_" + hex.EncodeToString(b[:])
	if _, err := e.Query(t.Context(), "CREATE DATABASE "+name, ""); err != nil {
		t.Fatalf("create test database %s: %v", name, err)
	}
	t.Cleanup(func() {
		if _, err := e.Query(context.Background(), "DROP DATABASE IF EXISTS "+name+" SYNC", ""); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	return name
}

// Server is the shared engine behind an HTTP endpoint of the test's own.
type Server struct {
	Engine   *chdb.Engine
	Handler  *chdb.Handler
	Addr     string // host:port on 127.0.0.1
	User     string // may write
	Password string
	DSN      string // http://user:password@addr
	// Database is a fresh database for the test, also the default database
	// of Options.
	Database string
}

// Serve starts an endpoint on 127.0.0.1 for the test, with a fresh
// database, and stops it when the test ends.
func Serve(t testing.TB) *Server {
	t.Helper()
	return ServeConfig(t, chdb.HandlerConfig{})
}

// ServeConfig is Serve with a handler configuration.
func ServeConfig(t testing.TB, cfg chdb.HandlerConfig) *Server {
	t.Helper()
	e := Open(t)
	db := Database(t, e)
	h := chdb.NewHandler(e, cfg)
	srv, err := chdb.Listen("127.0.0.1:0", h)
	if err != nil {
		t.Fatalf("start ClickHouse endpoint: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ClickHouse endpoint: %v", err)
		}
	})
	user, password := h.Credentials()
	return &Server{
		Engine: e, Handler: h, Addr: srv.Addr(), User: user, Password: password,
		DSN: srv.DSN(), Database: db,
	}
}

// Options are clickhouse-go options that reach the endpoint over HTTP as
// the owner, in the test's database.
func (s *Server) Options() *clickhouse.Options {
	return &clickhouse.Options{
		Addr:     []string{s.Addr},
		Protocol: clickhouse.HTTP,
		Auth:     clickhouse.Auth{Database: s.Database, Username: s.User, Password: s.Password},
	}
}

// ReaderOptions are clickhouse-go options that reach the endpoint over
// HTTP anonymously, as Grafana does, in the test's database: a guest, held
// to the allowlist and the reader limits.
func (s *Server) ReaderOptions() *clickhouse.Options {
	return &clickhouse.Options{
		Addr:     []string{s.Addr},
		Protocol: clickhouse.HTTP,
		Auth:     clickhouse.Auth{Database: s.Database},
	}
}

// Conn opens a clickhouse-go connection with opts and closes it when the
// test ends.
func Conn(t testing.TB, opts *clickhouse.Options) clickhouse.Conn {
	t.Helper()
	conn, err := clickhouse.Open(opts)
	if err != nil {
		t.Fatalf("open clickhouse-go connection to %v: %v", opts.Addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}
