package chdb_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/chdb"
	"github.com/otpscope/otpscope/internal/chdb/chdbtest"
)

// answer is one HTTP exchange with the endpoint.
type answer struct {
	status int
	code   int // X-ClickHouse-Exception-Code, 0 when none
	body   string
}

// ask sends query to the endpoint by POST with the given URL parameters
// (user and password among them when set).
func ask(t *testing.T, addr, query string, params url.Values) answer {
	t.Helper()
	u := url.URL{Scheme: "http", Host: addr, Path: "/", RawQuery: params.Encode()}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, u.String(), strings.NewReader(query))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %q: %v", query, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	code, _ := strconv.Atoi(resp.Header.Get("X-ClickHouse-Exception-Code"))
	return answer{status: resp.StatusCode, code: code, body: string(body)}
}

func TestGuestsCannotReachOutside(t *testing.T) {
	srv, _ := serveEvents(t)

	// A secret file, an HTTP server and a TCP port (mysql, postgresql,
	// remote) that must never be read or reached.
	const secret = "s3cret-line-do-not-leak"
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret.tsv")
	if err := os.WriteFile(secretFile, []byte("col\n"+secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var httpHits atomic.Int64
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpHits.Add(1)
		io.WriteString(w, "col\n"+secret+"\n")
	}))
	t.Cleanup(web.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var tcpHits atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tcpHits.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	outfile := filepath.Join(dir, "out.tsv")
	tcp := ln.Addr().String()
	secretURL := web.URL + "/secret.csv"

	attacks := []struct {
		name string
		sql  string
		code int
	}{
		{"describe file", fmt.Sprintf("DESCRIBE file('%s', 'TSVWithNames')", secretFile), chdb.CodeAccessDenied},
		{"describe file json error", fmt.Sprintf("DESCRIBE file('%s', 'JSONEachRow')", secretFile), chdb.CodeAccessDenied},
		{"describe file glob", fmt.Sprintf("DESCRIBE file('%s/*', 'TSV')", dir), chdb.CodeAccessDenied},
		{"desc table file", fmt.Sprintf("DESC TABLE file('%s', 'LineAsString')", secretFile), chdb.CodeAccessDenied},
		{"select file", fmt.Sprintf("SELECT * FROM file('%s', 'LineAsString')", secretFile), chdb.CodeAccessDenied},
		{"scalar file", fmt.Sprintf("SELECT file('%s')", secretFile), chdb.CodeAccessDenied},
		{"scalar FILE upper case", fmt.Sprintf("SELECT FILE('%s')", secretFile), chdb.CodeAccessDenied},
		{"describe url", fmt.Sprintf("DESCRIBE url('%s', 'CSVWithNames')", secretURL), chdb.CodeAccessDenied},
		{"select url", fmt.Sprintf("SELECT * FROM url('%s', 'CSVWithNames')", secretURL), chdb.CodeAccessDenied},
		{"url in join", fmt.Sprintf("SELECT * FROM events AS e JOIN url('%s', 'CSVWithNames') AS u ON 1", secretURL), chdb.CodeAccessDenied},
		{"url in subquery", fmt.Sprintf("SELECT * FROM (SELECT * FROM url('%s', 'CSVWithNames'))", secretURL), chdb.CodeAccessDenied},
		{"url in IN", fmt.Sprintf("SELECT 1 WHERE 'x' IN (SELECT * FROM url('%s', 'LineAsString'))", secretURL), chdb.CodeAccessDenied},
		{"table function as IN operand", fmt.Sprintf("SELECT 'x' IN url('%s', 'LineAsString')", secretURL), chdb.CodeAccessDenied},
		{"url in CTE", fmt.Sprintf("WITH u AS (SELECT * FROM url('%s', 'CSVWithNames')) SELECT * FROM u", secretURL), chdb.CodeAccessDenied},
		{"url in union", fmt.Sprintf("SELECT 1 UNION ALL SELECT count() FROM url('%s', 'LineAsString')", secretURL), chdb.CodeAccessDenied},
		{"s3", fmt.Sprintf("SELECT * FROM s3('%s', 'CSVWithNames')", secretURL), chdb.CodeAccessDenied},
		{"explain of url", fmt.Sprintf("EXPLAIN SELECT * FROM url('%s', 'CSVWithNames')", secretURL), chdb.CodeAccessDenied},
		{"describe remote", fmt.Sprintf("DESCRIBE remote('%s', system.one)", tcp), chdb.CodeAccessDenied},
		{"select remoteSecure", fmt.Sprintf("SELECT * FROM remoteSecure('%s', system.one)", tcp), chdb.CodeAccessDenied},
		{"describe mysql", fmt.Sprintf("DESCRIBE mysql('%s', 'db', 't', 'u', 'p')", tcp), chdb.CodeAccessDenied},
		{"describe postgresql", fmt.Sprintf("DESCRIBE postgresql('%s', 'db', 't', 'u', 'p')", tcp), chdb.CodeAccessDenied},
		{"numbers", "SELECT * FROM numbers(10)", chdb.CodeAccessDenied},
		{"view", "SELECT * FROM view(SELECT 1)", chdb.CodeAccessDenied},
		{"executable", "SELECT * FROM executable('id', 'TSV', 'x String')", chdb.CodeAccessDenied},
		{"dictGet", "SELECT dictGet('d', 'a', toUInt64(1))", chdb.CodeAccessDenied},
		{"joinGet", "SELECT joinGet('j', 'a', 1)", chdb.CodeAccessDenied},
		{"describe subquery", "DESCRIBE (SELECT 1)", chdb.CodeAccessDenied},
		{"show create database", "SHOW CREATE DATABASE default", chdb.CodeAccessDenied},
		{"into outfile", fmt.Sprintf("SELECT * FROM events INTO OUTFILE '%s'", outfile), chdb.CodeReadonly},
		{"settings clause", "SELECT 1 SETTINGS max_execution_time = 0", chdb.CodeReadonly},
		{"set", "SET max_memory_usage = 0", chdb.CodeReadonly},
		{"system", "SYSTEM FLUSH LOGS", chdb.CodeReadonly},
		{"insert select url", fmt.Sprintf("INSERT INTO events (seq) SELECT 1 FROM url('%s', 'LineAsString')", secretURL), chdb.CodeReadonly},
		{"multi statement", fmt.Sprintf("SELECT 1; DESCRIBE file('%s', 'TSVWithNames')", secretFile), chdb.CodeSyntaxError},
		{"multi statement with a syntax error", fmt.Sprintf("SELECT 1; DESCRIBE file('%s', 'TSVWithNames'); (", secretFile), chdb.CodeSyntaxError},
	}
	params := url.Values{"database": {srv.Database}}
	for _, tt := range attacks {
		t.Run(tt.name, func(t *testing.T) {
			a := ask(t, srv.Addr, tt.sql, params)
			if a.status == http.StatusOK || a.code != tt.code {
				t.Errorf("%s = %d, code %d: %s; want code %d", tt.sql, a.status, a.code, a.body, tt.code)
			}
			if strings.Contains(a.body, secret) {
				t.Errorf("%s answered the secret: %s", tt.sql, a.body)
			}
		})
	}
	if n := httpHits.Load(); n > 0 {
		t.Errorf("the HTTP server got %d requests; want none", n)
	}
	if n := tcpHits.Load(); n > 0 {
		t.Errorf("the TCP port got %d connections; want none", n)
	}
	if _, err := os.Stat(outfile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("INTO OUTFILE wrote %s (stat: %v)", outfile, err)
	}
}

