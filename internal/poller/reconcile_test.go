package poller

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/broker"
	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/tyntec"
	"github.com/otpscope/otpscope/internal/tyntecsim"
	"github.com/otpscope/otpscope/internal/tyntecsim/simtest"
)

// scale is simulated seconds per wall-clock second in these tests: a 300 s
// expiry lasts 1.5 s, the 90 s settle time 0.45 s.
const scale = 200

// TestRecoversDroppedWebhooks: with 30% of webhooks dropped, every dropped
// final delivery state is recovered by polling within a bounded number of
// cycles, marked source=poll and missedWebhook, and counted; facts that did
// arrive by webhook are neither re-published nor polled for.
func TestRecoversDroppedWebhooks(t *testing.T) {
	ns := brokertest.NewServer(t)
	b := ns.Broker(t)
	hook := webhookReceiver(t, b)
	sim, url := simtest.Start(t, tyntecsim.Config{
		// The poller recovers v4 OTPs through v1 (/events, re-send), which assumes
		// one OTP store for both versions; a follow-up makes it work without.
		SharedVersions: true,
		Seed:           seed(7), TimeScale: scale,
		Faults:    tyntecsim.Faults{WebhookDrop: 0.3},
		Callbacks: []tyntec.NewCallbackConfig{{URL: hook}},
	})
	p := newPoller(t, b, testConfig(sim, url))
	goRun(t, p.runTracker)

	truth := sendTracked(t, sim, b, 80)

	var droppedFinal, dropped int
	lastFact := truth.At
	for _, o := range truth.OTPs {
		for _, w := range o.Webhooks {
			if w.Dropped {
				dropped++
				if events.Status(w.Status).Final() {
					droppedFinal++
				}
			}
		}
	}
	if droppedFinal == 0 {
		t.Fatal("the simulator dropped no final webhook; the test proves nothing")
	}

	// Every OTP settled before truth.At; after the settle time one cycle reads
	// them all, a second finds nothing left.
	waitSim(t, sim, lastFact.Add(DefaultSettle))
	var total CycleStats
	cycles := 0
	for ; cycles < 3; cycles++ {
		st, err := p.ReconcileOnce(t.Context())
		if err != nil {
			t.Fatalf("ReconcileOnce: %v", err)
		}
		total.Missed += st.Missed
		total.DeliveryPolls += st.DeliveryPolls
		total.Discovered += st.Discovered
		if st.DeliveryDue == 0 && cycles > 0 {
			break
		}
	}
	if cycles >= 3 {
		t.Errorf("OTPs still due after %d cycles", cycles)
	}

	got := deliveries(t, b)
	recovered := 0
	for _, o := range truth.OTPs {
		for _, w := range o.Webhooks {
			id := factID(o.ID, string(w.Channel), string(w.Status), w.Timestamp)
			ds, ok := got[id]
			switch {
			case !ok:
				// A dropped DISPATCHED too: without it the attempt has no
				// latency and is placed by its outcome.
				t.Errorf("OTP %s %s %s (dropped=%v): no delivery fact in the stream", o.ID, w.Channel, w.Status, w.Dropped)
			case w.Dropped && (ds.Source != events.SourcePoll || !ds.MissedWebhook):
				t.Errorf("dropped %s %s of %s stored with source %q missed %v; want poll, true", w.Channel, w.Status, o.ID, ds.Source, ds.MissedWebhook)
			case w.Dropped:
				recovered++
			case ds.Source != events.SourceWebhook:
				t.Errorf("webhook %s %s of %s stored with source %q; want webhook", w.Channel, w.Status, o.ID, ds.Source)
			}
		}
	}
	if total.Missed != recovered {
		t.Errorf("missed webhooks counted = %d; want %d (the dropped webhooks recovered)", total.Missed, recovered)
	}
	if total.Discovered == 0 {
		t.Errorf("discovery found no OTP; want those whose every webhook was dropped")
	}

	// An OTP delivered and whose every webhook arrived costs no delivery call.
	for _, o := range truth.OTPs {
		allArrived := true
		for _, w := range o.Webhooks {
			allArrived = allArrived && !w.Dropped
		}
		if !allArrived || o.DeliveredOn() == "" {
			continue
		}
		if n := countCalls(sim, func(c tyntecsim.Call) bool { return c.Path == "/2fa/v1/otp/"+o.ID+"/events" }); n != 0 {
			t.Errorf("OTP %s: every webhook arrived, yet its events were read %d times", o.ID, n)
		}
	}
	t.Logf("%d OTPs, %d webhooks dropped (%d final), %d event reads, %d discovered, %d cycles",
		len(truth.OTPs), dropped, droppedFinal, total.DeliveryPolls, total.Discovered, cycles+1)
}

