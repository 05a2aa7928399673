package poller

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/events"
)

func TestDeliverySettled(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	f := func(ch events.Channel, st events.Status, sec int) Fact {
		return Fact{Channel: ch, Status: st, Timestamp: t0.Add(time.Duration(sec) * time.Second), Source: events.SourceWebhook}
	}
	priorities := [][]events.Channel{{"SMS", "VIBER"}, {"SMS", "VOICE"}, {"SMS"}, {"WHATSAPP", "SMS"}}
	p := &Poller{priorities: priorities}
	const (
		sms, viber, voice, wa = events.ChannelSMS, events.ChannelViber, events.ChannelVoice, events.ChannelWhatsApp
		disp, dlv, und        = events.StatusDispatched, events.StatusDelivered, events.StatusUndeliverable
	)
	tests := []struct {
		name   string
		rec    Record
		wantOK bool
	}{
		{"delivered on the first channel", Record{API: "v4", Facts: []Fact{f(sms, disp, 0), f(sms, dlv, 3)}}, true},
		{"final webhook lost", Record{API: "v4", Facts: []Fact{f(sms, disp, 0)}}, false},
		{"nothing seen yet", Record{API: "v4"}, false},
		{"failed where a fallback may follow", Record{API: "v4", Facts: []Fact{f(sms, disp, 0), f(sms, und, 3)}}, false},
		{"failed on the last channel of every priority", Record{API: "v4", Facts: []Fact{f(sms, disp, 0), f(sms, und, 3), f(viber, disp, 4), f(viber, und, 9)}}, true},
		{"fallback delivered, first attempt's failure lost", Record{API: "v4", Facts: []Fact{f(sms, disp, 0), f(viber, disp, 4), f(viber, dlv, 9)}}, false},
		{"first attempt unreported", Record{API: "v4", Facts: []Fact{f(voice, disp, 4), f(voice, dlv, 9)}}, false},
		{"WHATSAPP then SMS failed", Record{API: "v4", Facts: []Fact{f(wa, disp, 0), f(wa, und, 2), f(sms, disp, 3), f(sms, und, 9)}}, true},
		{"v1 OTPs wait for a poll", Record{API: "v1", Facts: []Fact{f(sms, disp, 0), f(sms, und, 3)}}, false},
		{"polled after the last fact", Record{API: "v1", Facts: []Fact{f(sms, disp, 0), f(sms, und, 3)}, LastFact: t0.Add(3 * time.Second), Polled: 1, LastPolled: t0.Add(time.Minute)}, true},
		{"our resend may still be in flight", Record{API: "v4", Resends: 1, Facts: []Fact{f(sms, disp, 0), f(sms, und, 3)}}, false},
		{"delivered, its DISPATCHED lost", Record{API: "v4", Facts: []Fact{f(sms, dlv, 3)}}, false},
		{"delivered, its DISPATCHED lost, polled after", Record{API: "v4", Facts: []Fact{f(sms, dlv, 3)}, LastFact: t0.Add(3 * time.Second), Polled: 1, LastPolled: t0.Add(time.Minute)}, true},
		{"fallback delivered, its DISPATCHED lost", Record{API: "v4", Facts: []Fact{f(sms, disp, 0), f(sms, und, 3), f(viber, dlv, 9)}}, false},
	}
	for _, tt := range tests {
		if got := tt.rec.deliverySettled(p.fallbackAfter, p.explained, true); got != tt.wantOK {
			t.Errorf("%s: deliverySettled(%v) = %v; want %v", tt.name, tt.rec.tried(), got, tt.wantOK)
		}
	}
	// Until the priorities are known, a failure may always be followed.
	unknown := &Poller{}
	r := Record{API: "v4", Facts: []Fact{f(sms, disp, 0), f(sms, und, 3), f(viber, disp, 4), f(viber, und, 9)}}
	if r.deliverySettled(unknown.fallbackAfter, unknown.explained, true) {
		t.Errorf("without priorities, a failed OTP counts as settled")
	}
	// Where v1 does not serve v4 OTPs nothing recovers a lost DISPATCHED:
	// the delivered OTP is settled without a call.
	if lost := (Record{API: "v4", Facts: []Fact{f(sms, dlv, 3)}}); !lost.deliverySettled(p.fallbackAfter, p.explained, false) {
		t.Errorf("delivered, its DISPATCHED lost, v1 not serving v4: not settled; want settled")
	}
	if got := r.tried(); !slices.Equal(got, []events.Channel{sms, viber}) {
		t.Errorf("tried() = %v; want [SMS VIBER]", got)
	}
}

