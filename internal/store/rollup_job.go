package store

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// rollupTables are the tables holding an hour's rows under a version.
var rollupTables = []string{"hour_attempts", "hour_journeys", "hourly_attempts", "hourly_paths", "hourly_conversion", "hourly_latency", "hourly_latency_buckets", "rolled_hours", "rolled_hour_checks"}

// rollupChunk bounds the hours one statement of the job computes: a chunk
// reads its facts and MaxAttemptSpan on either side, so longer chunks read
// less twice but hold more in memory. The 49 hours one late fact dirties
// are one chunk.
const rollupChunk = 72 * time.Hour

// RollupRun is what a run of the rollup job did: every hour it brought up
// to date (ascending), how many of them it computed from their facts,
// patched, and found unchanged (checked), and how many days' histograms it
// summed (those of its hours, and stale ones: see rollUpDays).
type RollupRun struct {
	Hours                      []time.Time
	Computed, Patched, Checked int
	Days                       int
	// Waited is how long the run waited for the inserts that started
	// before it (a single server: settle.go).
	Waited time.Duration
	// Resends is how many resend decisions' outcomes it computed
	// (resend_outcomes.go).
	Resends int
	// Redefined is how many hours, not dirty, it brought under today's
	// definitions because an older one had summed them (redefineHours):
	// computed again from their facts, or, retention having begun to
	// delete those, summed again from their stored rows.
	Redefined int
	// Vouched is how many hours, exact to this single server's run, it
	// recorded a check of for the readers that allow a cluster's slack
	// (markedHours).
	Vouched int
}

// RefreshRollups brings the hourly rollups of every dirty hour up to date —
// marked by an insert (rollup_dirty) since it was last known exact, or never
// computed: computed, patched or checked (sortDirtyHours) — and deletes the
// rows of versions replaced by an earlier run. It also brings the resend
// decisions' outcomes up to date (refreshResendOutcomes). Its work follows the OTPs
// that moved since its last run, not the length of the history. Runs of
// several reporter replicas may overlap: each writes its own version, and
// readers take the greatest.
func (db *DB) RefreshRollups(ctx context.Context) (RollupRun, error) {
	var run RollupRun
	ctx = jobContext(ctx)
	version, waited, err := db.rollupVersion(ctx)
	run.Waited = waited
	if err != nil {
		return run, err
	}
	if err := db.deleteReplacedRollups(ctx, "rolled_hours", rollupTables); err != nil {
		return run, err
	}
	if err := db.deleteReplacedRollups(ctx, dayRecords, dayTables); err != nil {
		return run, err
	}
	dirty, vouch, err := db.markedHours(ctx, version)
	if err != nil {
		return run, err
	}
	if len(vouch) > 0 {
		if err := db.recordChecks(ctx, vouch, version); err != nil {
			return run, err
		}
		run.Vouched = len(vouch)
	}
	if db.cluster != "" {
		// Every row must be on its shard before the hour is recorded.
		ctx = withSettings(ctx, clickhouse.Settings{"distributed_foreground_insert": 1})
	}
	if run.Resends, err = db.refreshResendOutcomes(ctx, version); err != nil {
		return run, err
	}
	if len(dirty) == 0 {
		if run.Hours, err = db.redefineHours(ctx, nil, version); err != nil {
			return run, err
		}
		run.Redefined = len(run.Hours)
		run.Days, err = db.rollUpDays(ctx, run.Hours, version)
		return run, err
	}
	recompute, patches, checked, err := db.sortDirtyHours(ctx, dirty, version)
	if err != nil {
		return run, err
	}
	if len(checked) > 0 {
		if err := db.recordChecks(ctx, checked, version); err != nil {
			return run, err
		}
	}
	for _, c := range chunks(recompute) {
		if err := db.rollUpHours(ctx, Window{From: c[0].hour, To: c[len(c)-1].hour.Add(time.Hour)}, version); err != nil {
			return run, err
		}
		run.Computed += len(c)
		for _, h := range c {
			run.Hours = append(run.Hours, h.hour)
		}
	}
	for _, patch := range patches {
		for _, c := range chunks(patch.stored) {
			pw := patch
			pw.From, pw.To, pw.stored = c[0].hour, c[len(c)-1].hour.Add(time.Hour), c
			if err := db.rollUpHours(listing(ctx, pw), pw, version); err != nil {
				return run, err
			}
			run.Patched += len(c)
			for _, h := range c {
				run.Hours = append(run.Hours, h.hour)
			}
		}
	}
	redefined, err := db.redefineHours(ctx, dirty, version)
	if err != nil {
		return run, err
	}
	run.Redefined = len(redefined)
	run.Hours = append(run.Hours, redefined...)
	if run.Days, err = db.rollUpDays(ctx, run.Hours, version); err != nil {
		return run, err
	}
	run.Checked = len(checked)
	for _, h := range checked {
		run.Hours = append(run.Hours, h.hour)
	}
	slices.SortFunc(run.Hours, func(a, b time.Time) int { return a.Compare(b) })
	return run, nil
}

