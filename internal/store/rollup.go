package store

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Daily rollups (schema/0003_daily_rollups.sql): the figures of whole UTC days,
// computed by the SQL below — the same definitions the live queries use for a
// window — so that a long window reads a few rows per day. A window is split
// into rolled-up days and live sub-windows (its partial edge days, and any day
// not rolled up or touched since), whose rows are summed; percentiles stay
// exact because the rollups keep a count per millisecond value.

// RollupMargin is how long after its end a day is sealed and rolled up: an
// attempt's and a journey's events span less than MaxAttemptSpan, and late
// webhooks and polls arrive within minutes.
const RollupMargin = 2 * 24 * time.Hour

// RollupSlack is how long an insert may take to become visible after its rows'
// inserted_at: rows inserted up to this long before a day's computation may be
// missing from it, so they mark the day as touched (readers compute it live
// and the job computes it again). Set it before use, if at all.
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

// channelRowsSQL yields, for the attempts of w (filtered by profile and
// channel), one row per (profile_id, channel, code): attempts, delivered,
// failed, unknown, polled, lat_n, and lats, the latencies (ms) that
// latencyRowsSQL counts. code is the error code of failed attempts and empty
// for the others.
func (w Window) channelRowsSQL() (string, []any) {
	sub, args := w.channelAttemptsSQL()
	return fmt.Sprintf(`SELECT toString(a_profile) AS profile_id, toString(channel) AS channel, code,
`+attemptCountsSQL+`
    groupArrayIf(toUnixTimestamp64Milli(assumeNotNull(a_delivered)) - toUnixTimestamp64Milli(assumeNotNull(a_dispatched)),
        a_delivered IS NOT NULL AND a_dispatched IS NOT NULL) AS lats
FROM (
    SELECT *, if(a_delivered IS NULL AND a_failed IS NOT NULL, a_err, '') AS code
    FROM (%s)
)
GROUP BY profile_id, channel, code`, sub), args
}

// latencyRowsSQL yields the latency histogram of w's attempts: profile_id,
// key (the channel), ms, n.
func (w Window) latencyRowsSQL() (string, []any) {
	sub, args := w.channelAttemptsSQL()
	return fmt.Sprintf(`SELECT toString(a_profile) AS profile_id, toString(channel) AS key,
    toUnixTimestamp64Milli(assumeNotNull(a_delivered)) - toUnixTimestamp64Milli(assumeNotNull(a_dispatched)) AS ms, count() AS n
FROM (%s)
WHERE a_delivered IS NOT NULL AND a_dispatched IS NOT NULL
GROUP BY profile_id, key, ms`, sub), args
}

// journeyRowsSQL yields, for the journeys of w, one row per (profile_id,
// path): primary_channel, otps, fallback, o_primary, o_fallback, o_failed,
// o_pending, delivered, and ttds, the times to deliver (ms) that ttdRowsSQL
// counts.
func (w Window) journeyRowsSQL() (string, []any) {
	sub, args := w.journeysSQL()
	return fmt.Sprintf(`SELECT toString(j_profile) AS profile_id, path, any(atts[1].2) AS primary_channel,
`+journeyCountsSQL+`
    groupArrayIf(toUnixTimestamp64Milli(assumeNotNull(j_delivered)) - toUnixTimestamp64Milli(j_first), j_delivered IS NOT NULL) AS ttds
FROM (%s)
GROUP BY profile_id, path`, sub), args
}

// ttdRowsSQL yields the time-to-deliver histogram of w's journeys:
// profile_id, key (the primary channel), ms, n.
func (w Window) ttdRowsSQL() (string, []any) {
	sub, args := w.journeysSQL()
	return fmt.Sprintf(`SELECT toString(j_profile) AS profile_id, toString(atts[1].2) AS key,
    toUnixTimestamp64Milli(assumeNotNull(j_delivered)) - toUnixTimestamp64Milli(j_first) AS ms, count() AS n
FROM (%s)
WHERE j_delivered IS NOT NULL
GROUP BY profile_id, key, ms`, sub), args
}

