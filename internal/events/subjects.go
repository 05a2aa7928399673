package events

import (
	"errors"
	"fmt"
	"strings"
)

// The stream and its subjects. Every subject starts with SubjectRoot; the one
// JetStream stream otpscope owns captures SubjectAll.
const (
	SubjectRoot = "tyntec.2fa"
	SubjectAll  = SubjectRoot + ".>"

	// SubjectDeliveryAll matches every delivery fact: tyntec.2fa.delivery.<CHANNEL>.<STATUS>.
	SubjectDeliveryAll = SubjectRoot + ".delivery.>"
	// SubjectDeadLetter carries input that could not be accepted, with the reason.
	SubjectDeadLetter = SubjectRoot + ".deadletter"
	// SubjectV1Event carries a v1 OTP event read by the poller.
	SubjectV1Event = SubjectRoot + ".v1event"
	// SubjectTrack carries OTP registrations and outcomes reported by upstream services.
	SubjectTrack = SubjectRoot + ".track"
)

// DeliverySubject is where a delivery fact is published:
// tyntec.2fa.delivery.<CHANNEL>.<STATUS>, so subscribers filter with wildcards
// (tyntec.2fa.delivery.*.DELIVERED, tyntec.2fa.delivery.SMS.>).
func DeliverySubject(c Channel, s Status) string {
	return SubjectRoot + ".delivery." + token(string(c)) + "." + token(string(s))
}

// OTPStatusSubject is where a polled OTP status is published: tyntec.2fa.otp.<STATUS>.
func OTPStatusSubject(status OTPState) string { return SubjectRoot + ".otp." + token(string(status)) }

// ResendSubject is where a resend decision is audited: tyntec.2fa.resend.<RESULT>.
func ResendSubject(result string) string { return SubjectRoot + ".resend." + token(result) }

// ReconcileSubject is where the poller records what it could not recover:
// tyntec.2fa.reconcile.<RESULT>.
func ReconcileSubject(result string) string { return SubjectRoot + ".reconcile." + token(result) }

// ReportSubject is where a scheduled report is published: tyntec.2fa.report.<KIND>.
func ReportSubject(kind string) string { return SubjectRoot + ".report." + token(kind) }

// AlertSubject is where a firing alert rule is published: tyntec.2fa.alert.<RULE>.
func AlertSubject(rule string) string { return SubjectRoot + ".alert." + token(rule) }

// token makes s safe as one subject token: values reaching here are validated
// upper-case words, so this only guards against programming errors.
func token(s string) string {
	if s == "" {
		return "UNKNOWN"
	}
	b := []byte(s)
	for i, c := range b {
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			b[i] = '_'
		}
	}
	return string(b)
}

// SubjectKind names what a subject carries; its value is the subject's third
// token.
type SubjectKind string

// The kinds of subject under SubjectRoot.
const (
	KindDelivery   SubjectKind = "delivery"
	KindDeadLetter SubjectKind = "deadletter"
	KindOTPStatus  SubjectKind = "otp"
	KindV1Event    SubjectKind = "v1event"
	KindResend     SubjectKind = "resend"
	KindReconcile  SubjectKind = "reconcile"
	KindTrack      SubjectKind = "track"
	KindReport     SubjectKind = "report"
	KindAlert      SubjectKind = "alert"
	KindSilent     SubjectKind = "silent"
	KindPush       SubjectKind = "push"
)

// Subject is a parsed subject: its kind and the tokens that follow it.
type Subject struct {
	Kind SubjectKind
	// Channel and Status are set for KindDelivery.
	Channel Channel
	Status  Status
	// Name is the last token of KindOTPStatus (the OTP status), KindResend and
	// KindReconcile (the result), KindReport (the report kind), KindAlert (the
	// rule), KindSilent (the silent-auth result) and KindPush (the approval status).
	Name string
}

// ErrSubject marks a subject ParseSubject does not know.
var ErrSubject = errors.New("not an otpscope subject")

// ParseSubject reads a subject built by this package (DeliverySubject,
// OTPStatusSubject, SubjectDeadLetter …). Wildcards, empty tokens and tokens
// the builders would not produce are refused with an error wrapping ErrSubject.
func ParseSubject(s string) (Subject, error) {
	rest, ok := strings.CutPrefix(s, SubjectRoot+".")
	if !ok {
		return Subject{}, fmt.Errorf("%w: %q", ErrSubject, s)
	}
	toks := strings.Split(rest, ".")
	for _, t := range toks {
		if !isToken(t) {
			return Subject{}, fmt.Errorf("%w: %q", ErrSubject, s)
		}
	}
	sub := Subject{Kind: SubjectKind(toks[0])}
	n := 0 // tokens after the kind
	switch sub.Kind {
	case KindDelivery:
		n = 2
	case KindOTPStatus, KindResend, KindReconcile, KindReport, KindAlert, KindSilent, KindPush:
		n = 1
	case KindDeadLetter, KindV1Event, KindTrack:
	default:
		return Subject{}, fmt.Errorf("%w: %q", ErrSubject, s)
	}
	if len(toks) != 1+n {
		return Subject{}, fmt.Errorf("%w: %q has %d tokens after %s; want %d", ErrSubject, s, len(toks)-1, sub.Kind, n)
	}
	switch n {
	case 2:
		sub.Channel, sub.Status = Channel(toks[1]), Status(toks[2])
	case 1:
		sub.Name = toks[1]
	}
	return sub, nil
}

// String builds the subject s describes; ParseSubject(s.String()) gives s back
// when its tokens are ones the builders produce.
func (s Subject) String() string {
	switch s.Kind {
	case KindDelivery:
		return DeliverySubject(s.Channel, s.Status)
	case KindOTPStatus:
		return OTPStatusSubject(OTPState(s.Name))
	case KindResend:
		return ResendSubject(s.Name)
	case KindReconcile:
		return ReconcileSubject(s.Name)
	case KindReport:
		return ReportSubject(s.Name)
	case KindAlert:
		return AlertSubject(s.Name)
	case KindSilent:
		return SilentSubject(s.Name)
	case KindPush:
		return PushSubject(s.Name)
	}
	return SubjectRoot + "." + token(string(s.Kind))
}

// isToken reports whether t is a token the builders produce (see token).
func isToken(t string) bool {
	if t == "" {
		return false
	}
	for i := 0; i < len(t); i++ {
		switch c := t[i]; {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}
