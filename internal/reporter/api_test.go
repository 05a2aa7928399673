package reporter_test

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/ingest"
	"github.com/otpscope/otpscope/internal/ops"
	"github.com/otpscope/otpscope/internal/problem"
	"github.com/otpscope/otpscope/internal/reporter"
	"github.com/otpscope/otpscope/internal/store"
	"github.com/otpscope/otpscope/internal/tyntec"
	"github.com/otpscope/otpscope/internal/tyntecsim"
)

const webhookToken = "analytics-test-token"

// simStart is the simulated time the traffic starts at.
var simStart = time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)

// traffic is simulated tyntec traffic stored end to end: the simulator's
// webhooks (with drops, duplicates and reordering) go through the real ingest
// handler onto NATS, the sink consumer writes them into the embedded engine,
// and what the poller would recover for dropped webhooks (the same fact, with
// source "poll") and the final OTP statuses it would read are published the
// way the poller publishes them.
type traffic struct {
	f     *fixture
	truth tyntecsim.Truth
	api   *httptest.Server

	reader clickhouse.Conn // anonymous, as Grafana reads; see readerConn
}

func newTraffic(t *testing.T) *traffic {
	t.Helper()
	f := newFixture(t)
	ctx := t.Context()

	r := ops.NewRouter()
	reg := prometheus.NewRegistry()
	h := ingest.NewHandler(ingest.Config{Tokens: []string{webhookToken}, MaxBodyBytes: ingest.DefaultMaxBodyBytes, PublishTimeout: 5 * time.Second, RetryAfter: time.Second},
		f.Broker, brokertest.Logger(t), reg)
	ingest.Mount(r, append(h.Routes(), ingest.NewMethods(h, []byte("analytics-pseudonym-key"), reg).Routes()...)...)
	hooks := httptest.NewServer(r)
	t.Cleanup(hooks.Close)
	auth := map[string]string{"X-Webhook-Token": webhookToken}

	sim, err := tyntecsim.New(tyntecsim.Config{
		Seed: 6, TimeScale: 2000, Start: simStart,
		// The poller recovers the dropped v4 webhooks through v1 /events,
		// which assumes one OTP store for both versions.
		SharedVersions: true,
		Callbacks:      []tyntec.NewCallbackConfig{{URL: hooks.URL + ingest.WebhookPath, Headers: auth}},
		PushCallbacks:  []tyntecsim.PushCallback{{URL: hooks.URL + ingest.PushPath, Headers: auth}},
		Faults:         tyntecsim.Faults{WebhookDrop: 0.08, WebhookDuplicate: 0.15, WebhookReorder: 0.15},
		Channels: map[events.Channel]tyntecsim.Channel{ // more failures than the defaults, so that fallbacks are plentiful
			events.ChannelSMS: {DeliveryProbability: 0.7, Latency: tyntecsim.LogNormal{Median: 3 * time.Second, P95: 15 * time.Second}, Timeout: 40 * time.Second, DispatchDelay: 200 * time.Millisecond},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	// A quarter of the logins try silent auth first, a quarter a push: the
	// app reports outcomes and tracks the OTPs that follow them.
	if err := sim.RunTraffic(ctx, tyntecsim.Traffic{Rate: 4000, Count: 400, SilentShare: 0.25, PushShare: 0.25,
		OTPScopeURL: hooks.URL, OTPScopeHeaders: auth}); err != nil {
		t.Fatal(err)
	}
	if err := sim.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	// What otpscope can know: every report reached it, but a push whose
	// callbacks were all dropped is unknown to it (and its poller).
	truth := sim.Truth().Reported()

	// What the poller publishes: dropped facts (same timestamp, source poll)
	// and final OTP statuses.
	facts := map[string]bool{}
	var recovered, statuses []events.Message
	for _, o := range truth.OTPs {
		for _, w := range o.Webhooks {
			ds := events.DeliveryStatus{Channel: events.Channel(w.Channel), OTPID: o.ID, ProfileID: o.ProfileID, Status: events.Status(w.Status), Timestamp: w.Timestamp}
			id := events.DeliveryID(&ds)
			facts[id] = true
			if !w.Dropped {
				continue
			}
			for _, a := range o.Attempts {
				if a.Channel == w.Channel && a.ErrorCode != "" && ds.Status.Failed() {
					ds.Error = &events.DeliveryError{Code: a.ErrorCode}
				}
			}
			ds.ReceivedAt, ds.Source, ds.MissedWebhook = truth.At, events.SourcePoll, true
			m, err := events.NewDeliveryMessage(&ds)
			if err != nil {
				t.Fatal(err)
			}
			recovered = append(recovered, m)
		}
		st := events.OTPStatus{OTPID: o.ID, API: "v4", Status: o.Final, ProfileID: o.ProfileID, AttemptCount: o.AttemptCount, ObservedAt: truth.At, Source: events.SourcePoll, SampleRate: 1}
		m, err := events.NewOTPStatusMessage(&st)
		if err != nil {
			t.Fatal(err)
		}
		statuses = append(statuses, m)
	}
	if len(recovered) == 0 {
		t.Fatal("no webhook was dropped: the test would not exercise recovery by polling")
	}
	// Push requests whose settling callback was dropped: the poller reads
	// them by uuid (source poll).
	pushStatuses := map[string]bool{}
	for _, p := range truth.Push {
		settled := false
		for _, cb := range p.Callbacks {
			if cb.Delivered > 0 {
				pushStatuses[p.UUID+"/"+cb.Status] = true
				settled = settled || cb.Status == p.Status
			}
		}
		if settled || p.Status == tyntecsim.PushPending {
			continue
		}
		pushStatuses[p.UUID+"/"+p.Status] = true
		pe := events.PushEvent{UUID: p.UUID, Status: p.Status, CreatedAt: p.Created, UpdatedAt: p.Updated, SecondsToExpire: p.SecondsToExpire,
			CorrelationID: cmp.Or(p.CorrelationID, p.UUID), Source: events.SourcePoll, ReceivedAt: truth.At}
		m, err := events.NewPushMessage(&pe)
		if err != nil {
			t.Fatal(err)
		}
		recovered = append(recovered, m)
	}
	var tracked uint64
	for _, o := range truth.OTPs {
		if o.Track.Reached() {
			tracked++
		}
	}
	if len(truth.Silent) == 0 || len(truth.Push) == 0 || tracked == 0 {
		t.Fatalf("%d silent attempts, %d push requests, %d OTPs after a method: want some of each", len(truth.Silent), len(truth.Push), tracked)
	}
	if err := f.Broker.Publish(ctx, append(recovered, statuses...)...); err != nil {
		t.Fatal(err)
	}
	f.WaitCount(t, "SELECT uniqExact(event_id) FROM delivery_events", uint64(len(facts)))
	f.WaitCount(t, "SELECT uniqExact(event_id) FROM otp_status", uint64(len(statuses)))
	f.WaitCount(t, "SELECT uniqExact(attempt_id) FROM silent_auth_outcomes", uint64(len(truth.Silent)))
	f.WaitCount(t, "SELECT uniqExact(event_id) FROM push_events", uint64(len(pushStatuses)))
	f.WaitCount(t, "SELECT uniqExact(otp_id) FROM journey_links WHERE source = 'track'", tracked)
	// JetStream's duplicate window absorbed the duplicated webhooks; store a
	// third of the facts a second time, as a redelivery after the window (or a
	// sink retry) would, and keep merges from collapsing them.
	if err := f.DB.Conn().Exec(ctx, "SYSTEM STOP MERGES delivery_events"); err != nil {
		t.Fatal(err)
	}
	const cols = "event_id, otp_id, profile_id, channel, status, event_time, received_at, error_code, error_message, source, timestamp_from_receipt, unknown_channel, unknown_status, missed_webhook, stream_seq"
	if err := f.DB.Conn().Exec(ctx, "INSERT INTO delivery_events ("+cols+") SELECT "+cols+" FROM delivery_events WHERE cityHash64(event_id) % 3 = 0"); err != nil {
		t.Fatal(err)
	}
	if all, distinct := f.Count(t, "SELECT count() FROM delivery_events"), f.Count(t, "SELECT uniqExact(event_id) FROM delivery_events"); all <= distinct {
		t.Fatalf("%d rows for %d facts: want duplicates stored", all, distinct)
	}

	ar := chi.NewRouter()
	reporter.NewAPI(f.DB, reporter.AlertRules{}, brokertest.Logger(t)).Mount(ar)
	reporter.NewReports(reporter.ReportsConfig{}, f.DB, f.Broker, brokertest.Logger(t), nil).MountFiring(ar)
	api := httptest.NewServer(ar)
	t.Cleanup(api.Close)
	return &traffic{f: f, truth: truth, api: api}
}

func (tr *traffic) get(t *testing.T, path string, q url.Values, into any) *http.Response {
	t.Helper()
	u := tr.api.URL + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if into != nil {
		if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
			t.Fatalf("GET %s: decode: %v", u, err)
		}
	}
	return resp
}

func ms(t time.Time) int64 { return t.UnixMilli() }

// quantileExact is ClickHouse's quantileExact: the element at floor(level·n) of the sorted sample.
func quantileExact(xs []int64, level float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return float64(s[min(len(s)-1, int(level*float64(len(s))))])
}

type wantChannel struct {
	attempts, delivered, failed, pending uint64
	undeliverable, timedOut              uint64
	errors                               map[string]uint64
	latency                              []int64
	polled, verified                     uint64
}

// expect computes the figures from the ground truth for journeys and attempts
// starting in [from, to). Journeys are logins joined by correlation id: a
// silent auth or push and the OTP after it are one, whose path starts with
// the method; an attempt's error code is the OTP's, or for a method the
// reason it failed (not_verified, the silent-auth error, denied, expired).
func expect(truth tyntecsim.Truth, from, to time.Time) (map[string]*wantChannel, store.FallbackStats, []int64) {
	in := func(t time.Time) bool {
		t = t.Truncate(time.Millisecond)
		return !t.Before(from) && t.Before(to)
	}
	final := map[string]events.OTPState{}
	for _, o := range truth.OTPs {
		final[o.ID] = o.Final
	}
	chs := map[string]*wantChannel{}
	fb := store.FallbackStats{}
	paths := map[string]*store.PathStats{}
	conv := map[string]*[2]uint64{} // per delivering channel: polled, verified
	var ttd []int64
	for _, j := range truth.Journeys() {
		for _, a := range j.Attempts {
			if !in(a.Start) {
				continue
			}
			c := chs[a.Channel]
			if c == nil {
				c = &wantChannel{errors: map[string]uint64{}}
				chs[a.Channel] = c
			}
			c.attempts++
			switch a.Outcome {
			case tyntecsim.OutcomeDelivered:
				c.delivered++
				c.latency = append(c.latency, ms(a.End)-ms(a.Start))
			case tyntecsim.OutcomeFailed:
				c.failed++
				code := a.ErrorCode
				if a.Channel == tyntecsim.MethodSilent || a.Channel == tyntecsim.MethodPush {
					code = a.Reason
				}
				c.errors[code]++
				if a.Reason == string(events.StatusTimedOut) || a.Reason == tyntecsim.PushExpired {
					c.timedOut++
				} else {
					c.undeliverable++
				}
			default:
				c.pending++
			}
		}
		if len(j.Attempts) == 0 || !in(j.Attempts[0].Start) {
			continue
		}
		fb.OTPs++
		// The path: distinct channels in order of first attempt; a resend
		// on the same channel is not a fallback.
		path := j.Path()
		fb.Resends += uint64(len(j.Attempts) - len(strings.Split(path, ">")))
		if j.Fallback() {
			fb.FallbackOTPs++
		}
		p := paths[path]
		if p == nil {
			p = &store.PathStats{Path: path}
			paths[path] = p
		}
		p.OTPs++
		switch j.Outcome() {
		case tyntecsim.JourneyDeliveredPrimary:
			fb.Outcomes.DeliveredPrimary++
		case tyntecsim.JourneyDeliveredFallback:
			fb.Outcomes.DeliveredFallback++
		case tyntecsim.JourneyFailed:
			fb.Outcomes.Failed++
			p.Failed++
		default:
			fb.Outcomes.Pending++
			p.Pending++
		}
		var first *tyntecsim.JourneyAttempt
		for i, a := range j.Attempts {
			if a.Outcome == tyntecsim.OutcomeDelivered && (first == nil || a.End.Before(first.End)) {
				first = &j.Attempts[i]
			}
		}
		if first == nil {
			continue
		}
		p.Delivered++
		ttd = append(ttd, ms(first.End)-ms(j.Attempts[0].Start))
		// Verification: the final status of the OTP that delivered (methods have none).
		if st, ok := final[first.ID]; ok && st.Final() {
			if conv[first.Channel] == nil {
				conv[first.Channel] = &[2]uint64{}
			}
			conv[first.Channel][0]++
			if st == events.OTPVerified {
				conv[first.Channel][1]++
			}
		}
	}
	// A journey's verification counts for its delivering channel, which the
	// API lists only when one of its attempts started in the window: attach
	// after every journey is seen, so the order of journeys does not matter.
	for ch, pv := range conv {
		if c := chs[ch]; c != nil {
			c.polled, c.verified = pv[0], pv[1]
		}
	}
	for _, p := range paths {
		if settled := p.Delivered + p.Failed; settled > 0 {
			r := float64(p.Delivered) / float64(settled)
			p.DeliveryRate = &r
		}
		fb.Paths = append(fb.Paths, *p)
	}
	sort.Slice(fb.Paths, func(i, j int) bool {
		if fb.Paths[i].OTPs != fb.Paths[j].OTPs {
			return fb.Paths[i].OTPs > fb.Paths[j].OTPs
		}
		return fb.Paths[i].Path < fb.Paths[j].Path
	})
	return chs, fb, ttd
}

func sameRate(got *float64, num, den uint64) bool {
	if den == 0 {
		return got == nil
	}
	return got != nil && *got == float64(num)/float64(den)
}

// samePercentiles allows 1 ms for the rounding of stored timestamps.
func samePercentiles(got *store.Percentiles, xs []int64) bool {
	if len(xs) == 0 {
		return got == nil
	}
	return got != nil && math.Abs(got.P50-quantileExact(xs, 0.5)) <= 1 && math.Abs(got.P95-quantileExact(xs, 0.95)) <= 1
}

// TestAnalytics runs on one simulated traffic: building it is the slow part.
func TestAnalytics(t *testing.T) {
	tr := newTraffic(t)
	t.Run("equals ground truth", func(t *testing.T) { testEqualsGroundTruth(t, tr) })
	// Before the subtests that add facts of their own: its windows end
	// after the traffic, and the ground truth knows none of those.
	t.Run("slo", func(t *testing.T) { testSLO(t, tr) })
	t.Run("journey with a recovered webhook", func(t *testing.T) { testJourney(t, tr) })
	t.Run("problems", func(t *testing.T) { testProblems(t, tr) })
	t.Run("dashboard panels", func(t *testing.T) { testDashboards(t, tr) })
	t.Run("reports and alerts", func(t *testing.T) { testReports(t, tr) })
	t.Run("report download", func(t *testing.T) { testReportDownload(t, tr) })
}

func testEqualsGroundTruth(t *testing.T, tr *traffic) {
	t.Logf("%d OTPs simulated", len(tr.truth.OTPs))
	windows := []struct{ from, to time.Time }{
		{simStart.Add(-time.Hour), tr.truth.At.Add(time.Hour)}, // everything
		{simStart.Add(30 * time.Second), simStart.Add(90 * time.Second)},
		{simStart.Add(-time.Hour), simStart.Add(-time.Minute)}, // nothing
	}
	var fallbacks, dropped uint64
	for _, o := range tr.truth.OTPs {
		if len(o.Attempts) > 1 {
			fallbacks++
		}
		for _, w := range o.Webhooks {
			if w.Dropped {
				dropped++
			}
		}
	}
	t.Logf("%d fallbacks, %d dropped webhooks", fallbacks, dropped)
	rows, stored := tr.f.Count(t, "SELECT count() FROM delivery_events"), tr.f.Count(t, "SELECT uniqExact(event_id) FROM delivery_events")
	t.Logf("%d delivery rows stored for %d facts", rows, stored)
	if fallbacks == 0 {
		t.Fatal("no fallback in the traffic")
	}
	for _, win := range windows {
		name := fmt.Sprintf("[%s,%s)", win.from.Format(time.TimeOnly), win.to.Format(time.TimeOnly))
		wantCh, wantFB, wantTTD := expect(tr.truth, win.from, win.to)
		q := url.Values{"from": {win.from.Format(time.RFC3339Nano)}, "to": {win.to.Format(time.RFC3339Nano)}}

		var chs reporter.ChannelsResponse
		if resp := tr.get(t, "/api/v1/channels", q, &chs); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s /channels: %s", name, resp.Status)
		}
		if !chs.From.Equal(win.from) || !chs.To.Equal(win.to) {
			t.Errorf("%s /channels window = %s..%s", name, chs.From, chs.To)
		}
		if len(chs.Channels) != len(wantCh) {
			t.Errorf("%s /channels has %d channels; want %d", name, len(chs.Channels), len(wantCh))
		}
		for _, got := range chs.Channels {
			want := wantCh[got.Channel]
			if want == nil {
				t.Errorf("%s channel %s not in the truth", name, got.Channel)
				continue
			}
			if got.Attempts != want.attempts || got.Delivered != want.delivered || got.Failed != want.failed || got.Pending != want.pending ||
				got.Undeliverable != want.undeliverable || got.TimedOut != want.timedOut {
				t.Errorf("%s %s = %d/%d/%d/%d/%d/%d attempts/delivered/failed/undeliverable/timed_out/pending; want %d/%d/%d/%d/%d/%d", name, got.Channel,
					got.Attempts, got.Delivered, got.Failed, got.Undeliverable, got.TimedOut, got.Pending,
					want.attempts, want.delivered, want.failed, want.undeliverable, want.timedOut, want.pending)
			}
			if !sameRate(got.DeliveryRate, want.delivered, want.delivered+want.failed) {
				t.Errorf("%s %s delivery rate = %v; want %d/%d", name, got.Channel, got.DeliveryRate, want.delivered, want.delivered+want.failed)
			}
			if !samePercentiles(got.LatencyMS, want.latency) {
				t.Errorf("%s %s latency = %+v; want quantiles of %d samples", name, got.Channel, got.LatencyMS, len(want.latency))
			}
			gotErrs := map[string]uint64{}
			for _, e := range got.Errors {
				gotErrs[e.Code] = e.Count
			}
			if fmt.Sprint(gotErrs) != fmt.Sprint(want.errors) {
				t.Errorf("%s %s errors = %v; want %v", name, got.Channel, gotErrs, want.errors)
			}
			if want.polled == 0 {
				if got.Verification != nil {
					t.Errorf("%s %s verification = %+v; want none", name, got.Channel, got.Verification)
				}
			} else if v := got.Verification; v == nil || v.Polled != want.polled || v.Verified != want.verified || !sameRate(v.Rate, want.verified, want.polled) {
				t.Errorf("%s %s verification = %+v; want %d of %d", name, got.Channel, v, want.verified, want.polled)
			}
		}

		t.Logf("%s: %d journeys, %d fallbacks", name, wantFB.OTPs, wantFB.FallbackOTPs)
		var fb reporter.FallbackResponse
		if resp := tr.get(t, "/api/v1/fallback", q, &fb); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s /fallback: %s", name, resp.Status)
		}
		if fb.OTPs != wantFB.OTPs || fb.FallbackOTPs != wantFB.FallbackOTPs || fb.Resends != wantFB.Resends || fb.Outcomes != wantFB.Outcomes || !sameRate(fb.FallbackRate, wantFB.FallbackOTPs, wantFB.OTPs) {
			t.Errorf("%s /fallback = %d OTPs, %d fallback (%v), %d resends, %+v; want %d, %d, %d, %+v", name, fb.OTPs, fb.FallbackOTPs, fb.FallbackRate, fb.Resends, fb.Outcomes, wantFB.OTPs, wantFB.FallbackOTPs, wantFB.Resends, wantFB.Outcomes)
		}
		// Every attempt of the traffic has settled: the answers are final.
		var wantPending uint64
		for _, c := range wantCh {
			wantPending += c.pending
		}
		if chs.Completeness.Pending != wantPending || fb.Completeness.Pending != wantPending || chs.Completeness.Final != (wantPending == 0) {
			t.Errorf("%s completeness = %+v, %+v; want %d pending", name, chs.Completeness, fb.Completeness, wantPending)
		}
		if fmt.Sprint(fb.Paths) != fmt.Sprint(wantFB.Paths) && !(len(fb.Paths) == 0 && len(wantFB.Paths) == 0) {
			t.Errorf("%s paths = %+v; want %+v", name, fb.Paths, wantFB.Paths)
		}
		if !samePercentiles(fb.TimeToDeliverMS, wantTTD) {
			t.Errorf("%s time to deliver = %+v; want quantiles of %d samples", name, fb.TimeToDeliverMS, len(wantTTD))
		}
	}
}

