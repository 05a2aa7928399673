package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	fastjson "github.com/segmentio/encoding/json"
)

// Channel is a tyntec delivery channel. Values other than the known constants are
// accepted when well-formed (tyntec adds channels over time); Known tells them apart.
type Channel string

// The channels tyntec's 2FA v4 documents.
const (
	ChannelSMS      Channel = "SMS"
	ChannelVoice    Channel = "VOICE"
	ChannelViber    Channel = "VIBER"
	ChannelWhatsApp Channel = "WHATSAPP"
)

// Known reports whether c is one of the channels tyntec documents.
func (c Channel) Known() bool {
	switch c {
	case ChannelSMS, ChannelVoice, ChannelViber, ChannelWhatsApp:
		return true
	}
	return false
}

// Status is the delivery status of one OTP on one channel.
type Status string

// The delivery statuses tyntec documents. RECEIVED appears in one version of the
// webhook schema only; it is known but is neither a delivery nor a failure.
const (
	StatusDispatched    Status = "DISPATCHED"
	StatusDelivered     Status = "DELIVERED"
	StatusUndeliverable Status = "UNDELIVERABLE"
	StatusTimedOut      Status = "TIMED_OUT"
	StatusReceived      Status = "RECEIVED"
)

// Known reports whether s is one of the statuses tyntec documents.
func (s Status) Known() bool {
	switch s {
	case StatusDispatched, StatusDelivered, StatusUndeliverable, StatusTimedOut, StatusReceived:
		return true
	}
	return false
}

// Failed reports whether s ends an attempt without delivery.
func (s Status) Failed() bool { return s == StatusUndeliverable || s == StatusTimedOut }

// Final reports whether s settles an attempt: delivered or failed.
func (s Status) Final() bool { return s == StatusDelivered || s.Failed() }

// Sources of a delivery fact.
const (
	SourceWebhook = "webhook" // tyntec called us
	SourcePoll    = "poll"    // the poller learned it through tyntec's API
)

