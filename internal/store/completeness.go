package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// SettleTime is how long after its first event an attempt may stay pending
// without anything being wrong: tyntec settles an attempt within its
// channel's timeout (minutes), and the poller reconciles a lost webhook
// within its settle wait (90 s by default) after that. An attempt pending
// for longer awaits reconciliation.
const SettleTime = 15 * time.Minute

// Completeness says how much of an answer is still moving: the attempts of
// its window (or journey) that have not settled. Figures with Pending > 0
// are not final: a pending attempt may still be delivered or fail.
type Completeness struct {
	// Pending counts the attempts with no DELIVERED, UNDELIVERABLE or
	// TIMED_OUT yet.
	Pending uint64 `json:"pending"`
	// AwaitingReconciliation counts the pending attempts whose first event
	// is more than SettleTime old, but the unrecoverable ones: their outcome
	// is overdue, most likely a lost webhook the poller has yet to recover
	// (or never will: an attempt of an hour that ended SettleTime ago and
	// is still pending counts here too, until the poller says so).
	AwaitingReconciliation uint64 `json:"awaiting_reconciliation"`
	// Unrecoverable counts the pending attempts whose lost outcome the
	// poller declared unrecoverable (lostPending): they stay pending for
	// good. With Pending equal to it nothing can still settle.
	Unrecoverable uint64 `json:"unrecoverable"`
	// SettledUntil is the first event of the earliest pending attempt:
	// every attempt starting before it has settled. Null when nothing is
	// pending.
	SettledUntil *time.Time `json:"settled_until"`
	// Final is true when nothing is pending. (Its meaning is the published
	// Report.v1's: an answer whose pending attempts are all Unrecoverable
	// stays not final, and says so by the two counts.)
	Final bool `json:"final"`
}

func (c *Completeness) add(pending, overdue uint64, first *time.Time) {
	c.Pending += pending
	c.AwaitingReconciliation += overdue
	if first != nil && (c.SettledUntil == nil || first.Before(*c.SettledUntil)) {
		t := first.UTC()
		c.SettledUntil = &t
	}
	c.Final = c.Pending == 0
}

// lose counts lost of the pending attempts (overdue of them overdue) as
// unrecoverable.
func (c *Completeness) lose(lost, overdue uint64) {
	c.Unrecoverable += lost
	c.AwaitingReconciliation -= min(overdue, c.AwaitingReconciliation)
}

// Completeness returns the completeness of w's attempts (with w's profile
// and channel filters) as of now.
func (db *DB) Completeness(ctx context.Context, w Window, now time.Time) (Completeness, error) {
	c, err := db.pending(ctx, w, now)
	if err != nil || c.Pending == 0 {
		return c, err
	}
	lost, overdue, err := db.lostPending(ctx, w, now)
	c.lose(lost, overdue)
	return c, err
}

// lostPending counts, of w's pending attempts, those the poller declared
// unrecoverable — a reconciliations row with result 'unrecoverable', the
// attempt's OTP, channel and dispatch (poller.Record.gaps) — and of them
// the overdue ones. The table holds only lost webhooks: a first query
// counts its rows in w's range, and only when it has some are those OTPs'
// attempts computed from their facts, so that an attempt a late webhook
// settled after all is not counted. A lost attempt whose channel is not
// known (every webhook of the OTP lost) is no attempt of the store's.
func (db *DB) lostPending(ctx context.Context, w Window, now time.Time) (lost, overdue uint64, err error) {
	var ranges []string
	for _, iv := range w.intervals() {
		ranges = append(ranges, fmt.Sprintf("(since >= %s AND since < %s)", msTime(iv.from.Add(-MaxAttemptSpan)), msTime(iv.to.Add(MaxAttemptSpan))))
	}
	recs := "SELECT otp_id, toString(channel) AS ch, since FROM reconciliations WHERE result = 'unrecoverable' AND channel != '' AND (" + strings.Join(ranges, " OR ") + ")"
	var n uint64
	if err := db.conn.QueryRow(ctx, "SELECT count() FROM ("+recs+")").Scan(&n); err != nil || n == 0 {
		if err != nil {
			err = fmt.Errorf("query unrecoverable attempts: %w", err)
		}
		return 0, 0, err
	}
	lw := w
	lw.stored, lw.patched, lw.otps = nil, false, "(SELECT otp_id FROM ("+recs+"))"
	sub, args := lw.channelAttemptsSQL()
	q := fmt.Sprintf(`SELECT countIf(pending), countIf(pending AND a_first < %s)
FROM (SELECT otp_id, channel, a_first, a_dispatched, `+pendingSQL+` AS pending FROM (%s))
WHERE a_dispatched IS NOT NULL AND (otp_id, channel, assumeNotNull(a_dispatched)) IN (SELECT otp_id, ch, since FROM (%s))`, msTime(now.Add(-SettleTime)), sub, recs)
	if err := db.conn.QueryRow(ctx, q, args...).Scan(&lost, &overdue); err != nil {
		return 0, 0, fmt.Errorf("query unrecoverable attempts: %w", err)
	}
	return lost, overdue, nil
}

