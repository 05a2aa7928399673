package events

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"
)

// Verification methods besides the OTP: tyntec's Silent Authentication (seed
// 004) and push approvals (seed 003). otpscope counts each as a channel of
// the login's journey, beside tyntec's OTP channels (docs/analytics.md).
const (
	ChannelSilent Channel = "SILENT"
	ChannelPush   Channel = "PUSH"
)

// Method reports whether c is one of the methods' channels, which only
// their own endpoints write: a tyntec webhook naming one is refused, or
// tyntec's token could forge a method's figures.
func (c Channel) Method() bool { return c == ChannelSilent || c == ChannelPush }

// methodEndpoint is the endpoint that writes method channel c.
func (c Channel) methodEndpoint() string {
	if c == ChannelPush {
		return "push approvals (POST /webhooks/push)"
	}
	return "silent-auth outcomes (POST /silent-auth/outcomes)"
}

// Silent-auth results, as the app's backend reports them; the last token of
// tyntec.2fa.silent.<RESULT>.
const (
	SilentVerified    = "verified"
	SilentNotVerified = "not_verified"
	SilentError       = "error"
)

// Push approval statuses. The seed names none: these four are ASSUMED (the
// README says so), others are accepted and marked unknown. The last token of
// tyntec.2fa.push.<STATUS>.
const (
	PushPending  = "pending"
	PushApproved = "approved"
	PushDenied   = "denied"
	PushExpired  = "expired"
)

// MaxAttemptSpan is how far apart an attempt's (and a journey's) events may
// lie: the windowed analytics read MaxAttemptSpan either side of a window
// (store.MaxAttemptSpan is this), so a method report that spans more is
// refused rather than counted wrong. tyntec settles an attempt within its
// channel timeout (minutes); a push request lives secondsToExpire.
const MaxAttemptSpan = 24 * time.Hour

// silentErrors are the errors a silent-auth attempt can end with: the
// authorize redirect's (seed 004 and the YAML, which spell some differently),
// and the token and userinfo steps' as token_<error> / userinfo_<error>.
var silentErrors = map[string]bool{
	"invalid_client_id_request": true, "missing_scope": true, "insufficient_scope": true,
	"unsupported_scope": true, "missing_login_hint": true, "server_error": true,
	"no_data_session": true, "invalid_request": true, "invalid_scope": true,
	"token_invalid_request": true, "token_invalid_client": true, "token_permission_denied": true,
	"token_internal_server_error": true, "token_invalid_grant": true,
	"userinfo_invalid_token": true, "userinfo_invalid_client": true, "userinfo_unauthorized": true,
	"userinfo_permission_denied": true, "userinfo_internal_server_error": true,
}

// SilentOutcome is one silent-auth attempt as the app's backend reported it
// (POST /silent-auth/outcomes), the payload of tyntec.2fa.silent.<RESULT>.
// The phone number (loginHint) and tyntec's mobileId are never kept: only
// their keyed hashes (KeyedHash), which tell equal values apart from others
// without revealing them.
type SilentOutcome struct {
	AttemptID string `json:"attemptId"`
	// CorrelationID is the login's journey id; the attempt's own id when the
	// app sent none.
	CorrelationID string    `json:"correlationId"`
	ProfileID     string    `json:"profileId,omitempty"`
	Scope         string    `json:"scope,omitempty"`
	StartedAt     time.Time `json:"startedAt"`
	FinishedAt    time.Time `json:"finishedAt"`
	Result        string    `json:"result"`
	Error         string    `json:"error,omitempty"`
	LoginHintHash string    `json:"loginHintHash,omitempty"`
	MobileIDHash  string    `json:"mobileIdHash,omitempty"`
	// UnknownResult and UnknownError mark values otpscope did not know when
	// it was built; they are stored and counted as they are.
	UnknownResult bool      `json:"unknownResult,omitempty"`
	UnknownError  bool      `json:"unknownError,omitempty"`
	ReceivedAt    time.Time `json:"receivedAt"`
}

