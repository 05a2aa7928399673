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
// the library is expected and its absence fails the test. In CI (CI=true)
// Main opens the engine before any test runs and, without the library, exits
// non-zero: a CI run that skipped every engine test would look green.
package chdbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/otpscope/otpscope/internal/chdb"
	"github.com/otpscope/otpscope/internal/polltest"
)

// SkipMessage is what tests say when the library is missing.
const SkipMessage = "libchdb.so not found: run `make setup` (or set OTPSCOPE_CHDB_LIB)"

// EnvCI is the variable CI systems set to "true"; there a missing library
// fails the test binary instead of skipping its tests.
const EnvCI = "CI"

var shared struct {
	once   sync.Once
	setup  func(dir string) ([]chdb.Option, error)
	engine *chdb.Engine
	dir    string
	err    error
}

func open() {
	dir, err := os.MkdirTemp("", "otpscope-chdb-")
	if err != nil {
		shared.err = fmt.Errorf("create engine directory: %w", err)
		return
	}
	shared.dir = dir
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	opts := []chdb.Option{chdb.WithLogger(logger)}
	if lib := os.Getenv(chdb.EnvLibrary); lib != "" {
		// Set, it is the library the tests are meant to run with; a
		// search that found another one would hide a wrong setting.
		opts = append(opts, chdb.WithLibrary(lib))
	}
	if shared.setup != nil {
		more, err := shared.setup(dir)
		if err != nil {
			shared.err = fmt.Errorf("set the engine up: %w", err)
			return
		}
		opts = append(opts, more...)
	}
	shared.engine, shared.err = chdb.Open(filepath.Join(dir, "data"), opts...)
}

// Option configures the engine a test binary shares; pass it to Main or Run.
type Option func()

// WithSetup has setup run once, just before the engine opens, with a
// directory of its own (removed when the tests end) for the files it needs;
// the engine opens with the options setup returns, for example a
// configuration file (chdb.WithSetting("config-file", …)).
func WithSetup(setup func(dir string) ([]chdb.Option, error)) Option {
	return func() { shared.setup = setup }
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

// Main runs the tests, then closes the shared engine and removes its
// directory, and exits. Call it from TestMain of every package whose tests
// use the engine.
func Main(m *testing.M, opts ...Option) { os.Exit(Run(m, opts...)) }

// Run is Main for a TestMain with work of its own: it returns the exit code.
//
// In CI (CI=true) it opens the engine first and, when the library is
// missing, runs no test and returns 1 with a message saying how to install
// it. Elsewhere the tests that need the engine skip, and Run says so on
// stderr once more after the tests, where a skip is easy to miss.
func Run(m *testing.M, opts ...Option) int {
	for _, o := range opts {
		o()
	}
	defer func() {
		if shared.engine != nil {
			shared.engine.Close()
		}
		if shared.dir != "" {
			os.RemoveAll(shared.dir)
		}
	}()
	if os.Getenv(EnvCI) == "true" {
		shared.once.Do(open)
		if errors.Is(shared.err, chdb.ErrLibraryNotFound) {
			fmt.Fprintf(os.Stderr, "FAIL: %s=true and the embedded ClickHouse engine library is missing; install it with `make setup` (or point %s at libchdb.so)\n\t%v\n", EnvCI, chdb.EnvLibrary, shared.err)
			return 1
		}
	}
	code := m.Run()
	if errors.Is(shared.err, chdb.ErrLibraryNotFound) {
		fmt.Fprintf(os.Stderr, "SKIPPED: the tests that need the embedded ClickHouse engine did not run: %s\n\t%v\n", SkipMessage, shared.err)
	}
	return code
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
	polltest.Go(t, "ClickHouse endpoint", srv.Serve)
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

// WaitForIDs polls query, which selects one String column, until its values
// include every id of ids, and fails the test with how many are still
// missing when they do not within timeout. It is how a test checks that
// everything it was promised (every acknowledged webhook) reached ClickHouse.
func WaitForIDs(t testing.TB, conn clickhouse.Conn, timeout time.Duration, query string, ids map[string]bool) {
	t.Helper()
	// A query error counts as not yet: after a full disk the sink may be
	// setting broken parts aside (store.RecoverParts), and reads of their
	// table fail until it has.
	var lastErr error
	missing := func() int {
		rows, err := conn.Query(t.Context(), query)
		if err != nil {
			lastErr = err
			return len(ids)
		}
		defer rows.Close()
		have := make(map[string]bool, len(ids))
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				t.Fatalf("%s: %v", query, err)
			}
			have[id] = true
		}
		if err := rows.Err(); err != nil {
			lastErr = err
			return len(ids)
		}
		lastErr = nil
		n := 0
		for id := range ids {
			if !have[id] {
				n++
			}
		}
		return n
	}
	if !polltest.Within(timeout, 200*time.Millisecond, func() bool { return missing() == 0 }) {
		t.Fatalf("%d of %d ids are missing from %q after %v (last error: %v)", missing(), len(ids), query, timeout, lastErr)
	}
}

// BreakPart empties the marks files of the active part named part of table
// (database.table) and drops the engine's mark cache: the state a full disk
// leaves a part in. ClickHouse 26.7 commits a part whose writes failed with
// ENOSPC (strace: every write of the part failed, and it still became
// active); reading it then fails with "Empty marks file … CORRUPTED_DATA".
// An empty part name breaks the table's newest active part.
func BreakPart(t testing.TB, conn clickhouse.Conn, table, part string) string {
	t.Helper()
	name, path := ActivePart(t, conn, table, part)
	EmptyMarks(t, path)
	if err := conn.Exec(t.Context(), "SYSTEM DROP MARK CACHE"); err != nil {
		t.Fatal(err)
	}
	return name
}

// ActivePart is the name and directory of the active part named part of
// table (database.table); an empty part name gives the table's newest.
func ActivePart(t testing.TB, conn clickhouse.Conn, table, part string) (name, path string) {
	t.Helper()
	q := fmt.Sprintf("SELECT name, path FROM system.parts WHERE active AND database || '.' || table = '%s' AND (name = '%s' OR '%[2]s' = '') ORDER BY modification_time DESC, max_block_number DESC LIMIT 1", table, part)
	if err := conn.QueryRow(t.Context(), q).Scan(&name, &path); err != nil {
		t.Fatalf("part %q of %s: %v", part, table, err)
	}
	return name, path
}

// EmptyMarks empties the marks files of the part in directory part, as a
// full disk leaves them (BreakPart); a process that hosts the engine sees
// the part broken once it reads the marks from disk.
func EmptyMarks(t testing.TB, part string) {
	t.Helper()
	marks, _ := filepath.Glob(filepath.Join(part, "*.cmrk*"))
	if len(marks) == 0 {
		t.Fatalf("no marks file in %s", part)
	}
	for _, m := range marks {
		if err := os.Truncate(m, 0); err != nil {
			t.Fatal(err)
		}
	}
}
