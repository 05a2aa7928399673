package store

import (
	"encoding/json"
	"errors"
	"fmt"
	fastjson "github.com/segmentio/encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/otpscope/otpscope/internal/events"
)

// ErrPermanent marks a message that can never become a row (it does not parse,
// or names no table); the consumer dead-letters it instead of retrying.
var ErrPermanent = errors.New("message cannot be stored")

// ErrNoTable marks a subject that has no table (reports, tracking without a
// journey): acknowledged without a row.
var ErrNoTable = errors.New("no table for subject")

// Row types: the event as published, plus where it came from in the stream.
type (
	DeliveryRow struct {
		events.DeliveryStatus
		EventID string
		Seq     uint64
	}
	OTPStatusRow struct {
		events.OTPStatus
		EventID string
		Seq     uint64
	}
	V1EventRow struct {
		events.V1Event
		EventID string
		Seq     uint64
	}
	ResendRow struct {
		events.Resend
		EventID string
		Seq     uint64
	}
	DeadLetterRow struct {
		events.DeadLetter
		EventID string
		Seq     uint64
	}
	AlertRow struct {
		events.Alert
		EventID string
		Seq     uint64
	}
	ReconcileRow struct {
		events.Reconcile
		EventID string
		Seq     uint64
	}
	SilentRow struct {
		events.SilentOutcome
		EventID string
		Seq     uint64
	}
	PushRow struct {
		events.PushEvent
		EventID string
		Seq     uint64
	}
	// JourneyLinkRow puts an OTP into a login's journey: a /otps/track
	// registration with a correlationId. (Method attempts are linked by
	// views over their own tables.)
	JourneyLinkRow struct {
		OTPID     string
		JourneyID string
		Source    string
		LinkedAt  time.Time
		EventID   string
	}
)

// Batch collects rows for one insert per table.
type Batch struct {
	Deliveries  []DeliveryRow
	Statuses    []OTPStatusRow
	V1Events    []V1EventRow
	Resends     []ResendRow
	DeadLetters []DeadLetterRow
	Reconciles  []ReconcileRow
	Silent      []SilentRow
	Push        []PushRow
	Links       []JourneyLinkRow
	Alerts      []AlertRow
	bytes       int
}

// Len is the number of rows.
func (b *Batch) Len() int {
	return len(b.Deliveries) + len(b.Statuses) + len(b.V1Events) + len(b.Resends) + len(b.DeadLetters) + len(b.Reconciles) +
		len(b.Silent) + len(b.Push) + len(b.Links) + len(b.Alerts)
}

// Bytes is the size of the JSON the rows came from, a proxy for the insert's size.
func (b *Batch) Bytes() int { return b.bytes }

// Reset empties the batch, keeping its capacity.
func (b *Batch) Reset() {
	b.Deliveries, b.Statuses, b.V1Events = b.Deliveries[:0], b.Statuses[:0], b.V1Events[:0]
	b.Resends, b.DeadLetters, b.Reconciles, b.bytes = b.Resends[:0], b.DeadLetters[:0], b.Reconciles[:0], 0
	b.Silent, b.Push, b.Links, b.Alerts = b.Silent[:0], b.Push[:0], b.Links[:0], b.Alerts[:0]
}

