package chdb

import (
	"strings"
	"testing"
)

func TestCheckAST(t *testing.T) {
	tables := map[string]bool{"file": true, "url": true, "numbers": true, "format": true}
	tests := []struct {
		name string
		tree string
		ok   bool
	}{
		{"select", "SelectWithUnionQuery (children 1)\n ExpressionList (children 1)\n  SelectQuery (children 1)\n   ExpressionList (children 1)\n    Literal UInt64_1\n", true},
		{"describe table", "DescribeQuery (children 1)\n TableExpression (children 1)\n  TableIdentifier t\n", true},
		{"describe table function", "DescribeQuery (children 1)\n TableExpression (children 1)\n  Function file (children 1)\n   ExpressionList (children 2)\n    Literal '/etc/passwd'\n", false},
		{"describe subquery", "DescribeQuery (children 1)\n TableExpression (children 1)\n  Subquery (children 1)\n   SelectWithUnionQuery (children 1)\n", false},
		{"table function with alias", "SelectWithUnionQuery (children 1)\n ExpressionList (children 1)\n  SelectQuery (children 2)\n   TablesInSelectQuery (children 1)\n    TablesInSelectQueryElement (children 1)\n     TableExpression (children 1)\n      Function url (alias u) (children 1)\n", false},
		{"scalar format", "SelectWithUnionQuery (children 1)\n ExpressionList (children 1)\n  SelectQuery (children 1)\n   ExpressionList (children 1)\n    Function format (children 1)\n", true},
		{"table function in IN", "SelectWithUnionQuery (children 1)\n ExpressionList (children 1)\n  SelectQuery (children 1)\n   ExpressionList (children 1)\n    Function in (children 1)\n     ExpressionList (children 2)\n      Function numbers (children 1)\n", false},
		{"dictGet", "SelectWithUnionQuery (children 1)\n ExpressionList (children 1)\n  Function dictGetString (children 1)\n", false},
		{"explain select", "Explain EXPLAIN PIPELINE (children 1)\n SelectWithUnionQuery (children 1)\n", true},
		{"explain insert", "Explain EXPLAIN (children 1)\n InsertQuery (children 1)\n", false},
		{"check table", "CheckQuery  t (children 1)\n Identifier t\n", false},
		{"two roots", "ShowTables\nShowTables\n", false},
	}
	for _, tt := range tests {
		root, err := parseAST(tt.tree)
		if err == nil {
			err = checkAST(root, tables)
		}
		if (err == nil) != tt.ok {
			t.Errorf("%s: check = %v; want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func FuzzParseAST(f *testing.F) {
	f.Add("SelectWithUnionQuery (children 1)\n ExpressionList (children 1)\n  Function url (alias u) (children 1)\n")
	f.Add("DescribeQuery (children 1)\n TableExpression (children 1)\n")
	f.Add("  x\n y\nz (children 1)")
	f.Fuzz(func(t *testing.T, text string) {
		root, err := parseAST(text)
		if err != nil {
			return
		}
		if root == nil {
			t.Fatalf("parseAST(%q) = nil, nil", text)
		}
		// The check never panics, whatever the tree.
		_ = checkAST(root, map[string]bool{"file": true})
		if strings.TrimSpace(text) == "" {
			t.Fatalf("parseAST(%q) accepted an empty tree", text)
		}
	})
}
