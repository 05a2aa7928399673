package store

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// The windowed figures from a plan: rolled-up hours plus sub-windows (partial
// hours from their stored rows, dirty hours live),
// summed exactly as the single live query would aggregate them.

type channelKey struct{ channel, code string }

type channelSums struct {
	attempts, delivered, failed, undeliverable, timedOut, unknown, polled, latN uint64
}

// channelsRolled is Channels over p. Its queries run side by side
// (together); mu guards what they add to.
func (db *DB) channelsRolled(ctx context.Context, w Window, p plan) ([]ChannelStats, error) {
	var mu sync.Mutex
	sums := map[channelKey]*channelSums{}
	lat := newHistogram(metricLatency)
	// read adds rows of channel, code, the sums and, for sub-window i of p
	// (-1: none), the latencies and its pending attempts, kept for its
	// completeness.
	pending := make([][]time.Time, len(p.live))
	read := func(ctx context.Context, q string, args []any, i int) error {
		return db.eachRow(ctx, "channels", q, args, func(rows driver.Rows) error {
			var k channelKey
			var s channelSums
			var lats []int64
			var firsts []time.Time
			var profile string
			var pendingFirst *time.Time
			counts := []any{&s.attempts, &s.delivered, &s.failed, &s.undeliverable, &s.timedOut, &s.unknown, &s.polled, &s.latN}
			dest := append([]any{&k.channel, &k.code}, counts...)
			if i >= 0 {
				// channelAggSQL's rows as they are, per profile too: summed
				// here like the rest rather than by one more level of SQL,
				// which ClickHouse takes ~9 ms to plan.
				dest = append(append([]any{&profile, &k.channel, &k.code}, counts...), &pendingFirst, &lats, &firsts)
			}
			if err := rows.Scan(dest...); err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			if i >= 0 {
				pending[i] = append(pending[i], firsts...)
			}
			for _, ms := range lats {
				addTo(lat.live, k.channel, ms, 1)
			}
			t := sums[k]
			if t == nil {
				t = &channelSums{}
				sums[k] = t
			}
			t.attempts += s.attempts
			t.delivered += s.delivered
			t.failed += s.failed
			t.undeliverable += s.undeliverable
			t.timedOut += s.timedOut
			t.unknown += s.unknown
			t.polled += s.polled
			t.latN += s.latN
			return nil
		})
	}
	const sumCols = "channel, code, sum(attempts), sum(delivered), sum(failed), sum(undeliverable), sum(timed_out), sum(unknown), sum(polled), sum(lat_n)"
	var conv map[string]Conversion
	var queries []func(context.Context) error
	for i, lw := range p.live {
		queries = append(queries, func(ctx context.Context) error {
			q, args := lw.channelRowsSQL()
			return read(ctx, q, args, i)
		})
	}
	queries = append(queries, func(ctx context.Context) (err error) {
		conv, err = db.conversionRolled(ctx, w, p)
		return err
	})
	if p.rolled() {
		queries = append(queries,
			func(ctx context.Context) error {
				where, args := p.where(w, "channel")
				return read(ctx, fmt.Sprintf("SELECT %s FROM hourly_attempts WHERE %s GROUP BY channel, code", sumCols, where), args, -1)
			},
			// The bucket counts are this query's alone (lat.buckets; the
			// others add to lat.live).
			func(ctx context.Context) error { return lat.readBuckets(ctx, db, p, w) })
	}
	if err := together(ctx, queries...); err != nil {
		return nil, err
	}
	for i, lw := range p.live {
		notePending(ctx, lw, pending[i])
	}

	byName := map[string]*ChannelStats{}
	for k, s := range sums {
		cs := byName[k.channel]
		if cs == nil {
			cs = &ChannelStats{Channel: k.channel, Errors: []ErrorCount{}}
			byName[k.channel] = cs
		}
		cs.Attempts += s.attempts
		cs.Delivered += s.delivered
		cs.Failed += s.failed
		cs.Undeliverable += s.undeliverable
		cs.TimedOut += s.timedOut
		cs.UnknownStatus += s.unknown
		cs.RecoveredByPolling += s.polled
		if s.failed > 0 {
			cs.Errors = append(cs.Errors, ErrorCount{Code: k.code, Count: s.failed})
		}
	}
	names := make([]string, 0, len(byName))
	groups := make([][]string, 0, len(byName))
	for ch := range byName {
		names = append(names, ch)
		groups = append(groups, []string{ch})
	}
	ns, qs, err := lat.quantiles(ctx, db, p, w, groups, []float64{0.5, 0.95})
	if err != nil {
		return nil, err
	}
	for i, ch := range names {
		cs := byName[ch]
		cs.Pending = cs.Attempts - cs.Delivered - cs.Failed
		cs.DeliveryRate = rate(cs.Delivered, cs.Delivered+cs.Failed)
		cs.LatencyMS = percentiles(ns[i], qs[i])
	}
	return channelList(byName, conv), nil
}

