package chdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
)

// ErrEngineInUse is returned by Open while another Engine is open in the
// process: chDB runs one engine per process, bound to one data directory.
var ErrEngineInUse = errors.New("an embedded ClickHouse engine is already open in this process")

// ErrClosed is returned by the methods of a closed Engine.
var ErrClosed = errors.New("embedded ClickHouse engine is closed")

// Option configures Open.
type Option func(*options)

type options struct {
	library   string
	logger    *slog.Logger
	settings  map[string]string
	limits    *Limits
	backupDir string
	memory    *Memory
}

// WithMemory sizes the engine for a process that may use m, in place of
// what ProcessMemory finds (memory.go).
func WithMemory(m Memory) Option { return func(o *options) { o.memory = &m } }

// WithLibrary loads libchdb.so from path instead of searching for it.
func WithLibrary(path string) Option { return func(o *options) { o.library = path } }

// WithLogger sets the logger; the default discards.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithReaderLimits bounds every statement on the read-only connection, the
// one that serves clients other than the owner; without it DefaultLimits
// apply.
func WithReaderLimits(l Limits) Option { return func(o *options) { o.limits = &l } }

// WithBackupDir lets BACKUP and RESTORE use File('<name>') under dir (the
// engine's backups.allowed_path, a server setting, not a query's).
func WithBackupDir(dir string) Option { return func(o *options) { o.backupDir = dir } }

// DefaultOwnerReaders is how many of the owner's read-only statements run at
// once: one per core, at least two. A query's analysis and planning run on
// one thread (35–40 ms for a rollup read over the attempts' split at 111 M
// events, whatever its data), so two reads side by side take the time of
// one where they took the sum.
//
// The engine holds one reader more, which the owner's statements for a
// request (RequestHeader) never take: however many requests read, the
// process's own statements (a readiness ping, a new connection's hello, an
// alert's query, the parse of any statement but an insert) find a reader
// free or held by one of their own kind.
func DefaultOwnerReaders() int { return max(2, runtime.NumCPU()) }

// RequestHeader, sent by the owner with any value, marks its statement as
// one for a request (an API request's query: store.ForRequest), held to
// DefaultOwnerReaders of the readers. A guest's is ignored.
const RequestHeader = "X-Otpscope-Request"

type requestKey struct{}

// withRequest is ctx for a request's statement (RequestHeader).
func withRequest(ctx context.Context) context.Context {
	return context.WithValue(ctx, requestKey{}, true)
}

func forRequest(ctx context.Context) bool {
	v, _ := ctx.Value(requestKey{}).(bool)
	return v
}

// DefaultSettings are the query-level settings every statement of the
// engine runs with, unless WithSetting says otherwise; a clickhouse-go
// connection to a ClickHouse server asks for the same (internal/store).
//
// optimize_and_compare_chain is off: the analyzer pass that adds the
// comparisons an AND chain implies (a < b AND b < 5 adds a < 5) hashes
// every comparison of the query against every other. On the rollups'
// patched reads, whose comparisons are with constants already, it took
// ~40 of ~100 ms of their analysis and added nothing.
//
// join_use_nulls is ClickHouse's default, 0, pinned because the store's
// SQL depends on it: a LEFT JOIN's missing right side reads as the type's
// default (the empty string for an OTP's unlinked journey, 0 for an hour
// never rolled up). A server whose profile sets it to 1 made a live
// /fallback over the 111 M bench database answer 0 journeys, and the
// rollup job would compute hours so.
//
// compile_expressions, compile_aggregate_expressions and
// compile_sort_description are off: ClickHouse compiles an expression with
// LLVM the third time it sees it, within the query that sees it next. A
// rolled-up read's queries are small, so a dashboard's fourth read of a
// window took 200–300 ms instead of ~50 (the queries of that read each
// 60–100 ms longer), and compiled code gains them nothing. At 111 M events
// reads between job runs and the rollup job took as long without it.
//
// distributed_product_mode is global: on a cluster of more than one shard
// every table is Distributed, and the store's IN and JOIN subqueries read
// Distributed tables from queries over Distributed tables, which ClickHouse
// refuses by default ("Double-distributed IN/JOIN subqueries is denied").
// GLOBAL computes such a subquery once, over the whole cluster, and sends
// its result to the shards: right whatever the tables are sharded by (by
// OTP, by hour). On one server, the embedded engine included, it changes
// nothing. deploy/clickhouse/users.d/otpscope.xml gives the same to every
// user of a cluster, Grafana's among them.
//
// max_partitions_per_insert_block is 1000 instead of 100: every table is
// partitioned by month, and a fact may be dated any month from
// events.MinTimestamp (2000) to now — some 330 months, 1000 until 2083. At
// 100, one webhook batch dated across more than 100 months (or the rollup
// job's hours for them) failed with TOO_MANY_PARTS, retried forever as the
// store's ill health: the sink held it back and /readyz failed.
var DefaultSettings = map[string]string{
	"max_partitions_per_insert_block": "1000",
	"distributed_product_mode":        "global",
	"optimize_and_compare_chain":      "0",
	"join_use_nulls":                  "0",
	"compile_expressions":             "0",
	"compile_aggregate_expressions":   "0",
	"compile_sort_description":        "0",
}

