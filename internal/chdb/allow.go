package chdb

import (
	"context"
	"fmt"
	"strings"
	"sync"
)

// Guests — clients of the endpoint other than the owner — may run only what
// Grafana, clickhouse-go and a curious operator need: SELECT (with WITH,
// UNION, INTERSECT, EXCEPT), SHOW TABLES/DATABASES/COLUMNS/CREATE TABLE,
// DESCRIBE and EXISTS of a table, and EXPLAIN of such a SELECT. The
// decision is the engine's own parse: the engine classifies the text
// (one statement, one that does not write), then EXPLAIN AST — which parses
// and runs nothing — gives the tree that is checked against the allowlist.
// Wherever a table may stand only a table or a subquery may; any table
// function (file, url, s3, remote, mysql, numbers, ...) is refused, and so
// are functions that reach outside the database: every function that
// shares a name with a table function (the scalar file() reads files),
// dictionaries (dictGet and family, whose sources may be anywhere), joinGet
// and the model evaluators. Refused statements never run.

// allowedExplain are the EXPLAIN kinds a guest may ask for, as EXPLAIN AST
// names them; none of them runs the query.
var allowedExplain = map[string]bool{
	"": true, "AST": true, "SYNTAX": true, "PLAN": true, "PIPELINE": true, "ESTIMATE": true, "QUERY TREE": true,
}

// outsideFunctions reach outside the database from an expression; table
// function names are added to them from the engine (see tableFunctions).
var outsideFunctions = map[string]bool{
	"file": true, "url": true, "s3": true, "remote": true, "remotesecure": true, "cluster": true,
	"clusterallreplicas": true, "mysql": true, "postgresql": true, "jdbc": true, "odbc": true, "hdfs": true,
	"input": true, "executable": true, "catboostevaluate": true, "naivebayesclassifier": true,
	"joinget": true, "joingetornull": true, "fuzzquery": true,
}

// scalarToo are table function names that are also harmless scalar
// functions: refused in table position only.
var scalarToo = map[string]bool{"format": true}

// astNode is one line of EXPLAIN AST's output.
type astNode struct {
	kind     string // first word: SelectQuery, Function, TableIdentifier, ...
	rest     string // the rest of the line without "(children N)" and "(alias x)"
	children []*astNode
}

// parseAST reads EXPLAIN AST's indented tree.
func parseAST(text string) (*astNode, error) {
	var root *astNode
	type level struct {
		depth int
		node  *astNode
	}
	var stack []level
	for line := range strings.SplitSeq(text, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		depth := len(line) - len(strings.TrimLeft(line, " "))
		text := strings.TrimSpace(line)
		if i := strings.LastIndex(text, " (children "); i >= 0 && strings.HasSuffix(text, ")") {
			text = text[:i]
		}
		kind, rest, _ := strings.Cut(text, " ")
		n := &astNode{kind: kind, rest: strings.TrimSpace(rest)}
		for len(stack) > 0 && stack[len(stack)-1].depth >= depth {
			stack = stack[:len(stack)-1]
		}
		switch {
		case len(stack) > 0:
			p := stack[len(stack)-1].node
			p.children = append(p.children, n)
		case root == nil && depth == 0:
			root = n
		default:
			return nil, fmt.Errorf("unexpected line %q in the query's syntax tree", line)
		}
		stack = append(stack, level{depth, n})
	}
	if root == nil {
		return nil, fmt.Errorf("empty syntax tree")
	}
	return root, nil
}

// functionName is the name of a Function node.
func (n *astNode) functionName() string {
	name, _, _ := strings.Cut(n.rest, " ")
	return name
}

