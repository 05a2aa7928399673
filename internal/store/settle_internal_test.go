package store

import "testing"

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
