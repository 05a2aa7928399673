package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// What became of each resend decision's OTP is kept as the facts arrive
// (schema 0022): the rollup job computes the outcome of every decision
// whose OTP was touched since its last run into resend_outcomes, and a
// read takes those rows but for the OTPs touched since, computed from
// their facts. So /api/v1/resends reads a row per decision of its window,
// whatever its length, and answers what computing every decision from the
// facts would (docs/analytics.md, "Resends").

// resendOutcomeChunk bounds the decisions one statement computes when the
// job computes all of them (its first run, or after a pause).
const resendOutcomeChunk = 7 * 24 * time.Hour

// resendTouch is the OTPs whose decisions a read (or the job's run)
// computes from their facts, as its queries name them (resendsTouched).
type resendTouch struct {
	// all: every decision, none of the kept outcomes is read.
	all bool
	// set follows IN: the touchedAlias of a list of ids, defined by with,
	// which then starts every query that names it; or a subquery.
	set, with string
	// days, with a list, is the days of their decisions' facts as a
	// condition on day (their decisions' days and those either side).
	days string
	// decisions, with a list, is how many rows of decisions the touched
	// OTPs have (copies of a decision included): at least how many
	// decisions a read computes.
	decisions uint64
}

// noDecisionDays is resendTouch.days when no touched OTP has a decision: no
// day, no facts to read, no outcome to compute.
const noDecisionDays = "0"

// keptOnly is the resendTouch of a read that computes no outcome: none
// touched, the kept outcomes read as the job left them.
var keptOnly = resendTouch{set: touchedAlias, with: withTouched(noOTP), days: noDecisionDays}

// resendsKeptSince is since when the kept outcomes leave facts out: the
// job's last recorded run less the slack (zero: it never ran).
func (db *DB) resendsKeptSince(ctx context.Context) (time.Time, error) {
	var version uint64
	if err := db.conn.QueryRow(ctx, "SELECT max(version) FROM resend_outcome_runs").Scan(&version); err != nil {
		return time.Time{}, fmt.Errorf("resend outcomes: last run: %w", err)
	}
	if version == 0 {
		return time.Time{}, nil
	}
	return time.UnixMilli(int64(version) - db.slack().Milliseconds()), nil
}

// resendsTouched is how a read at now (or the job's run) gets the
// decisions' outcomes: the OTPs touched since the job's last recorded run
// less the slack, whose decisions are computed from their facts while the
// others' stored rows are read; or all, to compute every decision, when no
// run is recent enough for rollup_touched to hold what was touched since
// (patchAge), or the touched rows are more than maxTouchedSet (a bulk
// insert: then the set costs more than the facts).
//
// Up to maxTouchedList OTPs (a reader's fewer) are named as a list, with
// the days of their decisions, both read here once: the queries that
// compute their outcomes then name constants instead of subqueries over
// rollup_touched and the decisions, which ClickHouse took as long to plan
// as to run (at 111 M events, 239 OTPs: 58 ms of planning in an 88 ms
// query, against 23 of 45 with the constants). More are named by a
// subquery.
func (db *DB) resendsTouched(ctx context.Context, now time.Time) (resendTouch, error) {
	all := resendTouch{all: true}
	maxList := db.maxTouchedList()
	slack := db.slack().Milliseconds()
	q := fmt.Sprintf(`WITH (SELECT max(version) FROM resend_outcome_runs) AS v
SELECT v, count(), groupUniqArray(%d)(toString(otp_id)) FROM rollup_touched WHERE v > 0 AND inserted_at >= fromUnixTimestamp64Milli(toInt64(v) - %d, 'UTC')`, maxList+1, slack)
	var version, touched uint64
	var ids []string
	if err := db.conn.QueryRow(ctx, q).Scan(&version, &touched, &ids); err != nil {
		return all, fmt.Errorf("resend outcomes: last run: %w", err)
	}
	since := time.UnixMilli(int64(version) - slack)
	if version == 0 || !since.After(now.Add(-patchAge)) || touched > uint64(maxTouchedSet) {
		return all, nil
	}
	if len(ids) > maxList {
		return resendTouch{set: "(SELECT otp_id FROM rollup_touched WHERE inserted_at >= " + msTime(since) + ")"}, nil
	}
	if len(ids) == 0 {
		ids = []string{noOTP}
	}
	t := resendTouch{set: touchedAlias, with: withTouched(strings.Join(ids, ","))}
	var days []time.Time
	q = t.with + "SELECT groupUniqArrayArray(" + decisionFactDays + "), count() FROM resends WHERE otp_id IN " + t.set
	if err := db.conn.QueryRow(longQuery(ctx, len(t.with)), q).Scan(&days, &t.decisions); err != nil {
		return all, fmt.Errorf("resend outcomes: days: %w", err)
	}
	t.days = noDecisionDays
	if len(days) > 0 {
		slices.SortFunc(days, time.Time.Compare)
		quoted := make([]string, len(days))
		for i, d := range days {
			quoted[i] = "'" + d.Format(time.DateOnly) + "'"
		}
		t.days = "day IN (" + strings.Join(quoted, ", ") + ")"
	}
	return t, nil
}

