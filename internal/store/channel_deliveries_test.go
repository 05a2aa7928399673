package store_test

import (
	"slices"
	"testing"

	"github.com/otpscope/otpscope/internal/store"
)

// deliveredFacts lists the DELIVERED facts a query yields as (day, otp_id,
// channel, delivered_at) strings, each once, sorted.
func deliveredFacts(t *testing.T, db *store.DB, q string) []string {
	t.Helper()
	rows, err := db.Conn().Query(t.Context(), "SELECT DISTINCT concat(toString(day), ' ', toString(otp_id), ' ', toString(channel), ' ', toString(delivered_at)) AS f FROM ("+q+") ORDER BY f")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var f string
		if err := rows.Scan(&f); err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// channel_deliveries (schema 0023), what a resend decision's outcome reads,
// holds exactly channel_events' DELIVERED facts with their rows' days:
// from all three of its sources (delivery events, silent authentication,
// push), stored twice and out of order, and, through the migration's
// backfill, those stored before the table existed.
func TestChannelDeliveriesHoldEveryDeliveredFact(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		insertShuffled(t, db, methodMessages(t))
		const fromEvents = `SELECT day, otp_id, channel, e.1 AS delivered_at FROM channel_events ARRAY JOIN events AS e WHERE e.3 = 'DELIVERED'`
		const kept = `SELECT day, otp_id, channel, delivered_at FROM channel_deliveries`
		want := deliveredFacts(t, db, fromEvents)
		// otpM1 and otpM2 by SMS and VOICE, sa-3's silent authentication,
		// p-7's push approval.
		if len(want) != 4 {
			t.Fatalf("channel_events holds %d DELIVERED facts, want 4: %q", len(want), want)
		}
		if got := deliveredFacts(t, db, kept); !slices.Equal(got, want) {
			t.Fatalf("channel_deliveries holds\n%q\nchannel_events' DELIVERED facts are\n%q", got, want)
		}

		// The migration again on a database that has facts and no table:
		// its backfill copies them.
		for _, stmt := range []string{
			"DROP TABLE channel_deliveries_mv SYNC",
			"DROP TABLE channel_deliveries SYNC",
			"ALTER TABLE otpscope_schema_migrations DELETE WHERE version = 23 SETTINGS mutations_sync = 2",
		} {
			if err := db.Conn().Exec(t.Context(), stmt); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
		}
		if err := db.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got := deliveredFacts(t, db, kept); !slices.Equal(got, want) {
			t.Fatalf("after the backfill channel_deliveries holds\n%q\nwant\n%q", got, want)
		}
	})
}
