package reporter_test

import (
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/metricstest"
	"github.com/otpscope/otpscope/internal/reporter"
)

// TestAlertsErrorBudgetBurn: with an objective of 99 %, a quarter of the
// last hour's logins fail, and half of the last few minutes': 25 and 50
// times the pace the budget lasts at, beyond the 14.4 that pages. The
// evaluation fires error_budget_burn over the last hour, on NATS, the
// webhook and the store; ten minutes later the last hour's pair has
// nothing in its 5 minutes but the six hours' pair still burns (6 times):
// it fires on, since its start; forty minutes later no pair holds and it
// resolves, saying each pair's pace.
func TestAlertsErrorBudgetBurn(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	hooks := startIngest(t, f)

	now := time.Now().UTC().Truncate(time.Second)
	var body []map[string]any
	logins := func(status string, n int, at time.Time) {
		for range n {
			body = append(body, map[string]any{"channel": "SMS", "otpId": uuid.NewString(), "status": status, "timestamp": at.Format(time.RFC3339)})
		}
	}
	logins("DELIVERED", 40, now.Add(-30*time.Minute))
	logins("UNDELIVERABLE", 10, now.Add(-30*time.Minute))
	logins("DELIVERED", 5, now.Add(-2*time.Minute))
	logins("UNDELIVERABLE", 5, now.Add(-2*time.Minute))
	postWebhook(t, hooks, body)
	f.WaitCount(t, "SELECT uniqExact(event_id) FROM delivery_events", uint64(len(body)))

	var mu sync.Mutex
	var posted []reporter.Alert
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v struct {
			Alert reporter.Alert `json:"alert"`
		}
		_ = json.NewDecoder(r.Body).Decode(&v)
		mu.Lock()
		posted = append(posted, v.Alert)
		mu.Unlock()
	}))
	t.Cleanup(hook.Close)
	got := subscribe(t, &traffic{f: f}, events.SubjectRoot+".alert.>")

	// Only the burn: the other rules off.
	rules := reporter.AlertRules{Window: time.Hour, MinOTPs: 20, Objective: reporter.Objective{DeliveryRate: 0.99}}
	cfg := reporter.ReportsConfig{Rules: rules, AlertWebhookURL: hook.URL, AlertRepeat: time.Hour, Dir: t.TempDir()}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reports := reporter.NewReports(cfg, f.DB, f.Broker, brokertest.Logger(t), reg)
	if v := metricstest.Must(t, reg, "otpscope_slo_budget_remaining"); !math.IsNaN(v) {
		t.Errorf("the budget left before an evaluation reads %v; want NaN", v)
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
	alerts := evaluate(to)
	if len(alerts) != 1 {
		t.Fatalf("%d alerts %+v; want error_budget_burn alone", len(alerts), alerts)
	}
	al := alerts[0]
	if al.Rule != reporter.RuleErrorBudgetBurn || al.Channel != "" || al.State != events.AlertFiring || math.Abs(al.Value-25) > 1e-9 || al.Threshold != 14.4 || al.Volume != 60 ||
		!al.From.Equal(to.Add(-time.Hour)) || !al.To.Equal(to) {
		t.Errorf("alert %+v; want error_budget_burn firing at 25× over the last hour's 60 settled journeys, 14.4× its threshold", al)
	}
	for _, part := range []string{"logins burning the error budget 25.0× as fast as it lasts over the last 1 h, at least 14.4× pages (15 of 60 settled journeys failed",
		"the last 5 min 50.0×, 5 of 10)", "objective 99.00% over 28 d: its error budget spent, 2400% over"} {
		if !strings.Contains(al.Summary, part) {
			t.Errorf("summary %q; want %q in it", al.Summary, part)
		}
	}
	// The gauges say what it judged: the budget 24 times over, each
	// window's burn rate.
	for name, want := range map[string]float64{"": -24, "5m": 50, "30m": 50, "1h": 25, "6h": 25} {
		var v float64
		if name == "" {
			v = metricstest.Must(t, reg, "otpscope_slo_budget_remaining")
		} else {
			v = metricstest.Must(t, reg, "otpscope_slo_burn_rate", "window", name)
		}
		if !(math.Abs(v-want) <= 1e-9) { // NaN is not near
			t.Errorf("gauge %q reads %v; want %v", name, v, want)
		}
	}
	if v := metricstest.Must(t, reg, "otpscope_slo_objective"); v != 0.99 {
		t.Errorf("otpscope_slo_objective reads %v", v)
	}
	if m := got.next(t); m.Subject != events.AlertSubject(reporter.RuleErrorBudgetBurn) {
		t.Errorf("published on %s", m.Subject)
	}
	f.WaitCount(t, "SELECT count() FROM alerts FINAL WHERE rule = 'error_budget_burn'", 1)
	mu.Lock()
	if len(posted) != 1 || posted[0].Rule != reporter.RuleErrorBudgetBurn {
		t.Errorf("the webhook heard %+v; want the burn", posted)
	}
	mu.Unlock()

	// The hour's summary holds its journeys to the objective: 15 of 60
	// failed, 25 times the budget's pace.
	if err := reports.Summary(ctx, reporter.KindHourly, to.Add(-time.Hour), to); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(cfg.Dir, reporter.KindHourly+"-"+to.Add(-time.Hour).UTC().Format("20060102T1504Z")+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep reporter.Report
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	if o := rep.Objective; o == nil || o.Objective != 0.99 || o.Window.Failed != 15 || o.Window.Delivered != 45 || o.BurnRate == nil || math.Abs(*o.BurnRate-25) > 1e-9 ||
		o.SLO.Failed != 15 || o.SLO.Budget == nil || o.SLO.Budget.Remaining >= 0 {
		t.Errorf("the hourly summary's objective = %+v; want 45 delivered, 15 failed, burning 25×, the budget spent", rep.Objective)
	}

	// The six hours' pair still burns: firing on, since the first.
	later := now.Add(10 * time.Minute)
	alerts = evaluate(later)
	if len(alerts) != 1 || alerts[0].State != events.AlertFiring || alerts[0].Threshold != 6 || !alerts[0].Since.Equal(to) || !alerts[0].From.Equal(later.Add(-6*time.Hour)) {
		t.Errorf("ten minutes later: %+v; want it firing on since %s, on the six hours' pair", alerts, to)
	}

	// No pair holds: resolved, each pair said.
	end := now.Add(40 * time.Minute)
	alerts = evaluate(end)
	if len(alerts) != 1 || alerts[0].State != events.AlertResolved || alerts[0].Rule != reporter.RuleErrorBudgetBurn {
		t.Fatalf("forty minutes later: %+v; want error_budget_burn resolved", alerts)
	}
	if s := alerts[0].Summary; !strings.HasPrefix(s, "logins' error budget burn back below a page's pace: 50.0× over the last 1 h, none (no settled journeys) over the last 5 min (paging at 14.4× in both); ") ||
		!strings.Contains(s, "over the last 30 min (paging at 6.0× in both)") {
		t.Errorf("resolution says %q", s)
	}
}

// Burns judges each pair on both its windows and the volume; the
// resolution says why it no longer judges once the objective is gone.
func TestErrorBudgetBurnPairs(t *testing.T) {
	to := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	figs := func(delivered, failed uint64) reporter.SLOFigures {
		f := reporter.SLOFigures{Journeys: delivered + failed, Delivered: delivered, Failed: failed}
		if delivered+failed > 0 {
			r := float64(delivered) / float64(delivered+failed)
			f.DeliveryRate = &r
		}
		return f
	}
	rules := reporter.AlertRules{MinOTPs: 50, Objective: reporter.Objective{DeliveryRate: 0.99}}
	for _, c := range []struct {
		name    string
		windows map[time.Duration]reporter.SLOFigures
		fires   float64 // the threshold of the pair that fires; 0 none
	}{
		{"the hour and its 5 minutes", map[time.Duration]reporter.SLOFigures{time.Hour: figs(80, 20), 5 * time.Minute: figs(8, 2)}, 14.4},
		{"the hour, not its 5 minutes", map[time.Duration]reporter.SLOFigures{time.Hour: figs(80, 20), 5 * time.Minute: figs(10, 0)}, 0},
		{"too few in the hour", map[time.Duration]reporter.SLOFigures{time.Hour: figs(20, 20), 5 * time.Minute: figs(2, 2)}, 0},
		{"6 hours and their 30 minutes", map[time.Duration]reporter.SLOFigures{time.Hour: figs(95, 5), 5 * time.Minute: figs(10, 1),
			6 * time.Hour: figs(560, 40), 30 * time.Minute: figs(45, 5)}, 6},
		{"a slow burn", map[time.Duration]reporter.SLOFigures{time.Hour: figs(98, 2), 5 * time.Minute: figs(10, 0),
			6 * time.Hour: figs(585, 15), 30 * time.Minute: figs(49, 1)}, 0},
	} {
		b := reporter.BurnFigures{To: to, Windows: c.windows}
		got := rules.Burns(b)
		switch {
		case c.fires == 0 && len(got) != 0:
			t.Errorf("%s: fired %+v", c.name, got)
		case c.fires != 0 && (len(got) != 1 || got[0].Threshold != c.fires):
			t.Errorf("%s: %+v; want it firing on the pair of %v", c.name, got, c.fires)
		}
		if off := (reporter.AlertRules{MinOTPs: 50}).Burns(b); len(off) != 0 {
			t.Errorf("%s without an objective: fired %+v", c.name, off)
		}
	}
	if !rules.Watches(reporter.RuleErrorBudgetBurn, "") || rules.Watches(reporter.RuleErrorBudgetBurn, "SMS") || (reporter.AlertRules{}).Watches(reporter.RuleErrorBudgetBurn, "") {
		t.Error("Watches: want error_budget_burn watched over every channel with an objective, and only then")
	}
	al := (reporter.AlertRules{}).BurnResolved(to.Add(-time.Hour), reporter.BurnFigures{To: to})
	if al.State != events.AlertResolved || !strings.HasPrefix(al.Summary, "error budget burn no longer watched: --slo-delivery-rate is 0") {
		t.Errorf("the objective gone: %+v", al)
	}
	for _, c := range []struct {
		rules reporter.AlertRules
		on    bool
		says  string
	}{
		{rules, true, "the logins burning the error budget of the objective (99.00% of settled journeys delivered over 28 d) at least 14.4× as fast as it lasts over the last 1 h and the last 5 min, or at least 6.0× as fast as it lasts over the last 6 h and the last 30 min, with at least 50 settled journeys in the longer window"},
		{reporter.AlertRules{}, false, "off: --slo-delivery-rate is 0"},
	} {
		in := (&reporter.ReportsConfig{Rules: c.rules}).InForce()
		r := in.Rules[len(in.Rules)-1]
		if r.Rule != reporter.RuleErrorBudgetBurn || r.On != c.on || r.Says != c.says {
			t.Errorf("in force: %+v; want on %v, saying %q", r, c.on, c.says)
		}
	}
}
