package chdb_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ClickHouse/ch-go/compress"
	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/otpscope/otpscope/internal/chdb"
	"github.com/otpscope/otpscope/internal/chdb/chdbtest"
)

func TestEngineQuery(t *testing.T) {
	e := chdbtest.Open(t)
	tests := []struct {
		sql, format, want string
	}{
		{"SELECT 1 + 1", "TabSeparated", "2\n"},
		{"SELECT 'a' AS s, 2 AS n", "JSONEachRow", "{\"s\":\"a\",\"n\":2}\n"},
		{"SELECT number FROM numbers(3)", "CSV", "0\n1\n2\n"},
		{"SELECT 1 WHERE 0", "TabSeparated", ""},
	}
	for _, tt := range tests {
		got, err := e.Query(t.Context(), tt.sql, tt.format)
		if err != nil || string(got) != tt.want {
			t.Errorf("Query(%q, %q) = %q, %v; want %q, nil", tt.sql, tt.format, got, err, tt.want)
		}
	}
}

func TestEngineError(t *testing.T) {
	e := chdbtest.Open(t)
	_, err := e.Query(t.Context(), "SELECT * FROM no_such_table", "TabSeparated")
	var ex *chdb.Exception
	if !errors.As(err, &ex) || ex.Code != chdb.CodeUnknownTable || ex.Name != "UNKNOWN_TABLE" ||
		!strings.HasPrefix(ex.Message, "Code: 60. DB::Exception: ") {
		t.Fatalf("Query(missing table) error = %#v; want *chdb.Exception code 60 UNKNOWN_TABLE", err)
	}
}

func TestEngineOneDirectoryPerProcess(t *testing.T) {
	chdbtest.Open(t)
	_, err := chdb.Open(t.TempDir())
	if !errors.Is(err, chdb.ErrEngineInUse) {
		t.Fatalf("second Open = %v; want ErrEngineInUse", err)
	}
}

func TestEngineReadOnlyStatement(t *testing.T) {
	e := chdbtest.Open(t)
	db := chdbtest.Database(t, e)
	tests := []string{
		"CREATE TABLE " + db + ".x (a UInt8) ENGINE = Memory",
		"SELECT * FROM file('/etc/hostname', 'LineAsString')",
		"SET max_threads = 1",
	}
	for _, sql := range tests {
		_, err := e.Exec(t.Context(), chdb.Statement{SQL: sql, ReadOnly: true})
		var ex *chdb.Exception
		if !errors.As(err, &ex) || ex.Code != chdb.CodeReadonly {
			t.Errorf("Exec(%q, ReadOnly) = %v; want code %d", sql, err, chdb.CodeReadonly)
		}
	}
}

// TestEngineInsert feeds data in several formats and through ClickHouse's
// compressed framing, including bodies larger than one append chunk.
func TestEngineInsert(t *testing.T) {
	e := chdbtest.Open(t)
	db := chdbtest.Database(t, e)
	if _, err := e.Query(t.Context(), "CREATE TABLE "+db+".kv (k String, v UInt64) ENGINE = MergeTree ORDER BY k", ""); err != nil {
		t.Fatal(err)
	}
	native, err := e.Query(t.Context(), "SELECT concat('k\\n', toString(number)) AS k, number AS v FROM numbers(200000)", "Native")
	if err != nil {
		t.Fatal(err)
	}
	var tsv strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&tsv, "line\\n%d\t%d\n", i, i)
	}
	framed := func(m compress.Method, data []byte) []byte {
		w := compress.NewWriter(compress.LevelZero, m)
		if err := w.Compress(data); err != nil {
			t.Fatal(err)
		}
		return bytes.Clone(w.Data)
	}
	tests := []struct {
		name   string
		format string
		body   func() *bytes.Reader
		want   uint64
	}{
		{"native", "Native", func() *bytes.Reader { return bytes.NewReader(native) }, 200000},
		{"native lz4 framed", "Native", func() *bytes.Reader { return bytes.NewReader(framed(compress.LZ4, native)) }, 200000},
		{"native zstd framed", "Native", func() *bytes.Reader { return bytes.NewReader(framed(compress.ZSTD, native)) }, 200000},
		{"tsv", "TabSeparated", func() *bytes.Reader { return bytes.NewReader([]byte(tsv.String())) }, 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := e.Query(t.Context(), "TRUNCATE TABLE "+db+".kv", ""); err != nil {
				t.Fatal(err)
			}
			var body interface{ Read([]byte) (int, error) } = tt.body()
			if strings.Contains(tt.name, "framed") {
				body = compress.NewReader(body)
			}
			res, err := e.Insert(t.Context(), chdb.Statement{SQL: "INSERT INTO " + db + ".kv", Format: tt.format}, body)
			if err != nil || res.RowsWritten != tt.want {
				t.Fatalf("Insert = %+v, %v; want %d rows written", res, err, tt.want)
			}
			got, err := e.Query(t.Context(), "SELECT count(), countIf(position(k, '\\n') > 0) FROM "+db+".kv", "TabSeparated")
			if want := fmt.Sprintf("%d\t%d\n", tt.want, tt.want); err != nil || string(got) != want {
				t.Errorf("after insert: count = %q, %v; want %q (every key keeps its newline)", got, err, want)
			}
		})
	}
}

