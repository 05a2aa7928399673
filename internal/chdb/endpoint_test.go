package chdb_test

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/otpscope/otpscope/internal/chdb"
	"github.com/otpscope/otpscope/internal/chdb/chdbtest"
)

// TestMain opens the shared engine with a backup directory, for the
// BACKUPs of TestSessionResetAfterFailedBackup.
func TestMain(m *testing.M) {
	chdbtest.Main(m, chdbtest.WithSetup(func(dir string) ([]chdb.Option, error) {
		return []chdb.Option{chdb.WithBackupDir(filepath.Join(dir, "backups"))}, nil
	}))
}

const eventsDDL = `CREATE TABLE events (
	id UUID,
	at DateTime64(3, 'UTC'),
	channel LowCardinality(String),
	error_code Nullable(String),
	attrs Map(String, String),
	seq UInt64,
	cost Float64
) ENGINE = MergeTree ORDER BY (channel, at)`

// serveEvents serves a fresh database whose owner has created the events
// table and inserted a row for each of seqs; it returns the server and the
// owner's connection.
func serveEvents(t *testing.T, seqs ...uint64) (*chdbtest.Server, clickhouse.Conn) {
	t.Helper()
	srv := chdbtest.Serve(t)
	owner := chdbtest.Conn(t, srv.Options())
	if err := owner.Exec(t.Context(), eventsDDL); err != nil {
		t.Fatalf("owner: create table: %v", err)
	}
	for _, seq := range seqs {
		if err := owner.Exec(t.Context(), fmt.Sprintf("INSERT INTO events (id, seq) VALUES (generateUUIDv4(), %d)", seq)); err != nil {
			t.Fatalf("owner: insert: %v", err)
		}
	}
	return srv, owner
}

type event struct {
	ID        uuid.UUID
	At        time.Time
	Channel   string
	ErrorCode *string
	Attrs     map[string]string
	Seq       uint64
	Cost      float64
}

func sampleEvents(n int) []event {
	base := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	channels := []string{"SMS", "VIBER", "VOICE", "WHATSAPP"}
	out := make([]event, n)
	for i := range out {
		var code *string
		if i%3 == 0 {
			c := fmt.Sprintf("E%03d\nline two\t'quoted'", i)
			code = &c
		}
		out[i] = event{
			ID:        uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "event-%d", i)),
			At:        base.Add(time.Duration(i) * 1500 * time.Microsecond).Truncate(time.Millisecond),
			Channel:   channels[i%len(channels)],
			ErrorCode: code,
			Attrs:     map[string]string{"otp": fmt.Sprint(i), "profile": "p\n1"},
			Seq:       uint64(i) * 1_000_003,
			Cost:      float64(i) / 8,
		}
	}
	return out
}

func equalEvent(a, b event) bool {
	return a.ID == b.ID && a.At.Equal(b.At) && a.Channel == b.Channel &&
		(a.ErrorCode == nil) == (b.ErrorCode == nil) && (a.ErrorCode == nil || *a.ErrorCode == *b.ErrorCode) &&
		maps.Equal(a.Attrs, b.Attrs) && a.Seq == b.Seq && a.Cost == b.Cost
}

