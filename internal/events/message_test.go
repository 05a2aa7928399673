package events

import (
	"testing"
	"time"
)

// TestReplayKeepsTimeAndSubject: a consumer's dead letter replayed carries
// the ce-time and ce-subject its original did, for every kind, and a new
// id and source; a body that does not read falls back to the replay time.
func TestReplayKeepsTimeAndSubject(t *testing.T) {
	at := time.Date(2026, 11, 20, 8, 30, 15, 970_000_000, time.UTC)
	now := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	otp := "0b7e2d3c-1d39-4c4e-9d1b-5b8c1e0a9f01"
	must := func(m Message, err error) Message {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	originals := []Message{
		must(NewDeliveryMessage(&DeliveryStatus{Channel: ChannelSMS, OTPID: otp, Status: StatusDelivered, Timestamp: at, ReceivedAt: now, Source: SourceWebhook})),
		must(NewOTPStatusMessage(&OTPStatus{OTPID: otp, API: "v4", Status: OTPVerified, ObservedAt: at, Source: SourcePoll, SampleRate: 1})),
		must(NewV1EventMessage(&V1Event{OTPID: otp, Type: "sms", Status: "success", Created: at, ObservedAt: now})),
		must(NewResendMessage(&Resend{OTPID: otp, DecisionID: "d1", Result: ResendSent, Attempt: 1, DecidedAt: at})),
		must(NewReconcileMessage(&Reconcile{OTPID: otp, API: "v4", Result: ReconcileUnrecoverable, Since: now, Reason: "gone", ObservedAt: at})),
		must(NewTrackMessage(&Track{OTPID: otp, API: "v4", At: at})),
		must(NewSilentOutcomeMessage(&SilentOutcome{AttemptID: "att-1", Result: "verified", StartedAt: at.Add(-time.Second), FinishedAt: at, ReceivedAt: now})),
		must(NewPushMessage(&PushEvent{UUID: otp, Status: "approved", CreatedAt: at.Add(-time.Second), UpdatedAt: at, Source: SourceWebhook, ReceivedAt: now})),
		must(NewAlertMessage(&Alert{Rule: "delivery_rate_low", State: AlertFiring, From: at.Add(-time.Hour), To: at})),
		NewMessage(ReportSubject("hourly"), "rp-1", "reporter", TypeReport, at, "", []byte(`{"kind":"hourly","from":"2026-11-20T07:30:15.97Z","to":"2026-11-20T08:30:15.97Z"}`)),
	}
	for _, orig := range originals {
		m, err := NewReplayMessage(orig.Subject, "dl-1", orig.Data, now)
		if err != nil {
			t.Fatalf("NewReplayMessage(%s) error: %v", orig.Subject, err)
		}
		for _, h := range []string{HeaderTime, HeaderSubject, HeaderType} {
			if got, want := m.Header.Get(h), orig.Header.Get(h); got != want {
				t.Errorf("NewReplayMessage(%s) %s = %q; want the original's %q", orig.Subject, h, got, want)
			}
		}
		if _, ok := m.Header[HeaderSubject]; ok != (orig.Header.Get(HeaderSubject) != "") {
			t.Errorf("NewReplayMessage(%s) has ce-subject %v; the original %v", orig.Subject, ok, !ok)
		}
		if m.ID != "rp-"+digest("dl-1") || m.Header.Get(HeaderSource) != "/otpscope/replay" {
			t.Errorf("NewReplayMessage(%s) id %s, source %s; want rp-<digest(dl-1)>, /otpscope/replay", orig.Subject, m.ID, m.Header.Get(HeaderSource))
		}
	}

	for _, body := range []string{`not json`, `{"otpId":7}`, `null`} {
		m, err := NewReplayMessage(DeliverySubject(ChannelSMS, StatusDelivered), "dl-2", []byte(body), now)
		if err != nil {
			t.Fatalf("NewReplayMessage(%q) error: %v", body, err)
		}
		if got, want := m.Header.Get(HeaderTime), now.Format(time.RFC3339Nano); got != want {
			t.Errorf("NewReplayMessage(%q) ce-time = %q; want the replay's %q", body, got, want)
		}
		if _, ok := m.Header[HeaderSubject]; ok {
			t.Errorf("NewReplayMessage(%q) ce-subject = %q; want none", body, m.Header.Get(HeaderSubject))
		}
	}
}
