package store

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// A group's median time to deliver, from the slice of its kept times that
// keptGroups reads and the computed ones, is the median of all of them
// whenever median says ok, and it says so whenever no more times were
// computed than the slice was cut for. Times are drawn from a few values,
// so ties are common.
func TestKeptGroupMedianIsTheMedianOfAll(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		n, extra := rng.IntN(40), rng.IntN(12)
		kept := make([]int64, n)
		for i := range kept {
			kept[i] = rng.Int64N(15)
		}
		slices.Sort(kept)
		// The slice as keptGroups' SQL cuts it (0-based here).
		lo := max(0, n/2-extra)
		hi := min(n-1, (n+extra)/2)
		g := keptGroup{n: int64(n), lo: int64(lo), slice: kept[lo : hi+1]}
		c := rng.IntN(extra + 4) // sometimes more than the slice was cut for
		for range c {
			g.computed = append(g.computed, rng.Int64N(15))
		}
		got, ok := g.median()
		if !ok {
			if c <= extra {
				t.Fatalf("n=%d extra=%d c=%d: median not told", n, extra, c)
			}
			continue
		}
		all := slices.Concat(kept, g.computed)
		slices.Sort(all)
		switch {
		case len(all) == 0 && got != nil:
			t.Fatalf("no times: median %d", *got)
		case len(all) > 0 && (got == nil || *got != all[len(all)/2]):
			t.Fatalf("n=%d extra=%d computed=%v kept=%v: median %v, want %d", n, extra, g.computed, kept, got, all[len(all)/2])
		}
	}
}
