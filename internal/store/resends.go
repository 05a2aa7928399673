package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"golang.org/x/sync/errgroup"
)

// What became of an OTP after a resend decision (docs/analytics.md,
// "Resends"), from the OTP's own delivery facts as stored now.
const (
	// ResendDeliveredVia: DELIVERED on the decision's via channel at or
	// after the decision; for a resend sent, the resend delivered.
	ResendDeliveredVia = "delivered_via"
	// ResendDeliveredOtherwise: delivered, but not so: on another channel,
	// or on via before the decision. For a dry-run, a resend that would
	// have been spent on an OTP delivered all the same.
	ResendDeliveredOtherwise = "delivered_otherwise"
	// ResendNotDelivered: no DELIVERED fact of the OTP.
	ResendNotDelivered = "not_delivered"
)

// ResendFilter selects resend decisions by when they were made.
type ResendFilter struct {
	From, To time.Time // decided_at, From inclusive, To exclusive
	// Profile keeps the decisions of one tyntec profile ID; Channel those a
	// failure on that channel triggered.
	Profile, Channel string
	// Latest is how many of the newest decisions to list: 0 means
	// DefaultResendsListed, a negative number none (the groups alone), and
	// at most MaxResendsListed are.
	Latest int
	// MaxLag is how far behind the answer may be, as Window.MaxLag: when
	// the rollup job kept the outcomes at most that long ago, they are read
	// as it left them, the decisions and facts stored since not counted.
	MaxLag time.Duration
}

// Bounds of the decisions a report lists one by one.
const (
	DefaultResendsListed = 100
	MaxResendsListed     = 1000
)

// ResendGroup counts the decisions of one result, trigger and via, and
// what became of their OTPs.
type ResendGroup struct {
	Result             string `json:"result"`
	TriggerChannel     string `json:"trigger_channel"`
	TriggerStatus      string `json:"trigger_status"`
	Via                string `json:"via"`
	Decisions          uint64 `json:"decisions"`
	DeliveredVia       uint64 `json:"delivered_via"`
	DeliveredOtherwise uint64 `json:"delivered_otherwise"`
	NotDelivered       uint64 `json:"not_delivered"`
	// DeliverAfterMS is the median time from the decision to the first
	// DELIVERED on via after it, over the decisions delivered_via; nil
	// when none was.
	DeliverAfterMS *int64 `json:"deliver_after_ms"`
}

// ResendDecision is one decision and what became of its OTP.
type ResendDecision struct {
	ResendRecord
	OTPID   string `json:"otp_id"`
	Outcome string `json:"outcome"`
	// DeliveredChannel and DeliveredAt: the delivery the outcome names
	// (the first on via after the decision, else the OTP's first).
	DeliveredChannel string     `json:"delivered_channel,omitempty"`
	DeliveredAt      *time.Time `json:"delivered_at"`
}

// ResendReport is what the resend policy decided in a window.
type ResendReport struct {
	Decisions uint64           `json:"decisions"`
	Groups    []ResendGroup    `json:"groups"`
	Latest    []ResendDecision `json:"latest"`
}

// where is the filter's condition on resends (and on resend_outcomes,
// which has the same columns): decided in the window, unless the window
// is zero (every decision), and of the profile and trigger channel.
func (f ResendFilter) where() (string, []any) {
	where := "1"
	if !f.From.IsZero() || !f.To.IsZero() {
		where = fmt.Sprintf("decided_at >= %s AND decided_at < %s", msTime(f.From), msTime(f.To))
	}
	var args []any
	if f.Profile != "" {
		where, args = where+" AND profile_id = ?", append(args, f.Profile)
	}
	if f.Channel != "" {
		where, args = where+" AND trigger_channel = ?", append(args, f.Channel)
	}
	return where, args
}

// resendCols are the columns of one decision with its outcome, computed
// (resendDecisionsSQL) or stored (resend_outcomes): first_at and
// first_channel are the delivery the outcome names, the first on via
// after the decision, else the OTP's first (the epoch and "" when none).
const resendCols = "otp_id, decision_id, profile_id, result, reason, via, trigger_channel, trigger_status, attempt, dry_run, decided_at, outcome, first_at, first_channel"

// newestResends orders decisions newest first and keeps n of them.
func newestResends(n int) string {
	return fmt.Sprintf("\n  ORDER BY decided_at DESC, decision_id LIMIT %d", n)
}