func testJourney(t *testing.T, tr *traffic) {
	var pick *tyntecsim.OTPTruth
	for i, o := range tr.truth.OTPs {
		dropped := slices.ContainsFunc(o.Webhooks, func(w tyntecsim.Webhook) bool { return w.Dropped })
		if len(o.Attempts) > 1 && dropped {
			pick = &tr.truth.OTPs[i]
			break
		}
	}
	if pick == nil {
		t.Skip("no fallback journey with a dropped webhook in this seed")
	}
	var j store.Journey
	if resp := tr.get(t, "/api/v1/otps/"+pick.ID, nil, &j); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET otp: %s", resp.Status)
	}
	if j.Path != pick.Path() || len(j.Attempts) != len(pick.Attempts) || len(j.Events) != len(pick.Webhooks) {
		t.Errorf("journey = path %s, %d attempts, %d events; want %s, %d, %d", j.Path, len(j.Attempts), len(j.Events), pick.Path(), len(pick.Attempts), len(pick.Webhooks))
	}
	var sources []string
	for i, e := range j.Events {
		sources = append(sources, e.Source)
		if i > 0 && e.Time.Before(j.Events[i-1].Time) {
			t.Errorf("event %d at %s is before event %d", i, e.Time, i-1)
		}
	}
	if !slices.Contains(sources, events.SourcePoll) || !slices.Contains(sources, events.SourceWebhook) {
		t.Errorf("event sources = %v; want webhook and poll", sources)
	}
	if j.PolledStatus == nil || j.PolledStatus.Status != string(pick.Final) {
		t.Errorf("polled status = %+v; want %s", j.PolledStatus, pick.Final)
	}
}

