package store

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Hourly rollups (schema/0008_hourly_rollups.sql): the figures of whole UTC
// hours, and the attempts and journeys of each hour, computed by the SQL
// below — the same definitions the live queries use for a window — so that a
// window of any length reads a few rows per hour, and its partial first and
// last hours read only their own attempts. Hours that inserts changed since
// their computation (rollup_dirty) are read from their stored rows with the
// OTPs touched since computed live (Window.patched) until the job has
// recomputed them; percentiles stay exact because the rollups keep a count
// per millisecond value.

// RollupSlack is how long an insert may take to become visible after its
// dirty mark's inserted_at, on a cluster: marks up to this long before an
// hour's version still make it dirty (readers patch it and the job
// patches or checks it again). On a single server the rollup job waits for
// the inserts instead and the slack is at most settledSlack (settle.go).
// Set it before use, if at all.
var RollupSlack = 5 * time.Minute

// latencyBucket groups millisecond values for the two-step exact percentile:
// the per-bucket counts find the bucket holding the wanted rank, then only
// that bucket's values are read. Must match intDiv(ms, 256) in SQL (both
// truncate toward zero, so buckets are ordered like their values).
const latencyBucket = 256

const (
	metricLatency = "latency"
	metricTTD     = "ttd"
)

// The aggregates below each read a subquery of attempts (attemptCols) or
// journeys (journeyStatusSQL's columns) — computed live, or the rows stored
// for rolled-up hours — and group by by (a column list ending in a comma, or
// ""), so one definition fills the hourly tables and answers live and
// partial hours. The conversion is the one exception: readers take
// conversionAggSQL's figures through conversionSQL (same journeys,
// convertedSQL, same columns), which ClickHouse answers faster.

// channelAggSQL yields per (by, profile_id, channel, code): attempts,
// delivered, failed, undeliverable, timed_out, unknown, polled, lat_n,
// pending_first, lats, the latencies (ms) that latencyAggSQL counts, and
// pending_firsts, the first facts of the pending attempts (what
// completeness counts; the job does not store them). code is the error
// code of failed attempts and empty for the others.
func channelAggSQL(src, by string) string {
	return fmt.Sprintf(`SELECT %[1]s toString(a_profile) AS profile_id, toString(channel) AS channel, code,
`+attemptCountsSQL+`
    groupArrayIf(toUnixTimestamp64Milli(assumeNotNull(a_delivered)) - toUnixTimestamp64Milli(assumeNotNull(a_dispatched)),
        a_delivered IS NOT NULL AND a_dispatched IS NOT NULL) AS lats,
    groupArrayIf(a_first, `+pendingSQL+`) AS pending_firsts
FROM (
    SELECT *, if(a_delivered IS NULL AND a_failed IS NOT NULL, a_err, '') AS code
    FROM (%[2]s)
)
GROUP BY %[1]s profile_id, channel, code`, by, src)
}

// latencyAggSQL yields the latency histogram of src's attempts: by,
// profile_id, key (the channel), ms, n.
func latencyAggSQL(src, by string) string {
	return fmt.Sprintf(`SELECT %[1]s toString(a_profile) AS profile_id, toString(channel) AS key,
    toUnixTimestamp64Milli(assumeNotNull(a_delivered)) - toUnixTimestamp64Milli(assumeNotNull(a_dispatched)) AS ms, count() AS n
FROM (%[2]s)
WHERE a_delivered IS NOT NULL AND a_dispatched IS NOT NULL
GROUP BY %[1]s profile_id, key, ms`, by, src)
}

// journeyAggSQL yields per (by, profile_id, path): primary_channel, otps,
// fallback, resends, o_primary, o_fallback, o_failed, o_pending, delivered,
// and ttds, the times to deliver (ms) that ttdAggSQL counts.
func journeyAggSQL(src, by string) string {
	return fmt.Sprintf(`SELECT %[1]s toString(j_profile) AS profile_id, toString(path) AS path, toString(any(j_primary)) AS primary_channel,
`+journeyCountsSQL+`
    groupArrayIf(toUnixTimestamp64Milli(assumeNotNull(j_delivered)) - toUnixTimestamp64Milli(j_first), `+ttdKnownSQL+`) AS ttds
FROM (%[2]s)
GROUP BY %[1]s profile_id, path`, by, src)
}

// ttdAggSQL yields the time-to-deliver histogram of src's journeys: by,
// profile_id, key (the primary channel), ms, n.
func ttdAggSQL(src, by string) string {
	return fmt.Sprintf(`SELECT %[1]s toString(j_profile) AS profile_id, toString(j_primary) AS key,
    toUnixTimestamp64Milli(assumeNotNull(j_delivered)) - toUnixTimestamp64Milli(j_first) AS ms, count() AS n
FROM (%[2]s)
WHERE `+ttdKnownSQL+`
GROUP BY %[1]s profile_id, key, ms`, by, src)
}

// ttdKnownSQL selects the delivered journeys whose time to deliver is
// known (j_timed = 1): those with a fact before their first DELIVERED, or a
// DISPATCHED at its very instant (tyntec's times may be whole seconds: a
// delivery within the second is 0 ms). A journey whose first known fact is
// that DELIVERED alone (its DISPATCHED lost and not recovered) has no known
// start, and a 0 in the percentiles would be a number nobody measured
// (docs/analytics.md). Rows rolled up before schema 0025 have j_timed 0 and
// keep the rule they were summed under: a fact strictly before.
const ttdKnownSQL = "j_delivered IS NOT NULL AND (j_timed = 1 OR (j_timed = 0 AND j_delivered > j_first))"