func TestGuestsMayRead(t *testing.T) {
	srv, _ := serveEvents(t, 7)
	ctx := t.Context()
	allowed := []string{
		"SELECT 1",
		"SELECT version()",
		"SELECT timezone()",
		"SELECT timeZone(), serverTimeZone()",
		"SELECT seq FROM events",
		"SELECT * FROM events FORMAT JSON",
		"WITH a AS (SELECT 1 AS x) SELECT x FROM a UNION ALL SELECT seq FROM events",
		"SELECT 1 INTERSECT SELECT 1",
		"SELECT count() FROM events WHERE seq IN (SELECT seq FROM events)",
		"SELECT number FROM system.numbers LIMIT 3",
		"SELECT name FROM system.tables WHERE database = currentDatabase()",
		"SELECT format('{} {}', 'a', 'b')",
		"SHOW TABLES",
		"SHOW DATABASES",
		"SHOW COLUMNS FROM events",
		"SHOW CREATE TABLE events",
		"DESCRIBE events",
		"DESC TABLE events",
		"EXISTS TABLE events",
		"EXPLAIN SELECT * FROM events",
		"EXPLAIN AST SELECT * FROM events",
	}
	params := url.Values{"database": {srv.Database}}
	for _, q := range allowed {
		if a := ask(t, srv.Addr, q, params); a.status != http.StatusOK {
			t.Errorf("%s = %d, code %d: %s; want 200", q, a.status, a.code, a.body)
		}
	}
	withParam := url.Values{"database": {srv.Database}, "param_t": {"events"}, "param_s": {"7"}}
	if a := ask(t, srv.Addr, "SELECT count() FROM {t:Identifier} WHERE seq = {s:UInt64}", withParam); a.status != http.StatusOK || strings.TrimSpace(a.body) != "1" {
		t.Errorf("query with parameters = %d: %q; want 200, 1", a.status, a.body)
	}

	// clickhouse-go's hello: ping, server version, a query.
	reader := chdbtest.Conn(t, srv.ReaderOptions())
	if err := reader.Ping(ctx); err != nil {
		t.Errorf("reader Ping: %v", err)
	}
	if _, err := reader.ServerVersion(); err != nil {
		t.Errorf("reader ServerVersion: %v", err)
	}
	var seq uint64
	if err := reader.QueryRow(ctx, "SELECT seq FROM events").Scan(&seq); err != nil || seq != 7 {
		t.Errorf("reader SELECT seq = %d, %v; want 7", seq, err)
	}
}

