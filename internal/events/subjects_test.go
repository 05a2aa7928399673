package events

import (
	"errors"
	"testing"
)

func TestParseSubject(t *testing.T) {
	type parseCase struct {
		subject string
		want    Subject
		ok      bool
	}
	tests := []parseCase{
		{"tyntec.2fa.delivery.SMS.DELIVERED", Subject{Kind: KindDelivery, Channel: ChannelSMS, Status: StatusDelivered}, true},
		{"tyntec.2fa.delivery.RCS.READ", Subject{Kind: KindDelivery, Channel: "RCS", Status: "READ"}, true},
		{"tyntec.2fa.deadletter", Subject{Kind: KindDeadLetter}, true},
		{"tyntec.2fa.otp.VERIFIED", Subject{Kind: KindOTPStatus, Name: "VERIFIED"}, true},
		{"tyntec.2fa.v1event", Subject{Kind: KindV1Event}, true},
		{"tyntec.2fa.resend.dryrun", Subject{Kind: KindResend, Name: ResendDryRun}, true},
		{"tyntec.2fa.track", Subject{Kind: KindTrack}, true},
		{"tyntec.2fa.report.daily", Subject{Kind: KindReport, Name: "daily"}, true},
		{"tyntec.2fa.alert.conversion-drop", Subject{Kind: KindAlert, Name: "conversion-drop"}, true},
		{"tyntec.2fa.silent.not_verified", Subject{Kind: KindSilent, Name: SilentNotVerified}, true},
		{"tyntec.2fa.push.approved", Subject{Kind: KindPush, Name: PushApproved}, true},
	}
	// Subjects that are malformed or not otpscope's: rejected, zero Subject.
	for _, subject := range []string{
		"tyntec.2fa.delivery.SMS",
		"tyntec.2fa.delivery.SMS.DELIVERED.x",
		"tyntec.2fa.delivery.*.DELIVERED",
		"tyntec.2fa.delivery.>",
		"tyntec.2fa.delivery..DELIVERED",
		"tyntec.2fa.otp",
		"tyntec.2fa.track.x",
		"tyntec.2fa.silent",
		"tyntec.2fa.push.approved.x",
		"tyntec.2fa.unknown.x",
		"tyntec.2fa.",
		"tyntec.2fa",
		"other.2fa.track",
		"",
	} {
		tests = append(tests, parseCase{subject: subject})
	}
	for _, tt := range tests {
		got, err := ParseSubject(tt.subject)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("ParseSubject(%q) = %+v, %v; want %+v, ok=%v", tt.subject, got, err, tt.want, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrSubject) {
			t.Errorf("ParseSubject(%q) error %v does not wrap ErrSubject", tt.subject, err)
		}
		if err == nil && got.String() != tt.subject {
			t.Errorf("ParseSubject(%q).String() = %q", tt.subject, got.String())
		}
	}
}

// TestBuiltSubjectsParse checks every builder against the parser.
func TestBuiltSubjectsParse(t *testing.T) {
	tests := []struct {
		subject string
		want    Subject
	}{
		{DeliverySubject(ChannelWhatsApp, StatusTimedOut), Subject{Kind: KindDelivery, Channel: ChannelWhatsApp, Status: StatusTimedOut}},
		{SubjectDeadLetter, Subject{Kind: KindDeadLetter}},
		{OTPStatusSubject(OTPTooManyAttempts), Subject{Kind: KindOTPStatus, Name: string(OTPTooManyAttempts)}},
		{SubjectV1Event, Subject{Kind: KindV1Event}},
		{ResendSubject(ResendSent), Subject{Kind: KindResend, Name: ResendSent}},
		{ReconcileSubject(ReconcileUnrecoverable), Subject{Kind: KindReconcile, Name: ReconcileUnrecoverable}},
		{SubjectTrack, Subject{Kind: KindTrack}},
		{ReportSubject("hourly"), Subject{Kind: KindReport, Name: "hourly"}},
		{AlertSubject("DELIVERY_RATE"), Subject{Kind: KindAlert, Name: "DELIVERY_RATE"}},
		{SilentSubject(SilentError), Subject{Kind: KindSilent, Name: SilentError}},
		{PushSubject(PushExpired), Subject{Kind: KindPush, Name: PushExpired}},
	}
	for _, tt := range tests {
		if got, err := ParseSubject(tt.subject); err != nil || got != tt.want {
			t.Errorf("ParseSubject(%q) = %+v, %v; want %+v", tt.subject, got, err, tt.want)
		}
	}
}

// FuzzSubjectRoundTrip builds a subject of every kind from arbitrary tokens:
// parse(build(x)) is x with its tokens made safe as the builders make them.
func FuzzSubjectRoundTrip(f *testing.F) {
	f.Add("SMS", "DELIVERED")
	f.Add("", "a.b")
	f.Add("*", ">")
	f.Add("sent", "conversion-drop")
	kinds := []SubjectKind{KindDelivery, KindDeadLetter, KindOTPStatus, KindV1Event, KindResend, KindReconcile, KindTrack, KindReport, KindAlert, KindSilent, KindPush}
	f.Fuzz(func(t *testing.T, a, b string) {
		for _, k := range kinds {
			x := Subject{Kind: k}
			switch k {
			case KindDelivery:
				x.Channel, x.Status = Channel(token(a)), Status(token(b))
			case KindOTPStatus, KindResend, KindReconcile, KindReport, KindAlert, KindSilent, KindPush:
				x.Name = token(a)
			}
			got, err := ParseSubject(x.String())
			if err != nil || got != x {
				t.Fatalf("ParseSubject(%q) = %+v, %v; want %+v", x.String(), got, err, x)
			}
		}
	})
}

// FuzzParseSubject feeds the parser arbitrary subjects: what it accepts it
// builds back unchanged.
func FuzzParseSubject(f *testing.F) {
	for _, s := range []string{"tyntec.2fa.delivery.SMS.DELIVERED", "tyntec.2fa.track", "tyntec.2fa.otp.", "tyntec.2fa.alert.a.b", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseSubject(s)
		if err != nil {
			if !errors.Is(err, ErrSubject) {
				t.Fatalf("ParseSubject(%q) error %v does not wrap ErrSubject", s, err)
			}
			return
		}
		if got.String() != s {
			t.Fatalf("ParseSubject(%q) = %+v, which builds %q", s, got, got.String())
		}
	})
}
