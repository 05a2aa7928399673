package tyntec

import (
	"encoding/json"
	"time"

	"github.com/otpscope/otpscope/internal/events"
)

// The channel, delivery status and OTP status words, and the DeliveryStatus
// webhook body, are events.Channel, events.Status, events.OTPState and
// events.DeliveryStatus: one vocabulary for what tyntec says.

// NewOTPRequest is the body of POST /2fa/v4/otp.
type NewOTPRequest struct {
	To           string `json:"to"`
	ProfileName  string `json:"profileName,omitempty"`
	PriorityName string `json:"priorityName,omitempty"`
	LanguageCode string `json:"languageCode,omitempty"`
	OTPCode      string `json:"otpCode,omitempty"`
	Sender       string `json:"sender,omitempty"`
	SenderViber  string `json:"senderViber,omitempty"`
	SenderWA     string `json:"senderWA,omitempty"`
	Caller       string `json:"caller,omitempty"`
}

// CreatedOTP is tyntec's answer to POST /2fa/v4/otp.
type CreatedOTP struct {
	ID string `json:"id"`
}

// OTP is the v4 status of one OTP (OTPGetResponse).
type OTP struct {
	OTPID           string          `json:"otpId"`
	To              string          `json:"to,omitempty"`
	OTPStatus       events.OTPState `json:"otpStatus"`
	AllowedAttempts int             `json:"allowedAttempts"`
	AttemptCount    int             `json:"attemptCount"`
	OTPCreated      time.Time       `json:"otpCreated"`
	OTPExpire       time.Time       `json:"otpExpire"`
}

// UnmarshalJSON reads otpCreated and otpExpire as a webhook's timestamp is
// read (events.ParseTime: RFC 3339 in any spelling, zone-less as UTC);
// one it cannot read is left zero, unknown, rather than failing the read
// of the OTP's status with it.
func (o *OTP) UnmarshalJSON(b []byte) error {
	type plain OTP // without this method
	var w struct {
		plain
		OTPCreated json.RawMessage `json:"otpCreated"`
		OTPExpire  json.RawMessage `json:"otpExpire"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*o = OTP(w.plain)
	o.OTPCreated, o.OTPExpire = lenientTime(w.OTPCreated), lenientTime(w.OTPExpire)
	return nil
}

func (o *OTP) unknownWords(note func(field, word string)) { statusWord(o.OTPStatus, note) }

// statusWord notes an OTP status otpscope does not know; none (empty) is
// not one.
func statusWord(s events.OTPState, note func(field, word string)) {
	if s != "" && !s.Known() {
		note("otp_status", string(s))
	}
}

// channelWord notes a channel otpscope does not know.
func channelWord(c events.Channel, note func(field, word string)) {
	if !c.Known() {
		note("channel", string(c))
	}
}

func lenientTime(raw json.RawMessage) time.Time {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return time.Time{}
	}
	t, _ := events.ParseTime(s)
	return t
}

// OTPFilter selects OTPs in ListOTPs; empty fields do not filter.
type OTPFilter struct {
	To     string
	Status events.OTPState // tyntec documents VERIFIED and TOO_MANY_ATTEMPTS
}

// ValidateOTPRequest is the body of POST /2fa/v4/otp/{otp-id}/validate.
type ValidateOTPRequest struct {
	OTPCode string `json:"otpCode"`
}

// ValidateOTPResponse is tyntec's answer to a v4 validation.
type ValidateOTPResponse struct {
	OTPStatus events.OTPState `json:"otpStatus"`
}

func (v *ValidateOTPResponse) unknownWords(note func(field, word string)) {
	statusWord(v.OTPStatus, note)
}

// CallbackConfig is a registered v4 callback (CallbackConfigurationDTO).
// ProfileID, when set, limits the callback to OTPs of that profile.
type CallbackConfig struct {
	ID        string            `json:"id"`
	URL       string            `json:"url"`
	ProfileID string            `json:"profileId,omitempty"`
	Headers   map[string]string `json:"headers,omitempty"`
}

// NewCallbackConfig is the body that creates or patches a callback configuration.
type NewCallbackConfig struct {
	URL       string            `json:"url"`
	ProfileID string            `json:"profileId,omitempty"`
	Headers   map[string]string `json:"headers,omitempty"`
}

// ChannelPriority is one channel of a priority; lower Priority is tried first.
type ChannelPriority struct {
	Channel  events.Channel `json:"channel"`
	Priority int            `json:"priority"`
}

// Priority is an ordered list of channels (PriorityDTO).
type Priority struct {
	ID              string            `json:"id,omitempty"`
	Name            string            `json:"name"`
	ChannelPriority []ChannelPriority `json:"channelPriority"`
}

func (p *Priority) unknownWords(note func(field, word string)) {
	for _, c := range p.ChannelPriority {
		channelWord(c.Channel, note)
	}
}

// NewPriority is the body of POST /2fa/v4/priorities.
type NewPriority struct {
	Name            string            `json:"name,omitempty"`
	ChannelPriority []ChannelPriority `json:"channelPriority"`
}

// CreatedID is tyntec's answer to the v4 create calls (priority, profile, callback).
type CreatedID struct {
	ID string `json:"id"`
}

// Template names one message template of a profile channel.
type Template struct {
	Name         string `json:"name,omitempty"`
	LanguageCode string `json:"languageCode,omitempty"`
}

// ProfileChannel is the templates a profile uses on one channel.
type ProfileChannel struct {
	Type      events.Channel `json:"type"`
	Templates []Template     `json:"templates"`
}

// Profile is a v4 profile (ProfileDTO): the use case an OTP is sent for.
type Profile struct {
	ID            string           `json:"id,omitempty"`
	Name          string           `json:"name"`
	Alphanumeric  bool             `json:"alphanumeric"`
	Attempts      int              `json:"attempts"`
	OTPCodeLength int              `json:"otpCodeLength"`
	Channels      []ProfileChannel `json:"channels"`
}

func (p *Profile) unknownWords(note func(field, word string)) {
	for _, c := range p.Channels {
		channelWord(c.Type, note)
	}
}

// Violation is one entry of a v4 constraint-violation error.
type Violation struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}