// sortDirtyHours splits the dirty hours three ways, as a reader would plan
// them at the run's version: those that cannot be patched (never rolled up,
// known exact since too long ago, or summed under an older definition:
// olderDefinitions) are computed again from their facts;
// of the others, those where an OTP touched since they were known exact has
// rows — stored, or starting at one of its facts now — are patched
// (patches: patched windows over them, their stored rows but the touched
// OTPs', those computed live, which is what computing them again would
// give), and the rest are still exact at their version and only checked
// (rolled_hour_checks). So a run's work follows the OTPs that moved, not
// the day of hours around each fact that its marks make dirty.
//
// The touched OTPs are read per group of hours known exact since the same
// time (asOf): hours a late fact made dirty after a quiet while would
// otherwise widen every hour's set to what was touched since then. A few
// groups at most: the oldest takes in the rest, reading from the oldest.
// A group touched through more rows of rollup_touched than maxTouchedSet
// is computed again: after a bulk insert that is less work than patching.
func (db *DB) sortDirtyHours(ctx context.Context, dirty []time.Time, version uint64) (recompute []rolledHour, patches []Window, checked []rolledHour, err error) {
	from, to := dirty[0], dirty[len(dirty)-1].Add(time.Hour)
	rolled, marks, touchedSince, _, err := db.hourStates(ctx, from, to)
	if err != nil {
		return nil, nil, nil, err
	}
	now := time.UnixMilli(int64(version))
	// Hours retention has frozen keep their stored rows: found exact as
	// far as their facts allow.
	var kept []rolledHour
	frozen := map[time.Time]bool{}
	for _, h := range dirty {
		if r, ok := rolled[h]; ok && db.frozen(h, now) {
			kept, frozen[h] = append(kept, r), true
		}
	}
	if len(kept) > 0 {
		checked = append(checked, kept...)
		db.logger.Warn("late facts near hours whose facts retention has begun to delete are stored but not counted into them; those hours keep their rolled-up figures",
			"hours", len(kept), "first", kept[0].hour.Format(time.RFC3339), "last", kept[len(kept)-1].hour.Format(time.RFC3339), "facts_kept", Retention(db.factsKept).String())
	}
	older, err := db.olderDefinitions(ctx, from, to)
	if err != nil {
		return nil, nil, nil, err
	}
	cands := slices.DeleteFunc(patchableHours(rolled, marks, touchedSince, from, to, now), func(r rolledHour) bool { return frozen[r.hour] || older[r.hour] })
	patchable := map[time.Time]bool{}
	byAsOf := map[uint64][]rolledHour{}
	for _, c := range cands {
		patchable[c.hour] = true
		byAsOf[c.asOf] = append(byAsOf[c.asOf], c)
	}
	for _, h := range dirty {
		if !patchable[h] && !frozen[h] {
			recompute = append(recompute, rolledHour{hour: h})
		}
	}
	asOfs := slices.Sorted(maps.Keys(byAsOf))
	slices.Reverse(asOfs) // newest first: the narrowest touched sets
	var groups [][]rolledHour
	for i, a := range asOfs {
		if i < maxCheckGroups {
			groups = append(groups, byAsOf[a])
		} else {
			groups[maxCheckGroups-1] = append(groups[maxCheckGroups-1], byAsOf[a]...)
		}
	}
	for _, g := range groups {
		slices.SortFunc(g, func(a, b rolledHour) int { return a.hour.Compare(b.hour) })
		cw := Window{From: g[0].hour, To: g[len(g)-1].hour.Add(time.Hour), stored: g}
		touched, changed, factDays, tooMany, err := db.touchedChanges(ctx, cw)
		if err != nil {
			return nil, nil, nil, err
		}
		if tooMany {
			recompute = append(recompute, g...)
			continue
		}
		patch := Window{patched: true, touched: touched, factDays: factDays}
		for _, c := range g {
			if changed[c.hour] {
				patch.stored = append(patch.stored, c)
			} else {
				checked = append(checked, c)
			}
		}
		if len(patch.stored) > 0 {
			patches = append(patches, patch)
		}
	}
	slices.SortFunc(recompute, func(a, b rolledHour) int { return a.hour.Compare(b.hour) })
	return recompute, patches, checked, nil
}