// WithSetting applies a ClickHouse query-level setting to every query of the
// engine, e.g. WithSetting("max_threads", "4").
func WithSetting(name, value string) Option {
	return func(o *options) {
		if o.settings == nil {
			o.settings = map[string]string{}
		}
		o.settings[name] = value
	}
}

// open is the one Engine of the process, if any.
var open struct {
	mu     sync.Mutex
	engine *Engine
}

// Engine is the embedded ClickHouse engine serving one data directory.
// It is safe for concurrent use. The owner's read-only statements run side
// by side on their own connections; every other statement takes the gate
// and runs one at a time.
type Engine struct {
	dir  string
	args []string // the engine's command line, less the connections' own
	// settings are the query-level settings in args: a statement asking
	// for one of them as it is needs no SET.
	settings map[string]string
	logger   *slog.Logger
	library  string

	// gate serializes access to rw and ro, lets waiters give up when their
	// context ends and lets the owner's statements go before guests'. A
	// chDB connection runs one statement at a time, and the engine itself
	// parallelizes each query.
	gate   gate
	rw     *conn // owner connection: may write
	ro     *conn // readonly=1 connection, with the reader limits
	limits Limits

	// readers holds the owner's read connections (readonly=2) not in use:
	// a statement takes one and gives it back. chDB runs statements of
	// different connections in parallel; each connection keeps its own
	// session (USE, SET). Close takes all of them (the channel's capacity)
	// back before it closes them, so it waits for the reads running.
	readers chan *conn
	// requests bounds the readers the owner's statements for a request
	// (RequestHeader) hold at once to DefaultOwnerReaders: the one reader
	// more is kept for the process's own statements.
	requests chan struct{}

	closeOnce sync.Once
	closed    bool // guarded by gate
}

