package reporter_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/reporter"
	"github.com/otpscope/otpscope/internal/tooltest"
	"github.com/otpscope/otpscope/internal/webtest"
)

// amNotification is what Alertmanager's webhook receiver sends.
type amNotification struct {
	Status string `json:"status"`
	Alerts []struct {
		Status string            `json:"status"`
		Labels map[string]string `json:"labels"`
	} `json:"alerts"`
}

// amAlert is an alert as Alertmanager's GET /api/v2/alerts lists it.
type amAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Status       struct {
		State string `json:"state"`
	} `json:"status"`
}

// alertmanager is a real Alertmanager (Debian's, from make setup-test)
// routing every alert to a webhook receiver of the test's, grouped by rule
// and channel, at once, with resolutions.
type alertmanager struct {
	url string
	mu  sync.Mutex
	got []amNotification
}

func startAlertmanager(t *testing.T) *alertmanager {
	t.Helper()
	bin := tooltest.Program(t, "OTPSCOPE_ALERTMANAGER", "alertmanager/alertmanager")
	am := &alertmanager{}
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n amNotification
		if err := json.NewDecoder(r.Body).Decode(&n); err != nil {
			t.Errorf("Alertmanager's notification does not decode: %v", err)
		}
		am.mu.Lock()
		am.got = append(am.got, n)
		am.mu.Unlock()
	}))
	t.Cleanup(receiver.Close)
	dir := t.TempDir()
	config := fmt.Sprintf(`route:
  receiver: test
  group_by: [alertname, channel]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: test
    webhook_configs:
      - url: %s
        send_resolved: true
`, receiver.URL)
	if err := os.WriteFile(filepath.Join(dir, "alertmanager.yml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := webtest.FreeAddr(t)
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "alertmanager.yml"), "--storage.path="+dir,
		"--web.listen-address="+addr, "--cluster.listen-address=", "--log.level=warn")
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("Alertmanager's log:\n%s", log.String())
		}
	})
	am.url = "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(am.url + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return am
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("Alertmanager not ready at %s after 30s: %v\n%s", am.url, err, log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// alerts lists the alerts Alertmanager holds, active or not.
func (am *alertmanager) alerts(t *testing.T) []amAlert {
	t.Helper()
	var out []amAlert
	webtest.GetJSON(t, am.url+"/api/v2/alerts", &out)
	return out
}

// waitNotified waits until Alertmanager has notified the receiver of n
// alerts in status (firing or resolved), counting each alert's first.
func (am *alertmanager) waitNotified(t *testing.T, status string, n int) map[string]bool {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		seen := map[string]bool{}
		am.mu.Lock()
		for _, note := range am.got {
			for _, a := range note.Alerts {
				if a.Status == status {
					seen[a.Labels["alertname"]+"/"+a.Labels["channel"]] = true
				}
			}
		}
		am.mu.Unlock()
		if len(seen) >= n {
			return seen
		}
		if time.Now().After(deadline) {
			t.Fatalf("Alertmanager notified %d alerts %s after 20s: %v; want %d", len(seen), status, seen, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// testAlertmanager: the alerts an evaluation publishes reach a real
// Alertmanager, which notifies its receiver of each rule firing and of its
// resolution; one that cannot be reached fails the evaluation, counted,
// without stopping the others or leaking a password.
func testAlertmanager(t *testing.T, tr *traffic) {
	ctx := t.Context()
	am := startAlertmanager(t)
	w := tr.window()
	at := w.To.Add(5 * time.Hour) // after the alerts subtest's evaluations
	strict := reporter.AlertRules{Window: time.Hour, MinDeliveryRate: 0.99, MinSettled: 10, MaxFallbackRate: 0.01, MinOTPs: 10}
	lenient := reporter.AlertRules{Window: time.Hour, MinDeliveryRate: 0.01, MinSettled: 10, MaxFallbackRate: 0.99, MinOTPs: 10}
	evaluate := func(rules reporter.AlertRules, urls []string, at time.Time) ([]reporter.Alert, *prometheus.Registry, error) {
		t.Helper()
		reg := prometheus.NewRegistry()
		cfg := reporter.ReportsConfig{Rules: rules, AlertmanagerURLs: urls, AlertLabels: reporter.Labels{"env": "test", "severity": "page"},
			ConsoleURL: "https://otpscope.example.com/console/"}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		alerts, err := reporter.NewReports(cfg, tr.f.DB, tr.f.Broker, brokertest.Logger(t), reg).Evaluate(ctx, w.From, at)
		return alerts, reg, err
	}
	// Whatever fires from earlier subtests resolves first, unposted.
	if _, _, err := evaluate(lenient, nil, at); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	firing, _, err := evaluate(strict, []string{am.url}, at.Add(time.Minute))
	if err != nil || len(firing) < 2 {
		t.Fatalf("strict rules: %d alerts, %v; want two or more firing", len(firing), err)
	}
	am.waitNotified(t, "firing", len(firing))
	held := am.alerts(t)
	if len(held) != len(firing) {
		t.Fatalf("Alertmanager holds %d alerts; want the %d firing", len(held), len(firing))
	}
	for _, a := range held {
		al := byRule(firing, a.Labels["alertname"], a.Labels["channel"])
		switch {
		case al == nil:
			t.Errorf("Alertmanager holds %v; no such alert fired", a.Labels)
		case a.Status.State != "active" || !a.StartsAt.Equal(al.Since) || a.Annotations["summary"] != al.Summary:
			t.Errorf("Alertmanager holds %+v; want it active since %v, saying %q", a, al.Since, al.Summary)
		case a.Labels["env"] != "test" || a.Labels["severity"] != "page" || a.Labels["service"] != "otpscope":
			t.Errorf("labels %v; want env=test and severity=page from --alert-labels, service=otpscope", a.Labels)
		case a.GeneratorURL != consoleLink(al):
			t.Errorf("generatorURL %q; want the console's overview of the alert's window and channel, from --console-url: %q", a.GeneratorURL, consoleLink(al))
		case a.EndsAt.Before(start.Add(20*time.Minute)) || a.EndsAt.After(time.Now().Add(20*time.Minute)):
			t.Errorf("ends at %v; want four evaluation intervals (5 min without a schedule) after the post", a.EndsAt)
		}
		if (al != nil && al.Rule == reporter.RuleFallbackRateHigh) != (a.Labels["channel"] == "") {
			t.Errorf("labels %v: want a channel label on every rule but the fallback rate's", a.Labels)
		}
	}

	// An Alertmanager that cannot be reached fails the evaluation, counted,
	// its password unsaid; the other still hears of every firing.
	dead := "http://otpscope:s3cret@" + webtest.FreeAddr(t)
	again, reg, err := evaluate(strict, []string{dead, am.url}, at.Add(2*time.Minute))
	if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "alertmanager") {
		t.Errorf("evaluation with an Alertmanager down: %v; want its error, without the password", err)
	}
	if len(again) != len(firing) {
		t.Errorf("evaluation with an Alertmanager down published %d alerts; want %d", len(again), len(firing))
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`# HELP otpscope_alertmanager_posts_total POSTs of an evaluation's alerts to an Alertmanager, by outcome.
# TYPE otpscope_alertmanager_posts_total counter
otpscope_alertmanager_posts_total{outcome="error"} 1
otpscope_alertmanager_posts_total{outcome="ok"} 1
`), "otpscope_alertmanager_posts_total"); err != nil {
		t.Errorf("posts counted: %v", err)
	}

	// The rules hold no longer: Alertmanager hears of each resolution and
	// notifies it.
	resolved, _, err := evaluate(lenient, []string{am.url}, at.Add(3*time.Minute))
	if err != nil || len(resolved) != len(firing) {
		t.Fatalf("lenient rules: %d alerts, %v; want the %d resolved", len(resolved), err, len(firing))
	}
	for _, al := range resolved {
		if al.State != events.AlertResolved {
			t.Errorf("%+v; want resolved", al)
		}
	}
	am.waitNotified(t, "resolved", len(firing))
	for _, a := range am.alerts(t) {
		if a.EndsAt.After(time.Now()) {
			t.Errorf("after the resolutions Alertmanager holds %v ending at %v; want it ended", a.Labels, a.EndsAt)
		}
	}
}

func TestAlertLabelsFlag(t *testing.T) {
	var l reporter.Labels
	if err := l.Set(" env=prod, team=auth "); err != nil || l.String() != "env=prod,team=auth" {
		t.Errorf("Set(env=prod, team=auth) = %v, %q", err, l.String())
	}
	for _, bad := range []string{"env", "env=", "1x=a", "__name=a", "alertname=x", "channel=SMS", "a=1,a=2", "bad-name=x"} {
		if err := l.Set(bad); err == nil {
			t.Errorf("Set(%q) accepted", bad)
		}
	}
	for _, c := range []struct {
		url string
		ok  bool
	}{{"http://alertmanager:9093", true}, {"https://u:p@am.example/prefix", true}, {"am:9093", false}, {"ftp://am", false}, {"http://am/?x=1", false}} {
		cfg := reporter.ReportsConfig{AlertmanagerURLs: []string{c.url}}
		if err := cfg.Validate(); (err == nil) != c.ok {
			t.Errorf("--alertmanager-url %s: %v; want accepted %v", c.url, err, c.ok)
		}
	}
	cfg := reporter.ReportsConfig{AlertmanagerURLs: []string{"http://u:hidden@am:9093/?q"}}
	if err := cfg.Validate(); err == nil || strings.Contains(err.Error(), "hidden") {
		t.Errorf("a refused URL's error %v quotes its password", err)
	}
}

// TestAlertmanagerURLIsBase: --alertmanager-url is Alertmanager's base URL;
// one that ends in its API path already is refused, else the alerts went
// to …/api/v2/alerts/api/v2/alerts.
func TestAlertmanagerURLIsBase(t *testing.T) {
	for _, c := range []struct {
		url string
		ok  bool
	}{
		{"http://alertmanager:9093", true},
		{"http://alertmanager:9093/", true},
		{"https://am.example/alertmanager", true},
		{"https://am.example/apis", true},
		{"http://am:9093/api/v2/alerts", false},
		{"http://am:9093/api/v2/alerts/", false},
		{"http://am:9093/api/v1/alerts", false},
		{"http://am:9093/api/v2", false},
		{"https://u:hidden@am.example/alertmanager/api/v2/alerts", false},
	} {
		err := reporter.CheckAlertmanagerURL(c.url)
		if (err == nil) != c.ok {
			t.Errorf("--alertmanager-url %s: %v; want accepted %v", c.url, err, c.ok)
		}
		if err != nil && (!strings.Contains(err.Error(), "alertmanager-url") || !strings.Contains(err.Error(), "base URL") || strings.Contains(err.Error(), "hidden")) {
			t.Errorf("--alertmanager-url %s: %v; want the flag named, the base URL asked for, no password", c.url, err)
		}
	}
}
