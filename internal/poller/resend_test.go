package poller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/otpscope/otpscope/internal/broker"
	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/tyntec"
	"github.com/otpscope/otpscope/internal/tyntecsim"
	"github.com/otpscope/otpscope/internal/tyntecsim/simtest"
)

// voicePolicy re-sends a failed SMS once, by voice, at once.
const voicePolicy = `{"rules":[{"channels":["SMS"],"via":["VOICE"],"maxResends":1}]}`

// failingSMS is a simulator whose SMS never arrives and whose other channels
// always do.
func failingSMS(t *testing.T, seed int64, expiry time.Duration, hook string, shared bool) (*tyntecsim.Sim, string) {
	t.Helper()
	always := func(p float64) tyntecsim.Channel {
		return tyntecsim.Channel{DeliveryProbability: p, Latency: tyntecsim.LogNormal{Median: 2 * time.Second}, Timeout: time.Minute, DispatchDelay: 100 * time.Millisecond}
	}
	cfg := tyntecsim.Config{
		// Where v1 serves v4 OTPs, v4 OTPs are re-sent through v1; elsewhere not.
		SharedVersions: shared,
		Seed:           seed, TimeScale: 100, OTPExpiry: expiry,
		Channels: map[events.Channel]tyntecsim.Channel{
			events.ChannelSMS: always(0), events.ChannelVoice: always(1), events.ChannelViber: always(1), events.ChannelWhatsApp: always(1),
		},
	}
	if hook != "" {
		cfg.Callbacks = []tyntec.NewCallbackConfig{{URL: hook}}
	}
	return simtest.Start(t, cfg)
}