// Open loads the engine library (once per process) and opens the data
// directory dir, creating it if needed. Only one Engine may be open in a
// process at a time.
func Open(dir string, opts ...Option) (*Engine, error) {
	o := options{logger: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(&o)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open chdb %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("open chdb %s: %w", abs, err)
	}
	lib, err := loadLibrary(o.library)
	if err != nil {
		return nil, fmt.Errorf("open chdb %s: %w", abs, err)
	}

	open.mu.Lock()
	defer open.mu.Unlock()
	if open.engine != nil {
		return nil, fmt.Errorf("open chdb %s: %w (data directory %s)", abs, ErrEngineInUse, open.engine.dir)
	}

	settings := maps.Clone(DefaultSettings)
	maps.Copy(settings, o.settings)
	args := []string{"--path=" + abs}
	if o.backupDir != "" {
		backups, err := filepath.Abs(o.backupDir)
		if err == nil {
			err = os.MkdirAll(backups, 0o750)
		}
		if err != nil {
			return nil, fmt.Errorf("open chdb %s: backups: %w", abs, err)
		}
		args = append(args, "--backups.allowed_path="+backups)
	}
	for _, k := range slices.Sorted(maps.Keys(settings)) {
		args = append(args, fmt.Sprintf("--%s=%s", k, settings[k]))
	}
	mem := Memory{Source: "the engine's own reading"}
	if o.memory != nil {
		mem = *o.memory
	} else if m, err := ProcessMemory(); err == nil {
		mem = m
	} else {
		o.logger.Warn("the embedded engine sizes its memory itself", "err", err)
	}
	if mem.Bytes > 0 {
		args = append(args, memoryArgs(mem)...)
	}
	limits := DefaultLimits
	if o.limits != nil {
		limits = *o.limits
	}
	e := &Engine{
		dir:      abs,
		args:     args,
		settings: settings,
		logger:   o.logger,
		library:  lib,
		limits:   limits,
		readers:  make(chan *conn, DefaultOwnerReaders()+1),
		requests: make(chan struct{}, DefaultOwnerReaders()),
	}
	if err := e.connect(); err != nil {
		return nil, fmt.Errorf("open chdb %s: %w", abs, err)
	}
	open.engine = e
	// The version is the engine's own answer: the library's chdb_version()
	// names the chDB package (26.7.3), not the ClickHouse it runs (26.7.2.1).
	version := "unknown"
	if out, err := e.Query(context.Background(), "SELECT version()", "TabSeparated"); err == nil {
		version = strings.TrimSpace(string(out))
	}
	o.logger.Info("embedded ClickHouse engine open", slog.String("dir", abs), slog.String("library", lib),
		slog.String("clickhouse", version), slog.String("chdb_package", LibraryVersion()),
		slog.Uint64("process_memory_mib", mem.Bytes>>20), slog.String("process_memory_from", mem.Source),
		slog.Uint64("engine_max_memory_mib", mem.engine()>>20))
	return e, nil
}

// connect boots the engine through its connections: the owner's, the
// read-only one and the owner's readers.
func (e *Engine) connect() error {
	removeUnreadableMutations(e.dir, e.logger)
	rw, restored, err := connect(e.args)
	if err != nil {
		return err
	}
	if restored > 0 {
		e.logger.Debug("restored Go signal handlers after chdb_connect", slog.Int("signals", restored))
	}
	// The second connection shares the booted engine. With readonly=1 the
	// engine itself refuses writes, settings changes and (except in
	// DESCRIBE) table functions such as file() and url(); its own settings
	// bound every query, and readonly=1 keeps clients from lifting them.
	roArgs := append(append(e.args[:len(e.args):len(e.args)], "--readonly=1"), e.limits.args()...)
	ro, _, err := connect(roArgs)
	if err != nil {
		rw.close()
		return fmt.Errorf("read-only connection: %w", err)
	}
	// The owner's readers: readonly=2 lets a statement's settings be SET
	// (max_query_size for a long list) while the engine refuses writes.
	readArgs := append(e.args[:len(e.args):len(e.args)], "--readonly=2")
	readers := make([]*conn, 0, cap(e.readers))
	for range cap(e.readers) {
		c, _, err := connect(readArgs)
		if err != nil {
			for _, c := range readers {
				c.close()
			}
			ro.close()
			rw.close()
			return fmt.Errorf("reader connection: %w", err)
		}
		readers = append(readers, c)
	}
	e.rw, e.ro = rw, ro
	for _, c := range readers {
		e.readers <- c
	}
	return nil
}