// rollupDefinition is the definitions this build sums an hour under
// (rolled_hours.definition, schema 0025): 1, a time to deliver of 0 ms is
// a DISPATCHED and DELIVERED of one instant (ttdKnownSQL), and each
// journey says whether its time to deliver is known (j_timed).
const rollupDefinition = 1

// redefinePerRun bounds the hours one run brings under today's
// definitions (redefineHours). Computing an hour again reads its facts
// and MaxAttemptSpan on either side, so a day of hours a run keeps the
// run short at 100 M events; 90 days of history take 90 runs, an hour
// and a half at the default schedule, newest first.
const redefinePerRun = 24

// redefineHours brings under today's definitions, under version, rolled
// hours whose current version was summed under an older one (by a build
// before schema 0025, or by one run again after it: a rollback), newest
// first, at most redefinePerRun a run, but for skip (this run's dirty
// hours, which sortDirtyHours computed, patched or checked). An hour not
// dirty at the run's version is exact at it.
//
// Today one definition has changed: a journey's time to deliver. An
// older build counted one whose first known fact is its DELIVERED as
// 0 ms, and left out a DISPATCHED and DELIVERED of one instant, which
// today count 0 ms (ttdKnownSQL). Its journeys' rows say neither (j_timed
// 0, read by the older rule), so an hour whose facts are kept is computed
// again from them (and the OTPs a retention since lengthened deleted the
// facts of keep their stored rows: keepLostRows). One whose facts
// retention has begun to delete (frozen)
// keeps its rows: if its histogram holds a 0 (the older build's lost
// DISPATCHED) every aggregate of it is summed again from its stored
// attempts and journeys, read by the older rule, which leaves that 0 out;
// otherwise it stands as it is.
func (db *DB) redefineHours(ctx context.Context, skip []time.Time, version uint64) ([]time.Time, error) {
	skipped := map[time.Time]bool{}
	for _, h := range skip {
		skipped[h] = true
	}
	now := time.UnixMilli(int64(version))
	var fromFacts, fromRows []rolledHour
	q := fmt.Sprintf(`SELECT r.hour, r.v, z.version = r.v FROM (
    SELECT hour, max(version) AS v FROM rolled_hours GROUP BY hour HAVING argMax(definition, version) < %d
) AS r
LEFT JOIN (SELECT DISTINCT hour, version FROM hourly_latency WHERE metric = '%s' AND bucket = 0 AND ms <= 0) AS z
    ON r.hour = z.hour AND r.v = z.version
ORDER BY r.hour DESC`, rollupDefinition, metricTTD)
	err := db.eachRow(ctx, "hours of an older definition", q, nil, func(rows driver.Rows) error {
		var h rolledHour
		var zero uint8
		if err := rows.Scan(&h.hour, &h.version, &zero); err != nil {
			return err
		}
		switch h.hour = h.hour.UTC(); {
		case skipped[h.hour] || len(fromFacts)+len(fromRows) >= redefinePerRun:
		case !db.frozen(h.hour, now):
			fromFacts = append(fromFacts, h)
		case zero == 1:
			fromRows = append(fromRows, h)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var done []time.Time
	for _, part := range []struct {
		hours  []rolledHour
		stored bool // summed from their stored rows, not their facts
	}{{fromFacts, false}, {fromRows, true}} {
		slices.SortFunc(part.hours, func(a, b rolledHour) int { return a.hour.Compare(b.hour) })
		for _, c := range chunks(part.hours) {
			w := Window{From: c[0].hour, To: c[len(c)-1].hour.Add(time.Hour)}
			if part.stored {
				w.stored = c
			}
			if err := db.rollUpHours(ctx, w, version); err != nil {
				return done, err
			}
			for _, h := range c {
				done = append(done, h.hour)
			}
		}
	}
	return done, nil
}

// olderDefinitions are the rolled hours in [from, to) whose current
// version was summed under an older definition (redefineHours): a run
// computes such an hour again rather than patch it, since the rows a
// patch keeps would stay under the older one.
func (db *DB) olderDefinitions(ctx context.Context, from, to time.Time) (map[time.Time]bool, error) {
	older := map[time.Time]bool{}
	q := fmt.Sprintf("SELECT hour FROM rolled_hours WHERE hour >= %s AND hour < %s GROUP BY hour HAVING argMax(definition, version) < %d",
		sqlHour(from), sqlHour(to), rollupDefinition)
	err := db.eachRow(ctx, "hours of an older definition", q, nil, func(rows driver.Rows) error {
		var h time.Time
		if err := rows.Scan(&h); err != nil {
			return err
		}
		older[h.UTC()] = true
		return nil
	})
	return older, err
}

// maxCheckGroups bounds the groups of hours whose touched OTPs a run reads
// apart (sortDirtyHours).
const maxCheckGroups = 3

// chunks cuts hours (ascending) into runs of consecutive hours of at most
// rollupChunk, each computed by one statement per table.
func chunks(hours []rolledHour) [][]rolledHour {
	var out [][]rolledHour
	for i := 0; i < len(hours); {
		j := i + 1
		for j < len(hours) && hours[j].hour.Equal(hours[j-1].hour.Add(time.Hour)) && hours[j].hour.Sub(hours[i].hour) < rollupChunk {
			j++
		}
		out = append(out, hours[i:j])
		i = j
	}
	return out
}

// recordChecks records that hours were found exact at their versions by
// the run at version.
func (db *DB) recordChecks(ctx context.Context, hours []rolledHour, version uint64) error {
	rows := make([]string, len(hours))
	for i, h := range hours {
		rows[i] = fmt.Sprintf("(%s, %d, %d)", sqlHour(h.hour), h.version, version)
	}
	if err := db.conn.Exec(ctx, "INSERT INTO rolled_hour_checks (hour, version, checked_at) VALUES "+strings.Join(rows, ", ")); err != nil {
		return fmt.Errorf("rollups: record the hours found unchanged: %w", err)
	}
	return nil
}

// dayTables are the tables holding a day's histograms under a version, and
// dayRecords its records: rolled_day_lists since schema 0018, and the
// older rolled_day_totals (0014) and rolled_day_histograms (0013), whose
// versions are replaced as days are summed again.
var dayTables = []string{"day_latency", "day_latency_buckets", "day_latency_lists", "rolled_day_lists",
	"day_latency_total", "rolled_day_totals", "rolled_day_histograms"}

const dayRecords = "(SELECT hour, version FROM rolled_day_lists UNION ALL SELECT hour, version FROM rolled_day_totals UNION ALL SELECT hour, version FROM rolled_day_histograms)"

// daysPerRun bounds how many stale days (see rollUpDays) one run computes
// besides the days of its hours.
const daysPerRun = 31

// rollUpDays computes the day-level histograms (schema 0013, and their
// totals over profiles, 0014) of the days of the hours just computed, and
// of up to daysPerRun stale days, newest first, from the current versions
// of their hours. A day is stale when its record does not name its hours'
// current versions: never summed (a history rolled up before 0013 or
// 0014), or summed before a run that computed some of its hours again
// stopped short of its days (killed, timed out, a failed insert). Readers
// take such a day by hours — exact, but a long window's percentiles read
// 24 times the rows — until a run sums it again.
func (db *DB) rollUpDays(ctx context.Context, hours []time.Time, version uint64) (summed int, err error) {
	days := map[time.Time]bool{}
	for _, h := range hours {
		days[h.Truncate(day)] = true
	}
	q := fmt.Sprintf(`SELECT h.d FROM (
    SELECT toStartOfDay(hour) AS d, %s AS key FROM (SELECT hour, max(version) AS v FROM rolled_hours GROUP BY hour) GROUP BY d
) AS h
LEFT JOIN (SELECT hour AS d, argMax(%s, version) AS key FROM rolled_day_lists GROUP BY hour) AS r ON h.d = r.d
WHERE h.key != r.key ORDER BY h.d DESC LIMIT %d`, dayHoursOf("groupArray((hour, v))"), dayHoursSQL, daysPerRun)
	err = db.eachRow(ctx, "stale days", q, nil, func(rows driver.Rows) error {
		var d time.Time
		if err := rows.Scan(&d); err != nil {
			return err
		}
		days[d.UTC()] = true
		return nil
	})
	if err != nil {
		return 0, err
	}
	for d := range days {
		if err := db.rollUpDay(ctx, d, version); err != nil {
			return summed, err
		}
		summed++
	}
	return summed, nil
}

// rollUpDay sums day d's hourly histograms at their current versions into
// the day level under version, and records which versions it summed.
func (db *DB) rollUpDay(ctx context.Context, d time.Time, version uint64) error {
	var hours []rolledHour
	q := fmt.Sprintf("SELECT hour, max(version) FROM rolled_hours WHERE hour >= %s AND hour < %s GROUP BY hour ORDER BY hour", sqlHour(d), sqlHour(d.Add(day)))
	err := db.eachRow(ctx, "day's hours", q, nil, func(rows driver.Rows) error {
		var h time.Time
		var v uint64
		if err := rows.Scan(&h, &v); err != nil {
			return err
		}
		hours = append(hours, rolledHour{hour: h.UTC(), version: v})
		return nil
	})
	if err != nil || len(hours) == 0 {
		return err
	}
	in := hoursSQL(hours)
	var pairs []string
	for _, h := range hours {
		pairs = append(pairs, fmt.Sprintf("(%s, %d)", sqlHour(h.hour), h.version))
	}
	stmts := []string{
		fmt.Sprintf(`INSERT INTO day_latency (metric, key, bucket, hour, version, profile_id, ms, n)
SELECT metric, key, bucket, %s, %d, profile_id, ms, sum(n) FROM hourly_latency WHERE %s GROUP BY metric, key, bucket, profile_id, ms`, sqlHour(d), version, in),
		fmt.Sprintf(`INSERT INTO day_latency_buckets (hour, version, metric, key, profile_id, bucket, n)
SELECT %s, %d, metric, key, profile_id, bucket, sum(n) FROM hourly_latency_buckets WHERE %s GROUP BY metric, key, profile_id, bucket`, sqlHour(d), version, in),
		fmt.Sprintf(`INSERT INTO day_latency_lists (metric, key, bucket, hour, version, vals)
SELECT metric, key, bucket, %s, %d, %s FROM (
    SELECT metric, key, bucket, ms, sum(n) AS c FROM hourly_latency WHERE %s GROUP BY metric, key, bucket, ms
) GROUP BY metric, key, bucket`, sqlHour(d), version, valuesListSQL, in),
		fmt.Sprintf(`INSERT INTO rolled_day_lists (hour, version, hours, computed_at) SELECT %s, %d, [%s], now64(3)`, sqlHour(d), version, strings.Join(pairs, ", ")),
	}
	for _, s := range stmts {
		if err := db.conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("roll up the histograms of %s: %w", d.Format(time.DateOnly), err)
		}
	}
	return nil
}

// readerSlack is the slack of the readers that cannot tell a single
// server from a cluster, the Grafana dashboards (dashboards/*.json:
// 300000): they read a rolled-up hour from the rollups while a run
// computed or checked it in the last five minutes, or when no mark came
// within this before that run; otherwise they compute it from its facts.
const readerSlack = 5 * time.Minute

// markedHours reads, in one pass over the marks and the hours' states, what
// a run owes the marked hours. dirty are those marked since they were known
// exact (their version or a later check of it, less the slack), or never
// computed, in order. vouch, on a single server only, are those known
// exact whose last mark came within readerSlack before that: the run
// records a check of them at version. A run follows an hour's last fact
// within a minute, so without these checks the dashboards would take nearly
// every hour for "maybe behind" once five minutes passed, and compute it
// live on every read for good; each run checks such an hour again until a
// check lands more than readerSlack after its last mark, about five times.
// A cluster's runs keep such hours dirty anyway, their slack being
// RollupSlack.
func (db *DB) markedHours(ctx context.Context, version uint64) (dirty []time.Time, vouch []rolledHour, err error) {
	slack := db.slack().Milliseconds()
	near := slack // how close to an hour's last known exact a mark makes it owed something
	if db.settles {
		near = max(slack, readerSlack.Milliseconds())
	}
	q := fmt.Sprintf(`SELECT d.hour, r.v, toInt64(greatest(r.v, k.c)) AS known, d.ins
FROM (SELECT hour, toInt64(toUnixTimestamp64Milli(max(inserted_at))) AS ins FROM rollup_dirty GROUP BY hour) AS d
LEFT JOIN (SELECT hour, max(version) AS v FROM rolled_hours GROUP BY hour) AS r ON d.hour = r.hour
LEFT JOIN (SELECT hour, version, max(checked_at) AS c FROM rolled_hour_checks GROUP BY hour, version) AS k ON r.hour = k.hour AND r.v = k.version
WHERE r.v = 0 OR d.ins >= known - %d
ORDER BY d.hour`, near)
	err = db.eachRow(ctx, "marked hours", q, nil, func(rows driver.Rows) error {
		var h rolledHour
		var known, ins int64
		if err := rows.Scan(&h.hour, &h.version, &known, &ins); err != nil {
			return err
		}
		h.hour = h.hour.UTC()
		switch {
		case h.version == 0 || ins >= known-slack:
			dirty = append(dirty, h.hour)
		case known < int64(version):
			vouch = append(vouch, h)
		}
		return nil
	})
	return dirty, vouch, err
}

// rollupVersion is the version of the rollups a run writes: now in
// milliseconds by the clock that stamps the dirty marks (the server's), so
// that the marks inserted before the run are older than it and the marks
// inserted after it are not. On a single server it returns once the
// inserts that started before it have ended (settle.go): every mark older
// than the version is visible to the run.
func (db *DB) rollupVersion(ctx context.Context) (version uint64, waited time.Duration, err error) {
	if db.rollupClock != nil {
		return uint64(db.rollupClock().UnixMilli()), 0, nil
	}
	if err := db.conn.QueryRow(ctx, "SELECT toUInt64(toUnixTimestamp64Milli(now64(3)))").Scan(&version); err != nil {
		return 0, 0, fmt.Errorf("rollups: server time: %w", err)
	}
	if db.settles {
		start := time.Now()
		err = db.awaitInserts(ctx, version)
		if waited = time.Since(start); err != nil {
			return 0, waited, err
		}
	}
	return version, waited, nil
}

// rollUpHours computes the hours of w, [From, To), under version: the
// attempts and journeys that start in them (w's SQL: live from the facts,
// or patched), then each hour's aggregates from those rows, then records
// the hours.
func (db *DB) rollUpHours(ctx context.Context, w Window, version uint64) error {
	from, to := w.From, w.To
	att, _ := w.channelAttemptsSQL()
	js, _ := w.journeyStatusSQL()
	rng := fmt.Sprintf("hour >= %s AND hour < %s AND version = %d", sqlHour(from), sqlHour(to), version)
	storedAtt := "SELECT * FROM hour_attempts WHERE " + rng
	storedJs := "SELECT * FROM hour_journeys WHERE " + rng
	const by = "hour,"
	rows := []string{
		fmt.Sprintf(`INSERT INTO hour_attempts (hour, version, %[1]s)
SELECT toStartOfHour(a_first), %[2]d, %[1]s FROM (%[3]s)`, attemptCols, version, att),
		fmt.Sprintf(`INSERT INTO hour_journeys (hour, version, %[1]s, s_final, s_verified, s_rate)
SELECT toStartOfHour(j_first), %[2]d, %[1]s, s_final, s_verified, s_rate FROM (%[3]s)`, journeyCols, version, js),
	}
	for _, s := range rows {
		if err := db.conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("roll up %s to %s: %w", from.Format(time.RFC3339), to.Format(time.RFC3339), err)
		}
	}
	if !w.patched && len(w.stored) == 0 {
		if err := db.keepLostRows(ctx, from, to, version); err != nil {
			return err
		}
	}
	stmts := []string{
		fmt.Sprintf(`INSERT INTO hourly_attempts (hour, version, profile_id, channel, code, attempts, delivered, failed, undeliverable, timed_out, unknown, polled, lat_n, pending_first)
SELECT hour, %d, profile_id, channel, code, attempts, delivered, failed, undeliverable, timed_out, unknown, polled, lat_n, pending_first FROM (%s)`, version, channelAggSQL(storedAtt, by)),
		fmt.Sprintf(`INSERT INTO hourly_paths (hour, version, profile_id, path, primary_channel, otps, fallback, resends, o_primary, o_fallback, o_failed, o_pending, delivered)
SELECT hour, %d, profile_id, path, primary_channel, otps, fallback, resends, o_primary, o_fallback, o_failed, o_pending, delivered FROM (%s)`, version, journeyAggSQL(storedJs, by)),
		fmt.Sprintf(`INSERT INTO hourly_conversion (hour, version, profile_id, channel, polled, verified, sample_rate)
SELECT hour, %d, profile_id, channel, polled, verified, sample_rate FROM (%s)`, version, conversionAggSQL(storedJs, by)),
	}
	for _, h := range []struct{ metric, q string }{{metricLatency, latencyAggSQL(storedAtt, by)}, {metricTTD, ttdAggSQL(storedJs, by)}} {
		stmts = append(stmts,
			fmt.Sprintf(`INSERT INTO hourly_latency (metric, key, bucket, hour, version, profile_id, ms, n)
SELECT '%s', key, intDiv(ms, %d), hour, %d, profile_id, ms, n FROM (%s)`, h.metric, latencyBucket, version, h.q),
			fmt.Sprintf(`INSERT INTO hourly_latency_buckets (hour, version, metric, key, profile_id, bucket, n)
SELECT hour, %d, '%s', key, profile_id, intDiv(ms, %d) AS b, sum(n) FROM (%s) GROUP BY hour, key, profile_id, b`, version, h.metric, latencyBucket, h.q))
	}
	stmts = append(stmts, fmt.Sprintf(`INSERT INTO rolled_hours (hour, version, computed_at, definition)
SELECT toDateTime(%d + 3600 * number, 'UTC'), %d, now64(3), %d FROM numbers(%d)`, from.Unix(), version, rollupDefinition, int(to.Sub(from)/time.Hour)))
	for _, s := range stmts {
		if err := db.conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("roll up %s to %s: %w", from.Format(time.RFC3339), to.Format(time.RFC3339), err)
		}
	}
	return nil
}

