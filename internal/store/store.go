// Package store is otpscope's ClickHouse store, over clickhouse-go/v2 only: it
// opens ClickHouse from a DSN (clickhouse:// native or http:// — a server or a
// cluster), or hosts the embedded engine (package chdb) when there is none;
// applies the migrations of schema/; inserts batches of rows decoded from NATS
// messages; and answers the analytics queries, reading whole hours from the
// hourly rollups it keeps.
package store

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/otpscope/otpscope/internal/backoff"
	"github.com/otpscope/otpscope/internal/chdb"
	"github.com/otpscope/otpscope/internal/flagenv"
	"github.com/otpscope/otpscope/internal/httpurl"
)

// Config says where ClickHouse is.
type Config struct {
	// DSN of a ClickHouse server: clickhouse://user:pass@host:9000/db or
	// http://user:pass@host:8123/db. Empty means the process hosts the embedded
	// engine under DataDir/clickhouse and serves it on Listen.
	DSN string
	// Listen is the embedded engine's ClickHouse HTTP endpoint.
	Listen string
	// ReaderUser and ReaderPassword are what Grafana and other readers of
	// the embedded endpoint log in with. Without a password the endpoint
	// reads for anyone who reaches it, so Listen must then be loopback.
	ReaderUser     string
	ReaderPassword string
	// ReaderLimits bound every reader query on the embedded endpoint; nil
	// means chdb.DefaultLimits. ReaderQueue is how many reader requests may
	// wait while one runs (0: chdb.DefaultGuestQueue; negative: none).
	ReaderLimits *chdb.Limits
	ReaderQueue  int
	// DataDir is the process's one data directory (--data-dir, registered by
	// the command, shared with the embedded NATS server).
	DataDir string
	// Cluster, when set, applies the cluster variant of the schema
	// (Replicated*MergeTree ON CLUSTER, plus Distributed tables).
	Cluster string
	// ObserveQuery, when set, is told of every query the embedded endpoint
	// serves (chdb.HandlerConfig.Observe), for metrics.
	ObserveQuery func(guest bool, outcome string, d time.Duration)
	// Retention, when set, is applied to the tables' TTLs at Open; nil
	// leaves them as the schema made them.
	Retention *RetentionConfig
	// BackupDir is where the embedded engine keeps backups (Backup);
	// empty means DataDir/backups.
	BackupDir string
	// ListenTCP binds the embedded endpoint (chdb.Config.ListenTCP).
	ListenTCP func(addr string) (net.Listener, error)

	// embeddedGiven lists the embedded engine's flags that were set:
	// beside --clickhouse-dsn they do nothing, and Open says so.
	embeddedGiven func() []string
}

// backupDir is where the embedded engine keeps backups.
func (c *Config) backupDir() string {
	if c.BackupDir != "" {
		return c.BackupDir
	}
	return filepath.Join(c.DataDir, "backups")
}

// DefaultListen is the embedded engine's endpoint, where Grafana connects.
const DefaultListen = chdb.DefaultAddr