// TestWholeSecondWebhooks: webhooks timed in whole seconds, as tyntec's
// examples are, while v1 events carry milliseconds. A fact both reported is
// the same fact: only the dropped webhooks are recovered and counted missed,
// and an OTP whose facts all arrived is read once, not until it gives up.
func TestWholeSecondWebhooks(t *testing.T) {
	ns := brokertest.NewServer(t)
	b := ns.Broker(t)
	hook := webhookReceiver(t, b)
	sim, url := simtest.Start(t, tyntecsim.Config{
		SharedVersions: true, WebhookSeconds: true,
		Seed: seed(11), TimeScale: scale,
		Faults:    tyntecsim.Faults{WebhookDrop: 0.3},
		Callbacks: []tyntec.NewCallbackConfig{{URL: hook}},
	})
	p := newPoller(t, b, testConfig(sim, url))
	goRun(t, p.runTracker)
	truth := sendTracked(t, sim, b, 60)
	waitSim(t, sim, truth.At.Add(DefaultSettle))
	var missed, cycles int
	for ; cycles < 3; cycles++ {
		st, err := p.ReconcileOnce(t.Context())
		if err != nil {
			t.Fatalf("ReconcileOnce: %v", err)
		}
		missed += st.Missed
		if st.DeliveryDue == 0 && cycles > 0 {
			break
		}
	}
	if cycles >= 3 {
		t.Errorf("OTPs still due after %d cycles: facts reported both ways were taken for new ones", cycles)
	}

	type fact struct {
		otp, channel, status string
		second               time.Time
	}
	polled := map[fact]int{}
	for _, ds := range deliveries(t, b) {
		if ds.Source == events.SourcePoll {
			polled[fact{ds.OTPID, string(ds.Channel), string(ds.Status), ds.Timestamp.Truncate(time.Second)}]++
		}
	}
	dropped, subSecond := 0, 0
	for _, o := range truth.OTPs {
		for _, w := range o.Webhooks {
			if w.Timestamp.Nanosecond() != 0 {
				subSecond++
			}
			f := fact{o.ID, string(w.Channel), string(w.Status), w.Timestamp}
			switch n := polled[f]; {
			case w.Dropped && n != 1:
				t.Errorf("dropped %s %s of %s: %d polled facts; want 1", w.Channel, w.Status, o.ID, n)
			case !w.Dropped && n != 0:
				t.Errorf("%s %s of %s arrived as a webhook, yet published again from v1 %d times", w.Channel, w.Status, o.ID, n)
			}
			if w.Dropped {
				dropped++
			}
		}
	}
	if dropped == 0 || subSecond != 0 {
		t.Fatalf("%d webhooks dropped, %d timed below the second; want some dropped, none below the second", dropped, subSecond)
	}
	if missed != dropped {
		t.Errorf("missed webhooks counted %d; want %d, the dropped ones", missed, dropped)
	}
}

