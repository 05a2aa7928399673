package reporter_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/ingest"
	"github.com/otpscope/otpscope/internal/ops"
	"github.com/otpscope/otpscope/internal/reporter"
	"github.com/otpscope/otpscope/internal/store"
)

// TestAlertsUnknownChannelsTogether: one holder of a webhook token posts
// one body of 60 made-up channels, each failing 6 times, beside a known
// channel (VIBER) and a new one an operator named in a threshold flag
// (RCS), both failing. Each made-up channel has the rule's 5 settled
// attempts, so judged by itself each would page; together they fire one
// delivery_rate_low, on OTHER, naming the three that failed most and
// counting the rest; VIBER and RCS fire their own. NATS, the webhook, the
// store, the firing rules and a real Alertmanager each hear of those
// three, not of 62.
func TestAlertsUnknownChannelsTogether(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	hooks := startIngest(t, f)

	now := time.Now().UTC().Truncate(time.Second)
	var body []map[string]any
	fail := func(channel string, n int) {
		for range n {
			body = append(body, map[string]any{"channel": channel, "otpId": uuid.NewString(), "status": "UNDELIVERABLE",
				"timestamp": now.Add(-10 * time.Minute).Format(time.RFC3339)})
		}
	}
	for i := range 60 {
		fail(fmt.Sprintf("PAGE_ONCALL_%d", i), 6)
	}
	fail("PAGE_ONCALL_7", 2) // the most failed of them
	fail("VIBER", 20)
	fail("RCS", 20)
	postWebhook(t, hooks, body)
	f.WaitCount(t, "SELECT uniqExact(event_id) FROM delivery_events", uint64(len(body)))

	var mu sync.Mutex
	var posted []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v struct {
			Alert reporter.Alert `json:"alert"`
		}
		_ = json.NewDecoder(r.Body).Decode(&v)
		mu.Lock()
		posted = append(posted, v.Alert.Rule+"/"+v.Alert.Channel)
		mu.Unlock()
	}))
	t.Cleanup(hook.Close)
	am := startAlertmanager(t)
	got := subscribe(t, &traffic{f: f}, events.SubjectRoot+".alert.>")

	var rates reporter.ChannelRates
	if err := rates.Set("RCS=0.9"); err != nil {
		t.Fatal(err)
	}
	rules := reporter.AlertRules{Window: time.Hour, MinDeliveryRate: 0.8, ChannelMinDeliveryRate: rates, MinSettled: 5, MaxLatencyP95: time.Minute}
	cfg := reporter.ReportsConfig{Rules: rules, AlertWebhookURL: hook.URL, AlertmanagerURLs: []string{am.url}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	reports := reporter.NewReports(cfg, f.DB, f.Broker, brokertest.Logger(t), nil)
	to := now.Add(time.Minute)
	alerts, err := reports.Evaluate(ctx, now.Add(-time.Hour), to)
	if err != nil {
		t.Fatal(err)
	}

	want := []string{"delivery_rate_low/OTHER", "delivery_rate_low/RCS", "delivery_rate_low/VIBER"}
	keys := func(alerts []reporter.Alert) []string {
		var out []string
		for _, al := range alerts {
			out = append(out, al.Rule+"/"+al.Channel)
		}
		slices.Sort(out)
		return out
	}
	if got := keys(alerts); !slices.Equal(got, want) {
		t.Fatalf("evaluation published %d alerts %v; want %v", len(got), got, want)
	}
	other := byRule(alerts, reporter.RuleDeliveryRateLow, reporter.OtherChannels)
	if other.Volume != 362 || other.Value != 0 || other.Threshold != 0.8 ||
		!strings.HasPrefix(other.Summary, "OTHER delivery rate 0.0% below 80.0% (0 of 362 settled attempts delivered") ||
		!strings.Contains(other.Summary, "60 channels otpscope does not know, judged together: PAGE_ONCALL_7 8 failed of 8 settled, PAGE_ONCALL_0 6 failed of 6 settled, PAGE_ONCALL_1 6 failed of 6 settled and 57 more)") {
		t.Errorf("OTHER's alert %+v; want 362 settled, none delivered, the three most failed named and 57 counted", other)
	}
	if rcs := byRule(alerts, reporter.RuleDeliveryRateLow, "RCS"); rcs.Threshold != 0.9 || rcs.Volume != 20 {
		t.Errorf("RCS's alert %+v; want its own threshold 0.9 over its 20 attempts", rcs)
	}

	subjects := map[string]int{}
	for range alerts {
		subjects[got.next(t).Subject]++
	}
	select {
	case m := <-got.ch:
		t.Errorf("a fourth alert published on %s", m.Subject)
	case <-time.After(200 * time.Millisecond):
	}
	if subjects[events.AlertSubject(reporter.RuleDeliveryRateLow)] != 3 {
		t.Errorf("alert subjects %v; want 3 on %s", subjects, events.AlertSubject(reporter.RuleDeliveryRateLow))
	}
	mu.Lock()
	hooked := slices.Sorted(slices.Values(posted))
	mu.Unlock()
	if !slices.Equal(hooked, want) {
		t.Errorf("webhook posts %v; want %v", hooked, want)
	}
	f.WaitCount(t, "SELECT count() FROM alerts FINAL", 3)
	if n := f.Count(t, "SELECT count() FROM alerts FINAL WHERE channel = 'OTHER'"); n != 1 {
		t.Errorf("%d stored alerts on OTHER; want 1", n)
	}
	firing, err := reports.Firing(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var firingAlerts []reporter.Alert
	for _, f := range firing {
		firingAlerts = append(firingAlerts, f.Alert)
	}
	if got := keys(firingAlerts); !slices.Equal(got, want) {
		t.Errorf("firing %v; want %v", got, want)
	}
	am.waitNotified(t, "firing", 3)
	var held []string
	for _, a := range am.alerts(t) {
		held = append(held, a.Labels["alertname"]+"/"+a.Labels["channel"])
	}
	if slices.Sort(held); !slices.Equal(held, want) {
		t.Errorf("Alertmanager holds %v; want %v", held, want)
	}

	// The API filtered by a channel lists the alerts it is judged in: a
	// made-up one's are OTHER's, a known one's and a named one's their own.
	ar := chi.NewRouter()
	reporter.NewAPI(f.DB, rules, brokertest.Logger(t)).Mount(ar)
	api := httptest.NewServer(ar)
	t.Cleanup(api.Close)
	window := url.Values{"from": {now.Add(-time.Hour).Format(time.RFC3339)}, "to": {to.Add(time.Minute).Format(time.RFC3339)}}
	for channel, want := range map[string][]string{
		"PAGE_ONCALL_3": {"delivery_rate_low/OTHER"},
		"OTHER":         {"delivery_rate_low/OTHER"},
		"VIBER":         {"delivery_rate_low/VIBER"},
		"RCS":           {"delivery_rate_low/RCS"},
	} {
		q := url.Values{"channel": {channel}, "from": window["from"], "to": window["to"]}
		var eps reporter.AlertEpisodesResponse
		var recs reporter.AlertsResponse
		for path, into := range map[string]any{"/api/v1/alerts/episodes": &eps, "/api/v1/alerts": &recs} {
			resp, err := http.Get(api.URL + path + "?" + q.Encode())
			if err != nil {
				t.Fatal(err)
			}
			if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		var listed, recorded []string
		for _, e := range eps.Episodes {
			listed = append(listed, e.Rule+"/"+e.Channel)
		}
		for _, r := range recs.Alerts {
			recorded = append(recorded, r.Rule+"/"+r.Channel)
		}
		if !slices.Equal(listed, want) || !slices.Equal(recorded, want) {
			t.Errorf("channel=%s: episodes %v, alerts %v; want %v", channel, listed, recorded, want)
		}
	}
}

// TestAlertsSetTheWindowBefore: VIBER delivered 19 of 20 attempts in the
// hour before the alerts' window and 5 of 20 in it, failing under five
// codes. Its delivery_rate_low says which codes failed most and what the
// rate was the hour before, and carries that figure (as the store reads
// that hour) on NATS, to the webhook, the store and Alertmanager.
func TestAlertsSetTheWindowBefore(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	hooks := startIngest(t, f)

	now := time.Now().UTC().Truncate(time.Second)
	to := now.Add(time.Minute)
	from := to.Add(-time.Hour)
	var body []map[string]any
	viber := func(status string, n int, at time.Time, code string) {
		for range n {
			ev := map[string]any{"channel": "VIBER", "otpId": uuid.NewString(), "status": status, "timestamp": at.Format(time.RFC3339)}
			if code != "" {
				ev["error"] = map[string]any{"code": code, "message": "failed"}
			}
			body = append(body, ev)
		}
	}
	earlier, recent := now.Add(-80*time.Minute), now.Add(-10*time.Minute)
	viber("DELIVERED", 19, earlier, "")
	viber("UNDELIVERABLE", 1, earlier, "tyntec::viber::blocked")
	viber("DELIVERED", 5, recent, "")
	viber("UNDELIVERABLE", 9, recent, "tyntec::viber::blocked")
	viber("UNDELIVERABLE", 3, recent, "tyntec::viber::expired")
	viber("UNDELIVERABLE", 1, recent, "tyntec::viber::a")
	viber("UNDELIVERABLE", 1, recent, "tyntec::viber::b")
	viber("UNDELIVERABLE", 1, recent, "") // no code: "(none)"
	postWebhook(t, hooks, body)
	f.WaitCount(t, "SELECT uniqExact(event_id) FROM delivery_events", uint64(len(body)))

	am := startAlertmanager(t)
	got := subscribe(t, &traffic{f: f}, events.SubjectRoot+".alert.>")
	cfg := reporter.ReportsConfig{Rules: reporter.AlertRules{Window: time.Hour, MinDeliveryRate: 0.8, MinSettled: 5}, AlertmanagerURLs: []string{am.url}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	alerts, err := reporter.NewReports(cfg, f.DB, f.Broker, brokertest.Logger(t), nil).Evaluate(ctx, from, to)
	if err != nil {
		t.Fatal(err)
	}
	if len(alerts) != 1 || alerts[0].Rule != reporter.RuleDeliveryRateLow || alerts[0].Channel != "VIBER" {
		t.Fatalf("alerts %+v; want VIBER's delivery_rate_low", alerts)
	}
	al := alerts[0]
	span := from.Format(time.RFC3339) + " – " + to.Format(time.RFC3339)
	wantSummary := "VIBER delivery rate 25.0% below 80.0% (5 of 20 settled attempts delivered, " + span +
		"; failed: tyntec::viber::blocked 9, tyntec::viber::expired 3, (none) 1 and 2 more codes); the hour before: 95.0% (19 of 20 settled attempts delivered)"
	if al.Summary != wantSummary {
		t.Errorf("summary\n%s\nwant\n%s", al.Summary, wantSummary)
	}
	before := from.Add(-time.Hour)
	chs, err := f.DB.Channels(ctx, store.Window{From: before, To: from})
	if err != nil {
		t.Fatal(err)
	}
	if b := al.Before; b == nil || !b.From.Equal(before) || !b.To.Equal(from) || b.Volume != 20 || b.Value == nil || *b.Value != 0.95 ||
		len(chs) != 1 || chs[0].DeliveryRate == nil || *chs[0].DeliveryRate != *b.Value {
		t.Errorf("the alert's window before %+v; want %s – %s, 19 of 20 delivered, as /channels reads it (%+v)", b, before, from, chs)
	}

	var published reporter.Alert
	if err := json.Unmarshal(got.next(t).Data, &published); err != nil {
		t.Fatal(err)
	}
	if b := published.Before; b == nil || b.Value == nil || *b.Value != 0.95 || b.Volume != 20 || !b.From.Equal(before) || published.Summary != wantSummary {
		t.Errorf("published %+v (before %+v); want the window before's figure and the summary", published, b)
	}
	f.WaitCount(t, "SELECT count() FROM alerts FINAL WHERE channel = 'VIBER' AND summary LIKE '%the hour before: 95.0%'", 1)
	am.waitNotified(t, "firing", 1)
	held := am.alerts(t)
	if len(held) != 1 || held[0].Annotations["value_before"] != "0.9500" || held[0].Annotations["volume_before"] != "20" ||
		held[0].Annotations["window_before"] != before.Format(time.RFC3339)+" – "+from.Format(time.RFC3339) {
		t.Errorf("Alertmanager holds %+v; want one alert annotated with the window before's figure", held)
	}

	// With --alert-keep-firing-for, a rule that holds no longer (VIBER's
	// 25 % is above a threshold of 20 %) is kept firing: nothing
	// published, still listed firing, and still firing to Alertmanager,
	// which hears it again (a later end).
	keepCfg := cfg
	keepCfg.Rules.MinDeliveryRate, keepCfg.AlertKeepFiringFor = 0.2, 10*time.Minute
	if err := keepCfg.Validate(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // Alertmanager's end, a second later
	keeping := reporter.NewReports(keepCfg, f.DB, f.Broker, brokertest.Logger(t), nil)
	if alerts, err := keeping.Evaluate(ctx, from, to); err != nil || len(alerts) != 0 {
		t.Fatalf("kept firing: published %+v, %v; want nothing", alerts, err)
	}
	firing, err := keeping.Firing(ctx)
	if err != nil || len(firing) != 1 || firing[0].Channel != "VIBER" || firing[0].Value != 0.25 || !firing[0].Kept {
		t.Errorf("firing while kept: %+v, %v; want VIBER's as it last held, marked kept", firing, err)
	}
	if again := am.alerts(t); len(again) != 1 || again[0].Status.State != "active" || !again[0].EndsAt.After(held[0].EndsAt) {
		t.Errorf("Alertmanager holds %+v after the rule was kept firing; want it active, heard again (its end after %v)", again, held[0].EndsAt)
	}
	if err := (&reporter.ReportsConfig{AlertKeepFiringFor: -time.Minute}).Validate(); err == nil || !strings.Contains(err.Error(), "alert-keep-firing-for") {
		t.Errorf("--alert-keep-firing-for -1m: %v; want it refused", err)
	}

	// With --alert-max-delivery-rate-drop 0.5 the next evaluation also
	// judges VIBER's fall from 95 % to 25 % a drop, against its threshold
	// of 45 %, and one chance makes 0.0005 % of the time; with the rule off
	// again, the drop resolves.
	// (Alertmanager left out: these windows end in the future, where a
	// resolution's end, now, would come before its start.)
	drops := cfg
	drops.Rules.MaxDeliveryRateDrop, drops.Rules.DropConfidence, drops.AlertmanagerURLs = 0.5, reporter.DefaultDropConfidence, nil
	to2 := to.Add(time.Minute)
	alerts, err = reporter.NewReports(drops, f.DB, f.Broker, brokertest.Logger(t), nil).Evaluate(ctx, to2.Add(-time.Hour), to2)
	if err != nil {
		t.Fatal(err)
	}
	drop := byRule(alerts, reporter.RuleDeliveryRateDrop, "VIBER")
	if len(alerts) != 2 || drop == nil || byRule(alerts, reporter.RuleDeliveryRateLow, "VIBER") == nil {
		t.Fatalf("alerts %+v; want VIBER's delivery_rate_low again and its delivery_rate_drop", alerts)
	}
	if !strings.HasPrefix(drop.Summary, "VIBER delivery rate 25.0% below 45.0%, more than 50.0 points under the hour before (5 of 20 settled attempts delivered") ||
		!strings.HasSuffix(drop.Summary, "; the hour before: 95.0% (19 of 20 settled attempts delivered); a fall as large by chance, were nothing changed: 0.0005%") || drop.Before == nil || *drop.Before.Value != 0.95 ||
		!drop.Before.To.Equal(to2.Add(-time.Hour)) {
		t.Errorf("the drop %+v (before %+v)", drop, drop.Before)
	}
	off := drops
	off.Rules.MaxDeliveryRateDrop = 0
	alerts, err = reporter.NewReports(off, f.DB, f.Broker, brokertest.Logger(t), nil).Evaluate(ctx, to2.Add(time.Minute-time.Hour), to2.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if r := byRule(alerts, reporter.RuleDeliveryRateDrop, "VIBER"); r == nil || r.State != events.AlertResolved || !strings.HasPrefix(r.Summary, "VIBER delivery rate drop no longer watched") {
		t.Errorf("with the rule off, alerts %+v; want the drop resolved, no longer watched", alerts)
	}
}

// startIngest serves ingest's webhook on f's NATS, and returns its URL.
func startIngest(t *testing.T, f *fixture) string {
	t.Helper()
	r := ops.NewRouter()
	h := ingest.NewHandler(ingest.Config{Tokens: []string{webhookToken}, MaxBodyBytes: ingest.DefaultMaxBodyBytes, PublishTimeout: 5 * time.Second, RetryAfter: time.Second},
		f.Broker, brokertest.Logger(t), prometheus.NewRegistry())
	ingest.Mount(r, h.Routes()...)
	hooks := httptest.NewServer(r)
	t.Cleanup(hooks.Close)
	return hooks.URL
}

// postWebhook posts events as one DeliveryStatus webhook body to the ingest
// at url, which must accept them all.
func postWebhook(t *testing.T, url string, events []map[string]any) {
	t.Helper()
	b, err := json.Marshal(events)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url+ingest.WebhookPath, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Webhook-Token", webhookToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("webhook of %d events answered %s; want them accepted", len(events), resp.Status)
	}
}
