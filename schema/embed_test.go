package schema

import (
	"strings"
	"testing"
)

func TestMigrationsRenderBothShapes(t *testing.T) {
	single, err := Migrations(Options{})
	if err != nil {
		t.Fatal(err)
	}
	cluster, err := Migrations(Options{Cluster: "otpscope"})
	if err != nil {
		t.Fatal(err)
	}
	if len(single) == 0 || len(single) != len(cluster) {
		t.Fatalf("%d single and %d cluster migrations", len(single), len(cluster))
	}
	for _, m := range single {
		for _, s := range m.Statements {
			if strings.Contains(s, "Replicated") || strings.Contains(s, "ON CLUSTER") || strings.Contains(s, "{{") {
				t.Errorf("single-server statement of %d_%s: %s", m.Version, m.Name, s)
			}
		}
	}
	joined := strings.Join(cluster[0].Statements, "\n")
	for _, want := range []string{
		"CREATE TABLE IF NOT EXISTS delivery_events_local ON CLUSTER `otpscope`",
		"ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/delivery_events_local', '{replica}', inserted_at)",
		"ENGINE = Distributed(`otpscope`, currentDatabase(), delivery_events_local, cityHash64(otp_id))",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("cluster migration lacks %q", want)
		}
	}
	// A dropped table goes from every node: the Distributed one, then the
	// local one; a column added goes to the local tables and the
	// Distributed one.
	for name, wants := range map[string][]string{
		"drop_unread_tables": {
			"DROP TABLE IF EXISTS daily_attempts ON CLUSTER `otpscope` SYNC\nDROP TABLE IF EXISTS daily_attempts_local ON CLUSTER `otpscope` SYNC",
			"DROP TABLE IF EXISTS attempts ON CLUSTER `otpscope` SYNC\nDROP TABLE IF EXISTS attempts_local ON CLUSTER `otpscope` SYNC",
		},
		"dead_letter_paths": {
			"ALTER TABLE dead_letters_local ON CLUSTER `otpscope` ADD COLUMN IF NOT EXISTS path",
			"ALTER TABLE dead_letters ON CLUSTER `otpscope` ADD COLUMN IF NOT EXISTS path",
		},
	} {
		var statements string
		for _, m := range cluster {
			if m.Name == name {
				statements = strings.Join(m.Statements, "\n")
			}
		}
		for _, want := range wants {
			if !strings.Contains(statements, want) {
				t.Errorf("cluster migration %s lacks %q", name, want)
			}
		}
	}
	if single[0].Checksum == cluster[0].Checksum {
		t.Error("the two shapes have one checksum")
	}
}

func TestSplit(t *testing.T) {
	got := Split("-- a comment\nCREATE TABLE a (x String);\n\n-- only a comment;\nSELECT 1;\nSELECT ';' AS s\n")
	want := []string{"-- a comment\nCREATE TABLE a (x String)", "SELECT 1", "SELECT ';' AS s"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("Split = %q; want %q", got, want)
	}
}
