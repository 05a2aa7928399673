package chdb_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/otpscope/otpscope/internal/chdb/chdbtest"
)

func count(t *testing.T, conn clickhouse.Conn, q string) (uint64, error) {
	t.Helper()
	var n uint64
	err := conn.QueryRow(t.Context(), q).Scan(&n)
	return n, err
}

// TestRestartSetsBrokenPartsAside: after Restart a table with a broken
// merged part reads again with the rows of the parts the merge replaced,
// and a broken inserted part is set aside (detached) — its rows are gone,
// which is why the sink replays the stream after a recovery.
func TestRestartSetsBrokenPartsAside(t *testing.T) {
	srv := chdbtest.Serve(t)
	conn := chdbtest.Conn(t, srv.Options())
	db := chdbtest.Database(t, srv.Engine)
	table := db + ".t"
	if err := conn.Exec(t.Context(), "CREATE TABLE "+table+" (n UInt64) ENGINE = MergeTree ORDER BY n"); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"INSERT INTO " + table + " SELECT number FROM numbers(100)",
		"INSERT INTO " + table + " SELECT number + 100 FROM numbers(100)",
		"OPTIMIZE TABLE " + table + " FINAL", // all_1_2_1 replaces all_1_1_0 and all_2_2_0, kept 8 minutes
		"INSERT INTO " + table + " SELECT number + 200 FROM numbers(50)",
	} {
		if err := conn.Exec(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	chdbtest.BreakPart(t, conn, table, "all_1_2_1")
	chdbtest.BreakPart(t, conn, table, "all_3_3_0")
	if _, err := count(t, conn, "SELECT uniqExact(n) FROM "+table); err == nil || !strings.Contains(err.Error(), "marks file") {
		t.Fatalf("reading broken parts: %v; want a marks file error", err)
	}

	// Reads and writes of another table go on through the restart.
	other := db + ".other"
	if err := conn.Exec(t.Context(), "CREATE TABLE "+other+" (n UInt64) ENGINE = MergeTree ORDER BY n"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	ctx, stop := context.WithCancel(t.Context())
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			if err := conn.Exec(t.Context(), fmt.Sprintf("INSERT INTO %s VALUES (%d)", other, i)); err != nil {
				t.Errorf("insert during the restart: %v", err)
				return
			}
			if _, err := count(t, conn, "SELECT count() FROM "+other); err != nil {
				t.Errorf("read during the restart: %v", err)
				return
			}
		}
	})
	if err := srv.Engine.Restart(); err != nil {
		t.Fatal(err)
	}
	stop()
	wg.Wait()

	n, err := count(t, conn, "SELECT uniqExact(n) FROM "+table)
	if err != nil {
		t.Fatalf("after the restart: %v", err)
	}
	if n != 200 {
		t.Errorf("after the restart the table has %d rows; want the 200 of the merged parts brought back, without the 50 of the broken insert", n)
	}
	detached, err := count(t, conn, fmt.Sprintf("SELECT count() FROM system.detached_parts WHERE database || '.' || table = '%s' AND startsWith(reason, 'broken')", table))
	if err != nil || detached != 2 {
		t.Errorf("broken parts detached = %d, %v; want 2", detached, err)
	}
}

// TestRestartRemovesUnreadableMutations: mutation files a full disk left
// empty or cut before their header stopped the engine from attaching
// their table, and so from starting. A restart removes them and the
// table reads as before.
func TestRestartRemovesUnreadableMutations(t *testing.T) {
	srv := chdbtest.Serve(t)
	conn := chdbtest.Conn(t, srv.Options())
	db := chdbtest.Database(t, srv.Engine)
	table := db + ".m"
	for _, q := range []string{
		"CREATE TABLE " + table + " (n UInt64) ENGINE = MergeTree ORDER BY n",
		"INSERT INTO " + table + " SELECT number FROM numbers(10)",
		"DELETE FROM " + table + " WHERE n = 0", // a whole mutation file, which stays
	} {
		if err := conn.Exec(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var paths []string
	if err := conn.QueryRow(t.Context(), "SELECT data_paths FROM system.tables WHERE database || '.' || name = ?", table).Scan(&paths); err != nil || len(paths) != 1 {
		t.Fatalf("the table's data path: %v, %v", paths, err)
	}
	whole, _ := filepath.Glob(filepath.Join(paths[0], "mutation_*.txt"))
	if len(whole) == 0 {
		t.Fatal("the DELETE left no mutation file; the test proves nothing of whole ones")
	}
	empty, cut := filepath.Join(paths[0], "mutation_998.txt"), filepath.Join(paths[0], "mutation_999.txt")
	if err := os.WriteFile(empty, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cut, []byte("format version: 1\ncreate time: 2026-12-05 22:04:00\ncomm"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := srv.Engine.Restart(); err != nil {
		t.Fatalf("restart with unreadable mutation files: %v", err)
	}
	for _, f := range []string{empty, cut} {
		if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there (%v)", f, err)
		}
	}
	for _, f := range whole {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("the whole mutation file %s was removed: %v", f, err)
		}
	}
	if n, err := count(t, conn, "SELECT count() FROM "+table); err != nil || n != 9 {
		t.Errorf("the table after the restart: %d rows, %v; want its 9 left by the DELETE", n, err)
	}
}