func TestDriverEndToEnd(t *testing.T) {
	tests := []struct {
		name        string
		compression *clickhouse.Compression
	}{
		{"none", nil},
		{"lz4", &clickhouse.Compression{Method: clickhouse.CompressionLZ4}},
		{"zstd", &clickhouse.Compression{Method: clickhouse.CompressionZSTD}},
		{"gzip", &clickhouse.Compression{Method: clickhouse.CompressionGZIP}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := chdbtest.Serve(t)
			opts := srv.Options()
			opts.Compression = tt.compression
			conn := chdbtest.Conn(t, opts)
			ctx := t.Context()

			if err := conn.Ping(ctx); err != nil {
				t.Fatalf("Ping: %v", err)
			}
			v, err := conn.ServerVersion()
			if err != nil || v.Version.Major != 26 {
				t.Fatalf("ServerVersion() = %v, %v; want major version 26", v, err)
			}
			if err := conn.Exec(ctx, eventsDDL); err != nil {
				t.Fatalf("create table: %v", err)
			}

			want := sampleEvents(2500)
			batch, err := conn.PrepareBatch(ctx, "INSERT INTO events")
			if err != nil {
				t.Fatalf("PrepareBatch: %v", err)
			}
			for _, e := range want {
				if err := batch.Append(e.ID, e.At, e.Channel, e.ErrorCode, e.Attrs, e.Seq, e.Cost); err != nil {
					t.Fatalf("Append: %v", err)
				}
			}
			if err := batch.Send(); err != nil {
				t.Fatalf("Send: %v", err)
			}

			rows, err := conn.Query(ctx, "SELECT id, at, channel, error_code, attrs, seq, cost FROM events ORDER BY seq")
			if err != nil {
				t.Fatalf("Query: %v", err)
			}
			var got []event
			for rows.Next() {
				var e event
				if err := rows.Scan(&e.ID, &e.At, &e.Channel, &e.ErrorCode, &e.Attrs, &e.Seq, &e.Cost); err != nil {
					t.Fatalf("Scan: %v", err)
				}
				got = append(got, e)
			}
			if err := rows.Err(); err != nil {
				t.Fatalf("rows: %v", err)
			}
			rows.Close()
			if len(got) != len(want) {
				t.Fatalf("read back %d rows; want %d", len(got), len(want))
			}
			for i := range want {
				if !equalEvent(got[i], want[i]) {
					t.Fatalf("row %d = %+v; want %+v", i, got[i], want[i])
				}
			}

			// A result without rows still names and types its columns.
			rows, err = conn.Query(ctx, "SELECT channel, seq FROM events WHERE seq > {min:UInt64}",
				clickhouse.Named("min", "18446744073709551615"))
			if err != nil {
				t.Fatalf("empty Query: %v", err)
			}
			if rows.Next() {
				t.Errorf("empty query returned a row")
			}
			cols := rows.ColumnTypes()
			if len(cols) != 2 || cols[0].Name() != "channel" || cols[0].DatabaseTypeName() != "LowCardinality(String)" ||
				cols[1].DatabaseTypeName() != "UInt64" {
				t.Errorf("empty result columns = %v; want channel LowCardinality(String), seq UInt64", describe(cols))
			}
			rows.Close()

			// Query parameters bound by the engine.
			var n uint64
			if err := conn.QueryRow(ctx, "SELECT count() FROM events WHERE channel = {ch:String}",
				clickhouse.Named("ch", "SMS")).Scan(&n); err != nil {
				t.Fatalf("count with parameter: %v", err)
			}
			if n != 625 {
				t.Errorf("count(SMS) = %d; want 625", n)
			}

			// Errors surface as the driver's exception type.
			_, err = conn.Query(ctx, "SELECT * FROM missing_table")
			var ex *clickhouse.Exception
			if !errors.As(err, &ex) || ex.Code != 60 {
				t.Errorf("query of a missing table: err = %v; want *clickhouse.Exception with code 60", err)
			}
		})
	}
}

func describe(cols []driver.ColumnType) []string {
	var s []string
	for _, c := range cols {
		s = append(s, c.Name()+" "+c.DatabaseTypeName())
	}
	return s
}

func TestReadOnlyForOthers(t *testing.T) {
	srv, owner := serveEvents(t, 7)
	ctx := t.Context()

	tests := []struct {
		name string
		auth clickhouse.Auth
	}{
		{"anonymous", clickhouse.Auth{Database: srv.Database}},
		{"other user", clickhouse.Auth{Database: srv.Database, Username: "grafana", Password: "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := srv.Options()
			opts.Auth = tt.auth
			reader := chdbtest.Conn(t, opts)

			var seq uint64
			if err := reader.QueryRow(ctx, "SELECT seq FROM events").Scan(&seq); err != nil || seq != 7 {
				t.Fatalf("reader SELECT = %d, %v; want 7, nil", seq, err)
			}
			writes := []struct {
				sql  string
				code int32
			}{
				{"INSERT INTO events (id, seq) VALUES (generateUUIDv4(), 8)", chdb.CodeReadonly},
				{"CREATE TABLE x (a UInt8) ENGINE = Memory", chdb.CodeReadonly},
				{"DROP TABLE events", chdb.CodeReadonly},
				{"SELECT * FROM file('/etc/hostname', 'LineAsString')", chdb.CodeAccessDenied},
			}
			for _, w := range writes {
				err := reader.Exec(ctx, w.sql)
				var ex *clickhouse.Exception
				if !errors.As(err, &ex) || ex.Code != w.code {
					t.Errorf("reader Exec(%q) = %v; want *clickhouse.Exception with code %d", w.sql, err, w.code)
				}
			}
			batch, err := reader.PrepareBatch(ctx, "INSERT INTO events (id, seq)")
			if err != nil {
				t.Fatalf("reader PrepareBatch: %v", err)
			}
			if err := batch.Append(uuid.New(), uint64(9)); err != nil {
				t.Fatalf("reader Append: %v", err)
			}
			err = batch.Send()
			var ex *clickhouse.Exception
			if !errors.As(err, &ex) || ex.Code != chdb.CodeReadonly {
				t.Errorf("reader batch Send = %v; want *clickhouse.Exception with code %d", err, chdb.CodeReadonly)
			}
		})
	}
	var n uint64
	if err := owner.QueryRow(ctx, "SELECT count() FROM events").Scan(&n); err != nil || n != 1 {
		t.Errorf("after the readers: count() = %d, %v; want 1, nil", n, err)
	}
}