func writePolicy(t *testing.T, policy string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "policy.json")
	if err := os.WriteFile(path, []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// smsFailure is the SMS failure of an OTP as its webhook reports it.
func smsFailure(t *testing.T, sim *tyntecsim.Sim, id string) events.DeliveryStatus {
	t.Helper()
	o, _ := sim.Truth().OTP(id)
	for _, a := range o.Attempts {
		if a.Channel == events.ChannelSMS && a.Outcome != "" && a.Outcome != events.StatusDelivered {
			return events.DeliveryStatus{
				Channel: events.ChannelSMS, OTPID: id, ProfileID: o.ProfileID, Status: events.Status(a.Outcome),
				Timestamp: a.Settled, Source: events.SourceWebhook,
			}
		}
	}
	t.Fatalf("OTP %s has no failed SMS attempt: %+v", id, o.Attempts)
	return events.DeliveryStatus{}
}

func audits(t *testing.T, b *broker.Broker) []events.Resend {
	t.Helper()
	var out []events.Resend
	for _, m := range streamMessages(t, b, events.SubjectRoot+".resend.>") {
		var r events.Resend
		if err := json.Unmarshal(m.data, &r); err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(m.subject, "."+r.Result) {
			t.Errorf("audit %s on subject %s", m.data, m.subject)
		}
		out = append(out, r)
	}
	return out
}

// TestDecideResend covers the policy's conditions, each against the API.
func TestDecideResend(t *testing.T) {
	tests := []struct {
		name     string
		separate bool // tyntec's v1 API does not serve v4 OTPs
		priority string
		expiry   time.Duration
		verify   bool
		mode     string
		result   string
		reason   string
		resends  int
		calls    bool // whether the decision may call tyntec
	}{
		{"undeliverable SMS resent by voice", false, "tyntec_priority_sms", 0, false, ModeLive, events.ResendSent, "", 1, true},
		{"verified", false, "tyntec_priority_sms-viber", 0, true, ModeLive, events.ResendSkipped, "otp VERIFIED", 0, true},
		{"expired", false, "tyntec_priority_sms", 20 * time.Second, false, ModeLive, events.ResendSkipped, "otp EXPIRED", 0, true},
		{"delivered on another channel", false, "tyntec_priority_sms-viber", 0, false, ModeLive, events.ResendSkipped, "delivered on VIBER", 0, true},
		{"dry-run calls nothing", false, "tyntec_priority_sms", 0, false, ModeDryRun, events.ResendDryRun, "dry-run: would re-send via VOICE if tyntec's v1 API serves v4 OTPs (not learned yet)", 0, false},
		{"separate versions: not re-sent, learned", true, "tyntec_priority_sms", 0, false, ModeLive, events.ResendSkipped, reasonSeparate, 0, true},
		{"separate versions: dry-run calls nothing", true, "tyntec_priority_sms", 0, false, ModeDryRun, events.ResendDryRun, "dry-run: would re-send via VOICE if tyntec's v1 API serves v4 OTPs (not learned yet)", 0, false},
		{"separate versions, verified", true, "tyntec_priority_sms-viber", 0, true, ModeLive, events.ResendSkipped, "otp VERIFIED", 0, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := brokertest.NewServer(t).Broker(t) // each learns its own world
			sim, url := failingSMS(t, int64(100+i), tt.expiry, "", !tt.separate)
			id, err := sim.Send(tyntec.NewOTPRequest{To: "+4915500000001", PriorityName: tt.priority, OTPCode: "482913"})
			if err != nil {
				t.Fatal(err)
			}
			simtest.WaitIdle(t, sim)
			if tt.verify {
				if _, err := simClient(t, url).ValidateOTP(t.Context(), id, "482913"); err != nil {
					t.Fatal(err)
				}
			}
			if tt.expiry > 0 {
				o, _ := sim.Truth().OTP(id)
				waitSim(t, sim, o.Expire)
			}
			cfg := testConfig(sim, url)
			cfg.ResendPolicy, cfg.ResendMode = writePolicy(t, voicePolicy), tt.mode
			cfg.OTPExpiry = time.Hour // the tracked estimate must not decide; the API does
			p := newPoller(t, b, cfg)
			ev := smsFailure(t, sim, id)

			before := len(sim.Calls())
			d, err := p.DecideResend(t.Context(), &ev)
			if err != nil {
				t.Fatalf("DecideResend: %v", err)
			}
			if d.Result != tt.result || d.Reason != tt.reason {
				t.Errorf("DecideResend = %+v; want result %q reason %q", d, tt.result, tt.reason)
			}
			wantWorld := WorldShared
			switch {
			case !tt.calls || tt.reason == "otp VERIFIED" || tt.reason == "otp EXPIRED":
				wantWorld = WorldUnknown // nothing asked v1
			case tt.separate:
				wantWorld = WorldSeparate
			}
			if w := p.World(); w != wantWorld {
				t.Errorf("world after the decision = %v; want %v", w, wantWorld)
			}
			o, _ := sim.Truth().OTP(id)
			if len(o.Resends) != tt.resends {
				t.Errorf("%d resends at the simulator; want %d", len(o.Resends), tt.resends)
			}
			if tt.resends > 0 && o.Resends[0].Via != tyntec.ViaVoice {
				t.Errorf("resent via %s; want VOICE", o.Resends[0].Via)
			}
			if calls := len(sim.Calls()) - before; !tt.calls && calls != 0 {
				t.Errorf("%d API calls; want none", calls)
			}
			var found bool
			for _, a := range audits(t, b) {
				if a.OTPID == id {
					found = true
					if a.Result != tt.result || a.DecisionID != DecisionID(&ev) || a.Via != tyntec.ViaVoice || a.Attempt != 1 || a.DryRun != (tt.mode == ModeDryRun) {
						t.Errorf("audit %+v; want result %s for decision %s", a, tt.result, DecisionID(&ev))
					}
				}
			}
			if !found {
				t.Errorf("no audit record for %s", id)
			}

			// The same failure again (a webhook retry, a poll) decides nothing new.
			if again, err := p.DecideResend(t.Context(), &ev); err != nil || again.Result != "" {
				t.Errorf("second DecideResend = %+v, %v; want no new decision", again, err)
			}
			if o, _ := sim.Truth().OTP(id); len(o.Resends) != tt.resends {
				t.Errorf("%d resends after a repeat; want %d", len(o.Resends), tt.resends)
			}
		})
	}
}