// TestV1RegisteredOTPs: v1 OTPs (no webhooks) registered on the tracking
// subject produce delivery facts from their v1 events, not counted as missed.
func TestV1RegisteredOTPs(t *testing.T) {
	forEachWorld(t, func(t *testing.T, shared bool) {
		ns := brokertest.NewServer(t)
		b := ns.Broker(t)
		sim, url := simtest.Start(t, tyntecsim.Config{Seed: 3, TimeScale: scale, SharedVersions: shared})
		cfg := testConfig(sim, url)
		cfg.DiscoveryInterval = 0 // v1 OTPs are not listed by v4 anyway
		p := newPoller(t, b, cfg)
		goRun(t, p.runTracker)

		client := simClient(t, url)
		var ids []string
		for i, via := range []string{"SMS", "VOICE", "SMS", "AUTO"} {
			o, err := client.V1Send(t.Context(), tyntec.V1SendRequest{Number: fmt.Sprintf("+4917%08d", i), Via: via})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, o.OTPID)
			m, err := events.NewTrackMessage(&events.Track{OTPID: o.OTPID, API: "v1", At: sim.Now()})
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Publish(t.Context(), m); err != nil {
				t.Fatal(err)
			}
		}
		simtest.WaitIdle(t, sim)
		waitTracked(t, b)
		waitSim(t, sim, sim.Now().Add(DefaultSettle))
		st, err := p.ReconcileOnce(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if st.DeliveryPolls != len(ids) || st.Missed != 0 {
			t.Errorf("cycle %+v; want %d event reads and no missed webhooks", st, len(ids))
		}

		got := deliveries(t, b)
		truth := sim.Truth()
		for _, id := range ids {
			o, _ := truth.OTP(id)
			if len(o.Attempts) == 0 || o.Attempts[0].Outcome == "" {
				t.Fatalf("OTP %s has no settled attempt in the simulator", id)
			}
			for _, a := range o.Attempts {
				for _, f := range []struct {
					status events.Status
					at     time.Time
				}{{events.StatusDispatched, a.Dispatched}, {a.Outcome, a.Settled}} {
					ds, ok := got[factID(id, string(a.Channel), string(f.status), f.at)]
					if !ok || ds.Source != events.SourcePoll || ds.MissedWebhook {
						t.Errorf("v1 OTP %s %s %s: stored %v %+v; want source poll, not missed", id, a.Channel, f.status, ok, ds)
					}
				}
			}
		}
		v1 := streamMessages(t, b, events.SubjectV1Event)
		wantEvents := 0
		for _, id := range ids {
			o, _ := truth.OTP(id)
			wantEvents += len(o.Events)
		}
		if len(v1) != wantEvents {
			t.Errorf("%d v1 events published; want %d", len(v1), wantEvents)
		}

		// A second cycle has nothing to read: the deliveries are settled.
		if st, err := p.ReconcileOnce(t.Context()); err != nil || st.DeliveryDue != 0 {
			t.Errorf("second cycle %+v, %v; want nothing due", st, err)
		}
	})
}

// TestUpstreamOutcome: an outcome reported on the tracking subject is
// published as an exact OTP status and ends the need to poll it.
func TestUpstreamOutcome(t *testing.T) {
	forEachWorld(t, func(t *testing.T, shared bool) {
		ns := brokertest.NewServer(t)
		b := ns.Broker(t)
		sim, url := simtest.Start(t, tyntecsim.Config{Seed: 5, TimeScale: scale, SharedVersions: shared})
		p := newPoller(t, b, testConfig(sim, url))
		goRun(t, p.runTracker)
		id := "0f8fad5b-d9cb-469f-a165-70867728950e"
		for _, tr := range []events.Track{{OTPID: id, API: "v4"}, {OTPID: id, Status: string(events.OTPVerified)}} {
			m, err := events.NewTrackMessage(&tr)
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Publish(t.Context(), m); err != nil {
				t.Fatal(err)
			}
		}
		waitTracked(t, b)
		msgs := streamMessages(t, b, events.OTPStatusSubject(events.OTPVerified))
		if len(msgs) != 1 {
			t.Fatalf("%d messages on %s; want 1", len(msgs), events.OTPStatusSubject(events.OTPVerified))
		}
		var os events.OTPStatus
		if err := json.Unmarshal(msgs[0].data, &os); err != nil || os.Source != events.SourceUpstream || os.SampleRate != 1 || os.OTPID != id {
			t.Errorf("OTP status %s (%v); want source upstream, sample rate 1", msgs[0].data, err)
		}
		if r, ok := p.store.cached(id); !ok || r.OTPStatus != string(events.OTPVerified) {
			t.Errorf("record %+v; want status VERIFIED", r)
		}
	})
}

