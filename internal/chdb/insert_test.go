package chdb

import (
	"strings"
	"testing"
)

func TestSplitInsert(t *testing.T) {
	tests := []struct{ text, stmt, format, data string }{
		{"INSERT INTO t (a, b) FORMAT Native", "INSERT INTO t (a, b)", "Native", ""},
		{"INSERT INTO `db`.`t` (`a`) FORMAT Native\x01\x02", "INSERT INTO `db`.`t` (`a`)", "Native", "\x01\x02"},
		{"insert into t format TabSeparated\n1\t2\n", "insert into t", "TabSeparated", "1\t2\n"},
		{"INSERT INTO t FORMAT CSV  \r\n  1,2\n", "INSERT INTO t", "CSV", "  1,2\n"},
		{"INSERT INTO t FORMAT JSONEachRow {\"a\":1}", "INSERT INTO t", "JSONEachRow", "{\"a\":1}"},
		{"INSERT INTO t VALUES\n(1, 'x\ny'),\n(2, 'z')", "INSERT INTO t", "Values", "\n(1, 'x\ny'),\n(2, 'z')"},
		{"INSERT INTO t SETTINGS async_insert=1 FORMAT Native", "INSERT INTO t SETTINGS async_insert=1", "Native", ""},
		{"INSERT INTO t (format, `values`) FORMAT Native", "INSERT INTO t (format, `values`)", "Native", ""},
		{"/* FORMAT x */ INSERT INTO t -- VALUES\n FORMAT TSV\nx", "/* FORMAT x */ INSERT INTO t -- VALUES", "TSV", "x"},
		{"INSERT INTO FUNCTION file('a FORMAT b', 'CSV') FORMAT CSV\n1", "INSERT INTO FUNCTION file('a FORMAT b', 'CSV')", "CSV", "1"},
	}
	for _, tt := range tests {
		sp, ok := splitInsert(tt.text)
		if !ok {
			t.Errorf("splitInsert(%q) ok = false; want true", tt.text)
			continue
		}
		if sp.stmt != tt.stmt || sp.format != tt.format || tt.text[sp.data:] != tt.data {
			t.Errorf("splitInsert(%q) = %q, %q, data %q; want %q, %q, data %q",
				tt.text, sp.stmt, sp.format, tt.text[sp.data:], tt.stmt, tt.format, tt.data)
		}
	}
	// No data follows the statement: it is not split.
	for _, text := range []string{
		"INSERT INTO t SELECT 1",
		"INSERT INTO t WITH 1 AS x SELECT x",
		"INSERT INTO t FROM INFILE 'f' FORMAT CSV",
		"INSERT INTO t",
		"SELECT 1 FORMAT Native",
		"INSERT INTO t FORMAT 'x'",
	} {
		if _, ok := splitInsert(text); ok {
			t.Errorf("splitInsert(%q) ok = true; want false", text)
		}
	}
}

func TestLeadingKeyword(t *testing.T) {
	tests := []struct{ text, want string }{
		{"  insert into t", "INSERT"},
		{"-- c\n/* d */ (SELECT 1)", "SELECT"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := leadingKeyword(tt.text); got != tt.want {
			t.Errorf("leadingKeyword(%q) = %q; want %q", tt.text, got, tt.want)
		}
	}
}

func FuzzSplitInsert(f *testing.F) {
	for _, s := range []string{"INSERT INTO t FORMAT Native\x00", "INSERT INTO t VALUES (1)", "INSERT 'unterminated", "INSERT /* open"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		sp, ok := splitInsert(text)
		if !ok {
			return
		}
		if sp.data < 0 || sp.data > len(text) {
			t.Fatalf("splitInsert(%q) data offset %d outside the text", text, sp.data)
		}
		if !strings.HasPrefix(strings.TrimSpace(text), sp.stmt) {
			t.Fatalf("splitInsert(%q) stmt %q is not a prefix of the text", text, sp.stmt)
		}
	})
}

func TestNewException(t *testing.T) {
	tests := []struct {
		text       string
		code       int
		name       string
		msgPrefix  string
		httpStatus int
	}{
		{"Code: 60. DB::Exception: Unknown table expression identifier 'x'. (UNKNOWN_TABLE)", 60, "UNKNOWN_TABLE", "Code: 60. DB::Exception: Unknown", 404},
		{"Code: 164. DB::Exception: default: Cannot execute query in readonly mode. (READONLY)", 164, "READONLY", "Code: 164.", 403},
		{"Code: 62. DB::Exception: Syntax error: failed at position 1. (SYNTAX_ERROR) (version 26.7.2.1)", 62, "SYNTAX_ERROR", "Code: 62.", 400},
		{"something odd", CodeStdException, "STD_EXCEPTION", "Code: 1001. DB::Exception: something odd", 500},
	}
	for _, tt := range tests {
		e := newException(tt.text)
		if e.Code != tt.code || e.Name != tt.name || !strings.HasPrefix(e.Message, tt.msgPrefix) || httpStatus(e.Code) != tt.httpStatus {
			t.Errorf("newException(%q) = %+v (status %d); want code %d, name %s, message starting %q, status %d",
				tt.text, e, httpStatus(e.Code), tt.code, tt.name, tt.msgPrefix, tt.httpStatus)
		}
	}
}
