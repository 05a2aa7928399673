package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	fastjson "github.com/segmentio/encoding/json"
)

// OTPState is an OTP's verification status, tyntec's otpStatus (v4 and v1 use
// the same words).
type OTPState string

// The OTP statuses tyntec documents.
const (
	OTPActive          OTPState = "ACTIVE"
	OTPVerified        OTPState = "VERIFIED"
	OTPExpired         OTPState = "EXPIRED"
	OTPWrongCode       OTPState = "WRONG_CODE"
	OTPTooManyAttempts OTPState = "TOO_MANY_ATTEMPTS"
	// OTPAlreadyReported is only a validation answer: the OTP was verified before.
	OTPAlreadyReported OTPState = "ALREADY_REPORTED"
)

// Known reports whether s is one of the statuses tyntec documents.
func (s OTPState) Known() bool {
	switch s {
	case OTPActive, OTPVerified, OTPExpired, OTPWrongCode, OTPTooManyAttempts, OTPAlreadyReported:
		return true
	}
	return false
}

// UnmarshalJSON reads a status as the webhook reads its words: case and
// surrounding spaces do not matter, so an answer's "verified" is VERIFIED,
// final, and not an unknown status that keeps the OTP polled to its expiry.
func (s *OTPState) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil // as for a plain string
	}
	var w string
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*s = OTPState(strings.ToUpper(strings.TrimSpace(w)))
	return nil
}

// Final reports whether s can no longer change.
func (s OTPState) Final() bool {
	return s == OTPVerified || s == OTPExpired || s == OTPTooManyAttempts
}

// Open reports whether the OTP can still be verified: active, or a wrong code
// was entered and attempts remain.
func (s OTPState) Open() bool { return s == OTPActive || s == OTPWrongCode }

// OTPStatusFinal reports whether an OTP status, as text, can no longer change.
func OTPStatusFinal(s string) bool { return OTPState(s).Final() }

// Sources of an OTP status besides SourcePoll.
const SourceUpstream = "upstream" // reported by the service that validated the OTP

// OTPStatus is a snapshot of an OTP's verification status, read by the poller
// (GET /2fa/v4/otp/{id} or /2fa/v1/otp/{id}) or reported by an upstream service.
// It is the payload of tyntec.2fa.otp.<STATUS>.
type OTPStatus struct {
	OTPID        string    `json:"otpId"`
	API          string    `json:"api"` // "v4" or "v1"
	Status       OTPState  `json:"otpStatus"`
	ProfileID    string    `json:"profileId,omitempty"`
	AttemptCount int       `json:"attemptCount,omitempty"`
	Created      time.Time `json:"otpCreated,omitzero"`
	Expires      time.Time `json:"otpExpire,omitzero"`
	ObservedAt   time.Time `json:"observedAt"`
	Source       string    `json:"source"` // SourcePoll or SourceUpstream
	// SampleRate is the share of delivered OTPs whose final status the poller
	// reads when the API budget cannot cover all (1 = every OTP); analytics scale
	// conversion by it and say it is sampled.
	SampleRate float64 `json:"sampleRate"`
}

// V1Event is one event of a v1 OTP (GET /2fa/v1/otp/{id}/events), the payload of
// tyntec.2fa.v1event.
type V1Event struct {
	OTPID      string    `json:"otpId"`
	Type       string    `json:"type"`
	Status     string    `json:"status,omitempty"` // success, failed or empty
	StatusText string    `json:"statusText,omitempty"`
	Created    time.Time `json:"created"`
	// CreatedFromReceipt says tyntec gave no usable time for the event
	// (neither created nor timestampCreated): Created is then when the
	// poller read it.
	CreatedFromReceipt bool      `json:"createdFromReceipt,omitempty"`
	ObservedAt         time.Time `json:"observedAt"`
}

// Resend results, the last token of tyntec.2fa.resend.<RESULT>.
const (
	ResendSent    = "sent"
	ResendSkipped = "skipped"
	ResendFailed  = "failed"
	ResendDryRun  = "dryrun"
)

// Resend is the audit record of one resend decision.
type Resend struct {
	OTPID     string `json:"otpId"`
	ProfileID string `json:"profileId,omitempty"`
	// DecisionID names the decision (e.g. otpId + the failure that triggered it);
	// it is what two poller replicas agree on so that only one acts.
	DecisionID     string    `json:"decisionId"`
	Result         string    `json:"result"`
	Reason         string    `json:"reason,omitempty"`
	Via            string    `json:"via,omitempty"` // AUTO, SMS or VOICE
	TriggerChannel Channel   `json:"triggerChannel,omitempty"`
	TriggerStatus  Status    `json:"triggerStatus,omitempty"`
	Attempt        int       `json:"attempt"` // 1 for the first resend of this OTP
	DecidedAt      time.Time `json:"decidedAt"`
	DryRun         bool      `json:"dryRun,omitempty"`
}