func TestGuestLimits(t *testing.T) {
	srv, owner := serveEvents(t)
	ctx := t.Context()
	limits := srv.Engine.ReaderLimits()
	// Limits in the URL do not lift the connection's.
	lift := url.Values{"max_execution_time": {"0"}, "max_memory_usage": {"0"}, "max_result_rows": {"0"}}

	t.Run("memory", func(t *testing.T) {
		// Few rows of large values: the limit is reached in well under a
		// second of work, however loaded the machine (numbers took over
		// 10 s to reach it on a busy one and hit the time limit first).
		q := "SELECT length(groupArray(repeat('x', 1000000))) FROM (SELECT number FROM system.numbers LIMIT 3000)"
		if a := ask(t, srv.Addr, q, lift); a.code != 241 {
			t.Errorf("%s = %d, code %d: %s; want MEMORY_LIMIT_EXCEEDED (241)", q, a.status, a.code, a.body)
		}
	})
	t.Run("result rows", func(t *testing.T) {
		q := fmt.Sprintf("SELECT number FROM system.numbers LIMIT %d", limits.MaxResultRows+100_000)
		if a := ask(t, srv.Addr, q, lift); a.code != 396 {
			t.Errorf("%s = %d, code %d; want TOO_MANY_ROWS_OR_BYTES (396)", q, a.status, a.code)
		}
	})

	// A cross join that would run for minutes stops at the time limit, and
	// the owner's inserts meanwhile wait for at most that one query.
	t.Run("time and the owner's wait", func(t *testing.T) {
		q := "SELECT count() FROM (SELECT number FROM system.numbers LIMIT 1000000) AS a, (SELECT number FROM system.numbers LIMIT 1000000) AS b WHERE a.number + b.number = 7"
		var guest answer
		var guestTook time.Duration
		done := make(chan struct{})
		go func() {
			defer close(done)
			start := time.Now()
			guest = ask(t, srv.Addr, q, lift)
			guestTook = time.Since(start)
		}()
		for {
			if running, _ := srv.Handler.Guests(); running == 1 {
				break
			}
			select {
			case <-done:
				t.Fatalf("the guest query ended before it was seen running: %+v", guest)
			case <-time.After(time.Millisecond):
			}
		}
		var worst time.Duration
		inserts := 0
	loop:
		for {
			start := time.Now()
			if err := owner.Exec(ctx, "INSERT INTO events (id, seq) VALUES (generateUUIDv4(), 1)"); err != nil {
				t.Fatalf("owner insert: %v", err)
			}
			worst = max(worst, time.Since(start))
			inserts++
			select {
			case <-done:
				break loop
			default:
			}
		}
		t.Logf("guest cross join: %v, code %d; owner: %d inserts meanwhile, the slowest %v (limit %v)", guestTook, guest.code, inserts, worst, limits.MaxExecutionTime)
		if guest.code != 159 {
			t.Errorf("cross join = %d, code %d: %s; want TIMEOUT_EXCEEDED (159)", guest.status, guest.code, guest.body)
		}
		bound := limits.MaxExecutionTime + 15*time.Second // generous: the cores are shared
		if guestTook > bound {
			t.Errorf("cross join took %v; want it stopped near %v", guestTook, limits.MaxExecutionTime)
		}
		if worst > bound {
			t.Errorf("an owner insert waited %v; want at most about one guest query (%v)", worst, limits.MaxExecutionTime)
		}
	})
}