// Restart shuts the engine down and boots it again on the same directory,
// as a restart of the process would, while statements wait for it: running
// ones finish first, waiting ones run on the booted engine. Booting is
// where ClickHouse sets aside the parts it cannot read (moved to the
// table's detached/ directory) and brings back the parts a broken merge
// had replaced, while it still keeps them; store.RecoverParts restarts it
// for that. Should booting fail, the engine is closed.
func (e *Engine) Restart() error {
	old := make([]*conn, 0, cap(e.readers))
	for range cap(e.readers) {
		c, ok := <-e.readers
		if !ok {
			return ErrClosed
		}
		old = append(old, c)
	}
	_ = e.gate.lock(context.Background(), false)
	defer e.gate.unlock()
	for _, c := range old {
		c.close()
	}
	e.ro.close()
	e.rw.close()
	if err := e.connect(); err != nil {
		e.closed = true
		close(e.readers)
		return fmt.Errorf("restart chdb %s: %w", e.dir, err)
	}
	e.logger.Info("embedded ClickHouse engine restarted", slog.String("dir", e.dir))
	return nil
}

// Dir is the engine's data directory.
func (e *Engine) Dir() string { return e.dir }

// ReaderLimits are the limits of the read-only connection.
func (e *Engine) ReaderLimits() Limits { return e.limits }

// acquire takes the engine for one statement or a short sequence of them;
// a guest waits while owner statements wait.
func (e *Engine) acquire(ctx context.Context, guest bool) error {
	if err := e.gate.lock(ctx, guest); err != nil {
		return err
	}
	if e.closed {
		e.gate.unlock()
		return ErrClosed
	}
	return nil
}

func (e *Engine) release() {
	if n := signalsReplaced(); n > 0 {
		e.logger.Warn("the engine replaced Go's signal handlers; restored them", slog.Int("signals", n))
	}
	e.gate.unlock()
}

// Close closes the engine's connections, which shuts the engine down. The
// library stays loaded; a later Open boots the engine again.
func (e *Engine) Close() error {
	e.closeOnce.Do(func() {
		for range cap(e.readers) {
			c, ok := <-e.readers
			if !ok { // a failed Restart closed the engine
				break
			}
			c.close()
		}
		_ = e.gate.lock(context.Background(), false)
		if !e.closed {
			close(e.readers) // a statement still asking gets ErrClosed
		}
		e.closed = true
		e.ro.close()
		e.rw.close()
		e.gate.unlock()
		open.mu.Lock()
		if open.engine == e {
			open.engine = nil
		}
		open.mu.Unlock()
		e.logger.Info("embedded ClickHouse engine closed", slog.String("dir", e.dir))
	})
	return nil
}

// Query runs sql and returns its output in format (for example "Native",
// "TabSeparated", "JSONEachRow"). A FORMAT clause in sql takes precedence.
// The query itself cannot be interrupted once it runs: ctx only bounds the
// wait for the engine. Use the max_execution_time setting to bound a query.
func (e *Engine) Query(ctx context.Context, sql, format string) ([]byte, error) {
	res, err := e.Exec(ctx, Statement{SQL: sql, Format: format})
	if err != nil {
		return nil, err
	}
	return res.Data, nil
}

// Statement is one request to the engine.
type Statement struct {
	SQL    string
	Format string
	// Params binds {name:Type} placeholders in SQL on the engine side.
	Params map[string]string
	// Settings apply to this statement only.
	Settings map[string]string
	// Database is the current database for the statement; empty means
	// "default".
	Database string
	// ReadOnly runs the statement on a connection with readonly=1, so the
	// engine refuses anything that writes, changes settings (Settings must
	// be empty) or reads through table functions such as file(), and bounds
	// it by the reader limits.
	ReadOnly bool
	// Guest marks a statement of a client other than the owner: it waits
	// while statements without Guest wait.
	Guest bool

	// class is SQL's class when the caller asked the parser already
	// (classified): parsing a large statement again costs milliseconds
	// (5 ms for 220 kB, a patched read's list of OTPs).
	class      QueryClass
	classified bool
}

// Result is what a statement produced.
type Result struct {
	Data        []byte
	RowsWritten uint64
}

// Exec runs one statement.
func (e *Engine) Exec(ctx context.Context, st Statement) (Result, error) {
	res, err := e.run(ctx, "query", st, func(c *conn) (rawResult, error) {
		return c.query(st.SQL, st.Format, st.Params), nil
	})
	if err != nil {
		return Result{}, err
	}
	return Result{Data: res.data, RowsWritten: res.rowsWritten}, nil
}