// Reconcile results, the last token of tyntec.2fa.reconcile.<RESULT>.
const (
	// ReconcileUnrecoverable: a delivery fact no webhook reported that the
	// poller cannot read from tyntec either (the v4 API shows no delivery
	// facts, and tyntec's v1 API does not know the OTP).
	ReconcileUnrecoverable = "unrecoverable"
)

// Reconcile is what the poller concluded about one attempt whose outcome no
// webhook reported, when it could not recover the outcome: the payload of
// tyntec.2fa.reconcile.<RESULT>. Recovered facts are not reconcile records;
// they are delivery facts with source poll and missedWebhook.
type Reconcile struct {
	OTPID     string `json:"otpId"`
	API       string `json:"api"` // "v4" or "v1"
	ProfileID string `json:"profileId,omitempty"`
	Result    string `json:"result"` // ReconcileUnrecoverable
	// Channel is the attempt's channel; empty when a whole attempt on an
	// unknown channel may be missing.
	Channel Channel `json:"channel,omitempty"`
	// Since is when the attempt was dispatched (its last known fact), which
	// places it in a window as its first event places any attempt.
	Since  time.Time `json:"since"`
	Reason string    `json:"reason"`
	// OTPStatus and AttemptCount are what v4 showed when the poller gave up.
	OTPStatus    OTPState  `json:"otpStatus,omitempty"`
	AttemptCount int       `json:"attemptCount,omitempty"`
	ObservedAt   time.Time `json:"observedAt"`
}

// Track announces an OTP to the poller, or reports its final status, from an
// upstream service (tyntec.2fa.track or POST /otps/track).
type Track struct {
	OTPID     string    `json:"otpId"`
	API       string    `json:"api,omitempty"`    // "v4" (default) or "v1"
	Status    string    `json:"status,omitempty"` // e.g. VERIFIED, when reporting an outcome
	ProfileID string    `json:"profileId,omitempty"`
	At        time.Time `json:"at,omitzero"`
	// CorrelationID joins the OTP to a login's journey: the correlationId of
	// the silent-auth attempt or push request that came before it.
	CorrelationID string `json:"correlationId,omitempty"`
}

// Types of the records above, as CloudEvents types: each is otpscope's own
// record (built from what the poller read, not a body tyntec sent), so each
// is in otpscope's domain and versioned like TypeDeadLetter.
const (
	TypeOTPStatus = "io.otpscope.OTPStatus.v1"
	TypeV1Event   = "io.otpscope.V1Event.v1"
	TypeResend    = "io.otpscope.Resend.v1"
	TypeTrack     = "io.otpscope.Track.v1"
	TypeReport    = "io.otpscope.Report.v1"
	TypeAlert     = "io.otpscope.Alert.v1"
	TypeReconcile = "io.otpscope.Reconcile.v1"
)

// NewOTPStatusMessage wraps a status snapshot. The same status with the same
// attempt count is one fact, however often it is read.
func NewOTPStatusMessage(s *OTPStatus) (Message, error) {
	id := "os-" + digest(s.OTPID, string(s.Status), strconv.Itoa(s.AttemptCount))
	return newMessage(OTPStatusSubject(s.Status), id, "poller", TypeOTPStatus, s.ObservedAt, s.OTPID, s)
}

// NewV1EventMessage wraps a v1 event; its id derives from its content.
func NewV1EventMessage(e *V1Event) (Message, error) {
	id := "v1-" + digest(e.OTPID, e.Type, e.Status, e.StatusText, e.Created.UTC().Format(time.RFC3339Nano))
	return newMessage(SubjectV1Event, id, "poller", TypeV1Event, e.Created, e.OTPID, e)
}

// NewResendMessage wraps a resend audit record; one decision has one record per
// result.
func NewResendMessage(r *Resend) (Message, error) {
	id := "rs-" + digest(r.DecisionID, r.Result)
	return newMessage(ResendSubject(r.Result), id, "poller", TypeResend, r.DecidedAt, r.OTPID, r)
}

// NewReconcileMessage wraps a reconcile record; one attempt has one record
// per result, however often the poller concludes it.
func NewReconcileMessage(r *Reconcile) (Message, error) {
	id := "rc-" + digest(r.OTPID, string(r.Channel), r.Result, r.Since.UTC().Format(time.RFC3339Nano))
	return newMessage(ReconcileSubject(r.Result), id, "poller", TypeReconcile, r.ObservedAt, r.OTPID, r)
}