func testProblems(t *testing.T, tr *traffic) {
	for _, c := range []struct {
		path   string
		q      url.Values
		status int
		field  string
	}{
		{"/api/v1/channels", url.Values{"from": {"yesterday"}}, 400, "from"},
		{"/api/v1/fallback", url.Values{"to": {"2026-13-01T00:00:00Z"}}, 400, "to"},
		{"/api/v1/channels", url.Values{"from": {"2026-06-02T00:00:00Z"}, "to": {"2026-06-01T00:00:00Z"}}, 400, "from"},
		{"/api/v1/channels", url.Values{"from": {"0001-01-01T00:00:00Z"}, "to": {"9999-12-31T23:59:59Z"}}, 400, "to"},
		{"/api/v1/channels", url.Values{"from": {"0001-01-01T00:00:00Z"}, "to": {"2026-01-01T00:00:00Z"}}, 400, "from"},
		{"/api/v1/channels", url.Values{"to": {"9999-12-31T23:59:59Z"}}, 400, "to"}, // from derives from it
		{"/api/v1/fallback", url.Values{"from": {"2026-01-01T00:00:00Z"}, "to": {"9999-12-31T23:59:59Z"}}, 400, "to"},
		{"/api/v1/channels", url.Values{"max_lag": {"a while"}}, 400, "max_lag"},
		{"/api/v1/fallback", url.Values{"max_lag": {"-1s"}}, 400, "max_lag"},
		{"/api/v1/timeseries", url.Values{"max_lag": {"25h"}}, 400, "max_lag"},
		{"/api/v1/events", url.Values{"limit": {"many"}}, 400, "limit"},
		{"/api/v1/events", url.Values{"limit": {"501"}}, 400, "limit"},
		{"/api/v1/alerts", url.Values{"limit": {"1001"}}, 400, "limit"},
		{"/api/v1/alerts", url.Values{"state": {"pending"}}, 400, "state"},
		{"/api/v1/alerts", url.Values{"state": {"FIRING"}}, 200, ""}, // as channel=sms is SMS
		{"/api/v1/otps/not-a-uuid", nil, 400, "otpId"},
		{"/api/v1/otps/00000000-0000-4000-8000-000000000000", nil, 404, ""},
		// A parameter the endpoint does not read would answer for
		// something else, silently: for every profile, UTC's days.
		{"/api/v1/channels", url.Values{"profle": {"p"}}, 400, "profle"},
		{"/api/v1/alerts", url.Values{"profile": {"p"}}, 400, "profile"},
		{"/api/v1/channels", url.Values{"tz": {"Europe/Berlin"}, "since": {"1h"}}, 400, "tz"},
		{"/api/v1/events", url.Values{"max_lag": {"1m"}}, 400, "max_lag"},
		{"/api/v1/channels", url.Values{"_": {"1764975600000"}}, 200, ""}, // a cache buster
		// A parameter given twice would count once, silently.
		{"/api/v1/channels", url.Values{"since": {"1h", "2h"}}, 400, "since"},
		{"/api/v1/timeseries", url.Values{"step": {"5m", "1m"}}, 400, "step"},
		// Steps past store.MaxStep: one overflowed the buckets' count (a
		// panic, 500), seconds past int64's nanoseconds wrapped to 1.29 s.
		{"/api/v1/timeseries", url.Values{"from": {"2000-01-01T00:00:00Z"}, "step": {"2083333h"}}, 400, "step"},
		{"/api/v1/timeseries", url.Values{"step": {"18446744075"}}, 400, "step"},
		{"/api/v1/timeseries", url.Values{"step": {"9223372037"}}, 400, "step"},
		{"/api/v1/timeseries", url.Values{"step": {"99999999999999999999"}}, 400, "step"},
		{"/api/v1/timeseries", url.Values{"step": {"-99999999999999999999"}}, 400, "step"},
		{"/api/v1/timeseries", url.Values{"step": {"500ms"}}, 400, "step"},
		{"/api/v1/timeseries", url.Values{"tz": {"Mars/Olympus_Mons"}}, 400, "tz"},
		{"/api/v1/timeseries", url.Values{"tz": {"Local"}}, 400, "tz"}, // the server's machine's zone
		{"/api/v1/timeseries", url.Values{"tz": {"+02:00"}}, 400, "tz"},
		{"/api/v1/timeseries", url.Values{"tz": {"Europe/Berlin"}, "step": {"24h"}}, 200, ""},
		{"/api/v1/timeseries", url.Values{"step": {"1.5d"}}, 400, "step"},
		{"/api/v1/timeseries", url.Values{"step": {"99999999999d"}}, 400, "step"},
		{"/api/v1/timeseries", url.Values{"step": {"0d"}}, 400, "step"},
		// /events' filters that could never match are mistakes.
		{"/api/v1/events", url.Values{"otp": {"not-a-uuid"}}, 400, "otp"},
		{"/api/v1/events", url.Values{"source": {"bogus"}}, 400, "source"},
		{"/api/v1/events", url.Values{"status": {"FOO BAR"}}, 400, "status"},
		{"/api/v1/events", url.Values{"otp": {"B8E2F0A4-6C1D-4E9B-A7F3-2D5C8E1B0A96"}, "status": {"delivered"}, "source": {"poll"}}, 200, ""},
	} {
		var p problem.Details
		resp := tr.get(t, c.path, c.q, &p)
		if c.status == http.StatusOK {
			if resp.StatusCode != c.status {
				t.Errorf("GET %s?%s = %s; want 200", c.path, c.q.Encode(), resp.Status)
			}
			continue
		}
		if resp.StatusCode != c.status || p.Status != c.status || p.Field != c.field || !strings.HasPrefix(resp.Header.Get("Content-Type"), problem.ContentType) {
			t.Errorf("GET %s?%s = %s %s %+v; want %d problem naming %q", c.path, c.q.Encode(), resp.Status, resp.Header.Get("Content-Type"), p, c.status, c.field)
		}
	}
	// Days as since and step: 7d is 168 hours, and 1d a day, on a zone's
	// clock from local midnight as 24h is.
	var byDays struct {
		From, To time.Time
		Start    []time.Time `json:"start"`
		Step     float64     `json:"step_seconds"`
	}
	tr.get(t, "/api/v1/timeseries", url.Values{"since": {"7d"}, "step": {"1d"}, "tz": {"Europe/Berlin"}}, &byDays)
	if byDays.To.Sub(byDays.From) != 168*time.Hour || byDays.Step != 86400 || len(byDays.Start) < 7 {
		t.Errorf("since=7d&step=1d: [%s, %s) by %v s in %d buckets; want 168 h by days", byDays.From, byDays.To, byDays.Step, len(byDays.Start))
	}
	for _, b := range byDays.Start[min(1, len(byDays.Start)):] {
		if h, m, _ := b.Clock(); h != 0 || m != 0 {
			t.Errorf("since=7d&step=1d: a bucket starts at %s; want Berlin's midnight", b)
		}
	}
	// A query that does not parse: Go's URL.Query would drop the pair, and
	// a bad cursor read page one.
	resp, err := http.Get(tr.api.URL + "/api/v1/events?since=1h&cursor=%%%")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("GET /api/v1/events?cursor=%%%%%% = %s; want 400", resp.Status)
	}
}

