package poller

import (
	"context"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/polltest"
	"github.com/otpscope/otpscope/internal/tyntecsim"
	"github.com/otpscope/otpscope/internal/tyntecsim/simtest"
)

// TestLastWebhook: a fact the poller read from tyntec does not count as a
// webhook; one a webhook brought does, at the time the stream stored it,
// and the replicas share it.
func TestLastWebhook(t *testing.T) {
	share := lastWebhookShare
	lastWebhookShare = 100 * time.Millisecond
	t.Cleanup(func() { lastWebhookShare = share })
	b := brokertest.NewServer(t).Broker(t)
	sim, url := simtest.Start(t, tyntecsim.Config{Seed: seed(5), TimeScale: scale})
	p := newPoller(t, b, testConfig(sim, url))
	goRun(t, p.runTracker)
	publish := func(source, otp string) {
		t.Helper()
		m, err := events.NewDeliveryMessage(&events.DeliveryStatus{OTPID: otp, Channel: events.ChannelSMS, Status: events.StatusDelivered,
			Timestamp: time.Now().UTC().Truncate(time.Millisecond), Source: source})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Publish(t.Context(), m); err != nil {
			t.Fatal(err)
		}
		waitTracked(t, b)
	}

	publish(events.SourcePoll, "7f1c1a52-5a3e-4f40-9a7e-1d3c4b5a6f70")
	if at := p.LastWebhook(); !at.IsZero() {
		t.Fatalf("LastWebhook after a polled fact = %v; want none", at)
	}
	before := time.Now()
	publish(events.SourceWebhook, "8a2d2b63-6b4f-4051-8b8f-2e4d5c6b7a81")
	at := p.LastWebhook()
	if at.Before(before.Add(-time.Second)) || at.After(time.Now()) {
		t.Errorf("LastWebhook after a webhook's fact = %v; want when it was stored, after %v", at, before)
	}

	// Another replica, which read none of the tracking consumer's share
	// (or started later), learns it from the one that did.
	other := newPoller(t, b, testConfig(sim, url))
	goRun(t, func(ctx context.Context) error { other.shareLastWebhook(ctx); return nil })
	polltest.Until(t, 5*time.Second, "the other replica told of the webhook", func() bool { return other.LastWebhook().Equal(at) })
}
