package reporter_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/metricstest"
	"github.com/otpscope/otpscope/internal/reporter"
)

// TestSilenceHoldsTheWebhook: SMS and WhatsApp both fail; a silence of
// delivery_rate_low on SMS holds the webhook's post of SMS's firing, not
// WhatsApp's, while both are published and listed firing (SMS's with its
// silence). Expired by hand, the silence no longer holds: the next
// evaluation posts SMS's firing, which the webhook never heard. A silence
// of every rule then holds both resolutions, which are dropped, not
// posted later. The API refuses silences that are not ones, each naming
// its field.
func TestSilenceHoldsTheWebhook(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	hooks := startIngest(t, f)
	now := time.Now().UTC().Truncate(time.Second)
	var body []map[string]any
	for _, ch := range []string{"SMS", "WHATSAPP"} {
		for range 10 {
			body = append(body, map[string]any{"channel": ch, "otpId": uuid.NewString(), "status": "UNDELIVERABLE", "timestamp": now.Add(-10 * time.Minute).Format(time.RFC3339)})
		}
	}
	postWebhook(t, hooks, body)
	f.WaitCount(t, "SELECT uniqExact(event_id) FROM delivery_events", uint64(len(body)))

	var mu sync.Mutex
	var heard []string // rule channel state
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v struct {
			Alert reporter.Alert `json:"alert"`
		}
		_ = json.NewDecoder(r.Body).Decode(&v)
		mu.Lock()
		heard = append(heard, v.Alert.Rule+" "+v.Alert.Channel+" "+v.Alert.State)
		mu.Unlock()
	}))
	t.Cleanup(hook.Close)
	took := func() []string {
		mu.Lock()
		defer mu.Unlock()
		out := heard
		heard = nil
		return out
	}

	cfg := reporter.ReportsConfig{Rules: reporter.AlertRules{Window: time.Hour, MinDeliveryRate: 0.8, MinSettled: 5}, AlertWebhookURL: hook.URL, AlertRepeat: time.Hour}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reports := reporter.NewReports(cfg, f.DB, f.Broker, brokertest.Logger(t), reg)
	router := chi.NewRouter()
	reports.MountSilences(router)
	reports.MountFiring(router)
	api := httptest.NewServer(router)
	t.Cleanup(api.Close)
	call := func(method, path, body string, into any) int {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, api.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if into != nil {
			if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
		}
		return resp.StatusCode
	}

	// What is not a silence: 400 naming the field, 413 for a body too large.
	for _, c := range []struct{ body, field string }{
		{`{"rule":"delivery_rate_lo","duration":"1h","comment":"x"}`, "rule"},
		{`{"rule":"fallback_rate_high","channel":"SMS","duration":"1h","comment":"x"}`, "channel"},
		{`{"channel":"S M S","duration":"1h","comment":"x"}`, "channel"},
		{`{"duration":"1h"}`, "comment"},
		{`{"duration":"1h","comment":"outage\u001b[2J"}`, "comment"},
		{`{"duration":"1h","comment":"x","created_by":"al\nice"}`, "created_by"},
		{`{"duration":"1h","ends_at":"` + now.Add(time.Hour).Format(time.RFC3339) + `","comment":"x"}`, "duration"},
		{`{"comment":"x"}`, "duration"},
		{`{"duration":"31d","comment":"x"}`, "duration"},
		{`{"starts_at":"` + now.Add(20*24*time.Hour).Format(time.RFC3339) + `","duration":"20d","comment":"x"}`, "duration"},
		{`{"duration":"-1h","comment":"x"}`, "duration"},
		{`{"ends_at":"` + now.Add(-time.Hour).Format(time.RFC3339) + `","comment":"x"}`, "ends_at"},
		{`{"chanel":"SMS","duration":"1h","comment":"x"}`, ""},
	} {
		var p struct {
			Field string `json:"field"`
		}
		if code := call(http.MethodPost, "/api/v1/alerts/silences", c.body, &p); code != http.StatusBadRequest || p.Field != c.field {
			t.Errorf("POST %s: %d about %q; want 400 about %q", c.body, code, p.Field, c.field)
		}
	}
	if code := call(http.MethodPost, "/api/v1/alerts/silences", `{"comment":"`+strings.Repeat("x", 70<<10)+`"}`, nil); code != http.StatusRequestEntityTooLarge {
		t.Errorf("a 70 KiB body: %d; want 413", code)
	}

	var sms reporter.Silence
	if code := call(http.MethodPost, "/api/v1/alerts/silences", `{"rule":"delivery_rate_low","channel":"sms","duration":"1h","comment":"carrier outage, ticket 42","created_by":"alice"}`, &sms); code != http.StatusCreated ||
		sms.State != reporter.SilenceActive || sms.Channel != "SMS" || sms.EndsAt.Sub(sms.StartsAt) != time.Hour || sms.CreatedBy != "alice" {
		t.Fatalf("POST a silence of SMS: %d %+v; want 201, active for an hour, the channel upper-case", code, sms)
	}
	var later reporter.Silence
	if code := call(http.MethodPost, "/api/v1/alerts/silences", `{"starts_at":"`+now.Add(10*time.Hour).Format(time.RFC3339)+`","duration":"2h","comment":"maintenance"}`, &later); code != http.StatusCreated || later.State != reporter.SilencePending {
		t.Errorf("POST a silence starting in 10 hours: %d %+v; want 201, pending", code, later)
	}

	evaluate := func(to time.Time) []reporter.Alert {
		t.Helper()
		alerts, err := reports.Evaluate(ctx, to.Add(-time.Hour), to)
		if err != nil {
			t.Fatal(err)
		}
		return alerts
	}
	to := now.Add(time.Minute)
	if alerts := evaluate(to); len(alerts) != 2 {
		t.Fatalf("%d alerts published %+v; want both channels' firings, the silenced one too", len(alerts), alerts)
	} else {
		for _, al := range alerts {
			if want := map[bool]string{true: sms.ID}[al.Channel == "SMS"]; al.SilencedBy != want {
				t.Errorf("%s's firing published silenced by %q; want %q", al.Channel, al.SilencedBy, want)
			}
		}
	}
	if got := took(); len(got) != 1 || got[0] != "delivery_rate_low WHATSAPP firing" {
		t.Errorf("the webhook heard %q; want WhatsApp's firing alone", got)
	}
	if v := metricstest.Must(t, reg, "otpscope_alert_webhook_silenced_total", "rule", reporter.RuleDeliveryRateLow); v != 1 {
		t.Errorf("otpscope_alert_webhook_silenced_total %v; want 1", v)
	}
	silencesNow := func(when string, active, pending float64) {
		t.Helper()
		if a, p := metricstest.Must(t, reg, "otpscope_alert_silences", "state", reporter.SilenceActive), metricstest.Must(t, reg, "otpscope_alert_silences", "state", reporter.SilencePending); a != active || p != pending {
			t.Errorf("%s: otpscope_alert_silences active %v, pending %v; want %v, %v", when, a, p, active, pending)
		}
	}
	silencesNow("SMS's silence and one to come", 1, 1)
	// Held again at the next evaluation, as the firing is still due: not
	// counted (or logged) again.
	evaluate(to.Add(30 * time.Second))
	if got := took(); len(got) != 0 {
		t.Errorf("the evaluation after, the webhook heard %q; want nothing", got)
	}
	if v := metricstest.Must(t, reg, "otpscope_alert_webhook_silenced_total", "rule", reporter.RuleDeliveryRateLow); v != 1 {
		t.Errorf("otpscope_alert_webhook_silenced_total %v after a second evaluation under the silence; want still 1", v)
	}
	var firing reporter.FiringResponse
	if code := call(http.MethodGet, "/api/v1/alerts/firing", "", &firing); code != http.StatusOK || len(firing.Firing) != 2 {
		t.Fatalf("/api/v1/alerts/firing: %d %+v; want both", code, firing)
	}
	for _, fa := range firing.Firing {
		silenced := fa.Channel == "SMS"
		if (fa.SilencedBy == sms.ID) != silenced || (fa.SilencedUntil != nil) != silenced || silenced && !fa.SilencedUntil.Equal(sms.EndsAt) {
			t.Errorf("/api/v1/alerts/firing lists %s silenced by %q until %v; want SMS's alone, by %s", fa.Channel, fa.SilencedBy, fa.SilencedUntil, sms.ID)
		}
	}

	// Expired by hand: the next evaluation posts SMS's firing, never heard;
	// WhatsApp's is not due again for an hour.
	var ended reporter.Silence
	if code := call(http.MethodDelete, "/api/v1/alerts/silences/"+strings.ToUpper(sms.ID), "", &ended); code != http.StatusOK || ended.State != reporter.SilenceExpired || ended.EndsAt.After(time.Now()) {
		t.Errorf("DELETE the silence: %d %+v; want 200, expired now", code, ended)
	}
	for _, id := range []string{uuid.NewString(), "not-an-id", "urn:uuid:" + uuid.NewString()} {
		if code := call(http.MethodDelete, "/api/v1/alerts/silences/"+id, "", nil); code != http.StatusNotFound {
			t.Errorf("DELETE silence %s: %d; want 404", id, code)
		}
	}
	var list reporter.SilencesResponse
	if code := call(http.MethodGet, "/api/v1/alerts/silences", "", &list); code != http.StatusOK || len(list.Silences) != 2 ||
		list.Silences[0].ID != later.ID || list.Silences[1].ID != sms.ID || list.Silences[1].State != reporter.SilenceExpired {
		t.Errorf("GET the silences: %d %+v; want the pending one, then the expired one", code, list)
	}
	evaluate(to.Add(time.Minute))
	if got := took(); len(got) != 1 || got[0] != "delivery_rate_low SMS firing" {
		t.Errorf("after the silence the webhook heard %q; want SMS's firing", got)
	}
	silencesNow("SMS's silence ended", 0, 1)

	// Every rule silenced: both resolve unheard, and are not posted later.
	var all reporter.Silence
	if code := call(http.MethodPost, "/api/v1/alerts/silences", `{"duration":"5h","comment":"every rule"}`, &all); code != http.StatusCreated || all.Rule != "" || all.Channel != "" {
		t.Fatalf("POST a silence of every rule: %d %+v", code, all)
	}
	resolved := evaluate(now.Add(3 * time.Hour))
	if len(resolved) != 2 || resolved[0].State != events.AlertResolved || resolved[1].State != events.AlertResolved ||
		resolved[0].SilencedBy != all.ID || resolved[1].SilencedBy != all.ID {
		t.Errorf("an hour without traffic published %+v; want both resolutions, silenced by %s", resolved, all.ID)
	}
	if alerts := evaluate(now.Add(3*time.Hour + time.Minute)); len(alerts) != 0 {
		t.Errorf("the evaluation after published %+v; want nothing", alerts)
	}
	if got := took(); len(got) != 0 {
		t.Errorf("under a silence of every rule the webhook heard %q; want nothing", got)
	}
	if v := metricstest.Must(t, reg, "otpscope_alert_webhook_silenced_total", "rule", reporter.RuleDeliveryRateLow); v != 3 {
		t.Errorf("otpscope_alert_webhook_silenced_total %v; want 3: a firing, two resolutions", v)
	}

	// A pending silence ended never starts.
	var never reporter.Silence
	if code := call(http.MethodDelete, "/api/v1/alerts/silences/"+later.ID, "", &never); code != http.StatusOK || never.State != reporter.SilenceExpired || !never.StartsAt.Equal(never.EndsAt) {
		t.Errorf("DELETE the pending silence: %d %+v; want 200, expired, starting where it ends", code, never)
	}

	// The command line: a silence, the list, its end, each said in words.
	var out strings.Builder
	cli := reporter.AlertsCLIConfig{APIFlags: reporter.APIFlags{API: api.URL}, Rule: "delivery_slow", Channel: "voice", For: "90m", Comment: "voice vendor migrating", By: "bob"}
	if err := cli.Check("silence", map[string]bool{"rule": true, "channel": true, "for": true, "comment": true, "by": true}); err != nil {
		t.Fatal(err)
	}
	if err := reporter.RunAlerts(ctx, "silence", cli, &out); err != nil || !strings.Contains(out.String(), "delivery_slow on VOICE held until ") ||
		!strings.Contains(out.String(), "(voice vendor migrating, by bob)") || !strings.Contains(out.String(), "otpscope alerts unsilence --id ") {
		t.Fatalf("otpscope alerts silence: %v\n%s", err, out.String())
	}
	id := regexp.MustCompile(`^silence ([0-9a-f-]{36}):`).FindStringSubmatch(out.String())
	if id == nil {
		t.Fatalf("otpscope alerts silence names no id:\n%s", out.String())
	}
	out.Reset()
	if err := reporter.RunAlerts(ctx, "silences", cli, &out); err != nil || !strings.Contains(out.String(), "active   "+id[1]+"  delivery_slow on VOICE held until ") ||
		!strings.Contains(out.String(), "expired  "+sms.ID+"  delivery_rate_low on SMS was held until ") {
		t.Errorf("otpscope alerts silences: %v\n%s", err, out.String())
	}
	out.Reset()
	cli.ID = id[1]
	if err := reporter.RunAlerts(ctx, "unsilence", cli, &out); err != nil || !strings.HasPrefix(out.String(), "silence "+id[1]+" ended: delivery_slow on VOICE was held until ") {
		t.Errorf("otpscope alerts unsilence: %v\n%s", err, out.String())
	}
	for _, c := range []struct {
		action string
		cfg    reporter.AlertsCLIConfig
		set    []string
		want   string
	}{
		{"silence", reporter.AlertsCLIConfig{For: "1h"}, []string{"for"}, "--comment is required"},
		{"silence", reporter.AlertsCLIConfig{For: "1h", Until: "2026-12-07T18:00:00Z", Comment: "x"}, []string{"for", "until", "comment"}, "one of them"},
		{"silence", reporter.AlertsCLIConfig{Until: "18:00", Comment: "x"}, []string{"until", "comment"}, "want RFC 3339"},
		{"unsilence", reporter.AlertsCLIConfig{}, nil, "--id is required"},
		{"silences", reporter.AlertsCLIConfig{Rule: "delivery_slow"}, []string{"rule"}, "--rule is not a flag of otpscope alerts silences"},
		{"mute", reporter.AlertsCLIConfig{}, nil, "want: otpscope alerts rules|test|silences|silence|unsilence"},
	} {
		set := map[string]bool{}
		for _, f := range c.set {
			set[f] = true
		}
		if err := c.cfg.Check(c.action, set); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("otpscope alerts %s %v: %v; want %q", c.action, c.set, err, c.want)
		}
	}
}