// max_lag lets an answer between runs of the rollup job read the hours the
// job left as it left them, and as_of says since when facts may be missing;
// without it the answer is exact and as_of is the time of the read.
func TestMaxLag(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	day := time.Now().UTC().Add(-48 * time.Hour).Truncate(24 * time.Hour)
	deliveries := func(first, n int) []store.DeliveryRow {
		var rows []store.DeliveryRow
		for i := first; i < first+n; i++ {
			for k, st := range []events.Status{events.StatusDispatched, events.StatusDelivered} {
				ds := events.DeliveryStatus{Channel: events.ChannelSMS, Status: st, Source: events.SourceWebhook,
					OTPID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i), ProfileID: "adbe6521-f5bd-4295-9fd9-776debdf7dc2",
					Timestamp: day.Add(time.Duration(i)*time.Minute + time.Duration(k)*2*time.Second), ReceivedAt: time.Now()}
				rows = append(rows, store.DeliveryRow{DeliveryStatus: ds, EventID: events.DeliveryID(&ds)})
			}
		}
		return rows
	}
	if err := f.DB.Insert(ctx, &store.Batch{Deliveries: deliveries(0, 30)}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // past a single server's slack
	jobAt := time.Now()
	if _, err := f.DB.RefreshRollups(ctx); err != nil {
		t.Fatal(err)
	}
	ar := chi.NewRouter()
	reporter.NewAPI(f.DB, reporter.AlertRules{}, brokertest.Logger(t)).Mount(ar)
	api := httptest.NewServer(ar)
	t.Cleanup(api.Close)
	tr := &traffic{f: f, api: api}
	window := url.Values{"from": {day.Format(time.RFC3339)}, "to": {day.Add(24 * time.Hour).Format(time.RFC3339)}}
	read := func(maxLag string) (chs reporter.ChannelsResponse, fb reporter.FallbackResponse, ts reporter.TimeseriesResponse) {
		t.Helper()
		q := url.Values{"max_lag": {maxLag}}
		for k, v := range window {
			q[k] = v
		}
		for path, into := range map[string]any{"/api/v1/channels": &chs, "/api/v1/fallback": &fb, "/api/v1/timeseries": &ts} {
			if resp := tr.get(t, path, q, into); resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s?%s: %s", path, q.Encode(), resp.Status)
			}
		}
		return chs, fb, ts
	}
	attempts := func(chs reporter.ChannelsResponse, fb reporter.FallbackResponse, ts reporter.TimeseriesResponse) (a, o, series uint64) {
		for _, c := range chs.Channels {
			a += c.Attempts
		}
		for _, c := range ts.Channels {
			for _, n := range c.Attempts {
				series += n
			}
		}
		return a, fb.OTPs, series
	}

	inserted := time.Now()
	if err := f.DB.Insert(ctx, &store.Batch{Deliveries: deliveries(30, 5)}); err != nil {
		t.Fatal(err)
	}
	readAt := time.Now()
	chs, fb, ts := read("0s")
	if a, o, series := attempts(chs, fb, ts); a != 35 || o != 35 || series != 35 {
		t.Errorf("exact answers count %d attempts, %d OTPs, %d in the series; want the 35 stored", a, o, series)
	}
	for path, asOf := range map[string]time.Time{"channels": chs.AsOf, "fallback": fb.AsOf, "timeseries": ts.AsOf} {
		if asOf.Before(readAt.Truncate(time.Millisecond)) || asOf.After(time.Now()) {
			t.Errorf("exact /%s as_of = %v; want the time of the read (after %v)", path, asOf, readAt)
		}
	}
	// /events and /resends (exact) read the stored facts as they are:
	// their as_of is the time of the read too.
	for _, path := range []string{"/api/v1/events", "/api/v1/resends"} {
		readAt := time.Now()
		var got struct {
			AsOf time.Time `json:"as_of"`
		}
		if resp := tr.get(t, path, window, &got); resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", path, resp.Status)
		}
		if got.AsOf.Before(readAt.Truncate(time.Millisecond)) || got.AsOf.After(time.Now()) {
			t.Errorf("%s as_of = %v; want the time of the read (after %v)", path, got.AsOf, readAt)
		}
	}
	chs, fb, ts = read("1h")
	if a, o, series := attempts(chs, fb, ts); a != 30 || o != 30 || series != 30 {
		t.Errorf("answers with max_lag=1h count %d attempts, %d OTPs, %d in the series; want the 30 the job rolled up", a, o, series)
	}
	// /resends with max_lag reads the outcomes the job kept: its as_of is
	// the job's run too.
	var rs reporter.ResendsResponse
	q := url.Values{"max_lag": {"1h"}}
	for k, v := range window {
		q[k] = v
	}
	if resp := tr.get(t, "/api/v1/resends", q, &rs); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/resends?%s: %s", q.Encode(), resp.Status)
	}
	for path, asOf := range map[string]time.Time{"channels": chs.AsOf, "fallback": fb.AsOf, "timeseries": ts.AsOf, "resends": rs.AsOf} {
		if asOf.Before(jobAt.Add(-time.Second).Truncate(time.Millisecond)) || !asOf.Before(inserted) {
			t.Errorf("/%s with max_lag=1h: as_of = %v; want between the job's start less the slack (%v) and the new facts (%v)", path, asOf, jobAt.Add(-time.Second), inserted)
		}
	}
}

