package store_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/grafanatest"
	"github.com/otpscope/otpscope/internal/store"
)

// resendsPanel is the SQL of the Grafana panel "Resends and their outcome"
// (dashboards/fallback-resends.json) over [from, to), every profile and
// channel.
func resendsPanel(t *testing.T, from, to time.Time) string {
	t.Helper()
	ds, err := grafanatest.Load("../../dashboards")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		for _, p := range d.Panels {
			if p.Title == "Resends and their outcome" {
				sql, err := grafanatest.Expand(p.Targets[0].RawSQL, from, to, time.Minute, map[string]string{"profile": "__all", "channel": "__all"})
				if err != nil {
					t.Fatal(err)
				}
				return sql
			}
		}
	}
	t.Fatal("no panel \"Resends and their outcome\"")
	return ""
}

// The Grafana panel reads the outcomes the rollup job keeps, but for the
// OTPs touched since its last run, as /api/v1/resends does (its figures,
// per group, are the API's in every state: TestAnalytics compares them over
// simulated traffic, where the job never runs): before the job (every
// outcome from the facts), after it, with a kept row written over (read
// by both), and with that OTP touched since (computed by both).
func TestResendsPanelReadsKeptOutcomes(t *testing.T) {
	noSlack(t)
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		t0, otp := insertResends(t, db)
		from, to := t0.Add(-time.Hour), t0.Add(3*time.Hour)
		// The panel allows every deployment's slack, a cluster's 5 minutes
		// (store.RollupSlack), where the API allows its own, here none: the
		// panel then computes more decisions from the facts, which tells
		// only over a kept row written over. Here both allow none.
		sql := resendsPanel(t, from, to)
		if n := strings.Count(sql, "toInt64(job_version) - 300000"); n != 4 {
			t.Fatalf("the panel names the slack %d times; want 4 (the kept rows less the touched OTPs; the decisions, their days and deliveries of those)", n)
		}
		sql = strings.ReplaceAll(sql, "toInt64(job_version) - 300000", "toInt64(job_version) - 0")
		panel := func() []store.ResendGroup {
			t.Helper()
			rows, err := db.Conn().Query(t.Context(), sql)
			if err != nil {
				t.Fatalf("the panel's query: %v", err)
			}
			defer rows.Close()
			var out []store.ResendGroup
			for rows.Next() {
				var g store.ResendGroup
				if err := rows.Scan(&g.Result, &g.TriggerChannel, &g.TriggerStatus, &g.Via, &g.Decisions, &g.DeliveredVia, &g.DeliveredOtherwise, &g.NotDelivered, &g.DeliverAfterMS); err != nil {
					t.Fatal(err)
				}
				out = append(out, g)
			}
			return out
		}
		same := func(when string) []store.ResendGroup {
			t.Helper()
			api, err := db.Resends(t.Context(), store.ResendFilter{From: from, To: to})
			if err != nil {
				t.Fatal(err)
			}
			got := panel()
			a, _ := json.Marshal(api.Groups)
			g, _ := json.Marshal(got)
			if len(got) == 0 || string(a) != string(g) {
				t.Errorf("%s: the panel\n%s\nthe API\n%s", when, g, a)
			}
			return got
		}
		notDelivered := func(groups []store.ResendGroup) (n uint64) {
			for _, g := range groups {
				n += g.NotDelivered
			}
			return n
		}

		before := same("before the job")
		if _, err := db.RefreshRollups(t.Context()); err != nil {
			t.Fatal(err)
		}
		same("after the job")

		// OTP 1's decision (delivered via VOICE) kept as not delivered.
		if err := db.Conn().Exec(t.Context(), `INSERT INTO resend_outcomes SELECT version + 1, decided_at, decision_id, otp_id, profile_id, result, reason, via,
  trigger_channel, trigger_status, attempt, dry_run, 'not_delivered', first_at, first_channel FROM resend_outcomes FINAL WHERE otp_id = ?`, otp(1)); err != nil {
			t.Fatal(err)
		}
		if got := same("a kept row written over"); notDelivered(got) != notDelivered(before)+1 {
			t.Errorf("the panel over a kept row written over: %d not delivered; want %d (the kept row read)", notDelivered(got), notDelivered(before)+1)
		}

		// OTP 1 touched since (its failure stored again): its decision is
		// computed from its facts, its delivery read, the row written over
		// not.
		again := store.Batch{Deliveries: []store.DeliveryRow{resendFact(1, events.ChannelSMS, events.StatusUndeliverable, 5*time.Second, 200)}}
		if err := db.Insert(t.Context(), &again); err != nil {
			t.Fatal(err)
		}
		if got := same("that OTP touched since"); notDelivered(got) != notDelivered(before) {
			t.Errorf("the panel with the OTP touched: %d not delivered; want %d (computed from the facts)", notDelivered(got), notDelivered(before))
		}
	})
}
