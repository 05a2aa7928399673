package store

import (
	"context"
	"fmt"
	"time"
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
	// is more than SettleTime old: their outcome is overdue, most likely a
	// lost webhook the poller has yet to recover (or never will: an attempt
	// of an hour that ended SettleTime ago and is still pending counts here too).
	AwaitingReconciliation uint64 `json:"awaiting_reconciliation"`
	// SettledUntil is the first event of the earliest pending attempt:
	// every attempt starting before it has settled. Null when nothing is
	// pending.
	SettledUntil *time.Time `json:"settled_until"`
	// Final is true when nothing is pending.
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

// Completeness returns the completeness of w's attempts (with w's profile
// and channel filters) as of now.
func (db *DB) Completeness(ctx context.Context, w Window, now time.Time) (Completeness, error) {
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

// journeyCompleteness is the completeness of one journey's attempts.
func journeyCompleteness(as []AttemptDetail, now time.Time) Completeness {
	var firsts []time.Time
	for _, a := range as {
		if a.Outcome == AttemptPending {
			firsts = append(firsts, a.FirstAt)
		}
	}
	return pendingCompleteness(firsts, now)
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
