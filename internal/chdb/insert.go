package chdb

import (
	"strings"
)

// insertSplit is an INSERT statement separated from its data.
type insertSplit struct {
	stmt   string // "INSERT INTO t (a, b)" with any SETTINGS clause, no FORMAT
	format string // "Native", "TabSeparated", "Values", ...
	data   int    // offset in the text where the data begins
}

// splitInsert finds where the data of an INSERT begins: after
// "FORMAT <name>" or after the VALUES keyword, at the top level of the
// statement. ok is false for anything else, including INSERT ... SELECT and
// INSERT ... FROM INFILE, which run as plain queries.
//
// chDB treats query text as a script and cuts inline data at the first
// newline, so the data must reach the engine separately.
func splitInsert(text string) (insertSplit, bool) {
	lx := lexer{s: text}
	first, _ := lx.next()
	if !strings.EqualFold(first, "INSERT") {
		return insertSplit{}, false
	}
	depth := 0
	for {
		tok, start := lx.next()
		switch {
		case tok == "":
			return insertSplit{}, false
		case tok == "(":
			depth++
		case tok == ")":
			depth--
		case depth > 0:
		case strings.EqualFold(tok, "SELECT"), strings.EqualFold(tok, "WITH"), strings.EqualFold(tok, "INFILE"):
			return insertSplit{}, false
		case strings.EqualFold(tok, "VALUES"):
			return insertSplit{stmt: strings.TrimSpace(text[:start]), format: "Values", data: lx.pos}, true
		case strings.EqualFold(tok, "FORMAT"):
			name, _ := lx.next()
			if !isIdent(name) {
				return insertSplit{}, false
			}
			// Data starts after the first newline if there is one among the
			// whitespace after the format name, else at the first
			// non-whitespace byte, as in ClickHouse.
			p := lx.pos
			for p < len(text) && (text[p] == ' ' || text[p] == '\t' || text[p] == '\r') {
				p++
			}
			if p < len(text) && text[p] == '\n' {
				p++
			}
			return insertSplit{stmt: strings.TrimSpace(text[:start]), format: name, data: p}, true
		}
	}
}

// leadingKeyword returns the first keyword of a statement, upper-cased,
// skipping comments and opening parentheses.
func leadingKeyword(text string) string {
	lx := lexer{s: text}
	for {
		tok, _ := lx.next()
		if tok != "(" {
			return strings.ToUpper(tok)
		}
	}
}

// lexer splits SQL into just enough tokens to find keywords at the top
// level: words, single punctuation bytes, and quoted strings or identifiers
// as one token each. Comments and whitespace are skipped.
type lexer struct {
	s   string
	pos int
}

func (l *lexer) next() (tok string, start int) {
	s := l.s
	for l.pos < len(s) {
		c := s[l.pos]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			l.pos++
		case c == '-' && strings.HasPrefix(s[l.pos:], "--"), c == '#':
			for l.pos < len(s) && s[l.pos] != '\n' {
				l.pos++
			}
		case c == '/' && strings.HasPrefix(s[l.pos:], "/*"):
			end := strings.Index(s[l.pos+2:], "*/")
			if end < 0 {
				l.pos = len(s)
			} else {
				l.pos += 2 + end + 2
			}
		case c == '\'' || c == '"' || c == '`':
			start = l.pos
			l.pos++
			for l.pos < len(s) && s[l.pos] != c {
				if s[l.pos] == '\\' {
					l.pos++
				}
				l.pos++
			}
			l.pos = min(l.pos+1, len(s))
			return s[start:l.pos], start
		case isWordByte(c):
			start = l.pos
			for l.pos < len(s) && isWordByte(s[l.pos]) {
				l.pos++
			}
			return s[start:l.pos], start
		default:
			l.pos++
			return s[l.pos-1 : l.pos], l.pos - 1
		}
	}
	return "", len(s)
}

func isWordByte(c byte) bool {
	return c == '_' || c == '$' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}
