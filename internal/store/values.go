package store

import (
	"fmt"
	"slices"
	"strings"
)

// bucketValues counts the millisecond values of one 256 ms latency bucket,
// for the exact percentile within it: an array over the bucket's values,
// and a map for any other (bucket 0 also holds the negative latencies down
// to -255, intDiv truncating toward zero). A 90-day window adds up ~180 k
// values; an array took a quarter of a map's time.
type bucketValues struct {
	bucket, base int64
	n            [latencyBucket]uint64
	others       map[int64]uint64
}

func newBucketValues(bucket int64) *bucketValues {
	base := bucket * latencyBucket
	if bucket < 0 {
		base -= latencyBucket - 1
	}
	return &bucketValues{bucket: bucket, base: base}
}

// addInBucket adds the values of vs (ms → n, a live sub-window's) that
// fall in v's bucket.
func (v *bucketValues) addInBucket(vs map[int64]uint64) {
	for ms, n := range vs {
		if ms/latencyBucket == v.bucket {
			v.add(ms, n)
		}
	}
}

func (v *bucketValues) add(ms int64, n uint64) {
	if o := ms - v.base; o >= 0 && o < latencyBucket {
		v.n[o] += n
		return
	}
	if v.others == nil {
		v.others = map[int64]uint64{}
	}
	v.others[ms] += n
}

// merge adds w's counts, which are of the same bucket; w may be nil.
func (v *bucketValues) merge(w *bucketValues) {
	if w == nil {
		return
	}
	for o, n := range w.n {
		v.n[o] += n
	}
	for ms, n := range w.others {
		v.add(ms, n)
	}
}

// addCounts adds counted values, which are of v's bucket (or, in bucket
// 0, negative).
func (v *bucketValues) addCounts(vc valueCounts) {
	for _, c := range vc {
		v.add(c.ms, c.n)
	}
}

// subCounts takes counted values out: those of an hour whose day's values
// were added (timeseries' anchored days). Counts are unsigned and wrap
// meanwhile; once every value is added and taken out they are what the
// remaining periods hold.
func (v *bucketValues) subCounts(vc valueCounts) {
	for _, c := range vc {
		v.add(c.ms, -c.n)
	}
}

// valueCounts are counted millisecond values: a values list as parsed.
type valueCounts []msCount

type msCount struct {
	ms int64
	n  uint64
}

// parseList reads a list of listSQL (valuesListSQL's: "ms:n" pairs),
// comma-separated, ms possibly negative. By hand: strconv and splitting
// took four times as long over a 90-day window's lists.
func parseList(list string) (valueCounts, error) {
	out := make(valueCounts, 0, strings.Count(list, ",")+1)
	var ms int64
	var n uint64
	neg, inN, digits := false, false, 0
	for i := 0; i <= len(list); i++ {
		c := byte(',')
		if i < len(list) {
			c = list[i]
		}
		switch {
		case c >= '0' && c <= '9' && digits < 19:
			if inN {
				n = n*10 + uint64(c-'0')
			} else {
				ms = ms*10 + int64(c-'0')
			}
			digits++
		case c == '-' && !inN && !neg && digits == 0:
			neg = true
		case c == ':' && !inN && digits > 0:
			inN, digits = true, 0
		case c == ',' && inN && digits > 0:
			if neg {
				ms = -ms
			}
			out = append(out, msCount{ms, n})
			ms, n, neg, inN, digits = 0, 0, false, false, 0
		default:
			return nil, fmt.Errorf("latency values: bad list at byte %d of %q", i, list[:min(len(list), 64)])
		}
	}
	return out, nil
}

// count is how many values v holds: the bucket's count, unless the rows
// read disagree with it (a value read twice, or missing).
func (v *bucketValues) count() uint64 {
	var n uint64
	for _, c := range v.n {
		n += c
	}
	for _, c := range v.others {
		n += c
	}
	return n
}

// at is the value of rank (0-based, ascending) among the counted values;
// found is false when there are rank values or fewer.
func (v *bucketValues) at(rank uint64) (value float64, found bool) {
	others := make([]int64, 0, len(v.others))
	for ms := range v.others {
		others = append(others, ms)
	}
	slices.Sort(others)
	var cum uint64
	// holds counts n values at ms, in ascending order, and says whether
	// rank is among them.
	holds := func(n uint64) bool {
		cum += n
		return rank < cum
	}
	next := 0
	for o, n := range v.n {
		ms := v.base + int64(o)
		for ; next < len(others) && others[next] < ms; next++ {
			if holds(v.others[others[next]]) {
				return float64(others[next]), true
			}
		}
		if holds(n) {
			return float64(ms), true
		}
	}
	for ; next < len(others); next++ {
		if holds(v.others[others[next]]) {
			return float64(others[next]), true
		}
	}
	return 0, false
}