// pending is Completeness but for the unrecoverable attempts.
func (db *DB) pending(ctx context.Context, w Window, now time.Time) (Completeness, error) {
	rolled := func(ctx context.Context, w Window, p plan) (Completeness, error) {
		// The pending attempts of a rolled-up hour that ended SettleTime
		// ago are all overdue; the later hours are counted from their rows.
		c := Completeness{Final: true}
		var old, recent []rolledHour
		for _, h := range p.hours {
			if h.hour.Add(time.Hour).After(now.Add(-SettleTime)) {
				recent = append(recent, h)
			} else {
				old = append(old, h)
			}
		}
		if len(old) > 0 {
			where, args := plan{hours: old}.where(w, "channel")
			var pending uint64
			var first *time.Time
			q := "SELECT toUInt64(greatest(0, sum(attempts) - sum(delivered) - sum(failed))), min(pending_first) FROM hourly_attempts WHERE " + where
			if err := db.conn.QueryRow(ctx, q, args...).Scan(&pending, &first); err != nil {
				return c, fmt.Errorf("query completeness: %w", err)
			}
			c.add(pending, pending, first)
		}
		subs := p.live
		if len(recent) > 0 {
			rw := w
			rw.spans, rw.stored = nil, recent
			for _, h := range recent {
				rw.spans = append(rw.spans, span{h.hour, h.hour.Add(time.Hour)})
			}
			subs = append(subs, rw)
		}
		for _, lw := range subs {
			if firsts, ok := notedPending(ctx, lw); ok {
				// Read already, with the same attempts' channel rows.
				lc := pendingCompleteness(firsts, now)
				c.add(lc.Pending, lc.AwaitingReconciliation, lc.SettledUntil)
				continue
			}
			lc, err := db.completenessLive(ctx, lw, now)
			if err != nil {
				return c, err
			}
			c.add(lc.Pending, lc.AwaitingReconciliation, lc.SettledUntil)
		}
		return c, nil
	}
	return fromRollups(ctx, db, w, rolled, func(ctx context.Context, w Window) (Completeness, error) {
		return db.completenessLive(ctx, w, now)
	})
}

func (db *DB) completenessLive(ctx context.Context, w Window, now time.Time) (Completeness, error) {
	c := Completeness{Final: true}
	sub, args := w.channelAttemptsSQL()
	q := fmt.Sprintf(`SELECT countIf(pending), countIf(pending AND a_first < %s), minOrNullIf(a_first, pending)
FROM (SELECT a_first, `+pendingSQL+` AS pending FROM (%s))`, msTime(now.Add(-SettleTime)), sub)
	var pending, overdue uint64
	var first *time.Time
	if err := db.conn.QueryRow(ctx, q, args...).Scan(&pending, &overdue, &first); err != nil {
		return c, fmt.Errorf("query completeness: %w", err)
	}
	c.add(pending, overdue, first)
	return c, nil
}

// journeyCompleteness is the completeness of one journey's attempts
// (their Unrecoverable marked: markUnrecoverable).
func journeyCompleteness(as []AttemptDetail, now time.Time) Completeness {
	var firsts, lost []time.Time
	for _, a := range as {
		if a.Outcome != AttemptPending {
			continue
		}
		firsts = append(firsts, a.FirstAt)
		if a.Unrecoverable {
			lost = append(lost, a.FirstAt)
		}
	}
	c, l := pendingCompleteness(firsts, now), pendingCompleteness(lost, now)
	c.lose(l.Pending, l.AwaitingReconciliation)
	return c
}

// markUnrecoverable marks the pending attempts of one OTP that the poller
// declared unrecoverable, as lostPending matches them: channel and
// dispatch.
func (db *DB) markUnrecoverable(ctx context.Context, otpID string, as []AttemptDetail) error {
	lost := map[string]bool{}
	err := db.eachRow(ctx, "unrecoverable attempts", "SELECT toString(channel), toUnixTimestamp64Milli(since) FROM reconciliations WHERE otp_id = toUUID(?) AND result = 'unrecoverable'", []any{otpID}, func(rows driver.Rows) error {
		var ch string
		var ms int64
		if err := rows.Scan(&ch, &ms); err != nil {
			return err
		}
		lost[fmt.Sprint(ch, ms)] = true
		return nil
	})
	for i, a := range as {
		if a.Outcome == AttemptPending && a.DispatchedAt != nil {
			as[i].Unrecoverable = lost[fmt.Sprint(a.Channel, a.DispatchedAt.UnixMilli())]
		}
	}
	return err
}

// pendingCompleteness is the completeness of pending attempts given their
// first facts, as completenessLive counts them (to the millisecond, as
// msTime writes its limit).
func pendingCompleteness(firsts []time.Time, now time.Time) Completeness {
	c := Completeness{Final: true}
	limit := time.UnixMilli(now.Add(-SettleTime).UnixMilli())
	for _, first := range firsts {
		var overdue uint64
		if first.Before(limit) {
			overdue = 1
		}
		c.add(1, overdue, &first)
	}
	return c
}