// Two reports of a fact's time are one instant when they agree as far as
// the coarser can tell; a fact timed by its reading matches any time.
func TestRecordKnows(t *testing.T) {
	at := time.Date(2026, 12, 4, 12, 0, 20, 0, time.UTC)
	tests := []struct {
		name   string
		known  time.Time
		polled events.DeliveryStatus
		want   bool
	}{
		{"equal", at, events.DeliveryStatus{Timestamp: at}, true},
		{"whole second against milliseconds", at, events.DeliveryStatus{Timestamp: at.Add(123 * time.Millisecond)}, true},
		{"microseconds against their millisecond", at.Add(123456 * time.Microsecond), events.DeliveryStatus{Timestamp: at.Add(123 * time.Millisecond)}, true},
		{"another millisecond", at.Add(124 * time.Millisecond), events.DeliveryStatus{Timestamp: at.Add(123 * time.Millisecond)}, false},
		{"whole second against the next second", at, events.DeliveryStatus{Timestamp: at.Add(1123 * time.Millisecond)}, false},
		{"timed by its reading", at, events.DeliveryStatus{Timestamp: at.Add(time.Hour), TimestampFromReceipt: true}, true},
	}
	for _, tt := range tests {
		r := Record{Facts: []Fact{{Channel: events.ChannelSMS, Status: events.StatusDelivered, Timestamp: tt.known}}}
		tt.polled.Channel, tt.polled.Status = events.ChannelSMS, events.StatusDelivered
		if got := r.knows(tt.polled); got != tt.want {
			t.Errorf("%s: knows(%v) with %v = %v; want %v", tt.name, tt.polled.Timestamp, tt.known, got, tt.want)
		}
		other := tt.polled
		other.Status = events.StatusDispatched
		if r.knows(other) {
			t.Errorf("%s: a DISPATCHED taken for the DELIVERED", tt.name)
		}
	}
}

// A status message carries tyntec's expiry only when tyntec gave one: the
// poller's own estimate is not tyntec's, and an unknown one is left out.
func TestStatusMessageExpiry(t *testing.T) {
	p := &Poller{cfg: Config{VerifySample: 1}}
	guess := time.Date(2026, 12, 4, 19, 43, 31, 0, time.UTC)
	for _, known := range []bool{false, true} {
		r := &Record{OTPID: "o", API: "v4", Expires: guess, ExpiryKnown: known}
		m, err := p.statusMessage(r, "VERIFIED", 1, guess)
		if err != nil {
			t.Fatal(err)
		}
		if has := strings.Contains(string(m.Data), `"otpExpire"`); has != known || strings.Contains(string(m.Data), "0001-01-01") {
			t.Errorf("expiry known %v: %s; want otpExpire only when known, no year 1", known, m.Data)
		}
	}
}

// An attempt dispatched and not settled is in flight; one settled, or an
// outcome whose DISPATCHED was lost, is not.
func TestRecordInFlight(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 19, 47, 19, 0, time.UTC)
	r := &Record{Facts: []Fact{
		{Channel: events.ChannelSMS, Status: events.StatusDispatched, Timestamp: t0.Add(-5 * time.Second)},
		{Channel: events.ChannelSMS, Status: events.StatusUndeliverable, Timestamp: t0},
		{Channel: events.ChannelVoice, Status: events.StatusDispatched, Timestamp: t0.Add(500 * time.Millisecond)},
		{Channel: events.ChannelViber, Status: events.StatusDelivered, Timestamp: t0.Add(time.Second)},
	}}
	if got := r.inFlight(); got != events.ChannelVoice {
		t.Errorf("inFlight with VOICE dispatched = %q; want VOICE", got)
	}
	r.addFact(Fact{Channel: events.ChannelVoice, Status: events.StatusUndeliverable, Timestamp: t0.Add(20 * time.Second)})
	if got := r.inFlight(); got != "" {
		t.Errorf("inFlight once VOICE failed too = %q; want none", got)
	}
}
