package chdb_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/google/uuid"

	"github.com/otpscope/otpscope/internal/chdb/chdbtest"
)

// seenRunning polls system.processes through conn until a statement whose
// text holds marker is running, and reports whether one was seen before
// done closed. A statement that waited for the other to finish can never
// see it: no timing is assumed.
func seenRunning(t *testing.T, conn clickhouse.Conn, marker string, done <-chan struct{}) bool {
	t.Helper()
	q := "SELECT count() FROM system.processes WHERE position(query, '" + marker + "') > 0 AND position(query, 'system.processes') = 0"
	for {
		select {
		case <-done:
			return false
		default:
		}
		var n uint64
		if err := conn.QueryRow(t.Context(), q).Scan(&n); err != nil {
			t.Fatalf("read system.processes: %v", err)
		}
		if n > 0 {
			return true
		}
		time.Sleep(10 * time.Millisecond) // polling
	}
}

// TestOwnerReadsSideBySide: the owner's read-only statements run on their
// own connections, so one read does not wait for another, nor for a write
// or a guest's query holding the gate.
func TestOwnerReadsSideBySide(t *testing.T) {
	srv := chdbtest.Serve(t)
	owner := chdbtest.Conn(t, srv.Options())
	db := chdbtest.Database(t, srv.Engine)
	if err := owner.Exec(t.Context(), "CREATE TABLE "+db+".t (n UInt64) ENGINE = MergeTree ORDER BY n"); err != nil {
		t.Fatal(err)
	}
	slow := map[string]func(marker string) error{
		"an owner read": func(marker string) error {
			return owner.Exec(t.Context(), "SELECT sleep(2), '"+marker+"' FORMAT Null")
		},
		"an owner insert": func(marker string) error {
			return owner.Exec(t.Context(), "INSERT INTO "+db+".t SELECT number FROM numbers(2) WHERE sleepEachRow(1) = 0 AND '"+marker+"' != ''")
		},
		"a guest read": func(marker string) error {
			if a := ask(t, srv.Addr, "SELECT sleep(2), '"+marker+"'", nil); a.status != http.StatusOK {
				return fmt.Errorf("guest: %d %s", a.status, a.body)
			}
			return nil
		},
	}
	for name, run := range slow {
		t.Run(name, func(t *testing.T) {
			marker := "marker-" + uuid.NewString()
			done := make(chan struct{})
			var err error
			go func() {
				defer close(done)
				err = run(marker)
			}()
			if !seenRunning(t, owner, marker, done) {
				t.Errorf("an owner read ran only after %s had finished; want it to run meanwhile", name)
			}
			<-done
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		})
	}
}

// TestOwnerReadsOnReaders: what the store reads works on the readers
// (readonly=2): settings per statement, table functions, a database; and
// the session of one statement does not leak into the next.
func TestOwnerReadsOnReaders(t *testing.T) {
	srv := chdbtest.Serve(t)
	owner := chdbtest.Conn(t, srv.Options())
	db := chdbtest.Database(t, srv.Engine)
	if err := owner.Exec(t.Context(), "CREATE TABLE "+db+".t (n UInt64) ENGINE = MergeTree ORDER BY n"); err != nil {
		t.Fatal(err)
	}
	if err := owner.Exec(t.Context(), "INSERT INTO "+db+".t SELECT number FROM numbers(5)"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 { // more than there are readers: some wait for one
		wg.Go(func() {
			comment := fmt.Sprint("read-", i)
			ctx := clickhouse.Context(t.Context(), clickhouse.WithSettings(clickhouse.Settings{"log_comment": comment}))
			var sum, n uint64
			var got string
			err := owner.QueryRow(ctx, "SELECT (SELECT sum(n) FROM "+db+".t), (SELECT count() FROM numbers(7)), toString(getSetting('log_comment'))").Scan(&sum, &n, &got)
			if err != nil || sum != 10 || n != 7 || got != comment {
				t.Errorf("read %d = %d, %d, log_comment %q, %v; want 10, 7, %q", i, sum, n, got, err, comment)
			}
		})
	}
	wg.Wait()
	// The settings went back to their defaults on every reader.
	for range 8 {
		var got string
		if err := owner.QueryRow(context.Background(), "SELECT toString(getSetting('log_comment'))").Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != "" {
			t.Errorf("log_comment after the reads = %q; want the default back", got)
		}
	}
}

// TestOwnerReadsBesideWrites: reads on the readers while the owner inserts
// on its own connection see whole inserts only, never fewer rows than an
// earlier read, and no error.
func TestOwnerReadsBesideWrites(t *testing.T) {
	srv := chdbtest.Serve(t)
	owner := chdbtest.Conn(t, srv.Options())
	db := chdbtest.Database(t, srv.Engine)
	if err := owner.Exec(t.Context(), "CREATE TABLE "+db+".t (batch UInt32, n UInt64) ENGINE = MergeTree ORDER BY batch"); err != nil {
		t.Fatal(err)
	}
	const batches, rows = 40, 250
	done := make(chan struct{})
	var wg sync.WaitGroup
	for r := range 3 {
		wg.Go(func() {
			var last uint64
			for reads := 0; ; reads++ {
				select {
				case <-done:
					if reads == 0 {
						t.Errorf("reader %d read nothing", r)
					}
					return
				default:
				}
				var count, sum uint64
				if err := owner.QueryRow(t.Context(), "SELECT count(), sum(n) FROM "+db+".t").Scan(&count, &sum); err != nil {
					t.Errorf("reader %d: %v", r, err)
					return
				}
				if count%rows != 0 || sum != count || count < last {
					t.Errorf("reader %d saw %d rows summing to %d after %d; want whole batches of %d, never fewer", r, count, sum, last, rows)
					return
				}
				last = count
			}
		})
	}
	for b := range batches {
		q := fmt.Sprintf("INSERT INTO %s.t SELECT %d, 1 FROM numbers(%d)", db, b, rows)
		if err := owner.Exec(t.Context(), q); err != nil {
			t.Fatalf("insert %d: %v", b, err)
		}
	}
	close(done)
	wg.Wait()
	var count uint64
	if err := owner.QueryRow(t.Context(), "SELECT count() FROM "+db+".t").Scan(&count); err != nil || count != batches*rows {
		t.Errorf("rows = %d, %v; want %d", count, err, batches*rows)
	}
}
