package store

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/google/uuid"

	"github.com/otpscope/otpscope/internal/events"
)

// column is one column of a table and how to build it from rows, as one typed
// slice: column-wise appends avoid boxing every value.
type column[R any] struct {
	name  string
	build func([]R) any
}

func pluck[R, V any](rows []R, f func(*R) V) []V {
	out := make([]V, len(rows))
	for i := range rows {
		out[i] = f(&rows[i])
	}
	return out
}

func col[R, V any](name string, f func(*R) V) column[R] {
	return column[R]{name, func(rows []R) any { return pluck(rows, f) }}
}

var deliveryColumns = []column[DeliveryRow]{
	col("event_id", func(r *DeliveryRow) string { return r.EventID }),
	col("otp_id", func(r *DeliveryRow) uuid.UUID { return uuid.MustParse(r.OTPID) }),
	col("profile_id", func(r *DeliveryRow) string { return r.ProfileID }),
	col("channel", func(r *DeliveryRow) string { return string(r.Channel) }),
	col("status", func(r *DeliveryRow) string { return string(r.Status) }),
	col("event_time", func(r *DeliveryRow) time.Time { return r.Timestamp }),
	col("received_at", func(r *DeliveryRow) time.Time { return r.ReceivedAt }),
	col("error_code", func(r *DeliveryRow) string {
		if r.Error == nil {
			return ""
		}
		return r.Error.Code
	}),
	col("error_message", func(r *DeliveryRow) string {
		if r.Error == nil {
			return ""
		}
		return r.Error.Message
	}),
	col("source", func(r *DeliveryRow) string { return r.Source }),
	col("timestamp_from_receipt", func(r *DeliveryRow) bool { return r.TimestampFromReceipt }),
	col("unknown_channel", func(r *DeliveryRow) bool { return r.UnknownChannel }),
	col("unknown_status", func(r *DeliveryRow) bool { return r.UnknownStatus }),
	col("missed_webhook", func(r *DeliveryRow) bool { return r.MissedWebhook }),
	col("stream_seq", func(r *DeliveryRow) uint64 { return r.Seq }),
}

var otpStatusColumns = []column[OTPStatusRow]{
	col("event_id", func(r *OTPStatusRow) string { return r.EventID }),
	col("otp_id", func(r *OTPStatusRow) uuid.UUID { return uuid.MustParse(r.OTPID) }),
	col("api", func(r *OTPStatusRow) string { return r.API }),
	col("otp_status", func(r *OTPStatusRow) string { return string(r.Status) }),
	col("profile_id", func(r *OTPStatusRow) string { return r.ProfileID }),
	col("attempt_count", func(r *OTPStatusRow) uint16 { return uint16(min(max(r.AttemptCount, 0), 65535)) }),
	col("otp_created", func(r *OTPStatusRow) *time.Time { return nullableTime(r.Created) }),
	col("otp_expire", func(r *OTPStatusRow) *time.Time { return nullableTime(r.Expires) }),
	col("observed_at", func(r *OTPStatusRow) time.Time { return r.ObservedAt }),
	col("source", func(r *OTPStatusRow) string { return r.Source }),
	col("sample_rate", func(r *OTPStatusRow) float64 { return r.SampleRate }),
	col("stream_seq", func(r *OTPStatusRow) uint64 { return r.Seq }),
}

var v1EventColumns = []column[V1EventRow]{
	col("event_id", func(r *V1EventRow) string { return r.EventID }),
	col("otp_id", func(r *V1EventRow) uuid.UUID { return uuid.MustParse(r.OTPID) }),
	col("type", func(r *V1EventRow) string { return r.Type }),
	col("status", func(r *V1EventRow) string { return r.Status }),
	col("status_text", func(r *V1EventRow) string { return r.StatusText }),
	col("created", func(r *V1EventRow) time.Time { return r.Created }),
	col("observed_at", func(r *V1EventRow) time.Time { return r.ObservedAt }),
	col("stream_seq", func(r *V1EventRow) uint64 { return r.Seq }),
}

