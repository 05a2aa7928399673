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

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Timeseries returns w's figures per channel in buckets of step, each
// computed exactly as Channels and Fallback compute the window of its bucket.
// Buckets are aligned to multiples of step since the Unix epoch on the wall
// clock of zone (nil: UTC), as Grafana's and ClickHouse's
// toStartOfInterval are: a day is a day of zone whatever the window, and two
// windows' buckets line up (grid says what a day-saving change does to
// them). The first bucket is cut at w.From and the last at w.To. Like
// Channels it reads whole rolled-up hours from the hourly aggregates (an
// hour inside one bucket), the other rolled-up hours from their stored
// attempts and journeys, and dirty hours live; percentiles stay exact
// through the per-millisecond histograms. Aligned buckets cut at most the
// window's two edge hours when step is a multiple of an hour and the zone's
// offsets are whole hours; otherwise every bucket's edge hour is cut.
func (db *DB) Timeseries(ctx context.Context, w Window, step time.Duration, zone *time.Location) (Timeseries, error) {
	if err := w.check(); err != nil {
		return Timeseries{}, err
	}
	if step < time.Second || step > MaxStep {
		return Timeseries{}, fmt.Errorf("step %s is not within 1s and %s", step, MaxStep)
	}
	g := newGrid(w, step, zone)
	n := g.n
	if n > MaxBuckets {
		return Timeseries{}, ErrTooManyBuckets
	}
	ts := Timeseries{Start: make([]time.Time, n), Step: Duration(step), Zone: "UTC", Channels: []Series{}}
	if g.zone != nil {
		ts.Zone = g.zone.String()
	}
	for i := range ts.Start {
		ts.Start[i] = g.start(i)
	}
	acc := &tsAcc{grid: g, cells: map[tsKey]*tsCell{}}
	whole, anch, pieces, err := db.planSeries(ctx, w, g)
	if err != nil {
		return ts, err
	}
	var queries []func(context.Context) error
	for _, pw := range pieces {
		queries = append(queries, func(ctx context.Context) error { return db.seriesRows(ctx, acc, pw) })
	}
	if whole.rolled() {
		queries = append(queries, func(ctx context.Context) error { return db.seriesWhole(ctx, acc, w, whole, anch) })
	}
	if err := together(listing(ctx, pieces...), queries...); err != nil {
		return ts, err
	}
	if err := db.seriesQuantiles(ctx, acc, w, whole, anch); err != nil {
		return ts, err
	}

	byName := map[string]*Series{}
	for k, c := range acc.cells {
		s := byName[k.channel]
		if s == nil {
			s = &Series{Channel: k.channel,
				Attempts: make([]uint64, n), Delivered: make([]uint64, n), Failed: make([]uint64, n),
				DeliveryRate: make([]*float64, n), LatencyP50MS: make([]*float64, n), LatencyP95MS: make([]*float64, n),
				OTPs: make([]uint64, n), FallbackOTPs: make([]uint64, n), FallbackRate: make([]*float64, n)}
			byName[k.channel] = s
		}
		b := k.b
		s.Attempts[b], s.Delivered[b], s.Failed[b] = c.attempts, c.delivered, c.failed
		if c.attempts > 0 {
			s.DeliveryRate[b] = rate(c.delivered, c.delivered+c.failed)
		}
		if p := percentiles(c.latN, c.q); p != nil {
			s.LatencyP50MS[b], s.LatencyP95MS[b] = &p.P50, &p.P95
		}
		s.OTPs[b], s.FallbackOTPs[b] = c.otps, c.fallback
		s.FallbackRate[b] = rate(c.fallback, c.otps)
	}
	total := func(s *Series) (t uint64) {
		for _, v := range s.Attempts {
			t += v
		}
		return t
	}
	for _, s := range byName {
		ts.Channels = append(ts.Channels, *s)
	}
	sort.Slice(ts.Channels, func(i, j int) bool {
		ti, tj := total(&ts.Channels[i]), total(&ts.Channels[j])
		if ti != tj {
			return ti > tj
		}
		return ts.Channels[i].Channel < ts.Channels[j].Channel
	})
	return ts, nil
}

type tsKey struct {
	channel string
	b       int
}

// tsCell is one channel's bucket: counts, and its latencies as per-256-ms
// counts from the rollups (lb) plus per-ms counts from rows (ms).
type tsCell struct {
	attempts, delivered, failed, latN uint64
	otps, fallback                    uint64
	lb, ms                            map[int64]uint64
	q                                 []float64 // p50, p95 once known
}