func TestGuestQueue(t *testing.T) {
	srv := chdbtest.ServeConfig(t, chdb.HandlerConfig{GuestQueue: 1})
	// Two guests: one sleeps in the engine, one waits for it.
	var wg sync.WaitGroup
	answers := make([]answer, 2)
	for i := range answers {
		wg.Go(func() { answers[i] = ask(t, srv.Addr, "SELECT sleep(2)", nil) })
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		running, waiting := srv.Handler.Guests()
		if running == 1 && waiting == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("guests running %d, waiting %d; want 1, 1", running, waiting)
		}
		time.Sleep(time.Millisecond) // polling
	}
	start := time.Now()
	third := ask(t, srv.Addr, "SELECT 1", nil)
	took := time.Since(start)
	if third.status != http.StatusServiceUnavailable || third.code != chdb.CodeTooManyQueries {
		t.Errorf("third guest = %d, code %d: %s; want 503, code %d", third.status, third.code, third.body, chdb.CodeTooManyQueries)
	}
	if took > time.Second {
		t.Errorf("third guest was refused after %v; want at once", took)
	}
	// The owner is not a guest: it goes through.
	owner := chdbtest.Conn(t, srv.Options())
	if err := owner.Ping(t.Context()); err != nil {
		t.Errorf("owner Ping while guests queue: %v", err)
	}
	wg.Wait()
	for i, a := range answers {
		if a.status != http.StatusOK {
			t.Errorf("guest %d = %d: %s; want 200", i, a.status, a.body)
		}
	}
}

func TestReaderCredentials(t *testing.T) {
	srv := chdbtest.ServeConfig(t, chdb.HandlerConfig{ReaderPassword: "reader-pw"})
	tests := []struct {
		name   string
		params url.Values
		code   int
	}{
		{"anonymous", nil, chdb.CodeAuthenticationFailed},
		{"default user", url.Values{"user": {"default"}}, chdb.CodeAuthenticationFailed},
		{"wrong password", url.Values{"user": {chdb.DefaultReaderUser}, "password": {"nope"}}, chdb.CodeAuthenticationFailed},
		{"other user, reader password", url.Values{"user": {"admin"}, "password": {"reader-pw"}}, chdb.CodeAuthenticationFailed},
		{"reader", url.Values{"user": {chdb.DefaultReaderUser}, "password": {"reader-pw"}}, 0},
		{"owner", url.Values{"user": {srv.User}, "password": {srv.Password}}, 0},
	}
	for _, tt := range tests {
		a := ask(t, srv.Addr, "SELECT 1", tt.params)
		if a.code != tt.code || (tt.code == 0) != (a.status == http.StatusOK) {
			t.Errorf("%s: SELECT 1 = %d, code %d: %s; want code %d", tt.name, a.status, a.code, a.body, tt.code)
		}
	}
	// The reader is still a guest.
	a := ask(t, srv.Addr, "SELECT * FROM numbers(3)", url.Values{"user": {chdb.DefaultReaderUser}, "password": {"reader-pw"}})
	if a.code != chdb.CodeAccessDenied {
		t.Errorf("reader: numbers(3) = %d, code %d; want %d", a.status, a.code, chdb.CodeAccessDenied)
	}
}

func TestListenBeyondLoopback(t *testing.T) {
	e := chdbtest.Open(t)
	for _, addr := range []string{"0.0.0.0:0", ":0"} {
		if srv, err := chdb.Listen(addr, chdb.NewHandler(e, chdb.HandlerConfig{})); !errors.Is(err, chdb.ErrExposed) {
			if srv != nil {
				srv.Serve(canceled())
			}
			t.Errorf("Listen(%q) without a reader password = %v; want ErrExposed", addr, err)
		}
	}
	srv, err := chdb.Listen("0.0.0.0:0", chdb.NewHandler(e, chdb.HandlerConfig{ReaderPassword: "pw"}))
	if err != nil {
		t.Fatalf("Listen(0.0.0.0:0) with a reader password: %v", err)
	}
	srv.Serve(canceled())
	// Start refuses before it boots an engine.
	if _, err := chdb.Start(chdb.Config{Dir: t.TempDir(), Addr: "0.0.0.0:8123"}); !errors.Is(err, chdb.ErrExposed) {
		t.Errorf("Start on 0.0.0.0 without a reader password = %v; want ErrExposed", err)
	}
}

func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}