// RegisterFlags registers the ClickHouse flags on fs (not --data-dir).
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.DSN, "clickhouse-dsn", "", "external ClickHouse (clickhouse://… or http://…); empty hosts the embedded engine")
	fs.StringVar(&c.Listen, "clickhouse-listen", DefaultListen, "the embedded engine's ClickHouse HTTP endpoint")
	fs.StringVar(&c.ReaderUser, "clickhouse-reader-user", chdb.DefaultReaderUser, "the user readers (Grafana) log in to the embedded endpoint with, when --clickhouse-reader-password is set")
	fs.StringVar(&c.ReaderPassword, "clickhouse-reader-password", "", "readers' password on the embedded endpoint; when set, anonymous readers are refused; required for a --clickhouse-listen beyond loopback")
	if c.ReaderLimits == nil {
		c.ReaderLimits = &chdb.Limits{}
	}
	l, d := c.ReaderLimits, chdb.DefaultLimits
	fs.DurationVar(&l.MaxExecutionTime, "clickhouse-reader-timeout", d.MaxExecutionTime, "a reader's query on the embedded endpoint stops after this long (max_execution_time; 0 = no limit)")
	fs.Uint64Var(&l.MaxMemoryUsage, "clickhouse-reader-max-memory", d.MaxMemoryUsage, "bytes of memory a reader's query may use (max_memory_usage; 0 = no limit)")
	fs.Uint64Var(&l.MaxResultRows, "clickhouse-reader-max-result-rows", d.MaxResultRows, "rows a reader's query may return (max_result_rows; 0 = no limit)")
	fs.Uint64Var(&l.MaxResultBytes, "clickhouse-reader-max-result-bytes", d.MaxResultBytes, "bytes a reader's query may return (max_result_bytes; 0 = no limit)")
	fs.IntVar(&c.ReaderQueue, "clickhouse-reader-queue", chdb.DefaultGuestQueue, "reader requests that may wait while one runs; more get 503 at once")
	fs.StringVar(&c.BackupDir, "backup-dir", "", "where the embedded engine writes backups (POST /api/v1/backups) and otpscope restore reads them; empty: <data-dir>/backups (an external server writes under its own backups.allowed_path)")
	fs.StringVar(&c.Cluster, "clickhouse-cluster", "", "ClickHouse cluster name for the replicated schema (external clusters only)")
	c.embeddedGiven = flagenv.TrackGiven(fs, "clickhouse-listen", "clickhouse-reader-user", "clickhouse-reader-password", "clickhouse-reader-timeout",
		"clickhouse-reader-max-memory", "clickhouse-reader-max-result-rows", "clickhouse-reader-max-result-bytes", "clickhouse-reader-queue")
	if c.Retention == nil {
		c.Retention = &RetentionConfig{}
	}
	c.Retention.registerFlags(fs)
}

// Embedded reports whether the process hosts the engine itself.
func (c *Config) Embedded() bool { return c.DSN == "" }

// Validate reports the first configuration error.
// CheckDSN checks a --clickhouse-dsn: clickhouse-go takes any scheme but
// http and https for its native protocol, so mysql://… would only fail
// as a connection that never answers.
func CheckDSN(dsn string) error {
	if _, err := clickhouse.ParseDSN(dsn); err != nil {
		return fmt.Errorf("clickhouse-dsn: %w", err)
	}
	switch scheme, _, _ := strings.Cut(dsn, "://"); scheme {
	case "clickhouse", "tcp", "http", "https":
		return nil
	default:
		return fmt.Errorf("clickhouse-dsn: scheme %.32q: want clickhouse://, tcp://, http:// or https://", scheme)
	}
}

func (c *Config) Validate() error {
	if c.Retention != nil {
		if err := c.Retention.Validate(); err != nil {
			return err
		}
	}
	if !c.Embedded() {
		return CheckDSN(c.DSN)
	}
	if c.Cluster != "" {
		return errors.New("clickhouse-cluster needs an external --clickhouse-dsn")
	}
	if c.DataDir == "" {
		return errors.New("data-dir is required for the embedded ClickHouse engine")
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("clickhouse-listen %q: %w", c.Listen, err)
	}
	if c.ReaderPassword != "" && c.ReaderUser == "" {
		return errors.New("clickhouse-reader-user is empty, and --clickhouse-reader-password is set: name the user readers log in as (every login failed)")
	}
	if l := c.ReaderLimits; l != nil && l.MaxExecutionTime < 0 {
		return fmt.Errorf("clickhouse-reader-timeout %v is negative", l.MaxExecutionTime)
	}
	if c.ReaderQueue < 0 {
		return fmt.Errorf("clickhouse-reader-queue %d is negative", c.ReaderQueue)
	}
	if !httpurl.Loopback(c.Listen) && c.ReaderPassword == "" {
		return fmt.Errorf("clickhouse-listen %s is not loopback: set --clickhouse-reader-password (anyone who reaches it could read every table)", c.Listen)
	}
	// A file there fails the start only after clickhouse/ is made.
	if fi, err := os.Stat(c.backupDir()); err == nil && !fi.IsDir() {
		return fmt.Errorf("backup-dir %s is not a directory: want a directory, or a path not yet made", c.backupDir())
	}
	return nil
}