// conversionRolled is conversion over p, its queries side by side.
func (db *DB) conversionRolled(ctx context.Context, w Window, p plan) (map[string]Conversion, error) {
	var mu sync.Mutex
	out := map[string]Conversion{}
	var queries []func(context.Context) error
	if p.rolled() {
		queries = append(queries, func(ctx context.Context) error {
			where, args := p.where(w, "channel")
			q := "SELECT channel, sum(polled), sum(verified), min(sample_rate) FROM hourly_conversion WHERE " + where + " GROUP BY channel"
			sums := map[string]Conversion{}
			err := db.eachRow(ctx, "conversion", q, args, func(rows driver.Rows) error {
				var ch string
				var c Conversion
				if err := rows.Scan(&ch, &c.Polled, &c.Verified, &c.SampleRate); err != nil {
					return err
				}
				sums[ch] = c // one row per channel
				return nil
			})
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			addConversions(out, sums)
			return nil
		})
	}
	for _, lw := range p.live {
		queries = append(queries, func(ctx context.Context) error {
			part := map[string]Conversion{}
			if err := db.addConversion(ctx, lw, part); err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			addConversions(out, part)
			return nil
		})
	}
	if err := together(ctx, queries...); err != nil {
		return nil, err
	}
	for ch, c := range out {
		c.Rate = rate(c.Verified, c.Polled)
		out[ch] = c
	}
	return out, nil
}

// addConversions adds part's figures to out: polled and verified summed,
// the least sample rate.
func addConversions(out, part map[string]Conversion) {
	for ch, c := range part {
		if t, ok := out[ch]; ok {
			c.Polled += t.Polled
			c.Verified += t.Verified
			c.SampleRate = min(c.SampleRate, t.SampleRate)
		}
		out[ch] = c
	}
}

// fallbackRolled is Fallback over p.
func (db *DB) fallbackRolled(ctx context.Context, w Window, p plan) (FallbackStats, error) {
	out := FallbackStats{Paths: []PathStats{}}
	type pathSums struct{ otps, fallback, resends, oPrimary, oFallback, oFailed, oPending, delivered uint64 }
	paths := map[string]*pathSums{}
	ttd := newHistogram(metricTTD)
	// read adds rows of path, the sums and, when live, the primary channel
	// and the times to deliver. The queries run side by side (together);
	// mu guards what they add to.
	var mu sync.Mutex
	read := func(ctx context.Context, q string, args []any, live bool) error {
		rows, err := db.conn.Query(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("query fallback: %w", err)
		}
		defer rows.Close()
		mu.Lock() // the engine has answered: what is left is decoding
		defer mu.Unlock()
		for rows.Next() {
			var path, primary, profile string
			var s pathSums
			var ttds []int64
			counts := []any{&s.otps, &s.fallback, &s.resends, &s.oPrimary, &s.oFallback, &s.oFailed, &s.oPending, &s.delivered}
			dest := append([]any{&path}, counts...)
			if live {
				// journeyAggSQL's rows as they are, per profile too (see
				// channelsRolled).
				dest = append(append([]any{&profile, &path, &primary}, counts...), &ttds)
			}
			if err := rows.Scan(dest...); err != nil {
				return fmt.Errorf("read fallback: %w", err)
			}
			for _, ms := range ttds {
				addTo(ttd.live, primary, ms, 1)
			}
			t := paths[path]
			if t == nil {
				t = &pathSums{}
				paths[path] = t
			}
			t.otps += s.otps
			t.fallback += s.fallback
			t.resends += s.resends
			t.oPrimary += s.oPrimary
			t.oFallback += s.oFallback
			t.oFailed += s.oFailed
			t.oPending += s.oPending
			t.delivered += s.delivered
		}
		return rows.Err()
	}
	const sumCols = "path, sum(otps), sum(fallback), sum(resends), sum(o_primary), sum(o_fallback), sum(o_failed), sum(o_pending), sum(delivered)"
	var queries []func(context.Context) error
	for _, lw := range p.live {
		queries = append(queries, func(ctx context.Context) error {
			q, args := lw.journeyRowsSQL()
			return read(ctx, q, args, true)
		})
	}
	if p.rolled() {
		queries = append(queries,
			func(ctx context.Context) error {
				where, args := p.where(w, "primary_channel")
				return read(ctx, fmt.Sprintf("SELECT %s FROM hourly_paths WHERE %s GROUP BY path", sumCols, where), args, false)
			},
			// The bucket counts are this query's alone (ttd.buckets; the
			// others add to ttd.live).
			func(ctx context.Context) error { return ttd.readBuckets(ctx, db, p, w) })
	}
	if err := together(ctx, queries...); err != nil {
		return out, err
	}
	for path, s := range paths {
		if s.otps == 0 {
			continue
		}
		out.OTPs += s.otps
		out.FallbackOTPs += s.fallback
		out.Resends += s.resends
		out.Outcomes.DeliveredPrimary += s.oPrimary
		out.Outcomes.DeliveredFallback += s.oFallback
		out.Outcomes.Failed += s.oFailed
		out.Outcomes.Pending += s.oPending
		out.Paths = append(out.Paths, newPathStats(path, s.otps, s.delivered, s.oFailed, s.oPending))
	}
	sort.Slice(out.Paths, func(i, j int) bool {
		if out.Paths[i].OTPs != out.Paths[j].OTPs {
			return out.Paths[i].OTPs > out.Paths[j].OTPs
		}
		return out.Paths[i].Path < out.Paths[j].Path
	})
	out.FallbackRate = rate(out.FallbackOTPs, out.OTPs)
	keys := map[string]bool{}
	for k := range ttd.buckets {
		keys[k] = true
	}
	for k := range ttd.live {
		keys[k] = true
	}
	var ks []string
	for k := range keys {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	ns, qs, err := ttd.quantiles(ctx, db, p, w, [][]string{ks}, []float64{0.5, 0.95})
	if err != nil {
		return out, err
	}
	out.TimeToDeliverMS = percentiles(ns[0], qs[0])
	return out, nil
}
