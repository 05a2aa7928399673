package events

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"
)

// Message is an event ready to publish: subject, message id, headers and JSON body.
// The broker turns it into a NATS message; events stays free of I/O.
type Message struct {
	Subject string
	// ID is content-derived and becomes both Nats-Msg-Id (JetStream's duplicate
	// window) and ce-id; ClickHouse deduplicates on it too.
	ID string
	// Header holds the CloudEvents 1.0 attributes in binary content mode and
	// Nats-Msg-Id (ID), shaped like a NATS header so that the broker sends
	// it as it is.
	Header Header
	Data   []byte
}

// Header is a message's headers, one value each, keyed exactly (NATS
// headers are case-sensitive): the shape of nats.Header.
type Header map[string][]string

// Get is the value of key, "" when there is none.
func (h Header) Get(key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// CloudEvents attribute headers (binary content mode) and the source otpscope uses.
const (
	HeaderSpecVersion = "ce-specversion"
	HeaderID          = "ce-id"
	HeaderSource      = "ce-source"
	HeaderType        = "ce-type"
	HeaderTime        = "ce-time"
	HeaderSubject     = "ce-subject"
	HeaderContentType = "Content-Type"

	// HeaderMsgID is JetStream's deduplication header.
	HeaderMsgID = "Nats-Msg-Id"
)

// CloudEvents types of otpscope's messages: tyntec's own facts in tyntec's
// domain with tyntec's API version, what otpscope derives in its own
// (io.otpscope.<Thing>.v1). A payload change that breaks readers bumps the
// version.
const (
	TypeDeliveryStatus = "com.tyntec.2fa.v4.DeliveryStatus"
	TypeDeadLetter     = "io.otpscope.DeadLetter.v1"
)

// DeliveryID is the content-derived id of a delivery fact: the same otpId, channel,
// status and timestamp always give the same id, whoever reports it (a tyntec retry,
// the poller re-reading it). A timestamp taken from receipt is left out, since it
// differs on every retry.
func DeliveryID(ev *DeliveryStatus) string {
	ts := ""
	if !ev.TimestampFromReceipt {
		ts = ev.Timestamp.UTC().Format(time.RFC3339Nano)
	}
	return "ds-" + digest(ev.OTPID, string(ev.Channel), string(ev.Status), ts)
}

// NewDeliveryMessage wraps a delivery fact for publishing; its ce-source names
// how the fact was learned (ev.Source).
func NewDeliveryMessage(ev *DeliveryStatus) (Message, error) {
	return newMessage(DeliverySubject(ev.Channel, ev.Status), DeliveryID(ev), ev.Source, TypeDeliveryStatus, ev.Timestamp, ev.OTPID, ev)
}

// DeadLetter is the payload of tyntec.2fa.deadletter: input otpscope could not
// accept, kept with the reason so that it can be inspected and replayed.
type DeadLetter struct {
	Reason      string    `json:"reason"`
	Field       string    `json:"field,omitempty"`
	Status      int       `json:"httpStatus,omitempty"`
	Source      string    `json:"source"`
	ReceivedAt  time.Time `json:"receivedAt"`
	RemoteAddr  string    `json:"remoteAddr,omitempty"`
	ContentType string    `json:"contentType,omitempty"`
	// Path is the ingest endpoint that refused the request (/webhooks/tyntec,
	// /silent-auth/outcomes, /webhooks/push): replay decodes the body as
	// that endpoint does. Empty for the other sources, and for ingest's
	// dead letters from before it was recorded (all webhooks).
	Path string `json:"path,omitempty"`
	// Body is the raw input when it is valid UTF-8; BodyBase64 otherwise.
	// A silent-auth body is kept scrubbed (ScrubSilentBody), or not at all.
	Body       string `json:"body,omitempty"`
	BodyBase64 []byte `json:"bodyBase64,omitempty"`
	// BodyBytes is the full length, when known; Truncated says Body holds less.
	// The caller sets both when it read only part of the body.
	BodyBytes int  `json:"bodyBytes"`
	Truncated bool `json:"truncated,omitempty"`
}

// NewDeadLetterMessage wraps a dead letter, keeping at most maxBody bytes of body.
// Its id derives from the reason and the body, so a client retrying the same bad
// request leaves one dead letter within the duplicate window.
func NewDeadLetterMessage(dl DeadLetter, body []byte, maxBody int) (Message, error) {
	dl.BodyBytes = max(dl.BodyBytes, len(body))
	if len(body) > maxBody {
		body, dl.Truncated = body[:maxBody], true
	}
	if utf8.Valid(body) {
		dl.Body = string(body)
	} else {
		dl.BodyBase64 = body
	}
	id := "dl-" + digest(dl.Source, dl.Reason, string(body))
	return newMessage(SubjectDeadLetter, id, dl.Source, TypeDeadLetter, dl.ReceivedAt, "", dl)
}

// NewWithheldDeadLetterMessage wraps a dead letter that keeps nothing of
// body but its length, for input that may hold a phone number (dl.Reason
// should say so). fingerprint (a keyed hash of body) stands in for the
// body in the id: a retried request leaves one dead letter, two bodies two,
// and the id reveals neither.
func NewWithheldDeadLetterMessage(dl DeadLetter, body []byte, fingerprint string) (Message, error) {
	dl.BodyBytes, dl.Body, dl.BodyBase64 = max(dl.BodyBytes, len(body)), "", nil
	id := "dl-" + digest(dl.Source, dl.Reason, "withheld", fingerprint)
	return newMessage(SubjectDeadLetter, id, dl.Source, TypeDeadLetter, dl.ReceivedAt, "", dl)
}

// NewMessage is a message with body data already encoded as JSON, and the
// CloudEvents attributes of source (ce-source "/otpscope/<source>"), typ,
// at and ceSubject (none when "").
func NewMessage(subject, id, source, typ string, at time.Time, ceSubject string, data []byte) Message {
	return Message{Subject: subject, ID: id, Header: cloudEvent(id, source, typ, at, ceSubject), Data: data}
}

// cloudEvent is a message's headers. Every value sits in one array, and
// the map is sized for them: a header per value would be the largest share
// of a webhook's allocations.
func cloudEvent(id, source, typ string, at time.Time, subject string) Header {
	values := [...]string{"1.0", id, "/otpscope/" + source, typ, at.UTC().Format(time.RFC3339Nano), "application/json", id, subject}
	keys := [...]string{HeaderSpecVersion, HeaderID, HeaderSource, HeaderType, HeaderTime, HeaderContentType, HeaderMsgID, HeaderSubject}
	n := len(keys)
	if subject == "" {
		n--
	}
	h := make(Header, n)
	for i := range n {
		h[keys[i]] = values[i : i+1 : i+1]
	}
	return h
}

// digest is the 16-byte Digest the message ids of this package end in.
func digest(parts ...string) string { return Digest(16, parts...) }

// Digest is a short, stable hash of parts, its first n bytes (at most 32) in
// hex; the separator keeps ("a","bc") and ("ab","c") apart. Message ids end in
// one, so that a fact published twice has one id.
func Digest(n int, parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:n])
}