func TestExternalWritesAllowed(t *testing.T) {
	srv := chdbtest.ServeConfig(t, chdb.HandlerConfig{AllowExternalWrites: true})
	opts := srv.Options()
	opts.Auth = clickhouse.Auth{Database: srv.Database}
	conn := chdbtest.Conn(t, opts)
	if err := conn.Exec(t.Context(), "CREATE TABLE x (a UInt8) ENGINE = Memory"); err != nil {
		t.Fatalf("anonymous CREATE with AllowExternalWrites: %v", err)
	}
}

func TestDSN(t *testing.T) {
	srv := chdbtest.Serve(t)
	opts, err := clickhouse.ParseDSN(srv.DSN)
	if err != nil {
		t.Fatalf("ParseDSN(%q): %v", srv.DSN, err)
	}
	conn := chdbtest.Conn(t, opts)
	// Writing proves the DSN carries the owner's credentials.
	if err := conn.Exec(t.Context(), "CREATE TABLE "+srv.Database+".x (a UInt8) ENGINE = Memory"); err != nil {
		t.Fatalf("CREATE through the DSN: %v", err)
	}
}

// TestHTTP covers what curl users and dashboards send.
func TestHTTP(t *testing.T) {
	srv := chdbtest.Serve(t)
	owner := url.UserPassword(srv.User, srv.Password)
	base := "http://" + srv.Addr

	tests := []struct {
		name       string
		method     string
		path       string
		query      url.Values
		user       *url.Userinfo
		header     http.Header
		body       string
		wantStatus int
		wantBody   string
		wantCode   string // X-ClickHouse-Exception-Code
	}{
		{name: "ping", method: "GET", path: "/ping", wantStatus: 200, wantBody: "Ok.\n"},
		{name: "root", method: "GET", path: "/", wantStatus: 200, wantBody: "Ok.\n"},
		{name: "unknown path", method: "GET", path: "/nope", wantStatus: 404, wantCode: "60"},
		{name: "GET query", method: "GET", path: "/", query: url.Values{"query": {"SELECT 1 + 1"}}, wantStatus: 200, wantBody: "2\n"},
		{name: "create", method: "POST", path: "/", user: owner, query: url.Values{"database": {srv.Database}},
			body: "CREATE TABLE kv (k String, v UInt32) ENGINE = MergeTree ORDER BY k", wantStatus: 200},
		{name: "insert TSV in body after query", method: "POST", path: "/", user: owner,
			query: url.Values{"query": {"INSERT INTO " + srv.Database + ".kv FORMAT TabSeparated"}},
			body:  "a\t1\nb\t2\n", wantStatus: 200},
		{name: "insert inline multi-line values", method: "POST", path: "/", user: owner,
			body: "INSERT INTO " + srv.Database + ".kv VALUES\n('c', 3),\n('d', 4)", wantStatus: 200},
		{name: "insert inline JSONEachRow with header auth", method: "POST", path: "/",
			header: http.Header{"X-Clickhouse-User": {srv.User}, "X-Clickhouse-Key": {srv.Password}},
			body:   "INSERT INTO " + srv.Database + ".kv FORMAT JSONEachRow\n{\"k\":\"e\",\"v\":5}\n", wantStatus: 200},
		{name: "select default TSV", method: "POST", path: "/", query: url.Values{"database": {srv.Database}},
			body: "SELECT k, v FROM kv ORDER BY k", wantStatus: 200, wantBody: "a\t1\nb\t2\nc\t3\nd\t4\ne\t5\n"},
		{name: "select JSONEachRow by param", method: "POST", path: "/",
			query: url.Values{"database": {srv.Database}, "default_format": {"JSONEachRow"}, "param_k": {"b"}},
			body:  "SELECT v FROM kv WHERE k = {k:String}", wantStatus: 200, wantBody: "{\"v\":2}\n"},
		{name: "FORMAT clause wins", method: "POST", path: "/", query: url.Values{"default_format": {"Native"}, "client_protocol_version": {"54460"}},
			body: "SELECT 1 AS x FORMAT CSV", wantStatus: 200, wantBody: "1\n"},
		{name: "owner setting applies", method: "POST", path: "/", user: owner, query: url.Values{"max_threads": {"3"}},
			body: "SELECT getSetting('max_threads')", wantStatus: 200, wantBody: "3\n"},
		{name: "setting does not stick", method: "POST", path: "/", user: owner,
			body: "SELECT getSetting('max_threads') != 3", wantStatus: 200, wantBody: "1\n"},
		{name: "reader cannot set settings", method: "POST", path: "/", query: url.Values{"max_partitions_per_insert_block": {"1"}},
			body: "SELECT 1", wantStatus: 403, wantCode: "164"},
		{name: "reader insert refused", method: "POST", path: "/",
			query: url.Values{"query": {"INSERT INTO " + srv.Database + ".kv FORMAT TabSeparated"}},
			body:  "z\t9\n", wantStatus: 403, wantCode: "164"},
		{name: "GET cannot write even as owner", method: "GET", path: "/", user: owner,
			query: url.Values{"query": {"DROP TABLE " + srv.Database + ".kv"}}, wantStatus: 403, wantCode: "164"},
		{name: "wrong password", method: "POST", path: "/", user: url.UserPassword(srv.User, "wrong"),
			body: "SELECT 1", wantStatus: 401, wantCode: "516"},
		{name: "syntax error", method: "POST", path: "/", body: "SELEC 1", wantStatus: 400, wantCode: "62"},
		{name: "USE does not outlive its request", method: "POST", path: "/", user: owner,
			body: "USE system", wantStatus: 200},
		{name: "next request is in default", method: "POST", path: "/", user: owner,
			body: "SELECT currentDatabase()", wantStatus: 200, wantBody: "default\n"},
		{name: "count after all", method: "GET", path: "/", query: url.Values{"query": {"SELECT count() FROM " + srv.Database + ".kv"}},
			wantStatus: 200, wantBody: "5\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := base + tt.path
			if tt.query != nil {
				u += "?" + tt.query.Encode()
			}
			req, err := http.NewRequestWithContext(t.Context(), tt.method, u, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.user != nil {
				p, _ := tt.user.Password()
				req.SetBasicAuth(tt.user.Username(), p)
			}
			maps.Copy(req.Header, tt.header)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", tt.method, u, err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tt.wantStatus {
				t.Fatalf("%s %s = %d %q; want %d", tt.method, u, res.StatusCode, body, tt.wantStatus)
			}
			if tt.wantBody != "" && string(body) != tt.wantBody {
				t.Errorf("%s %s body = %q; want %q", tt.method, u, body, tt.wantBody)
			}
			if got := res.Header.Get("X-ClickHouse-Exception-Code"); got != tt.wantCode {
				t.Errorf("%s %s exception code = %q; want %q (body %q)", tt.method, u, got, tt.wantCode, body)
			}
			if tt.wantCode != "" && !strings.HasPrefix(string(body), "Code: "+tt.wantCode+". DB::Exception: ") {
				t.Errorf("%s %s error body = %q; want ClickHouse's \"Code: %s. DB::Exception: ...\"", tt.method, u, body, tt.wantCode)
			}
		})
	}
}