// decisionFactDays is, for a decision (a row with decided_at), the days of
// the channel_deliveries rows its outcome reads: its own and those either
// side; decisionFactDaysSQL the same one row each.
const (
	decisionFactDays    = "[toDate(decided_at) - 1, toDate(decided_at), toDate(decided_at) + 1]"
	decisionFactDaysSQL = "arrayJoin(" + decisionFactDays + ")"
)

// resendDecisionsSQL computes the outcome of each decision of the filter's
// window (or the newest of them, when newest > 0), of the touched OTPs
// unless touched.all, from the facts (resendCols); a query naming
// touched.set starts with touched.with. A decision is audited once (the
// poller claims it in NATS), so the rows of a decision_id are copies of
// one record. Its outcome reads its OTP's DELIVERED facts within a day of
// the decision's day (channel_events' day, as a window's attempts read a
// day around the window: docs/analytics.md, "Windows"), so it is the same
// whatever window asks. The facts come from
// channel_deliveries (schema 0023), channel_events' DELIVERED facts with
// their rows' days, by day and then otp_id, its key, in granules of 256
// rows: the OTPs of a few hundred recent decisions hit most granules of
// their days, and in channel_events each holds 8,192 rows of every fact
// (delivery_events, keyed by otp_id alone, made the OTPs of an hour's
// decisions a scan of every part: 3 s at 111 M events).
func resendDecisionsSQL(f ResendFilter, touched resendTouch, newest int) (string, []any) {
	where, args := f.where()
	// The days of the decisions' facts: the window's, a range, which costs
	// nothing to plan; for the touched OTPs (mostly today's) only their
	// decisions' days, since a few thousand OTPs would hit every granule of
	// every day of a long window.
	var days []string
	if !f.From.IsZero() || !f.To.IsZero() {
		days = append(days, fmt.Sprintf("day >= toDate(%s) - 1 AND day <= toDate(%s) + 1", msTime(f.From), msTime(f.To)))
	}
	factOTPs := "otp_id IN (SELECT otp_id FROM d)"
	if !touched.all {
		where += " AND otp_id IN " + touched.set
		if touched.days != "" {
			days, factOTPs = append(days, touched.days), "otp_id IN "+touched.set
		} else {
			days = append(days, "day IN (SELECT "+decisionFactDaysSQL+" FROM d)")
		}
	}
	decisions := `SELECT otp_id, decision_id, any(profile_id) AS profile_id, any(result) AS result, any(reason) AS reason, any(via) AS via,
    any(trigger_channel) AS trigger_channel, any(trigger_status) AS trigger_status,
    any(attempt) AS attempt, any(dry_run) AS dry_run, min(decided_at) AS decided_at
  FROM (SELECT * FROM resends WHERE ` + where + `)
  GROUP BY otp_id, decision_id`
	if newest > 0 {
		decisions += newestResends(newest)
	}
	q := `WITH d AS (` + decisions + `)
SELECT ` + resendCols + ` FROM (
SELECT d.otp_id AS otp_id, decision_id, profile_id, result, reason, via, trigger_channel, trigger_status, attempt, dry_run, decided_at,
  arrayFilter(x -> x.3 >= toDate(decided_at) - 1 AND x.3 <= toDate(decided_at) + 1, f.facts) AS delivered,
  arrayFilter(x -> x.2 = via AND x.1 >= decided_at, delivered) AS via_after,
  multiIf(notEmpty(via_after), '` + ResendDeliveredVia + `', notEmpty(delivered), '` + ResendDeliveredOtherwise + `', '` + ResendNotDelivered + `') AS outcome,
  if(notEmpty(via_after), via_after[1], delivered[1]) AS first,
  first.1 AS first_at, first.2 AS first_channel
FROM d
LEFT JOIN (
  SELECT otp_id, arraySort(groupUniqArray((delivered_at, toString(channel), day))) AS facts
  FROM channel_deliveries
  WHERE ` + strings.Join(append(days, factOTPs), " AND ") + `
  GROUP BY otp_id
) AS f ON f.otp_id = d.otp_id)`
	return q, args
}