// PushEvent is one status of a push approval request: the provider's
// callback body (POST /webhooks/push) or what the poller read by uuid, the
// payload of tyntec.2fa.push.<STATUS>. Of the request's hidden details only
// the correlationId is kept, and the user's tfaId not at all: analytics need
// neither, and they may identify a person.
type PushEvent struct {
	UUID            string    `json:"uuid"`
	Status          string    `json:"status"`
	CreatedAt       time.Time `json:"createdAt"`
	UpdatedAt       time.Time `json:"updatedAt"`
	SecondsToExpire int       `json:"secondsToExpire,omitempty"`
	// CorrelationID is hiddenDetails.correlationId, the login's journey id;
	// the request's uuid when there is none.
	CorrelationID string `json:"correlationId"`
	UnknownStatus bool   `json:"unknownStatus,omitempty"`
	// Source is SourceWebhook (the callback) or SourcePoll.
	Source     string    `json:"source"`
	ReceivedAt time.Time `json:"receivedAt"`
}

// Settled reports whether the request can no longer change: any status but
// pending (an unknown one included: the provider moved it on).
func (p *PushEvent) Settled() bool { return p.Status != PushPending }

// Fact is the attempt's latest fact as a delivery fact of channel SILENT:
// its settling fact at finishedAt — DELIVERED when verified, UNDELIVERABLE
// when not_verified (code not_verified) or error (code the error) — or, for
// a result otpscope does not know, that result upper-cased (marked
// unknown). OTPID is the attempt's AttemptUUID. The same mapping as
// schema/0010_methods.sql's view (the store's tests hold them equal); the
// console's live stream shows it.
func (o *SilentOutcome) Fact() DeliveryStatus {
	d := DeliveryStatus{Channel: ChannelSilent, OTPID: AttemptUUID(ChannelSilent, o.AttemptID), ProfileID: o.ProfileID,
		Timestamp: o.FinishedAt, ReceivedAt: o.ReceivedAt, Source: SourceWebhook}
	switch o.Result {
	case SilentVerified:
		d.Status = StatusDelivered
	case SilentNotVerified:
		d.Status, d.Error = StatusUndeliverable, &DeliveryError{Code: SilentNotVerified}
	case SilentError:
		d.Status, d.Error = StatusUndeliverable, &DeliveryError{Code: o.Error}
	default:
		d.Status, d.UnknownStatus = Status(strings.ToUpper(o.Result)), true
	}
	return d
}

// Fact is the request's latest fact as a delivery fact of channel PUSH: a
// DISPATCHED at createdAt while pending; at updatedAt a DELIVERED when
// approved, an UNDELIVERABLE when denied, a TIMED_OUT when expired (code
// the status), or an unknown status upper-cased. As Silent's Fact, the
// view's mapping.
func (p *PushEvent) Fact() DeliveryStatus {
	d := DeliveryStatus{Channel: ChannelPush, OTPID: AttemptUUID(ChannelPush, p.UUID), Timestamp: p.UpdatedAt,
		ReceivedAt: p.ReceivedAt, Source: p.Source, MissedWebhook: p.Source == SourcePoll}
	switch p.Status {
	case PushPending:
		d.Status, d.Timestamp = StatusDispatched, p.CreatedAt
	case PushApproved:
		d.Status = StatusDelivered
	case PushDenied:
		d.Status, d.Error = StatusUndeliverable, &DeliveryError{Code: PushDenied}
	case PushExpired:
		d.Status, d.Error = StatusTimedOut, &DeliveryError{Code: PushExpired}
	default:
		d.Status, d.UnknownStatus = Status(strings.ToUpper(p.Status)), true
	}
	return d
}

// CloudEvents types of the method records: otpscope's own records, built
// from what the app or the push provider reported.
const (
	TypeSilentOutcome = "io.otpscope.SilentOutcome.v1"
	TypePushApproval  = "io.otpscope.PushApproval.v1"
)

// Wildcards of the method subjects.
const (
	SubjectSilentAll = SubjectRoot + ".silent.>"
	SubjectPushAll   = SubjectRoot + ".push.>"
)

