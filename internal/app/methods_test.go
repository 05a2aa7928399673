package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/otpscope/otpscope/internal/app"
	"github.com/otpscope/otpscope/internal/broker"
	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/ingest"
	"github.com/otpscope/otpscope/internal/reporter"
	"github.com/otpscope/otpscope/internal/store"
	"github.com/otpscope/otpscope/internal/tyntecsim"
	"github.com/otpscope/otpscope/internal/webtest"
)

const methodsToken = "methods-e2e-token-0123456789"

// TestMethodsEndToEnd is issue 14's test: the all-in-one with --simulate,
// whose app tries silent auth or a push before most logins and falls back
// to an OTP when they fail, with 20% of tyntec's webhooks and of the push
// callbacks dropped (the poller recovers them: OTP facts through v1, push
// statuses by uuid). /api/v1/channels must equal the simulator's ground
// truth (less the attempts the poller's known limit hides: knowable) per
// method and channel, /api/v1/fallback per path (journeys keyed
// by correlationId: SILENT>SMS, PUSH>SMS>VOICE …). Then every input that
// reached otpscope is sent again, duplicated and shuffled — webhooks, push
// callbacks (a pending after its settled), silent-auth outcomes in arrays,
// /otps/track registrations — and the figures must not move.
func TestMethodsEndToEnd(t *testing.T) {
	const logins = 50
	cfg := lossyConfig(t, logins)
	cfg.Ingest.Tokens = []string{methodsToken}
	cfg.Simulate.DropWebhooks = 0.2
	cfg.Simulate.SharedVersions = true // lost OTP webhooks are recovered through v1
	cfg.Simulate.SilentShare, cfg.Simulate.PushShare = 0.35, 0.35
	cfg.Simulate.SilentVerified, cfg.Simulate.SilentError = 0.5, 0.2
	cfg.Simulate.PushApproved, cfg.Simulate.PushDenied = 0.4, 0.3 // the rest expire
	cfg.Simulate.SilentLatency, cfg.Simulate.PushLatency = 20*time.Millisecond, 100*time.Millisecond
	cfg.Simulate.PushExpiry = 2 * time.Second
	cfg.Poller.Push.Grace, cfg.Poller.Push.Recheck = time.Second, time.Second

	a := serve(t, cfg)
	sim := a.Simulator()
	var truth tyntecsim.Truth
	brokertest.WaitFor(t, 90*time.Second, "every login to settle", func() bool {
		truth = sim.Truth()
		return truth.LoginsSettled(logins)
	})
	if len(truth.Silent) == 0 || len(truth.Push) == 0 {
		t.Fatalf("%d silent attempts, %d push requests: want both", len(truth.Silent), len(truth.Push))
	}
	base, admin := "http://"+a.Addr(), "http://"+a.AdminAddr()
	from := truth.OTPs[0].Created.Add(-time.Hour)
	for _, s := range truth.Silent {
		from = minTime(from, s.Started.Add(-time.Hour))
	}
	for _, p := range truth.Push {
		from = minTime(from, p.Created.Add(-time.Hour))
	}
	window := "?from=" + from.UTC().Format(time.RFC3339) + "&to=" + time.Now().Add(time.Hour).UTC().Format(time.RFC3339)

	var diff string
	var unknowable []string
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		truth = sim.Truth() // fresh: a fallback may have been dispatched since
		var known tyntecsim.Truth
		known, unknowable = knowable(truth.Reported())
		if diff = compareWithTruth(t, admin, window, known); diff == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the API never equalled the ground truth; last difference:\n%s", diff)
		}
	}
	if len(unknowable) > 0 {
		t.Logf("OTPs whose first attempts no webhook told of, and the rest nothing made the poller read (its known limit): %v", unknowable)
	}
	s := truth.Reported().Summary()
	t.Logf("%d logins: %d silent, %d push, %d OTPs; journeys %d, paths %v", logins, len(truth.Silent), len(truth.Push), len(truth.OTPs), s.Journeys.Journeys, s.Journeys.Paths)
	if !slices.ContainsFunc(mapsKeys(s.Journeys.Paths), func(p string) bool {
		return strings.HasPrefix(p, "SILENT>") || strings.HasPrefix(p, "PUSH>")
	}) {
		t.Error("no journey fell back from a method to an OTP: the test proves little")
	}

	// Push requests whose settling callback was lost and whose pending one
	// arrived: the poller read them by uuid, so their attempts count as
	// recovered by polling.
	var lostSettles uint64
	for _, p := range truth.Reported().Push {
		settledSeen := false
		for _, cb := range p.Callbacks {
			settledSeen = settledSeen || (cb.Status != tyntecsim.PushPending && cb.Delivered > 0)
		}
		if !settledSeen {
			lostSettles++
		}
	}
	var chs reporter.ChannelsResponse
	webtest.GetJSON(t, admin+"/api/v1/channels"+window, &chs)
	for _, c := range chs.Channels {
		if c.Channel == tyntecsim.MethodPush && c.RecoveredByPolling != lostSettles {
			t.Errorf("PUSH recovered by polling = %d; want %d (settling callbacks lost)", c.RecoveredByPolling, lostSettles)
		}
	}
	t.Logf("%d push settling callbacks lost and recovered by the poller", lostSettles)

	sendEverythingAgain(t, base, truth)
	// A sentinel sent last, hours before the window: once the API shows it,
	// everything sent before it has been through the sink.
	sentinelAt := from.Add(-3 * time.Hour)
	postJSON(t, base+"/silent-auth/outcomes", fmt.Sprintf(`{"attemptId":"sentinel","startedAt":%q,"finishedAt":%q,"result":"verified"}`,
		sentinelAt.Format(time.RFC3339Nano), sentinelAt.Add(time.Second).Format(time.RFC3339Nano)))
	sw := "?from=" + sentinelAt.Add(-time.Minute).UTC().Format(time.RFC3339) + "&to=" + sentinelAt.Add(time.Minute).UTC().Format(time.RFC3339)
	brokertest.WaitFor(t, 30*time.Second, "the sentinel sent after the duplicates", func() bool {
		var chs reporter.ChannelsResponse
		webtest.GetJSON(t, admin+"/api/v1/channels"+sw, &chs)
		return len(chs.Channels) == 1 && chs.Channels[0].Channel == "SILENT" && chs.Channels[0].Delivered == 1
	})
	known, _ := knowable(sim.Truth().Reported())
	if d := compareWithTruth(t, admin, window, known); d != "" {
		t.Errorf("after every input was sent again, duplicated and shuffled:\n%s", d)
	}
}