var resendColumns = []column[ResendRow]{
	col("event_id", func(r *ResendRow) string { return r.EventID }),
	col("otp_id", func(r *ResendRow) uuid.UUID { return uuid.MustParse(r.OTPID) }),
	col("profile_id", func(r *ResendRow) string { return r.ProfileID }),
	col("decision_id", func(r *ResendRow) string { return r.DecisionID }),
	col("result", func(r *ResendRow) string { return r.Result }),
	col("reason", func(r *ResendRow) string { return r.Reason }),
	col("via", func(r *ResendRow) string { return r.Via }),
	col("trigger_channel", func(r *ResendRow) string { return string(r.TriggerChannel) }),
	col("trigger_status", func(r *ResendRow) string { return string(r.TriggerStatus) }),
	col("attempt", func(r *ResendRow) uint16 { return uint16(min(max(r.Attempt, 0), 65535)) }),
	col("dry_run", func(r *ResendRow) bool { return r.DryRun }),
	col("decided_at", func(r *ResendRow) time.Time { return r.DecidedAt }),
	col("stream_seq", func(r *ResendRow) uint64 { return r.Seq }),
}

var reconcileColumns = []column[ReconcileRow]{
	col("event_id", func(r *ReconcileRow) string { return r.EventID }),
	col("otp_id", func(r *ReconcileRow) uuid.UUID { return uuid.MustParse(r.OTPID) }),
	col("api", func(r *ReconcileRow) string { return r.API }),
	col("profile_id", func(r *ReconcileRow) string { return r.ProfileID }),
	col("result", func(r *ReconcileRow) string { return r.Result }),
	col("channel", func(r *ReconcileRow) string { return string(r.Channel) }),
	col("since", func(r *ReconcileRow) time.Time { return r.Since }),
	col("reason", func(r *ReconcileRow) string { return r.Reason }),
	col("otp_status", func(r *ReconcileRow) string { return string(r.OTPStatus) }),
	col("attempt_count", func(r *ReconcileRow) uint16 { return uint16(min(max(r.AttemptCount, 0), 65535)) }),
	col("observed_at", func(r *ReconcileRow) time.Time { return r.ObservedAt }),
	col("stream_seq", func(r *ReconcileRow) uint64 { return r.Seq }),
}

var silentColumns = []column[SilentRow]{
	col("event_id", func(r *SilentRow) string { return r.EventID }),
	col("attempt_id", func(r *SilentRow) string { return r.AttemptID }),
	col("attempt_uuid", func(r *SilentRow) uuid.UUID {
		return uuid.MustParse(events.AttemptUUID(events.ChannelSilent, r.AttemptID))
	}),
	col("correlation_id", func(r *SilentRow) string { return cmp.Or(r.CorrelationID, r.AttemptID) }),
	col("profile_id", func(r *SilentRow) string { return r.ProfileID }),
	col("scope", func(r *SilentRow) string { return r.Scope }),
	col("started_at", func(r *SilentRow) time.Time { return r.StartedAt }),
	col("finished_at", func(r *SilentRow) time.Time { return r.FinishedAt }),
	col("result", func(r *SilentRow) string { return r.Result }),
	col("error", func(r *SilentRow) string { return r.Error }),
	col("login_hint_hash", func(r *SilentRow) string { return r.LoginHintHash }),
	col("mobile_id_hash", func(r *SilentRow) string { return r.MobileIDHash }),
	col("unknown_result", func(r *SilentRow) bool { return r.UnknownResult }),
	col("unknown_error", func(r *SilentRow) bool { return r.UnknownError }),
	col("received_at", func(r *SilentRow) time.Time { return r.ReceivedAt }),
	col("stream_seq", func(r *SilentRow) uint64 { return r.Seq }),
}