type tsAcc struct {
	grid
	// mu guards cells while the queries adding to them run side by side.
	mu    sync.Mutex
	cells map[tsKey]*tsCell
}

// add applies f to the cell of channel ch in bucket b, if b is within the
// window; the queries adding to cells run side by side.
func (a *tsAcc) add(ch string, b int64, f func(*tsCell)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c := a.cell(ch, b); c != nil {
		f(c)
	}
}

// addJourneys adds rows of (channel, bucket, OTPs, OTPs with a fallback),
// live or from the hourly aggregates.
func (a *tsAcc) addJourneys(rows driver.Rows) error {
	var ch string
	var b int64
	var otps, fallback uint64
	if err := rows.Scan(&ch, &b, &otps, &fallback); err != nil {
		return err
	}
	a.add(ch, b, func(c *tsCell) {
		c.otps, c.fallback = c.otps+otps, c.fallback+fallback
	})
	return nil
}

func (a *tsAcc) cell(ch string, b int64) *tsCell {
	if b < 0 || b >= int64(a.n) {
		return nil // outside the window: read with a day around it
	}
	k := tsKey{ch, int(b)}
	c := a.cells[k]
	if c == nil {
		c = &tsCell{lb: map[int64]uint64{}, ms: map[int64]uint64{}}
		a.cells[k] = c
	}
	return c
}

// planSeries splits w into whole rolled-up hours that each lie inside one
// bucket (read from the aggregates; their histograms from whole days where
// a day lies inside one bucket) and sub-windows read from rows.
func (db *DB) planSeries(ctx context.Context, w Window, g grid) (whole plan, anch anchors, pieces []Window, err error) {
	p, ok, err := db.planWindow(ctx, w)
	if err != nil || !ok {
		return plan{}, anch, []Window{w}, err
	}
	pieces = slices.Clone(p.live)
	var wholeHours, split []rolledHour // split: rolled-up hours cut by a bucket's edge
	for _, h := range p.hours {
		if g.index(h.hour) == g.index(h.hour.Add(time.Hour-time.Millisecond)) {
			wholeHours = append(wholeHours, h)
		} else {
			split = append(split, h)
		}
	}
	whole = plan{hours: wholeHours}
	whole.days, anch = anchorDays(g, p.days, wholeHours, split)
	if len(split) == 0 {
		return whole, anch, pieces, nil
	}
	// One read of stored rows for the split hours and the partial ones:
	// their hours are disjoint, so their spans and hours join.
	sw := w
	sw.spans, sw.stored = nil, split
	for _, h := range split {
		sw.spans = append(sw.spans, span{h.hour, h.hour.Add(time.Hour)})
	}
	var rest []Window
	for _, pw := range pieces {
		if len(pw.stored) > 0 && !pw.patched {
			sw.spans, sw.stored = append(sw.spans, pw.intervals()...), append(sw.stored, pw.stored...)
		} else {
			rest = append(rest, pw)
		}
	}
	sort.Slice(sw.spans, func(i, j int) bool { return sw.spans[i].from.Before(sw.spans[j].from) })
	sw.From, sw.To = sw.spans[0].from, sw.spans[len(sw.spans)-1].to
	return whole, anch, append(rest, sw), nil
}

// anchors place UTC days' histograms in buckets that hold most, not all,
// of their hours: a series on a zone's clock (a Berlin day is 22:00 to
// 22:00 UTC) would otherwise read every such day's 24 hourly histograms,
// not one day's. The day's histogram stands in its anchor bucket; its
// other hours (foreign) are taken out of it and put in their own buckets,
// and its split hours (cut by a bucket's edge, read from their rows) are
// taken out of it. Histograms add up, so each bucket's counts and values
// are what its hours hold; seriesQuantiles checks that they add up.
type anchors struct {
	day    map[time.Time]int64 // a day's start → its anchor bucket
	out    map[time.Time]int64 // an hour taken out of its day → the day's anchor bucket
	hours  []rolledHour        // the hours taken out, at their days' versions
	plusIn map[time.Time]bool  // of them the foreign ones, also put in their own buckets
}