// keepLostRows carries into version, for the hours of [from, to) just
// computed from their facts, the stored rows (at each hour's previous
// version) of the OTPs whose facts are gone: OTPs with stored attempts there
// and none now. Facts vanish only by retention, and a TTL lengthened (or
// removed) after it deleted some brings nothing back: frozen, which reads
// the TTL as it is now, then takes the hours past the old TTL for hours
// whose facts are all kept, and redefineHours or a late fact would sum
// them from nothing. Checking the facts actually there, OTP by OTP, holds
// whatever the retention's history — the TTL's earliest fact is no guide,
// as one late fact into an old hour lowers it. The OTPs still there are
// counted from their facts (a late one too); an OTP whose attempt a late
// fact moved to another hour this run computed is not taken for lost.
//
// Its journeys are carried first, while "no attempt at version" still
// means lost; a journey's row is its first OTP's, so one merged into
// another's journey by a late link is not carried.
//
// Only hours some retention could have reached are read: the facts of
// the last MinFactsRetention are always kept, and the run's own hours
// under steady traffic are nearly all younger than that less
// MaxAttemptSpan.
func (db *DB) keepLostRows(ctx context.Context, from, to time.Time, version uint64) error {
	reach := time.UnixMilli(int64(version)).Add(MaxAttemptSpan - time.Duration(MinFactsRetention))
	end := minTime(to, hourOf(reach).Add(time.Hour))
	if !from.Before(end) {
		return nil
	}
	var prev []rolledHour
	q := fmt.Sprintf("SELECT hour, max(version) FROM rolled_hours WHERE hour >= %s AND hour < %s AND version < %d GROUP BY hour", sqlHour(from), sqlHour(end), version)
	err := db.eachRow(ctx, "previous versions", q, nil, func(rows driver.Rows) error {
		var h rolledHour
		if err := rows.Scan(&h.hour, &h.version); err != nil {
			return err
		}
		h.hour = h.hour.UTC()
		prev = append(prev, h)
		return nil
	})
	if err != nil || len(prev) == 0 {
		return err
	}
	slices.SortFunc(prev, func(a, b rolledHour) int { return a.hour.Compare(b.hour) })
	stored := Window{From: from, To: end, stored: prev}
	// The OTPs with attempts at version within MaxAttemptSpan: in the hours
	// computed, or in an earlier chunk of this run, where a late fact may
	// have moved one's start.
	now := fmt.Sprintf("SELECT otp_id FROM hour_attempts WHERE hour >= %s AND hour < %s AND version = %d", sqlHour(from.Add(-MaxAttemptSpan)), sqlHour(to.Add(MaxAttemptSpan)), version)
	var lost []rolledHour
	var attempts uint64
	q = fmt.Sprintf("SELECT hour, version, count() FROM (SELECT hour, version, otp_id FROM hour_attempts WHERE %s) WHERE otp_id NOT IN (%s) GROUP BY hour, version ORDER BY hour",
		stored.storedSQL("a_first"), now)
	err = db.eachRow(ctx, "attempts whose facts are gone", q, nil, func(rows driver.Rows) error {
		var h rolledHour
		var n uint64
		if err := rows.Scan(&h.hour, &h.version, &n); err != nil {
			return err
		}
		h.hour = h.hour.UTC()
		lost, attempts = append(lost, h), attempts+n
		return nil
	})
	if err != nil || len(lost) == 0 {
		return err
	}
	db.logger.Warn("rolled-up attempts whose facts are gone (deleted by a shorter retention than today's) are kept from the hours' stored rows",
		"hours", len(lost), "attempts", attempts, "first", lost[0].hour.Format(time.RFC3339), "last", lost[len(lost)-1].hour.Format(time.RFC3339))
	kept := Window{From: lost[0].hour, To: lost[len(lost)-1].hour.Add(time.Hour), stored: lost}
	for _, s := range []string{
		fmt.Sprintf(`INSERT INTO hour_journeys (hour, version, %[1]s, s_final, s_verified, s_rate)
SELECT hour, %[2]d, %[1]s, s_final, s_verified, s_rate FROM (SELECT hour, %[1]s, s_final, s_verified, s_rate FROM hour_journeys WHERE %[3]s) WHERE otp_id NOT IN (%[4]s)`,
			journeyCols, version, kept.storedSQL("j_first"), now),
		fmt.Sprintf(`INSERT INTO hour_attempts (hour, version, %[1]s)
SELECT hour, %[2]d, %[1]s FROM (SELECT hour, %[1]s FROM hour_attempts WHERE %[3]s) WHERE otp_id NOT IN (%[4]s)`,
			attemptCols, version, kept.storedSQL("a_first"), now),
	} {
		if err := db.conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("keep the rolled-up rows of %s to %s whose facts are gone: %w", kept.From.Format(time.RFC3339), kept.To.Format(time.RFC3339), err)
		}
	}
	return nil
}