var pushColumns = []column[PushRow]{
	col("event_id", func(r *PushRow) string { return r.EventID }),
	col("uuid", func(r *PushRow) string { return r.UUID }),
	col("attempt_uuid", func(r *PushRow) uuid.UUID { return uuid.MustParse(events.AttemptUUID(events.ChannelPush, r.UUID)) }),
	col("correlation_id", func(r *PushRow) string { return cmp.Or(r.CorrelationID, r.UUID) }),
	col("status", func(r *PushRow) string { return r.Status }),
	col("created_at", func(r *PushRow) time.Time { return r.CreatedAt }),
	col("updated_at", func(r *PushRow) time.Time { return r.UpdatedAt }),
	col("seconds_to_expire", func(r *PushRow) uint32 { return uint32(max(r.SecondsToExpire, 0)) }),
	col("unknown_status", func(r *PushRow) bool { return r.UnknownStatus }),
	col("source", func(r *PushRow) string { return r.Source }),
	col("received_at", func(r *PushRow) time.Time { return r.ReceivedAt }),
	col("stream_seq", func(r *PushRow) uint64 { return r.Seq }),
}

var linkColumns = []column[JourneyLinkRow]{
	col("otp_id", func(r *JourneyLinkRow) uuid.UUID { return uuid.MustParse(r.OTPID) }),
	col("journey_id", func(r *JourneyLinkRow) string { return r.JourneyID }),
	col("source", func(r *JourneyLinkRow) string { return r.Source }),
	col("linked_at", func(r *JourneyLinkRow) time.Time { return r.LinkedAt }),
	col("event_id", func(r *JourneyLinkRow) string { return r.EventID }),
}

var deadLetterColumns = []column[DeadLetterRow]{
	col("event_id", func(r *DeadLetterRow) string { return r.EventID }),
	col("reason", func(r *DeadLetterRow) string { return r.Reason }),
	col("field", func(r *DeadLetterRow) string { return r.Field }),
	col("http_status", func(r *DeadLetterRow) uint16 { return uint16(min(max(r.Status, 0), 65535)) }),
	col("source", func(r *DeadLetterRow) string { return r.Source }),
	col("received_at", func(r *DeadLetterRow) time.Time { return r.ReceivedAt }),
	col("remote_addr", func(r *DeadLetterRow) string { return r.RemoteAddr }),
	col("content_type", func(r *DeadLetterRow) string { return r.ContentType }),
	col("path", func(r *DeadLetterRow) string { return r.Path }),
	col("body", func(r *DeadLetterRow) string {
		if r.Body == "" && len(r.BodyBase64) > 0 {
			return string(r.BodyBase64) // the raw bytes: ClickHouse strings are bytes
		}
		return r.Body
	}),
	col("body_bytes", func(r *DeadLetterRow) uint32 { return uint32(max(r.BodyBytes, 0)) }),
	col("truncated", func(r *DeadLetterRow) bool { return r.Truncated }),
	col("stream_seq", func(r *DeadLetterRow) uint64 { return r.Seq }),
}

var alertColumns = []column[AlertRow]{
	col("event_id", func(r *AlertRow) string { return r.EventID }),
	col("rule", func(r *AlertRow) string { return r.Rule }),
	col("channel", func(r *AlertRow) string { return r.Channel }),
	col("window_from", func(r *AlertRow) time.Time { return r.From }),
	col("evaluated_at", func(r *AlertRow) time.Time { return r.To }),
	col("value", func(r *AlertRow) float64 { return r.Value }),
	col("threshold", func(r *AlertRow) float64 { return r.Threshold }),
	col("volume", func(r *AlertRow) uint64 { return r.Volume }),
	col("summary", func(r *AlertRow) string { return r.Summary }),
	col("state", func(r *AlertRow) string { return r.State }),
	col("since", func(r *AlertRow) time.Time { return r.Since }),
	col("before_from", func(r *AlertRow) *time.Time {
		if r.Before == nil {
			return nil
		}
		return &r.Before.From
	}),
	col("before_to", func(r *AlertRow) *time.Time {
		if r.Before == nil {
			return nil
		}
		return &r.Before.To
	}),
	col("before_value", func(r *AlertRow) *float64 {
		if r.Before == nil {
			return nil
		}
		return r.Before.Value
	}),
	col("before_volume", func(r *AlertRow) uint64 {
		if r.Before == nil {
			return 0
		}
		return r.Before.Volume
	}),
	col("silenced_by", func(r *AlertRow) string { return r.SilencedBy }),
	col("stream_seq", func(r *AlertRow) uint64 { return r.Seq }),
}

