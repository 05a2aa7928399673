package reporter_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/metricstest"
	"github.com/otpscope/otpscope/internal/polltest"
	"github.com/otpscope/otpscope/internal/reporter"
	"github.com/otpscope/otpscope/internal/webtest"
)

// waitFor polls cond for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestReportsSeriesFromStart: the runs' and posts' counters of what the
// configuration schedules are there at 0 from the start, so that the first
// failure is an increase Prometheus sees; a kind not scheduled, and posts
// to nothing configured, have no series.
func TestReportsSeriesFromStart(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := reporter.ReportsConfig{Hourly: reporter.DefaultReportHourly, Alerts: reporter.DefaultAlerts, Rollups: reporter.DefaultRollups,
		AlertWebhookURL: "http://127.0.0.1:41001/hook", BackupSchedule: "0 3 * * *"}
	r := reporter.NewReports(cfg, nil, nil, brokertest.Logger(t), reg)
	if _, ok := metricstest.Value(t, reg, "otpscope_reports_total", "kind", "backup"); ok {
		t.Error("backup runs counted before there is anything to take them (WithBackups)")
	}
	r.WithBackups(reporter.NewBackups(nil, nil, brokertest.Logger(t), nil))
	for _, kind := range []string{"hourly", "alerts", "rollups", "backup"} {
		for _, outcome := range []string{"ok", "error"} {
			if v, ok := metricstest.Value(t, reg, "otpscope_reports_total", "kind", kind, "outcome", outcome); !ok || v != 0 {
				t.Errorf("otpscope_reports_total{kind=%q,outcome=%q} = %v (there: %v); want 0 from the start", kind, outcome, v, ok)
			}
		}
		for _, name := range []string{"otpscope_reports_last_success_timestamp_seconds", "otpscope_reports_due_timestamp_seconds"} {
			if v, ok := metricstest.Value(t, reg, name, "kind", kind); !ok || v != 0 {
				t.Errorf("%s{kind=%q} = %v (there: %v); want 0 until a run", name, kind, v, ok)
			}
		}
	}
	for _, outcome := range []string{"ok", "error"} {
		if v, ok := metricstest.Value(t, reg, "otpscope_alert_webhook_posts_total", "outcome", outcome); !ok || v != 0 {
			t.Errorf("otpscope_alert_webhook_posts_total{outcome=%q} = %v (there: %v); want 0 from the start", outcome, v, ok)
		}
	}
	if _, ok := metricstest.Value(t, reg, "otpscope_reports_total", "kind", "daily"); ok {
		t.Error("a series of the daily summary, which is not scheduled")
	}
	if _, ok := metricstest.Value(t, reg, "otpscope_alertmanager_posts_total"); ok {
		t.Error("Alertmanager posts counted without an --alertmanager-url")
	}
	if v, ok := metricstest.Value(t, reg, "otpscope_reporter_leader"); !ok || v != 0 {
		t.Errorf("otpscope_reporter_leader = %v (there: %v); want 0 before the lease", v, ok)
	}
}

