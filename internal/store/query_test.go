package store_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/store"
)

var t0 = time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)

const (
	otpA = "aaaaaaaa-0000-4000-8000-000000000001" // SMS delivered
	otpB = "aaaaaaaa-0000-4000-8000-000000000002" // SMS failed, VIBER delivered
	otpC = "aaaaaaaa-0000-4000-8000-000000000003" // SMS timed out (learned by polling)
	otpD = "aaaaaaaa-0000-4000-8000-000000000004" // SMS dispatched, unknown status: pending
	otpE = "aaaaaaaa-0000-4000-8000-000000000005" // before the window
	otpF = "aaaaaaaa-0000-4000-8000-000000000006" // starts before the window, delivered in it
)

func ev(otp, ch, st string, at time.Duration, mods ...func(*events.DeliveryStatus)) store.DeliveryRow {
	d := events.DeliveryStatus{
		OTPID: otp, ProfileID: "prof-1", Channel: events.Channel(ch), Status: events.Status(st),
		Timestamp: t0.Add(at), ReceivedAt: t0.Add(at + time.Second), Source: events.SourceWebhook,
	}
	if events.Status(st).Failed() {
		d.Error = &events.DeliveryError{Code: "tyntec::" + ch + "::" + st}
	}
	if !events.Status(st).Known() {
		d.UnknownStatus = true
	}
	for _, m := range mods {
		m(&d)
	}
	return store.DeliveryRow{DeliveryStatus: d, EventID: events.DeliveryID(&d)}
}

func polled(d *events.DeliveryStatus) { d.Source, d.MissedWebhook = events.SourcePoll, true }

func seedJourneys(t *testing.T, db *store.DB) {
	t.Helper()
	first := []store.DeliveryRow{
		ev(otpA, "SMS", "DISPATCHED", 0),
		ev(otpA, "SMS", "DELIVERED", 3*time.Second),
		// B's fallback arrives before its primary's events.
		ev(otpB, "VIBER", "DELIVERED", 6*time.Second),
		ev(otpB, "VIBER", "DISPATCHED", 4*time.Second),
		ev(otpC, "SMS", "DISPATCHED", 2*time.Second),
		ev(otpD, "SMS", "DISPATCHED", 3*time.Second),
		ev(otpD, "SMS", "QUEUED", 4*time.Second),
		ev(otpE, "SMS", "DISPATCHED", -2*time.Hour),
		ev(otpE, "SMS", "DELIVERED", -2*time.Hour+time.Second),
		ev(otpF, "SMS", "DISPATCHED", -time.Second),
	}
	second := []store.DeliveryRow{
		ev(otpA, "SMS", "DELIVERED", 3*time.Second), // a duplicate in another part
		ev(otpA, "SMS", "DISPATCHED", 0),
		ev(otpB, "SMS", "DISPATCHED", time.Second),
		ev(otpB, "SMS", "UNDELIVERABLE", 3*time.Second),
		ev(otpB, "VIBER", "DELIVERED", 6*time.Second),
		ev(otpC, "SMS", "TIMED_OUT", 62*time.Second, polled),
		ev(otpF, "SMS", "DELIVERED", 2*time.Second),
	}
	for _, rows := range [][]store.DeliveryRow{first, second} {
		if err := db.Insert(t.Context(), &store.Batch{Deliveries: rows}); err != nil {
			t.Fatalf("Insert: %v", err)
		}
	}
	st := []store.OTPStatusRow{
		{OTPStatus: events.OTPStatus{OTPID: otpA, API: "v4", Status: events.OTPVerified, ObservedAt: t0.Add(time.Minute), Source: events.SourcePoll, SampleRate: 1}, EventID: "s1"},
		{OTPStatus: events.OTPStatus{OTPID: otpB, API: "v4", Status: events.OTPActive, ObservedAt: t0.Add(time.Minute), Source: events.SourcePoll, SampleRate: 1}, EventID: "s2"},
		{OTPStatus: events.OTPStatus{OTPID: otpB, API: "v4", Status: events.OTPExpired, ObservedAt: t0.Add(6 * time.Minute), Source: events.SourcePoll, SampleRate: 1}, EventID: "s3"},
	}
	if err := db.Insert(t.Context(), &store.Batch{Statuses: st}); err != nil {
		t.Fatalf("Insert: %v", err)
	}
	// D's outcome webhook was lost where v1 does not serve v4 OTPs; the
	// poller concluded so twice (two events, one attempt), and once for E,
	// outside the window.
	lost := func(otp string, since time.Duration, id string) store.ReconcileRow {
		return store.ReconcileRow{EventID: id, Reconcile: events.Reconcile{OTPID: otp, API: "v4", ProfileID: "prof-1",
			Result: events.ReconcileUnrecoverable, Channel: events.ChannelSMS, Since: t0.Add(since), Reason: "lost",
			OTPStatus: events.OTPExpired, ObservedAt: t0.Add(10 * time.Minute)}}
	}
	rc := []store.ReconcileRow{lost(otpD, 3*time.Second, "rc-1"), lost(otpD, 3*time.Second, "rc-2"), lost(otpE, -2*time.Hour, "rc-3")}
	if err := db.Insert(t.Context(), &store.Batch{Reconciles: rc}); err != nil {
		t.Fatalf("Insert: %v", err)
	}
}

