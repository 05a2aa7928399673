package chdb

import (
	"fmt"
	"strings"
	"testing"
)

func TestScratch(t *testing.T) {
	e, err := Open(t.TempDir())
	if err != nil { t.Fatal(err) }
	defer e.Close()
	q := func(ro bool, sql, f string) {
		res, err := e.Exec(t.Context(), Statement{SQL: sql, Format: f, ReadOnly: ro})
		fmt.Printf("== %q ro=%v -> err=%v\n   %q (written %d)\n", sql, ro, err, trunc(res.Data), res.RowsWritten)
	}
	q(false, "SELECT displayName(), version(), revision(), timezone()", "TabSeparated")
	q(false, "SELECT 1", "Native")
	q(false, "SELECT 1 WHERE 0", "Native")
	q(false, "SELECT 1 WHERE 0", "JSON")
	q(false, "SELECT 1 FORMAT JSONEachRow", "Native")
	q(false, "CREATE TABLE t (a UInt64, s LowCardinality(String)) ENGINE=MergeTree ORDER BY a", "")
	q(true, "INSERT INTO t VALUES (1,'x')", "")
	q(true, "SELECT * FROM numbers(3)", "TSV")
	q(true, "SELECT * FROM file('/etc/passwd', 'LineAsString') LIMIT 1", "TSV")
	q(true, "SET max_threads = 2", "")
	q(true, "SET readonly = 0", "")
	q(false, "INSERT INTO t VALUES (1,'x')", "")
	q(false, "SELECT * FROM t", "Native")
	q(false, "SELECT * FROM nope", "Native")
	q(false, "SET max_threads = '3'", "")
	q(false, "SELECT getSetting('max_threads')", "TSV")
	q(false, "SET max_threads = DEFAULT", "")
	q(false, "SELECT getSetting('max_threads')", "TSV")
	q(false, "DESCRIBE (SELECT * FROM t WHERE 0)", "TSV")
	q(false, "DESCRIBE TABLE t", "TSV")
	q(false, "INSERT INTO t SELECT number, 'y' FROM numbers(5)", "")
	q(false, "SELECT count() FROM t", "TSV")
	for _, s := range []string{"SELECT 1", "INSERT INTO t VALUES (1)", "SET a=1", "USE x", "SELECT 1; SELECT 2", "SELECT * FROM file('x')", "SELECT 1 INTO OUTFILE 'x'", "garbage (", "CREATE FUNCTION f AS x -> x", "SHOW TABLES", "EXISTS t", "SELECT * FROM url('http://x')", "INSERT INTO FUNCTION file('x') SELECT 1"} {
		c, n, err := e.Classify(t.Context(), s)
		fmt.Printf("classify %q = %d %d %v\n", s, c, n, err)
	}
	r, err := e.Insert(t.Context(), Statement{SQL: "INSERT INTO t (a, s)", Format: "TabSeparated"}, strings.NewReader("7\tz\n8\tw\n"))
	fmt.Println("insert", r, err)
	q(false, "SELECT count() FROM t", "TSV")
	res, err := e.Exec(t.Context(), Statement{SQL: "SELECT {x:UInt8} + 1", Format: "TSV", Params: map[string]string{"x": "41"}})
	fmt.Printf("params %q %v\n", res.Data, err)
	res, err = e.Exec(t.Context(), Statement{SQL: "SELECT getSetting('max_threads'), currentDatabase()", Format: "TSV", Settings: map[string]string{"max_threads": "5"}, Database: "system"})
	fmt.Printf("settings %q %v\n", res.Data, err)
	q(false, "SELECT getSetting('max_threads'), currentDatabase()", "TSV")
}

func trunc(b []byte) string { if len(b) > 300 { return string(b[:300]) + "..." }; return string(b) }
