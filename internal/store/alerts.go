package store

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/otpscope/otpscope/internal/events"
)

// AlertRecord is a stored alert, as published, with its message id.
type AlertRecord struct {
	ID string `json:"id"`
	events.Alert
}

// AlertFilter selects the alerts evaluated within [From, To). Channel
// narrows them to that channel's and those of no channel (the fallback
// rate's, which concern every channel), and with OrOther to OTHER's too
// (the channel is one the rules judge among those otpscope does not know);
// State to those firing or resolved; Limit bounds them, 1,000 when 0.
type AlertFilter struct {
	From, To time.Time
	Channel  string
	OrOther  bool
	State    string
	Limit    int
}

// where is the condition on the evaluations f selects by time and
// channel, and how many rows f lists.
func (f AlertFilter) where() (cond string, args []any, limit int) {
	cond = fmt.Sprintf("evaluated_at >= %s AND evaluated_at < %s", msTime(f.From), msTime(f.To))
	switch {
	case f.Channel != "" && f.OrOther:
		cond, args = cond+" AND channel IN (?, 'OTHER', '')", append(args, f.Channel)
	case f.Channel != "":
		cond, args = cond+" AND channel IN (?, '')", append(args, f.Channel)
	}
	return cond, args, cmp.Or(max(f.Limit, 0), 1000)
}

// Alerts lists the alerts f selects, newest first.
func (db *DB) Alerts(ctx context.Context, f AlertFilter) ([]AlertRecord, error) {
	where, args, limit := f.where()
	if f.State != "" {
		where, args = where+" AND state = ?", append(args, f.State)
	}
	q := fmt.Sprintf(`SELECT event_id, rule, channel, state, since, window_from, evaluated_at, value, threshold, volume, summary,
	before_from, before_to, before_value, before_volume, silenced_by
	FROM alerts FINAL WHERE %s ORDER BY evaluated_at DESC, rule, channel LIMIT %d`, where, limit)
	out := []AlertRecord{}
	err := db.eachRow(ctx, "alerts", q, args, func(rows driver.Rows) error {
		var r AlertRecord
		var b storedBefore
		if err := rows.Scan(&r.ID, &r.Rule, &r.Channel, &r.State, &r.Since, &r.From, &r.To, &r.Value, &r.Threshold, &r.Volume, &r.Summary,
			&b.from, &b.to, &b.value, &b.volume, &r.SilencedBy); err != nil {
			return err
		}
		r.Since, r.From, r.To, r.Before = r.Since.UTC(), r.From.UTC(), r.To.UTC(), b.alert()
		out = append(out, r)
		return nil
	})
	return out, err
}

// storedBefore is an alert's before as its columns hold it: none when
// before_from is NULL.
type storedBefore struct {
	from, to *time.Time
	value    *float64
	volume   uint64
}

func (b storedBefore) alert() *events.AlertBefore {
	if b.from == nil || b.to == nil {
		return nil
	}
	return &events.AlertBefore{From: b.from.UTC(), To: b.to.UTC(), Value: b.value, Volume: b.volume}
}

// AlertEpisode is one firing of a rule on a channel (its rule, channel and
// since), as the evaluations within a window tell it: its latest
// evaluation there (the resolution, once resolved), how many firing
// evaluations the window holds, and the worst value among them. Its
// SilencedBy is the silence of the latest evaluation a silence covered:
// empty when none in the window was.
type AlertEpisode struct {
	AlertRecord
	Evaluations uint64 `json:"evaluations"`
	// Worst is the firing evaluations' value furthest from the threshold
	// (the resolution's when the window holds no firing evaluation).
	Worst float64 `json:"worst"`
}

// AlertEpisodes lists the episodes whose evaluations f selects (State
// keeps those whose latest evaluation is in that state), the most
// recently evaluated first.
func (db *DB) AlertEpisodes(ctx context.Context, f AlertFilter) ([]AlertEpisode, error) {
	where, args, limit := f.where()
	// The latest evaluation: by time, a resolution before a firing of the
	// same moment. Its before in tuples: argMax skips the rows whose
	// argument is NULL, and would give a resolution its firing's.
	q := fmt.Sprintf(`SELECT argMax(event_id, latest_key), rule, channel, argMax(state, latest_key) AS latest_state, since,
  argMax(window_from, latest_key), max(evaluated_at) AS latest, argMax(value, latest_key), argMax(threshold, latest_key),
  argMax(volume, latest_key), argMax(summary, latest_key), countIf(state = '%s'),
  argMax(value, (state = '%s', abs(value - threshold))),
  argMax(tuple(before_from), latest_key).1, argMax(tuple(before_to), latest_key).1, argMax(tuple(before_value), latest_key).1,
  argMax(before_volume, latest_key), argMax(silenced_by, (silenced_by != '', latest_key))
FROM (SELECT *, (evaluated_at, state = '%s') AS latest_key FROM alerts FINAL WHERE %s)
GROUP BY rule, channel, since`, events.AlertFiring, events.AlertFiring, events.AlertResolved, where)
	if f.State != "" {
		q, args = q+" HAVING latest_state = ?", append(args, f.State)
	}
	q += fmt.Sprintf(" ORDER BY latest DESC, rule, channel LIMIT %d", limit)
	out := []AlertEpisode{}
	err := db.eachRow(ctx, "alert episodes", q, args, func(rows driver.Rows) error {
		var e AlertEpisode
		var b storedBefore
		if err := rows.Scan(&e.ID, &e.Rule, &e.Channel, &e.State, &e.Since, &e.From, &e.To, &e.Value, &e.Threshold, &e.Volume, &e.Summary, &e.Evaluations, &e.Worst,
			&b.from, &b.to, &b.value, &b.volume, &e.SilencedBy); err != nil {
			return err
		}
		e.Since, e.From, e.To, e.Before = e.Since.UTC(), e.From.UTC(), e.To.UTC(), b.alert()
		out = append(out, e)
		return nil
	})
	return out, err
}