// Resends reports the resend decisions made in the filter's window: their
// count, per result, trigger and via what became of their OTPs, and the
// newest decisions one by one, the two read side by side. The outcomes are
// the rollup job's (resend_outcomes) but for the OTPs touched since its
// last run, computed from their facts, so the answer is what computing
// every decision from the facts would give (decisionsSQL).
//
// With f.MaxLag, and the job's last run less the slack within it, the
// kept outcomes alone are read: AsOf under ctx's PlanOnce says since when
// facts are left out.
func (db *DB) Resends(ctx context.Context, f ResendFilter) (ResendReport, error) {
	now := time.Now()
	if f.MaxLag > 0 {
		since, err := db.resendsKeptSince(ctx)
		if err != nil {
			return ResendReport{Groups: []ResendGroup{}, Latest: []ResendDecision{}}, err
		}
		if !since.IsZero() && !since.Before(now.Add(-f.MaxLag)) {
			noteAsOf(ctx, uint64(since.UnixMilli()))
			return db.resends(ctx, f, keptOnly)
		}
	}
	touched, err := db.resendsTouched(ctx, now)
	if err != nil {
		return ResendReport{Groups: []ResendGroup{}, Latest: []ResendDecision{}}, err
	}
	return db.resends(ctx, f, touched)
}

// ResendsFromFacts is Resends with every outcome computed from the facts,
// nothing kept read: what the kept outcomes must add up to (bench/analytics
// compares the two).
func (db *DB) ResendsFromFacts(ctx context.Context, f ResendFilter) (ResendReport, error) {
	return db.resends(ctx, f, resendTouch{all: true})
}

// resends is Resends with the OTPs whose outcomes are computed (touched:
// decisionsSQL). With every outcome computed, or the touched OTPs named by
// a subquery, the groups and the newest decisions are two queries side by
// side over decisionsSQL. With a list of touched OTPs, their decisions are
// computed once (resendsComputedOnce).
func (db *DB) resends(ctx context.Context, f ResendFilter, touched resendTouch) (ResendReport, error) {
	latest := min(cmp.Or(f.Latest, DefaultResendsListed), MaxResendsListed)
	ctx = longQuery(ctx, len(touched.with))
	if !touched.all && touched.with != "" {
		return db.resendsComputedOnce(ctx, f, touched, latest)
	}
	return db.resendsSideBySide(ctx, f, touched, latest)
}

// resendsSideBySide reads the groups and the newest decisions by two
// queries side by side, each over decisionsSQL.
func (db *DB) resendsSideBySide(ctx context.Context, f ResendFilter, touched resendTouch, latest int) (ResendReport, error) {
	out := ResendReport{Groups: []ResendGroup{}, Latest: []ResendDecision{}}
	decisions, args := decisionsSQL(f, touched, 0)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return db.resendGroups(gctx, &out, touched.with, decisions, args) })
	if latest > 0 {
		// The newest decisions' outcomes only: their OTPs' facts.
		newest, args := decisionsSQL(f, touched, latest)
		g.Go(func() error {
			return db.resendList(gctx, touched.with, newest, args, func(d ResendDecision) { out.Latest = append(out.Latest, d) })
		})
	}
	return out, g.Wait()
}