// NewTrackMessage wraps a tracking registration or reported outcome.
func NewTrackMessage(tr *Track) (Message, error) {
	parts := []string{tr.OTPID, tr.API, tr.Status}
	if tr.CorrelationID != "" { // ids of registrations without one stay as they were
		parts = append(parts, tr.CorrelationID)
	}
	id := "tr-" + digest(parts...)
	return newMessage(SubjectTrack, id, "ingest", TypeTrack, tr.At, tr.OTPID, tr)
}

func newMessage(subject, id, source, typ string, at time.Time, ceSubject string, v any) (Message, error) {
	// segmentio's encoder writes what encoding/json writes (the same
	// escaping and key order; FuzzBodiesAsEncodingJSON), in half the time
	// — except that it ignores omitzero, so a record with a zero omitzero
	// field (an upstream status's unknown otpCreated) goes to encoding/json.
	marshal := fastjson.Marshal
	if zeroOmitted(v) {
		marshal = json.Marshal
	}
	data, err := marshal(v)
	if err != nil {
		return Message{}, fmt.Errorf("encode %s: %w", typ, err)
	}
	return NewMessage(subject, id, source, typ, at, ceSubject, data), nil
}

// DecodeTrack parses and validates a tracking registration: otpId must be a
// UUID, api "v4" (the default) or "v1", status empty or an upper-case word,
// correlationId (optional) an id of at most 128 printable characters, at
// (optional, else receivedAt) within SaneTimestamp's range.
func DecodeTrack(body []byte, receivedAt time.Time) (Track, error) {
	body = jsonText(body)
	var in struct {
		Track
		// At, read as text, shadows Track's: RFC 3339 in any of its
		// spellings, and an explicit zero time is a time (refused), not
		// one left out.
		At *string `json:"at"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return in.Track, trackError(body)
	}
	tr := in.Track
	id, err := canonicalUUID(strings.TrimSpace(tr.OTPID))
	if err != nil {
		if tr.OTPID == "" {
			err = ErrMissing
		}
		return tr, &FieldError{Index: -1, Field: "otpId", Err: err}
	}
	tr.OTPID = id
	switch tr.API = strings.ToLower(strings.TrimSpace(tr.API)); tr.API {
	case "":
		tr.API = "v4"
	case "v4", "v1":
	default:
		return tr, &FieldError{Index: -1, Field: "api", Err: fmt.Errorf("%w: want v4 or v1", ErrMalformed)}
	}
	if tr.Status = strings.ToUpper(strings.TrimSpace(tr.Status)); tr.Status != "" && !WellFormed(tr.Status) {
		return tr, &FieldError{Index: -1, Field: "status", Err: fmt.Errorf("%w: %.64q", ErrMalformed, tr.Status)}
	}
	if tr.ProfileID != "" {
		if tr.ProfileID, err = canonicalUUID(tr.ProfileID); err != nil {
			return tr, &FieldError{Index: -1, Field: "profileId", Err: err}
		}
	}
	if tr.CorrelationID = strings.TrimSpace(tr.CorrelationID); tr.CorrelationID != "" && !validID(tr.CorrelationID) {
		return tr, &FieldError{Index: -1, Field: "correlationId", Err: fmt.Errorf("%w: want at most %d printable characters", ErrMalformed, maxIDLen)}
	}
	tr.At = receivedAt.UTC()
	if in.At != nil {
		at, ok := ParseRFC3339(*in.At)
		if !ok {
			return tr, &FieldError{Index: -1, Field: "at", Err: fmt.Errorf("%w: %.64q is not an RFC 3339 time", ErrMalformed, *in.At)}
		}
		if !SaneTimestamp(at, receivedAt) {
			// The caller's own clock: refused as the method endpoints'
			// times are, never stored (a DateTime64 wraps 9999-12-31 to
			// 1816).
			return tr, &FieldError{Index: -1, Field: "at", Err: fmt.Errorf("%w: %s is before %d or more than %v ahead", ErrMalformed, *in.At, MinTimestamp.Year(), MaxClockSkew)}
		}
		tr.At = at
	}
	return tr, nil
}

// trackError says what of a body Track could not take: the member of a
// wrong type, when the body is a JSON object, else the body.
func trackError(body []byte) *FieldError {
	var members map[string]json.RawMessage
	if !json.Valid(body) {
		return &FieldError{Index: -1, Err: ErrMalformedJSON}
	}
	if json.Unmarshal(body, &members) != nil {
		return &FieldError{Index: -1, Err: errors.New("not a tracking object")}
	}
	for _, m := range []struct {
		name string
		into any
		want string
	}{
		{"otpId", new(string), "a string"}, {"api", new(string), "a string"}, {"status", new(string), "a string"},
		{"profileId", new(string), "a string"}, {"correlationId", new(string), "a string"}, {"at", new(string), "an RFC 3339 time"},
	} {
		for name, raw := range members {
			if strings.EqualFold(name, m.name) && json.Unmarshal(raw, m.into) != nil {
				return &FieldError{Index: -1, Field: m.name, Err: fmt.Errorf("%w: want %s", ErrMalformed, m.want)}
			}
		}
	}
	return &FieldError{Index: -1, Err: ErrMalformedJSON}
}

// Alert is the payload of tyntec.2fa.alert.<RULE>: a rule of the reporter
// evaluated on the figures of the window [From, To) (To is when it was
// evaluated), firing or resolved.
type Alert struct {
	Rule    string `json:"rule"`
	Channel string `json:"channel,omitempty"`
	// State is AlertFiring (the rule holds in this window) or AlertResolved
	// (it held at the evaluation before and no longer does). A message
	// without one (stored before states existed) fired.
	State string `json:"state"`
	// Since is when the rule began to fire: the first evaluation that found
	// it holding, in a run of evaluations that all did. A resolved alert
	// keeps the Since of the firing it ends.
	Since     time.Time `json:"since"`
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	Value     float64   `json:"value"`
	Threshold float64   `json:"threshold"`
	// Value and Threshold are rates, but for delivery_slow milliseconds (a
	// channel's p95 latency, dispatch to DELIVERED) and for
	// error_budget_burn burn rates. Volume is the settled attempts
	// (delivery_rate_low), delivered attempts (delivery_slow), OTPs
	// (fallback_rate_high) or the longer window's settled journeys
	// (error_budget_burn).
	Volume  uint64 `json:"volume"`
	Summary string `json:"summary"`
	// Before is the same figure in the window before [From, To), as long
	// and ending at From (the hour before, on the default --alert-window):
	// whether a firing is a drop or how things stand. Only a firing alert
	// has it, and only when the reporter could read that window.
	Before *AlertBefore `json:"before,omitempty"`
	// SilencedBy is the id of the silence that covered the rule and
	// channel when the alert was evaluated (the reporter's silences: its
	// webhook did not post it); empty when none did.
	SilencedBy string `json:"silenced_by,omitempty"`
}

// AlertBefore is an alert's figure in the window before its own.
type AlertBefore struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Value is in the alert's Value's unit; null when there was nothing
	// to judge (no settled attempts, no delivered ones, no journeys).
	Value  *float64 `json:"value"`
	Volume uint64   `json:"volume"`
}

// The states of an alert.
const (
	AlertFiring   = "firing"
	AlertResolved = "resolved"
)

// NewAlertMessage wraps an alert. Its id derives from rule, channel and
// window, so one evaluation of one window alerts once (a re-run is
// deduplicated), and from the state when resolved, so that a later
// evaluation of the same window, on later facts, can resolve what an
// earlier one fired.
func NewAlertMessage(al *Alert) (Message, error) {
	parts := []string{al.Rule, al.Channel, al.From.UTC().Format(time.RFC3339Nano), al.To.UTC().Format(time.RFC3339Nano)}
	if al.State == AlertResolved {
		parts = append(parts, al.State) // a firing alert's id is as before states
	}
	id := "al-" + Digest(12, parts...)
	return newMessage(AlertSubject(al.Rule), id, "reporter", TypeAlert, al.To, "", al)
}

// zeroOmitted reports whether v, a record struct or a pointer to one (as
// every New…Message passes it), has an omitzero field holding its zero
// value.
func zeroOmitted(v any) bool {
	rv := reflect.Indirect(reflect.ValueOf(v))
	if rv.Kind() != reflect.Struct {
		return false
	}
	fields, ok := omitzeroFields.Load(rv.Type())
	if !ok {
		var idx []int
		for i := range rv.NumField() {
			_, opts, _ := strings.Cut(rv.Type().Field(i).Tag.Get("json"), ",")
			if slices.Contains(strings.Split(opts, ","), "omitzero") {
				idx = append(idx, i)
			}
		}
		fields, _ = omitzeroFields.LoadOrStore(rv.Type(), idx)
	}
	for _, i := range fields.([]int) {
		if rv.Field(i).IsZero() {
			return true
		}
	}
	return false
}

// omitzeroFields caches, by record type, the indices of its omitzero fields.
var omitzeroFields sync.Map