// anchorDays picks, of the days whose histograms the job summed, those
// whose day-level histogram costs fewer reads than their hours: every day
// one bucket holds (every day, when the buckets are whole UTC days), and
// those anchored in the bucket holding most of their hours. A day one
// bucket holds, anchored where its start is, needs no entry.
func anchorDays(g grid, days []rolledDay, whole, split []rolledHour) ([]rolledDay, anchors) {
	inWhole, inSplit := map[time.Time]bool{}, map[time.Time]bool{}
	for _, h := range whole {
		inWhole[h.hour] = true
	}
	for _, h := range split {
		inSplit[h.hour] = true
	}
	anch := anchors{day: map[time.Time]int64{}, out: map[time.Time]int64{}, plusIn: map[time.Time]bool{}}
	var kept []rolledDay
	for _, d := range days {
		wholeN, splitN := 0, 0
		perBucket := map[int64]int{}
		for _, h := range d.hours {
			switch {
			case inWhole[h.hour]:
				wholeN++
				perBucket[g.index(h.hour)]++
			case inSplit[h.hour]:
				splitN++
			}
		}
		if wholeN+splitN != len(d.hours) {
			continue // an hour of it is not rolled up, or not in the window
		}
		best, most := int64(0), 0
		for b, n := range perBucket {
			if n > most || n == most && b < best {
				best, most = b, n
			}
		}
		// Each foreign hour is read twice (out, and in its bucket), a
		// split one once, the day once: worth it when fewer than its
		// whole hours.
		if foreign := wholeN - most; 2*foreign+splitN+1 >= wholeN {
			continue
		}
		kept = append(kept, d)
		if most == len(d.hours) && best == g.index(d.day) {
			continue
		}
		anch.day[d.day] = best
		for _, h := range d.hours {
			if inSplit[h.hour] || g.index(h.hour) != best {
				anch.out[h.hour] = best
				anch.hours = append(anch.hours, h)
				anch.plusIn[h.hour] = inWhole[h.hour]
			}
		}
	}
	return kept, anch
}

// bucketOf is the bucket whose figures a rolled-up period's histogram
// adds to: an anchored day's anchor, else the bucket holding its start.
func (a anchors) bucketOf(acc *tsAcc, at time.Time) int64 {
	if b, ok := a.day[at]; ok {
		return b
	}
	return acc.index(at)
}

// seriesRows adds the attempts and journeys of pw (live or stored rows),
// the two queries side by side.
func (db *DB) seriesRows(ctx context.Context, acc *tsAcc, pw Window) error {
	return together(ctx, func(ctx context.Context) error {
		sub, args := pw.channelAttemptsSQL()
		// The latencies as one values list (parseList), each value once:
		// as an array the driver read them value by value by reflection,
		// a second a million (a series cutting every hour, in a zone of
		// half hours, reads a week's rows here).
		q := fmt.Sprintf(`SELECT toString(channel) AS ch, %s AS b,
`+attemptCountsSQL+`
    arrayStringConcat(groupArrayIf(concat(toString(toUnixTimestamp64Milli(assumeNotNull(a_delivered)) - toUnixTimestamp64Milli(assumeNotNull(a_dispatched))), ':1'),
        a_delivered IS NOT NULL AND a_dispatched IS NOT NULL), ',') AS lats
FROM (%s)
GROUP BY ch, b`, acc.indexSQL("a_first", false), sub)
		return db.eachRow(ctx, "timeseries", q, args, func(rows driver.Rows) error {
			var (
				ch                                                   string
				b                                                    int64
				attempts, delivered, failed, undeliverable, timedOut uint64
				unknown, polled, latN                                uint64
				pendingFirst                                         *time.Time
				list                                                 string
			)
			// The columns of attemptCountsSQL, then the latencies.
			if err := rows.Scan(&ch, &b, &attempts, &delivered, &failed, &undeliverable, &timedOut, &unknown, &polled, &latN, &pendingFirst, &list); err != nil {
				return err
			}
			var lats valueCounts
			if list != "" {
				var err error
				if lats, err = parseList(list); err != nil {
					return err
				}
			}
			acc.add(ch, b, func(c *tsCell) {
				c.attempts, c.delivered, c.failed, c.latN = c.attempts+attempts, c.delivered+delivered, c.failed+failed, c.latN+latN
				for _, v := range lats {
					c.ms[v.ms] += v.n
				}
			})
			return nil
		})
	}, func(ctx context.Context) error {
		jsub, jargs := pw.journeysSQL()
		q := fmt.Sprintf(`SELECT toString(j_primary) AS ch, %s AS b, count() AS otps, countIf(n > 1) AS fallback
FROM (%s)
GROUP BY ch, b`, acc.indexSQL("j_first", false), jsub)
		return db.eachRow(ctx, "timeseries journeys", q, jargs, acc.addJourneys)
	})
}

