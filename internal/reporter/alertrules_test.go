package reporter_test

import (
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/reporter"
	"github.com/otpscope/otpscope/internal/webtest"
)

// The rules in force (GET /api/v1/alerts/rules) are the flags' rules in
// words: each threshold, a channel's own beside the default (0: off for
// it), the volume each needs, and when they are evaluated and who hears.
func TestAlertRulesInForce(t *testing.T) {
	var cfg reporter.ReportsConfig
	fs := flag.NewFlagSet("reporter", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	if err := fs.Parse([]string{"--alert-channel-min-delivery-rate", "SILENT=0.6,PUSH=0"}); err != nil {
		t.Fatal(err)
	}
	got := cfg.InForce()
	says := map[string]string{}
	on := map[string]bool{}
	for _, r := range got.Rules {
		says[r.Rule], on[r.Rule] = r.Says, r.On
	}
	for rule, want := range map[string]string{
		reporter.RuleDeliveryRateLow:  "a channel's delivery rate below 80.0% (PUSH off, SILENT 60.0%), with at least 50 settled attempts in the window",
		reporter.RuleDeliverySlow:     "a channel's p95 latency (dispatch → DELIVERED) above 60.0 s, with at least 50 delivered attempts in the window",
		reporter.RuleDeliveryRateDrop: "off: --alert-max-delivery-rate-drop is 0",
		reporter.RuleFallbackRateHigh: "the share of journeys that fell back above 20.0%, with at least 50 journeys in the window",
		reporter.RuleErrorBudgetBurn:  "off: --slo-delivery-rate is 0",
	} {
		if says[rule] != want {
			t.Errorf("%s says %q; want %q", rule, says[rule], want)
		}
		if on[rule] != (rule != reporter.RuleDeliveryRateDrop && rule != reporter.RuleErrorBudgetBurn) {
			t.Errorf("%s on %v", rule, on[rule])
		}
	}
	if len(got.Rules) != 5 || got.Rules[0].Channels["PUSH"] != 0 || got.Rules[0].Channels["SILENT"] != 0.6 || got.Rules[1].Threshold != 60000 || got.Rules[3].MinVolume != 50 {
		t.Errorf("rules %+v", got.Rules)
	}
	if want := `Evaluated on "*/5 * * * *" (--alert-schedule) over the last 1 h (--alert-window). A rule fires at the first evaluation it holds at and resolves at the first it does not. No webhook (--alert-webhook-url); no Alertmanager (--alertmanager-url); every firing and resolution is published on NATS and stored.`; got.Says != want {
		t.Errorf("says %q; want %q", got.Says, want)
	}
	if got.Schedule != "*/5 * * * *" || got.WindowSeconds != 3600 || got.RepeatSeconds != 4*3600 || got.TZ != "UTC" {
		t.Errorf("in force %+v", got)
	}

	// Only channels of their own, a drop judged on its chance, and where
	// the alerts go; no address given.
	cfg.Rules.MinDeliveryRate, cfg.Rules.ChannelMinDeliveryRate = 0, reporter.ChannelRates{"SMS": 0.95, "VOICE": 0.7}
	cfg.Rules.MaxDeliveryRateDrop, cfg.Rules.ChannelMaxDeliveryRateDrop = 0.1, reporter.ChannelRates{"PUSH": 0}
	cfg.Rules.MaxFallbackRate = 0
	cfg.AlertFor, cfg.AlertKeepFiringFor, cfg.Alerts = 10*time.Minute, 15*time.Minute, "@every 1m"
	cfg.AlertWebhookURL, cfg.AlertmanagerURLs = "https://hooks.slack.example/T000/B000/secret", []string{"http://am-0:9093", "http://am-1:9093"}
	cfg.RunbookURL = "https://wiki.example.com/otpscope#{rule}"
	got = cfg.InForce()
	for i, want := range []string{
		"a channel's delivery rate below SMS 95.0%, VOICE 70.0% (no other channel), with at least 50 settled attempts in the window",
		"",
		"a channel's delivery rate more than 10.0 points (PUSH off) below the window before's, with at least 50 settled attempts in each, and a fall as large, were nothing changed, a chance under 5%",
		"off: --alert-max-fallback-rate is 0",
	} {
		if want != "" && got.Rules[i].Says != want {
			t.Errorf("%s says %q; want %q", got.Rules[i].Rule, got.Rules[i].Says, want)
		}
	}
	if c := got.Rules[2].Confidence; c == nil || *c != 0.95 {
		t.Errorf("the drop's confidence %v; want 0.95", c)
	}
	if want := `Evaluated on "@every 1m" (--alert-schedule) over the last 1 h (--alert-window). A rule fires once it has held at every evaluation for 10 min (--alert-for) and resolves 15 min after it last held (--alert-keep-firing-for). The webhook hears when one fires, every 4 h while it fires (--alert-repeat) and when it resolves; 2 Alertmanagers hear every evaluation; every firing and resolution is published on NATS and stored. A firing names its runbook: https://wiki.example.com/otpscope#{rule} (--alert-runbook-url).`; got.Says != want {
		t.Errorf("says %q; want %q", got.Says, want)
	}
	if !got.Webhook || got.Alertmanagers != 2 || got.ForSeconds != 600 || got.KeepFiringForSeconds != 900 || got.RunbookURL != cfg.RunbookURL {
		t.Errorf("in force %+v", got)
	}
	cfg.Alerts = ""
	if got := cfg.InForce(); got.Says != "Not evaluated: --alert-schedule is empty." {
		t.Errorf("without a schedule: %q", got.Says)
	}
}

// A test alert (POST /api/v1/alerts/test) reaches the webhook and a real
// Alertmanager as a firing does, marked a test, and says what each
// destination did with it: one that cannot be reached says why, without
// stopping the others. It is neither published nor counted.
func TestSendTestAlert(t *testing.T) {
	am := startAlertmanager(t)
	var mu sync.Mutex
	var texts []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v struct {
			Text  string         `json:"text"`
			Alert reporter.Alert `json:"alert"`
		}
		if err := json.NewDecoder(r.Body).Decode(&v); err != nil || v.Alert.Rule != reporter.TestAlertRule {
			t.Errorf("the webhook's test body: %+v, %v; want an alert of rule %s", v, err, reporter.TestAlertRule)
		}
		mu.Lock()
		texts = append(texts, v.Text)
		mu.Unlock()
	}))
	defer hook.Close()
	gone := "http://" + webtest.FreeAddr(t) // nothing listens there
	reg := prometheus.NewRegistry()
	cfg := reporter.ReportsConfig{AlertWebhookURL: hook.URL, AlertmanagerURLs: []string{gone, am.url}, AlertLabels: reporter.Labels{"env": "prod"},
		ConsoleURL: "https://otpscope.example.com/console/", RunbookURL: "https://wiki.example.com/otpscope#{rule}", Timezone: "Asia/Kolkata", Alerts: "*/5 * * * *", Rules: reporter.AlertRules{Window: time.Hour}}
	router := chi.NewRouter()
	reporter.NewReports(cfg, nil, nil, brokertest.Logger(t), reg).MountRules(router)
	srv := httptest.NewServer(router)
	defer srv.Close()

	resp, err := http.Post(srv.URL+"/api/v1/alerts/test", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got reporter.TestAlertResponse
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /api/v1/alerts/test: %s, %v", resp.Status, err)
	}
	if got.Webhook == nil || !got.Webhook.Sent || len(got.Alertmanagers) != 2 || got.Alertmanagers[0].Sent || !strings.Contains(got.Alertmanagers[0].Error, "connection refused") ||
		!got.Alertmanagers[1].Sent {
		t.Errorf("sent %+v; want the webhook and the second Alertmanager sent, the first refused", got)
	}
	mu.Lock()
	if len(texts) != 1 || !strings.HasPrefix(texts[0], ":test_tube: otpscope test alert: a test of otpscope's alert notifications, sent by hand at ") ||
		!strings.Contains(texts[0], "+05:30") || !strings.HasSuffix(texts[0], "no rule fired; runbook: https://wiki.example.com/otpscope#otpscope_test https://otpscope.example.com/console/") {
		t.Errorf("the webhook heard %q", texts)
	}
	mu.Unlock()
	am.waitNotified(t, "firing", 1)
	held := am.alerts(t)
	if len(held) != 1 || held[0].Labels["alertname"] != reporter.TestAlertRule || held[0].Labels["env"] != "prod" || held[0].Labels["service"] != "otpscope" ||
		held[0].GeneratorURL != cfg.ConsoleURL || held[0].Annotations["runbook_url"] != "https://wiki.example.com/otpscope#otpscope_test" ||
		!held[0].EndsAt.After(held[0].StartsAt) || held[0].EndsAt.Sub(held[0].StartsAt) > 5*time.Minute {
		t.Errorf("Alertmanager holds %+v; want the test alert, labelled as the rules' are, ending by itself within minutes", held)
	}
	// The posts' metrics are the rules' alerts': a test is not counted.
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var posts, series float64
	for _, f := range families {
		if name := f.GetName(); name == "otpscope_alert_webhook_posts_total" || name == "otpscope_alertmanager_posts_total" {
			for _, m := range f.GetMetric() {
				posts, series = posts+m.GetCounter().GetValue(), series+1
			}
		}
	}
	if posts != 0 || series == 0 {
		t.Errorf("a test alert counted %v posts in %v series; want none in the series of the rules' posts", posts, series)
	}

	// otpscope alerts test says the same, and fails unless every one took it.
	var out strings.Builder
	err = reporter.RunAlerts(t.Context(), "test", reporter.AlertsCLIConfig{APIFlags: reporter.APIFlags{API: srv.URL}}, &out)
	if lines := strings.Split(strings.TrimSpace(out.String()), "\n"); !errors.Is(err, reporter.ErrTestAlertNotSent) || len(lines) != 3 || lines[0] != "webhook: sent" ||
		!strings.HasPrefix(lines[1], "alertmanager 1 of 2: not sent: ") || lines[2] != "alertmanager 2 of 2: sent" {
		t.Errorf("otpscope alerts test: %v\n%s", err, out.String())
	}
	// otpscope alerts rules: the words, a rule a line.
	out.Reset()
	if err := reporter.RunAlerts(t.Context(), "rules", reporter.AlertsCLIConfig{APIFlags: reporter.APIFlags{API: srv.URL}}, &out); err != nil ||
		!strings.HasPrefix(out.String(), `Evaluated on "*/5 * * * *" (--alert-schedule) over the last 1 h`) || !strings.Contains(out.String(), "\n  delivery_rate_low   off: --alert-min-delivery-rate is 0\n") {
		t.Errorf("otpscope alerts rules: %v\n%s", err, out.String())
	}

	// Without a destination: nothing to send, said so.
	none := chi.NewRouter()
	reporter.NewReports(reporter.ReportsConfig{}, nil, nil, brokertest.Logger(t), nil).MountRules(none)
	rec := httptest.NewRecorder()
	none.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/v1/alerts/test", nil))
	if body := strings.TrimSpace(rec.Body.String()); rec.Code != http.StatusOK || body != `{"webhook":null,"alertmanagers":[]}` {
		t.Errorf("without a destination: %d %s", rec.Code, body)
	}
	// Each pages whoever is on call: three at once, then one every 20 s,
	// the rest refused with when to try again.
	for i := 2; i <= reporter.TestAlertBurst+1; i++ {
		rec := httptest.NewRecorder()
		none.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/v1/alerts/test", nil))
		if i <= reporter.TestAlertBurst && rec.Code != http.StatusOK {
			t.Errorf("test alert %d: %d; want 200 (%d at once)", i, rec.Code, reporter.TestAlertBurst)
		}
		if i > reporter.TestAlertBurst {
			if after, _ := strconv.Atoi(rec.Header().Get("Retry-After")); rec.Code != http.StatusTooManyRequests || after < 1 || after > 20 ||
				!strings.Contains(rec.Body.String(), "each pages whoever is on call: 3 at once, then one every 20 s") {
				t.Errorf("test alert %d: %d, Retry-After %q, %s; want 429 within 20 s", i, rec.Code, rec.Header().Get("Retry-After"), rec.Body.String())
			}
		}
	}
}