func TestParseWindowUpperCasesTheChannel(t *testing.T) {
	for _, ch := range []string{"sms", " sms", "sms\n"} {
		w, err := reporter.ParseWindow(url.Values{"channel": {ch}}, time.Now())
		if err != nil || w.Channel != "SMS" {
			t.Errorf("ParseWindow(channel=%q) = %q, %v; want SMS", ch, w.Channel, err)
		}
	}
}

// A profile id in upper case names the stored (canonical) one; an end
// between two milliseconds keeps from inclusive and to exclusive of the
// facts, stored to the millisecond: both move up to the next one.
func TestParseWindowMatchesWhatIsStored(t *testing.T) {
	w, err := reporter.ParseWindow(url.Values{"profile": {"BBBBBBBB-0000-4000-8000-00000000000A"},
		"from": {"2026-12-02T12:00:09.9785Z"}, "to": {"2026-12-02T12:00:10.0001Z"}}, time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC))
	if err != nil || w.Profile != "bbbbbbbb-0000-4000-8000-00000000000a" {
		t.Errorf("ParseWindow(profile in upper case) = %q, %v; want it canonical", w.Profile, err)
	}
	if want := time.Date(2026, 12, 2, 12, 0, 9, 979e6, time.UTC); !w.From.Equal(want) {
		t.Errorf("from = %s; want %s (an attempt at .978 is before it)", w.From.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
	}
	if want := time.Date(2026, 12, 2, 12, 0, 10, 1e6, time.UTC); !w.To.Equal(want) {
		t.Errorf("to = %s; want %s (an attempt at 10.000 is before it)", w.To.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
	}
	if w, _ := reporter.ParseWindow(url.Values{"profile": {"default"}}, time.Now()); w.Profile != "default" {
		t.Errorf("ParseWindow(profile=default) = %q; want it as given", w.Profile)
	}
}

// A channel no channel could be named (a typo) is a 400, not a filter that
// quietly matches nothing; an unknown but possible name passes (tyntec may
// add channels, stored as they come).
func TestParseWindowRefusesAChannelThatCannotBe(t *testing.T) {
	for ch, ok := range map[string]bool{"whatsapp": true, "RCS": true, "FAX_2": true, "s ms": false, "sms,viber": false, "*": false, "tyntec.2fa.>": false} {
		_, err := reporter.ParseWindow(url.Values{"channel": {ch}}, time.Now())
		if ok != (err == nil) {
			t.Errorf("ParseWindow(channel=%q): %v; want ok=%v", ch, err, ok)
		}
	}
}

// An offset's + a client did not encode arrives as a space: the refusal
// says so, since the time looks right as typed.
func TestParseWindowSaysToEncodeThePlus(t *testing.T) {
	_, err := reporter.ParseWindow(url.Values{"from": {"2026-12-04T15:00:00 05:30"}}, time.Now())
	if err == nil || !strings.Contains(err.Error(), "%2B") {
		t.Errorf("ParseWindow(from with an unencoded +) = %v; want a hint to encode it", err)
	}
	w, err := reporter.ParseWindow(url.Values{"from": {"2026-12-04T15:00:00+05:30"}, "to": {"2026-12-04T10:00:00Z"}}, time.Now())
	if err != nil || !w.From.Equal(time.Date(2026, 12, 4, 9, 30, 0, 0, time.UTC)) {
		t.Errorf("ParseWindow(from +05:30) = %v, %v; want 09:30Z", w.From, err)
	}
}

// A window's ends may take any of RFC 3339's spellings (t or a space for
// T, z for Z), as webhooks' timestamps do; a time without its zone is
// refused, since the caller's zone cannot be guessed.
func TestParseWindowReadsRFC3339Spellings(t *testing.T) {
	w, err := reporter.ParseWindow(url.Values{"from": {"2026-12-06t10:00:00z"}, "to": {"2026-12-06 12:30:00+01:00"}}, time.Now())
	if err != nil || !w.From.Equal(time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)) || !w.To.Equal(time.Date(2026, 12, 6, 11, 30, 0, 0, time.UTC)) {
		t.Errorf("ParseWindow(lower-case t and z, a space) = %v – %v, %v; want 10:00Z – 11:30Z", w.From, w.To, err)
	}
	if _, err := reporter.ParseWindow(url.Values{"from": {"2026-12-06T10:00:00"}}, time.Now()); err == nil || !strings.Contains(err.Error(), "not an RFC 3339 time") {
		t.Errorf("ParseWindow(a time without its zone) = %v; want it refused", err)
	}
}