// Insert runs stmt, an INSERT without FORMAT clause or data such as
// "INSERT INTO t (a, b)", with the data read from r in format. Binary data
// never passes through the query text, which chDB cuts at the first
// newline.
func (e *Engine) Insert(ctx context.Context, st Statement, r io.Reader) (Result, error) {
	res, err := e.run(ctx, "insert", st, func(c *conn) (rawResult, error) {
		return e.insert(ctx, c, st, r)
	})
	if err != nil {
		return Result{}, err
	}
	return Result{RowsWritten: res.rowsWritten}, nil
}

// run takes the engine for st and calls fn with the connection st asks for
// (read-only or not) inside st's session. An error, fn's or the engine's,
// comes back wrapped in op.
func (e *Engine) run(ctx context.Context, op string, st Statement, fn func(*conn) (rawResult, error)) (rawResult, error) {
	var c *conn
	if e.ownerRead(st) {
		var err error
		if c, err = e.takeReader(ctx); err != nil {
			return rawResult{}, fmt.Errorf("%s: %w", op, err)
		}
		defer e.giveReader(ctx, c)
	} else {
		if err := e.acquire(ctx, st.Guest); err != nil {
			return rawResult{}, fmt.Errorf("%s: %w", op, err)
		}
		defer e.release()
		c = e.rw
		if st.ReadOnly {
			c = e.ro
		}
	}
	var res rawResult
	err := e.withSession(c, st, func() error {
		var err error
		res, err = fn(c)
		return err
	})
	if err != nil {
		return rawResult{}, fmt.Errorf("%s: %w", op, err)
	}
	if res.hasError {
		return rawResult{}, fmt.Errorf("%s: %w", op, newException(res.errorMessage))
	}
	return res, nil
}

// ownerRead reports whether st runs on one of the owner's readers: a
// statement of the owner that the parser found read-only, without engine-side
// parameters (chDB keeps a query's parameters where another connection's
// query may overwrite them, so those take the gate). Guests keep the gate
// and their limits.
func (e *Engine) ownerRead(st Statement) bool {
	return !st.Guest && !st.ReadOnly && st.classified && st.class == ClassReadOnly && len(st.Params) == 0
}

