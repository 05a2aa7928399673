package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// RolledHours is how many whole hours of w the readers take from the hourly
// aggregates, and how many partial hours from the stored rows.
func RolledHours(ctx context.Context, db *DB, w Window) (whole, partial int, err error) {
	whole, partial, _, err = PlannedHours(ctx, db, w)
	return whole, partial, err
}

// PlannedHours is RolledHours, and how many dirty hours of w the readers
// patch (stored rows, the touched OTPs live) rather than compute live.
func PlannedHours(ctx context.Context, db *DB, w Window) (whole, partial, patched int, err error) {
	p, ok, err := db.planWindow(ctx, w)
	if !ok {
		return 0, 0, 0, err
	}
	for _, lw := range p.live {
		if lw.patched {
			patched += len(lw.stored)
		} else {
			partial += len(lw.stored)
		}
	}
	return len(p.hours), partial, patched, nil
}

// SetRollupClock has RefreshRollups take its versions from now instead of the
// server's clock.
func SetRollupClock(db *DB, now func() time.Time) { db.rollupClock = now }

// SetSettleWait sets how long a rollup run waits for the inserts that
// started before it until restore is called.
func SetSettleWait(d time.Duration) (restore func()) {
	old := settleWait
	settleWait = d
	return func() { settleWait = old }
}

// SetPatchAge sets how old a dirty hour's version may be for readers to
// patch it (0: never) until restore is called.
func SetPatchAge(d time.Duration) (restore func()) {
	old := patchAge
	patchAge = d
	return func() { patchAge = old }
}

// PlannedDays is how many whole days of w the readers take their
// histograms from at the day level.
func PlannedDays(ctx context.Context, db *DB, w Window) (int, error) {
	p, _, err := db.planWindow(ctx, w)
	return len(p.days), err
}

// MaxTime and MinTime are the later and the earlier of two times.
var MaxTime, MinTime = maxTime, minTime

// SetMaxTouchedSet sets how many rows of rollup_touched hours are patched
// by at all until restore is called.
func SetMaxTouchedSet(n int) (restore func()) {
	old := maxTouchedSet
	maxTouchedSet = n
	return func() { maxTouchedSet = old }
}

// SetMaxTouchedList sets how many touched OTPs a plan names as a list (0:
// always the subquery) until restore is called.
func SetMaxTouchedList(n int) (restore func()) {
	old := maxTouchedList
	maxTouchedList = n
	return func() { maxTouchedList = old }
}

// CountTouchedList runs a query naming a touched list of n made-up OTPs the
// way patched windows do, and returns how many the server saw.
func CountTouchedList(ctx context.Context, db *DB, n int) (uint64, error) {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
	}
	w := Window{touched: strings.Join(ids, ",")}
	set, with := w.touchedSet()
	var got uint64
	err := db.conn.QueryRow(listing(ctx, w), with+"SELECT count() FROM (SELECT arrayJoin(["+"'00000000-0000-4000-8000-000000000007'"+"]) AS x UNION ALL SELECT arrayJoin("+set+")) WHERE toUUID(x) IN "+set).Scan(&got)
	return got, err
}

// WithSettings is withSettings.
var WithSettings = withSettings

// AskEngineSettings is askEngineSettings.
var AskEngineSettings = askEngineSettings

// RecomputeWithoutDay leaves hour h as a run that computed it again and
// stopped before its day: its rows and its record copied under the next
// version, its day's record as it was.
func RecomputeWithoutDay(ctx context.Context, db *DB, h time.Time) error {
	at := sqlHour(h)
	var version uint64
	if err := db.conn.QueryRow(ctx, "SELECT max(version) FROM rolled_hours WHERE hour = "+at).Scan(&version); err != nil || version == 0 {
		return fmt.Errorf("version of %v: %d, %v", h, version, err)
	}
	for _, t := range rollupTables {
		if t == "rolled_hour_checks" {
			continue
		}
		// Filtered in a subquery: in the outer WHERE, version would name the
		// replacement.
		q := fmt.Sprintf("INSERT INTO %s SELECT * REPLACE (toUInt64(%d) AS version) FROM (SELECT * FROM %s WHERE hour = %s AND version = %d)", t, version+1, t, at, version)
		if err := db.conn.Exec(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// SetBackupDir tells db where its engine keeps backups, as Open does.
func SetBackupDir(db *DB, dir string) { db.backupDir = dir }

// SetCluster has db take itself for a store on cluster: Open cannot make
// one on the embedded engine, which runs no ON CLUSTER DDL.
func SetCluster(db *DB, cluster string) { db.cluster = cluster }

// SetRequestsWait sets the requests' pool's wait for a connection, for
// the stores opened until restore is called.
func SetRequestsWait(d time.Duration) (restore func()) {
	prev := requestsWait
	requestsWait = d
	return func() { requestsWait = prev }
}

// GridIndexes numbers the buckets holding each of ts on the grid of step
// and zone cutting w, in Go and in the engine's SQL.
func GridIndexes(ctx context.Context, db *DB, w Window, step time.Duration, zone *time.Location, ts []time.Time) (inGo, inSQL []int64, err error) {
	g := newGrid(w, step, zone)
	ms := make([]string, len(ts))
	for i, t := range ts {
		inGo = append(inGo, g.index(t))
		ms[i] = fmt.Sprint(t.UnixMilli())
	}
	rows, err := db.Conn().Query(ctx, fmt.Sprintf(`SELECT %s FROM (SELECT fromUnixTimestamp64Milli(toInt64(arrayJoin([%s])), 'UTC') AS t)`,
		g.indexSQL("t", false), strings.Join(ms, ",")))
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var b int64
		if err := rows.Scan(&b); err != nil {
			return nil, nil, err
		}
		inSQL = append(inSQL, b)
	}
	return inGo, inSQL, rows.Err()
}

// SeriesDays is how many UTC days' histograms Timeseries reads from the
// day level for w cut by step on zone's clock.
func SeriesDays(ctx context.Context, db *DB, w Window, step time.Duration, zone *time.Location) (int, error) {
	whole, _, _, err := db.planSeries(ctx, w, newGrid(w, step, zone))
	return len(whole.days), err
}