// resendsComputedOnce is resends with the touched OTPs named by a list:
// three queries side by side, the touched OTPs' decisions computed from
// the facts, the newest kept decisions and the kept outcomes' groups; then
// the computed decisions are added to the groups (keptGroup.add) and the
// newest listed are the newest of both. Two queries over decisionsSQL each
// computed them, side by side on the same cores (resendsSideBySide): at
// 111 M events with 2,500 OTPs touched, a 30-day read took ~260 ms that
// way; counting the groups over the kept outcomes and the computed ones
// carried as data in its text, after them, ~225 (the twenty-fifth
// session); this way 0.77-0.91 of that (bench/HISTORY.md, twenty-sixth).
func (db *DB) resendsComputedOnce(ctx context.Context, f ResendFilter, touched resendTouch, latest int) (ResendReport, error) {
	out := ResendReport{Groups: []ResendGroup{}, Latest: []ResendDecision{}}
	where, args := f.where()
	kept := "SELECT " + resendCols + " FROM resend_outcomes FINAL WHERE " + where + " AND otp_id NOT IN " + touched.set
	var computed, newest []ResendDecision
	var groups map[resendGroupKey]*keptGroup
	queries := []func(context.Context) error{func(ctx context.Context) (err error) {
		groups, err = db.keptGroups(ctx, touched.with, kept, args, touched.decisions)
		return err
	}}
	if latest > 0 {
		queries = append(queries, func(ctx context.Context) error {
			return db.resendList(ctx, touched.with, kept+newestResends(latest), args, func(d ResendDecision) { newest = append(newest, d) })
		})
	}
	// With no decision of a touched OTP (what a read right after the job
	// finds) nothing is computed.
	if touched.days != noDecisionDays {
		queries = append(queries, func(ctx context.Context) error {
			live, largs := resendDecisionsSQL(f, touched, 0)
			return db.resendList(ctx, touched.with, live, largs, func(d ResendDecision) { computed = append(computed, d) })
		})
	}
	if err := together(ctx, queries...); err != nil {
		return out, err
	}
	for _, d := range computed {
		k := resendGroupKey{d.Result, d.TriggerChannel, d.TriggerStatus, d.Via}
		g := groups[k]
		if g == nil {
			g = &keptGroup{ResendGroup: ResendGroup{Result: d.Result, TriggerChannel: d.TriggerChannel, TriggerStatus: d.TriggerStatus, Via: d.Via}}
			groups[k] = g
		}
		g.add(d)
	}
	for _, g := range groups {
		ms, ok := g.median()
		if !ok {
			// More computed decisions than the touched OTPs' rows counted
			// (decisions made since): the slice may not hold the median.
			return db.resendsSideBySide(ctx, f, touched, latest)
		}
		g.DeliverAfterMS = ms
		out.Decisions += g.Decisions
		out.Groups = append(out.Groups, g.ResendGroup)
	}
	slices.SortFunc(out.Groups, func(a, b ResendGroup) int {
		return cmp.Or(cmp.Compare(b.Decisions, a.Decisions), strings.Compare(a.Result, b.Result), strings.Compare(a.TriggerChannel, b.TriggerChannel),
			strings.Compare(a.TriggerStatus, b.TriggerStatus), strings.Compare(a.Via, b.Via))
	})
	newest = append(newest, computed...)
	slices.SortFunc(newest, func(a, b ResendDecision) int {
		return cmp.Or(b.DecidedAt.Compare(a.DecidedAt), strings.Compare(a.DecisionID, b.DecisionID))
	})
	out.Latest = append(out.Latest, newest[:min(max(latest, 0), len(newest))]...)
	return out, nil
}

type resendGroupKey struct{ result, triggerChannel, triggerStatus, via string }

// keptGroup is a group of kept outcomes (keptGroups) to which computed
// decisions are added. Its median time to deliver is exact without every
// kept time: of the n kept times, sorted, it holds those from index lo
// that extra more times can move the median among (keptGroups), and the
// added times (computed).
type keptGroup struct {
	ResendGroup
	n        int64
	lo       int64
	slice    []int64
	computed []int64
}

// add counts a computed decision in the group.
func (g *keptGroup) add(d ResendDecision) {
	g.Decisions++
	switch d.Outcome {
	case ResendDeliveredVia:
		g.DeliveredVia++
		g.computed = append(g.computed, d.DeliveredAt.UnixMilli()-d.DecidedAt.UnixMilli())
	case ResendDeliveredOtherwise:
		g.DeliveredOtherwise++
	default:
		g.NotDelivered++
	}
}

// median is the group's median time to deliver as quantileExact(0.5)
// gives it over all n+c times (the one at index (n+c)/2, sorted); nil
// when there is none. ok is false when the slice cannot tell: the element
// at that index is the one at index (n+c)/2-lo of the slice and the
// computed times sorted together provided the lo kept times below the
// slice all come before it (lo is 0, or at most (n+c)/2-c) and the kept
// times above it all after it (the slice ends at n-1, or at (n+c)/2 or
// later).
func (g *keptGroup) median() (ms *int64, ok bool) {
	c := int64(len(g.computed))
	if g.n+c == 0 {
		return nil, true
	}
	at, hi := (g.n+c)/2, g.lo+int64(len(g.slice))-1
	if g.lo > 0 && g.lo > at-c || hi != g.n-1 && hi < at {
		return nil, false
	}
	all := slices.Concat(g.slice, g.computed)
	slices.Sort(all)
	return &all[at-g.lo], true
}