// Without a reader password the endpoint answers only requests addressed to
// this machine: a web page that rebinds its own name to 127.0.0.1 would
// read every table as same-origin. With one, the password guards it.
func TestOpenEndpointOnlyForLoopbackHosts(t *testing.T) {
	query := func(srv *chdbtest.Server, host string, user *url.Userinfo) (int, string) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+srv.Addr+"/?query=SELECT+1", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		if user != nil {
			p, _ := user.Password()
			req.SetBasicAuth(user.Username(), p)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("X-ClickHouse-Exception-Code") + " " + string(body)
	}
	open := chdbtest.Serve(t)
	for host, want := range map[string]int{
		open.Addr: 200, "localhost": 200, "[::1]:8123": 200,
		"rebound.evil.example:8123": 403, "10.0.0.5": 403,
	} {
		if code, body := query(open, host, nil); code != want {
			t.Errorf("open endpoint, Host %s: %d %s; want %d", host, code, body, want)
		}
	}
	// A page of another site, which cannot read the answer, could still
	// hold the guests' places: refused, whatever the Host.
	for _, h := range []map[string]string{
		{"Origin": "https://evil.example"},
		{"Sec-Fetch-Site": "cross-site"},
		{"Sec-Fetch-Site": "same-site", "Origin": "http://127.0.0.1:3000"},
	} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+open.Addr+"/", strings.NewReader("SELECT 1"))
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-ClickHouse-Exception-Code") != "497" {
			t.Errorf("a query with %v: %s (code %s); want 403, ACCESS_DENIED", h, resp.Status, resp.Header.Get("X-ClickHouse-Exception-Code"))
		}
	}
	guarded := chdbtest.ServeConfig(t, chdb.HandlerConfig{ReaderUser: "grafana", ReaderPassword: "reader-password-0123456789"})
	if code, body := query(guarded, "clickhouse.internal:8123", url.UserPassword("grafana", "reader-password-0123456789")); code != 200 {
		t.Errorf("endpoint with a reader password, Host clickhouse.internal: %d %s; want 200", code, body)
	}
}
