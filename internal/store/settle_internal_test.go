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