// A query that fails after writing part of its result must not leave that
// part in front of the next query's result (chDB 26.7 does; see drain).
func TestFailedQueryLeavesNothingBehind(t *testing.T) {
	e := chdbtest.Open(t)
	for _, readOnly := range []bool{false, true} {
		failing := chdb.Statement{SQL: "SELECT throwIf(number = 200000) FROM system.numbers LIMIT 300000", Format: "TSV", ReadOnly: readOnly}
		if _, err := e.Exec(t.Context(), failing); err == nil {
			t.Fatalf("read-only %v: %s = nil; want an error", readOnly, failing.SQL)
		}
		res, err := e.Exec(t.Context(), chdb.Statement{SQL: "SELECT 'next'", Format: "TSV", ReadOnly: readOnly})
		if got := string(res.Data); err != nil || got != "next\n" {
			if len(got) > 40 {
				got = got[:40] + "..."
			}
			t.Errorf("read-only %v: the query after a failed one = %q, %v; want \"next\\n\"", readOnly, got, err)
		}
	}
}

// TestEngineDefaultSettings: every connection of the engine runs with
// DefaultSettings, a statement may ask for them as they are (as the store's
// connection does) even read-only, and one that asks for another value has
// it for itself alone.
func TestEngineDefaultSettings(t *testing.T) {
	e := chdbtest.Open(t)
	for name, value := range chdb.DefaultSettings {
		sql := fmt.Sprintf("SELECT value FROM system.settings WHERE name = '%s'", name)
		for _, st := range []chdb.Statement{
			{SQL: sql, Format: "TabSeparated"},
			{SQL: sql, Format: "TabSeparated", ReadOnly: true},
			{SQL: sql, Format: "TabSeparated", Settings: map[string]string{name: value}},
			{SQL: sql, Format: "TabSeparated", ReadOnly: true, Settings: map[string]string{name: value}},
		} {
			res, err := e.Exec(t.Context(), st)
			if err != nil || strings.TrimSpace(string(res.Data)) != value {
				t.Errorf("%s (read-only %v, settings %v) = %q, %v; want %q", name, st.ReadOnly, st.Settings, res.Data, err, value)
			}
		}
	}
	// A statement's own value lasts for the statement, then the engine's
	// is back (not ClickHouse's default).
	sql := "SELECT value FROM system.settings WHERE name = 'optimize_and_compare_chain'"
	for _, want := range []string{"1", "0"} {
		st := chdb.Statement{SQL: sql, Format: "TabSeparated"}
		if want == "1" {
			st.Settings = map[string]string{"optimize_and_compare_chain": "1"}
		}
		res, err := e.Exec(t.Context(), st)
		if err != nil || strings.TrimSpace(string(res.Data)) != want {
			t.Errorf("optimize_and_compare_chain with settings %v = %q, %v; want %q", st.Settings, res.Data, err, want)
		}
	}
	_, err := e.Exec(t.Context(), chdb.Statement{SQL: "SELECT 1", Format: "TabSeparated", ReadOnly: true, Settings: map[string]string{"optimize_and_compare_chain": "1"}})
	var ex *chdb.Exception
	if !errors.As(err, &ex) || ex.Code != chdb.CodeReadonly {
		t.Errorf("read-only statement changing a setting = %v; want code %d", err, chdb.CodeReadonly)
	}
}

// A BACKUP that the engine refuses once it has begun (its name taken)
// leaves chDB's connection answering "Query with id … is already running"
// for a moment. The drain after the failure waits that out; otherwise the
// session's reset fails and the connection stays in the request's
// database for whoever comes next.
func TestSessionResetAfterFailedBackup(t *testing.T) {
	srv := chdbtest.Serve(t)
	conn := chdbtest.Conn(t, srv.Options())
	ctx := t.Context()
	// Tables to back up: an empty database's BACKUP is over too soon.
	for i := range 20 {
		if err := conn.Exec(ctx, fmt.Sprintf("CREATE TABLE t%d ENGINE = MergeTree ORDER BY n AS SELECT number AS n FROM numbers(1000)", i)); err != nil {
			t.Fatal(err)
		}
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	backup := fmt.Sprintf("BACKUP DATABASE `%s` TO File('session-%x')", srv.Database, b)
	if err := conn.Exec(ctx, backup); err != nil {
		t.Fatal(err)
	}
	// A setting of its own, as the store's statements carry.
	sctx := clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"max_query_size": 1 << 20}))
	if err := conn.Exec(sctx, backup); err == nil || !strings.Contains(err.Error(), "BACKUP_ALREADY_EXISTS") {
		t.Fatalf("the same backup again = %v; want BACKUP_ALREADY_EXISTS", err)
	}
	res, err := srv.Engine.Exec(ctx, chdb.Statement{SQL: "SELECT currentDatabase()", Format: "TabSeparated"})
	if got := strings.TrimSpace(string(res.Data)); err != nil || got != "default" {
		t.Errorf("the next statement ran in %q, %v; want default", got, err)
	}
}
