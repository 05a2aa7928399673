package events

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
