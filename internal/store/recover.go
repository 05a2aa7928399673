package store

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Parts broken by a full disk.
//
// The embedded engine (ClickHouse 26.7 in chDB) commits a part whose writes
// failed for want of space: strace shows every write of the part — data,
// marks, checksums — failing with ENOSPC, and the part still becomes
// active. Reading it then fails ("Empty marks file … CORRUPTED_DATA"), and
// every query over its table with it. A merge that ran out of space breaks
// the same way. Inserts that start on a full disk are refused cleanly
// ("Cannot reserve … NOT_ENOUGH_SPACE"); only the writes under way when the
// disk fills break, so the parts to look at are those written around the
// time inserts started failing.
//
// RecoverParts finds them with CHECK TABLE and restarts the engine, which
// sets each broken part aside (detached/, reason "broken-on-start") and
// brings back the parts a broken merge replaced while ClickHouse still keeps
// them (old_parts_lifetime, 8 minutes). The rows of a broken inserted part
// are gone from the table then; the sink replays the stream from the same
// time to insert them again (package sink). The rollups computed meanwhile
// are marked dirty, so that the job computes them again from the repaired
// facts.

// BrokenPart is a part ClickHouse cannot read back.
type BrokenPart struct {
	Table, Part, Message string
}

func (p BrokenPart) String() string { return p.Table + "/" + p.Part + ": " + p.Message }

// CheckParts checks the active parts of the database modified since since
// and returns those that fail.
func (db *DB) CheckParts(ctx context.Context, since time.Time) ([]BrokenPart, error) {
	var parts []BrokenPart
	q := fmt.Sprintf("SELECT table, name FROM system.parts WHERE active AND database = currentDatabase() AND modification_time >= toDateTime(%d) ORDER BY table, name", since.Unix()-1)
	err := db.eachRow(ctx, "parts written since "+since.UTC().Format(time.RFC3339), q, nil, func(rows driver.Rows) error {
		var p BrokenPart
		if err := rows.Scan(&p.Table, &p.Part); err != nil {
			return err
		}
		parts = append(parts, p)
		return nil
	})
	if err != nil {
		return nil, err
	}
	var broken []BrokenPart
	for _, p := range parts {
		// Names from system.parts: a table of the schema, a part name of
		// digits, letters and underscores.
		check := fmt.Sprintf("CHECK TABLE `%s` PART '%s' SETTINGS check_query_single_value_result = 0", p.Table, p.Part)
		err := db.eachRow(ctx, "check of "+p.Table+" part "+p.Part, check, nil, func(rows driver.Rows) error {
			var path, message string
			var passed uint8
			if err := rows.Scan(&path, &passed, &message); err != nil {
				return err
			}
			if passed == 0 {
				p.Message = message
				broken = append(broken, p)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return broken, nil
}

// RecoverParts repairs what a full disk broke since since (see above) and
// returns the broken parts it found; none means nothing was broken. With a
// ClickHouse server it only checks: a server is not restarted from here,
// and the parts found are an error for its operator.
func (db *DB) RecoverParts(ctx context.Context, since time.Time) ([]BrokenPart, error) {
	broken, err := db.CheckParts(ctx, since)
	if err != nil || len(broken) == 0 {
		return nil, err
	}
	if db.restartEngine == nil {
		return broken, fmt.Errorf("clickhouse: %d broken parts since %s, first %s: detach them (ALTER TABLE … DETACH PART) and replay the stream from then", len(broken), since.UTC().Format(time.RFC3339), broken[0])
	}
	if err := db.restartEngine(); err != nil {
		return broken, fmt.Errorf("restart the engine to set broken parts aside: %w", err)
	}
	if still, err := db.CheckParts(ctx, since); err != nil || len(still) > 0 {
		return broken, fmt.Errorf("parts still broken after the engine's restart: %v %v", still, err)
	}
	// The hours (and days: a dirty hour has its day summed again) computed
	// since then may have lost rows to a broken part of their own.
	dirty := fmt.Sprintf(`INSERT INTO rollup_dirty (hour, inserted_at)
SELECT DISTINCT hour, now64(3) FROM (
    SELECT hour FROM rolled_hours WHERE computed_at >= %[1]s
    UNION ALL SELECT hour FROM rolled_day_lists WHERE computed_at >= %[1]s
    UNION ALL SELECT hour FROM rolled_day_totals WHERE computed_at >= %[1]s
    UNION ALL SELECT hour FROM rolled_day_histograms WHERE computed_at >= %[1]s)`, msTime(since))
	if err := db.conn.Exec(ctx, dirty); err != nil {
		return broken, fmt.Errorf("mark the rollups computed since %s dirty: %w", since.UTC().Format(time.RFC3339), err)
	}
	return broken, nil
}

// SetAsidePart is a part the engine set aside as broken, and when it was
// written (its directory's modification time).
type SetAsidePart struct {
	Table, Part string
	WrittenAt   time.Time
}

// PartsToReplay are the parts of the database the engine set aside as
// broken (system.detached_parts) whose events the sink has not replayed
// (recovered_parts, schema 0015), oldest first. They come from RecoverParts,
// or from a start of the process while the disk was full or after it.
func (db *DB) PartsToReplay(ctx context.Context) ([]SetAsidePart, error) {
	q := `SELECT table, name, modification_time FROM system.detached_parts
WHERE database = currentDatabase() AND startsWith(reason, 'broken')
  AND (table, name) NOT IN (SELECT table_name, part FROM recovered_parts)
ORDER BY modification_time`
	var parts []SetAsidePart
	err := db.eachRow(ctx, "parts set aside", q, nil, func(rows driver.Rows) error {
		var p SetAsidePart
		if err := rows.Scan(&p.Table, &p.Part, &p.WrittenAt); err != nil {
			return err
		}
		parts = append(parts, p)
		return nil
	})
	return parts, err
}

// PartsReplayed records that the events of parts are being replayed.
func (db *DB) PartsReplayed(ctx context.Context, parts []SetAsidePart) error {
	if len(parts) == 0 {
		return nil
	}
	batch, err := db.conn.PrepareBatch(ctx, "INSERT INTO recovered_parts (table_name, part, written_at)")
	if err != nil {
		return fmt.Errorf("record replayed parts: %w", err)
	}
	defer batch.Abort()
	for _, p := range parts {
		if err := batch.Append(p.Table, p.Part, p.WrittenAt); err != nil {
			return fmt.Errorf("record replayed parts: %w", err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("record replayed parts: %w", err)
	}
	return nil
}