// compareWithTruth returns how the API's figures for window differ from
// truth's ("" when they agree): per channel (methods included) attempts and
// outcomes, the methods' failure codes and latency, and the journeys by
// outcome and path.
func compareWithTruth(t *testing.T, admin, window string, truth tyntecsim.Truth) string {
	t.Helper()
	want := truth.Summary()
	var b strings.Builder
	var chs reporter.ChannelsResponse
	webtest.GetJSON(t, admin+"/api/v1/channels"+window, &chs)
	got := map[string]bool{}
	latency := methodLatencies(truth)
	for _, c := range chs.Channels {
		got[c.Channel] = true
		w, ok := want.Channels[c.Channel]
		if !ok {
			fmt.Fprintf(&b, "channel %s: not in the truth\n", c.Channel)
			continue
		}
		if c.Channel == tyntecsim.MethodSilent || c.Channel == tyntecsim.MethodPush {
			// The truth counts a method's failures by reason only; otpscope
			// counts an expired push as timed out, every other failure as
			// undeliverable (docs/analytics.md).
			w.TimedOut = w.Failures[tyntecsim.PushExpired]
			w.Undeliverable = w.Failed - w.TimedOut
		}
		if c.Attempts != uint64(w.Attempts) || c.Delivered != uint64(w.Delivered) || c.Failed != uint64(w.Failed) ||
			c.Undeliverable != uint64(w.Undeliverable) || c.TimedOut != uint64(w.TimedOut) || c.Pending != uint64(w.Pending) {
			fmt.Fprintf(&b, "%s: %d/%d/%d/%d/%d/%d attempts/delivered/failed/undeliverable/timed_out/pending; truth %d/%d/%d/%d/%d/%d\n", c.Channel,
				c.Attempts, c.Delivered, c.Failed, c.Undeliverable, c.TimedOut, c.Pending, w.Attempts, w.Delivered, w.Failed, w.Undeliverable, w.TimedOut, w.Pending)
		}
		if c.Channel != tyntecsim.MethodSilent && c.Channel != tyntecsim.MethodPush {
			continue
		}
		codes := map[string]int{}
		for _, e := range c.Errors {
			codes[e.Code] = int(e.Count)
		}
		if fmt.Sprint(codes) != fmt.Sprint(w.Failures) && !(len(codes) == 0 && len(w.Failures) == 0) {
			fmt.Fprintf(&b, "%s failure codes %v; truth %v\n", c.Channel, codes, w.Failures)
		}
		if l := latency[c.Channel]; !samePercentiles(c.LatencyMS, l) {
			fmt.Fprintf(&b, "%s latency %+v; truth quantiles of %v\n", c.Channel, c.LatencyMS, l)
		}
	}
	for ch, w := range want.Channels {
		if !got[ch] && w.Attempts > 0 {
			fmt.Fprintf(&b, "channel %s (%d attempts) missing from the API\n", ch, w.Attempts)
		}
	}
	var fb reporter.FallbackResponse
	webtest.GetJSON(t, admin+"/api/v1/fallback"+window, &fb)
	j := want.Journeys
	wantOut := fmt.Sprint(j.Journeys, j.Fallback, j.DeliveredPrimary, j.DeliveredFallback, j.Failed, j.Pending)
	gotOut := fmt.Sprint(fb.OTPs, fb.FallbackOTPs, fb.Outcomes.DeliveredPrimary, fb.Outcomes.DeliveredFallback, fb.Outcomes.Failed, fb.Outcomes.Pending)
	if gotOut != wantOut {
		fmt.Fprintf(&b, "journeys/fallback/primary/fallback/failed/pending %s; truth %s\n", gotOut, wantOut)
	}
	paths := map[string]tyntecsim.PathSummary{}
	for _, p := range fb.Paths {
		paths[p.Path] = tyntecsim.PathSummary{Journeys: int(p.OTPs), Delivered: int(p.Delivered)}
	}
	if fmt.Sprint(paths) != fmt.Sprint(j.Paths) {
		fmt.Fprintf(&b, "paths %v; truth %v\n", paths, j.Paths)
	}
	return b.String()
}