// takeReader waits, while ctx lasts, for a reader connection; for a
// request's statement (withRequest), first for one of the requests' places.
func (e *Engine) takeReader(ctx context.Context) (*conn, error) {
	request := forRequest(ctx)
	if request {
		select {
		case e.requests <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	select {
	case c, ok := <-e.readers:
		if ok {
			return c, nil
		}
		if request {
			<-e.requests
		}
		return nil, ErrClosed
	case <-ctx.Done():
		if request {
			<-e.requests
		}
		return nil, ctx.Err()
	}
}

// giveReader gives back c, taken under ctx.
func (e *Engine) giveReader(ctx context.Context, c *conn) {
	if n := signalsReplaced(); n > 0 {
		e.logger.Warn("the engine replaced Go's signal handlers; restored them", slog.Int("signals", n))
	}
	e.readers <- c
	if forRequest(ctx) {
		<-e.requests
	}
}

// insertChunk is how much of the body goes to the engine per append.
const insertChunk = 1 << 20

func (e *Engine) insert(ctx context.Context, c *conn, st Statement, r io.Reader) (rawResult, error) {
	r = &stickyReader{r: r}
	buf := make([]byte, insertChunk)
	read := func() ([]byte, error) {
		if err := ctx.Err(); err != nil {
			// Returning an error abandons the stream: nothing is committed.
			return nil, err
		}
		n, err := io.ReadFull(r, buf)
		switch {
		case n > 0:
			return buf[:n], nil
		case err == nil, errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return nil, nil
		default:
			return nil, fmt.Errorf("read insert data: %w", err)
		}
	}
	res, err := c.streamInsert(st.SQL, st.Format, read)
	if errors.Is(err, errStreamInsertUnsupported) {
		return e.insertFromFile(c, st, r)
	}
	return res, err
}

// stickyReader keeps returning the first error its reader returned. Some
// readers do not: ch-go's decompressing reader, read again after the end of
// its input, replays its last block, which would feed the engine an endless
// insert.
type stickyReader struct {
	r   io.Reader
	err error
}

func (s *stickyReader) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.r.Read(p)
	s.err = err
	return n, err
}

// insertFromFile is the fallback for libraries without streaming inserts:
// the body goes to a file under the data directory and the engine reads it
// with INSERT ... FROM INFILE.
func (e *Engine) insertFromFile(c *conn, st Statement, r io.Reader) (rawResult, error) {
	tmp, err := os.CreateTemp(e.dir, ".insert-*")
	if err != nil {
		return rawResult{}, fmt.Errorf("stage insert data: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, r); err != nil {
		tmp.Close()
		return rawResult{}, fmt.Errorf("stage insert data: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return rawResult{}, fmt.Errorf("stage insert data: %w", err)
	}
	sql := fmt.Sprintf("%s FROM INFILE %s FORMAT %s", st.SQL, quoteString(tmp.Name()), st.Format)
	return c.query(sql, "", nil), nil
}

// withSession applies a statement's database and settings to the
// connection's session around fn and takes them back afterwards: a chDB
// connection is one long session, while every HTTP request is its own.
func (e *Engine) withSession(c *conn, st Statement, fn func() error) error {
	var undo []string
	class, ok := st.class, st.classified
	if !ok {
		class, _, ok = c.classify(st.SQL)
	}
	if ok && class == ClassControl {
		// A USE in the statement would outlive the request.
		undo = append(undo, "USE default")
	}
	if st.Database != "" && st.Database != "default" {
		if res := c.query("USE "+quoteIdent(st.Database), "", nil); res.hasError {
			return fmt.Errorf("use database %s: %w", st.Database, newException(res.errorMessage))
		}
		undo = append(undo, "USE default")
	}
	defer func() {
		for _, q := range undo {
			if res := c.query(q, "", nil); res.hasError {
				e.logger.Error("reset session", slog.String("sql", q), slog.String("err", res.errorMessage))
			}
		}
	}()
	for name, value := range st.Settings {
		own, isOwn := e.settings[name]
		if isOwn && own == value {
			continue // the connection's own: two round trips saved
		}
		if !isIdent(name) {
			return fmt.Errorf("set %q: %w", name, newException(fmt.Sprintf("Code: 115. DB::Exception: Unknown setting '%s'. (UNKNOWN_SETTING)", name)))
		}
		if res := c.query(fmt.Sprintf("SET %s = %s", name, quoteString(value)), "", nil); res.hasError {
			return fmt.Errorf("set %s: %w", name, newException(res.errorMessage))
		}
		// Back to the engine's value: DEFAULT is ClickHouse's own.
		reset := "DEFAULT"
		if isOwn {
			reset = quoteString(own)
		}
		undo = append(undo, fmt.Sprintf("SET %s = %s", name, reset))
	}
	return fn()
}

// Classify asks the engine's parser what sql would do, without running it.
// statements is the number of executable statements in sql. Parsing runs
// nothing: a reader does it without the gate, so a read is not held up by
// a write only to be classified.
func (e *Engine) Classify(ctx context.Context, sql string) (class QueryClass, statements int, err error) {
	c, err := e.takeReader(ctx)
	if err != nil {
		return ClassUnknown, 0, fmt.Errorf("classify: %w", err)
	}
	defer e.giveReader(ctx, c)
	class, n, ok := c.classify(sql)
	if !ok {
		return ClassUnknown, 0, errors.New("classify: chdb_classify_query_n is not available in this libchdb")
	}
	return class, n, nil
}

// isIdent reports whether s is a plain identifier, as setting names are.
func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// quoteString quotes s as a ClickHouse string literal.
func quoteString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// quoteIdent quotes s as a ClickHouse identifier.
func quoteIdent(s string) string {
	return "`" + strings.NewReplacer(`\`, `\\`, "`", "\\`").Replace(s) + "`"
}