// conversionAggSQL yields the verification conversion of src's journeys:
// by, profile_id, channel (the delivering one), polled, verified,
// sample_rate.
func conversionAggSQL(src, by string) string {
	return fmt.Sprintf(`SELECT %[1]s toString(j_profile) AS profile_id, toString(j_delivered_channel) AS channel,
    count() AS polled, countIf(s_verified = 1) AS verified, min(s_rate) AS sample_rate
FROM (%[2]s)
WHERE `+convertedSQL+`
GROUP BY %[1]s profile_id, channel`, by, src)
}

// convertedSQL selects the journeys the verification conversion counts:
// delivered, with a final status polled.
const convertedSQL = "j_delivered IS NOT NULL AND s_final = 1"

// channelRowsSQL is channelAggSQL over w's attempts.
func (w Window) channelRowsSQL() (string, []any) {
	sub, args := w.channelAttemptsSQL()
	return channelAggSQL(sub, ""), args
}

// journeyRowsSQL is journeyAggSQL over w's journeys.
func (w Window) journeyRowsSQL() (string, []any) {
	sub, args := w.journeysSQL()
	return journeyAggSQL(sub, ""), args
}

// conversionSQL is the verification conversion of w's journeys for
// readers: conversionAggSQL's figures (the same journeys counted, the same
// columns) per delivering channel, as one row of maps — channels with
// polled and verified, channels with sample_rate — that addConversion
// reads. One row of aggregates without GROUP BY: over a patched window's
// journeys ClickHouse took twice as long to return the same figures as
// grouped rows (at 111 M events, 5.6 k touched OTPs: 325 against 165 ms).
// w.Profile filters the journeys; w.Channel is applied by addConversion to
// the delivering channel.
func (w Window) conversionSQL() (string, []any) {
	jw := w
	jw.Channel = ""
	sub, args := jw.journeyStatusSQL()
	return fmt.Sprintf(`SELECT (sm).1, (sm).2, (sm).3, (mm).1, (mm).2 FROM (
    SELECT sumMap([ch], [toUInt64(1)], [toUInt64(s_verified = 1)]) AS sm, minMap([ch], [s_rate]) AS mm
    FROM (SELECT toString(j_delivered_channel) AS ch, s_verified, s_rate FROM (%s) WHERE `+convertedSQL+`)
)`, sub), args
}

// addConversion adds w's verification conversion per delivering channel to
// out (polled and verified summed, the least sample rate); Rate is left to
// the caller.
func (db *DB) addConversion(ctx context.Context, w Window, out map[string]Conversion) error {
	q, args := w.conversionSQL()
	var chs, rateChs []string
	var polled, verified []uint64
	var rates []float64
	if err := db.conn.QueryRow(ctx, q, args...).Scan(&chs, &polled, &verified, &rateChs, &rates); err != nil {
		return fmt.Errorf("query conversion: %w", err)
	}
	least := make(map[string]float64, len(rateChs))
	for i, ch := range rateChs {
		least[ch] = rates[i]
	}
	for i, ch := range chs {
		if (w.Channel != "" && ch != w.Channel) || polled[i] == 0 {
			continue
		}
		c, seen := out[ch]
		c.Polled += polled[i]
		c.Verified += verified[i]
		if r := least[ch]; !seen || r < c.SampleRate {
			c.SampleRate = r
		}
		out[ch] = c
	}
	return nil
}

// rolledHour is an hour read from the rollups, at its current version.
// asOf (ms, by the version clock) is since when its rows are known exact:
// the version, or the newest check of it that found nothing changed
// (rolled_hour_checks, schema 0016), less the slack (settle.go). Dirty
// marks and touched OTPs are compared with asOf; rows are selected by
// version.
type rolledHour struct {
	hour    time.Time
	version uint64
	asOf    uint64
}

func hourOf(t time.Time) time.Time { return t.UTC().Truncate(time.Hour) }

func sqlHour(t time.Time) string { return fmt.Sprintf("toDateTime(%d, 'UTC')", t.Unix()) }

