package schema

import (
	"strings"
	"testing"
)

// bothShapes renders every migration for a single server and for a cluster.
func bothShapes(t *testing.T) (single, cluster []Migration) {
	t.Helper()
	single, err := Migrations(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if cluster, err = Migrations(Options{Cluster: "otpscope"}); err != nil {
		t.Fatal(err)
	}
	return single, cluster
}

func TestMigrationsRenderBothShapes(t *testing.T) {
	single, cluster := bothShapes(t)
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
		"journey_dispatch_instants": {
			"ALTER TABLE hour_journeys_local ON CLUSTER `otpscope` ADD COLUMN IF NOT EXISTS j_timed",
			"ALTER TABLE hour_journeys ON CLUSTER `otpscope` ADD COLUMN IF NOT EXISTS j_timed",
			"ALTER TABLE rolled_hours_local ON CLUSTER `otpscope` ADD COLUMN IF NOT EXISTS definition",
			"ALTER TABLE rolled_hours ON CLUSTER `otpscope` ADD COLUMN IF NOT EXISTS definition",
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

// TestMigrationChecksumsPinned fails when a migration's text changes after it
// was written here: a database migrated with the old text would refuse the
// new build at start ("applied with another text"). Add a new migration
// instead; if an edit must stay, keep the old text in superseded/ (README
// there) and only then update the pin.
func TestMigrationChecksumsPinned(t *testing.T) {
	pins := []struct {
		version         int
		single, cluster string
	}{
		{1, "baeb1ee05fcf38b3", "9061bae0bcc3146d"},
		{2, "c77ca2d53fe4f55d", "778f26db71a62deb"},
		{3, "53bc07fe059d815d", "f2ebcde8aaf8399c"},
		{4, "bca84396748f45df", "bfa9cc7370cc0d55"},
		{5, "28d903bbed856337", "65512fc419dc956b"},
		{6, "bb554cc2ead1311b", "37ead5b3c739edf2"},
		{7, "ab574671da3e7ea4", "57b387282fe979be"},
		{8, "26c3c004fb95c7a6", "21200cbcbcc2b368"},
		{9, "d7b36c92ed2eeccb", "561da48c12e8a31"},
		{10, "52f13ae1dbddc1a8", "4338eade61a62865"},
		{11, "19c9ea535557aaab", "131412fb53a9620f"},
		{12, "93165e8055f6a36", "6f3f10dcb8afe402"},
		{13, "8e1806b092b7a7bf", "864892040d384236"},
		{14, "49c7538c3f42f8b", "798847fe734633b3"},
		{15, "ed5eb414912db104", "5aa786af08c01c92"},
		{16, "d0d9380fbcb0dbe", "5921a72b4916da58"},
		{17, "b47795beb3d38c86", "64682cd7ee38b431"},
		{18, "e3d7eb55dd92ce7f", "f8b5d3701e68f87"},
		{19, "e4d7493bcac01bef", "b6a22e005b768839"},
		{20, "2ef38068675e9cba", "141f49ab683e4367"},
		{21, "625e21abbdddd1f1", "944239b6b9f77a3b"},
		{22, "225697c347716845", "1bfd5668f2318b4d"},
		{23, "38a0a9c38386d4ea", "23a678b9c6ee5384"},
		{24, "7ac4b124ba1c79ef", "9d7e618f6d1a8ecb"},
		{25, "d1336a993c33f18f", "3620c56775a9fe10"},
		{26, "6d708dfd6050d2a6", "473e592cfb478e0"},
		{27, "14886238474a31", "39ef58a5c72da30d"},
		{28, "8d7d76d630981332", "d70adef0197172e1"},
		{29, "ea7eb3850be0ae2d", "6f7cb5b0fb538c4b"},
	}
	single, cluster := bothShapes(t)
	if len(single) < len(pins) {
		t.Fatalf("%d migrations, %d pinned: a migration was removed", len(single), len(pins))
	}
	for i, p := range pins {
		if single[i].Version != p.version || single[i].Checksum != p.single || cluster[i].Checksum != p.cluster {
			t.Errorf("migration %04d_%s renders %s (single) and %s (cluster); pinned %04d as %s and %s: an applied migration was edited",
				single[i].Version, single[i].Name, single[i].Checksum, cluster[i].Checksum, p.version, p.single, p.cluster)
		}
	}
	for i := len(pins); i < len(single); i++ {
		m := single[i]
		t.Errorf("migration %04d_%s is not pinned: add {%d, %q, %q} once it is final", m.Version, m.Name, m.Version, m.Checksum, cluster[i].Checksum)
	}
}

// TestSupersededTextsAreAccepted: the texts 0017 and 0019 had in the builds
// that applied them are known by their checksums, for both shapes; the
// checksum af46b9b4b1416f04 is the one a database migrated by such a build
// held in the upgrade review.
func TestSupersededTextsAreAccepted(t *testing.T) {
	for _, opts := range []Options{{}, {Cluster: "otpscope"}} {
		ms, err := Migrations(opts)
		if err != nil {
			t.Fatal(err)
		}
		got := map[int]int{}
		for _, m := range ms {
			got[m.Version] = len(m.Superseded)
			for _, s := range m.Superseded {
				if s == m.Checksum {
					t.Errorf("%q: migration %d's superseded text is its current one", opts.Cluster, m.Version)
				}
			}
		}
		if got[17] != 1 || got[19] != 1 || len(ms[0].Superseded) != 0 {
			t.Errorf("%q: superseded texts per migration %v; want one for 17 and 19", opts.Cluster, got)
		}
		if opts.Cluster == "" && ms[16].Superseded[0] != "af46b9b4b1416f04" {
			t.Errorf("0017's superseded single-server checksum %s; want af46b9b4b1416f04", ms[16].Superseded[0])
		}
	}
}