// decisionsSQL is one row per decision of the filter's window (or the
// newest of them, when newest > 0) with its outcome (resendCols): stored,
// but for the touched OTPs (resendsTouched), or, when touched.all, every
// one computed from the facts. A query of it starts with touched.with.
func decisionsSQL(f ResendFilter, touched resendTouch, newest int) (string, []any) {
	live, largs := resendDecisionsSQL(f, touched, newest)
	if touched.all {
		return live, largs
	}
	where, args := f.where()
	stored := "SELECT " + resendCols + " FROM resend_outcomes FINAL WHERE " + where + " AND otp_id NOT IN " + touched.set
	if newest > 0 {
		stored += newestResends(newest)
	}
	q := "SELECT * FROM (" + stored + ")\nUNION ALL\nSELECT * FROM (" + live + ")"
	if newest > 0 {
		q = "SELECT * FROM (" + q + ")" + newestResends(newest)
	}
	return q, append(args, largs...)
}

// refreshResendOutcomes computes under version the outcome of every
// decision whose OTP was touched since the last recorded run (less the
// slack) — or of every decision, a week of them at a time, when
// resendsTouched says so — then records the run. It returns how many
// decisions it computed.
func (db *DB) refreshResendOutcomes(ctx context.Context, version uint64) (int, error) {
	touched, err := db.resendsTouched(ctx, time.UnixMilli(int64(version)))
	if err != nil {
		return 0, err
	}
	ctx = longQuery(ctx, len(touched.with))
	// How many decisions it computes is counted in resends, by its key
	// when touched, rather than in resend_outcomes, which has no key to
	// find a version by and grows with the history.
	counted := touched.with + "SELECT min(decided_at), max(decided_at), uniqExact(otp_id, decision_id) FROM resends"
	if !touched.all {
		counted += " WHERE otp_id IN " + touched.set
	}
	var first, last time.Time
	var computed uint64
	if err := db.conn.QueryRow(ctx, counted).Scan(&first, &last, &computed); err != nil {
		return 0, fmt.Errorf("resend outcomes: decisions: %w", err)
	}
	filters := []ResendFilter{{}}
	if touched.all {
		filters = nil
		for from := first.UTC().Truncate(time.Hour); computed > 0 && !from.After(last); from = from.Add(resendOutcomeChunk) {
			filters = append(filters, ResendFilter{From: from, To: from.Add(resendOutcomeChunk)})
		}
	}
	for _, f := range filters {
		q, args := resendDecisionsSQL(f, touched, 0)
		stmt := fmt.Sprintf("INSERT INTO resend_outcomes (version, %[1]s) %[3]sSELECT %[2]d, %[1]s FROM (%[4]s)", resendCols, version, touched.with, q)
		if err := db.conn.Exec(ctx, stmt, args...); err != nil {
			return 0, fmt.Errorf("resend outcomes: %w", err)
		}
	}
	if err := db.conn.Exec(ctx, fmt.Sprintf("INSERT INTO resend_outcome_runs (version, decisions) VALUES (%d, %d)", version, computed)); err != nil {
		return 0, fmt.Errorf("resend outcomes: record the run: %w", err)
	}
	return int(computed), nil
}