// hourStates returns, for the hours in [from, to), every rolled-up hour at
// its current version (and since when it is known exact: asOf), the newest
// dirty mark of every marked hour, and since when rollup_touched records the
// touched OTPs (zero: not at all).
func (db *DB) hourStates(ctx context.Context, from, to time.Time) (rolled map[time.Time]rolledHour, marks map[time.Time]time.Time, touchedSince time.Time, days map[time.Time]dayRecord, err error) {
	rolled, marks, days = map[time.Time]rolledHour{}, map[time.Time]time.Time{}, map[time.Time]dayRecord{}
	// exactFrom is asOf for a version or check at ms: ms less the slack.
	slack := uint64(db.slack().Milliseconds())
	exactFrom := func(ms uint64) uint64 { return ms - min(ms, slack) }
	type check struct {
		hour        time.Time
		version, at uint64
	}
	var checks []check
	rng := fmt.Sprintf("hour >= %s AND hour < %s", sqlHour(from), sqlHour(to))
	// One query for all: a window's fixed cost is mostly its round trips.
	q := `SELECT 0, hour, max(version), toDateTime64(0, 3, 'UTC'), '' FROM rolled_hours WHERE ` + rng + ` GROUP BY hour
UNION ALL
SELECT 1, hour, 0, max(inserted_at), '' FROM rollup_dirty WHERE ` + rng + ` GROUP BY hour
UNION ALL
SELECT 2, toDateTime(0, 'UTC'), 0, max(applied_at), '' FROM ` + migrationsTable + ` WHERE version = ` + touchedMigration + ` HAVING count() > 0
UNION ALL
SELECT 3, hour, max(version), toDateTime64(0, 3, 'UTC'), argMax(` + dayHoursSQL + `, version) FROM rolled_day_lists WHERE ` + rng + ` GROUP BY hour
UNION ALL
SELECT 4, hour, version, fromUnixTimestamp64Milli(toInt64(max(checked_at)), 'UTC'), '' FROM rolled_hour_checks WHERE ` + rng + ` GROUP BY hour, version`
	err = db.eachRow(ctx, "hour states", q, nil, func(rows driver.Rows) error {
		var kind uint8
		var h, ins time.Time
		var v uint64
		var hours string
		if err := rows.Scan(&kind, &h, &v, &ins, &hours); err != nil {
			return err
		}
		switch kind {
		case 0:
			rolled[h.UTC()] = rolledHour{hour: h.UTC(), version: v, asOf: exactFrom(v)}
		case 1:
			marks[h.UTC()] = ins
		case 2:
			touchedSince = ins
		case 3:
			days[h.UTC()] = dayRecord{version: v, hours: hours}
		default:
			checks = append(checks, check{h.UTC(), v, uint64(ins.UnixMilli())})
		}
		return nil
	})
	for _, c := range checks {
		if r, ok := rolled[c.hour]; ok && r.version == c.version && exactFrom(c.at) > r.asOf {
			r.asOf = exactFrom(c.at)
			rolled[c.hour] = r
		}
	}
	return rolled, marks, touchedSince, days, err
}

// dayRecord is the newest computation of a day's histograms: its version and
// the (hour, version) pairs it summed, as dayHoursSQL writes them.
type dayRecord struct {
	version uint64
	hours   string
}

// dayHoursSQL writes a day record's hours as text, "unix:version" pairs in
// hour order, which dayHoursKey writes alike from a plan's hours.
var dayHoursSQL = dayHoursOf("hours")

// dayHoursOf writes pairs, an array of (hour, version) tuples, as
// dayHoursSQL writes a day record's: the job compares the two (rollUpDays).
func dayHoursOf(pairs string) string {
	return `arrayStringConcat(arrayMap(x -> concat(toString(toUnixTimestamp(x.1)), ':', toString(x.2)), arraySort(` + pairs + `)), ',')`
}

func dayHoursKey(hs []rolledHour) string {
	hs = slices.Clone(hs)
	sort.Slice(hs, func(i, j int) bool { return hs[i].hour.Before(hs[j].hour) })
	parts := make([]string, len(hs))
	for i, h := range hs {
		parts[i] = fmt.Sprintf("%d:%d", h.hour.Unix(), h.version)
	}
	return strings.Join(parts, ",")
}

// touchedMigration is the migration that made rollup_touched: the OTPs
// inserted before it was applied are not in it.
const touchedMigration = "12"

// patchAge bounds how old a dirty hour's version may be for readers to patch
// it (Window.patched) rather than compute it live: rollup_touched keeps
// three days (schema 0012), and a version older than a day means the job
// has not run for that long, when a live read is the safe one.
var patchAge = 24 * time.Hour

// frozen reports whether a rolled-up hour can no longer be computed again
// from its facts at now: retention (factsKept) may have deleted some of
// those its figures are computed from, MaxAttemptSpan either side of it.
// Its stored rows are then all that is left of it, and they stand: a late
// fact near it is stored but not counted into it, where computing it
// again, or patching it, from what is left would lose what was deleted.
// It reads the TTLs as they are now: facts a shorter TTL deleted before
// it was lengthened are gone from hours it calls not frozen, which
// keepLostRows holds to when it computes them again.
func (db *DB) frozen(h, now time.Time) bool {
	return db.factsKept > 0 && h.Add(-MaxAttemptSpan).Before(now.Add(-db.factsKept))
}

// canPatch reports whether a dirty hour known exact since asOf can be read
// patched: the OTPs touched since then are all recorded.
func canPatch(asOf uint64, touchedSince, now time.Time) bool {
	since := time.UnixMilli(int64(asOf))
	return !touchedSince.IsZero() && !since.Before(touchedSince) && since.After(now.Add(-patchAge))
}

// clean reports whether an hour known exact since asOf (its version, or a
// later check) has no dirty mark that may be newer.
func clean(asOf uint64, mark time.Time, marked bool) bool {
	return !marked || mark.Before(time.UnixMilli(int64(asOf)))
}

// patchableHours are the hours of [h0, h1) that are rolled up, dirty since
// they were known exact, and can be read patched at now: what readers patch,
// and what the job patches or finds unchanged.
func patchableHours(rolled map[time.Time]rolledHour, marks map[time.Time]time.Time, touchedSince time.Time, h0, h1, now time.Time) []rolledHour {
	var out []rolledHour
	for h := h0; h.Before(h1); h = h.Add(time.Hour) {
		r, ok := rolled[h]
		mark, marked := marks[h]
		if ok && marked && !clean(r.asOf, mark, marked) && canPatch(r.asOf, touchedSince, now) {
			out = append(out, r)
		}
	}
	return out
}

