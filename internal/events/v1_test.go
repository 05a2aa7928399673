package events

import (
	"testing"
	"time"
)

func TestV1Delivery(t *testing.T) {
	tests := []struct {
		typ, status, text string
		channel           Channel
		st                Status
		ok                bool
	}{
		{"SMS", "", "DISPATCHED", ChannelSMS, StatusDispatched, true},
		{"VOICE", "success", "DELIVERED", ChannelVoice, StatusDelivered, true},
		{"WHATSAPP", "failed", "UNDELIVERABLE", ChannelWhatsApp, StatusUndeliverable, true},
		{"VIBER", "failed", "TIMED_OUT", ChannelViber, StatusTimedOut, true},
		{"SMS", "success", "carrier says ok", ChannelSMS, StatusDelivered, true},
		{"SMS", "failed", "carrier said no", ChannelSMS, StatusUndeliverable, true},
		{"viber", "SUCCESS", "delivrd", ChannelViber, StatusDelivered, true}, // any case, as on the webhook
		{" Sms ", "", "dispatched", ChannelSMS, StatusDispatched, true},
		{"SMS", "", "RECEIVED", ChannelSMS, "", false}, // a webhook word, not a v1 statusText
		{"SMS", "", "", ChannelSMS, "", false},
		{"CHECK", "success", "VERIFIED", "", "", false},
		{"CREATED", "", "ACTIVE", "", "", false},
		{"RESEND", "", "VOICE", "", "", false},
	}
	for _, tt := range tests {
		ch, st, ok := V1Delivery(tt.typ, tt.status, tt.text)
		if ch != tt.channel || st != tt.st || ok != tt.ok {
			t.Errorf("V1Delivery(%q, %q, %q) = %q, %q, %v; want %q, %q, %v", tt.typ, tt.status, tt.text, ch, st, ok, tt.channel, tt.st, tt.ok)
		}
	}
}

func TestPolledDelivery(t *testing.T) {
	created := time.Date(2023, 11, 15, 3, 0, 9, 250_000_000, time.FixedZone("CET", 3600))
	e := V1Event{OTPID: seedOTP, Type: "SMS", Status: V1StatusFailed, StatusText: "TIMED_OUT", Created: created, ObservedAt: receivedAt}
	got, ok := PolledDelivery(e, seedProfile, receivedAt)
	want := DeliveryStatus{
		Channel: ChannelSMS, OTPID: seedOTP, ProfileID: seedProfile, Status: StatusTimedOut, Timestamp: created.UTC(),
		ReceivedAt: receivedAt, Source: SourcePoll, MissedWebhook: true,
	}
	if !ok || mustJSON(t, got) != mustJSON(t, want) {
		t.Errorf("PolledDelivery(%+v) = %+v, %v; want %+v, true", e, got, ok, want)
	}
	// The same fact, polled or received, has the same message id.
	webhook := want
	webhook.Source, webhook.MissedWebhook = SourceWebhook, false
	if DeliveryID(&got) != DeliveryID(&webhook) {
		t.Errorf("DeliveryID(polled) = %s; want the webhook's %s", DeliveryID(&got), DeliveryID(&webhook))
	}
	// An event whose time tyntec did not give: the fact is timed by its
	// reading, marked, and has the id every later read gives it.
	unknown := e
	unknown.Created, unknown.CreatedFromReceipt = receivedAt, true
	again := unknown
	again.Created = receivedAt.Add(time.Minute)
	d1, _ := PolledDelivery(unknown, seedProfile, receivedAt)
	d2, _ := PolledDelivery(again, seedProfile, receivedAt.Add(time.Minute))
	if !d1.TimestampFromReceipt || DeliveryID(&d1) != DeliveryID(&d2) {
		t.Errorf("PolledDelivery of an untimed event = %+v (id %s, later %s); want TimestampFromReceipt, one id", d1, DeliveryID(&d1), DeliveryID(&d2))
	}
	if got, ok := PolledDelivery(V1Event{OTPID: seedOTP, Type: V1EventCheck, Status: V1StatusSuccess, StatusText: "VERIFIED"}, "", receivedAt); ok {
		t.Errorf("PolledDelivery(CHECK) = %+v, true; want false", got)
	}
}