func TestAnalyticsFollowTheDefinitions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		seedJourneys(t, db)
		for _, raw := range []bool{false, true} {
			w := store.Window{From: t0, To: t0.Add(time.Hour), Raw: raw}
			chs, err := db.Channels(t.Context(), w)
			if err != nil {
				t.Fatalf("Channels(raw=%v): %v", raw, err)
			}
			if len(chs) != 2 || chs[0].Channel != "SMS" || chs[1].Channel != "VIBER" {
				t.Fatalf("Channels(raw=%v) = %+v; want SMS, VIBER", raw, chs)
			}
			sms := chs[0]
			if sms.Attempts != 4 || sms.Delivered != 1 || sms.Failed != 2 || sms.Pending != 1 || sms.UnknownStatus != 1 || sms.RecoveredByPolling != 1 || sms.Unrecoverable != 1 {
				t.Errorf("SMS(raw=%v) = %+v; want 4 attempts, 1 delivered, 2 failed, 1 pending, 1 unknown, 1 polled, 1 unrecoverable", raw, sms)
			}
			if sms.DeliveryRate == nil || *sms.DeliveryRate != 1.0/3 {
				t.Errorf("SMS delivery rate(raw=%v) = %v; want 1/3", raw, sms.DeliveryRate)
			}
			if sms.LatencyMS == nil || sms.LatencyMS.P50 != 3000 || sms.LatencyMS.P95 != 3000 {
				t.Errorf("SMS latency(raw=%v) = %+v; want 3000", raw, sms.LatencyMS)
			}
			if len(sms.Errors) != 2 || sms.Errors[0].Count != 1 || sms.Errors[1].Count != 1 {
				t.Errorf("SMS errors(raw=%v) = %+v; want two codes once each", raw, sms.Errors)
			}
			if v := sms.Verification; v == nil || v.Polled != 1 || v.Verified != 1 {
				t.Errorf("SMS verification(raw=%v) = %+v; want 1 of 1", raw, v)
			}
			if v := chs[1].Verification; v == nil || v.Polled != 1 || v.Verified != 0 {
				t.Errorf("VIBER verification(raw=%v) = %+v; want 0 of 1", raw, v)
			}
			if vb := chs[1]; vb.Attempts != 1 || vb.Delivered != 1 || vb.LatencyMS == nil || vb.LatencyMS.P50 != 2000 {
				t.Errorf("VIBER(raw=%v) = %+v; want 1 delivered in 2000 ms", raw, vb)
			}

			fb, err := db.Fallback(t.Context(), w)
			if err != nil {
				t.Fatalf("Fallback(raw=%v): %v", raw, err)
			}
			want := store.Outcomes{DeliveredPrimary: 1, DeliveredFallback: 1, Failed: 1, Pending: 1}
			if fb.OTPs != 4 || fb.FallbackOTPs != 1 || fb.Outcomes != want || fb.FallbackRate == nil || *fb.FallbackRate != 0.25 {
				t.Errorf("Fallback(raw=%v) = %+v; want 4 OTPs, 1 fallback, outcomes %+v", raw, fb, want)
			}
			// SMS: one delivered, one failed, one pending: a rate of 1/2.
			if got := fmt.Sprint(fb.Paths); got != "[SMS: 3 journeys, 1 delivered, 1 failed, 1 pending, rate 0.5 SMS>VIBER: 1 journeys, 1 delivered, 0 failed, 0 pending, rate 1]" {
				t.Errorf("Fallback paths(raw=%v) = %+v", raw, fb.Paths)
			}
			if fb.TimeToDeliverMS == nil || fb.TimeToDeliverMS.P50 < 3000 || fb.TimeToDeliverMS.P95 > 5000 {
				t.Errorf("time to deliver(raw=%v) = %+v; want within 3000..5000", raw, fb.TimeToDeliverMS)
			}

			w.Channel = "VIBER"
			fb, err = db.Fallback(t.Context(), w)
			if err != nil || fb.OTPs != 0 || fb.FallbackRate != nil || fb.TimeToDeliverMS != nil {
				t.Errorf("Fallback(primary VIBER) = %+v, %v; want no journeys", fb, err)
			}
			w.Channel, w.Profile = "", "other"
			chs, err = db.Channels(t.Context(), w)
			if err != nil || len(chs) != 0 {
				t.Errorf("Channels(profile other) = %+v, %v; want none", chs, err)
			}
		}

		j, err := db.Journey(t.Context(), otpB, time.Now())
		if err != nil {
			t.Fatalf("Journey: %v", err)
		}
		if j.Path != "SMS>VIBER" || j.Outcome != store.OutcomeDeliveredFallback || len(j.Events) != 4 || len(j.Attempts) != 2 ||
			j.TimeToDeliverMS == nil || *j.TimeToDeliverMS != 5000 || j.PolledStatus == nil || j.PolledStatus.Status != string(events.OTPExpired) {
			t.Errorf("Journey(B) = %+v", j)
		}
		for i, want := range []string{"SMS DISPATCHED", "SMS UNDELIVERABLE", "VIBER DISPATCHED", "VIBER DELIVERED"} {
			if got := j.Events[i].Channel + " " + j.Events[i].Status; got != want {
				t.Errorf("Journey(B) event %d = %s; want %s", i, got, want)
			}
		}
		if _, err := db.Journey(t.Context(), "aaaaaaaa-0000-4000-8000-00000000ffff", time.Now()); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Journey(unknown) error = %v; want ErrNotFound", err)
		}
		if _, err := db.Journey(t.Context(), "nope", time.Now()); !errors.Is(err, store.ErrBadOTPID) {
			t.Errorf("Journey(nope) error = %v; want ErrBadOTPID", err)
		}
		if _, err := db.Journey(t.Context(), strings.Repeat("x", 5000), time.Now()); !errors.Is(err, store.ErrBadOTPID) || len(err.Error()) > 120 {
			t.Errorf("Journey(5000 x) error of %d bytes = %.200v; want ErrBadOTPID, not the whole id echoed", len(err.Error()), err)
		}
	})
}