// checkAST reports why a guest may not run the statement whose tree is
// root, or nil. tableFuncs are the engine's table functions, lower case.
func checkAST(root *astNode, tableFuncs map[string]bool) error {
	switch root.kind {
	case "SelectWithUnionQuery", "ShowTables", "ShowColumns", "ShowCreateTableQuery", "ExistsTableQuery":
	case "DescribeQuery":
		if len(root.children) == 0 || root.children[0].kind != "TableExpression" ||
			len(root.children[0].children) == 0 || root.children[0].children[0].kind != "TableIdentifier" {
			return denied("DESCRIBE is allowed of a table only")
		}
	case "Explain":
		kind := strings.TrimSpace(strings.TrimPrefix(root.rest, "EXPLAIN"))
		if !allowedExplain[kind] || len(root.children) == 0 || root.children[0].kind != "SelectWithUnionQuery" {
			return denied("EXPLAIN is allowed of a SELECT only")
		}
	default:
		return denied("%s statements are not allowed; only SELECT, SHOW, DESCRIBE, EXISTS and EXPLAIN are", root.kind)
	}
	return walkAST(root, tableFuncs)
}

func walkAST(n *astNode, tableFuncs map[string]bool) error {
	switch n.kind {
	case "TableExpression":
		if len(n.children) > 0 {
			switch t := n.children[0]; t.kind {
			case "TableIdentifier", "Subquery":
			case "Function":
				return denied("table function %s() is not allowed", t.functionName())
			default:
				return denied("%s is not allowed where a table stands", t.kind)
			}
		}
	case "Function":
		name := strings.ToLower(n.functionName())
		if outsideFunctions[name] || tableFuncs[name] && !scalarToo[name] ||
			strings.HasPrefix(name, "dict") || strings.HasPrefix(name, "joinget") {
			return denied("function %s() is not allowed", n.functionName())
		}
	}
	for _, c := range n.children {
		if err := walkAST(c, tableFuncs); err != nil {
			return err
		}
	}
	return nil
}

// denied is the error for a statement the allowlist refuses.
func denied(format string, args ...any) *Exception {
	return exceptionf(CodeAccessDenied, "ACCESS_DENIED",
		"Not enough privileges: %s for clients other than the owner of this endpoint", fmt.Sprintf(format, args...))
}

// tableFuncs are the engine's table functions, lower case, read once.
type tableFuncs struct {
	once  sync.Once
	names map[string]bool
}

func (t *tableFuncs) get(ctx context.Context, e *Engine) map[string]bool {
	t.once.Do(func() {
		t.names = map[string]bool{}
		res, err := e.Exec(context.WithoutCancel(ctx), Statement{SQL: "SELECT name FROM system.table_functions", Format: "TSVRaw", Guest: true})
		if err != nil {
			// outsideFunctions and the table position rule still hold.
			e.logger.Warn("list table functions", "err", err)
			return
		}
		for name := range strings.SplitSeq(string(res.Data), "\n") {
			if name = strings.TrimSpace(name); name != "" {
				t.names[strings.ToLower(name)] = true
			}
		}
	})
	return t.names
}

// admit decides whether a guest may run sql, which the engine classified
// as class with the given number of statements (cerr when it could not).
func (h *Handler) admit(ctx context.Context, req *request, sql string, class QueryClass, statements int, cerr error) error {
	if cerr != nil {
		return fmt.Errorf("check query: %w", cerr)
	}
	switch {
	case class == ClassUnknown:
		// Ask the parser for its message without running anything: the text
		// travels as a string literal.
		st := Statement{SQL: "SELECT formatQuery(" + quoteString(sql) + ")", Format: "TSVRaw", ReadOnly: true, Guest: true}
		if _, err := h.engine.Exec(ctx, st); err != nil {
			return err
		}
		return exceptionf(CodeSyntaxError, "SYNTAX_ERROR", "Syntax error: the query does not parse")
	case class != ClassReadOnly:
		return exceptionf(CodeReadonly, "READONLY", "%s: Cannot execute query in readonly mode", req.user)
	case statements != 1:
		return exceptionf(CodeSyntaxError, "SYNTAX_ERROR", "Multi-statements are not allowed")
	}
	st := Statement{SQL: "EXPLAIN AST " + sql, Format: "TSVRaw", Params: req.statement.Params, ReadOnly: true, Guest: true}
	res, err := h.engine.Exec(ctx, st)
	if err != nil {
		return err
	}
	root, err := parseAST(string(res.Data))
	if err != nil {
		return denied("the query could not be checked (%v)", err)
	}
	return checkAST(root, h.tableFuncs.get(ctx, h.engine))
}