// NewReplayMessage republishes the body of a message that was dead-lettered
// on subject, as the dead letter deadLetterID kept it. Its id derives from
// the dead letter's, so a second replay is a duplicate JetStream and
// ClickHouse drop. Its ce-time and ce-subject are the original's, read
// from body; now is ce-time only when body does not say.
func NewReplayMessage(subject, deadLetterID string, body []byte, now time.Time) (Message, error) {
	sub, err := ParseSubject(subject)
	if err != nil {
		return Message{}, err
	}
	if sub.Kind == KindDeadLetter {
		return Message{}, fmt.Errorf("subject %s: a dead letter is not replayed as one", subject)
	}
	typ := map[SubjectKind]string{KindDelivery: TypeDeliveryStatus, KindOTPStatus: TypeOTPStatus, KindV1Event: TypeV1Event,
		KindResend: TypeResend, KindReconcile: TypeReconcile, KindTrack: TypeTrack, KindReport: TypeReport, KindAlert: TypeAlert,
		KindSilent: TypeSilentOutcome, KindPush: TypePushApproval}[sub.Kind]
	id := "rp-" + digest(deadLetterID)
	at, ceSubject := now, ""
	if attrs := replayAttributes[sub.Kind]; attrs != nil {
		// A subscriber reads ce-time as the event's own time and
		// ce-subject as its OTP: a replay says what the original said.
		if t, s, ok := attrs(body); ok {
			ceSubject = s
			if !t.IsZero() {
				at = t
			}
		}
	}
	return NewMessage(subject, id, "replay", typ, at, ceSubject, body), nil
}

// replayAttributes reads, from a body of each kind, the ce-time and
// ce-subject its New*Message gave it; ok is false when the body does not
// read as that kind's payload.
var replayAttributes = map[SubjectKind]func(body []byte) (at time.Time, subject string, ok bool){
	KindDelivery:  attributesOf(func(v *DeliveryStatus) (time.Time, string) { return v.Timestamp, v.OTPID }),
	KindOTPStatus: attributesOf(func(v *OTPStatus) (time.Time, string) { return v.ObservedAt, v.OTPID }),
	KindV1Event:   attributesOf(func(v *V1Event) (time.Time, string) { return v.Created, v.OTPID }),
	KindResend:    attributesOf(func(v *Resend) (time.Time, string) { return v.DecidedAt, v.OTPID }),
	KindReconcile: attributesOf(func(v *Reconcile) (time.Time, string) { return v.ObservedAt, v.OTPID }),
	KindTrack:     attributesOf(func(v *Track) (time.Time, string) { return v.At, v.OTPID }),
	KindSilent:    attributesOf(func(v *SilentOutcome) (time.Time, string) { return v.FinishedAt, v.AttemptID }),
	KindPush:      attributesOf(func(v *PushEvent) (time.Time, string) { return v.UpdatedAt, v.UUID }),
	KindAlert:     attributesOf(func(v *Alert) (time.Time, string) { return v.To, "" }),
	// The reporter's Report type is not this package's: its window end is
	// all a replay needs of it.
	KindReport: attributesOf(func(v *struct {
		To time.Time `json:"to"`
	}) (time.Time, string) {
		return v.To, ""
	}),
}

// attributesOf is a replayAttributes reader: body decoded as a T, then
// attrs of it.
func attributesOf[T any](attrs func(*T) (time.Time, string)) func([]byte) (time.Time, string, bool) {
	return func(body []byte) (time.Time, string, bool) {
		var v T
		if err := json.Unmarshal(body, &v); err != nil {
			return time.Time{}, "", false
		}
		at, subject := attrs(&v)
		return at, subject, true
	}
}
