package store

import (
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
// rate's, which concern every channel); State to those firing or resolved;
// Limit bounds them, 1,000 when 0.
type AlertFilter struct {
	From, To time.Time
	Channel  string
	State    string
	Limit    int
}

// Alerts lists the alerts f selects, newest first.
func (db *DB) Alerts(ctx context.Context, f AlertFilter) ([]AlertRecord, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 1000
	}
	q := fmt.Sprintf(`SELECT event_id, rule, channel, state, since, window_from, evaluated_at, value, threshold, volume, summary
	FROM alerts FINAL WHERE evaluated_at >= %s AND evaluated_at < %s`, msTime(f.From), msTime(f.To))
	var args []any
	if f.Channel != "" {
		q, args = q+" AND channel IN (?, '')", append(args, f.Channel)
	}
	if f.State != "" {
		q, args = q+" AND state = ?", append(args, f.State)
	}
	q += fmt.Sprintf(" ORDER BY evaluated_at DESC, rule, channel LIMIT %d", limit)
	out := []AlertRecord{}
	err := db.eachRow(ctx, "alerts", q, args, func(rows driver.Rows) error {
		var r AlertRecord
		if err := rows.Scan(&r.ID, &r.Rule, &r.Channel, &r.State, &r.Since, &r.From, &r.To, &r.Value, &r.Threshold, &r.Volume, &r.Summary); err != nil {
			return err
		}
		r.Since, r.From, r.To = r.Since.UTC(), r.From.UTC(), r.To.UTC()
		out = append(out, r)
		return nil
	})
	return out, err
}