// TestResendsSplitAttempts: a DISPATCHED after a settled fact opens a new
// attempt on the channel, a second DISPATCHED before anything settled does
// not; facts arriving late, out of order and twice change nothing.
func TestResendsSplitAttempts(t *testing.T) {
	const otpR = "aaaaaaaa-0000-4000-8000-0000000000f1"
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		first := []store.DeliveryRow{
			ev(otpR, "SMS", "DELIVERED", 13*time.Second),
			ev(otpR, "SMS", "DISPATCHED", 500*time.Millisecond),
			ev(otpR, "SMS", "DISPATCHED", 0),
		}
		second := []store.DeliveryRow{
			ev(otpR, "SMS", "DISPATCHED", 10*time.Second),
			ev(otpR, "SMS", "UNDELIVERABLE", 2*time.Second),
			ev(otpR, "SMS", "DISPATCHED", 0),
		}
		for _, rows := range [][]store.DeliveryRow{first, second} {
			if err := db.Insert(t.Context(), &store.Batch{Deliveries: rows}); err != nil {
				t.Fatalf("Insert: %v", err)
			}
		}
		for _, raw := range []bool{false, true} {
			w := store.Window{From: t0, To: t0.Add(time.Hour), Raw: raw}
			chs, err := db.Channels(t.Context(), w)
			if err != nil || len(chs) != 1 {
				t.Fatalf("Channels(raw=%v) = %+v, %v; want SMS", raw, chs, err)
			}
			sms := chs[0]
			if sms.Attempts != 2 || sms.Delivered != 1 || sms.Failed != 1 || sms.Undeliverable != 1 || sms.Pending != 0 ||
				len(sms.Errors) != 1 || sms.Errors[0].Code != "tyntec::SMS::UNDELIVERABLE" || sms.LatencyMS == nil || sms.LatencyMS.P50 != 3000 {
				t.Errorf("SMS(raw=%v) = %+v; want 2 attempts: one undeliverable, one delivered 3000 ms after its dispatch", raw, sms)
			}
			fb, err := db.Fallback(t.Context(), w)
			if err != nil || fb.OTPs != 1 || fb.Resends != 1 || fb.FallbackOTPs != 0 || fb.Outcomes != (store.Outcomes{DeliveredPrimary: 1}) {
				t.Errorf("Fallback(raw=%v) = %+v, %v; want 1 journey delivered on its primary after 1 resend", raw, fb, err)
			}
		}
		j, err := db.Journey(t.Context(), otpR, time.Now())
		if err != nil {
			t.Fatalf("Journey: %v", err)
		}
		if len(j.Attempts) != 2 || j.ResendAttempts != 1 {
			t.Fatalf("Journey = %d attempts, %d resends; want 2, 1", len(j.Attempts), j.ResendAttempts)
		}
		a, b := j.Attempts[0], j.Attempts[1]
		if a.Attempt != 1 || a.Outcome != store.AttemptFailed || a.Failure != "UNDELIVERABLE" || !a.FirstAt.Equal(t0) || a.DeliveredAt != nil {
			t.Errorf("attempt 1 = %+v; want failed, UNDELIVERABLE, first at t0", a)
		}
		if b.Attempt != 2 || b.Outcome != store.AttemptDelivered || !b.FirstAt.Equal(t0.Add(10*time.Second)) || b.LatencyMS == nil || *b.LatencyMS != 3000 {
			t.Errorf("attempt 2 = %+v; want delivered 3000 ms after its dispatch at t0+10s", b)
		}
	})
}
