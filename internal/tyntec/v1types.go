package tyntec

import (
	"time"

	"github.com/otpscope/otpscope/internal/events"
)

// V1OTP is the v1 status of one OTP (OtpStatusEntity). Created and Expire are
// Unix milliseconds; TimestampCreated and TimestampExpire the same instants as
// UTC text.
type V1OTP struct {
	AccountID        string          `json:"accountId,omitempty"`
	ApplicationID    string          `json:"applicationId,omitempty"`
	AttemptCount     int             `json:"attemptCount"`
	Created          int64           `json:"created"`
	Expire           int64           `json:"expire"`
	Number           string          `json:"number"`
	OTPID            string          `json:"otpId"`
	OTPStatus        events.OTPState `json:"otpStatus"`
	ReferenceID      string          `json:"referenceId,omitempty"`
	TimestampCreated string          `json:"timestampCreated,omitempty"`
	TimestampExpire  string          `json:"timestampExpire,omitempty"`
}

func (o *V1OTP) unknownWords(note func(field, word string)) { statusWord(o.OTPStatus, note) }

// CreatedAt returns Created as a time.
func (o V1OTP) CreatedAt() time.Time { return time.UnixMilli(o.Created).UTC() }

// ExpiresAt returns Expire as a time.
func (o V1OTP) ExpiresAt() time.Time { return time.UnixMilli(o.Expire).UTC() }

// V1Event is one entry of GET /2fa/v1/otp/{otpId}/events (StatusEvent).
// Created is "Epoch/Unix time" (seed 000 names no unit; OtpStatusEntity's
// is milliseconds) and TimestampCreated the same instant as text; every
// field is optional. Status is "success", "failed" or empty (null).
type V1Event struct {
	Created          int64  `json:"created"`
	Status           string `json:"status,omitempty"`
	StatusText       string `json:"statusText,omitempty"`
	TimestampCreated string `json:"timestampCreated,omitempty"`
	Type             string `json:"type"`
}

func (e *V1Event) unknownWords(note func(field, word string)) {
	if !events.V1TypeKnown(e.Type) {
		note("event_type", e.Type)
	}
}

// CreatedAt is when tyntec recorded the event, for an event read at now:
// Created as Unix milliseconds, or as seconds when milliseconds would fall
// before 2000, else TimestampCreated; ok is false when none of them is a
// sane time (events.SaneTimestamp), Created missing (0) among them, which
// would otherwise date the fact 1970.
func (e V1Event) CreatedAt(now time.Time) (t time.Time, ok bool) {
	if e.Created > 0 {
		for _, t := range []time.Time{time.UnixMilli(e.Created), time.Unix(e.Created, 0)} {
			if events.SaneTimestamp(t, now) {
				return t.UTC(), true
			}
		}
	}
	if t, ok := events.ParseTime(e.TimestampCreated); ok && events.SaneTimestamp(t, now) {
		return t, true
	}
	return time.Time{}, false
}

// V1 resend and send channels (the via parameter).
const (
	ViaAuto  = "AUTO"
	ViaSMS   = "SMS"
	ViaVoice = "VOICE"
)

// ResendRequest selects how POST /2fa/v1/otp/{otpId} re-sends an OTP.
// Empty fields are not sent; tyntec then uses AUTO and the application's
// sender and caller.
type ResendRequest struct {
	Via    string
	Sender string
	Caller string
}

// V1SendRequest is the query of POST /2fa/v1/otp (send an OTP through v1).
type V1SendRequest struct {
	Number        string
	ApplicationID string
	Via           string
	OTPCode       string
	ReferenceID   string
	Sender        string
	Caller        string
	Language      string
}

// Delivery maps a v1 delivery event to the channel and v4 delivery status it
// reports (events.V1Delivery, where the v1 event types are listed). ok is false
// for events that are not about delivery (CREATED, RESEND, CHECK) and for
// statusText values it does not know.
func (e V1Event) Delivery() (events.Channel, events.Status, bool) {
	return events.V1Delivery(e.Type, e.Status, e.StatusText)
}
