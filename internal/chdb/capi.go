package chdb

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// The types below mirror chdb.h of chDB 26.7 (programs/local/chdb.h). Only
// opaque handles cross the boundary, so the layout of the engine's own
// structures never matters here.
typedef struct otp_chdb_result_ { void *internal_data; } otp_chdb_result;
typedef struct otp_chdb_connection_ { void *internal_data; } *otp_chdb_connection;
typedef void *otp_chdb_insert_stream;

typedef struct {
	uint32_t struct_size;
	uint32_t statement_count;
	uint32_t flags;
	uint32_t query_class;
} otp_chdb_query_analysis_v1;

typedef struct {
	void *handle;
	const char *(*version)(void);
	void (*set_signal_handlers_enabled)(int);
	otp_chdb_connection *(*connect)(int, char **);
	void (*close_conn)(otp_chdb_connection *);
	otp_chdb_result *(*query_n)(otp_chdb_connection, const char *, size_t, const char *, size_t);
	otp_chdb_result *(*query_with_params_n)(otp_chdb_connection, const char *, size_t, const char *, size_t,
		const char *const *, const size_t *, const char *const *, const size_t *, size_t);
	char *(*result_buffer)(otp_chdb_result *);
	size_t (*result_length)(otp_chdb_result *);
	const char *(*result_error)(otp_chdb_result *);
	uint64_t (*result_rows_read)(otp_chdb_result *);
	uint64_t (*result_rows_written)(otp_chdb_result *);
	void (*destroy_query_result)(otp_chdb_result *);
	int (*classify_query_n)(otp_chdb_connection, const char *, size_t, const char *, size_t, otp_chdb_query_analysis_v1 *);
	otp_chdb_insert_stream (*stream_insert_n)(otp_chdb_connection, const char *, size_t, const char *, size_t);
	int (*stream_append)(otp_chdb_insert_stream, const void *, size_t);
	otp_chdb_result *(*stream_done)(otp_chdb_insert_stream);
	const char *(*stream_insert_error)(otp_chdb_insert_stream);
	void (*destroy_insert_stream)(otp_chdb_insert_stream);
} otp_chdb_api;

static otp_chdb_api otp_api;

// otp_saved holds the process's signal dispositions as they were before the
// library was first touched: the Go runtime's handlers.
#define OTP_NSIG 65
static struct sigaction otp_saved[OTP_NSIG];
static int otp_saved_ok[OTP_NSIG];

static void otp_save_signals(void) {
	for (int i = 1; i < OTP_NSIG; i++) {
		otp_saved_ok[i] = sigaction(i, NULL, &otp_saved[i]) == 0;
	}
}

// otp_restore_signals puts back every disposition that differs from the one
// saved, and returns how many it had to put back.
static int otp_restore_signals(void) {
	int n = 0;
	for (int i = 1; i < OTP_NSIG; i++) {
		if (!otp_saved_ok[i] || i == SIGKILL || i == SIGSTOP) {
			continue;
		}
		struct sigaction cur;
		if (sigaction(i, NULL, &cur) != 0) {
			continue;
		}
		if (cur.sa_sigaction == otp_saved[i].sa_sigaction && cur.sa_flags == otp_saved[i].sa_flags) {
			continue;
		}
		if (sigaction(i, &otp_saved[i], NULL) == 0) {
			n++;
		}
	}
	return n;
}

// otp_segv_changed reports whether someone replaced the SIGSEGV handler: a
// cheap check after each query that chDB kept its promise.
static int otp_segv_changed(void) {
	struct sigaction cur;
	if (!otp_saved_ok[SIGSEGV] || sigaction(SIGSEGV, NULL, &cur) != 0) {
		return 0;
	}
	return cur.sa_sigaction != otp_saved[SIGSEGV].sa_sigaction;
}

#define OTP_SYM(field, name, required) do { \
	*(void **)(&otp_api.field) = dlsym(h, name); \
	if (otp_api.field == NULL && required) { missing = name; goto fail; } \
} while (0)

