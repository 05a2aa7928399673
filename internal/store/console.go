package store

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// The reads behind the operator's console: figures over time (Timeseries) and
// the stored events, searchable and paged (Events).

// MaxBuckets bounds a Timeseries: more buckets than a chart has pixels help
// nobody and cost a query per pixel column.
const MaxBuckets = 1000

// MaxStep bounds a Timeseries' step: ten years, more than the default step
// of any window the API takes (2000 to ten years ahead, in 60 buckets), and
// little enough that the buckets' arithmetic from the epoch cannot overflow
// a time.Duration (292 years).
const MaxStep = 3660 * 24 * time.Hour

// ErrTooManyBuckets is returned by Timeseries for a step too small for its window.
var ErrTooManyBuckets = fmt.Errorf("more than %d buckets: choose a larger step", MaxBuckets)

// Series is one channel's figures per bucket; element i is the bucket
// starting at Timeseries.Start[i], computed exactly as Channels and Fallback
// compute the window [Start[i], Start[i]+Step). A rate or percentile is nil
// where nothing settled in the bucket.
type Series struct {
	Channel      string     `json:"channel"`
	Attempts     []uint64   `json:"attempts"`
	Delivered    []uint64   `json:"delivered"`
	Failed       []uint64   `json:"failed"`
	DeliveryRate []*float64 `json:"delivery_rate"`
	LatencyP50MS []*float64 `json:"latency_p50_ms"`
	LatencyP95MS []*float64 `json:"latency_p95_ms"`
	// OTPs, FallbackOTPs and FallbackRate are the journeys whose primary
	// channel this is.
	OTPs         []uint64   `json:"otps"`
	FallbackOTPs []uint64   `json:"fallback_otps"`
	FallbackRate []*float64 `json:"fallback_rate"`
}

// Timeseries is a window cut into buckets of Step, per channel (busiest first).
type Timeseries struct {
	Start []time.Time `json:"start"`
	Step  Duration    `json:"step_seconds"`
	// Zone is the time zone whose wall clock the buckets follow.
	Zone     string   `json:"tz"`
	Channels []Series `json:"channels"`
}

// Duration marshals as whole seconds.
type Duration time.Duration

// MarshalJSON writes d in seconds.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(strconv.FormatFloat(time.Duration(d).Seconds(), 'f', -1, 64)), nil
}

// MaxEventsLimit bounds one page of Events.
const MaxEventsLimit = 500

// EventFilter selects stored delivery events: those of [From, To) by their
// own time, with the given channel, status, profile, source and OTP where
// set, newest first, at most Limit (1..MaxEventsLimit; 0 is 100) after the
// cursor After (from a previous page's Next).
type EventFilter struct {
	From, To                                time.Time
	Channel, Status, Profile, Source, OTPID string
	After                                   string
	Limit                                   int
}

// EventRecord is one stored delivery event with its OTP.
type EventRecord struct {
	OTPID     string `json:"otp_id"`
	ProfileID string `json:"profile_id,omitempty"`
	Event
}

// EventPage is one page of Events; Next is the cursor of the following page,
// "" on the last.
type EventPage struct {
	Events []EventRecord `json:"events"`
	Next   string        `json:"next"`
}

// ErrBadCursor is returned by Events for a cursor it did not make.
var ErrBadCursor = errors.New("not a cursor from a previous page")

// eventCursor is the (time, id) of the last event of a page: the next page
// starts strictly after it in (event_time DESC, event_id DESC) order, so
// events arriving meanwhile neither repeat nor shift the pages.
func eventCursor(t time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(t.UnixMilli(), 10) + "," + id))
}

func parseEventCursor(s string) (time.Time, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return time.Time{}, "", ErrBadCursor
	}
	ms, id, ok := strings.Cut(string(b), ",")
	n, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil {
		return time.Time{}, "", ErrBadCursor
	}
	return time.UnixMilli(n).UTC(), id, nil
}

// Events returns one page of the events f selects, newest first.
func (db *DB) Events(ctx context.Context, f EventFilter) (EventPage, error) {
	page := EventPage{Events: []EventRecord{}}
	if err := (Window{From: f.From, To: f.To}).check(); err != nil {
		return page, err
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	if limit > MaxEventsLimit {
		return page, fmt.Errorf("limit %d is above %d", limit, MaxEventsLimit)
	}
	// The time range and cursor select rows in the by_time projection's
	// order; duplicates (same event_id, same time) are adjacent there and
	// the newest insert wins, as FINAL would have it; then the filters.
	upper := f.To
	var cursor string
	var cargs []any
	if f.After != "" {
		t, id, err := parseEventCursor(f.After)
		if err != nil {
			return page, err
		}
		cursor, cargs = fmt.Sprintf(" AND (event_time, event_id) < (%s, ?)", msTime(t)), []any{id}
		upper = minTime(upper, t.Add(time.Millisecond))
	}
	where := []string{"1"}
	var fargs []any
	for _, c := range []struct{ col, v string }{
		{"channel", strings.ToUpper(f.Channel)}, {"status", strings.ToUpper(f.Status)},
		{"profile_id", f.Profile}, {"source", f.Source},
	} {
		if c.v != "" {
			where, fargs = append(where, c.col+" = ?"), append(fargs, c.v)
		}
	}
	if f.OTPID != "" {
		where, fargs = append(where, "otp_id = toUUIDOrZero(?)"), append(fargs, f.OTPID)
	}
	// Newest first: the last hour before upper, then 4, 16, … times as
	// much, until a page is full or the range is whole. Everything outside
	// a range read is older than it, so a full page is the right one; most
	// pages read one hour, not the whole window.
	for span := time.Hour; ; span *= 4 {
		lo := maxTime(f.From, upper.Add(-span))
		q := fmt.Sprintf(`SELECT toString(otp_id), toString(profile_id), event_id, toString(channel), toString(status), event_time, received_at,
    toString(error_code), error_message, toString(source), missed_webhook, unknown_status, unknown_channel, timestamp_from_receipt
FROM (
    SELECT * FROM delivery_events
    WHERE event_time >= %s AND event_time < %s%s
    ORDER BY event_time DESC, event_id DESC, inserted_at DESC
    LIMIT 1 BY event_id
)
WHERE %s
LIMIT %d`, msTime(lo), msTime(f.To), cursor, strings.Join(where, " AND "), limit+1)
		page.Events = page.Events[:0]
		err := db.eachRow(ctx, "events", q, append(slices.Clone(cargs), fargs...), func(rows driver.Rows) error {
			var e EventRecord
			if err := rows.Scan(&e.OTPID, &e.ProfileID, &e.EventID, &e.Channel, &e.Status, &e.Time, &e.ReceivedAt,
				&e.ErrorCode, &e.ErrorMessage, &e.Source, &e.MissedWebhook, &e.UnknownStatus, &e.UnknownChannel, &e.TimeFromReceipt); err != nil {
				return err
			}
			page.Events = append(page.Events, e)
			return nil
		})
		if err != nil {
			return page, err
		}
		if len(page.Events) > limit || !lo.After(f.From) {
			break
		}
	}
	if len(page.Events) > limit {
		page.Events = page.Events[:limit]
		last := page.Events[limit-1]
		page.Next = eventCursor(last.Time, last.EventID)
	}
	return page, nil
}
