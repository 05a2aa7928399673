package store_test

import (
	"flag"
	"slices"
	"strings"
	"testing"

	"github.com/otpscope/otpscope/internal/store"
)

func showCreate(t *testing.T, db *store.DB, table string) string {
	t.Helper()
	var s string
	if err := db.Conn().QueryRow(t.Context(), "SHOW CREATE TABLE "+table).Scan(&s); err != nil {
		t.Fatalf("SHOW CREATE TABLE %s: %v", table, err)
	}
	return s
}

// wantTTLs checks that each table's definition has its TTL clause.
func wantTTLs(t *testing.T, db *store.DB, ttls map[string]string) {
	t.Helper()
	for table, want := range ttls {
		if s := showCreate(t, db, table); !strings.Contains(s, want) {
			t.Errorf("%s:\n%s\nwant %s", table, s, want)
		}
	}
}

func TestRetention(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		apply := func(args ...string) []string {
			t.Helper()
			var cfg store.Config
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			cfg.RegisterFlags(fs)
			if err := fs.Parse(args); err != nil {
				t.Fatal(err)
			}
			altered, err := db.ApplyRetention(t.Context(), *cfg.Retention)
			if err != nil {
				t.Fatalf("ApplyRetention(%q): %v", args, err)
			}
			return altered
		}
		// The defaults are the schema's: nothing to alter.
		if altered := apply(); len(altered) != 0 {
			t.Errorf("the default retention altered %v; want nothing", altered)
		}
		if s := showCreate(t, db, "dead_letters"); !strings.Contains(s, "TTL toDateTime(received_at) + toIntervalDay(90)") {
			t.Errorf("dead_letters:\n%s\nwant the 90-day TTL", s)
		}

		altered := apply("--retention-events", "30d", "--retention-dead-letters", "7d")
		if want := []string{"alerts", "dead_letter_replays", "dead_letters", "delivery_events", "journey_links", "otp_status", "push_events", "resends", "silent_auth_outcomes", "v1_events"}; !slices.Equal(altered, want) {
			t.Errorf("altered %v; want %v", altered, want)
		}
		wantTTLs(t, db, map[string]string{
			"delivery_events": "TTL toDateTime(event_time) + toIntervalDay(30)",
			"resends":         "TTL toDateTime(decided_at) + toIntervalDay(30)",
			"push_events":     "TTL toDateTime(created_at) + toIntervalDay(30)",
			"alerts":          "TTL toDateTime(evaluated_at) + toIntervalDay(30)",
			"dead_letters":    "TTL toDateTime(received_at) + toIntervalDay(7)",
		})
		if s := showCreate(t, db, "channel_events"); strings.Contains(s, "TTL") {
			t.Errorf("channel_events has a TTL without --retention-attempts:\n%s", s)
		}
		// Applying the same again alters nothing; a change applies.
		if altered := apply("--retention-events", "720h", "--retention-dead-letters", "7d"); len(altered) != 0 {
			t.Errorf("the same retention again altered %v", altered)
		}
		apply("--retention-events", "60d", "--retention-attempts", "30d", "--retention-rollups", "400d", "--retention-dead-letters", "7d")
		wantTTLs(t, db, map[string]string{
			"delivery_events":    "TTL toDateTime(event_time) + toIntervalDay(60)",
			"channel_events":     "TTL day + toIntervalDay(30)",
			"channel_deliveries": "TTL day + toIntervalDay(30)",
			"hour_attempts":      "TTL toDateTime(hour) + toIntervalDay(400)",
		})
		// 0 is forever: the TTL goes.
		apply("--retention-dead-letters", "0")
		for _, table := range []string{"delivery_events", "channel_events", "hour_attempts", "dead_letters", "dead_letter_replays"} {
			if s := showCreate(t, db, table); strings.Contains(s, "TTL") {
				t.Errorf("%s keeps a TTL at retention 0:\n%s", table, s)
			}
		}
	})
}

func TestRetentionFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		ok   bool
	}{
		{[]string{"--retention-events", "90d"}, true},
		{[]string{"--retention-events", "48h"}, true},
		{[]string{"--retention-events", "36h"}, false},
		{[]string{"--retention-events", "-1d"}, false},
		{[]string{"--retention-events", "week"}, false},
		{[]string{"--retention-attempts", "30d", "--retention-rollups", "10d"}, false},
		{[]string{"--retention-rollups", "10d"}, false},
		{[]string{"--retention-attempts", "30d", "--retention-rollups", "365d"}, true},
	} {
		var cfg store.Config
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		fs.SetOutput(new(strings.Builder))
		cfg.RegisterFlags(fs)
		err := fs.Parse(append([]string{"--clickhouse-dsn", "http://localhost:8123"}, tc.args...))
		if err == nil {
			err = cfg.Validate()
		}
		if (err == nil) != tc.ok {
			t.Errorf("%q: err = %v; want ok %v", tc.args, err, tc.ok)
		}
	}
}