// otp_load opens the library and resolves the API. It returns NULL on
// success, or a message the caller must free.
static char *otp_load(const char *path) {
	const char *missing = NULL;
	otp_save_signals();
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		const char *e = dlerror();
		otp_restore_signals();
		return strdup(e ? e : "dlopen failed");
	}
	otp_api.handle = h;
	OTP_SYM(version, "chdb_version", 0);
	OTP_SYM(set_signal_handlers_enabled, "chdb_set_signal_handlers_enabled", 0);
	OTP_SYM(connect, "chdb_connect", 1);
	OTP_SYM(close_conn, "chdb_close_conn", 1);
	OTP_SYM(query_n, "chdb_query_n", 1);
	OTP_SYM(query_with_params_n, "chdb_query_with_params_n", 0);
	OTP_SYM(result_buffer, "chdb_result_buffer", 1);
	OTP_SYM(result_length, "chdb_result_length", 1);
	OTP_SYM(result_error, "chdb_result_error", 1);
	OTP_SYM(result_rows_read, "chdb_result_rows_read", 0);
	OTP_SYM(result_rows_written, "chdb_result_rows_written", 0);
	OTP_SYM(destroy_query_result, "chdb_destroy_query_result", 1);
	OTP_SYM(classify_query_n, "chdb_classify_query_n", 0);
	OTP_SYM(stream_insert_n, "chdb_stream_insert_n", 0);
	OTP_SYM(stream_append, "chdb_stream_append", 0);
	OTP_SYM(stream_done, "chdb_stream_done", 0);
	OTP_SYM(stream_insert_error, "chdb_stream_insert_error", 0);
	OTP_SYM(destroy_insert_stream, "chdb_destroy_insert_stream", 0);
	if (otp_api.set_signal_handlers_enabled != NULL) {
		// Must come before the first connect; it also resets the deadly
		// signals to SIG_DFL, which otp_restore_signals undoes.
		otp_api.set_signal_handlers_enabled(0);
	}
	otp_restore_signals();
	return NULL;
fail:
	{
		size_t n = strlen(missing) + 64;
		char *msg = malloc(n);
		snprintf(msg, n, "symbol %s not found", missing);
		dlclose(h);
		memset(&otp_api, 0, sizeof(otp_api));
		otp_restore_signals();
		return msg;
	}
}

static otp_chdb_connection *otp_connect(int argc, char **argv, int *restored) {
	otp_chdb_connection *c = otp_api.connect(argc, argv);
	*restored = otp_restore_signals();
	return c;
}

static void otp_close(otp_chdb_connection *c) {
	otp_api.close_conn(c);
	otp_restore_signals();
}

static otp_chdb_result *otp_query(otp_chdb_connection *c, const char *q, size_t qn, const char *f, size_t fn,
		const char *const *names, const size_t *nlens, const char *const *values, const size_t *vlens, size_t np) {
	if (np > 0 && otp_api.query_with_params_n != NULL) {
		return otp_api.query_with_params_n(*c, q, qn, f, fn, names, nlens, values, vlens, np);
	}
	return otp_api.query_n(*c, q, qn, f, fn);
}

static int otp_has_params(void) { return otp_api.query_with_params_n != NULL; }
static int otp_has_classify(void) { return otp_api.classify_query_n != NULL; }
static int otp_has_stream_insert(void) {
	return otp_api.stream_insert_n != NULL && otp_api.stream_append != NULL && otp_api.stream_done != NULL &&
		otp_api.stream_insert_error != NULL && otp_api.destroy_insert_stream != NULL;
}

static char *otp_result_buffer(otp_chdb_result *r) { return otp_api.result_buffer(r); }
static size_t otp_result_length(otp_chdb_result *r) { return otp_api.result_length(r); }
static const char *otp_result_error(otp_chdb_result *r) { return otp_api.result_error(r); }
static uint64_t otp_result_rows_written(otp_chdb_result *r) {
	return otp_api.result_rows_written ? otp_api.result_rows_written(r) : 0;
}
static void otp_destroy_result(otp_chdb_result *r) { if (r) otp_api.destroy_query_result(r); }

static int otp_classify(otp_chdb_connection *c, const char *q, size_t qn, otp_chdb_query_analysis_v1 *out) {
	out->struct_size = sizeof(*out);
	return otp_api.classify_query_n(*c, q, qn, NULL, 0, out);
}