// SilentSubject is where a silent-auth outcome is published: tyntec.2fa.silent.<RESULT>.
func SilentSubject(result string) string { return SubjectRoot + ".silent." + token(result) }

// PushSubject is where a push approval status is published: tyntec.2fa.push.<STATUS>.
func PushSubject(status string) string { return SubjectRoot + ".push." + token(status) }

// NewSilentOutcomeMessage wraps a silent-auth outcome. One attempt has one
// outcome: the id derives from attemptId and result only, so the app's
// retries (and a batch sent twice) are dropped as duplicates.
func NewSilentOutcomeMessage(o *SilentOutcome) (Message, error) {
	id := "sa-" + digest(o.AttemptID, o.Result)
	return newMessage(SilentSubject(o.Result), id, "ingest", TypeSilentOutcome, o.FinishedAt, o.AttemptID, o)
}

// NewPushMessage wraps a push approval status; a request has one fact per
// status, whether the callback or the poller reported it.
func NewPushMessage(p *PushEvent) (Message, error) {
	id := "pu-" + digest(p.UUID, p.Status)
	source := "ingest"
	if p.Source == SourcePoll {
		source = "poller"
	}
	return newMessage(PushSubject(p.Status), id, source, TypePushApproval, p.UpdatedAt, p.UUID, p)
}

// AttemptUUID is the UUID a method attempt takes where analytics key
// attempts by OTP id (channel_events): the id itself when it is a UUID (a
// push request's uuid), else a name-based UUID (v5) of the channel and the
// id, the same on every run and every replica.
func AttemptUUID(ch Channel, id string) string {
	if u, err := canonicalUUID(id); err == nil {
		return u
	}
	return uuid.NewSHA1(methodNamespace, []byte(string(ch)+"/"+id)).String()
}

// methodNamespace is the v5 namespace of AttemptUUID; never change it, or
// stored attempts and new ones stop matching.
var methodNamespace = uuid.MustParse("5b0c7a8e-3f0e-4b1c-9a56-0d7f2e1c9b44")

// KeyedHash returns the pseudonym function of key: HMAC-SHA256 in hex, ""
// for "". Equal values give equal pseudonyms under one key; without the key
// a pseudonym cannot be checked against a guessed phone number.
func KeyedHash(key []byte) func(string) string {
	return func(v string) string {
		if v == "" {
			return ""
		}
		m := hmac.New(sha256.New, key)
		m.Write([]byte(v))
		return hex.EncodeToString(m.Sum(nil))
	}
}

// methodWord is what a result or status may look like: lower-case words,
// which become a subject token.
var methodWord = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// maxIDLen bounds ids and other free strings the apps send.
const maxIDLen = 128

// DecodeSilentOutcomes parses a POST /silent-auth/outcomes body: one object
// or a non-empty array of them, all or nothing (the first invalid object is
// reported as a *FieldError with its index). hash pseudonymizes loginHint
// and mobileId; the raw values are not kept.
func DecodeSilentOutcomes(body []byte, receivedAt time.Time, hash func(string) string) ([]SilentOutcome, error) {
	return decodeEach(body, func(raw json.RawMessage) (SilentOutcome, *FieldError) {
		return decodeSilent(raw, receivedAt.UTC(), func(v string) (string, error) { return hash(v), nil })
	})
}

// DecodePushEvents parses a POST /webhooks/push body: one ApprovalRequest
// (the callback) or a non-empty array of them, all or nothing.
func DecodePushEvents(body []byte, receivedAt time.Time) ([]PushEvent, error) {
	return decodeEach(body, func(raw json.RawMessage) (PushEvent, *FieldError) {
		return DecodePushEvent(raw, receivedAt.UTC(), SourceWebhook)
	})
}