// Add parses one message into a row of its table. id is the message id
// (Nats-Msg-Id), seq its stream sequence. Errors wrap ErrPermanent or ErrNoTable.
func (b *Batch) Add(subject, id string, data []byte, seq uint64) error {
	if id == "" {
		return fmt.Errorf("%w: %s message without Nats-Msg-Id", ErrPermanent, subject)
	}
	sub, err := events.ParseSubject(subject)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNoTable, err)
	}
	switch sub.Kind {
	case events.KindDelivery:
		r := DeliveryRow{EventID: id, Seq: seq}
		if err = decodeDelivery(data, &r.DeliveryStatus); err == nil {
			err = checkUUID(r.OTPID)
		}
		if err == nil && r.Timestamp.IsZero() {
			err = errors.New("no timestamp")
		}
		if err == nil && !r.ReceivedAt.IsZero() && !events.SaneTimestamp(r.Timestamp, r.ReceivedAt) {
			// Published by an older or a foreign publisher: a date ClickHouse
			// would wrap is stored at the receive time, marked, as ingest does.
			r.OriginalTimestamp = r.Timestamp.Format(time.RFC3339Nano)
			r.Timestamp, r.TimestampFromReceipt = r.ReceivedAt, true
		}
		if err == nil {
			b.Deliveries = append(b.Deliveries, r)
		}
	case events.KindOTPStatus:
		r := OTPStatusRow{EventID: id, Seq: seq}
		if err = decode(data, &r.OTPStatus); err == nil {
			err = checkUUID(r.OTPID)
		}
		if err == nil {
			b.Statuses = append(b.Statuses, r)
		}
	case events.KindV1Event:
		r := V1EventRow{EventID: id, Seq: seq}
		if err = decode(data, &r.V1Event); err == nil {
			err = checkUUID(r.OTPID)
		}
		if err == nil {
			b.V1Events = append(b.V1Events, r)
		}
	case events.KindResend:
		r := ResendRow{EventID: id, Seq: seq}
		if err = decode(data, &r.Resend); err == nil {
			err = checkUUID(r.OTPID)
		}
		if err == nil {
			b.Resends = append(b.Resends, r)
		}
	case events.KindReconcile:
		r := ReconcileRow{EventID: id, Seq: seq}
		if err = decode(data, &r.Reconcile); err == nil {
			err = checkUUID(r.OTPID)
		}
		if err == nil && r.Since.IsZero() {
			err = errors.New("no since")
		}
		if err == nil {
			b.Reconciles = append(b.Reconciles, r)
		}
	case events.KindSilent:
		r := SilentRow{EventID: id, Seq: seq}
		if err = decode(data, &r.SilentOutcome); err == nil {
			err = checkMethod(r.AttemptID, r.StartedAt, r.FinishedAt)
		}
		if err == nil {
			b.Silent = append(b.Silent, r)
		}
	case events.KindPush:
		r := PushRow{EventID: id, Seq: seq}
		if err = decode(data, &r.PushEvent); err == nil {
			err = checkMethod(r.UUID, r.CreatedAt, r.UpdatedAt)
		}
		if err == nil {
			b.Push = append(b.Push, r)
		}
	case events.KindTrack:
		var tr events.Track
		if err = decode(data, &tr); err == nil && tr.CorrelationID == "" {
			// Only a registration that joins a journey has a row.
			return fmt.Errorf("%w: %s without a correlationId", ErrNoTable, subject)
		}
		if err == nil {
			err = checkUUID(tr.OTPID)
		}
		if err == nil {
			b.Links = append(b.Links, JourneyLinkRow{OTPID: tr.OTPID, JourneyID: tr.CorrelationID, Source: "track", LinkedAt: tr.At, EventID: id})
		}
	case events.KindAlert:
		r := AlertRow{EventID: id, Seq: seq}
		if err = decode(data, &r.Alert); err == nil {
			err = checkAlert(&r.Alert, sub.Name)
		}
		if err == nil {
			b.Alerts = append(b.Alerts, r)
		}
	case events.KindDeadLetter:
		r := DeadLetterRow{EventID: id, Seq: seq}
		if err = decode(data, &r.DeadLetter); err == nil {
			b.DeadLetters = append(b.DeadLetters, r)
		}
	default:
		return fmt.Errorf("%w: %s", ErrNoTable, subject)
	}
	if err != nil {
		return fmt.Errorf("%w: %s message %s: %v", ErrPermanent, subject, id, err)
	}
	b.bytes += len(data)
	return nil
}

// decodeDelivery decodes a delivery event, the most of what the sink reads,
// with segmentio's decoder (a drop-in for encoding/json's, the one ingest's
// fast path uses; about four times faster, and JSON decoding was the sink's
// largest CPU cost). Whatever it refuses, encoding/json decides, so an error
// reads as it always did; FuzzDecodeDelivery holds the two to one answer.
func decodeDelivery(data []byte, ds *events.DeliveryStatus) error {
	if fastjson.Unmarshal(data, ds) == nil {
		return nil
	}
	*ds = events.DeliveryStatus{}
	return decode(data, ds)
}

func decode(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	return nil
}

func checkUUID(s string) error {
	if _, err := uuid.Parse(s); err != nil {
		return fmt.Errorf("otpId %q: %w", s, err)
	}
	return nil
}

// checkMethod checks what a method attempt's row cannot do without: its
// id and its two times, in order.
func checkMethod(id string, start, end time.Time) error {
	switch {
	case id == "":
		return errors.New("no attempt id")
	case start.IsZero() || end.IsZero():
		return errors.New("no start or end time")
	case end.Before(start):
		return errors.New("ends before it starts")
	}
	return nil
}

// checkAlert checks what an alert's row cannot do without: the rule its
// subject names, the window it was evaluated over, in order, and a known
// state. An alert published before states existed fired, and began when it
// was evaluated.
func checkAlert(al *events.Alert, rule string) error {
	if al.State == "" {
		al.State = events.AlertFiring
	}
	if al.Since.IsZero() {
		al.Since = al.To
	}
	switch {
	case al.Rule != rule:
		return fmt.Errorf("rule %q on the subject of rule %q", al.Rule, rule)
	case al.To.IsZero() || al.To.Before(al.From):
		return errors.New("no window, or one that ends before it starts")
	case al.State != events.AlertFiring && al.State != events.AlertResolved:
		return fmt.Errorf("state %q: want %s or %s", al.State, events.AlertFiring, events.AlertResolved)
	case al.Since.After(al.To):
		return errors.New("fires since after it was evaluated")
	}
	return nil
}

// nullableTime maps the zero time to NULL.
func nullableTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