// TestReportsLeaseAndDeadlines: two reporters on one NATS. The one that
// takes the lease says so (otpscope_reporter_leader), runs the rollup job
// on the real engine, and records its success and when the next is
// overdue (two intervals and the run's timeout later); the other runs
// nothing and has no deadline. Stopped, the first hands the lease over
// and its deadline goes; the second's starts when it takes the lease.
func TestReportsLeaseAndDeadlines(t *testing.T) {
	f := newFixture(t)
	cfg := reporter.ReportsConfig{Rollups: "@every 1s"}
	start := func() (*prometheus.Registry, func()) {
		reg := prometheus.NewRegistry()
		r := reporter.NewReports(cfg, f.DB, f.Broker, brokertest.Logger(t), reg)
		return reg, run(t, func(ctx context.Context) error {
			return reporter.RunReportsLeased(ctx, f.Broker, r, brokertest.Logger(t))
		})
	}
	leading := func(reg *prometheus.Registry) func() bool {
		return func() bool { v, _ := metricstest.Value(t, reg, "otpscope_reporter_leader"); return v == 1 }
	}
	gauge := func(reg *prometheus.Registry, name string) float64 {
		v, _ := metricstest.Value(t, reg, name, "kind", "rollups")
		return v
	}

	first, stop := start()
	waitFor(t, 20*time.Second, "the first reporter never held the lease", leading(first))
	waitFor(t, 20*time.Second, "no rollup run succeeded", func() bool {
		v, _ := metricstest.Value(t, first, "otpscope_reports_total", "kind", "rollups", "outcome", "ok")
		return v >= 1
	})
	success, due := gauge(first, "otpscope_reports_last_success_timestamp_seconds"), gauge(first, "otpscope_reports_due_timestamp_seconds")
	now := float64(time.Now().Unix())
	if success < now-10 || success > now+1 {
		t.Errorf("last success %v; want about now, %v", success, now)
	}
	// Every second: due two seconds and the rollups' 30 minutes after it.
	if want := success + 2 + 30*60; due < want-1 || due > want+1 {
		t.Errorf("due %v, %v after the last success; want 30 min 2 s after", due, due-success)
	}

	second, _ := start()
	time.Sleep(2 * time.Second)
	if v, _ := metricstest.Value(t, second, "otpscope_reporter_leader"); v != 0 {
		t.Errorf("otpscope_reporter_leader %v on the second reporter while the first holds the lease; want 0", v)
	}
	if v := gauge(second, "otpscope_reports_due_timestamp_seconds"); v != 0 {
		t.Errorf("the second reporter's rollups due at %v; want 0 while it does not hold the lease", v)
	}

	stop()
	if v, _ := metricstest.Value(t, first, "otpscope_reporter_leader"); v != 0 {
		t.Errorf("otpscope_reporter_leader %v on the reporter stopped; want 0", v)
	}
	if v := gauge(first, "otpscope_reports_due_timestamp_seconds"); v != 0 {
		t.Errorf("the stopped reporter's rollups due at %v; want 0", v)
	}
	took := time.Now()
	waitFor(t, 20*time.Second, "the second reporter never took the lease", leading(second))
	if due := gauge(second, "otpscope_reports_due_timestamp_seconds"); due < float64(took.Unix())+30*60 {
		t.Errorf("the second reporter's rollups due at %v; want 30 min 2 s after it took the lease (%v) at least", due, took.Unix())
	}
}

// hangingBackups are the real backups of f's store whose sink position
// never comes (a NATS that does not answer): a backup run hangs until its
// context ends. Each run that starts is told on started.
func hangingBackups(t *testing.T, f *fixture) (*reporter.Backups, chan struct{}) {
	started := make(chan struct{}, 100)
	return reporter.NewBackups(f.DB, func(ctx context.Context) (uint64, error) {
		started <- struct{}{}
		<-ctx.Done()
		return 0, ctx.Err()
	}, brokertest.Logger(t), nil), started
}

// TestScheduledRunTimeout: a backup run that hangs is cut short by its
// kind's timeout and counted as failed, and the later runs go on; without
// the timeout the first held back every later one (cron skips a run while
// the last one runs), counted nowhere.
func TestScheduledRunTimeout(t *testing.T) {
	f := newFixture(t)
	reporter.SetRunTimeout(t, "backup", 300*time.Millisecond)
	backups, _ := hangingBackups(t, f)
	reg := prometheus.NewRegistry()
	r := reporter.NewReports(reporter.ReportsConfig{BackupSchedule: "@every 1s"}, f.DB, f.Broker, brokertest.Logger(t), reg).WithBackups(backups)
	runSchedule(t, r)
	waitFor(t, 15*time.Second, "no two backup runs counted as failed", func() bool {
		v, _ := metricstest.Value(t, reg, "otpscope_reports_total", "kind", "backup", "outcome", "error")
		return v >= 2
	})
	if v, _ := metricstest.Value(t, reg, "otpscope_reports_last_success_timestamp_seconds", "kind", "backup"); v != 0 {
		t.Errorf("last backup success %v; want none", v)
	}
}

// TestRunStoppedNotFailed: a run cut short because the schedule stops (the
// lease lost, the process stopping) did not fail: it counts neither way.
func TestRunStoppedNotFailed(t *testing.T) {
	f := newFixture(t)
	backups, started := hangingBackups(t, f)
	reg := prometheus.NewRegistry()
	r := reporter.NewReports(reporter.ReportsConfig{BackupSchedule: "@every 1s"}, f.DB, f.Broker, brokertest.Logger(t), reg).WithBackups(backups)
	stop := runSchedule(t, r)
	select {
	case <-started:
	case <-time.After(15 * time.Second):
		t.Fatal("no backup run started")
	}
	stop()
	for _, outcome := range []string{"ok", "error"} {
		if v, _ := metricstest.Value(t, reg, "otpscope_reports_total", "kind", "backup", "outcome", outcome); v != 0 {
			t.Errorf("otpscope_reports_total{kind=\"backup\",outcome=%q} = %v after a run the stop cut short; want 0", outcome, v)
		}
	}
}

