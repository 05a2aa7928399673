// Package chdb embeds the ClickHouse engine (chDB's libchdb.so) in the
// process and serves it over the subset of ClickHouse's HTTP interface that
// clickhouse-go/v2 (Protocol: clickhouse.HTTP), Grafana's ClickHouse plugin
// and curl use, so that the sink's one clickhouse-go code path works against
// a ClickHouse server and against the embedded engine alike.
//
// # The library
//
// libchdb.so (566 MB, from the npm package @chdb/lib-linux-x64-gnu; `make
// setup` fetches it) is loaded at run time with dlopen, so every binary
// builds and runs without it. Open looks for it at the WithLibrary path, then
// at $OTPSCOPE_CHDB_LIB, then at .cache/chdb/libchdb.so in the working
// directory or any parent, then as plain libchdb.so through the loader path;
// ErrLibraryNotFound lists what was tried.
//
// The library keeps global state: one engine per process, bound to one data
// directory. Open fails with ErrEngineInUse while an Engine is open. Closing
// the Engine shuts the engine down; opening again boots it again (chDB warns
// that doing so many times in one process is not safe on every platform), so
// a process should open one Engine and keep it.
//
// chDB installs SIGSEGV/SIGBUS/... handlers that make a Go panic hang the
// process for minutes. Open disables them with
// chdb_set_signal_handlers_enabled(0) before the first connection, saves the
// dispositions of signals 1..64 before the library is touched and restores
// any that changed after dlopen, after each connect and close, and, checked
// by the SIGSEGV handler, after each statement.
//
// # Statements
//
// A chDB connection runs one statement at a time; statements of different
// connections run in parallel, each with its own session. The owner's
// read-only statements (as the engine's parser classifies them, without
// engine-side parameters) take one of a few reader connections (readonly=2,
// DefaultOwnerReaders: one per core, at least two, and one more that the
// owner's statements for a request, RequestHeader, never take, so that a
// burst of requests leaves the process's own a reader) and run side by side:
// with chDB 26.7 a read over the rollups spends 35–40 ms analyzing and
// planning on one thread whatever its data, and it no longer waits behind
// a sink insert, a rollup job statement or a guest's query. Every other
// statement — writes, settings, guests' queries — takes the gate and runs
// one at a time. A running statement cannot
// be interrupted: a context only bounds the wait for the engine (and an
// insert stops between 1 MiB chunks). Use the max_execution_time setting to
// bound a query. A query that fails after writing part of its result leaves
// that part in the connection, where chDB 26.7 puts it in front of the next
// query's result; the Engine drains it with a throwaway statement after
// every failure.
//
// chDB treats query text as a script and cuts inline data at the first
// newline, so INSERT data never travels in the query text: Insert streams it
// through chdb_stream_insert (or, with older libraries, a file under the data
// directory read with INSERT ... FROM INFILE).
//
// The engine's connection is one long session while every HTTP request is
// its own: a statement's database and settings are applied before it
// (USE, SET) and taken back after it, to the engine's own values
// (DefaultSettings and WithSetting's, set once when it boots; a statement
// asking for one of those as it is sets nothing).
//
// # The HTTP endpoint
//
// Handler answers /ping and GET / with "Ok.\n", and queries at / by GET or
// POST: the query in the query URL parameter and/or the body, data for an
// INSERT after it; database, default_format, query_id, param_<name> (bound by
// the engine), settings as other URL parameters, X-ClickHouse-User/Key or
// basic auth or user/password parameters, X-ClickHouse-Format and
// X-ClickHouse-Database headers; gzip or deflate request bodies;
// ClickHouse's compressed framing (LZ4, ZSTD, with CityHash128 checksums) for
// decompress=1 request bodies and compress=1 responses; gzip responses with
// enable_http_compression=1.
//
// chDB writes the Native format as for protocol revision 0. clickhouse-go
// announces its revision in client_protocol_version and reads blocks with
// block info and a per-column serialization byte, so Native results are
// re-encoded for that revision with the driver's own column codecs. chDB
// writes nothing for an empty result; the endpoint sends a header block with
// the columns from DESCRIBE (query), as a server does. Other formats pass
// through unchanged.
//
// Errors are answered as ClickHouse does: a 4xx/5xx status by error code, the
// code in X-ClickHouse-Exception-Code and "Code: N. DB::Exception: ..." as
// the body, which clickhouse-go turns into *clickhouse.Exception.
//
// # Who may write, and what others may read
//
// The endpoint is read-write only for the process that owns it, unless
// configured otherwise. The owner's user (HandlerConfig.User, default
// "otpscope") and password (HandlerConfig.Password, or a random one generated
// by NewHandler; see Handler.Credentials and Server.DSN) may do anything
// except by GET, which is read-only as in ClickHouse. A wrong password for
// that user is refused (AUTHENTICATION_FAILED, 516).
//
// Every other client is a guest. With HandlerConfig.ReaderPassword set, a
// guest must log in as HandlerConfig.ReaderUser (default "grafana") with it;
// anonymous requests and other users are refused (516). Without it anyone
// may read, so Listen (and Start) refuse an address that is not loopback
// (ErrExposed).
//
// A guest runs an allowlist, decided on the engine's own parse, before
// anything runs: the engine classifies the text (exactly one statement, one
// that does not write), then EXPLAIN AST — which only parses — gives the
// syntax tree. Allowed are SELECT (WITH, UNION, INTERSECT, EXCEPT), SHOW
// TABLES/DATABASES/COLUMNS/CREATE TABLE, DESCRIBE and EXISTS of a table,
// and EXPLAIN of such a SELECT: what Grafana and clickhouse-go send. Where a
// table stands, only a table or a subquery may: every table function is
// refused (numbers() too; system.numbers is a table and the limits bound
// it), and so is, anywhere in the tree, a function that shares a table
// function's name (the scalar file() reads files), dictGet and its family,
// joinGet and the model evaluators. Refusals are ACCESS_DENIED (497), writes
// READONLY (164), several statements SYNTAX_ERROR (62). A guest's statements
// run on a second connection with readonly=1, so the engine itself refuses
// writes and settings changes as well; settings in the URL of a read-only
// request are refused with 164, except resource limits that clients send on
// their own (max_execution_time and the like), which are ignored.
//
// The second connection's own settings bound every guest query (Limits,
// WithReaderLimits; DefaultLimits: 10 s, 1 GiB of memory, a million result
// rows, 100 MiB of result), and readonly=1 keeps clients from lifting them.
// One guest request is at the engine at a time; HandlerConfig.GuestQueue
// more (default 16) may wait, and beyond that a guest is refused at once
// with TOO_MANY_SIMULTANEOUS_QUERIES (202, HTTP 503). The engine hands
// itself to waiting owner statements before waiting guest ones, so the
// owner (the sink's inserts, the API) waits for at most one guest statement,
// which the limits bound. A running statement is not interrupted when its
// client goes away; the time limit ends it.
//
// A guest that may not write takes its place in that queue before its body
// is read, has 10 s to send it, and may send at most
// HandlerConfig.MaxGuestQuerySize (default 1 MiB, decompressed; a
// compressed frame whose header claims more is refused unread); reading
// stops there with QUERY_IS_TOO_LARGE (393). So only the guests the queue
// holds keep a query in memory, each at most that much. The query URL
// parameter is bounded by net/http's header limit (1 MiB).
//
// HandlerConfig.AllowExternalWrites lets everyone write; then guests run on
// the owner's connection, without allowlist or limits, but still one at a
// time. Listen binds 127.0.0.1:8123 by default, loopback only.
package chdb
