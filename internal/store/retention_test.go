package store_test

import (
	"flag"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/events"
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
			"channel_events":     "TTL day + toIntervalDay(31)", // a day's margin: rows are dated by their earliest fact
			"channel_deliveries": "TTL day + toIntervalDay(31)",
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
		// An hour is computed from the facts of a day either side of it.
		{[]string{"--retention-events", "1d"}, false},
		{[]string{"--retention-attempts", "24h"}, false},
		{[]string{"--retention-attempts", "2d", "--retention-rollups", "2d"}, true},
		{[]string{"--retention-events", "-1d"}, false},
		{[]string{"--retention-events", "week"}, false},
		{[]string{"--retention-attempts", "30d", "--retention-rollups", "10d"}, false},
		{[]string{"--retention-rollups", "10d"}, false},
		{[]string{"--retention-attempts", "30d", "--retention-rollups", "365d"}, true},
		// Past MaxRetention a TTL wraps past 2106 into the past and drops
		// every row; 0 keeps forever.
		{[]string{"--retention-events", "36500d"}, false},
		{[]string{"--retention-events", "3651d"}, false},
		{[]string{"--retention-events", "87624h"}, false},
		{[]string{"--retention-events", "99999999999d"}, false},
		{[]string{"--retention-events", "3650d"}, true},
		{[]string{"--retention-events", "87600h"}, true},
		{[]string{"--retention-events", "0"}, true},
		{[]string{"--retention-attempts", "3650d", "--retention-rollups", "3650d", "--retention-dead-letters", "3650d"}, true},
		{[]string{"--retention-attempts", "3650d", "--retention-rollups", "3651d"}, false},
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

// TestRetentionBound checks MaxRetention against the engine: added to the
// latest time a row can carry (a day ahead), it stays in the future for
// the DateTime and the Date columns' TTLs, where a century wraps past 2106.
func TestRetentionBound(t *testing.T) {
	var set store.Retention
	if err := set.Set("36500d"); err == nil || !strings.Contains(err.Error(), "0 to keep forever") {
		t.Errorf(`Set("36500d") = %v; want it refused, naming 0 for forever`, err)
	}
	if err := set.Set(store.MaxRetention.String()); err != nil || set != store.MaxRetention {
		t.Errorf("Set(%q) = %v, %v; want %v", store.MaxRetention, err, set, store.MaxRetention)
	}
	cfg := store.RetentionConfig{Events: store.Retention(100 * 365 * 24 * time.Hour)}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "retention-events") {
		t.Errorf("Validate of a century = %v; want retention-events refused", err)
	}
	latest := time.Now().UTC().Add(events.MaxClockSkew).Truncate(time.Second)
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		for _, expr := range []string{
			"toDateTime(toDateTime64(@t, 3, 'UTC')) + toIntervalDay(@days) > toDateTime(@t, 'UTC')",
			"toDate(@t) + toIntervalDay(@days) > toDate(@t)",
		} {
			q := strings.NewReplacer("@t", "'"+latest.Format(time.DateTime)+"'", "@days", strconv.Itoa(store.MaxRetention.Days())).Replace(expr)
			var ok bool
			if err := db.Conn().QueryRow(t.Context(), "SELECT "+q).Scan(&ok); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			if !ok {
				t.Errorf("%s: false; the TTL at MaxRetention wraps into the past", q)
			}
		}
	})
}

// A reader password with no reader user is refused: every reader's login
// failed (516) while the configuration was called ok.
func TestConfigRefusesAReaderPasswordWithoutAUser(t *testing.T) {
	c := store.Config{DataDir: t.TempDir(), Listen: store.DefaultListen, ReaderPassword: "grafana-password-1", ReaderUser: ""}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "clickhouse-reader-user") {
		t.Errorf("Validate() = %v; want --clickhouse-reader-user named", err)
	}
	c.ReaderUser = "grafana"
	if err := c.Validate(); err != nil {
		t.Errorf("with a reader user: Validate() = %v; want ok", err)
	}
}