// plan is a window split into whole rolled-up hours (read from the hourly
// aggregates) and sub-windows computed from rows: the partial hours at its
// ends (from their stored attempts and journeys), the hours dirty since their
// version (patched: the stored rows with the touched OTPs computed live) and
// the hours never rolled up or dirty beyond patching (live).
type plan struct {
	hours []rolledHour // ascending
	live  []Window
	// days are whole UTC days of hours whose histograms are read from the
	// day level (schema 0013): each day's hours are all in hours, at the
	// versions the day was computed from (in a series, but those an
	// anchored day's hours cut by a bucket's edge: anchors).
	days []rolledDay
	// asOf is the oldest time (Unix ms) since which an hour the plan reads
	// dirty, as Window.MaxLag lets it, is known exact; 0: none.
	asOf uint64
}

// rolledDay is a day whose histograms are read from day_latency*, at its
// version, standing for its hours.
type rolledDay struct {
	day     time.Time
	version uint64
	hours   []rolledHour
}

// PlanOnce returns a context in which the store plans each window once: an
// answer over a window and, later, another over the same from and to (with
// any filters) share the rollups' state as first read — fewer queries, and
// an answer and its completeness that agree. For one request, not longer:
// the plan is a snapshot.
func PlanOnce(ctx context.Context) context.Context {
	return context.WithValue(ctx, planMemoKey{}, &planMemo{plans: map[planKey]planned{}, pending: map[string][]time.Time{}})
}

// AsOf is how far behind the answers read under ctx's PlanOnce may be:
// every fact stored before t is counted, and facts stored since may not be,
// in the dirty hours that Window.MaxLag let them read as the rollup job left
// them (the oldest such computation or check, less the slack). ok is false
// when every hour was read exact as of the read.
func AsOf(ctx context.Context) (t time.Time, ok bool) {
	memo := memoOf(ctx)
	if memo == nil {
		return t, false
	}
	memo.mu.Lock()
	defer memo.mu.Unlock()
	if memo.asOf == 0 {
		return t, false
	}
	return time.UnixMilli(int64(memo.asOf)).UTC(), true
}

type planMemoKey struct{}

// noteAsOf records that an answer counts only the facts stored before ms
// (Unix ms; 0: every fact visible when read): AsOf is the oldest noted.
// The caller holds mu.
func (memo *planMemo) noteAsOf(ms uint64) {
	if ms > 0 && (memo.asOf == 0 || ms < memo.asOf) {
		memo.asOf = ms
	}
}

// noteAsOf is memo.noteAsOf under ctx's PlanOnce, if any.
func noteAsOf(ctx context.Context, ms uint64) {
	if memo := memoOf(ctx); memo != nil {
		memo.mu.Lock()
		defer memo.mu.Unlock()
		memo.noteAsOf(ms)
	}
}

// memoOf is ctx's PlanOnce memo, or nil.
func memoOf(ctx context.Context) *planMemo {
	memo, _ := ctx.Value(planMemoKey{}).(*planMemo)
	return memo
}

type planMemo struct {
	mu    sync.Mutex
	plans map[planKey]planned
	asOf  uint64 // the oldest of the plans' asOf; 0: none
	// pending holds, per sub-window's attempts (their SQL and arguments),
	// the first facts of the pending ones as Channels read them with the
	// channel rows, for the completeness of the same attempts.
	pending map[string][]time.Time
}

// notePending keeps the first facts of w's pending attempts, read with
// its channel rows, for Completeness within the same PlanOnce.
func notePending(ctx context.Context, w Window, firsts []time.Time) {
	memo := memoOf(ctx)
	if memo == nil {
		return
	}
	key := attemptsKey(w)
	memo.mu.Lock()
	defer memo.mu.Unlock()
	memo.pending[key] = firsts
}

// notedPending is what notePending kept for w's attempts, if anything.
func notedPending(ctx context.Context, w Window) ([]time.Time, bool) {
	memo := memoOf(ctx)
	if memo == nil {
		return nil, false
	}
	key := attemptsKey(w)
	memo.mu.Lock()
	defer memo.mu.Unlock()
	firsts, ok := memo.pending[key]
	return firsts, ok
}

// attemptsKey names the attempts a window reads: the same SQL and arguments
// read the same attempts (filters, hours, touched OTPs included).
func attemptsKey(w Window) string {
	q, args := w.channelAttemptsSQL()
	return q + "\x00" + fmt.Sprint(args...)
}

// planKey is what a plan depends on: a window's ends and its MaxLag (its
// filters only select from what the plan reads).
type planKey struct {
	from, to time.Time
	maxLag   time.Duration
}

type planned struct {
	p  plan
	ok bool
}

// planWindow splits w into rolled-up hours and sub-windows; ok is false when
// no rolled-up hour can be used (then the plain live query is the same).
// Under PlanOnce a plan made for the same from and to is reused.
func (db *DB) planWindow(ctx context.Context, w Window) (plan, bool, error) {
	if w.Raw {
		return plan{}, false, nil
	}
	memo := memoOf(ctx)
	if memo == nil {
		return db.makePlan(ctx, w)
	}
	memo.mu.Lock()
	defer memo.mu.Unlock()
	key := planKey{w.From, w.To, w.MaxLag}
	got, seen := memo.plans[key]
	if !seen {
		p, ok, err := db.makePlan(ctx, w)
		if err != nil {
			return p, ok, err
		}
		got = planned{p, ok}
		memo.plans[key] = got
		if ok {
			memo.noteAsOf(p.asOf)
		}
	}
	// The plan is the same for every filter; its sub-windows carry w's.
	p := got.p
	p.live = slices.Clone(p.live)
	for i := range p.live {
		p.live[i].Profile, p.live[i].Channel = w.Profile, w.Channel
	}
	return p, got.ok, nil
}