// keptGroups counts the kept outcomes (kept: a subquery of resendCols,
// which with starts) per group, with the slice of each group's sorted
// times to deliver that any extra more times can move its median among:
// from index max(0, n/2-extra) to min(n-1, (n+extra)/2) of n.
func (db *DB) keptGroups(ctx context.Context, with, kept string, args []any, extra uint64) (map[resendGroupKey]*keptGroup, error) {
	q := with + fmt.Sprintf(`SELECT toString(result), toString(trigger_channel), toString(trigger_status), toString(via), count(),
  countIf(outcome = '%[1]s'), countIf(outcome = '%[2]s'), countIf(outcome = '%[3]s'),
  toInt64(length(arraySort(groupArrayIf(toUnixTimestamp64Milli(first_at) - toUnixTimestamp64Milli(decided_at), outcome = '%[1]s')) AS times)) AS n,
  greatest(0, intDiv(n, 2) - %[4]d) AS lo, arraySlice(times, lo + 1, least(n - 1, intDiv(n + %[4]d, 2)) - lo + 1)
FROM (%[5]s)
GROUP BY result, trigger_channel, trigger_status, via`, ResendDeliveredVia, ResendDeliveredOtherwise, ResendNotDelivered, extra, kept)
	out := map[resendGroupKey]*keptGroup{}
	err := db.eachRow(ctx, "resends", q, args, func(rows driver.Rows) error {
		var g keptGroup
		if err := rows.Scan(&g.Result, &g.TriggerChannel, &g.TriggerStatus, &g.Via, &g.Decisions, &g.DeliveredVia, &g.DeliveredOtherwise, &g.NotDelivered,
			&g.n, &g.lo, &g.slice); err != nil {
			return err
		}
		out[resendGroupKey{g.Result, g.TriggerChannel, g.TriggerStatus, g.Via}] = &g
		return nil
	})
	return out, err
}

// resendGroups adds to out the groups of decisions (a subquery with
// result, trigger_channel, trigger_status, via, outcome, first_at and
// decided_at), which with starts.
func (db *DB) resendGroups(ctx context.Context, out *ResendReport, with, decisions string, args []any) error {
	groups := with + `SELECT toString(result), toString(trigger_channel), toString(trigger_status), toString(via), count(),
  countIf(outcome = '` + ResendDeliveredVia + `'), countIf(outcome = '` + ResendDeliveredOtherwise + `'), countIf(outcome = '` + ResendNotDelivered + `'),
  if(countIf(outcome = '` + ResendDeliveredVia + `') = 0, NULL,
     toInt64(round(quantileExactIf(0.5)(toUnixTimestamp64Milli(first_at) - toUnixTimestamp64Milli(decided_at), outcome = '` + ResendDeliveredVia + `'))))
FROM (` + decisions + `)
GROUP BY result, trigger_channel, trigger_status, via
ORDER BY count() DESC, result, trigger_channel, trigger_status, via`
	return db.eachRow(ctx, "resends", groups, args, func(rows driver.Rows) error {
		var rg ResendGroup
		if err := rows.Scan(&rg.Result, &rg.TriggerChannel, &rg.TriggerStatus, &rg.Via, &rg.Decisions, &rg.DeliveredVia, &rg.DeliveredOtherwise, &rg.NotDelivered, &rg.DeliverAfterMS); err != nil {
			return err
		}
		out.Decisions += rg.Decisions
		out.Groups = append(out.Groups, rg)
		return nil
	})
}

// resendList hands each decision of decisions (a subquery of resendCols,
// which with starts) to add, newest first.
func (db *DB) resendList(ctx context.Context, with, decisions string, args []any, add func(ResendDecision)) error {
	list := with + fmt.Sprintf(`SELECT toString(otp_id), decision_id, toString(result), reason, toString(via), toString(trigger_channel), toString(trigger_status),
  attempt, dry_run, decided_at, toString(outcome), toString(first_channel), if(outcome = '%s', NULL, first_at)
FROM (%s)
ORDER BY decided_at DESC, decision_id`, ResendNotDelivered, decisions)
	return db.eachRow(ctx, "resends", list, args, func(rows driver.Rows) error {
		var d ResendDecision
		if err := rows.Scan(&d.OTPID, &d.DecisionID, &d.Result, &d.Reason, &d.Via, &d.TriggerChannel, &d.TriggerStatus,
			&d.Attempt, &d.DryRun, &d.DecidedAt, &d.Outcome, &d.DeliveredChannel, &d.DeliveredAt); err != nil {
			return err
		}
		d.DecidedAt = d.DecidedAt.UTC()
		if d.DeliveredAt != nil {
			*d.DeliveredAt = d.DeliveredAt.UTC()
		}
		add(d)
		return nil
	})
}
