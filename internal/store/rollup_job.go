package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// rollupTables are the tables holding a day's rows under a version.
var rollupTables = []string{"daily_attempts", "daily_paths", "daily_conversion", "daily_latency", "daily_latency_buckets"}

// RefreshRollups computes the daily rollups of every sealed day (ended at
// least RollupMargin before now) that has none yet, or that rows inserted
// since its computation touch (late events, a replayed backlog, newly polled
// statuses), and deletes the rows of versions replaced by an earlier run. It
// returns the days it computed. Runs of several reporter replicas may
// overlap: each writes its own version, and readers take the greatest.
func (db *DB) RefreshRollups(ctx context.Context, now time.Time) ([]time.Time, error) {
	version, err := db.rollupVersion(ctx)
	if err != nil {
		return nil, err
	}
	var n uint64
	var lo, hi time.Time
	if err := db.conn.QueryRow(ctx, "SELECT count(), min(day), max(day) FROM channel_events").Scan(&n, &lo, &hi); err != nil {
		return nil, fmt.Errorf("rollups: attempts days: %w", err)
	}
	if n == 0 {
		return nil, nil
	}
	lo, hi = dayOf(lo), dayOf(hi)
	if last := dayOf(now.Add(-RollupMargin - 24*time.Hour)); hi.After(last) {
		hi = last
	}
	if hi.Before(lo) {
		return nil, nil
	}
	versions, err := db.rollupVersions(ctx, lo, hi.AddDate(0, 0, 1))
	if err != nil {
		return nil, err
	}
	if err := db.deleteReplacedRollups(ctx, versions); err != nil {
		return nil, err
	}
	touched, err := db.touchedDays(ctx, versions, true)
	if err != nil {
		return nil, err
	}
	// Only days that hold attempts: one old-dated event must not make the
	// job walk the empty years between it and today (readers compute an
	// empty day live, at no cost).
	days, err := db.attemptDays(ctx, lo, hi)
	if err != nil {
		return nil, err
	}
	var done []time.Time
	for _, d := range days {
		if _, ok := versions[d]; ok && !touched[d] {
			continue
		}
		if err := db.rollUpDay(ctx, d, version); err != nil {
			return done, err
		}
		done = append(done, d)
	}
	return done, nil
}

// attemptDays are the days in [lo, hi] that hold attempts, in order.
func (db *DB) attemptDays(ctx context.Context, lo, hi time.Time) ([]time.Time, error) {
	rows, err := db.conn.Query(ctx, fmt.Sprintf("SELECT DISTINCT day FROM channel_events WHERE day BETWEEN %s AND %s ORDER BY day", sqlDay(lo), sqlDay(hi)))
	if err != nil {
		return nil, fmt.Errorf("rollups: attempt days: %w", err)
	}
	defer rows.Close()
	var days []time.Time
	for rows.Next() {
		var d time.Time
		if err := rows.Scan(&d); err != nil {
			return nil, fmt.Errorf("rollups: attempt days: %w", err)
		}
		days = append(days, dayOf(d))
	}
	return days, rows.Err()
}

// rollupVersion is the version of the rollups a run writes: now in
// milliseconds by the clock that stamps inserted_at (the server's), so that
// the rows inserted before the run are older than it and the rows inserted
// after it are not.
func (db *DB) rollupVersion(ctx context.Context) (uint64, error) {
	if db.rollupClock != nil {
		return uint64(db.rollupClock().UnixMilli()), nil
	}
	var version uint64
	if err := db.conn.QueryRow(ctx, "SELECT toUInt64(toUnixTimestamp64Milli(now64(3)))").Scan(&version); err != nil {
		return 0, fmt.Errorf("rollups: server time: %w", err)
	}
	return version, nil
}