func (db *DB) makePlan(ctx context.Context, w Window) (p plan, ok bool, err error) {
	h0, h1 := hourOf(w.From), hourOf(w.To)
	if h1.Before(w.To) {
		h1 = h1.Add(time.Hour)
	}
	rolled, marks, touchedSince, dayRecords, err := db.hourStates(ctx, h0, h1)
	if err != nil || len(rolled) == 0 {
		return p, false, err
	}
	now := time.Now()
	// Dirty hours retention has frozen are read as the job left them too,
	// and as it will leave them.
	frozen := map[time.Time]bool{}
	for h, r := range rolled {
		if mark, marked := marks[h]; !clean(r.asOf, mark, marked) && db.frozen(h, now) {
			frozen[h] = true
		}
	}
	// The dirty hours MaxLag lets be read as the job left them.
	lagged := map[time.Time]bool{}
	if w.MaxLag > 0 {
		floor := uint64(now.Add(-w.MaxLag).UnixMilli())
		for h, r := range rolled {
			if mark, marked := marks[h]; !clean(r.asOf, mark, marked) && r.asOf >= floor {
				lagged[h] = true
				if p.asOf == 0 || r.asOf < p.asOf {
					p.asOf = r.asOf
				}
			}
		}
	}
	// The other dirty hours that can be patched, and of those the ones a
	// touched OTP has rows in, stored or live; the others are still exact
	// at their versions.
	cands := slices.DeleteFunc(patchableHours(rolled, marks, touchedSince, h0, h1, now), func(r rolledHour) bool { return lagged[r.hour] || frozen[r.hour] })
	patchable := map[time.Time]bool{}
	for _, c := range cands {
		patchable[c.hour] = true
	}
	cw := w
	cw.stored = cands
	var changed map[time.Time]bool
	var factDays string
	if len(cands) > 0 {
		var tooMany bool
		if cw.touched, changed, factDays, tooMany, err = db.touchedChanges(ctx, cw); err != nil {
			return p, false, err
		}
		if tooMany {
			clear(patchable) // computed live, like hours dirty beyond patching
		}
	}
	var live, part, patch []span
	var partHours, patchHours []rolledHour
	add := func(ss []span, from, to time.Time) []span {
		if n := len(ss); n > 0 && ss[n-1].to.Equal(from) {
			ss[n-1].to = to
			return ss
		}
		return append(ss, span{from, to})
	}
	for h := h0; h.Before(h1); h = h.Add(time.Hour) {
		from, to := maxTime(h, w.From), minTime(h.Add(time.Hour), w.To)
		if !from.Before(to) {
			continue
		}
		r, isRolled := rolled[h]
		mark, marked := marks[h]
		exact := isRolled && (clean(r.asOf, mark, marked) || lagged[h] || frozen[h] || patchable[h] && !changed[h])
		switch {
		case exact && from.Equal(h) && to.Equal(h.Add(time.Hour)):
			p.hours = append(p.hours, r)
		case exact:
			part = add(part, from, to)
			partHours = append(partHours, r)
		case !marked:
			// No fact was ever stored within MaxAttemptSpan of this hour:
			// nothing starts in it.
		case patchable[h]:
			patch = add(patch, from, to)
			patchHours = append(patchHours, r)
		default:
			live = add(live, from, to)
		}
	}
	if len(p.hours) == 0 && len(part) == 0 && len(patch) == 0 {
		return p, false, nil
	}
	p.days = wholeDays(w, p.hours, dayRecords, func(h time.Time) bool {
		_, isRolled := rolled[h]
		_, marked := marks[h]
		return isRolled || marked
	})
	sub := func(ss []span, stored []rolledHour) Window {
		lw := w
		lw.From, lw.To, lw.spans, lw.stored = ss[0].from, ss[len(ss)-1].to, ss, stored
		return lw
	}
	if len(part) > 0 {
		p.live = append(p.live, sub(part, partHours))
	}
	if len(patch) > 0 {
		pw := sub(patch, patchHours)
		pw.patched = true
		// The candidates' touched set holds this one's (their oldest
		// version is no newer).
		pw.touched, pw.factDays = cw.touched, factDays
		p.live = append(p.live, pw)
	}
	if len(live) > 0 {
		p.live = append(p.live, sub(live, nil))
	}
	return p, true, nil
}