// seriesWhole adds the hourly aggregates of the whole hours, its queries
// side by side.
func (db *DB) seriesWhole(ctx context.Context, acc *tsAcc, w Window, whole plan, anch anchors) error {
	p := plan{hours: whole.hours}
	b := acc.indexSQL("hour", true)
	return together(ctx, func(ctx context.Context) error {
		where, args := p.where(w, "channel")
		return db.eachRow(ctx, "timeseries", fmt.Sprintf(`SELECT channel, %s AS b, sum(attempts), sum(delivered), sum(failed), sum(lat_n)
FROM hourly_attempts WHERE %s GROUP BY channel, b`, b, where), args, func(rows driver.Rows) error {
			var ch string
			var bk int64
			var attempts, delivered, failed, latN uint64
			if err := rows.Scan(&ch, &bk, &attempts, &delivered, &failed, &latN); err != nil {
				return err
			}
			acc.add(ch, bk, func(c *tsCell) {
				c.attempts, c.delivered, c.failed, c.latN = c.attempts+attempts, c.delivered+delivered, c.failed+failed, c.latN+latN
			})
			return nil
		})
	}, func(ctx context.Context) error {
		where, args := p.where(w, "primary_channel")
		return db.eachRow(ctx, "timeseries journeys", fmt.Sprintf(`SELECT primary_channel, %s AS b, sum(otps), sum(fallback)
FROM hourly_paths WHERE %s GROUP BY primary_channel, b`, b, where), args, acc.addJourneys)
	}, func(ctx context.Context) error {
		sub, args := whole.bucketsSQL(w, metricLatency, "key, hour, bucket, toInt64(n) AS n, 0 AS kind")
		if len(anch.hours) > 0 {
			// The anchored days' foreign hours into their own buckets
			// (kind 1), the hours taken out of their days out of the
			// anchors (kind 2).
			cond := fmt.Sprintf("metric = '%s'", metricLatency)
			var plus []rolledHour
			for _, h := range anch.hours {
				if anch.plusIn[h.hour] {
					plus = append(plus, h)
				}
			}
			// (hour, version) IN (…): a set, where hoursSQL's ranges of
			// scattered hours made an OR of hundreds read 4 times slower.
			pw, pargs := rowsWhere(versionsSQL(plus), w, "key")
			ow, oargs := rowsWhere(versionsSQL(anch.hours), w, "key")
			sub += fmt.Sprintf("\nUNION ALL\nSELECT key, hour, bucket, toInt64(n), 1 FROM hourly_latency_buckets WHERE %s AND %s", cond, pw) +
				fmt.Sprintf("\nUNION ALL\nSELECT key, hour, bucket, -toInt64(n), 2 FROM hourly_latency_buckets WHERE %s AND %s", cond, ow)
			args = append(append(args, pargs...), oargs...)
		}
		bucketOf := b
		if len(anch.day) > 0 {
			bucketOf = fmt.Sprintf("multiIf(kind = 2, %s, kind = 0, %s, %s)", anchorSQL(anch.out, "-1"), anchorSQL(anch.day, b), b)
		}
		// A cell's 256 ms buckets as one "bucket:count,…" list (parseList):
		// a row each, 30 days by the hour were 120 k rows at 11 M events,
		// which the driver scanned in most of the read's time.
		return db.eachRow(ctx, "timeseries latency", fmt.Sprintf(`SELECT key, b, %s
FROM (SELECT key, %s AS b, bucket, toUInt64(sum(n)) AS c FROM (%s) GROUP BY key, b, bucket)
GROUP BY key, b`, listSQL("bucket"), bucketOf, sub), args, func(rows driver.Rows) error {
			var ch, list string
			var bk int64
			if err := rows.Scan(&ch, &bk, &list); err != nil {
				return err
			}
			counts, err := parseList(list)
			if err != nil {
				return err
			}
			acc.add(ch, bk, func(cl *tsCell) {
				for _, c := range counts {
					cl.lb[c.ms] += c.n
				}
			})
			return nil
		})
	})
}