// TestOldTrackedOTPIsGivenUpNotBehind: an OTP tracked with an at long past
// its expiry and grace (the README's snippet dated months back) is given
// up at once; it does not count as the poller falling behind.
func TestOldTrackedOTPIsGivenUpNotBehind(t *testing.T) {
	ns := brokertest.NewServer(t)
	b := ns.Broker(t)
	sim, url := simtest.Start(t, tyntecsim.Config{Seed: 5, TimeScale: scale})
	p := newPoller(t, b, testConfig(sim, url))
	goRun(t, p.runTracker)
	m, err := events.NewTrackMessage(&events.Track{OTPID: "0f8fad5b-d9cb-469f-a165-70867728950f", API: "v4", At: sim.Now().Add(-180 * 24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	waitTracked(t, b)
	st, err := p.ReconcileOnce(t.Context())
	if _, _, oldest, _ := p.Backlog(); err != nil || st.Finished != 1 || oldest != 0 {
		t.Errorf("a cycle after tracking an OTP of 180 days ago: %+v, %v, oldest waiting %v; want it finished, none waiting", st, err, oldest)
	}
}

// TestVerificationSample: the final status of delivered OTPs is read once they
// expired, only for the sampled share, and published with that share.
func TestVerificationSample(t *testing.T) {
	forEachWorld(t, func(t *testing.T, shared bool) {
		ns := brokertest.NewServer(t)
		b := ns.Broker(t)
		hook := webhookReceiver(t, b)
		sim, url := simtest.Start(t, tyntecsim.Config{
			SharedVersions: shared,
			Seed:           11, TimeScale: scale, Callbacks: []tyntec.NewCallbackConfig{{URL: hook}},
			Channels: map[events.Channel]tyntecsim.Channel{events.ChannelSMS: {DeliveryProbability: 1, Latency: tyntecsim.LogNormal{Median: time.Second}, Timeout: time.Minute}},
		})
		cfg := testConfig(sim, url)
		cfg.DiscoveryInterval = 0 // statuses come from GET /2fa/v4/otp/{id}
		cfg.VerifySample = 0.5
		p := newPoller(t, b, cfg)
		goRun(t, p.runTracker)

		client := simClient(t, url)
		var ids []string
		for i := range 40 {
			id, err := sim.Send(tyntec.NewOTPRequest{To: fmt.Sprintf("+49160%07d", i), PriorityName: "tyntec_priority_sms", OTPCode: "123456"})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		simtest.WaitIdle(t, sim)
		for _, id := range ids[:20] {
			if _, err := client.ValidateOTP(t.Context(), id, "123456"); err != nil {
				t.Fatal(err)
			}
		}
		waitTracked(t, b)
		waitSim(t, sim, sim.Truth().OTPs[len(ids)-1].Expire.Add(time.Second))
		if _, err := p.ReconcileOnce(t.Context()); err != nil {
			t.Fatal(err)
		}
		sampled := 0
		for _, id := range ids {
			if p.inSample(id) {
				sampled++
			}
		}
		if sampled == 0 || sampled == len(ids) {
			t.Fatalf("%d of %d OTPs sampled at 0.5; the test proves nothing", sampled, len(ids))
		}
		statuses := streamMessages(t, b, events.SubjectRoot+".otp.>")
		if len(statuses) != sampled {
			t.Errorf("%d OTP statuses published; want the %d sampled", len(statuses), sampled)
		}
		for _, m := range statuses {
			var os events.OTPStatus
			if err := json.Unmarshal(m.data, &os); err != nil {
				t.Fatal(err)
			}
			want := events.OTPExpired
			for _, id := range ids[:20] {
				if id == os.OTPID {
					want = events.OTPVerified
				}
			}
			if !p.inSample(os.OTPID) || os.Status != want || os.SampleRate != 0.5 || os.Source != events.SourcePoll {
				t.Errorf("status %+v; want %s of a sampled OTP at rate 0.5 from poll", os, want)
			}
		}
		calls := countCalls(sim, func(c tyntecsim.Call) bool { return c.Method == "GET" && strings.HasPrefix(c.Path, "/2fa/v4/otp/") })
		if calls != sampled {
			t.Errorf("%d status reads; want %d (one per sampled OTP)", calls, sampled)
		}
	})
}

// TestDroppedWebhooksUnrecoverable is TestRecoversDroppedWebhooks where
// tyntec's v1 API does not serve v4 OTPs: the poller learns so from its first
// v1 read (and stops asking v1), invents no delivery fact, and once each OTP
// is closed publishes every attempt whose outcome webhook was lost as
// unrecoverable.
func TestDroppedWebhooksUnrecoverable(t *testing.T) {
	ns := brokertest.NewServer(t)
	b := ns.Broker(t)
	hook := webhookReceiver(t, b)
	sim, url := simtest.Start(t, tyntecsim.Config{
		Seed: seed(7), TimeScale: scale,
		Faults:    tyntecsim.Faults{WebhookDrop: 0.3},
		Callbacks: []tyntec.NewCallbackConfig{{URL: hook}},
	})
	p := newPoller(t, b, testConfig(sim, url))
	goRun(t, p.runTracker)
	if w := p.World(); w != WorldUnknown {
		t.Fatalf("world before any call = %v; want unknown", w)
	}
	want, lastExpiry := lostOutcomes(t, sendTracked(t, sim, b, 80))

	// Every OTP is closed (expired, or verified) after lastExpiry.
	waitSim(t, sim, lastExpiry.Add(DefaultSettle))
	var total CycleStats
	for cycles := 0; ; cycles++ {
		if cycles == 4 {
			t.Fatalf("OTPs still due after %d cycles", cycles)
		}
		st, err := p.ReconcileOnce(t.Context())
		if err != nil {
			t.Fatalf("ReconcileOnce: %v", err)
		}
		total.Missed += st.Missed
		total.Unrecoverable += st.Unrecoverable
		if st.DeliveryDue == 0 && cycles > 0 {
			break
		}
	}
	if w := p.World(); w != WorldSeparate {
		t.Errorf("world = %v; want separate", w)
	}
	if got := metricValue(t, p.metrics.v1SeesV4); got != 0 {
		t.Errorf("otpscope_poller_v1_sees_v4 = %v; want 0", got)
	}
	if n := countCalls(sim, func(c tyntecsim.Call) bool { return strings.HasSuffix(c.Path, "/events") }); n != 1 {
		t.Errorf("%d v1 event reads; want 1 (the one that taught the poller)", n)
	}
	if total.Missed != 0 {
		t.Errorf("%d missed webhooks recovered; want 0 where v1 does not serve v4 OTPs", total.Missed)
	}
	for _, ds := range deliveries(t, b) {
		if ds.Source != events.SourceWebhook {
			t.Errorf("delivery fact %+v with source %q; want none but webhooks (nothing invented)", ds, ds.Source)
		}
	}
	got := map[lostAttempt]time.Time{}
	for _, m := range streamMessages(t, b, events.SubjectRoot+".reconcile.>") {
		var rc events.Reconcile
		if err := json.Unmarshal(m.data, &rc); err != nil {
			t.Fatal(err)
		}
		if m.subject != events.ReconcileSubject(events.ReconcileUnrecoverable) || rc.Result != events.ReconcileUnrecoverable || rc.API != "v4" {
			t.Errorf("reconcile %s on %s; want unrecoverable v4", m.data, m.subject)
		}
		if rc.Channel != "" {
			got[lostAttempt{rc.OTPID, rc.Channel}] = rc.Since
		}
	}
	for a, at := range want {
		if g, ok := got[a]; !ok || !g.Equal(at) {
			t.Errorf("OTP %s %s: lost outcome reported unrecoverable since %v (%v); want since %v", a.otp, a.ch, g, ok, at)
		}
	}
	for a := range got {
		if _, ok := want[a]; !ok {
			t.Errorf("OTP %s %s reported unrecoverable; its outcome webhook was not lost", a.otp, a.ch)
		}
	}
	t.Logf("%d lost outcomes of dispatched attempts, %d unrecoverable records", len(want), total.Unrecoverable)
}

// sendTracked sends n OTPs to sim, waits until the simulator is idle and
// the poller on b has tracked every webhook that arrived, and returns the simulator's truth. The
// priorities' channel sequences tell each other apart: with WHATSAPP>SMS as
// well, an OTP whose WHATSAPP webhooks were all lost would look like an
// SMS-first one, and nothing but a poll of every OTP could tell (see the
// package documentation).
// lostAttempt is one attempt of an OTP, by its channel.
type lostAttempt struct {
	otp string
	ch  events.Channel
}

// lostOutcomes are truth's attempts dispatched (the webhook arrived) whose
// outcome webhook was dropped, with their dispatch times, and when the last
// OTP expires. None fails the test: it would prove nothing.
func lostOutcomes(t *testing.T, truth tyntecsim.Truth) (map[lostAttempt]time.Time, time.Time) {
	t.Helper()
	lost := map[lostAttempt]time.Time{}
	var lastExpiry time.Time
	for _, o := range truth.OTPs {
		lastExpiry = later(lastExpiry, o.Expire)
		dispatched := map[events.Channel]*tyntecsim.Webhook{}
		for i, w := range o.Webhooks {
			switch {
			case w.Status == events.StatusDispatched && !w.Dropped:
				dispatched[w.Channel] = &o.Webhooks[i]
			case w.Status.Final() && w.Dropped && dispatched[w.Channel] != nil:
				lost[lostAttempt{o.ID, w.Channel}] = dispatched[w.Channel].Timestamp
			}
		}
	}
	if len(lost) == 0 {
		t.Fatal("no outcome webhook of a dispatched attempt was dropped; the test proves nothing")
	}
	return lost, lastExpiry
}

func sendTracked(t *testing.T, sim *tyntecsim.Sim, b *broker.Broker, n int) tyntecsim.Truth {
	t.Helper()
	prios := []string{"tyntec_priority_sms-viber", "tyntec_priority_sms-voice", "tyntec_priority_sms"}
	for i := range n {
		if _, err := sim.Send(tyntec.NewOTPRequest{To: fmt.Sprintf("+49151%07d", i), PriorityName: prios[i%len(prios)]}); err != nil {
			t.Fatal(err)
		}
	}
	simtest.WaitIdle(t, sim)
	waitTracked(t, b)
	return sim.Truth()
}

// TestOneV1NotFoundKeepsTheSharedWorld: once a v1 answer about a v4 OTP
// has shown that v1 serves v4 OTPs, a v1 404 (an OTP gone from v1 alone, a
// gateway's answer) does not overturn it. One 404 used to switch the poller
// to the separate world for good: every later lost webhook counted
// unrecoverable, the bucket saying so to every replica and restart.
func TestOneV1NotFoundKeepsTheSharedWorld(t *testing.T) {
	ns := brokertest.NewServer(t)
	b := ns.Broker(t)
	hook := webhookReceiver(t, b)
	sim, simURL := simtest.Start(t, tyntecsim.Config{
		SharedVersions: true, Seed: seed(7), TimeScale: scale,
		Faults:    tyntecsim.Faults{WebhookDrop: 0.3},
		Callbacks: []tyntec.NewCallbackConfig{{URL: hook}},
	})
	// In front of the simulator: v1 events answer 404 while notFound holds.
	var notFound atomic.Bool
	var served404 atomic.Int64
	front := faultFront(t, simURL, func(w http.ResponseWriter, r *http.Request) bool {
		if !notFound.Load() || !strings.HasPrefix(r.URL.Path, "/2fa/v1/otp/") || !strings.HasSuffix(r.URL.Path, "/events") {
			return false
		}
		served404.Add(1)
		problem(w, http.StatusNotFound)
		return true
	})
	p := newPoller(t, b, testConfig(sim, front))
	goRun(t, p.runTracker)
	settle := func(n int) {
		t.Helper()
		truth := sendTracked(t, sim, b, n)
		waitSim(t, sim, truth.At.Add(DefaultSettle))
		for range 3 {
			st, err := p.ReconcileOnce(t.Context())
			if err != nil {
				t.Fatalf("ReconcileOnce: %v", err)
			}
			if st.DeliveryDue == 0 {
				return
			}
		}
	}

	settle(20)
	if w := p.World(); w != WorldShared {
		t.Fatalf("after v1 answered for v4 OTPs: world %v; want shared", w)
	}
	notFound.Store(true)
	settle(10)
	if served404.Load() == 0 {
		t.Fatal("no v1 read met the 404s; the test proves nothing")
	}
	if w := p.World(); w != WorldShared {
		t.Errorf("after %d v1 404s: world %v; want shared still", served404.Load(), w)
	}
	if w := newPoller(t, b, testConfig(sim, front)).World(); w != WorldShared {
		t.Errorf("a replica (or restart) reads world %v from the bucket; want shared", w)
	}
}

// TestForgottenOTPsAttemptsUnrecoverable: an OTP tyntec no longer knows (a
// 404 from v4 and v1) ends its tracking, and each of its attempts seen
// dispatched without an outcome is published unrecoverable: it used to
// stay pending, awaiting a poller that had stopped looking, with nothing
// but a counter saying so.
func TestForgottenOTPsAttemptsUnrecoverable(t *testing.T) {
	ns := brokertest.NewServer(t)
	b := ns.Broker(t)
	hook := webhookReceiver(t, b)
	sim, simURL := simtest.Start(t, tyntecsim.Config{
		Seed: seed(7), TimeScale: scale,
		Faults:    tyntecsim.Faults{WebhookDrop: 0.3},
		Callbacks: []tyntec.NewCallbackConfig{{URL: hook}},
	})
	// In front of the simulator: every v4 OTP's own status is 404, as
	// after tyntec forgot them (v1, a separate store here, 404s them too).
	front := faultFront(t, simURL, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodGet || !strings.HasPrefix(r.URL.Path, "/2fa/v4/otp/") {
			return false
		}
		problem(w, http.StatusNotFound)
		return true
	})
	p := newPoller(t, b, testConfig(sim, front))
	goRun(t, p.runTracker)
	want, lastExpiry := lostOutcomes(t, sendTracked(t, sim, b, 40))
	waitSim(t, sim, lastExpiry.Add(DefaultSettle))
	for range 3 {
		st, err := p.ReconcileOnce(t.Context())
		if err != nil {
			t.Fatalf("ReconcileOnce: %v", err)
		}
		if st.DeliveryDue == 0 {
			break
		}
	}
	got := map[lostAttempt]bool{}
	for _, m := range streamMessages(t, b, events.SubjectRoot+".reconcile.>") {
		var rc events.Reconcile
		if err := json.Unmarshal(m.data, &rc); err != nil {
			t.Fatal(err)
		}
		if rc.Result != events.ReconcileUnrecoverable || rc.Channel == "" || !strings.Contains(rc.Reason, "tyntec no longer knows the OTP") {
			t.Errorf("reconcile record %+v; want an unrecoverable attempt on its channel, tyntec having forgotten the OTP", rc)
		}
		got[lostAttempt{rc.OTPID, rc.Channel}] = true
	}
	for a := range want {
		if !got[a] {
			t.Errorf("attempt %v, dispatched, its outcome webhook lost, its OTP forgotten by tyntec: not published unrecoverable", a)
		}
	}
	if n := metricValue(t, p.metrics.finished.WithLabelValues(doneNotFound)); n == 0 {
		t.Error("no OTP finished as not found")
	}
}