// conversionRowsSQL yields the verification conversion of w's journeys
// (filtered by profile; w.Channel keeps the delivering channel): profile_id,
// channel, polled, verified, sample_rate.
func (w Window) conversionRowsSQL() (string, []any) {
	jw := w
	jw.Channel = "" // the channel filter applies to the delivering channel here
	sub, args := jw.journeysSQL()
	q := fmt.Sprintf(`SELECT toString(j_profile) AS profile_id, toString(j_delivered_channel) AS channel, count() AS polled, countIf(s_verified = 1) AS verified, min(s_rate) AS sample_rate
FROM (SELECT otp_id, j_profile, j_delivered_channel FROM (%s) WHERE j_delivered IS NOT NULL) AS j
INNER JOIN (
    SELECT otp_id, max(toUInt8(otp_status = 'VERIFIED')) AS s_verified, min(sample_rate) AS s_rate
    FROM otp_status
    WHERE observed_at >= %s
    GROUP BY otp_id
    HAVING max(toUInt8(otp_status IN ('VERIFIED', 'EXPIRED', 'TOO_MANY_ATTEMPTS'))) = 1
) AS s ON j.otp_id = s.otp_id
GROUP BY profile_id, channel`, sub, msTime(w.From.Add(-MaxAttemptSpan)))
	if w.Channel != "" {
		q += " HAVING channel = ?"
		args = append(args, w.Channel)
	}
	return q, args
}

// dayOf is the UTC day holding t.
func dayOf(t time.Time) time.Time { return t.UTC().Truncate(24 * time.Hour) }

func sqlDay(d time.Time) string { return "toDate('" + d.Format("2006-01-02") + "')" }

// rolledDay is a day read from the rollups, at its current version.
type rolledDay struct {
	day     time.Time
	version uint64
}

// rollupVersions returns the current version of every rolled-up day in
// [from, to).
func (db *DB) rollupVersions(ctx context.Context, from, to time.Time) (map[time.Time]uint64, error) {
	rows, err := db.conn.Query(ctx, fmt.Sprintf("SELECT day, max(version) FROM rolled_days WHERE day >= %s AND day < %s GROUP BY day", sqlDay(from), sqlDay(to)))
	if err != nil {
		return nil, fmt.Errorf("query rollup days: %w", err)
	}
	defer rows.Close()
	out := map[time.Time]uint64{}
	for rows.Next() {
		var d time.Time
		var v uint64
		if err := rows.Scan(&d, &v); err != nil {
			return nil, fmt.Errorf("read rollup days: %w", err)
		}
		out[dayOf(d)] = v
	}
	return out, rows.Err()
}