// DB is ClickHouse through two connection pools, the API requests' and the
// process's own (pools.go), and the embedded engine when the process hosts
// it.
type DB struct {
	conn     driver.Conn // *pools
	cluster  string
	embedded *chdb.Instance // nil with an external ClickHouse
	logger   *slog.Logger
	// reader: the connection may not change settings (ConnectReader).
	reader bool
	// restartEngine restarts the embedded engine (nil with a server), for
	// RecoverParts.
	restartEngine func() error
	// rollupClock, when set, replaces the server's clock for the rollups'
	// versions (see rollupVersion); tests set it.
	rollupClock func() time.Time
	// settles is true on a single server opened by Open: rollup runs wait
	// for the inserts that started before them, and the slack is short
	// (settle.go).
	settles bool
	// values keeps the rollups' latency values read (rollup_values.go).
	values valuesCache
	// backupDir is the embedded engine's backup directory ("" with a
	// server, whose own it is): Restore looks there first.
	backupDir string
	// factsKept is how long the facts an hour is computed from are kept
	// (readFactsKept, at connect); 0 forever. Older hours are frozen.
	factsKept time.Duration
}

// Open opens ClickHouse as cfg says — hosting the embedded engine when there
// is no DSN — and applies the schema: what the process that owns the store
// (the sink's) does.
func Open(ctx context.Context, cfg Config, logger *slog.Logger) (db *DB, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var opts *clickhouse.Options
	var embedded *chdb.Instance
	if cfg.embeddedGiven != nil && !cfg.Embedded() {
		if names := cfg.embeddedGiven(); len(names) > 0 {
			logger.Warn("settings of the embedded ClickHouse engine do nothing beside --clickhouse-dsn: the server's own users and settings decide", "flags", "--"+strings.Join(names, ", --"))
		}
	}
	if cfg.Embedded() {
		embedded, err = chdb.Start(chdb.Config{
			Dir:            filepath.Join(cfg.DataDir, "clickhouse"),
			Addr:           cfg.Listen,
			ReaderUser:     cfg.ReaderUser,
			ReaderPassword: cfg.ReaderPassword,
			Limits:         cfg.ReaderLimits,
			GuestQueue:     cfg.ReaderQueue,
			Logger:         logger,
			Observe:        cfg.ObserveQuery,
			BackupDir:      cfg.backupDir(),
			ListenTCP:      cfg.ListenTCP,
		})
		if err != nil {
			return nil, err
		}
		user, password := embedded.Credentials()
		opts = &clickhouse.Options{
			Protocol: clickhouse.HTTP,
			Addr:     []string{embedded.Addr()},
			Auth:     clickhouse.Auth{Username: user, Password: password},
		}
	} else if opts, err = clickhouse.ParseDSN(cfg.DSN); err != nil {
		return nil, fmt.Errorf("clickhouse-dsn: %w", err)
	}
	askEngineSettings(opts)
	if db, err = connect(ctx, opts, logger); err != nil {
		if embedded != nil {
			embedded.Close()
		}
		return nil, err
	}
	db.cluster, db.embedded = cfg.Cluster, embedded
	if embedded != nil {
		db.restartEngine = embedded.Engine().Restart
		db.backupDir = cfg.backupDir()
	}
	if err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate: %w", err)
	}
	db.settles = cfg.Cluster == "" && db.singleServer(ctx)
	if cfg.Retention != nil {
		_, err = db.ApplyRetention(ctx, *cfg.Retention) // reads factsKept too
	} else {
		db.factsKept, err = db.readFactsKept(ctx)
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// askEngineSettings has the owner's queries run with the embedded engine's
// settings (chdb.DefaultSettings) on any server, unless the DSN chose
// otherwise; the engine's endpoint skips them as its own. Not Connect's
// readers: a read-only server user may not change settings.
func askEngineSettings(opts *clickhouse.Options) {
	if opts.Settings == nil {
		opts.Settings = clickhouse.Settings{}
	}
	for name, value := range chdb.DefaultSettings {
		if _, chosen := opts.Settings[name]; !chosen {
			opts.Settings[name] = value
		}
	}
}

// Connect connects to the ClickHouse at dsn without applying the schema: a
// reader's connection (`reporter report`, tests, benchmarks).
func Connect(ctx context.Context, dsn string, logger *slog.Logger) (*DB, error) {
	opts, err := clickhouse.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("clickhouse dsn: %w", err)
	}
	return connect(ctx, opts, logger)
}