static otp_chdb_insert_stream otp_stream_insert(otp_chdb_connection *c, const char *q, size_t qn, const char *f, size_t fn) {
	return otp_api.stream_insert_n(*c, q, qn, f, fn);
}
static int otp_stream_append(otp_chdb_insert_stream s, const void *d, size_t n) { return otp_api.stream_append(s, d, n); }
static otp_chdb_result *otp_stream_done(otp_chdb_insert_stream s) { return otp_api.stream_done(s); }
static const char *otp_stream_error(otp_chdb_insert_stream s) { return otp_api.stream_insert_error(s); }
static void otp_stream_destroy(otp_chdb_insert_stream s) { otp_api.destroy_insert_stream(s); }

static const char *otp_version(void) { return otp_api.version ? otp_api.version() : ""; }
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// EnvLibrary names the environment variable that points at libchdb.so.
const EnvLibrary = "OTPSCOPE_CHDB_LIB"

// ErrLibraryNotFound is returned by Open when no libchdb.so could be loaded
// from any of the places searched. The error text lists them.
var ErrLibraryNotFound = errors.New("libchdb.so not found")

// library is the process-wide state of the dynamically loaded engine. The
// library keeps global state (one engine per process), so it is loaded once
// and never unloaded.
var library struct {
	mu   sync.Mutex
	path string // set once loaded
}