// touchedDays returns, for the days of versions, those that rows inserted
// after (or up to RollupSlack before) the day's version may have changed:
// a delivery event on day e changes the days e−2 … e+2 (an attempts row of day
// r is read by the days r−2 … r+1, and a journey moves by at most a day); an
// OTP status observed on day x changes the journeys starting x−3 … x+1 (a
// journey's window reads the statuses observed from a day before it; polls
// follow their journey within minutes). Silent-auth outcomes, push
// statuses and journey links count as delivery events. precise also looks the touched OTPs'
// journeys up, however late their status was polled: the job does, readers
// do not (a status polled more than three days after its journey reaches the
// rollups with the job's next run).
func (db *DB) touchedDays(ctx context.Context, versions map[time.Time]uint64, precise bool) (map[time.Time]bool, error) {
	touched := map[time.Time]bool{}
	if len(versions) == 0 {
		return touched, nil
	}
	var minV uint64
	var lo, hi time.Time
	for d, v := range versions {
		if minV == 0 || v < minV {
			minV = v
		}
		if lo.IsZero() || d.Before(lo) {
			lo = d
		}
		if d.After(hi) {
			hi = d
		}
	}
	since := time.UnixMilli(int64(minV)).Add(-RollupSlack)
	mark := func(e time.Time, ins time.Time, before, after int) {
		for k := -before; k <= after; k++ {
			d := e.AddDate(0, 0, k)
			if v, ok := versions[d]; ok && !ins.Before(time.UnixMilli(int64(v)).Add(-RollupSlack)) {
				touched[d] = true
			}
		}
	}
	scan := func(q string, before, after int) error {
		rows, err := db.conn.Query(ctx, q)
		if err != nil {
			return fmt.Errorf("query touched days: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var e, ins time.Time
			if err := rows.Scan(&e, &ins); err != nil {
				return fmt.Errorf("read touched days: %w", err)
			}
			mark(dayOf(e), ins, before, after)
		}
		return rows.Err()
	}
	if err := scan(fmt.Sprintf(`SELECT toDate(event_time) AS e, max(inserted_at) FROM delivery_events
WHERE inserted_at >= %s AND event_time >= %s AND event_time < %s GROUP BY e`,
		msTime(since), msTime(lo.AddDate(0, 0, -3)), msTime(hi.AddDate(0, 0, 4))), 2, 2); err != nil {
		return nil, err
	}
	// The methods' facts and the journey links touch days as delivery
	// events do, each by its own time (a link's is its attempt's start, or
	// the /otps/track registration's, sent with the OTP): one query for the
	// three, since readers run this on every rolled-up answer
	// (schema/0010_methods.sql).
	var parts []string
	for _, t := range []struct{ table, at string }{{"silent_auth_outcomes", "started_at"}, {"push_events", "created_at"}, {"journey_links", "linked_at"}} {
		parts = append(parts, fmt.Sprintf(`SELECT toDate(%[2]s) AS e, max(inserted_at) AS ins FROM %[1]s
WHERE inserted_at >= %[3]s AND %[2]s >= %[4]s AND %[2]s < %[5]s GROUP BY e`,
			t.table, t.at, msTime(since), msTime(lo.AddDate(0, 0, -3)), msTime(hi.AddDate(0, 0, 4))))
	}
	if err := scan(strings.Join(parts, "\nUNION ALL\n"), 2, 2); err != nil {
		return nil, err
	}
	if err := scan(fmt.Sprintf(`SELECT toDate(observed_at) AS x, max(inserted_at) FROM otp_status
WHERE inserted_at >= %s AND observed_at >= %s GROUP BY x`, msTime(since), msTime(lo.AddDate(0, 0, -2))), 3, 1); err != nil {
		return nil, err
	}
	if precise {
		// The journeys of OTPs with a newly stored status, by their first day.
		rows, err := db.conn.Query(ctx, fmt.Sprintf(`SELECT toDate(min(first_at)) AS j, max(s_ins) FROM channel_events
INNER JOIN (SELECT otp_id, max(inserted_at) AS s_ins FROM otp_status WHERE inserted_at >= %s GROUP BY otp_id) AS s USING (otp_id)
WHERE day >= %s AND day <= %s
GROUP BY otp_id`, msTime(since), sqlDay(lo.AddDate(0, 0, -1)), sqlDay(hi.AddDate(0, 0, 2))))
		if err != nil {
			return nil, fmt.Errorf("query touched journeys: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var j, ins time.Time
			if err := rows.Scan(&j, &ins); err != nil {
				return nil, fmt.Errorf("read touched journeys: %w", err)
			}
			mark(dayOf(j), ins, 0, 0)
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return touched, nil
}

// plan is a window split into rolled-up days and live sub-windows.
type plan struct {
	days []rolledDay // ascending
	live []Window    // the rest of the window, computed live (at most one, of several intervals)
}

// planWindow splits w into rolled-up days and live sub-windows; ok is false
// when no rolled-up day can be used (then the plain live query is cheaper).
func (db *DB) planWindow(ctx context.Context, w Window) (p plan, ok bool, err error) {
	if w.Raw {
		return p, false, nil
	}
	d0 := dayOf(w.From)
	if d0.Before(w.From) {
		d0 = d0.AddDate(0, 0, 1)
	}
	d1 := dayOf(w.To)
	if !d0.Before(d1) {
		return p, false, nil
	}
	versions, err := db.rollupVersions(ctx, d0, d1)
	if err != nil || len(versions) == 0 {
		return p, false, err
	}
	touched, err := db.touchedDays(ctx, versions, false)
	if err != nil {
		return p, false, err
	}
	var live []span
	cur := w.From // start of the pending live interval
	for d := d0; d.Before(d1); d = d.AddDate(0, 0, 1) {
		v, ok := versions[d]
		if !ok || touched[d] {
			continue
		}
		if cur.Before(d) {
			live = append(live, span{cur, d})
		}
		p.days = append(p.days, rolledDay{day: d, version: v})
		cur = d.AddDate(0, 0, 1)
	}
	if len(p.days) == 0 {
		return p, false, nil
	}
	if cur.Before(w.To) {
		live = append(live, span{cur, w.To})
	}
	if len(live) > 0 {
		// One live query over all the intervals.
		lw := w
		lw.From, lw.To = live[0].from, live[len(live)-1].to
		if len(live) > 1 {
			lw.spans = live
		}
		p.live = append(p.live, lw)
	}
	return p, true, nil
}

// where is the filter of rollup rows of p's days (and w's profile), with
// args; extra conditions are ANDed.
func (p plan) where(w Window, channelCol string) (string, []any) {
	var b strings.Builder
	b.WriteString("(day, version) IN (")
	for i, d := range p.days {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "(%s, %d)", sqlDay(d.day), d.version)
	}
	b.WriteString(")")
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
					wants[g][i] = want{bucket: b, rank: idx - cum}
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
	values := map[string]map[int64]uint64{} // key → ms → n
	var pairs []string
	var pargs []any
	for k, bs := range needPairs {
		for b := range bs {
			pairs = append(pairs, fmt.Sprintf("(?, %d)", b))
			pargs = append(pargs, k)
		}
	}
	if len(pairs) > 0 {
		where, args := p.where(w, "")
		q := fmt.Sprintf("SELECT key, ms, sum(n) FROM daily_latency WHERE metric = '%s' AND (key, bucket) IN (%s) AND %s GROUP BY key, ms",
			h.metric, strings.Join(pairs, ", "), where)
		rows, err := db.conn.Query(ctx, q, append(pargs, args...)...)
		if err != nil {
			return nil, nil, fmt.Errorf("query %s values: %w", h.metric, err)
		}
		for rows.Next() {
			var k string
			var ms int64
			var c uint64
			if err := rows.Scan(&k, &ms, &c); err != nil {
				rows.Close()
				return nil, nil, fmt.Errorf("read %s values: %w", h.metric, err)
			}
			addTo(values, k, ms, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, nil, err
		}
	}
	outs = make([][]float64, len(groups))
	for g, keys := range groups {
		if ns[g] == 0 {
			continue
		}
		outs[g] = make([]float64, len(qs))
		for i, wt := range wants[g] {
			vs := map[int64]uint64{}
			for _, k := range keys {
				for ms, c := range values[k] {
					if ms/latencyBucket == wt.bucket {
						vs[ms] += c
					}
				}
				for ms, c := range h.live[k] {
					if ms/latencyBucket == wt.bucket {
						vs[ms] += c
					}
				}
			}
			sorted := make([]int64, 0, len(vs))
			for ms := range vs {
				sorted = append(sorted, ms)
			}
			sort.Slice(sorted, func(a, b int) bool { return sorted[a] < sorted[b] })
			var cum uint64
			found := false
			for _, ms := range sorted {
				if wt.rank < cum+vs[ms] {
					outs[g][i], found = float64(ms), true
					break
				}
				cum += vs[ms]
			}
			if !found {
				return nil, nil, fmt.Errorf("%s: rollup bucket %d holds fewer values than counted", h.metric, wt.bucket)
			}
		}
	}
	return ns, outs, nil
}

// readBuckets adds the rollups' bucket counts of p's days to h.
func (h *histogram) readBuckets(ctx context.Context, db *DB, p plan, w Window) error {
	where, args := p.where(w, "key")
	rows, err := db.conn.Query(ctx, fmt.Sprintf("SELECT key, bucket, sum(n) FROM daily_latency_buckets WHERE metric = '%s' AND %s GROUP BY key, bucket", h.metric, where), args...)
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