// TestScheduledAlertsNotifyFailure: a webhook that answers 502 and an
// Alertmanager that cannot be reached are counted as their posts' failures
// (OtpscopeAlertWebhookFailing, OtpscopeAlertmanagerFailing), not as the
// evaluation's: the alerts were evaluated and published, and
// OtpscopeReportsFailing{kind="alerts"} would say they did not run.
func TestScheduledAlertsNotifyFailure(t *testing.T) {
	f := newFixture(t)
	hooks := startIngest(t, f)
	var body []map[string]any
	for range 10 {
		body = append(body, map[string]any{"channel": "SMS", "otpId": uuid.NewString(), "status": "UNDELIVERABLE",
			"timestamp": time.Now().UTC().Add(-10 * time.Minute).Format(time.RFC3339)})
	}
	postWebhook(t, hooks, body)
	f.WaitCount(t, "SELECT uniqExact(event_id) FROM delivery_events", uint64(len(body)))

	// A Slack-style webhook that cannot be reached: its secret is its path.
	cfg := reporter.ReportsConfig{Alerts: "@every 1s", AlertWebhookURL: "http://" + webtest.FreeAddr(t) + "/services/T0/B0/hooksecret", AlertmanagerURLs: []string{"http://" + webtest.FreeAddr(t)},
		Rules: reporter.AlertRules{Window: time.Hour, MinDeliveryRate: 0.8, MinSettled: 5}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	var logs polltest.Buffer
	r := reporter.NewReports(cfg, f.DB, f.Broker, slog.New(slog.NewTextHandler(&logs, nil)), reg)
	stop := runSchedule(t, r)
	waitFor(t, 20*time.Second, "no two evaluations whose posts failed", func() bool {
		hooked, _ := metricstest.Value(t, reg, "otpscope_alert_webhook_posts_total", "outcome", "error")
		am, _ := metricstest.Value(t, reg, "otpscope_alertmanager_posts_total", "outcome", "error")
		return hooked >= 2 && am >= 2
	})
	stop()
	ok, _ := metricstest.Value(t, reg, "otpscope_reports_total", "kind", "alerts", "outcome", "ok")
	failed, _ := metricstest.Value(t, reg, "otpscope_reports_total", "kind", "alerts", "outcome", "error")
	if failed != 0 || ok < 2 {
		t.Errorf("alert evaluations counted %v ok, %v failed; want every one ok: the posts failed, not the evaluation", ok, failed)
	}
	if fired, _ := metricstest.Value(t, reg, "otpscope_alerts_fired_total", "rule", reporter.RuleDeliveryRateLow); fired < 2 {
		t.Errorf("%v firings published; want one each evaluation", fired)
	}
	// The failures are logged without the webhook's secret path, which the
	// HTTP client's error quoted into every line.
	if l := logs.String(); !strings.Contains(l, "alert webhook") || strings.Contains(l, "hooksecret") {
		t.Errorf("logs lack the webhook's failure, or quote its secret path:\n%s", l)
	}
}

// runSchedule runs r's schedule until the test ends or stop is called,
// which waits for Run to return.
func runSchedule(t *testing.T, r *reporter.Reports) (stop func()) { return run(t, r.Run) }

// run runs fn until the test ends or stop is called, which waits for fn
// to return.
func run(t *testing.T, fn func(context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// TestLeaseHolderReadsNewestBackup: a reporter that read the backups as it
// started and takes the lease later reads them again, so that its
// otpscope_backup_last_taken_timestamp_seconds is the backup another
// replica took meanwhile, not the one it knew at start (which, the other
// gone, fired OtpscopeBackupsStale two days on).
func TestLeaseHolderReadsNewestBackup(t *testing.T) {
	f := newFixture(t)
	reg := prometheus.NewRegistry()
	backups := reporter.NewBackups(f.DB, nil, brokertest.Logger(t), reg)
	if err := backups.Watch(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Another replica's backup, an hour ago.
	taken := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	if err := f.DB.Conn().Exec(t.Context(), fmt.Sprintf(`INSERT INTO backups (name, started_at, stream_seq, status, bytes, files, error, updated_at)
		VALUES ('otpscope-scheduled-elsewhere', toDateTime64('%s', 3, 'UTC'), 7, 'created', 1, 1, '', now64(3))`, taken.Format(time.DateTime))); err != nil {
		t.Fatal(err)
	}
	r := reporter.NewReports(reporter.ReportsConfig{BackupSchedule: "0 3 * * *"}, f.DB, f.Broker, brokertest.Logger(t), nil).WithBackups(backups)
	runSchedule(t, r)
	waitFor(t, 10*time.Second, "the newest backup not read when the schedule started", func() bool {
		v, _ := metricstest.Value(t, reg, "otpscope_backup_last_taken_timestamp_seconds")
		return v == float64(taken.Unix())
	})
}
