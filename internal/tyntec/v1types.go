package tyntec

import "time"

// V1OTP is the v1 status of one OTP (OtpStatusEntity). Created and Expire are
// Unix milliseconds; TimestampCreated and TimestampExpire the same instants as
// UTC text.
type V1OTP struct {
	AccountID        string `json:"accountId,omitempty"`
	ApplicationID    string `json:"applicationId,omitempty"`
	AttemptCount     int    `json:"attemptCount"`
	Created          int64  `json:"created"`
	Expire           int64  `json:"expire"`
	Number           string `json:"number"`
	OTPID            string `json:"otpId"`
	OTPStatus        string `json:"otpStatus"`
	ReferenceID      string `json:"referenceId,omitempty"`
	TimestampCreated string `json:"timestampCreated,omitempty"`
	TimestampExpire  string `json:"timestampExpire,omitempty"`
}

// CreatedAt returns Created as a time.
func (o V1OTP) CreatedAt() time.Time { return time.UnixMilli(o.Created).UTC() }

// ExpiresAt returns Expire as a time.
func (o V1OTP) ExpiresAt() time.Time { return time.UnixMilli(o.Expire).UTC() }

// V1Event is one entry of GET /2fa/v1/otp/{otpId}/events (StatusEvent).
// Created is Unix milliseconds; Status is "success", "failed" or empty (null).
type V1Event struct {
	Created          int64  `json:"created"`
	Status           string `json:"status,omitempty"`
	StatusText       string `json:"statusText,omitempty"`
	TimestampCreated string `json:"timestampCreated,omitempty"`
	Type             string `json:"type"`
}

// CreatedAt returns Created as a time.
func (e V1Event) CreatedAt() time.Time { return time.UnixMilli(e.Created).UTC() }

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

// The v1 events API does not publish its event types, so otpscope and its
// simulator agree on the following ones; they live here, in one place, and
// V1Event.Delivery maps them to the v4 channel and delivery status.
//
//	type      status           statusText
//	CREATED   (null)           ACTIVE                      OTP accepted
//	SMS       null|success|failed DISPATCHED|DELIVERED|UNDELIVERABLE|TIMED_OUT
//	VOICE     null|success|failed (as SMS, for text-to-speech calls)
//	VIBER, WHATSAPP                (as SMS, for OTPs sent through v4)
//	RESEND    (null)           the via asked for (AUTO, SMS, VOICE)
//	CHECK     success|failed   the otpStatus after the check
const (
	V1EventCreated = "CREATED"
	V1EventSMS     = "SMS"
	V1EventVoice   = "VOICE"
	V1EventResend  = "RESEND"
	V1EventCheck   = "CHECK"
)

// V1 event status values.
const (
	V1StatusSuccess = "success"
	V1StatusFailed  = "failed"
)

// V1EventStatus returns the v1 status word for a delivery status: empty (null)
// while in flight, success when delivered, failed otherwise.
func V1EventStatus(delivery string) string {
	switch delivery {
	case DeliveryDelivered:
		return V1StatusSuccess
	case DeliveryUndeliverable, DeliveryTimedOut:
		return V1StatusFailed
	default:
		return ""
	}
}

// Delivery maps a v1 delivery event to the channel and v4 delivery status it
// reports. ok is false for events that are not about delivery (CREATED,
// RESEND, CHECK) and for statusText values it does not know.
func (e V1Event) Delivery() (channel, status string, ok bool) {
	switch e.Type {
	case ChannelSMS, ChannelVoice, ChannelViber, ChannelWhatsApp:
		// v1 names delivery events after the channel; VIBER and WHATSAPP
		// appear for OTPs sent through v4.
		channel = e.Type
	default:
		return "", "", false
	}
	switch e.StatusText {
	case DeliveryDispatched, DeliveryDelivered, DeliveryUndeliverable, DeliveryTimedOut:
		return channel, e.StatusText, true
	}
	// Fall back on the coarse status when the delivery system's text is unknown.
	switch e.Status {
	case V1StatusSuccess:
		return channel, DeliveryDelivered, true
	case V1StatusFailed:
		return channel, DeliveryUndeliverable, true
	}
	return channel, "", false
}