// deleteReplacedRollups deletes from tables the rows of versions older than
// each hour's (or day's) current one in records. Those were replaced by an
// earlier run, so no reader that planned since still reads them.
func (db *DB) deleteReplacedRollups(ctx context.Context, records string, tables []string) error {
	byVersion := map[uint64][]string{} // current version → its hours with older ones
	err := db.eachRow(ctx, "replaced rollups", "SELECT hour, max(version) FROM "+records+" GROUP BY hour HAVING count() > 1", nil, func(rows driver.Rows) error {
		var h time.Time
		var v uint64
		if err := rows.Scan(&h, &v); err != nil {
			return err
		}
		byVersion[v] = append(byVersion[v], sqlHour(h.UTC()))
		return nil
	})
	if err != nil || len(byVersion) == 0 {
		return err
	}
	var conds []string
	for v, hs := range byVersion {
		sort.Strings(hs)
		conds = append(conds, fmt.Sprintf("(hour IN (%s) AND version < %d)", strings.Join(hs, ", "), v))
	}
	sort.Strings(conds)
	// Lightweight deletes (a row mask, not a rewrite), left to run in the
	// background: readers select versions, so a replaced row still there
	// costs space, never a wrong figure; waiting for eight mutations cost
	// a run seconds.
	ctx = withSettings(ctx, clickhouse.Settings{"lightweight_deletes_sync": 0})
	for _, t := range tables {
		if err := db.conn.Exec(ctx, "DELETE FROM "+db.localTarget(t)+" WHERE "+strings.Join(conds, " OR ")); err != nil {
			return fmt.Errorf("rollups: delete replaced versions of %s: %w", t, err)
		}
	}
	return nil
}