func TestParseWindowSince(t *testing.T) {
	now := time.Date(2026, 6, 2, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		q        url.Values
		from, to time.Time
		field    string // of the error, "" when none
	}{
		{url.Values{"since": {"24h"}}, now.Add(-24 * time.Hour), now, ""},
		{url.Values{"since": {"90m"}}, now.Add(-90 * time.Minute), now, ""},
		{url.Values{"since": {"24h"}, "from": {"2026-06-01T00:00:00Z"}}, time.Time{}, time.Time{}, "since"},
		{url.Values{"since": {"24h"}, "to": {"2026-06-01T00:00:00Z"}}, time.Time{}, time.Time{}, "since"},
		{url.Values{"since": {"yesterday"}}, time.Time{}, time.Time{}, "since"},
		{url.Values{"since": {"-1h"}}, time.Time{}, time.Time{}, "since"},
		// Whole days, 24 h each, as the retention flags take them.
		{url.Values{"since": {"7d"}}, now.Add(-7 * 24 * time.Hour), now, ""},
		{url.Values{"since": {"90d"}}, now.Add(-90 * 24 * time.Hour), now, ""},
		{url.Values{"since": {"0d"}}, time.Time{}, time.Time{}, "since"},
		{url.Values{"since": {"-7d"}}, time.Time{}, time.Time{}, "since"},
		{url.Values{"since": {"1.5d"}}, time.Time{}, time.Time{}, "since"},
		{url.Values{"since": {"d"}}, time.Time{}, time.Time{}, "since"},
		{url.Values{"since": {"99999999999d"}}, time.Time{}, time.Time{}, "since"},
		{url.Values{"since": {"20000d"}}, time.Time{}, time.Time{}, "from"}, // before 2000
	}
	for _, tt := range tests {
		w, err := reporter.ParseWindow(tt.q, now)
		if tt.field != "" {
			if err == nil || !strings.HasPrefix(err.Error(), tt.field+":") {
				t.Errorf("ParseWindow(%s) = %v; want an error naming %s", tt.q.Encode(), err, tt.field)
			}
			continue
		}
		if err != nil || !w.From.Equal(tt.from) || !w.To.Equal(tt.to) {
			t.Errorf("ParseWindow(%s) = [%s, %s), %v; want [%s, %s)", tt.q.Encode(), w.From, w.To, err, tt.from, tt.to)
		}
	}
}