// DeliveryError is the error object tyntec attaches to failed deliveries.
type DeliveryError struct {
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

// MaxErrorCode and MaxErrorMessage bound what is kept of a fact's error
// (bytes, cut at a character): a code is a grouping key of every analytics
// answer listing failures, so one sender's 64 KB codes would swell them
// all. tyntec's codes are short ("1100", Meta's 131026); the fact is kept,
// the excess dropped.
const (
	MaxErrorCode    = 64
	MaxErrorMessage = 1024
)

// bounded is e cut to MaxErrorCode and MaxErrorMessage.
func (e DeliveryError) bounded() DeliveryError {
	return DeliveryError{Code: cut(e.Code, MaxErrorCode), Message: cut(e.Message, MaxErrorMessage)}
}

// cut is s's first n bytes at most, not splitting a character.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// DeliveryStatus is one delivery fact: tyntec's webhook body (channel, otpId,
// profileId, status, timestamp, error) plus what otpscope adds when it receives it.
// It is the JSON payload of every tyntec.2fa.delivery.* message, which always
// carries receivedAt and source. With only tyntec's fields set it marshals to
// exactly tyntec's webhook body, which is how the simulator sends webhooks.
type DeliveryStatus struct {
	Channel   Channel        `json:"channel"`
	OTPID     string         `json:"otpId"`
	ProfileID string         `json:"profileId,omitempty"`
	Status    Status         `json:"status"`
	Timestamp time.Time      `json:"timestamp"`
	Error     *DeliveryError `json:"error,omitempty"`

	// ReceivedAt is when otpscope received the fact.
	ReceivedAt time.Time `json:"receivedAt,omitzero"`
	// TimestampFromReceipt is set when tyntec's timestamp was missing,
	// unparseable or outside the sane range (MinTimestamp … ReceivedAt +
	// MaxClockSkew) and Timestamp holds ReceivedAt instead; OriginalTimestamp
	// then keeps what tyntec sent, if anything.
	TimestampFromReceipt bool   `json:"timestampFromReceipt,omitempty"`
	OriginalTimestamp    string `json:"originalTimestamp,omitempty"`
	// UnknownChannel and UnknownStatus mark values tyntec did not document when
	// otpscope was built; they are stored and counted as they are.
	UnknownChannel bool `json:"unknownChannel,omitempty"`
	UnknownStatus  bool `json:"unknownStatus,omitempty"`
	// Source is SourceWebhook or SourcePoll.
	Source string `json:"source,omitempty"`
	// MissedWebhook is set by the poller on a fact no webhook reported.
	MissedWebhook bool `json:"missedWebhook,omitempty"`
}

// FieldError names the input field that made a webhook invalid.
type FieldError struct {
	Index int    // position in a JSON array; -1 for a single object
	Field string // JSON name, e.g. "otpId"; "" for the body as a whole
	Err   error
}

func (e *FieldError) Error() string {
	where := e.Field
	if where == "" {
		where = "body"
	}
	if e.Index >= 0 {
		where = fmt.Sprintf("[%d].%s", e.Index, where)
	}
	return fmt.Sprintf("%s: %v", where, e.Err)
}

func (e *FieldError) Unwrap() error { return e.Err }

// jsonText is body without the white space around it, nor a UTF-8
// byte-order mark before it: RFC 8259 §8.1 lets a parser ignore one, and
// some senders' JSON libraries write it. It takes its own result as it is.
func jsonText(body []byte) []byte {
	return bytes.TrimSpace(bytes.TrimPrefix(bytes.TrimSpace(body), []byte("\uFEFF")))
}

// Validation failures, usable with errors.Is.
var (
	ErrMalformedJSON = errors.New("malformed JSON")
	ErrNotAnEvent    = errors.New("not a DeliveryStatus object or array")
	ErrNotAnObject   = errors.New("not a JSON object or an array of them") // the methods' bodies
	ErrEmptyBatch    = errors.New("empty array")
	ErrMissing       = errors.New("required")
	ErrInvalidUUID   = errors.New("not a UUID")
	ErrMalformed     = errors.New("malformed value")
)

// WellFormed reports whether s may be an enum value from tyntec (a channel
// or status name, which the API's filters check too): an
// upper-case word, ^[A-Z][A-Z0-9_]{0,63}$. Anything else (dots, spaces,
// wildcards) could not be a NATS subject token. A loop rather than a regexp:
// it runs twice per webhook, and the regexp was a measurable part of one.
func WellFormed(s string) bool {
	if len(s) == 0 || len(s) > 64 || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// wire is the body tyntec sends; fields are raw so that a wrong type is reported
// against its field rather than as a JSON error for the whole body.
type wire struct {
	Channel   json.RawMessage `json:"channel"`
	OTPID     json.RawMessage `json:"otpId"`
	ProfileID json.RawMessage `json:"profileId"`
	Status    json.RawMessage `json:"status"`
	Timestamp json.RawMessage `json:"timestamp"`
	Error     json.RawMessage `json:"error"`
}

// DecodeDeliveryStatuses parses a webhook body: one DeliveryStatus object or a
// non-empty JSON array of them. receivedAt stamps every event. The batch is all or
// nothing: the first invalid event makes the whole body invalid, reported as a
// *FieldError.
func DecodeDeliveryStatuses(body []byte, receivedAt time.Time) ([]DeliveryStatus, error) {
	body = jsonText(body)
	if evs, ok := decodeFast(body, receivedAt.UTC()); ok {
		return evs, nil
	}
	return decodeSlow(body, receivedAt)
}

// decodeSlow validates field by field, to name what is wrong.
func decodeSlow(body []byte, receivedAt time.Time) ([]DeliveryStatus, error) {
	receivedAt = receivedAt.UTC()
	return decodeEach(body, func(item json.RawMessage) (DeliveryStatus, *FieldError) {
		return decodeOne(item, receivedAt)
	})
}

// fastWire is the body as tyntec documents it. Decoding into it is one pass; any
// type mismatch or invalid value sends the body down the slow path, which names
// the field.
type fastWire struct {
	Channel   string          `json:"channel"`
	OTPID     string          `json:"otpId"`
	ProfileID string          `json:"profileId"`
	Status    string          `json:"status"`
	Timestamp json.RawMessage `json:"timestamp"`
	Error     *DeliveryError  `json:"error"`
}

// decodeFast handles the common, valid body (a single object, or an array of
// them) in one pass; ok is false when the slow path must decide.
func decodeFast(body []byte, receivedAt time.Time) ([]DeliveryStatus, bool) {
	if len(body) == 0 {
		return nil, false
	}
	// segmentio's decoder, a drop-in for encoding/json's, is about four times
	// faster here (BenchmarkDecodeDeliveryStatuses: 5.6 -> 1.3 µs), the
	// largest share of a webhook's own CPU after net/http and NATS. The slow
	// path, which decides every body this one does not accept, stays on
	// encoding/json, and FuzzDecodeDeliveryStatuses holds the two to the
	// same answers.
	var ws []fastWire
	switch body[0] {
	case '{':
		ws = make([]fastWire, 1)
		if fastjson.Unmarshal(body, &ws[0]) != nil {
			return nil, false
		}
	case '[':
		if fastjson.Unmarshal(body, &ws) != nil || len(ws) == 0 {
			return nil, false
		}
	default:
		return nil, false
	}
	out := make([]DeliveryStatus, len(ws))
	for i := range ws {
		if !ws[i].normalize(&out[i], receivedAt) {
			return nil, false
		}
	}
	return out, true
}

func (w *fastWire) normalize(ev *DeliveryStatus, receivedAt time.Time) bool {
	var err error
	*ev = DeliveryStatus{ReceivedAt: receivedAt, Source: SourceWebhook}
	if ev.OTPID, err = canonicalUUID(strings.TrimSpace(w.OTPID)); err != nil {
		return false
	}
	if p := strings.TrimSpace(w.ProfileID); p != "" {
		if ev.ProfileID, err = canonicalUUID(p); err != nil {
			return false
		}
	}
	ch, st := strings.ToUpper(strings.TrimSpace(w.Channel)), strings.ToUpper(strings.TrimSpace(w.Status))
	if !WellFormed(ch) || !WellFormed(st) {
		return false
	}
	ev.Channel, ev.Status = Channel(ch), Status(st)
	if ev.Channel.Method() {
		return false
	}
	ev.UnknownChannel, ev.UnknownStatus = !ev.Channel.Known(), !ev.Status.Known()
	ev.Timestamp, ev.TimestampFromReceipt, ev.OriginalTimestamp = parseTimestamp(w.Timestamp, receivedAt)
	if w.Error != nil && *w.Error != (DeliveryError{}) {
		*w.Error = w.Error.bounded()
		ev.Error = w.Error
	}
	return true
}

func decodeOne(raw json.RawMessage, receivedAt time.Time) (DeliveryStatus, *FieldError) {
	var w wire
	if len(raw) == 0 || raw[0] != '{' {
		return DeliveryStatus{}, &FieldError{Err: ErrNotAnEvent}
	}
	if err := json.Unmarshal(raw, &w); err != nil {
		return DeliveryStatus{}, &FieldError{Err: ErrMalformedJSON}
	}
	ev := DeliveryStatus{ReceivedAt: receivedAt, Source: SourceWebhook}

	otpID, err := requiredString(w.OTPID)
	if err != nil {
		return ev, &FieldError{Field: "otpId", Err: err}
	}
	if ev.OTPID, err = canonicalUUID(otpID); err != nil {
		return ev, &FieldError{Field: "otpId", Err: err}
	}
	if profileID, err := optionalString(w.ProfileID); err != nil {
		return ev, &FieldError{Field: "profileId", Err: err}
	} else if profileID != "" {
		if ev.ProfileID, err = canonicalUUID(profileID); err != nil {
			return ev, &FieldError{Field: "profileId", Err: err}
		}
	}
	channel, err := enumValue(w.Channel)
	if err != nil {
		return ev, &FieldError{Field: "channel", Err: err}
	}
	ev.Channel = Channel(channel)
	if ev.Channel.Method() {
		return ev, &FieldError{Field: "channel", Err: fmt.Errorf("%w: %s is otpscope's own channel for %s, which tyntec's delivery statuses never carry", ErrMalformed, channel, ev.Channel.methodEndpoint())}
	}
	ev.UnknownChannel = !ev.Channel.Known()
	status, err := enumValue(w.Status)
	if err != nil {
		return ev, &FieldError{Field: "status", Err: err}
	}
	ev.Status = Status(status)
	ev.UnknownStatus = !ev.Status.Known()

	ev.Timestamp, ev.TimestampFromReceipt, ev.OriginalTimestamp = parseTimestamp(w.Timestamp, receivedAt)

	if len(w.Error) > 0 && string(w.Error) != "null" {
		de, err := decodeError(w.Error)
		if err != nil {
			return ev, &FieldError{Field: "error", Err: err}
		}
		if de != (DeliveryError{}) {
			de = de.bounded()
			ev.Error = &de
		}
	}
	return ev, nil
}

// decodeError reads tyntec's error object. Its code is a string in tyntec's
// schema, but the codes it passes on from WhatsApp are Meta's integers
// (131026): a number is kept as its JSON text, so the failure is counted
// under that code rather than the whole fact refused.
func decodeError(raw json.RawMessage) (DeliveryError, error) {
	malformed := fmt.Errorf("%w: want {\"code\",\"message\"}", ErrMalformed)
	var w struct {
		Code    json.RawMessage `json:"code"`
		Message string          `json:"message"`
	}
	if err := json.Unmarshal(raw, &w); err != nil {
		return DeliveryError{}, malformed
	}
	de := DeliveryError{Message: w.Message}
	var n json.Number
	switch {
	case len(w.Code) == 0 || string(w.Code) == "null":
	case json.Unmarshal(w.Code, &de.Code) == nil:
	case json.Unmarshal(w.Code, &n) == nil:
		de.Code = n.String()
	default:
		return DeliveryError{}, malformed
	}
	return de, nil
}

func requiredString(raw json.RawMessage) (string, error) {
	s, err := optionalString(raw)
	if err != nil {
		return "", err
	}
	if s == "" {
		return "", ErrMissing
	}
	return s, nil
}

func optionalString(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	if s, ok := plainString(raw); ok {
		return strings.TrimSpace(s), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("%w: want a string", ErrMalformed)
	}
	return strings.TrimSpace(s), nil
}

// plainString is the value of a JSON string without escapes, control
// characters or invalid UTF-8 — what json.Unmarshal would give for it —
// read without the decoder (a timestamp's 1 µs of a webhook's CPU); ok is
// false for anything else, which the decoder then reads.
func plainString(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	in := raw[1 : len(raw)-1]
	for _, c := range in {
		if c < 0x20 || c == '"' || c == '\\' {
			return "", false
		}
	}
	if !utf8.Valid(in) {
		return "", false
	}
	return string(in), true
}

// enumValue reads a channel or status: required, upper-cased, and well-formed.
func enumValue(raw json.RawMessage) (string, error) {
	s, err := requiredString(raw)
	if err != nil {
		return "", err
	}
	s = strings.ToUpper(s)
	if !WellFormed(s) {
		return "", fmt.Errorf("%w: %.64q is not an upper-case word", ErrMalformed, s)
	}
	return s, nil
}

func canonicalUUID(s string) (string, error) {
	id, err := uuid.Parse(s)
	if err != nil || len(s) != 36 {
		return "", fmt.Errorf("%w: %.64q", ErrInvalidUUID, s)
	}
	if strings.ContainsAny(s, "ABCDEF") {
		return id.String(), nil
	}
	return s, nil // already canonical: 36 characters that parse, in lower case
}

// timestampLayouts are tried in order; tyntec documents RFC 3339, and the zone-less
// form some Java serializers emit is read as UTC. Other spellings go through
// respell first.
var timestampLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999"}

// respell rewrites the spellings of a date-time that RFC 3339 allows (a
// lower-case "t" or "z", a space between date and time: §5.6 and its note)
// and the "+0000" offset of Java's common formatters into the one
// time.RFC3339Nano reads; ok is false when there was nothing to rewrite.
// Only a timestamp the layouts refused pays for it.
func respell(s string) (string, bool) {
	if len(s) < len("2006-01-02T15:04:05") {
		return s, false
	}
	b := rfc3339Spelling([]byte(s))
	// ±hhmm without its colon, after the seconds.
	if n := len(b); n >= 24 && (b[n-5] == '+' || b[n-5] == '-') && allDigits(b[n-4:]) {
		b = append(b[:n-2:n-2], ':', b[n-2], b[n-1])
	}
	return string(b), string(b) != s
}

// rfc3339Spelling rewrites b, at least a date and a time long, from the
// spellings RFC 3339 allows to time.RFC3339Nano's: "t" or a space between
// date and time as "T", a final "z" as "Z".
func rfc3339Spelling(b []byte) []byte {
	if c := b[10]; c == 't' || c == ' ' {
		b[10] = 'T'
	}
	if b[len(b)-1] == 'z' {
		b[len(b)-1] = 'Z'
	}
	return b
}

// ParseRFC3339 reads an RFC 3339 time in any of its spellings (T, t or a
// space between date and time, Z or z), and nothing else: unlike
// ParseTime, no zone-less time and no Java "+0000". It is how otpscope
// reads the times a caller chooses (API windows, the app's reports), which
// must say their zone.
func ParseRFC3339(s string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil && len(s) >= len("2006-01-02T15:04:05Z") {
		t, err = time.Parse(time.RFC3339Nano, string(rfc3339Spelling([]byte(s))))
	}
	return t.UTC(), err == nil
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// The sane range of a delivery timestamp. tyntec's 2FA API is younger than
// MinTimestamp, and a fact cannot come from further in the future than a
// clock's skew: a timestamp outside is kept as text, never stored as a date
// (ClickHouse's DateTime64 would wrap it: 9999-12-31 became 1816-03-30) nor
// allowed to send the rollups walking decades of empty days.
var (
	MinTimestamp = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	MaxClockSkew = 24 * time.Hour
)

// SaneTimestamp reports whether t lies in the sane range for a fact received
// at receivedAt.
func SaneTimestamp(t, receivedAt time.Time) bool {
	return !t.Before(MinTimestamp) && !t.After(receivedAt.Add(MaxClockSkew))
}

// parseTimestamp returns tyntec's timestamp, or receivedAt (and true) when it is
// missing, unparseable or out of the sane range: the fact is kept, its time is
// marked as approximate, and original keeps what was sent.
func parseTimestamp(raw json.RawMessage, receivedAt time.Time) (t time.Time, fromReceipt bool, original string) {
	s, err := optionalString(raw)
	if err != nil {
		return receivedAt, true, string(raw)
	}
	if s == "" {
		return receivedAt, true, ""
	}
	if t, ok := ParseTime(s); ok && SaneTimestamp(t, receivedAt) {
		return t, false, ""
	}
	return receivedAt, true, s
}

// ParseTime reads a timestamp the way a webhook's is read (RFC 3339 in
// any of its spellings, Java's +0000, zone-less as UTC), without the sane
// range: ok is false when s is none of them.
func ParseTime(s string) (time.Time, bool) {
	if t, ok := parseLayouts(s); ok {
		return t.UTC(), true
	}
	if r, changed := respell(s); changed {
		if t, ok := parseLayouts(r); ok {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

func parseLayouts(s string) (time.Time, bool) {
	for _, layout := range timestampLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