// ConnectReader is Connect for a reader that may not change settings: a
// guest of the embedded endpoint (`reporter report`) or a read-only server
// user. It names the OTPs touched since the rollup job's last run as a
// list only up to what fits in ClickHouse's default max_query_size (more
// by a subquery), where Connect's raises the setting for up to 20,000.
func ConnectReader(ctx context.Context, dsn string, logger *slog.Logger) (*DB, error) {
	db, err := Connect(ctx, dsn, logger)
	if err != nil {
		return nil, err
	}
	db.reader = true
	if db.factsKept, err = db.readFactsKept(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// ConnectEngine is Connect to the endpoint of engine, an engine the process
// hosts itself (tests): RecoverParts may restart it as it restarts the
// engine Open hosts. Close leaves the engine open.
func ConnectEngine(ctx context.Context, dsn string, engine *chdb.Engine, logger *slog.Logger) (*DB, error) {
	db, err := Connect(ctx, dsn, logger)
	if err != nil {
		return nil, err
	}
	db.restartEngine = engine.Restart
	return db, nil
}

// connect opens the pools (pools) and waits (while ctx lasts) until
// ClickHouse answers a ping: a server starting next to us is routine.
func connect(ctx context.Context, opts *clickhouse.Options, logger *slog.Logger) (*DB, error) {
	if opts.DialTimeout == 0 {
		opts.DialTimeout = 5 * time.Second
	}
	own, requests := *opts, *opts
	own.MaxOpenConns = ownConns
	requests.MaxOpenConns, requests.MaxIdleConns = RequestConns, requestsIdle
	requests.DialTimeout = max(opts.DialTimeout, requestsWait)
	// The embedded engine keeps a reader from these (chdb.RequestHeader);
	// a server ignores the header.
	requests.HttpHeaders = maps.Clone(opts.HttpHeaders)
	if requests.HttpHeaders == nil {
		requests.HttpHeaders = map[string]string{}
	}
	requests.HttpHeaders[chdb.RequestHeader] = "1"
	ownConn, err := clickhouse.Open(&own)
	if err != nil {
		return nil, fmt.Errorf("open clickhouse: %w", err)
	}
	requestsConn, err := clickhouse.Open(&requests)
	if err != nil {
		ownConn.Close()
		return nil, fmt.Errorf("open clickhouse: %w", err)
	}
	conn := &pools{Conn: ownConn, requests: requestsConn}
	err = backoff.Retry(ctx, backoff.Policy{First: 100 * time.Millisecond, Max: 3 * time.Second}, func() error {
		err := conn.Ping(ctx)
		var ex *clickhouse.Exception
		if errors.As(err, &ex) {
			return backoff.Permanent(err) // it answered: no point waiting
		}
		if err != nil {
			logger.Warn("clickhouse not reachable yet; retrying", "err", err)
		}
		return err
	})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("ping clickhouse: %w", err)
	}
	return &DB{conn: conn, logger: logger}, nil
}

// Conn is the underlying clickhouse-go connection: the pools, each query on
// the one its context says (ForRequest).
func (db *DB) Conn() driver.Conn { return db.conn }

// localTarget names table for a statement that changes its rows or its
// definition (DELETE FROM, ALTER TABLE): on a cluster, where the
// Distributed table refuses those, its *_local tables on every node.
func (db *DB) localTarget(table string) string {
	if db.cluster == "" {
		return "`" + table + "`"
	}
	return "`" + table + "_local` ON CLUSTER `" + db.cluster + "`"
}

// Embedded is the hosted engine, or nil with an external ClickHouse.
func (db *DB) Embedded() *chdb.Instance { return db.embedded }

// Ready reports whether ClickHouse answers, pinging on the process's own
// pool: API requests, however many, leave it a connection.
func (db *DB) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return db.conn.Ping(ctx)
}

// Close closes the pool, then the hosted engine.
func (db *DB) Close() error {
	err := db.conn.Close()
	if db.embedded != nil {
		if eerr := db.embedded.Close(); err == nil {
			err = eerr
		}
	}
	return err
}

// settingsKey holds the ClickHouse settings the store has put in a context,
// so that adding one keeps the others: clickhouse.WithSettings replaces the
// whole set (the rollup job's inserts on a cluster need
// distributed_foreground_insert and, for a touched list, max_query_size).
type settingsKey struct{}

// withSettings is ctx with s added to the settings the store gave it.
func withSettings(ctx context.Context, s clickhouse.Settings) context.Context {
	merged := clickhouse.Settings{}
	if prev, ok := ctx.Value(settingsKey{}).(clickhouse.Settings); ok {
		maps.Copy(merged, prev)
	}
	maps.Copy(merged, s)
	return clickhouse.Context(context.WithValue(ctx, settingsKey{}, merged), clickhouse.WithSettings(merged))
}
