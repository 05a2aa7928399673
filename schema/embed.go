// Package schema holds otpscope's ClickHouse DDL as numbered migrations, embedded
// in every binary. Each file is a text/template rendered for one of two shapes:
// a single server (plain *MergeTree tables) or a cluster (Replicated*MergeTree
// tables named *_local, ON CLUSTER, and a Distributed table under the plain name
// sharded by otp_id, so one OTP's journey lives on one shard).
package schema

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"
)

//go:embed *.sql superseded/*.sql
var files embed.FS

// Migration is one numbered file rendered into statements.
type Migration struct {
	Version    int
	Name       string
	Statements []string
	// Checksum identifies the rendered text, so an applied migration that was
	// edited afterwards is noticed.
	Checksum string
	// Superseded are the checksums of texts this migration had in earlier
	// builds that a database may have been migrated with
	// (superseded/NNNN_name.<commit>.sql, README there): a database recorded
	// with one of them is up to date with this migration.
	Superseded []string
}

// Options choose the shape.
type Options struct {
	// Cluster is the ClickHouse cluster name; empty renders for a single server.
	Cluster string
}

var (
	fileName           = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.sql$`)
	supersededFileName = regexp.MustCompile(`^(\d{4}_[a-z0-9_]+)\.[0-9a-f]{7,40}\.sql$`)
)

// Migrations renders every migration, in version order.
func Migrations(opts Options) ([]Migration, error) {
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		m := fileName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("schema file %q: want NNNN_name.sql", e.Name())
		}
		text, err := files.ReadFile(e.Name())
		if err != nil {
			return nil, err
		}
		rendered, err := render(e.Name(), string(text), opts)
		if err != nil {
			return nil, err
		}
		superseded, err := supersededChecksums(strings.TrimSuffix(e.Name(), ".sql"), opts)
		if err != nil {
			return nil, err
		}
		v, _ := strconv.Atoi(m[1])
		out = append(out, Migration{
			Version: v, Name: m[2],
			Statements: Split(rendered),
			Checksum:   checksum(rendered),
			Superseded: superseded,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i := 1; i < len(out); i++ {
		if out[i].Version == out[i-1].Version {
			return nil, fmt.Errorf("two schema migrations numbered %d", out[i].Version)
		}
	}
	return out, nil
}

// supersededChecksums renders the earlier texts of migration base
// ("0017_drop_unread_tables") for opts and returns their checksums.
func supersededChecksums(base string, opts Options) ([]string, error) {
	entries, err := fs.ReadDir(files, "superseded")
	if err != nil {
		return nil, err
	}
	var sums []string
	for _, e := range entries {
		m := supersededFileName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("schema file superseded/%s: want NNNN_name.<commit>.sql", e.Name())
		}
		if m[1] != base {
			continue
		}
		text, err := files.ReadFile("superseded/" + e.Name())
		if err != nil {
			return nil, err
		}
		rendered, err := render(e.Name(), string(text), opts)
		if err != nil {
			return nil, err
		}
		sums = append(sums, checksum(rendered))
	}
	return sums, nil
}

func render(name, text string, opts Options) (string, error) {
	quoted := "`" + strings.ReplaceAll(opts.Cluster, "`", "") + "`"
	funcs := template.FuncMap{
		"onCluster": func() string {
			if opts.Cluster == "" {
				return ""
			}
			return "ON CLUSTER " + quoted
		},
		"table": func(t string) string {
			if opts.Cluster == "" {
				return t
			}
			return t + "_local"
		},
		// engine "t" "ReplacingMergeTree(v)" → the replicated engine on a cluster.
		"engine": func(t, engine string) string {
			if opts.Cluster == "" {
				return engine
			}
			name, args, _ := strings.Cut(strings.TrimSuffix(engine, ")"), "(")
			path := fmt.Sprintf("'/clickhouse/tables/{shard}/{database}/%s_local', '{replica}'", t)
			if args != "" {
				path += ", " + args
			}
			return "Replicated" + name + "(" + path + ")"
		},
		// drop "t" → DROP TABLE t; on a cluster its Distributed table, then
		// t_local, on every node.
		"drop": func(t string) string {
			if opts.Cluster == "" {
				return "DROP TABLE IF EXISTS " + t + " SYNC;"
			}
			return fmt.Sprintf("DROP TABLE IF EXISTS %s ON CLUSTER %s SYNC;\nDROP TABLE IF EXISTS %s_local ON CLUSTER %s SYNC;", t, quoted, t, quoted)
		},
		// alterDistributed "t" "ADD COLUMN …" → on a cluster, the same
		// change to the Distributed table t (its *_local tables take theirs
		// through {{table}}); nothing on a single server.
		"alterDistributed": func(t, change string) string {
			if opts.Cluster == "" {
				return ""
			}
			return fmt.Sprintf("ALTER TABLE %s ON CLUSTER %s %s;", t, quoted, change)
		},
		"distributed": func(t, shardingKey string) string {
			if opts.Cluster == "" {
				return ""
			}
			return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s ON CLUSTER %s AS %s_local\nENGINE = Distributed(%s, currentDatabase(), %s_local, %s);",
				t, quoted, t, quoted, t, shardingKey)
		},
	}
	tmpl, err := template.New(name).Funcs(funcs).Option("missingkey=error").Parse(text)
	if err != nil {
		return "", fmt.Errorf("schema %s: %w", name, err)
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, opts); err != nil {
		return "", fmt.Errorf("schema %s: %w", name, err)
	}
	return b.String(), nil
}

// Split cuts a script into statements at semicolons that end a line, dropping
// comment-only and empty pieces.
func Split(script string) []string {
	var out []string
	var cur strings.Builder
	flush := func() {
		s := strings.TrimSpace(cur.String())
		cur.Reset()
		if s == "" {
			return
		}
		onlyComments := true
		for _, line := range strings.Split(s, "\n") {
			if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "--") {
				onlyComments = false
				break
			}
		}
		if !onlyComments {
			out = append(out, s)
		}
	}
	for _, line := range strings.SplitAfter(script, "\n") {
		trimmed := strings.TrimRight(line, " \t\r\n")
		if strings.HasSuffix(trimmed, ";") {
			cur.WriteString(strings.TrimSuffix(trimmed, ";"))
			flush()
			continue
		}
		cur.WriteString(line)
	}
	flush()
	return out
}

func checksum(s string) string {
	var h uint64 = 14695981039346656037 // FNV-1a: stable, and enough to notice an edit
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return strconv.FormatUint(h, 16)
}
