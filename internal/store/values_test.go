package store

import "testing"

func TestBucketValues(t *testing.T) {
	// Bucket 0 holds 0..255 and the negative latencies down to -255.
	v := newBucketValues(0)
	vc, err := parseList("7:2,255:1,-3:2")
	if err != nil {
		t.Fatal(err)
	}
	v.addCounts(vc)
	w := newBucketValues(0)
	w.add(7, 1)
	w.add(-255, 1)
	v.merge(w)
	v.merge(nil)
	// Sorted: -255, -3, -3, 7, 7, 7, 255.
	for rank, want := range []float64{-255, -3, -3, 7, 7, 7, 255} {
		if got, ok := v.at(uint64(rank)); !ok || got != want {
			t.Errorf("at(%d) = %v, %v; want %v", rank, got, ok, want)
		}
	}
	if got, ok := v.at(7); ok {
		t.Errorf("at(7) = %v among 7 values; want not found", got)
	}

	// Bucket 30 holds 7680..7935; a negative bucket its own range.
	hi := newBucketValues(30)
	hi.add(7935, 1)
	hi.add(7680, 1)
	if got, _ := hi.at(0); got != 7680 || len(hi.others) != 0 {
		t.Errorf("bucket 30: at(0) = %v with %d values off its array; want 7680 and none", got, len(hi.others))
	}
	// A live sub-window's values: only those of the bucket count.
	hi.addInBucket(map[int64]uint64{7700: 2, 7679: 5, 7936: 5})
	if got, _ := hi.at(2); got != 7700 {
		t.Errorf("bucket 30 after live values: at(2) = %v; want 7700", got)
	}
	if _, ok := hi.at(4); ok {
		t.Error("bucket 30 counted live values of other buckets")
	}
	neg := newBucketValues(-1)
	neg.add(-511, 1)
	neg.add(-256, 1)
	if got, _ := neg.at(1); got != -256 || len(neg.others) != 0 {
		t.Errorf("bucket -1: at(1) = %v with %d values off its array; want -256 and none", got, len(neg.others))
	}

	for _, bad := range []string{"", "7", "7:x", "x:7", "7:-1", "7:1,", ":1", "--7:1", "7:1:2", "99999999999999999999:1"} {
		if _, err := parseList(bad); err == nil {
			t.Errorf("parseList(%q) = nil error; want one", bad)
		}
	}
}