func TestReportCLIWindow(t *testing.T) {
	now := time.Date(2026, 6, 2, 12, 0, 0, 0, time.UTC)
	cfg := reporter.ReportCLIConfig{Since: "6h", Channel: "viber", Format: "table"}
	w, err := cfg.Window(now)
	if err != nil || !w.From.Equal(now.Add(-6*time.Hour)) || w.Channel != "VIBER" {
		t.Errorf("report --since 6h --channel viber = [%s, %s) %q, %v; want the last 6 h of VIBER", w.From, w.To, w.Channel, err)
	}
	cfg = reporter.ReportCLIConfig{Since: "7d", Format: "table"}
	if w, err = cfg.Window(now); err != nil || !w.From.Equal(now.AddDate(0, 0, -7)) {
		t.Errorf("report --since 7d = [%s, %s), %v; want the last 7 days", w.From, w.To, err)
	}
}

// The report's flags are checked before anything is read: a DSN no
// ClickHouse could answer (clickhouse-go would try mysql://… natively),
// a threshold rate beyond 1.
func TestReportCLIValidate(t *testing.T) {
	for _, tt := range []struct {
		cfg reporter.ReportCLIConfig
		ok  bool
	}{
		{reporter.ReportCLIConfig{Format: "table", DSN: "clickhouse://u:p@ch:9000/otpscope"}, true},
		{reporter.ReportCLIConfig{Format: "table", DSN: "http://ch:8123"}, true},
		{reporter.ReportCLIConfig{Format: "table", DSN: "mysql://x"}, false},
		{reporter.ReportCLIConfig{Format: "table", Thresholds: reporter.Thresholds{MinDeliveryRate: 2}}, false},
		{reporter.ReportCLIConfig{Format: "table", Thresholds: reporter.Thresholds{MaxFallbackRate: -0.1}}, false},
	} {
		if err := tt.cfg.Validate(); (err == nil) != tt.ok {
			t.Errorf("Validate(%+v) = %v; want ok=%v", tt.cfg, err, tt.ok)
		}
	}
}