// TestResendOfAFinishedOTP: a finished record is no longer in the view, and
// a failure reported after the finish (a late webhook, a poll) is still
// decided by the whole record from the bucket: its re-sends so far count.
func TestResendOfAFinishedOTP(t *testing.T) {
	_, sim, p, id := failedSMSOTP(t, "+4915500000003", ModeLive)
	ev := smsFailure(t, sim, id)
	if _, err := p.store.update(t.Context(), id, func(r *Record, _ bool) error {
		p.newRecord(r, id, "v4", ev.Timestamp, time.Now())
		r.Resends, r.LastResend = 1, ev.Timestamp // its one re-send, made by an earlier failure
		r.Done, r.DoneReason = true, "undelivered"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if r, _ := p.store.cached(id); !r.Done || r.Resends != 0 {
		t.Fatalf("cached = %+v; want only the finished mark", r)
	}
	d, err := p.DecideResend(t.Context(), &ev)
	if err != nil {
		t.Fatal(err)
	}
	if d.Result != events.ResendSkipped || d.Reason != "max resends (1) reached" {
		t.Errorf("DecideResend = %+v; want skipped: max resends (1) reached", d)
	}
	if o, _ := sim.Truth().OTP(id); len(o.Resends) != 0 {
		t.Errorf("%d resends at the simulator; want none", len(o.Resends))
	}
}

// A dry run counts the resends it would have made against maxResends, as
// live mode counts those it made: a second failure of the same OTP is not
// a second "would re-send" that live mode would never send.
func TestDryRunCountsItsResends(t *testing.T) {
	_, sim, p, id := failedSMSOTP(t, "+4915500000004", ModeDryRun)
	first := smsFailure(t, sim, id)
	second := first
	second.Status, second.Timestamp = events.StatusTimedOut, first.Timestamp.Add(2*time.Second)
	waitSim(t, sim, second.Timestamp) // else the second is not due yet
	var got []string
	for _, ev := range []events.DeliveryStatus{first, second} {
		d, err := p.DecideResend(t.Context(), &ev)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, d.Result+": "+d.Reason)
	}
	if want := []string{events.ResendDryRun + ": dry-run: would re-send via VOICE if tyntec's v1 API serves v4 OTPs (not learned yet)", events.ResendSkipped + ": max resends (1) reached"}; !slices.Equal(got, want) {
		t.Errorf("decisions %q; want %q", got, want)
	}
}

// A failure waits while tyntec's own fallback is in flight (a resend now
// would reach the user twice), and is decided once that attempt failed:
// a rule for SMS failures still re-sends when the VOICE fallback fails.
func TestResendWaitsForAnAttemptInFlight(t *testing.T) {
	b, sim, p, id := failedSMSOTP(t, "+4915500000005", ModeDryRun)
	ev := smsFailure(t, sim, id)
	fact := func(ch events.Channel, st events.Status, at time.Time) {
		t.Helper()
		if _, err := p.store.update(t.Context(), id, func(r *Record, exists bool) error {
			if !exists {
				p.newRecord(r, id, "v4", ev.Timestamp, time.Now())
				r.Expires = ev.Timestamp.Add(time.Hour)
			}
			r.addFact(Fact{Channel: ch, Status: st, Timestamp: at, Source: events.SourceWebhook})
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	fact(events.ChannelVoice, events.StatusDispatched, ev.Timestamp.Add(time.Second))
	d, err := p.DecideResend(t.Context(), &ev)
	if err != nil || d.Result != "" || d.Reason != "an attempt on VOICE is still in flight" || d.Retry <= 0 {
		t.Fatalf("DecideResend with VOICE in flight = %+v, %v; want to wait", d, err)
	}
	if n := len(audits(t, b)); n != 0 {
		t.Errorf("%d audits while waiting; want none", n)
	}
	fact(events.ChannelVoice, events.StatusUndeliverable, ev.Timestamp.Add(10*time.Second))
	if d, err := p.DecideResend(t.Context(), &ev); err != nil || d.Result != events.ResendDryRun {
		t.Errorf("DecideResend once VOICE failed = %+v, %v; want the dry-run resend", d, err)
	}
}

// failedSMSOTP is a poller deciding by voicePolicy in mode, and an OTP sent
// to to on SMS alone whose SMS failed (the simulator idle again).
func failedSMSOTP(t *testing.T, to, mode string) (*broker.Broker, *tyntecsim.Sim, *Poller, string) {
	t.Helper()
	b := brokertest.NewServer(t).Broker(t)
	sim, url := failingSMS(t, 150, 0, "", true)
	id, err := sim.Send(tyntec.NewOTPRequest{To: to, PriorityName: "tyntec_priority_sms"})
	if err != nil {
		t.Fatal(err)
	}
	simtest.WaitIdle(t, sim)
	cfg := testConfig(sim, url)
	cfg.ResendPolicy, cfg.ResendMode = writePolicy(t, voicePolicy), mode
	return b, sim, newPoller(t, b, cfg), id
}

// TestResendTwoReplicas: two poller replicas deciding the same failure at the
// same time send exactly one resend and publish exactly one audit.
func TestResendTwoReplicas(t *testing.T) {
	ns := brokertest.NewServer(t)
	b1, b2 := ns.Broker(t), ns.Broker(t)
	sim, url := failingSMS(t, 200, 0, "", true)
	id, err := sim.Send(tyntec.NewOTPRequest{To: "+4915500000002", PriorityName: "tyntec_priority_sms"})
	if err != nil {
		t.Fatal(err)
	}
	simtest.WaitIdle(t, sim)
	var ps []*Poller
	for i, b := range []*broker.Broker{b1, b2} {
		cfg := testConfig(sim, url)
		cfg.ResendPolicy, cfg.ResendMode, cfg.Replica = writePolicy(t, voicePolicy), ModeLive, fmt.Sprintf("replica-%d", i)
		ps = append(ps, newPoller(t, b, cfg))
	}
	ev := smsFailure(t, sim, id)

	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		results []string
	)
	for i := range 6 {
		p := ps[i%2]
		wg.Go(func() {
			ev := ev
			d, err := p.DecideResend(t.Context(), &ev)
			if err != nil {
				t.Errorf("DecideResend: %v", err)
			}
			mu.Lock()
			results = append(results, d.Result)
			mu.Unlock()
		})
	}
	wg.Wait()
	sent := 0
	for _, r := range results {
		if r == events.ResendSent {
			sent++
		} else if r != "" {
			t.Errorf("a racing decision ended %q; want sent once and nothing else", r)
		}
	}
	if sent != 1 {
		t.Errorf("%d decisions sent; want exactly 1 (results %q)", sent, results)
	}
	if o, _ := sim.Truth().OTP(id); len(o.Resends) != 1 {
		t.Errorf("%d resends at the simulator; want 1", len(o.Resends))
	}
	if as := audits(t, b1); len(as) != 1 || as[0].Result != events.ResendSent {
		t.Errorf("audits %+v; want one sent", as)
	}
}

// TestResendConsumer runs the poller whole: the SMS failure webhook reaches the
// resend consumer, which re-sends by voice once.
func TestResendConsumer(t *testing.T) {
	ns := brokertest.NewServer(t)
	b := ns.Broker(t)
	hook := webhookReceiver(t, b)
	sim, url := failingSMS(t, 300, 0, hook, true)
	cfg := testConfig(sim, url)
	cfg.ResendPolicy, cfg.ResendMode = writePolicy(t, voicePolicy), ModeLive
	cfg.Schedule = "@every 1h"
	p := newPoller(t, b, cfg)
	goRun(t, p.Run)

	id, err := sim.Send(tyntec.NewOTPRequest{To: "+4915500000003", PriorityName: "tyntec_priority_sms"})
	if err != nil {
		t.Fatal(err)
	}
	brokertest.WaitFor(t, 20*time.Second, "a resend", func() bool {
		o, _ := sim.Truth().OTP(id)
		return len(o.Resends) > 0
	})
	simtest.WaitIdle(t, sim) // the voice resend is delivered; its webhooks are consumed
	waitTracked(t, b)
	o, _ := sim.Truth().OTP(id)
	if len(o.Resends) != 1 || o.Resends[0].Via != tyntec.ViaVoice {
		t.Errorf("resends %+v; want one via VOICE", o.Resends)
	}
	if r, _ := p.store.cached(id); r.Resends != 1 {
		t.Errorf("record counts %d resends; want 1", r.Resends)
	}
	brokertest.WaitFor(t, 10*time.Second, "the audit", func() bool { return len(audits(t, b)) == 1 })
}

func TestParsePolicy(t *testing.T) {
	tests := []struct {
		name, policy string
		wantErr      bool
	}{
		{"example file", "", false},
		{"minimal", `{"rules":[{"via":["voice"]}]}`, false},
		{"no via", `{"rules":[{"channels":["SMS"]}]}`, true},
		{"unknown via", `{"rules":[{"via":["PIGEON"]}]}`, true},
		{"status not a failure", `{"rules":[{"via":["SMS"],"statuses":["DELIVERED"]}]}`, true},
		{"typo in a field", `{"rules":[{"via":["SMS"],"maxResend":2}]}`, true},
		{"bad delay", `{"rules":[{"via":["SMS"],"minDelay":"soon"}]}`, true},
		// A misspelt channel left the rule dead, or widened the next one.
		{"unknown channel", `{"rules":[{"via":["SMS"],"channels":["SMSS"]}]}`, true},
		{"a method as channel", `{"rules":[{"via":["SMS"],"channels":["SILENT"]}]}`, true},
		{"channel in any case", `{"rules":[{"via":["SMS"],"channels":[" whatsapp"]}]}`, false},
		{"typo in a rule's field", `{"rules":[{"via":["SMS"],"minDelai":"1s"}]}`, true},
		{"more after the object", `{"rules":[{"via":["SMS"]}]} {"rules":[]}`, true},
		{"no rules", `{}`, true},
		{"never", `{"rules":[{"via":["SMS"],"maxResends":0}]}`, false},
	}
	for _, tt := range tests {
		var err error
		if tt.policy == "" {
			_, err = LoadPolicy("testdata/resend-policy.json")
		} else {
			_, err = ParsePolicy([]byte(tt.policy))
		}
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: ParsePolicy(%q) error = %v; want error %v", tt.name, tt.policy, err, tt.wantErr)
		}
	}

	// maxResends: 1 when left out, 0 when written 0 (a rule that excludes).
	for policy, want := range map[string]int{`{"rules":[{"via":["SMS"]}]}`: 1, `{"rules":[{"via":["SMS"],"maxResends":0}]}`: 0, `{"rules":[{"via":["SMS"],"maxResends":3}]}`: 3} {
		if pol, err := ParsePolicy([]byte(policy)); err != nil || pol.Rules[0].MaxResends != want {
			t.Errorf("ParsePolicy(%s): maxResends %v, %v; want %d", policy, pol, err, want)
		}
	}
	never := &Rule{Via: []string{"SMS"}, MaxResends: 0}
	if got := (&Poller{}).resendBlocked(&Record{Expires: time.Now().Add(time.Hour)}, never, 1, time.Now()); got == "" {
		t.Errorf("a maxResends 0 rule let a resend through")
	}

	pol, err := LoadPolicy("testdata/resend-policy.json")
	if err != nil {
		t.Fatal(err)
	}
	payment := "adbe6521-f5bd-4295-9fd9-776debdf7d03"
	matches := []struct {
		ev      events.DeliveryStatus
		wantVia string // "" = no rule
		n       int
	}{
		{events.DeliveryStatus{Channel: events.ChannelSMS, Status: events.StatusUndeliverable}, "VOICE", 1},
		{events.DeliveryStatus{Channel: events.ChannelSMS, Status: events.StatusTimedOut}, "VOICE", 1},
		{events.DeliveryStatus{Channel: events.ChannelViber, Status: events.StatusTimedOut, ProfileID: payment}, "VOICE", 2},
		{events.DeliveryStatus{Channel: events.ChannelViber, Status: events.StatusTimedOut, ProfileID: payment}, "SMS", 1},
		{events.DeliveryStatus{Channel: events.ChannelViber, Status: events.StatusTimedOut}, "", 1},
		{events.DeliveryStatus{Channel: events.ChannelVoice, Status: events.StatusUndeliverable}, "", 1},
	}
	for _, m := range matches {
		r := pol.Match(&m.ev)
		got := ""
		if r != nil {
			got = r.via(m.n)
		}
		if got != m.wantVia {
			t.Errorf("Match(%s %s profile %q) resend %d via %q; want %q", m.ev.Channel, m.ev.Status, m.ev.ProfileID, m.n, got, m.wantVia)
		}
	}
}

// TestResendFencedByTheLease: a leader whose lease term ran out while it
// decided (a paused process resuming) sends nothing and gives the decision
// back; the next leader sends it once. A claim left by an earlier term with
// no outcome waits out the grace, then is settled as failed, never re-sent.
func TestResendFencedByTheLease(t *testing.T) {
	ns := brokertest.NewServer(t)
	b := ns.Broker(t)
	sim, url := failingSMS(t, 200, 0, "", true)
	cfg := testConfig(sim, url)
	cfg.ResendPolicy, cfg.ResendMode, cfg.Replica = writePolicy(t, voicePolicy), ModeLive, "replica-a"
	p := newPoller(t, b, cfg)
	resends := func(id string) int { o, _ := sim.Truth().OTP(id); return len(o.Resends) }
	failure := func(to string) (string, events.DeliveryStatus) {
		id, err := sim.Send(tyntec.NewOTPRequest{To: to, PriorityName: "tyntec_priority_sms"})
		if err != nil {
			t.Fatal(err)
		}
		simtest.WaitIdle(t, sim)
		return id, smsFailure(t, sim, id)
	}
	now := time.Now()
	expired := broker.ContextWithLeaseTerm(t.Context(), broker.NewLeaseTerm(7, now.Add(-time.Minute), now.Add(-time.Millisecond)))
	held := broker.ContextWithLeaseTerm(t.Context(), broker.NewLeaseTerm(9, now.Add(-time.Minute), now.Add(time.Minute)))

	id, ev := failure("+4915500000011")
	d, err := p.DecideResend(expired, &ev)
	if err != nil || d.Result != "" || d.Reason != "lease lost" || d.Retry <= 0 {
		t.Fatalf("DecideResend past the term = %+v, %v; want nothing decided, a retry", d, err)
	}
	if n := resends(id); n != 0 {
		t.Fatalf("%d resends at the simulator from a leader past its term", n)
	}
	if _, err := p.decisions.Get(t.Context(), DecisionID(&ev)); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("the decision key after a fenced decision: %v; want it released", err)
	}
	if d, err := p.DecideResend(held, &ev); err != nil || d.Result != events.ResendSent || resends(id) != 1 {
		t.Fatalf("DecideResend by the next leader = %+v, %v, %d resends; want sent once", d, err, resends(id))
	}

	// A claim by an earlier term (7) that never recorded an outcome.
	id, ev = failure("+4915500000012")
	claim, _ := json.Marshal(decisionState{Replica: "replica-b", Claimed: time.Now().UTC(), Term: 7})
	if _, err := p.decisions.Create(t.Context(), DecisionID(&ev), claim); err != nil {
		t.Fatal(err)
	}
	fresh := broker.ContextWithLeaseTerm(t.Context(), broker.NewLeaseTerm(9, time.Now(), time.Now().Add(time.Minute)))
	if d, err := p.DecideResend(fresh, &ev); err != nil || d.Result != "" || d.Retry <= 0 {
		t.Fatalf("DecideResend within the grace = %+v, %v; want a retry, nothing decided", d, err)
	}
	sameTerm := broker.ContextWithLeaseTerm(t.Context(), broker.NewLeaseTerm(7, now.Add(-time.Hour), now.Add(time.Minute)))
	if d, err := p.DecideResend(sameTerm, &ev); err != nil || d.Result != "" || d.Reason != "being decided" {
		t.Fatalf("DecideResend in the claimer's own term = %+v, %v; want it left to the claimer", d, err)
	}
	d, err = p.DecideResend(held, &ev)
	if err != nil || d.Result != events.ResendFailed || !strings.Contains(d.Reason, "may have re-sent") {
		t.Fatalf("DecideResend after the grace = %+v, %v; want failed, may have re-sent", d, err)
	}
	if n := resends(id); n != 0 {
		t.Errorf("%d resends for an abandoned claim; want none", n)
	}
	if d, err := p.DecideResend(held, &ev); err != nil || d.Result != "" || d.Reason != "decided already" {
		t.Errorf("DecideResend again = %+v, %v; want decided already", d, err)
	}

	// A dry-run claimer sent nothing: its abandoned claim is decided again.
	id, ev = failure("+4915500000014")
	claim, _ = json.Marshal(decisionState{Replica: "replica-b", Claimed: time.Now().UTC(), Term: 7, DryRun: true})
	if _, err := p.decisions.Create(t.Context(), DecisionID(&ev), claim); err != nil {
		t.Fatal(err)
	}
	if d, err := p.DecideResend(held, &ev); err != nil || d.Result != "" || d.Retry <= 0 {
		t.Fatalf("DecideResend of an abandoned dry-run claim = %+v, %v; want it given back", d, err)
	}
	if d, err := p.DecideResend(held, &ev); err != nil || d.Result != events.ResendSent || resends(id) != 1 {
		t.Fatalf("DecideResend after = %+v, %v, %d resends; want sent once", d, err, resends(id))
	}
	brokertest.WaitFor(t, 10*time.Second, "the three audits", func() bool { return len(audits(t, b)) == 3 })
}

// TestResendInFlightWhenTheLeaseIsLost: the leader's context ends (a stop,
// or the lease lost after a pause) while its re-send POST is in flight.
// tyntec may have sent it, so the claimer records the decision as failed,
// saying so, on a context the end does not cut short: the outcome is
// stored and audited by the claimer, not left for the next leader.
func TestResendInFlightWhenTheLeaseIsLost(t *testing.T) {
	ns := brokertest.NewServer(t)
	b := ns.Broker(t)
	sim, simURL := failingSMS(t, 200, 0, "", true)
	target, err := url.Parse(simURL)
	if err != nil {
		t.Fatal(err)
	}
	posted := make(chan struct{}, 1)
	forward := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			forward.ServeHTTP(w, r)
			return
		}
		// The re-send reaches tyntec; its answer never reaches the poller.
		forward.ServeHTTP(httptest.NewRecorder(), r.Clone(context.WithoutCancel(r.Context())))
		posted <- struct{}{}
		<-r.Context().Done()
	}))
	t.Cleanup(proxy.Close)
	cfg := testConfig(sim, proxy.URL)
	cfg.ResendPolicy, cfg.ResendMode = writePolicy(t, voicePolicy), ModeLive
	p := newPoller(t, b, cfg)
	id, err := sim.Send(tyntec.NewOTPRequest{To: "+4915500000013", PriorityName: "tyntec_priority_sms"})
	if err != nil {
		t.Fatal(err)
	}
	simtest.WaitIdle(t, sim)
	ev := smsFailure(t, sim, id)

	ctx, cancel := context.WithCancel(broker.ContextWithLeaseTerm(t.Context(), broker.NewLeaseTerm(3, time.Now(), time.Now().Add(time.Minute))))
	type result struct {
		d   Decision
		err error
	}
	done := make(chan result, 1)
	go func() { d, err := p.DecideResend(ctx, &ev); done <- result{d, err} }()
	select {
	case <-posted:
	case <-time.After(20 * time.Second):
		t.Fatal("the re-send was never posted")
	}
	cancel()
	r := <-done
	if r.err != nil || r.d.Result != events.ResendFailed || !strings.Contains(r.d.Reason, "may have been sent") {
		t.Fatalf("DecideResend cut short with the POST in flight = %+v, %v; want failed, may have been sent", r.d, r.err)
	}
	e, err := p.decisions.Get(t.Context(), DecisionID(&ev))
	var ds decisionState
	if err != nil || json.Unmarshal(e.Value(), &ds) != nil || ds.Audit == nil || ds.Audit.Result != events.ResendFailed {
		t.Errorf("the decision key after the cut: %v, %+v; want the failed outcome stored", err, ds)
	}
	brokertest.WaitFor(t, 10*time.Second, "the audit", func() bool { return len(audits(t, b)) == 1 })
	if o, _ := sim.Truth().OTP(id); len(o.Resends) != 1 {
		t.Errorf("%d resends at the simulator; want the 1 that was in flight", len(o.Resends))
	}
}