// anchorSQL is the anchor bucket of the period starting at hour, from
// anchors (start → bucket), else other.
func anchorSQL(anchors map[time.Time]int64, other string) string {
	from, to := make([]string, 0, len(anchors)), make([]string, 0, len(anchors))
	for at, b := range anchors {
		from, to = append(from, strconv.FormatInt(at.Unix(), 10)), append(to, strconv.FormatInt(b, 10))
	}
	return fmt.Sprintf("transform(toInt64(toUnixTimestamp(hour)), [%s], [%s], toInt64(%s))", strings.Join(from, ","), strings.Join(to, ","), other)
}

// seriesQuantiles computes each cell's exact p50 and p95 latency: the
// per-bucket counts locate each wanted element's 256 ms bucket, then one
// query reads the rollups' values of those buckets within those hours only.
func (db *DB) seriesQuantiles(ctx context.Context, acc *tsAcc, w Window, whole plan, anch anchors) error {
	qs := []float64{0.5, 0.95}
	type want struct {
		lb   int64
		rank uint64
		of   uint64 // the bucket's values, as counted
	}
	wants := map[tsKey][]want{}
	type need struct {
		tsKey
		lb int64
	}
	needs := map[need]bool{}
	for k, c := range acc.cells {
		if c.latN == 0 {
			continue
		}
		counts := map[int64]uint64{}
		for lb, n := range c.lb {
			counts[lb] += n
		}
		for ms, n := range c.ms {
			counts[ms/latencyBucket] += n
		}
		order := make([]int64, 0, len(counts))
		for lb := range counts {
			order = append(order, lb)
		}
		sort.Slice(order, func(i, j int) bool { return order[i] < order[j] })
		for _, q := range qs {
			idx := uint64(q * float64(c.latN))
			var cum uint64
			for _, lb := range order {
				if idx < cum+counts[lb] {
					wants[k] = append(wants[k], want{lb, idx - cum, counts[lb]})
					if c.lb[lb] > 0 {
						needs[need{k, lb}] = true
					}
					break
				}
				cum += counts[lb]
			}
		}
	}
	// The needed (channel, 256 ms bucket) pairs over the whole hours,
	// kept per timeseries bucket where that bucket needs them.
	values := map[need]*bucketValues{}
	pairs := map[keyBucket]bool{}
	for nd := range needs {
		pairs[keyBucket{nd.channel, nd.lb}] = true
	}
	needIn := func(kb keyBucket, b int64) need { return need{tsKey{kb.key, int(b)}, kb.bucket} }
	valuesOf := func(nd need) *bucketValues {
		if values[nd] == nil {
			values[nd] = newBucketValues(nd.lb)
		}
		return values[nd]
	}
	needed := func(kb keyBucket, at time.Time) bool { return needs[needIn(kb, anch.bucketOf(acc, at))] }
	err := db.rollupValues(ctx, whole, w, metricLatency, slices.Collect(maps.Keys(pairs)), needed, func(kb keyBucket, at time.Time, vc valueCounts) {
		valuesOf(needIn(kb, anch.bucketOf(acc, at))).addCounts(vc)
	})
	if err != nil {
		return err
	}
	// The hours taken out of anchored days: out of their anchors, and the
	// foreign ones into their own buckets.
	wantedOut := func(kb keyBucket, at time.Time) bool {
		return needs[needIn(kb, anch.out[at])] || anch.plusIn[at] && needs[needIn(kb, acc.index(at))]
	}
	err = db.rollupValues(ctx, plan{hours: anch.hours}, w, metricLatency, slices.Collect(maps.Keys(pairs)), wantedOut, func(kb keyBucket, at time.Time, vc valueCounts) {
		if nd := needIn(kb, anch.out[at]); needs[nd] {
			valuesOf(nd).subCounts(vc)
		}
		if nd := needIn(kb, acc.index(at)); anch.plusIn[at] && needs[nd] {
			valuesOf(nd).addCounts(vc)
		}
	})
	if err != nil {
		return err
	}
	for k, ws := range wants {
		c := acc.cells[k]
		c.q = make([]float64, len(qs))
		for i, wt := range ws {
			vs := newBucketValues(wt.lb)
			vs.merge(values[need{k, wt.lb}])
			vs.addInBucket(c.ms)
			if n := vs.count(); n != wt.of {
				return fmt.Errorf("timeseries: latency bucket %d holds %d values, counted %d", wt.lb, n, wt.of)
			}
			c.q[i], _ = vs.at(wt.rank)
		}
	}
	return nil
}