// changedHours returns the hours of cw.stored (dirty, patchable) that the
// OTPs touched since their versions (touched, else cw.touchedSQL) have rows
// in, as stored at the version or as computed now. In the others every
// OTP's facts are as they were at the version, so their stored rows and
// aggregates are still exact and they are read like clean hours. A
// row starts at one of its OTPs' facts (an attempt at its first fact, a
// journey at its first attempt), so the touched OTPs' live rows start in
// the hours of their facts, read from channel_events like live attempts.
// Under steady traffic this leaves the hours of the last few minutes' OTPs
// to patch instead of the whole day that their marks make dirty.
//
// factDays is, as a condition on channel_events, the days of its rows that
// hold the touched OTPs' facts: what their live rows read, rather than every
// day within MaxAttemptSpan of the hours (recent OTPs' facts are in a day or
// two; the days around them hold everyone else's).
func (db *DB) changedHours(ctx context.Context, cw Window) (changed map[time.Time]bool, factDays string, err error) {
	touched, with := cw.touchedSet()
	from, to := cw.stored[0].hour, cw.stored[len(cw.stored)-1].hour.Add(time.Hour)
	sel := hoursSQL(cw.stored)
	// day is the channel_events row's day, zero for stored rows.
	q := with + fmt.Sprintf(`SELECT DISTINCT toDate(0) AS day, hour FROM hour_attempts WHERE %[1]s AND otp_id IN %[2]s
UNION DISTINCT
SELECT DISTINCT toDate(0), hour FROM hour_journeys WHERE %[1]s AND otp_id IN %[2]s
UNION DISTINCT
SELECT DISTINCT day, toDateTime(toStartOfHour(e.1), 'UTC') FROM channel_events ARRAY JOIN events AS e
WHERE day >= toDate(%[3]s) AND day <= toDate(%[4]s) AND otp_id IN %[2]s`, sel, touched, msTime(from.Add(-MaxAttemptSpan)), msTime(to.Add(MaxAttemptSpan)))
	changed = map[time.Time]bool{}
	days := map[string]bool{}
	err = db.eachRow(ctx, "changed hours", q, nil, func(rows driver.Rows) error {
		var d, h time.Time
		if err := rows.Scan(&d, &h); err != nil {
			return err
		}
		changed[h.UTC()] = true
		if d.Unix() != 0 {
			days[fmt.Sprintf("toDate('%s')", d.Format(time.DateOnly))] = true
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	if len(days) == 0 {
		return changed, "0", nil // no facts: no live rows
	}
	list := slices.Sorted(maps.Keys(days))
	return changed, "day IN (" + strings.Join(list, ", ") + ")", nil
}

// touchedChanges reads cw's touched OTPs once, as the list its queries name
// (touchedList), and the hours of cw.stored they changed (changedHours):
// what readers and the rollup job both ask of dirty, patchable hours.
// tooMany reports more rows of rollup_touched to read them from than
// maxTouchedSet: then the hours are not patched but computed (readers
// live, the job from their facts).
func (db *DB) touchedChanges(ctx context.Context, cw Window) (touched string, changed map[time.Time]bool, factDays string, tooMany bool, err error) {
	if cw.touched, tooMany, err = db.touchedList(ctx, cw); err != nil || tooMany {
		return "", nil, "", tooMany, err
	}
	changed, factDays, err = db.changedHours(listing(ctx, cw), cw)
	return cw.touched, changed, factDays, false, err
}

// maxTouchedList bounds the touched OTPs a plan names as a list: the list
// is in the text of each query that reads them (an id takes 37 bytes), with
// max_query_size raised to touchedQuerySize for it (listing). It is read
// from at most 4× as many rows of rollup_touched (one per OTP per insert);
// past either, the queries name the touched set as a subquery.
var maxTouchedList = 20000

// maxTouchedSet bounds the rows of rollup_touched (one per OTP per insert)
// that hours are patched by at all. Past it patching costs more than
// computing the hours: after a bulk insert (a backlog drained, a replay,
// an import) every hour of it is dirty and touched by nearly every OTP,
// and on the 111 M bench database the set of the data's own insert, 17 M
// OTPs matched against each hour's rows, took the engine past 21 GiB of
// memory; being told it is too many took 0.2 s.
var maxTouchedSet = 1_000_000

const touchedQuerySize = 2 << 20

// defaultMaxQuerySize is ClickHouse's max_query_size unless raised.
const defaultMaxQuerySize = 256 << 10

// readerTouchedList bounds the touched OTPs a reader names as a list
// (ConnectReader): as many as fit in half of the default max_query_size,
// ~3,500, since it may not raise it.
const readerTouchedList = defaultMaxQuerySize / 2 / len(noOTP+",")

// maxTouchedList is the most touched OTPs db names as a list.
func (db *DB) maxTouchedList() int {
	if db.reader {
		return min(maxTouchedList, readerTouchedList)
	}
	return maxTouchedList
}

// listing is ctx for the queries of windows, with max_query_size raised
// when one of them names its touched OTPs as a list longer than half the
// default (~3,500 OTPs), which a reader's lists never are: a shorter list
// needs no setting changed.
func listing(ctx context.Context, windows ...Window) context.Context {
	longest := 0
	for _, w := range windows {
		longest = max(longest, len(w.touched))
	}
	return longQuery(ctx, longest)
}

// longQuery is ctx for queries carrying n bytes of a list or data in their
// text: max_query_size raised to touchedQuerySize past half the default.
func longQuery(ctx context.Context, n int) context.Context {
	if n > defaultMaxQuerySize/2 {
		return withSettings(ctx, clickhouse.Settings{"max_query_size": touchedQuerySize})
	}
	return ctx
}

// touchedAlias names the touched OTPs' list in the queries that read it.
const touchedAlias = "touched_otps"

// touchedList reads pw's touched OTPs once (its touchedSQL) and returns them
// as one comma-separated string (see Window.touched), so that each query
// names a constant set instead of evaluating the subquery again (30 ms or
// more each time, even for a few OTPs); "" when there are more than
// maxTouchedList (or more than 4× as many rows to read them from: the list
// is closed over those rows only). tooMany reports more rows than
// maxTouchedSet, which one count under a LIMIT tells without computing
// the set.
func (db *DB) touchedList(ctx context.Context, pw Window) (list string, tooMany bool, err error) {
	maxList := db.maxTouchedList()
	listRows := 4 * maxList
	var ids []string
	var marks uint64
	q := fmt.Sprintf(`SELECT 1, toString(count()) FROM (SELECT 1 FROM %s LIMIT %d)
UNION ALL
SELECT 0, toString(otp_id) FROM (SELECT otp_id FROM (%s) LIMIT %d)`, pw.touchedRows(), maxTouchedSet+1, pw.touchedSQL(listRows+1), maxList+1)
	err = db.eachRow(ctx, "touched OTPs", q, nil, func(rows driver.Rows) error {
		var kind uint8
		var v string
		if err := rows.Scan(&kind, &v); err != nil {
			return err
		}
		if kind == 1 {
			marks, err = strconv.ParseUint(v, 10, 64)
			return err
		}
		ids = append(ids, v)
		return nil
	})
	switch {
	case err != nil:
		return "", false, err
	case marks > uint64(maxTouchedSet):
		return "", true, nil
	case marks > uint64(listRows) || len(ids) > maxList:
		return "", false, nil
	case len(ids) == 0:
		return noOTP, false, nil
	}
	return strings.Join(ids, ","), false, nil
}

// touchedSet is how a query over w's touched OTPs names them: set follows
// IN, and with, when not empty, starts the query. With a list, the list is
// written once, as a WITH alias every part of the query sees, rather than
// in each place the set appears: ClickHouse parses and analyzes an IN list
// wherever it is written, an alias once (at 1.8k OTPs the touched OTPs'
// journeys took 110 ms instead of 170). It is one string literal split
// and cast to UUIDs, both folded to a constant before the query runs: a
// query naming an array literal of 5.6k strings took 26 ms to parse and
// analyze, the same list as one string 5 ms; compared
// as UUIDs, not strings row by row (at 5.6k OTPs, /channels' conversion
// over the patched hours took 340 ms instead of 530). A lambda over the
// parts (arrayMap) is not folded, and then no primary index is used.
func (w Window) touchedSet() (set, with string) {
	if w.touched == "" {
		return "(" + w.touchedSQL(0) + ")", ""
	}
	return touchedAlias, withTouched(w.touched)
}

// withTouched is the WITH clause that names list (OTP ids joined by
// commas) touchedAlias, as touchedSet describes.
func withTouched(list string) string {
	return "WITH CAST(splitByChar(',', '" + list + "'), 'Array(UUID)') AS " + touchedAlias + "\n"
}

// noOTP is a touched list no OTP is in: nothing touched.
const noOTP = "00000000-0000-0000-0000-000000000000"

// wholeDays are the days inside w whose every hour with facts (known: rolled
// up or marked) is among hours, read from the hourly aggregates, at the
// versions their day record was computed from.
func wholeDays(w Window, hours []rolledHour, records map[time.Time]dayRecord, known func(time.Time) bool) []rolledDay {
	byDay := map[time.Time][]rolledHour{}
	for _, h := range hours {
		d := h.hour.Truncate(day)
		byDay[d] = append(byDay[d], h)
	}
	var out []rolledDay
	for d, hs := range byDay {
		rec, ok := records[d]
		if !ok || d.Before(w.From) || d.Add(day).After(w.To) {
			continue
		}
		n := 0
		for h := d; h.Before(d.Add(day)); h = h.Add(time.Hour) {
			if known(h) {
				n++
			}
		}
		if n == len(hs) && dayHoursKey(hs) == rec.hours {
			out = append(out, rolledDay{day: d, version: rec.version, hours: hs})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].day.Before(out[j].day) })
	return out
}

// bucketsSQL selects cols of metric's per-bucket counts: from
// hourly_latency_buckets for p's hours that no day of p stands for, and
// from day_latency_buckets (the same columns, hour being the day's first)
// for p's days, with w's profile and channel (the key). The values within
// the buckets are read by rollupValues.
func (p plan) bucketsSQL(w Window, metric, cols string) (string, []any) {
	days, rest := p.dayParts()
	cond := fmt.Sprintf("metric = '%s'", metric)
	where, args := plan{hours: rest}.where(w, "key")
	q := fmt.Sprintf("SELECT %s FROM hourly_latency_buckets WHERE %s AND %s", cols, cond, where)
	if len(days) > 0 {
		where, dargs := rowsWhere(versionsSQL(days), w, "key")
		q += fmt.Sprintf("\nUNION ALL\nSELECT %s FROM day_latency_buckets WHERE %s AND %s", cols, cond, where)
		args = append(args, dargs...)
	}
	return q, args
}

// valuesListSQL is the "ms:n,ms:n,…" list (parseList) of a
// group of (ms, c) rows: how the job stores a day's values in
// day_latency_lists, and how readValues returns them — one string per
// group, which the driver decodes in a fraction of what rows or arrays of
// the same values cost it (it scans array elements one by one through
// reflection).
var valuesListSQL = listSQL("ms")

// listSQL is the "k:n,k:n,…" list (parseList) of a group of (k, c) rows,
// k the column key names: values by the millisecond, or a series' counts
// by 256 ms bucket.
func listSQL(key string) string {
	return "arrayStringConcat(groupArray(concat(toString(" + key + "), ':', toString(c))), ',')"
}

// dayParts are p's days, as (day, version), and its hours no day stands for.
func (p plan) dayParts() (days, rest []rolledHour) {
	covered := map[time.Time]bool{}
	for _, d := range p.days {
		days = append(days, rolledHour{hour: d.day, version: d.version})
		for _, h := range d.hours {
			covered[h.hour] = true
		}
	}
	for _, h := range p.hours {
		if !covered[h.hour] {
			rest = append(rest, h)
		}
	}
	return days, rest
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// where is the filter of rollup rows of p's hours (and w's profile), with
// args; extra conditions are ANDed.
// rolled reports whether p has whole rolled-up hours: without any, the
// queries of the hourly tables would read nothing, yet each would take an
// engine reader and a plan of its own beside the sub-windows' queries (a
// last hour between job runs is all sub-windows).
func (p plan) rolled() bool { return len(p.hours) > 0 }

func (p plan) where(w Window, channelCol string) (string, []any) {
	return rowsWhere(hoursSQL(p.hours), w, channelCol)
}

// rowsWhere is which rollup rows to read (the condition on their hours or
// days) with w's profile, and its channel on channelCol; args bind it.
func rowsWhere(which string, w Window, channelCol string) (string, []any) {
	var b strings.Builder
	b.WriteString(which)
	var args []any
	if w.Profile != "" {
		b.WriteString(" AND profile_id = ?")
		args = append(args, w.Profile)
	}
	if w.Channel != "" && channelCol != "" {
		b.WriteString(" AND " + channelCol + " = ?")
		args = append(args, w.Channel)
	}
	return b.String(), args
}

// histogram is an exact distribution: per-bucket counts from the rollups and
// per-value counts from live sub-windows, per key.
type histogram struct {
	metric  string
	buckets map[string]map[int64]uint64 // key → bucket → n (rollups)
	live    map[string]map[int64]uint64 // key → ms → n (live)
}

func newHistogram(metric string) *histogram {
	return &histogram{metric: metric, buckets: map[string]map[int64]uint64{}, live: map[string]map[int64]uint64{}}
}

func addTo(m map[string]map[int64]uint64, k string, x int64, n uint64) {
	if m[k] == nil {
		m[k] = map[int64]uint64{}
	}
	m[k][x] += n
}

// quantiles returns, for each group of keys, how many values it has and
// quantileExact(qs) of them (in ms), like ClickHouse: the element at ⌊q·n⌋ of
// the sorted values. The per-bucket counts locate each wanted element's
// bucket; then one query reads the rollups' values of those buckets only.
func (h *histogram) quantiles(ctx context.Context, db *DB, p plan, w Window, groups [][]string, qs []float64) (ns []uint64, outs [][]float64, err error) {
	type want struct {
		bucket int64
		rank   uint64 // within the bucket
		of     uint64 // the bucket's values, as counted
	}
	wants := make([][]want, len(groups))
	ns = make([]uint64, len(groups))
	needPairs := map[string]map[int64]bool{} // key → buckets to read
	for g, keys := range groups {
		counts := map[int64]uint64{}
		var n uint64
		for _, k := range keys {
			for b, c := range h.buckets[k] {
				counts[b] += c
				n += c
			}
			for ms, c := range h.live[k] {
				counts[ms/latencyBucket] += c
				n += c
			}
		}
		ns[g] = n
		if n == 0 {
			continue
		}
		order := make([]int64, 0, len(counts))
		for b := range counts {
			order = append(order, b)
		}
		sort.Slice(order, func(i, j int) bool { return order[i] < order[j] })
		wants[g] = make([]want, len(qs))
		for i, q := range qs {
			idx := uint64(q * float64(n)) // as ClickHouse's QuantileExact
			if q >= 1 {
				idx = n - 1
			}
			var cum uint64
			for _, b := range order {
				if idx < cum+counts[b] {
					wants[g][i] = want{bucket: b, rank: idx - cum, of: counts[b]}
					for _, k := range keys {
						if h.buckets[k][b] > 0 {
							if needPairs[k] == nil {
								needPairs[k] = map[int64]bool{}
							}
							needPairs[k][b] = true
						}
					}
					break
				}
				cum += counts[b]
			}
		}
	}
	// The rollups' values of the needed (key, bucket) pairs.
	values := map[keyBucket]*bucketValues{}
	var pairs []keyBucket
	for k, bs := range needPairs {
		for b := range bs {
			pairs = append(pairs, keyBucket{k, b})
		}
	}
	err = db.rollupValues(ctx, p, w, h.metric, pairs, nil, func(kb keyBucket, _ time.Time, vc valueCounts) {
		if values[kb] == nil {
			values[kb] = newBucketValues(kb.bucket)
		}
		values[kb].addCounts(vc)
	})
	if err != nil {
		return nil, nil, err
	}
	outs = make([][]float64, len(groups))
	for g, keys := range groups {
		if ns[g] == 0 {
			continue
		}
		outs[g] = make([]float64, len(qs))
		for i, wt := range wants[g] {
			vs := newBucketValues(wt.bucket)
			for _, k := range keys {
				vs.merge(values[keyBucket{k, wt.bucket}])
				vs.addInBucket(h.live[k])
			}
			if n := vs.count(); n != wt.of {
				return nil, nil, fmt.Errorf("%s: bucket %d holds %d values, counted %d", h.metric, wt.bucket, n, wt.of)
			}
			outs[g][i], _ = vs.at(wt.rank)
		}
	}
	return ns, outs, nil
}

// readBuckets adds the rollups' bucket counts of p's days to h.
func (h *histogram) readBuckets(ctx context.Context, db *DB, p plan, w Window) error {
	sub, args := p.bucketsSQL(w, h.metric, "key, bucket, n")
	rows, err := db.conn.Query(ctx, "SELECT key, bucket, sum(n) FROM ("+sub+") GROUP BY key, bucket", args...)
	if err != nil {
		return fmt.Errorf("query %s buckets: %w", h.metric, err)
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		var b int64
		var c uint64
		if err := rows.Scan(&k, &b, &c); err != nil {
			return fmt.Errorf("read %s buckets: %w", h.metric, err)
		}
		addTo(h.buckets, k, b, c)
	}
	return rows.Err()
}
