package store

import (
	"testing"
	"time"
)

// Only a plain MergeTree lets a rollup run see every insert that can stamp
// a mark; replicated and shared engines keep the cluster's slack.
func TestPlainMergeTree(t *testing.T) {
	for engine, want := range map[string]bool{
		"ReplacingMergeTree":             true,
		"MergeTree":                      true,
		"ReplicatedReplacingMergeTree":   false,
		"SharedReplacingMergeTree":       false,
		"Distributed":                    false,
		"":                               false,
		"ReplicatedMergeTree":            false,
		"SharedMergeTree":                false,
		"AggregatingMergeTree":           true,
		"ReplicatedAggregatingMergeTree": false,
	} {
		if got := plainMergeTree(engine); got != want {
			t.Errorf("plainMergeTree(%q) = %v; want %v", engine, got, want)
		}
	}
}

// The statements that change rows or definitions (retention's ALTER, the
// rollups' and the dead letters' DELETE) go to a cluster's local tables on
// every node: the Distributed tables refuse them.
func TestLocalTarget(t *testing.T) {
	for cluster, want := range map[string]string{
		"":         "`dead_letters`",
		"otpscope": "`dead_letters_local` ON CLUSTER `otpscope`",
	} {
		if got := (&DB{cluster: cluster}).localTarget("dead_letters"); got != want {
			t.Errorf("cluster %q: %s; want %s", cluster, got, want)
		}
	}
}

// A reader following the clock may lag by the job's interval and a minute
// for its run; a cluster's reads by the slack its marks keep too.
func TestFollowingLag(t *testing.T) {
	for _, c := range []struct {
		settles  bool
		interval time.Duration
		want     time.Duration
	}{
		{true, time.Minute, 2 * time.Minute},
		{true, 15 * time.Second, 75 * time.Second},
		{false, time.Minute, 2*time.Minute + RollupSlack},
	} {
		if got := (&DB{settles: c.settles}).FollowingLag(c.interval); got != c.want {
			t.Errorf("settles %v, every %v: %v; want %v", c.settles, c.interval, got, c.want)
		}
	}
}