// rollUpDay writes day d's rows under version, then records the version.
func (db *DB) rollUpDay(ctx context.Context, d time.Time, version uint64) error {
	if db.cluster != "" {
		// Every row must be on its shard before the day is recorded.
		ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"distributed_foreground_insert": 1}))
	}
	w := Window{From: d, To: d.AddDate(0, 0, 1)}
	day := sqlDay(d)
	lat, _ := w.latencyRowsSQL()
	ttd, _ := w.ttdRowsSQL()
	chs, _ := w.channelRowsSQL()
	js, _ := w.journeyRowsSQL()
	conv, _ := w.conversionRowsSQL()
	stmts := []string{
		fmt.Sprintf(`INSERT INTO daily_attempts (day, version, profile_id, channel, code, attempts, delivered, failed, undeliverable, timed_out, unknown, polled, lat_n, pending_first)
SELECT %s, %d, profile_id, channel, code, attempts, delivered, failed, undeliverable, timed_out, unknown, polled, lat_n, pending_first FROM (%s)`, day, version, chs),
		fmt.Sprintf(`INSERT INTO daily_paths (day, version, profile_id, path, primary_channel, otps, fallback, resends, o_primary, o_fallback, o_failed, o_pending, delivered)
SELECT %s, %d, profile_id, path, primary_channel, otps, fallback, resends, o_primary, o_fallback, o_failed, o_pending, delivered FROM (%s)`, day, version, js),
		fmt.Sprintf(`INSERT INTO daily_conversion (day, version, profile_id, channel, polled, verified, sample_rate)
SELECT %s, %d, profile_id, channel, polled, verified, sample_rate FROM (%s)`, day, version, conv),
	}
	for _, h := range []struct{ metric, q string }{{metricLatency, lat}, {metricTTD, ttd}} {
		stmts = append(stmts,
			fmt.Sprintf(`INSERT INTO daily_latency (metric, key, bucket, day, version, profile_id, ms, n)
SELECT '%s', key, intDiv(ms, %d), %s, %d, profile_id, ms, n FROM (%s)`, h.metric, latencyBucket, day, version, h.q),
			fmt.Sprintf(`INSERT INTO daily_latency_buckets (day, version, metric, key, profile_id, bucket, n)
SELECT %s, %d, '%s', key, profile_id, intDiv(ms, %d) AS b, sum(n) FROM (%s) GROUP BY key, profile_id, b`, day, version, h.metric, latencyBucket, h.q))
	}
	stmts = append(stmts, fmt.Sprintf("INSERT INTO rolled_days (day, version, computed_at) SELECT %s, %d, now64(3)", day, version))
	for _, s := range stmts {
		if err := db.conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("roll up %s: %w", d.Format("2006-01-02"), err)
		}
	}
	return nil
}

// deleteReplacedRollups deletes the rows of versions older than each day's
// current one. Those were replaced by an earlier run, so no reader that
// planned since still reads them.
func (db *DB) deleteReplacedRollups(ctx context.Context, versions map[time.Time]uint64) error {
	if len(versions) == 0 {
		return nil
	}
	var parts []string
	for _, t := range rollupTables {
		parts = append(parts, "SELECT day, min(version) AS v FROM "+t+" GROUP BY day")
	}
	rows, err := db.conn.Query(ctx, "SELECT day, min(v) FROM ("+strings.Join(parts, " UNION ALL ")+") GROUP BY day")
	if err != nil {
		return fmt.Errorf("rollups: versions: %w", err)
	}
	var conds []string
	for rows.Next() {
		var d time.Time
		var v uint64
		if err := rows.Scan(&d, &v); err != nil {
			rows.Close()
			return fmt.Errorf("rollups: versions: %w", err)
		}
		if cur, ok := versions[dayOf(d)]; ok && v < cur {
			conds = append(conds, fmt.Sprintf("(day = %s AND version < %d)", sqlDay(dayOf(d)), cur))
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if len(conds) == 0 {
		return nil
	}
	// Wait for the deletes, so a run leaves no replaced rows behind.
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"mutations_sync": 1}))
	for _, t := range rollupTables {
		target := t
		if db.cluster != "" {
			target = t + "_local ON CLUSTER `" + db.cluster + "`"
		}
		if err := db.conn.Exec(ctx, "ALTER TABLE "+target+" DELETE WHERE "+strings.Join(conds, " OR ")); err != nil {
			return fmt.Errorf("rollups: delete replaced versions of %s: %w", t, err)
		}
	}
	return nil
}
