package events

import (
	"strings"
	"time"
)

// tyntec's v1 events API does not publish its event types, so otpscope and its
// simulator agree on the following ones; V1Delivery maps them to the v4 channel
// and delivery status.
//
//	type      status              statusText
//	CREATED   (null)              ACTIVE                      OTP accepted
//	SMS       null|success|failed DISPATCHED|DELIVERED|UNDELIVERABLE|TIMED_OUT
//	VOICE     null|success|failed (as SMS, for text-to-speech calls)
//	VIBER, WHATSAPP               (as SMS, for OTPs sent through v4)
//	RESEND    (null)              the via asked for (AUTO, SMS, VOICE)
//	CHECK     success|failed      the otpStatus after the check
const (
	V1EventCreated = "CREATED"
	V1EventSMS     = string(ChannelSMS)
	V1EventVoice   = string(ChannelVoice)
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
func V1EventStatus(s Status) string {
	switch {
	case s == StatusDelivered:
		return V1StatusSuccess
	case s.Failed():
		return V1StatusFailed
	}
	return ""
}

// V1Delivery maps a v1 event's type, status and statusText to the channel and
// delivery status it reports: a type that names a channel (SMS, VOICE, VIBER,
// WHATSAPP) is the channel, a statusText that names a delivery status
// (DISPATCHED, DELIVERED, UNDELIVERABLE, TIMED_OUT) the status, else success
// means DELIVERED and failed UNDELIVERABLE. ok is false for events that are not
// about delivery (CREATED, RESEND, CHECK) and for a delivery event whose status
// says nothing (null with an unknown statusText).
//
// Case and surrounding spaces do not matter, as on the webhook: the table
// above is otpscope's reading, not tyntec's documentation.
func V1Delivery(typ, status, statusText string) (Channel, Status, bool) {
	ch := Channel(V1Word(typ))
	if !ch.Known() {
		return "", "", false
	}
	switch st := Status(V1Word(statusText)); st {
	case StatusDispatched, StatusDelivered, StatusUndeliverable, StatusTimedOut:
		return ch, st, true
	}
	// Fall back on the coarse status when the delivery system's text is unknown.
	switch strings.ToLower(strings.TrimSpace(status)) {
	case V1StatusSuccess:
		return ch, StatusDelivered, true
	case V1StatusFailed:
		return ch, StatusUndeliverable, true
	}
	return ch, "", false
}

// V1TypeKnown reports whether typ is one of the event types the table
// above reads (in any case): CREATED, RESEND, CHECK or a channel.
func V1TypeKnown(typ string) bool {
	switch w := V1Word(typ); w {
	case V1EventCreated, V1EventResend, V1EventCheck:
		return true
	default:
		return Channel(w).Known()
	}
}

// V1Word is a v1 event's type or statusText as the table above spells it:
// upper case, without surrounding spaces.
func V1Word(s string) string { return strings.ToUpper(strings.TrimSpace(s)) }

// PolledDelivery is the delivery fact a v1 event reports, as the poller
// publishes it: the channel and status V1Delivery gives, e.Created as the
// timestamp (the same as the webhook's, so both get the same message id),
// source poll, and MissedWebhook set, since the poller reads events only for
// OTPs whose webhooks did not settle them; a caller that knows no webhook could
// have come (a v1 OTP) clears it. An event whose time tyntec did not give
// (e.CreatedFromReceipt) gives a fact timed by its reading, marked
// TimestampFromReceipt. ok is false when e is not a delivery fact.
func PolledDelivery(e V1Event, profileID string, receivedAt time.Time) (ds DeliveryStatus, ok bool) {
	ch, st, ok := V1Delivery(e.Type, e.Status, e.StatusText)
	if !ok {
		return DeliveryStatus{}, false
	}
	return DeliveryStatus{
		Channel: ch, OTPID: e.OTPID, ProfileID: profileID, Status: st, Timestamp: e.Created.UTC(),
		ReceivedAt: receivedAt.UTC(), UnknownChannel: !ch.Known(), UnknownStatus: !st.Known(),
		TimestampFromReceipt: e.CreatedFromReceipt, Source: SourcePoll, MissedWebhook: true,
	}, true
}