// Insert writes the batch, one insert per table that has rows. Each insert
// carries an insert_deduplication_token derived from its event ids, so a batch
// redelivered whole after a crash is dropped by ClickHouse's block
// deduplication; any other repeat collapses in the ReplacingMergeTree.
func (db *DB) Insert(ctx context.Context, b *Batch) error { return db.insert(ctx, b, true) }

// InsertAgain writes the batch without ClickHouse's block deduplication: the
// replay after a full disk broke parts (RecoverParts), whose inserts'
// tokens ClickHouse remembers although their rows were set aside. Rows
// stored twice collapse as in Insert.
func (db *DB) InsertAgain(ctx context.Context, b *Batch) error { return db.insert(ctx, b, false) }

func (db *DB) insert(ctx context.Context, b *Batch, dedup bool) error {
	if err := insertTable(ctx, db, dedup, "delivery_events", b.Deliveries, deliveryColumns, func(r *DeliveryRow) string { return r.EventID }); err != nil {
		return err
	}
	if err := insertTable(ctx, db, dedup, "otp_status", b.Statuses, otpStatusColumns, func(r *OTPStatusRow) string { return r.EventID }); err != nil {
		return err
	}
	if err := insertTable(ctx, db, dedup, "v1_events", b.V1Events, v1EventColumns, func(r *V1EventRow) string { return r.EventID }); err != nil {
		return err
	}
	if err := insertTable(ctx, db, dedup, "resends", b.Resends, resendColumns, func(r *ResendRow) string { return r.EventID }); err != nil {
		return err
	}
	if err := insertTable(ctx, db, dedup, "reconciliations", b.Reconciles, reconcileColumns, func(r *ReconcileRow) string { return r.EventID }); err != nil {
		return err
	}
	if err := insertTable(ctx, db, dedup, "silent_auth_outcomes", b.Silent, silentColumns, func(r *SilentRow) string { return r.EventID }); err != nil {
		return err
	}
	if err := insertTable(ctx, db, dedup, "push_events", b.Push, pushColumns, func(r *PushRow) string { return r.EventID }); err != nil {
		return err
	}
	if err := insertTable(ctx, db, dedup, "journey_links", b.Links, linkColumns, func(r *JourneyLinkRow) string { return r.EventID }); err != nil {
		return err
	}
	if err := insertTable(ctx, db, dedup, "alerts", b.Alerts, alertColumns, func(r *AlertRow) string { return r.EventID }); err != nil {
		return err
	}
	return insertTable(ctx, db, dedup, "dead_letters", b.DeadLetters, deadLetterColumns, func(r *DeadLetterRow) string { return r.EventID })
}

func insertTable[R any](ctx context.Context, db *DB, dedup bool, table string, rows []R, cols []column[R], id func(*R) string) error {
	if len(rows) == 0 {
		return nil
	}
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.name
	}
	settings := clickhouse.Settings{"insert_deduplicate": 0}
	if dedup {
		h := sha256.New()
		h.Write([]byte(table))
		for i := range rows {
			h.Write([]byte{0})
			h.Write([]byte(id(&rows[i])))
		}
		settings = clickhouse.Settings{"insert_deduplication_token": hex.EncodeToString(h.Sum(nil)[:16])}
	}
	ctx = withSettings(ctx, settings)

	batch, err := db.conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s (%s)", table, strings.Join(names, ", ")))
	if err != nil {
		return fmt.Errorf("prepare insert of %d rows into %s: %w", len(rows), table, err)
	}
	defer batch.Abort()
	for i, c := range cols {
		if err := batch.Column(i).Append(c.build(rows)); err != nil {
			return fmt.Errorf("append column %s.%s: %w", table, c.name, err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("insert %d rows into %s: %w", len(rows), table, err)
	}
	return nil
}