// candidates lists where to look for the library, in order.
func candidates(explicit string) []string {
	var c []string
	if explicit != "" {
		return []string{explicit}
	}
	if env := os.Getenv(EnvLibrary); env != "" {
		c = append(c, env)
	}
	if wd, err := os.Getwd(); err == nil {
		for dir := wd; ; dir = filepath.Dir(dir) {
			c = append(c, filepath.Join(dir, ".cache", "chdb", "libchdb.so"))
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	// A bare name makes dlopen search LD_LIBRARY_PATH and the loader cache.
	return append(c, "libchdb.so")
}

// loadLibrary loads the engine library once per process. A later call with a
// different explicit path fails: the engine cannot be swapped at run time.
func loadLibrary(explicit string) (string, error) {
	library.mu.Lock()
	defer library.mu.Unlock()
	if library.path != "" {
		if explicit != "" && explicit != library.path {
			return "", fmt.Errorf("load %s: %s is already loaded in this process", explicit, library.path)
		}
		return library.path, nil
	}
	if runtime.GOOS != "linux" {
		return "", fmt.Errorf("%w: the embedded engine is only supported on linux", ErrLibraryNotFound)
	}
	var tried []string
	for _, path := range candidates(explicit) {
		if strings.ContainsRune(path, '/') {
			if _, err := os.Stat(path); err != nil {
				tried = append(tried, path+" (absent)")
				continue
			}
		}
		cpath := C.CString(path)
		msg := C.otp_load(cpath)
		C.free(unsafe.Pointer(cpath))
		if msg != nil {
			tried = append(tried, fmt.Sprintf("%s (%s)", path, C.GoString(msg)))
			C.free(unsafe.Pointer(msg))
			continue
		}
		library.path = path
		return path, nil
	}
	return "", fmt.Errorf("%w: tried %s; run `make setup` or set %s", ErrLibraryNotFound, strings.Join(tried, ", "), EnvLibrary)
}

// LibraryVersion reports the chDB release of the loaded library, or "" when
// no library is loaded yet.
func LibraryVersion() string {
	library.mu.Lock()
	defer library.mu.Unlock()
	if library.path == "" {
		return ""
	}
	return C.GoString(C.otp_version())
}

// conn is one chDB connection. Its methods must be serialized by the caller.
type conn struct {
	c *C.otp_chdb_connection
}

// connect opens a chDB connection with the given command-line style
// arguments and restores the Go runtime's signal handlers afterwards.
func connect(args []string) (*conn, int, error) {
	argv := make([]*C.char, 0, len(args)+1)
	argv = append(argv, C.CString("chdb"))
	for _, a := range args {
		argv = append(argv, C.CString(a))
	}
	defer func() {
		for _, p := range argv {
			C.free(unsafe.Pointer(p))
		}
	}()
	cargv := (**C.char)(C.malloc(C.size_t(len(argv)) * C.size_t(unsafe.Sizeof(uintptr(0)))))
	defer C.free(unsafe.Pointer(cargv))
	copy(unsafe.Slice(cargv, len(argv)), argv)
	var restored C.int
	c := C.otp_connect(C.int(len(argv)), cargv, &restored)
	if c == nil || *c == nil {
		return nil, int(restored), errors.New("chdb_connect returned no connection (see the engine's log on stderr)")
	}
	return &conn{c: c}, int(restored), nil
}

func (c *conn) close() {
	if c.c != nil {
		C.otp_close(c.c)
		c.c = nil
	}
}

// rawResult is what one call into the engine produced.
type rawResult struct {
	data         []byte
	rowsWritten  uint64
	errorMessage string
	hasError     bool
}

// takeResult copies a result out of C memory and destroys it.
func takeResult(r *C.otp_chdb_result) rawResult {
	if r == nil {
		return rawResult{hasError: true, errorMessage: "the engine returned no result"}
	}
	defer C.otp_destroy_result(r)
	var out rawResult
	if e := C.otp_result_error(r); e != nil {
		out.hasError = true
		out.errorMessage = C.GoString(e)
		return out
	}
	n := C.otp_result_length(r)
	if buf := C.otp_result_buffer(r); buf != nil && n > 0 {
		out.data = C.GoBytes(unsafe.Pointer(buf), C.int(n))
	}
	out.rowsWritten = uint64(C.otp_result_rows_written(r))
	return out
}

// cbytes copies s into C memory; the caller frees it.
func cbytes(s string) (*C.char, C.size_t) {
	if s == "" {
		return (*C.char)(C.calloc(1, 1)), 0
	}
	return (*C.char)(C.CBytes([]byte(s))), C.size_t(len(s))
}

// query runs one query. params binds {name:Type} placeholders on the engine
// side.
func (c *conn) query(sql, format string, params map[string]string) rawResult {
	q, qn := cbytes(sql)
	defer C.free(unsafe.Pointer(q))
	f, fn := cbytes(format)
	defer C.free(unsafe.Pointer(f))

	np := len(params)
	if np > 0 && C.otp_has_params() == 0 {
		return rawResult{hasError: true, errorMessage: "Code: 48. DB::Exception: query parameters need chdb_query_with_params_n, which this libchdb lacks. (NOT_IMPLEMENTED)"}
	}
	var names, values **C.char
	var nlens, vlens *C.size_t
	if np > 0 {
		ptrSize := C.size_t(unsafe.Sizeof(uintptr(0)))
		names = (**C.char)(C.malloc(C.size_t(np) * ptrSize))
		values = (**C.char)(C.malloc(C.size_t(np) * ptrSize))
		nlens = (*C.size_t)(C.malloc(C.size_t(np) * C.size_t(unsafe.Sizeof(C.size_t(0)))))
		vlens = (*C.size_t)(C.malloc(C.size_t(np) * C.size_t(unsafe.Sizeof(C.size_t(0)))))
		ns, vs := unsafe.Slice(names, np), unsafe.Slice(values, np)
		nl, vl := unsafe.Slice(nlens, np), unsafe.Slice(vlens, np)
		i := 0
		for k, v := range params {
			ns[i], nl[i] = cbytes(k)
			vs[i], vl[i] = cbytes(v)
			i++
		}
		defer func() {
			for i := range np {
				C.free(unsafe.Pointer(ns[i]))
				C.free(unsafe.Pointer(vs[i]))
			}
			C.free(unsafe.Pointer(names))
			C.free(unsafe.Pointer(values))
			C.free(unsafe.Pointer(nlens))
			C.free(unsafe.Pointer(vlens))
		}()
	}
	r := C.otp_query(c.c, q, qn, f, fn, names, nlens, values, vlens, C.size_t(np))
	res := takeResult(r)
	if res.hasError && sql != drainSQL {
		c.drain()
	}
	return res
}

// drainSQL is what drain runs.
const drainSQL = "SELECT 'drained'"

// drainPatience is how long drain waits out a connection that answers
// "Query with id … is already running": what a BACKUP refused after it
// began (its name taken) leaves for a moment, while its own query is still
// being cleaned up. Given up sooner, the next statement on the connection
// would fail, a session's reset among them (leaving the connection in the
// request's database or settings).
const drainPatience = 2 * time.Second

// drain runs a statement and discards its output. chDB 26.7 keeps what a
// query wrote before it failed (say, a million rows before max_result_rows
// stopped it) and hands it out at the start of the next query's result on
// the connection, so after every failure the leftovers go to this one; and
// it runs again while the failed query still holds the connection.
func (c *conn) drain() {
	deadline := time.Now().Add(drainPatience)
	for {
		res := c.query(drainSQL, "TSV", nil)
		if !res.hasError || newException(res.errorMessage).Code != CodeQueryAlreadyRunning || time.Now().After(deadline) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// QueryClass says what a statement does to state that outlives it, as
// decided by the engine's own parser.
type QueryClass int

// The classes, in the engine's order of restriction.
const (
	ClassReadOnly       QueryClass = 0 // SELECT, SHOW, DESCRIBE, EXPLAIN, EXISTS, CHECK
	ClassMutating       QueryClass = 1 // INSERT, CREATE, ALTER, DROP, TRUNCATE, RENAME, ...
	ClassMutatingGlobal QueryClass = 2 // functions, users, named collections, system tables
	ClassControl        QueryClass = 3 // USE, SET, SYSTEM, KILL, INTO OUTFILE, ...
	ClassUnknown        QueryClass = 4 // did not parse
)

// classify asks the engine's parser what sql does. ok is false when the
// library lacks the call.
func (c *conn) classify(sql string) (class QueryClass, statements int, ok bool) {
	if C.otp_has_classify() == 0 {
		return ClassUnknown, 0, false
	}
	q, qn := cbytes(sql)
	defer C.free(unsafe.Pointer(q))
	var out C.otp_chdb_query_analysis_v1
	if C.otp_classify(c.c, q, qn, &out) != 0 {
		return ClassUnknown, 0, false
	}
	return QueryClass(out.query_class), int(out.statement_count), true
}

// streamInsert runs "INSERT INTO t (cols)" (no FORMAT clause, no data) and
// feeds it the chunks next returns, until next returns a nil chunk.
func (c *conn) streamInsert(stmt, format string, next func() ([]byte, error)) (rawResult, error) {
	if C.otp_has_stream_insert() == 0 {
		return rawResult{}, errStreamInsertUnsupported
	}
	q, qn := cbytes(stmt)
	defer C.free(unsafe.Pointer(q))
	f, fn := cbytes(format)
	defer C.free(unsafe.Pointer(f))
	s := C.otp_stream_insert(c.c, q, qn, f, fn)
	if s == nil {
		return rawResult{hasError: true, errorMessage: "chdb_stream_insert returned no stream"}, nil
	}
	defer C.otp_stream_destroy(s)
	if e := C.otp_stream_error(s); e != nil {
		return rawResult{hasError: true, errorMessage: C.GoString(e)}, nil
	}
	for {
		chunk, err := next()
		if err != nil {
			// Destroying an unfinished stream cancels it: nothing is committed
			// from a body that could not be read to its end.
			return rawResult{}, err
		}
		if chunk == nil {
			break
		}
		if len(chunk) == 0 {
			continue
		}
		p := C.CBytes(chunk)
		rc := C.otp_stream_append(s, p, C.size_t(len(chunk)))
		C.free(p)
		if rc != 0 {
			msg := "chdb_stream_append failed"
			if e := C.otp_stream_error(s); e != nil {
				msg = C.GoString(e)
			}
			return rawResult{hasError: true, errorMessage: msg}, nil
		}
	}
	res := takeResult(C.otp_stream_done(s))
	if !res.hasError {
		if e := C.otp_stream_error(s); e != nil {
			return rawResult{hasError: true, errorMessage: C.GoString(e)}, nil
		}
	}
	return res, nil
}

var errStreamInsertUnsupported = errors.New("chdb_stream_insert is not available in this libchdb")

// signalsReplaced reports whether the SIGSEGV handler is no longer the one
// the Go runtime installed, and if so restores all saved handlers.
func signalsReplaced() int {
	if C.otp_segv_changed() == 0 {
		return 0
	}
	return int(C.otp_restore_signals())
}
