package store

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/otpscope/otpscope/schema"
)

// migrationsTable records applied migrations. It is created on every node of a
// cluster (ON CLUSTER) and read locally.
const migrationsTable = "otpscope_schema_migrations"

// Migrate applies the migrations of schema/ that have not run yet, in order, and
// records each. Every statement is idempotent (IF NOT EXISTS), so two replicas
// starting at once may both run one; the record is a ReplacingMergeTree keyed
// by version, so it stays one row. A recorded migration whose text changed is
// an error: applied DDL is never edited, a new migration is added instead.
// Texts that released builds applied and a later commit changed anyway are
// kept in schema/superseded and accepted as that migration.
//
// Recorded migrations this build does not know (a newer build applied them,
// or a backup it took was restored) draw a warning, not a refusal, as
// Flyway does with "future" migrations: a rollback to this build works as
// long as they only added, and the warning names them for the operator to
// judge (README, "ClickHouse": upgrades and rollbacks).
func (db *DB) Migrate(ctx context.Context) error {
	migrations, err := schema.Migrations(schema.Options{Cluster: db.cluster})
	if err != nil {
		return err
	}
	onCluster := ""
	if db.cluster != "" {
		onCluster = "ON CLUSTER `" + db.cluster + "`"
	}
	create := fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s %s
(version UInt32, name String, checksum String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3))
ENGINE = ReplacingMergeTree(applied_at) ORDER BY version`, migrationsTable, onCluster)
	if err := db.conn.Exec(ctx, create); err != nil {
		return fmt.Errorf("create %s: %w", migrationsTable, err)
	}
	applied, err := db.appliedMigrations(ctx)
	if err != nil {
		return err
	}
	known := map[int]bool{}
	for _, m := range migrations {
		known[m.Version] = true
	}
	var future []string
	for v, a := range applied {
		if !known[v] {
			future = append(future, fmt.Sprintf("%04d_%s", v, a.name))
		}
	}
	if len(future) > 0 {
		sort.Strings(future)
		db.logger.Warn("the database holds schema migrations this build does not know: a newer build applied them; this build may misread or fail on what they changed, unless they only added (run the newer build, or restore a backup taken before them)",
			"unknown", strings.Join(future, ","), "latest_known", fmt.Sprintf("%04d_%s", migrations[len(migrations)-1].Version, migrations[len(migrations)-1].Name))
	}
	for _, m := range migrations {
		if a, ok := applied[m.Version]; ok {
			if a.checksum != m.Checksum && !slices.Contains(m.Superseded, a.checksum) {
				return fmt.Errorf("the database's schema migration %04d_%s was applied with a text this build does not know (checksum %s; this build's is %s, earlier ones %v): it was applied by a development build, or the migration was edited after release (a bug: report it with this message); the database is not changed, and the build that migrated it still runs on it",
					m.Version, m.Name, a.checksum, m.Checksum, m.Superseded)
			}
			if a.checksum != m.Checksum {
				db.logger.Info("schema migration recorded with an earlier text of it, which a released build applied: accepted as applied (schema/superseded)", "version", m.Version, "name", m.Name, "checksum", a.checksum, "current", m.Checksum)
			}
			continue
		}
		for i, stmt := range m.Statements {
			if err := db.conn.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("migration %04d_%s statement %d: %w", m.Version, m.Name, i+1, err)
			}
		}
		if err := db.conn.Exec(ctx, fmt.Sprintf("INSERT INTO %s (version, name, checksum) VALUES (?, ?, ?)", migrationsTable),
			uint32(m.Version), m.Name, m.Checksum); err != nil {
			return fmt.Errorf("record migration %04d_%s: %w", m.Version, m.Name, err)
		}
		db.logger.Info("schema migration applied", "version", m.Version, "name", m.Name)
	}
	return nil
}

// appliedMigration is a migration as otpscope_schema_migrations records it.
type appliedMigration struct{ name, checksum string }

func (db *DB) appliedMigrations(ctx context.Context) (map[int]appliedMigration, error) {
	applied := map[int]appliedMigration{}
	err := db.eachRow(ctx, migrationsTable, fmt.Sprintf("SELECT version, argMax(name, applied_at), argMax(checksum, applied_at) FROM %s GROUP BY version", migrationsTable), nil, func(rows driver.Rows) error {
		var v uint32
		var a appliedMigration
		if err := rows.Scan(&v, &a.name, &a.checksum); err != nil {
			return err
		}
		applied[int(v)] = a
		return nil
	})
	return applied, err
}

// eachRow runs q with args and hands each row to scan; what names the query
// in errors ("query what: …" where it fails, "read what: …" where a row does).
func (db *DB) eachRow(ctx context.Context, what, q string, args []any, scan func(driver.Rows) error) error {
	rows, err := db.conn.Query(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("query %s: %w", what, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return fmt.Errorf("read %s: %w", what, err)
		}
	}
	return rows.Err()
}
