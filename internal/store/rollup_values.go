package store

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// A percentile's second step reads the rollups' values of the few 256 ms
// buckets that hold the wanted ranks, per hour or day. Those rows never
// change once written: a computation writes an hour's or a day's rows under
// its own version and records it last, and a later one writes a new
// version. So the values are kept in memory by (hour or day, version), and
// a read asks the engine only for the ones it has not seen: a dashboard
// reading the same windows again reads the values of the hours the job
// computed since, not 90 days of lists. This is the step after the bucket
// counts, so every query it saves is a whole query off the read's time.

// keyBucket is one key's (a channel's, a primary channel's) 256 ms bucket.
type keyBucket struct {
	key    string
	bucket int64
}

// valuesKey names the values of one key's bucket in one rolled-up hour or
// day at its version, for one profile ("": all).
type valuesKey struct {
	metric, profile string
	keyBucket
	at      time.Time // the hour, or the day's first hour
	version uint64
	day     bool
}

// valuesCacheSize bounds the (hour or day, bucket) entries kept: a 90-day
// window's two percentiles of four channels name ~720 days' buckets, and an
// entry holds at most 256 values (4 KB). Two generations of up to half
// each: an entry not used while the newer one filled is dropped with the
// older.
const valuesCacheSize = 1 << 13

type valuesCache struct {
	mu       sync.Mutex
	cur, old map[valuesKey]valueCounts
}

func (c *valuesCache) get(k valuesKey) (valueCounts, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if vc, ok := c.cur[k]; ok {
		return vc, true
	}
	vc, ok := c.old[k]
	if ok {
		c.putLocked(k, vc)
	}
	return vc, ok
}

func (c *valuesCache) put(k valuesKey, vc valueCounts) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(k, vc)
}

func (c *valuesCache) putLocked(k valuesKey, vc valueCounts) {
	if c.cur == nil || len(c.cur) >= valuesCacheSize/2 {
		c.old, c.cur = c.cur, map[valuesKey]valueCounts{}
	}
	c.cur[k] = vc
}

// rollupValues calls add with the rollups' values of metric for each of
// pairs in each of p's hours and days (the days standing for their hours)
// that wants (nil: every one), for w's profile: a list per (key, bucket,
// hour or day), none where it has no values. Values the cache has are not
// read again; what is read is kept once its version is older than the
// slack, when every row written under it is visible (before, on a cluster,
// a read could find part of them).
func (db *DB) rollupValues(ctx context.Context, p plan, w Window, metric string, pairs []keyBucket, wants func(keyBucket, time.Time) bool, add func(keyBucket, time.Time, valueCounts)) error {
	if len(pairs) == 0 {
		return nil
	}
	days, hours := p.dayParts()
	var mu sync.Mutex // the reads below add side by side
	found := func(kb keyBucket, at time.Time, vc valueCounts) {
		if len(vc) == 0 {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		add(kb, at, vc)
	}
	key := func(kb keyBucket, at rolledHour, day bool) valuesKey {
		return valuesKey{metric: metric, profile: w.Profile, keyBucket: kb, at: at.hour, version: at.version, day: day}
	}
	// What the cache lacks: the periods lacking a wanted pair, and the
	// pairs a period lacks, read as their cross product, of which only the
	// lacking ones are added and kept.
	type missing struct {
		periods []rolledHour
		pairs   map[keyBucket]bool
	}
	var missDays, missHours missing
	lacking := map[valuesKey]bool{}
	for _, part := range []struct {
		periods []rolledHour
		day     bool
		miss    *missing
	}{{days, true, &missDays}, {hours, false, &missHours}} {
		part.miss.pairs = map[keyBucket]bool{}
		for _, at := range part.periods {
			lacks := false
			for _, kb := range pairs {
				if wants != nil && !wants(kb, at.hour) {
					continue
				}
				k := key(kb, at, part.day)
				if vc, ok := db.values.get(k); ok {
					found(kb, at.hour, vc)
					continue
				}
				lacking[k] = true
				lacks = true
				part.miss.pairs[kb] = true
			}
			if lacks {
				part.miss.periods = append(part.miss.periods, at)
			}
		}
	}
	read := func(day bool, m missing) func(context.Context) error {
		return func(ctx context.Context) error {
			if len(m.periods) == 0 {
				return nil
			}
			settled := time.Now().Add(-db.slack())
			return db.readValues(ctx, m.periods, day, metric, w.Profile, slices.Collect(maps.Keys(m.pairs)), func(kb keyBucket, at rolledHour, vc valueCounts) {
				k := key(kb, at, day)
				if !lacking[k] {
					return // added from the cache, or not wanted
				}
				if time.UnixMilli(int64(at.version)).Before(settled) {
					db.values.put(k, vc)
				}
				found(kb, at.hour, vc)
			})
		}
	}
	return together(ctx, read(true, missDays), read(false, missHours))
}

// readValues reads the values of pairs in periods (days, or hours) and
// calls got for each (pair, period), with nil where there are none. Days
// without a profile come as the job listed them (day_latency_lists, schema
// 0018); the others are listed here from the rows per value.
func (db *DB) readValues(ctx context.Context, periods []rolledHour, day bool, metric, profile string, pairs []keyBucket, got func(keyBucket, rolledHour, valueCounts)) error {
	in := make([]string, len(pairs))
	args := make([]any, 0, len(pairs)+1)
	for i, kb := range pairs {
		in[i] = fmt.Sprintf("(?, %d)", kb.bucket)
		args = append(args, kb.key)
	}
	cond := fmt.Sprintf("metric = '%s' AND (key, bucket) IN (%s)", metric, strings.Join(in, ", "))
	which := hoursSQL(periods)
	table := "hourly_latency"
	if day {
		which, table = versionsSQL(periods), "day_latency"
	}
	cond += " AND " + which
	if profile != "" {
		cond += " AND profile_id = ?"
		args = append(args, profile)
	}
	q := fmt.Sprintf(`SELECT key, bucket, hour, %s FROM (
    SELECT key, bucket, hour, ms, sum(n) AS c FROM %s WHERE %s GROUP BY key, bucket, hour, ms
) GROUP BY key, bucket, hour`, valuesListSQL, table, cond)
	if day && profile == "" {
		q = "SELECT key, bucket, hour, vals FROM day_latency_lists WHERE " + cond
	}
	versions := map[time.Time]uint64{}
	for _, at := range periods {
		versions[at.hour] = at.version
	}
	type pairAt struct {
		keyBucket
		at time.Time
	}
	seen := map[pairAt]bool{}
	err := db.eachRow(ctx, metric+" values", q, args, func(rows driver.Rows) error {
		var kb keyBucket
		var at time.Time
		var list string
		if err := rows.Scan(&kb.key, &kb.bucket, &at, &list); err != nil {
			return err
		}
		vc, err := parseList(list)
		if err != nil {
			return err
		}
		period := rolledHour{hour: at.UTC(), version: versions[at.UTC()]}
		seen[pairAt{kb, period.hour}] = true
		got(kb, period, vc)
		return nil
	})
	if err != nil {
		return err
	}
	for _, at := range periods {
		for _, kb := range pairs {
			if !seen[pairAt{kb, at.hour}] {
				got(kb, at, nil)
			}
		}
	}
	return nil
}