// decodeEach applies one to the object, or to each element of the array,
// that body holds.
func decodeEach[T any](body []byte, one func(json.RawMessage) (T, *FieldError)) ([]T, error) {
	body = jsonText(body)
	if !json.Valid(body) {
		return nil, &FieldError{Index: -1, Err: ErrMalformedJSON}
	}
	switch body[0] {
	case '{':
		v, err := one(body)
		if err != nil {
			err.Index = -1
			return nil, err
		}
		return []T{v}, nil
	case '[':
		var items []json.RawMessage
		if err := json.Unmarshal(body, &items); err != nil {
			return nil, &FieldError{Index: -1, Err: ErrMalformedJSON}
		}
		if len(items) == 0 {
			return nil, &FieldError{Index: -1, Err: ErrEmptyBatch}
		}
		out := make([]T, 0, len(items))
		for i, item := range items {
			v, err := one(item)
			if err != nil {
				err.Index = i
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	// Neither: one says how it names what it wanted.
	_, err := one(body)
	err.Index = -1
	return nil, err
}

type silentWire struct {
	AttemptID     json.RawMessage `json:"attemptId"`
	CorrelationID json.RawMessage `json:"correlationId"`
	ProfileID     json.RawMessage `json:"profileId"`
	Scope         json.RawMessage `json:"scope"`
	StartedAt     json.RawMessage `json:"startedAt"`
	FinishedAt    json.RawMessage `json:"finishedAt"`
	Result        json.RawMessage `json:"result"`
	Error         json.RawMessage `json:"error"`
	LoginHint     json.RawMessage `json:"loginHint"`
	MobileID      json.RawMessage `json:"mobileId"`
}

// decodeSilent reads one outcome; hash gives loginHint's and mobileId's
// pseudonyms, or refuses the value.
func decodeSilent(raw json.RawMessage, receivedAt time.Time, hash func(string) (string, error)) (SilentOutcome, *FieldError) {
	var w silentWire
	if len(raw) == 0 || raw[0] != '{' {
		return SilentOutcome{}, &FieldError{Err: ErrNotAnObject}
	}
	if err := json.Unmarshal(raw, &w); err != nil {
		return SilentOutcome{}, &FieldError{Err: ErrMalformedJSON}
	}
	o := SilentOutcome{ReceivedAt: receivedAt}
	var err error
	if o.AttemptID, err = idString(w.AttemptID, true); err != nil {
		return o, &FieldError{Field: "attemptId", Err: err}
	}
	if o.CorrelationID, err = idString(w.CorrelationID, false); err != nil {
		return o, &FieldError{Field: "correlationId", Err: err}
	}
	if o.CorrelationID == "" {
		o.CorrelationID = o.AttemptID
	}
	if o.ProfileID, err = profileName(w.ProfileID); err != nil {
		return o, &FieldError{Field: "profileId", Err: err}
	}
	if o.Scope, err = idString(w.Scope, false); err != nil {
		return o, &FieldError{Field: "scope", Err: err}
	}
	if o.StartedAt, err = requiredTime(w.StartedAt, receivedAt); err != nil {
		return o, &FieldError{Field: "startedAt", Err: err}
	}
	if o.FinishedAt, err = requiredTime(w.FinishedAt, receivedAt); err != nil {
		return o, &FieldError{Field: "finishedAt", Err: err}
	}
	if o.FinishedAt.Before(o.StartedAt) {
		return o, &FieldError{Field: "finishedAt", Err: fmt.Errorf("%w: before startedAt", ErrMalformed)}
	}
	if o.FinishedAt.Sub(o.StartedAt) > MaxAttemptSpan {
		return o, &FieldError{Field: "finishedAt", Err: fmt.Errorf("%w: more than %v after startedAt", ErrMalformed, MaxAttemptSpan)}
	}
	if o.Result, err = methodValue(w.Result); err != nil {
		return o, &FieldError{Field: "result", Err: err}
	}
	switch o.Result {
	case SilentVerified, SilentNotVerified, SilentError:
	default:
		o.UnknownResult = true
	}
	if o.Error, err = idString(w.Error, o.Result == SilentError); err != nil {
		return o, &FieldError{Field: "error", Err: err}
	}
	o.UnknownError = o.Error != "" && !silentErrors[o.Error]
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		dst  *string
	}{{"loginHint", w.LoginHint, &o.LoginHintHash}, {"mobileId", w.MobileID, &o.MobileIDHash}} {
		v, err := optionalString(f.raw)
		if err == nil {
			*f.dst, err = hash(v)
		}
		if err != nil {
			return o, &FieldError{Field: f.name, Err: err}
		}
	}
	return o, nil
}

// pushWire holds every member raw, so that a member of the wrong type is
// refused naming it, not as malformed JSON.
type pushWire struct {
	UUID            json.RawMessage `json:"uuid"`
	Status          json.RawMessage `json:"status"`
	CreatedAt       json.RawMessage `json:"createdAt"`
	UpdatedAt       json.RawMessage `json:"updatedAt"`
	SecondsToExpire json.RawMessage `json:"secondsToExpire"`
	HiddenDetails   json.RawMessage `json:"hiddenDetails"`
}

// DecodePushEvent parses one ApprovalRequest (the callback body, or the
// approval_request of GET /onetouch/json/approval_requests/{uuid}); source
// says who reported it. Without updatedAt, a pending request takes
// createdAt and a settled one receivedAt (not before createdAt, at most
// MaxAttemptSpan after it).
func DecodePushEvent(raw json.RawMessage, receivedAt time.Time, source string) (PushEvent, *FieldError) {
	var w pushWire
	if len(raw) == 0 || raw[0] != '{' {
		return PushEvent{}, &FieldError{Index: -1, Err: ErrNotAnObject}
	}
	if err := json.Unmarshal(raw, &w); err != nil {
		return PushEvent{}, &FieldError{Index: -1, Err: fmt.Errorf("%w: %v", ErrMalformedJSON, err)}
	}
	p := PushEvent{Source: source, ReceivedAt: receivedAt.UTC()}
	var err error
	if p.UUID, err = idString(w.UUID, true); err != nil {
		return p, &FieldError{Index: -1, Field: "uuid", Err: err}
	}
	if p.Status, err = methodValue(w.Status); err != nil {
		return p, &FieldError{Index: -1, Field: "status", Err: err}
	}
	switch p.Status {
	case PushPending, PushApproved, PushDenied, PushExpired:
	default:
		p.UnknownStatus = true
	}
	if p.CreatedAt, err = requiredTime(w.CreatedAt, receivedAt); err != nil {
		return p, &FieldError{Index: -1, Field: "createdAt", Err: err}
	}
	if present(w.UpdatedAt) {
		if p.UpdatedAt, err = requiredTime(w.UpdatedAt, receivedAt); err != nil {
			return p, &FieldError{Index: -1, Field: "updatedAt", Err: err}
		}
		if p.UpdatedAt.Before(p.CreatedAt) {
			return p, &FieldError{Index: -1, Field: "updatedAt", Err: fmt.Errorf("%w: before createdAt", ErrMalformed)}
		}
		if p.UpdatedAt.Sub(p.CreatedAt) > MaxAttemptSpan {
			return p, &FieldError{Index: -1, Field: "updatedAt", Err: fmt.Errorf("%w: more than %v after createdAt", ErrMalformed, MaxAttemptSpan)}
		}
	} else {
		// A settled status changed at the latest when it reached us;
		// createdAt would make it a 0 ms approval. A pending one changed
		// at creation. Received more than MaxAttemptSpan late (a retried
		// callback, an old request polled), it takes the latest time the
		// analytics can place: still between createdAt and receivedAt.
		p.UpdatedAt = p.CreatedAt
		if p.Settled() && p.ReceivedAt.After(p.CreatedAt) {
			p.UpdatedAt = p.ReceivedAt
			if latest := p.CreatedAt.Add(MaxAttemptSpan); p.UpdatedAt.After(latest) {
				p.UpdatedAt = latest
			}
		}
	}
	if present(w.SecondsToExpire) {
		var n json.Number
		err := json.Unmarshal(w.SecondsToExpire, &n)
		var secs int64
		if err == nil {
			secs, err = n.Int64()
		}
		if err != nil || secs < 0 || secs > 366*24*3600 {
			return p, &FieldError{Index: -1, Field: "secondsToExpire", Err: fmt.Errorf("%w: want seconds, 0 to a year", ErrMalformed)}
		}
		p.SecondsToExpire = int(secs)
	}
	if present(w.HiddenDetails) {
		var hidden map[string]json.RawMessage
		if w.HiddenDetails[0] != '{' || json.Unmarshal(w.HiddenDetails, &hidden) != nil {
			return p, &FieldError{Index: -1, Field: "hiddenDetails", Err: fmt.Errorf("%w: want an object", ErrMalformed)}
		}
		if c := hidden["correlationId"]; present(c) {
			var s string
			if json.Unmarshal(c, &s) != nil || !validID(strings.TrimSpace(s)) {
				return p, &FieldError{Index: -1, Field: "hiddenDetails.correlationId", Err: fmt.Errorf("%w: want a string of at most %d printable characters", ErrMalformed, maxIDLen)}
			}
			p.CorrelationID = strings.TrimSpace(s)
		}
	}
	if p.CorrelationID == "" {
		p.CorrelationID = p.UUID
	}
	return p, nil
}

// present reports whether a member was sent with a value (not absent, not null).
func present(raw json.RawMessage) bool { return len(raw) > 0 && string(raw) != "null" }

// idString reads an id-like string: printable, at most maxIDLen bytes.
func idString(raw json.RawMessage, required bool) (string, error) {
	read := optionalString
	if required {
		read = requiredString
	}
	s, err := read(raw)
	if err != nil {
		return "", err
	}
	if s != "" && !validID(s) {
		return "", fmt.Errorf("%w: want at most %d printable characters", ErrMalformed, maxIDLen)
	}
	return s, nil
}

// profileName reads a silent-auth profileId: tyntec's profile (a UUID) or
// application ("default") the login falls back to, so a name of letters,
// digits and . _ : - only. It is a value people pick from lists and
// dashboards put in their SQL, where a quote or backslash has no business.
// Surrounding spaces are dropped, as from every string of the body, and an
// empty one is no profile: the published outcome leaves it out, so it holds
// what the schema's pattern (docs/events) accepts or no profileId.
func profileName(raw json.RawMessage) (string, error) {
	s, err := optionalString(raw)
	if err != nil || s == "" {
		return s, err
	}
	if len(s) > maxIDLen || strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._:-", r))
	}) {
		return "", fmt.Errorf("%w: want a profile's id or name, at most %d letters, digits and . _ : -", ErrMalformed, maxIDLen)
	}
	return s, nil
}