// methodLatencies are the delivered method attempts' End − Start in ms.
func methodLatencies(truth tyntecsim.Truth) map[string][]int64 {
	out := map[string][]int64{}
	for _, j := range truth.Journeys() {
		for _, a := range j.Attempts {
			if (a.Channel == tyntecsim.MethodSilent || a.Channel == tyntecsim.MethodPush) && a.Outcome == tyntecsim.OutcomeDelivered {
				out[a.Channel] = append(out[a.Channel], a.End.UnixMilli()-a.Start.UnixMilli())
			}
		}
	}
	return out
}

// samePercentiles holds exact percentiles (the element at ⌊q·n⌋) to 1 ms.
func samePercentiles(got *store.Percentiles, xs []int64) bool {
	if len(xs) == 0 {
		return got == nil
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	q := func(level float64) float64 { return float64(s[min(len(s)-1, int(level*float64(len(s))))]) }
	return got != nil && math.Abs(got.P50-q(0.5)) <= 1 && math.Abs(got.P95-q(0.95)) <= 1
}

// sendEverythingAgain sends every input that reached otpscope once more,
// twice over, in a shuffled order: the webhooks tyntec sent, the push
// callbacks that were acknowledged, the silent-auth outcomes (in arrays),
// the /otps/track registrations.
func sendEverythingAgain(t *testing.T, base string, truth tyntecsim.Truth) {
	t.Helper()
	type post struct{ path, body string }
	var posts []post
	for _, o := range truth.OTPs {
		for _, w := range o.Webhooks {
			if w.Delivered == 0 {
				continue
			}
			ds := events.DeliveryStatus{Channel: w.Channel, OTPID: o.ID, ProfileID: o.ProfileID, Status: w.Status, Timestamp: w.Timestamp}
			for _, at := range o.Attempts {
				if at.Channel == w.Channel && at.ErrorCode != "" && w.Status.Failed() {
					ds.Error = &events.DeliveryError{Code: at.ErrorCode}
				}
			}
			body, _ := json.Marshal(ds)
			posts = append(posts, post{"/webhooks/tyntec", string(body)})
		}
		if o.Track.Reached() {
			body, _ := json.Marshal(map[string]string{"otpId": o.ID, "api": o.API, "profileId": o.ProfileID, "correlationId": o.JourneyID,
				"at": o.Created.UTC().Format(time.RFC3339Nano)})
			posts = append(posts, post{"/otps/track", string(body)})
		}
	}
	for _, p := range truth.Push {
		for _, cb := range p.Callbacks {
			if cb.Delivered == 0 {
				continue
			}
			body, _ := json.Marshal(map[string]any{"uuid": p.UUID, "tfaId": p.TFAID, "status": cb.Status,
				"createdAt": p.Created.UTC().Format(time.RFC3339Nano), "updatedAt": cb.At.UTC().Format(time.RFC3339Nano),
				"secondsToExpire": p.SecondsToExpire, "hiddenDetails": map[string]string{"correlationId": p.CorrelationID}})
			posts = append(posts, post{"/webhooks/push", string(body)})
		}
	}
	var outcomes []map[string]string
	for _, s := range truth.Silent {
		if !s.Report.Reached() {
			continue
		}
		o := map[string]string{"attemptId": s.AttemptID, "correlationId": s.CorrelationID, "scope": s.Scope,
			"startedAt": s.Started.UTC().Format(time.RFC3339Nano), "finishedAt": s.Finished.UTC().Format(time.RFC3339Nano),
			"result": s.Result, "loginHint": s.LoginHint, "mobileId": s.MobileID}
		if s.Error != "" {
			o["error"] = s.Error
		}
		outcomes = append(outcomes, o, o) // each twice
	}
	rng := rand.New(rand.NewPCG(14, 14))
	rng.Shuffle(len(outcomes), func(i, j int) { outcomes[i], outcomes[j] = outcomes[j], outcomes[i] })
	for i := 0; i < len(outcomes); i += 3 {
		body, _ := json.Marshal(outcomes[i:min(i+3, len(outcomes))])
		posts = append(posts, post{"/silent-auth/outcomes", string(body)})
	}
	posts = append(posts, posts...)
	rng.Shuffle(len(posts), func(i, j int) { posts[i], posts[j] = posts[j], posts[i] })
	for _, p := range posts {
		postJSON(t, base+p.path, p.body)
	}
	t.Logf("sent %d requests again (every input twice, shuffled)", len(posts))
}

func postJSON(t *testing.T, url, body string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Webhook-Token", methodsToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("POST %s %s: %s", url, body, resp.Status)
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func mapsKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestIngestReplicasSharePseudonyms: two ingest replicas on one external
// NATS server, each with a data directory of its own (as pods have), and a
// third started later: one phone number gets one pseudonym from all.
func TestIngestReplicasSharePseudonyms(t *testing.T) {
	ns := brokertest.NewServer(t)
	b := ns.Broker(t)
	// The read-only user listens on every reply subject it may: the
	// replicas' reads of the key must not reach it (broker.ServiceInbox).
	sniffer, err := nats.Connect(ns.ReaderURL())
	if err != nil {
		t.Fatal(err)
	}
	defer sniffer.Close()
	sniffed, err := sniffer.SubscribeSync("_INBOX.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := sniffer.Flush(); err != nil || sniffer.LastError() != nil {
		t.Fatalf("reader: subscribe to _INBOX.>: %v %v", err, sniffer.LastError())
	}
	hashes := make(chan string, 8)
	unsubscribe, err := b.Subscribe("tyntec.2fa.silent.>", func(m *nats.Msg) {
		var o events.SilentOutcome
		if err := json.Unmarshal(m.Data, &o); err == nil {
			hashes <- o.LoginHintHash
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(unsubscribe)
	replica := func() *app.App {
		cfg := newConfig(t, "ingest") // a data directory of its own
		cfg.NATS.URL = ns.URL()
		cfg.Ingest.Tokens = []string{methodsToken}
		return serve(t, cfg)
	}
	replicas := []*app.App{replica(), replica()}
	replicas = append(replicas, replica())
	var got []string
	for i, r := range replicas {
		now := time.Now().UTC()
		postJSON(t, "http://"+r.Addr()+ingest.SilentPath, fmt.Sprintf(`{"attemptId":"attempt-%d","result":"verified","loginHint":"+491701234567","startedAt":%q,"finishedAt":%q}`,
			i, now.Add(-time.Second).Format(time.RFC3339Nano), now.Format(time.RFC3339Nano)))
		select {
		case h := <-hashes:
			got = append(got, h)
		case <-time.After(10 * time.Second):
			t.Fatalf("replica %d published no silent outcome", i)
		}
	}
	if got[0] == "" || got[1] != got[0] || got[2] != got[0] {
		t.Errorf("loginHintHash from the three replicas: %q; want one pseudonym", got)
	}

	// Replicas 2 and 3 read the key the first made: the replies went to
	// them alone.
	key, err := brokertest.JetStream(t, b).KeyValue(t.Context(), ingest.PseudonymBucket)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := key.Get(t.Context(), ingest.PseudonymKVKey)
	if err != nil || len(stored.Value()) == 0 {
		t.Fatalf("the shared key: %v", err)
	}
	for {
		m, err := sniffed.NextMsg(200 * time.Millisecond)
		if err != nil {
			break
		}
		if bytes.Contains(m.Data, stored.Value()) || strings.HasPrefix(m.Header.Get("Nats-Subject"), "$KV.") {
			t.Errorf("the reader, subscribed to _INBOX.>, received %s (%s): a reply to otpscope's own request", m.Subject, m.Header.Get("Nats-Subject"))
		}
	}

	// The read-only user, which downstream subscribers hold, cannot read
	// the key (it could then test guessed numbers against pseudonyms).
	js := brokertest.JetStreamAt(t, ns.ReaderURL())
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second) // a denied request is not answered
	defer cancel()
	if kv, err := js.KeyValue(ctx, ingest.PseudonymBucket); err == nil {
		if e, err := kv.Get(ctx, ingest.PseudonymKVKey); err == nil {
			t.Errorf("the reader read the pseudonym key (%d bytes)", len(e.Value()))
		}
	}
}

// The pseudonym key a data directory holds is the one shared through NATS:
// an ingest moving to an external server (an upgrade from a build that kept
// the key only in its data directory) seeds the bucket with it, so its
// pseudonyms stay and a new replica takes the same key; an ingest hosting
// a single embedded server puts its key there for replicas publishing to
// that server.
func TestPseudonymKeyFromTheDataDirectoryIsShared(t *testing.T) {
	sharedKey := func(b *broker.Broker) string {
		t.Helper()
		kv, err := brokertest.JetStream(t, b).KeyValue(t.Context(), ingest.PseudonymBucket)
		if err != nil {
			t.Fatal(err)
		}
		e, err := kv.Get(t.Context(), ingest.PseudonymKVKey)
		if err != nil {
			t.Fatal(err)
		}
		return string(e.Value())
	}
	const kept = "a-key-an-older-build-kept-0123456789"
	ns := brokertest.NewServer(t)
	cfg := newConfig(t, "ingest")
	cfg.NATS.URL = ns.URL()
	cfg.Ingest.Tokens = []string{methodsToken}
	if err := os.WriteFile(filepath.Join(cfg.DataDir, ingest.PseudonymKeyFile), []byte(kept+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	serve(t, cfg)
	if got := sharedKey(ns.Broker(t)); got != kept {
		t.Fatalf("the shared key after an upgraded replica = %q; want its data directory's %q", got, kept)
	}

	embedded := newConfig(t, "ingest")
	embedded.Ingest.Tokens = []string{methodsToken}
	a := serve(t, embedded)
	file, err := ingest.FilePseudonymKey(embedded.DataDir)
	if err != nil || file == nil {
		t.Fatalf("the embedded ingest's key file: %v", err)
	}
	if got := sharedKey(a.Broker()); got != string(file) {
		t.Fatalf("the key an embedded single server shares = %q; want its data directory's %q", got, file)
	}
}
