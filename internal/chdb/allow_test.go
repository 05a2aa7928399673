package chdb

import (
	"strings"
	"testing"
)

func TestCheckAST(t *testing.T) {
	tables := map[string]bool{"file": true, "url": true, "numbers": true, "format": true}
	type tree struct{ name, text string }
	allowed := []tree{
		{"select", "SelectWithUnionQuery (children 1)\n ExpressionList (children 1)\n  SelectQuery (children 1)\n   ExpressionList (children 1)\n    Literal UInt64_1\n"},
		{"describe table", "DescribeQuery (children 1)\n TableExpression (children 1)\n  TableIdentifier t\n"},
		{"scalar format", "SelectWithUnionQuery (children 1)\n ExpressionList (children 1)\n  SelectQuery (children 1)\n   ExpressionList (children 1)\n    Function format (children 1)\n"},
		{"explain select", "Explain EXPLAIN PIPELINE (children 1)\n SelectWithUnionQuery (children 1)\n"},
	}
	for _, tt := range allowed {
		if err := check(tt.text, tables); err != nil {
			t.Errorf("%s: check = %v; want nil", tt.name, err)
		}
	}
	refused := []tree{
		{"describe table function", "DescribeQuery (children 1)\n TableExpression (children 1)\n  Function file (children 1)\n   ExpressionList (children 2)\n    Literal '/etc/passwd'\n"},
		{"describe subquery", "DescribeQuery (children 1)\n TableExpression (children 1)\n  Subquery (children 1)\n   SelectWithUnionQuery (children 1)\n"},
		{"table function with alias", "SelectWithUnionQuery (children 1)\n ExpressionList (children 1)\n  SelectQuery (children 2)\n   TablesInSelectQuery (children 1)\n    TablesInSelectQueryElement (children 1)\n     TableExpression (children 1)\n      Function url (alias u) (children 1)\n"},
		{"table function in IN", "SelectWithUnionQuery (children 1)\n ExpressionList (children 1)\n  SelectQuery (children 1)\n   ExpressionList (children 1)\n    Function in (children 1)\n     ExpressionList (children 2)\n      Function numbers (children 1)\n"},
		{"dictGet", "SelectWithUnionQuery (children 1)\n ExpressionList (children 1)\n  Function dictGetString (children 1)\n"},
		{"explain insert", "Explain EXPLAIN (children 1)\n InsertQuery (children 1)\n"},
		{"check table", "CheckQuery  t (children 1)\n Identifier t\n"},
		{"two roots", "ShowTables\nShowTables\n"},
	}
	for _, tt := range refused {
		if err := check(tt.text, tables); err == nil {
			t.Errorf("%s: check = nil; want an error", tt.name)
		}
	}
}

// check parses the tree of EXPLAIN AST and checks it.
func check(tree string, tables map[string]bool) error {
	root, err := parseAST(tree)
	if err != nil {
		return err
	}
	return checkAST(root, tables)
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