func validID(s string) bool {
	if s == "" || len(s) > maxIDLen {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// methodValue reads a result or status: required, lower-cased, a word.
func methodValue(raw json.RawMessage) (string, error) {
	s, err := requiredString(raw)
	if err != nil {
		return "", err
	}
	s = strings.ToLower(s)
	if !methodWord.MatchString(s) {
		return "", fmt.Errorf("%w: %.64q is not a lower-case word", ErrMalformed, s)
	}
	return s, nil
}

// requiredTime reads an RFC 3339 time in the sane range for receivedAt. A
// method's times are the app's own report, so a bad one is refused (the
// app can fix it), not replaced by the receive time as a webhook's is.
func requiredTime(raw json.RawMessage, receivedAt time.Time) (time.Time, error) {
	s, err := requiredString(raw)
	if err != nil {
		return time.Time{}, err
	}
	t, ok := ParseRFC3339(s)
	if !ok {
		return time.Time{}, fmt.Errorf("%w: %.64q is not an RFC 3339 time", ErrMalformed, s)
	}
	if !SaneTimestamp(t, receivedAt) {
		return time.Time{}, fmt.Errorf("%w: %s is before %d or more than %v ahead", ErrMalformed, s, MinTimestamp.Year(), MaxClockSkew)
	}
	return t.UTC(), nil
}
