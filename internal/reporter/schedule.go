package reporter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/robfig/cron/v3"

	"github.com/otpscope/otpscope/internal/cronspec"
	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/flagenv"
	"github.com/otpscope/otpscope/internal/httpurl"
	"github.com/otpscope/otpscope/internal/store"
)

// ReportsConfig schedules the summaries and alerts. Cron specs have five
// fields (minute hour day month weekday) and run in UTC, but for a
// CRON_TZ= prefix, which the summaries refuse (checkUTC: theirs is
// Timezone); "" disables a job.
type ReportsConfig struct {
	// Hourly reports the previous whole hour of Timezone's clock; Daily
	// the previous day of Timezone, from midnight to midnight (23 or 25
	// hours when its clocks change), on a schedule read on its clock;
	// Weekly the previous week of Timezone, Monday's midnight to Monday's
	// (ISO 8601's week), on its clock too. Hourly's schedule stays on UTC's clock, which fires every hour once
	// whatever a zone's clocks do: in a zone whose offset is not whole
	// hours (Asia/Kolkata) an hour ends at :30 UTC, so pick its minute.
	Hourly string
	Daily  string
	Weekly string
	// Timezone is the summaries' IANA time zone; "" is UTC. Their trends'
	// buckets follow its clock too, and the alerts' words (Rules.Zone).
	Timezone string
	// Dir receives each report as <kind>-<start>.json, .csv and .html; "" writes none.
	Dir string
	// Alerts is when the alert rules are evaluated.
	Alerts string
	Rules  AlertRules
	// AlertWebhookURL, when set, receives as a Slack-compatible POST each
	// rule that begins to fire, again every AlertRepeat while it fires (never
	// when 0), and its resolution.
	AlertWebhookURL string
	AlertRepeat     time.Duration
	// AlertmanagerURLs, when set, each hear of every alert each evaluation
	// publishes (alertmanager.go); AlertLabels are added to their labels.
	AlertmanagerURLs flagenv.List
	AlertLabels      Labels
	// ConsoleURL is the console as the alerts' readers reach it; alerts
	// link to its overview of their window and channel (alertLink).
	ConsoleURL string
	// RunbookURL is the team's page of what to do when an alert fires,
	// {rule} and {channel} replaced by the alert's (runbookLink).
	RunbookURL string
	// AlertFor is how long a rule must hold, at every evaluation, before it
	// fires (Prometheus' for:); 0 fires at the first evaluation.
	AlertFor time.Duration
	// AlertKeepFiringFor is how long a firing rule that holds no longer
	// stays firing (Prometheus' keep_firing_for:); 0 resolves it at the
	// first evaluation it does not hold at.
	AlertKeepFiringFor time.Duration
	// Rollups is when the hourly rollups of the hours that inserts marked
	// since the last run (new, late or replayed data) are recomputed.
	Rollups string
	// BackupSchedule is when a backup is taken (README, "Backups and
	// restores"), keeping the newest BackupKeep (0: all).
	BackupSchedule string
	BackupKeep     int
}

// Defaults of the report schedule: a few minutes after the window closes, so
// that late webhooks and polled facts are in. The hourly one waits a
// quarter of an hour: a report is published once, and the OTPs of the
// hour's last minutes that will expire unverified are final only once
// their validity (5 min by default) has run out and the poller has read
// them; at :05 an hour's verification rate still leaned high (79 EXPIRED
// of 5,825 statuses missing in the demo).
const (
	DefaultReportHourly = "15 * * * *"
	DefaultReportDaily  = "15 0 * * *"
	// DefaultReportWeekly comes on Mondays after the daily one: a week's
	// report reads seven days.
	DefaultReportWeekly = "30 0 * * 1"
	DefaultAlerts       = "*/5 * * * *"
	// DefaultRollups runs the rollup job every minute: a run recomputes only
	// the hours marked since the last one (about a second of work at 10 M
	// events, bench/analytics), and until it runs readers compute those
	// hours live.
	DefaultRollups = "* * * * *"
	// DefaultBackupKeep is a week of daily backups.
	DefaultBackupKeep = 7
)

// RegisterFlags registers the report and alert flags.
func (c *ReportsConfig) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Hourly, "report-hourly", DefaultReportHourly, "cron spec (UTC) of the hourly summary of the previous hour (of --report-timezone's clock); empty disables")
	fs.StringVar(&c.Daily, "report-daily", DefaultReportDaily, "cron spec (on --report-timezone's clock) of the daily summary of the previous day; empty disables")
	fs.StringVar(&c.Weekly, "report-weekly", DefaultReportWeekly, "cron spec (on --report-timezone's clock) of the weekly summary of the previous week, Monday to Monday; empty disables")
	fs.StringVar(&c.Timezone, "report-timezone", "UTC", "time zone (an IANA name such as Europe/Berlin) of the summaries: the daily one covers the previous day from local midnight and runs on local time, the weekly one the previous week from Monday's, the hourly one the previous local hour; their trends' buckets follow it, and the alerts' summaries give their times on its clock")
	fs.StringVar(&c.Dir, "report-dir", "", "directory for report files (JSON, CSV, HTML); empty writes none")
	fs.StringVar(&c.Alerts, "alert-schedule", DefaultAlerts, "cron spec (UTC) of alert evaluation; empty disables")
	fs.DurationVar(&c.Rules.Window, "alert-window", time.Hour, "window the alert rules look back over")
	fs.Float64Var(&c.Rules.MinDeliveryRate, "alert-min-delivery-rate", DefaultMinDeliveryRate, "alert when a channel's delivery rate is below this (0 disables)")
	fs.Var(&c.Rules.ChannelMinDeliveryRate, "alert-channel-min-delivery-rate", "per-channel thresholds of the delivery-rate alert, overriding --alert-min-delivery-rate, e.g. SMS=0.95,VOICE=0.7,SILENT=0 (0 turns it off for that channel)")
	fs.Uint64Var(&c.Rules.MinSettled, "alert-min-attempts", 50, "settled attempts a channel needs in the window before its delivery rate alerts (delivered attempts, before its dispatch-to-delivery latency does)")
	fs.DurationVar(&c.Rules.MaxLatencyP95, "alert-max-latency-p95", DefaultMaxLatencyP95, "alert when a channel's p95 time from dispatch to delivery is above this, with --alert-min-attempts delivered attempts (0 disables)")
	fs.Var(&c.Rules.ChannelMaxLatencyP95, "alert-channel-max-latency-p95", "per-channel thresholds of the latency alert, overriding --alert-max-latency-p95, e.g. SMS=30s,VOICE=2m (0 turns it off for that channel)")
	fs.Float64Var(&c.Rules.MaxDeliveryRateDrop, "alert-max-delivery-rate-drop", 0, "alert when a channel's delivery rate is more than this (0.1: ten points) below its rate in the window before, as long and ending where --alert-window starts, with --alert-min-attempts settled attempts in each (0 disables)")
	fs.Float64Var(&c.Rules.DropConfidence, "alert-delivery-rate-drop-confidence", DefaultDropConfidence, "how sure delivery_rate_drop must be that a fall is not chance: it fires only when Fisher's exact test of the two windows' settled attempts gives a fall as large, were nothing changed, a chance below 1 minus this (0.95: under 5%); 0 judges on points alone; within 0..1, 1 excluded")
	fs.Var(&c.Rules.ChannelMaxDeliveryRateDrop, "alert-channel-max-delivery-rate-drop", "per-channel limits of the delivery-rate drop alert, overriding --alert-max-delivery-rate-drop, e.g. SMS=0.05,PUSH=0 (0 turns it off for that channel)")
	fs.Float64Var(&c.Rules.MaxFallbackRate, "alert-max-fallback-rate", DefaultMaxFallbackRate, "alert when the share of journeys (logins, whether or not an OTP was sent) that fell back is above this (0 disables)")
	fs.Uint64Var(&c.Rules.MinOTPs, "alert-min-otps", 50, "journeys (logins, whether or not an OTP was sent) needed in the window before the fallback rate alerts")
	fs.StringVar(&c.AlertWebhookURL, "alert-webhook-url", "", "POST alerts here as Slack-compatible JSON: a rule that begins to fire, again every --alert-repeat while it fires, and its resolution; empty posts none")
	fs.Var(&c.AlertmanagerURLs, "alertmanager-url", "Alertmanager to post every firing and resolution to, at each evaluation (its base URL, e.g. http://alertmanager:9093; repeat or comma-separate for each of an HA cluster; user:password@ for basic auth)")
	fs.Var(&c.AlertLabels, "alert-labels", "labels added to the alerts posted to Alertmanager, e.g. env=prod,team=auth (severity=warning and service=otpscope unless given)")
	fs.StringVar(&c.ConsoleURL, "console-url", "", "the console's address as the alerts' readers reach it, e.g. https://otpscope.example.com/console/: the webhook's text and Alertmanager's generatorURL link each alert to its overview of the alert's window and channel, and an admin API beyond loopback without --api-token answers a browser by its host; empty links none")
	fs.StringVar(&c.RunbookURL, "alert-runbook-url", "", "the team's page of what to do when an alert fires, e.g. https://wiki.example.com/otpscope#{rule}: {rule} and {channel} are replaced by the alert's (channel empty for the fallback rate); Alertmanager's alerts carry it as their runbook_url annotation, the webhook's firing text and JSON name it; empty names none")
	fs.DurationVar(&c.AlertRepeat, "alert-repeat", DefaultAlertRepeat, "how often the webhook hears again of a rule that stays firing; 0 never")
	fs.DurationVar(&c.AlertFor, "alert-for", 0, "how long a rule must hold, at every evaluation, before it fires (as Prometheus' for:); 0 fires at once")
	fs.DurationVar(&c.AlertKeepFiringFor, "alert-keep-firing-for", 0, "how long a firing rule that no longer holds stays firing before it resolves (as Prometheus' keep_firing_for:), so that a figure wavering about its threshold fires once; holding again within it, it fires on, since its start; 0 resolves at once")
	fs.StringVar(&c.BackupSchedule, "backup-schedule", "", "cron spec (UTC, or a CRON_TZ= prefix's zone) of a backup of the database, e.g. \"0 3 * * *\" for 03:00 daily; empty takes none (otpscope backup create takes one by hand)")
	fs.IntVar(&c.BackupKeep, "backup-keep", DefaultBackupKeep, "after a scheduled backup, remove all but this many of the newest from --backup-dir (0 keeps all)")
	c.Rules.Objective.RegisterFlags(fs)
	fs.StringVar(&c.Rollups, "rollup-schedule", DefaultRollups, "cron spec (UTC) of the job that brings up to date the hourly rollups of the hours inserts marked since its last run; empty disables (the API then computes every window live)")
}

// Validate reports the first configuration error.
func (c *ReportsConfig) Validate() error {
	for name, spec := range map[string]string{"report-hourly": c.Hourly, "report-daily": c.Daily, "report-weekly": c.Weekly, "alert-schedule": c.Alerts, "rollup-schedule": c.Rollups, "backup-schedule": c.BackupSchedule} {
		if spec == "" {
			continue
		}
		if _, err := cronspec.Parse(spec); err != nil {
			return fmt.Errorf("%s %q: %w", name, spec, err)
		}
	}
	if _, err := store.Zone(c.Timezone); err != nil {
		return fmt.Errorf("report-timezone: %w", err)
	}
	if err := checkUTC("report-hourly", c.Hourly, "hour"); err != nil {
		return err
	}
	if err := checkUTC("report-daily", c.Daily, "day"); err != nil {
		return err
	}
	if err := checkUTC("report-weekly", c.Weekly, "week"); err != nil {
		return err
	}
	if c.Alerts != "" && c.Rules.Window <= 0 {
		return fmt.Errorf("alert-window %v: must be positive", c.Rules.Window)
	}
	if r := c.Rules; r.MinDeliveryRate < 0 || r.MinDeliveryRate > 1 || r.MaxFallbackRate < 0 || r.MaxFallbackRate > 1 || r.MaxDeliveryRateDrop < 0 || r.MaxDeliveryRateDrop > 1 {
		return errors.New("alert rates must be within 0..1")
	}
	if c.Rules.DropConfidence < 0 || c.Rules.DropConfidence >= 1 {
		return fmt.Errorf("alert-delivery-rate-drop-confidence %v: must be within 0..1, 1 excluded (0.95: a fall chance makes under 5%% of the time)", c.Rules.DropConfidence)
	}
	if c.Rules.MaxLatencyP95 < 0 {
		return fmt.Errorf("alert-max-latency-p95 %v: must not be negative", c.Rules.MaxLatencyP95)
	}
	// A file there would fail the first report, an hour after the start.
	if c.Dir != "" {
		if fi, err := os.Stat(c.Dir); err == nil && !fi.IsDir() {
			return fmt.Errorf("report-dir %s is not a directory: want a directory, or a path not yet made", c.Dir)
		}
	}
	if err := c.Rules.Objective.Validate(); err != nil {
		return err
	}
	if c.BackupKeep < 0 {
		return fmt.Errorf("backup-keep %d: must not be negative", c.BackupKeep)
	}
	if c.AlertRepeat < 0 || c.AlertFor < 0 || c.AlertKeepFiringFor < 0 {
		return fmt.Errorf("alert-repeat %v, alert-for %v, alert-keep-firing-for %v: must not be negative", c.AlertRepeat, c.AlertFor, c.AlertKeepFiringFor)
	}
	if c.AlertWebhookURL != "" {
		if _, err := httpurl.Parse(c.AlertWebhookURL); err != nil {
			// Not err: it quotes the path, a chat webhook's secret.
			return fmt.Errorf("alert-webhook-url %q: want an http(s)://host URL", flagenv.Shown("alert-webhook-url", c.AlertWebhookURL))
		}
	}
	if c.ConsoleURL != "" {
		u, err := httpurl.Parse(c.ConsoleURL)
		if err != nil {
			return fmt.Errorf("console-url %w (the console's, e.g. https://otpscope.example.com/console/)", err)
		}
		if u.Fragment != "" {
			return fmt.Errorf("console-url %q: without a #fragment, e.g. https://otpscope.example.com/console/", u.Redacted())
		}
	}
	if c.RunbookURL != "" {
		if _, err := httpurl.Parse(runbookFor(c.RunbookURL, RuleDeliveryRateLow, "SMS")); err != nil {
			return fmt.Errorf("alert-runbook-url %w (the runbook's, e.g. https://wiki.example.com/otpscope#{rule})", err)
		}
	}
	for _, am := range c.AlertmanagerURLs {
		u, err := httpurl.Parse(am)
		if err != nil {
			return fmt.Errorf("alertmanager-url %w (Alertmanager's base URL, e.g. http://alertmanager:9093)", err)
		}
		if u.RawQuery != "" {
			return fmt.Errorf("alertmanager-url %q: without a query, e.g. http://alertmanager:9093", u.Redacted())
		}
		if err := CheckAlertmanagerURL(am); err != nil {
			return err
		}
	}
	return nil
}

// checkUTC refuses a time zone on a report's schedule: the report's zone
// is --report-timezone's, which also sets the daily one's clock; a prefix
// of another zone would skip or repeat a window across a DST change.
func checkUTC(name, spec, window string) error {
	if zone, _ := cronspec.SplitZone(spec); zone != "" {
		return fmt.Errorf("%s %q: want no time zone prefix: set --report-timezone, whose previous %s it reports", name, spec, window)
	}
	return nil
}

// zone is the summaries' time zone (Validate checked it).
func (c *ReportsConfig) zone() *time.Location {
	z, err := store.Zone(c.Timezone)
	if err != nil {
		return time.UTC
	}
	return z
}

// lastHour is the previous whole hour of zone's clock at now. In a zone
// whose offset is whole hours its hours are UTC's.
func lastHour(now time.Time, zone *time.Location) (from, to time.Time) {
	local := now.In(zone)
	to = local.Add(-time.Duration(local.Minute())*time.Minute - time.Duration(local.Second())*time.Second - time.Duration(local.Nanosecond()))
	return to.Add(-time.Hour), to
}

// lastDay is the previous day of zone at now, from midnight to midnight.
func lastDay(now time.Time, zone *time.Location) (from, to time.Time) {
	y, m, d := now.In(zone).Date()
	return time.Date(y, m, d-1, 0, 0, 0, 0, zone), time.Date(y, m, d, 0, 0, 0, 0, zone)
}

// lastWeek is the previous week of zone at now, from Monday's midnight to
// Monday's (ISO 8601's week: 167 or 169 hours when its clocks change).
func lastWeek(now time.Time, zone *time.Location) (from, to time.Time) {
	local := now.In(zone)
	y, m, d := local.Date()
	monday := d - (int(local.Weekday())+6)%7 // Sunday is 0 to Go, 7 to ISO
	return time.Date(y, m, monday-7, 0, 0, 0, 0, zone), time.Date(y, m, monday, 0, 0, 0, 0, zone)
}

// onClock reads spec on zone's clock: prefixed CRON_TZ= (checkUTC
// refused a prefix of the spec's own).
func onClock(spec string, zone *time.Location) string {
	if spec == "" || zone == time.UTC {
		return spec
	}
	return "CRON_TZ=" + zone.String() + " " + spec
}

// Publisher publishes summaries and alerts durably, and keeps the alerts'
// state (the broker).
type Publisher interface {
	Publish(ctx context.Context, msgs ...events.Message) error
	KeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error)
}

// Reports runs the scheduled summaries and alert rules.
type Reports struct {
	cfg     ReportsConfig
	db      Analytics
	pub     Publisher
	client  *http.Client
	logger  *slog.Logger
	now     func() time.Time
	runs    *prometheus.CounterVec
	alerts  *prometheus.CounterVec
	posting *prometheus.CounterVec
	// alertmanagerPosts counts the POSTs to each Alertmanager by outcome.
	alertmanagerPosts *prometheus.CounterVec
	resolved          *prometheus.CounterVec
	firing            kvBucket // BucketAlerts
	backups           *Backups // scheduled backups, when set (WithBackups)
	rollups           rollupMetrics
	// leader is 1 while this replica holds the reports lease (RunReportsLeased).
	leader prometheus.Gauge
	// lastSuccess is when a run of each kind last succeeded here; due, on
	// the lease holder, when the next success is overdue (Run).
	lastSuccess *prometheus.GaugeVec
	due         *prometheus.GaugeVec
	// sloBudget and sloBurn are the error budget left and the burn rates
	// error_budget_burn judged at its last evaluation here (burn.go).
	sloBudget prometheus.Gauge
	sloBurn   *prometheus.GaugeVec
	// silences hold the webhook's posts (silences.go); silenced counts
	// the posts they held, by rule; silencesNow the silences active and
	// pending at the last evaluation here.
	silences    kvBucket // BucketSilences
	silenced    *prometheus.CounterVec
	silencesNow *prometheus.GaugeVec
}

// rollupMetrics are what the rollup job's runs did: a run's time that grows
// with the history, not with the traffic since the last run, is the job
// walking history again.
type rollupMetrics struct {
	seconds prometheus.Histogram
	hours   *prometheus.CounterVec
	days    prometheus.Counter
	resends prometheus.Counter
}

// NewReports returns the runner; reg may be nil.
func NewReports(cfg ReportsConfig, db Analytics, pub Publisher, logger *slog.Logger, reg prometheus.Registerer) *Reports {
	// promauto registers each collector as it is made; a nil reg registers none.
	f := promauto.With(reg)
	cfg.Rules.Zone = cfg.zone() // the alerts' words on the summaries' clock
	r := &Reports{
		cfg: cfg, db: db, pub: pub, logger: logger, now: time.Now,
		client:   &http.Client{Timeout: 10 * time.Second},
		runs:     f.NewCounterVec(prometheus.CounterOpts{Name: "otpscope_reports_total", Help: "Scheduled report and alert runs by kind and outcome."}, []string{"kind", "outcome"}),
		alerts:   f.NewCounterVec(prometheus.CounterOpts{Name: "otpscope_alerts_fired_total", Help: "Firing alerts published by rule: one each evaluation that finds the rule holding."}, []string{"rule"}),
		resolved: f.NewCounterVec(prometheus.CounterOpts{Name: "otpscope_alerts_resolved_total", Help: "Resolutions published by rule: a rule that fired and holds no longer."}, []string{"rule"}),
		posting:  f.NewCounterVec(prometheus.CounterOpts{Name: "otpscope_alert_webhook_posts_total", Help: "Alert webhook POSTs by outcome."}, []string{"outcome"}),
		silenced: f.NewCounterVec(prometheus.CounterOpts{Name: "otpscope_alert_webhook_silenced_total", Help: "Alert webhook POSTs a silence held, by rule: a firing, repeat or resolution the webhook would have heard, each once a silence however many evaluations it holds it."}, []string{"rule"}),
		silencesNow: f.NewGaugeVec(prometheus.GaugeOpts{Name: "otpscope_alert_silences",
			Help: "Silences of the alert webhook active (holding its posts) and pending (to start later), as the last alert evaluation here read them."}, []string{"state"}),
		alertmanagerPosts: f.NewCounterVec(prometheus.CounterOpts{Name: "otpscope_alertmanager_posts_total", Help: "POSTs of an evaluation's alerts to an Alertmanager, by outcome."}, []string{"outcome"}),
		rollups: rollupMetrics{
			seconds: f.NewHistogram(prometheus.HistogramOpts{Name: "otpscope_rollup_run_seconds", Help: "Time a run of the rollup job took, runs that succeeded.",
				Buckets: prometheus.ExponentialBuckets(0.05, 2, 12)}),
			hours: f.NewCounterVec(prometheus.CounterOpts{Name: "otpscope_rollup_hours_total", Help: "Hours the rollup job brought up to date, by how: computed from their facts, patched, checked unchanged, redefined (summed again from their stored rows under a new definition), or vouched (checked for the dashboards on a single server: docs/analytics.md)."}, []string{"how"}),
			days:  f.NewCounter(prometheus.CounterOpts{Name: "otpscope_rollup_days_total", Help: "Days whose histograms the rollup job summed (those of its hours, and stale ones)."}),
			resends: f.NewCounter(prometheus.CounterOpts{Name: "otpscope_rollup_resend_outcomes_total",
				Help: "Resend decisions whose outcome the rollup job computed: those of the OTPs touched since its last run, or every one after a pause."}),
		},
		leader: f.NewGauge(prometheus.GaugeOpts{Name: "otpscope_reporter_leader", Help: "1 while this replica holds the reports lease and runs the scheduled jobs."}),
		lastSuccess: f.NewGaugeVec(prometheus.GaugeOpts{Name: "otpscope_reports_last_success_timestamp_seconds",
			Help: "When a scheduled run of the kind last succeeded on this replica (Unix time); 0 until one has."}, []string{"kind"}),
		due: f.NewGaugeVec(prometheus.GaugeOpts{Name: "otpscope_reports_due_timestamp_seconds",
			Help: "On the lease holder, when a run of the kind that has not succeeded since is overdue (Unix time): two of its schedule's intervals and its timeout after its last success, or after the lease was taken; 0 on the other replicas."}, []string{"kind"}),
	}
	if cfg.Rules.Objective.DeliveryRate > 0 {
		f.NewGauge(prometheus.GaugeOpts{Name: "otpscope_slo_objective", Help: "--slo-delivery-rate: the share of settled journeys to deliver over --slo-window."}).Set(cfg.Rules.Objective.DeliveryRate)
		r.sloBudget = f.NewGauge(prometheus.GaugeOpts{Name: "otpscope_slo_budget_remaining",
			Help: "The error budget of the SLO window left at the last alert evaluation on this replica: 1 all, 0 none, negative overspent; NaN until one, and when no journey settled."})
		r.sloBurn = f.NewGaugeVec(prometheus.GaugeOpts{Name: "otpscope_slo_burn_rate",
			Help: "How fast the window ending at the last alert evaluation on this replica burned the error budget: 1 spends it exactly by the SLO window's end; NaN until one, and when no journey settled."}, []string{"window"})
		r.sloBudget.Set(math.NaN())
		for _, p := range burnPairs {
			r.sloBurn.WithLabelValues(burnWindowLabel(p.long)).Set(math.NaN())
			r.sloBurn.WithLabelValues(burnWindowLabel(p.short)).Set(math.NaN())
		}
	}
	r.firing.cfg = jetstream.KeyValueConfig{Bucket: BucketAlerts, Description: "otpscope reporter: the alert rules firing, since when, and when the webhook last heard"}
	r.silences.cfg = jetstream.KeyValueConfig{Bucket: BucketSilences, TTL: silenceKept,
		Description: "otpscope reporter: silences of the alert webhook, each kept a week past its longest end"}
	r.initSeries()
	return r
}

// initSeries makes the series of the jobs and notifications configured at
// 0, so that their first failure is an increase Prometheus sees; a kind
// not scheduled has none.
func (r *Reports) initSeries() {
	for _, j := range r.jobs() {
		r.runs.WithLabelValues(j.kind, "ok")
		r.runs.WithLabelValues(j.kind, "error")
		r.lastSuccess.WithLabelValues(j.kind)
		r.due.WithLabelValues(j.kind)
	}
	for _, outcome := range []string{"ok", "error"} {
		if r.cfg.AlertWebhookURL != "" {
			r.posting.WithLabelValues(outcome)
		}
		if len(r.cfg.AlertmanagerURLs) > 0 {
			r.alertmanagerPosts.WithLabelValues(outcome)
		}
	}
}

// runTimeouts bound each kind's run: one still going then is cut short and
// counts as failed. Without them a run that hangs (a query or a NATS call
// that never answers) held back every later run of its kind, since cron
// skips a run while the last one goes on. Each is far above what a run
// takes (a rollup run a few seconds at 100 M events, a backup of 11 M
// events 2 s), and the rollup job keeps what a cut run computed.
var runTimeouts = map[string]time.Duration{
	KindHourly:  15 * time.Minute,
	KindDaily:   time.Hour,
	KindWeekly:  2 * time.Hour,
	KindAlerts:  5 * time.Minute,
	KindRollups: 30 * time.Minute,
	KindBackup:  6 * time.Hour,
}

// The kinds of the scheduled jobs besides the summaries' (otpscope_reports_total's kind).
const (
	KindAlerts  = "alerts"
	KindRollups = "rollups"
	KindBackup  = "backup"
)

// job is one scheduled job.
type job struct {
	kind, spec string
	run        func(ctx context.Context, now time.Time) error
}

// jobs are the jobs the configuration schedules.
func (r *Reports) jobs() []job {
	zone := r.cfg.zone()
	all := []job{
		{KindHourly, r.cfg.Hourly, func(ctx context.Context, now time.Time) error {
			from, to := lastHour(now, zone)
			return r.Summary(ctx, KindHourly, from, to)
		}},
		{KindDaily, onClock(r.cfg.Daily, zone), func(ctx context.Context, now time.Time) error {
			from, to := lastDay(now, zone)
			return r.Summary(ctx, KindDaily, from, to)
		}},
		{KindWeekly, onClock(r.cfg.Weekly, zone), func(ctx context.Context, now time.Time) error {
			from, to := lastWeek(now, zone)
			return r.Summary(ctx, KindWeekly, from, to)
		}},
		{KindAlerts, r.cfg.Alerts, func(ctx context.Context, now time.Time) error {
			// To the second, not the minute: each evaluation of a schedule
			// more often than a minute (@every 15s) has a window, and so an
			// alert id, of its own, stored with its own figures.
			end := now.UTC().Truncate(time.Second)
			_, notified, err := r.evaluate(ctx, end.Add(-r.cfg.Rules.Window), end)
			if notified != nil && ctx.Err() == nil {
				// Counted and alerted on as the webhook's or Alertmanager's:
				// the evaluation itself ran.
				r.logger.Warn("alerts evaluated, not all notified", "err", notified)
			}
			return err
		}},
		{KindRollups, r.cfg.Rollups, r.RefreshRollups},
		{KindBackup, r.backupSpec(), func(ctx context.Context, now time.Time) error {
			return r.backups.scheduled(ctx, now, r.cfg.BackupKeep)
		}},
	}
	return slices.DeleteFunc(all, func(j job) bool { return j.spec == "" })
}

// Run runs the schedule until ctx ends (the lease is lost or the process
// stops), then waits for a running job. A run cut short by that is counted
// neither way: it did not fail, it was stopped.
func (r *Reports) Run(ctx context.Context) error {
	c := cron.New(cron.WithParser(cronspec.Parser{}), cron.WithLocation(time.UTC), cron.WithChain(cron.SkipIfStillRunning(cron.DiscardLogger)))
	jobs := r.jobs()
	scheds := make([]cron.Schedule, len(jobs))
	var errs []error
	for i, j := range jobs {
		var err error
		if scheds[i], err = cronspec.Parse(j.spec); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("schedule reports: %w", err)
	}
	term := r.now()
	for i, j := range jobs {
		timeout := runTimeouts[j.kind]
		overdue := 2*longestInterval(scheds[i], term) + timeout
		r.due.WithLabelValues(j.kind).Set(float64(term.Add(overdue).Unix()))
		c.Schedule(scheds[i], cron.FuncJob(func() {
			rctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			err := j.run(rctx, r.now())
			switch {
			case ctx.Err() != nil: // stopped, not failed
				return
			case err != nil:
				if rctx.Err() != nil {
					err = fmt.Errorf("cut short after %v: %w", timeout, err)
				}
				r.logger.Error("scheduled "+j.kind, "err", err)
				r.runs.WithLabelValues(j.kind, "error").Inc()
			default:
				done := r.now()
				r.runs.WithLabelValues(j.kind, "ok").Inc()
				r.lastSuccess.WithLabelValues(j.kind).Set(float64(done.Unix()))
				r.due.WithLabelValues(j.kind).Set(float64(done.Add(overdue).Unix()))
			}
		}))
	}
	if r.backupSpec() != "" {
		// Another replica may have taken backups since this one started.
		if err := r.backups.Watch(ctx); err != nil && ctx.Err() == nil {
			r.logger.Warn("backups: the newest is unknown", "err", err)
		}
	}
	c.Start()
	<-ctx.Done()
	<-c.Stop().Done()
	for _, j := range jobs {
		r.due.WithLabelValues(j.kind).Set(0) // another replica's now
	}
	return nil
}

// FollowingLag is the max_lag of the console's reads, which follow the
// clock every few seconds: db.FollowingLag of the rollup job's longest
// interval, at most MaxLagLimit; 0 (exact reads) without the job, whose
// runs alone make lagged reads cheaper.
func (c *ReportsConfig) FollowingLag(db *store.DB) time.Duration {
	if c.Rollups == "" {
		return 0
	}
	sched, err := cronspec.Parse(c.Rollups)
	if err != nil {
		return 0 // Validate refuses it
	}
	return min(db.FollowingLag(longestInterval(sched, time.Now())), MaxLagLimit)
}

// longestInterval is the longest time from now to sched's first run and
// between two of its runs after that (cronspec.Gaps).
func longestInterval(sched cron.Schedule, now time.Time) time.Duration {
	_, longest := cronspec.Gaps(sched, now)
	return max(sched.Next(now).Sub(now), longest)
}

// WithBackups has the schedule take backups through b (--backup-schedule).
func (r *Reports) WithBackups(b *Backups) *Reports {
	r.backups = b
	r.initSeries()
	return r
}

// backupSpec is the backup schedule, when there is something to take them.
func (r *Reports) backupSpec() string {
	if r.backups == nil {
		return ""
	}
	return r.cfg.BackupSchedule
}

// RollupRefresher computes the hourly rollups (store.DB does).
type RollupRefresher interface {
	RefreshRollups(ctx context.Context) (store.RollupRun, error)
}

// routineHours is how far back the rollup job's routine runs reach: the
// 49 hours a late fact can change, and the hour under way.
const routineHours = 50 * time.Hour

// RefreshRollups runs the rollup job once, if the analytics store has rollups.
// It runs on the replica holding the reports lease, so replicas do not
// compute the same hours at once (overlapping runs would still be correct).
// The scheduled time is not used: the job takes its versions from the
// server's clock.
func (r *Reports) RefreshRollups(ctx context.Context, _ time.Time) error {
	rr, ok := r.db.(RollupRefresher)
	if !ok {
		return nil
	}
	start := time.Now()
	run, err := rr.RefreshRollups(ctx)
	took := time.Since(start)
	if hours := run.Hours; len(hours) > 0 {
		// The run of every minute is routine (a line a minute): it computes
		// the last hour or two and, under traffic, checks the day or two
		// before, which late facts can still change (docs/analytics.md,
		// "Exact while data arrives"). Said at debug level; any other at
		// info: older hours (a restore, facts replayed), more computed or
		// patched, a redefinition, or a slow run.
		level := slog.LevelInfo
		if run.Computed+run.Patched <= 2 && run.Redefined == 0 && took < 5*time.Second && hours[0].After(start.Add(-routineHours)) {
			level = slog.LevelDebug
		}
		r.logger.Log(ctx, level, "hourly rollups brought up to date", "hours", len(hours), "computed", run.Computed, "patched", run.Patched, "checked", run.Checked,
			"redefined", run.Redefined, "vouched", run.Vouched, "days", run.Days, "resend_outcomes", run.Resends, "first", hours[0].Format(time.RFC3339), "last", hours[len(hours)-1].Format(time.RFC3339),
			"waited", run.Waited.Round(time.Millisecond), "took", took.Round(time.Millisecond))
	} else if run.Days > 0 {
		r.logger.Info("day histograms summed again (stale days: docs/analytics.md)", "days", run.Days, "took", took.Round(time.Millisecond))
	}
	if err != nil {
		return fmt.Errorf("rollups: %w", err)
	}
	r.rollups.seconds.Observe(took.Seconds())
	r.rollups.hours.WithLabelValues("computed").Add(float64(run.Computed))
	r.rollups.hours.WithLabelValues("patched").Add(float64(run.Patched))
	r.rollups.hours.WithLabelValues("checked").Add(float64(run.Checked))
	r.rollups.hours.WithLabelValues("redefined").Add(float64(run.Redefined))
	r.rollups.hours.WithLabelValues("vouched").Add(float64(run.Vouched))
	r.rollups.days.Add(float64(run.Days))
	r.rollups.resends.Add(float64(run.Resends))
	return nil
}

// Summary builds the report of [from, to), publishes it on
// tyntec.2fa.report.<kind> and writes its files.
func (r *Reports) Summary(ctx context.Context, kind string, from, to time.Time) error {
	rep, err := BuildReport(ctx, r.db, kind, store.Window{From: from.UTC(), To: to.UTC()}, r.cfg.zone(), r.now())
	if err != nil {
		return err
	}
	rep.Thresholds = r.cfg.Rules.Thresholds()
	if err := rep.holdTo(ctx, r.db, store.Window{}, r.cfg.Rules.Objective); err != nil {
		return err
	}
	msg, err := rep.Message()
	if err != nil {
		return err
	}
	if err := r.pub.Publish(ctx, msg); err != nil {
		return fmt.Errorf("publish %s report: %w", kind, err)
	}
	if r.cfg.Dir != "" {
		if err := WriteReportFiles(r.cfg.Dir, &rep); err != nil {
			return err
		}
	}
	r.logger.Info("report published", "kind", kind, "from", from, "to", to, "subject", msg.Subject)
	return nil
}

// WriteReportFiles writes rep as dir/<name>.json, .csv and .html, each
// through a temporary file renamed into place.
func WriteReportFiles(dir string, rep *Report) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("report dir: %w", err)
	}
	for _, format := range []string{"json", "csv", "html"} {
		var b bytes.Buffer
		if err := rep.Render(&b, format); err != nil {
			return err
		}
		path := filepath.Join(dir, rep.Name()+"."+format)
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, b.Bytes(), 0o640); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	}
	return nil
}

// Evaluate checks the alert rules over [from, to) and publishes on
// tyntec.2fa.alert.<rule> each that fires (once it has held for AlertFor)
// and each that fired at the last evaluation and resolves now. The
// webhook, if any, hears of a rule when it begins to fire, every
// AlertRepeat while it fires, and when it resolves. The alerts' state
// (BucketAlerts) changes only after a publish: an alert that could not be
// published is evaluated afresh the next time.
func (r *Reports) Evaluate(ctx context.Context, from, to time.Time) ([]Alert, error) {
	alerts, notified, err := r.evaluate(ctx, from, to)
	return alerts, errors.Join(err, notified)
}

// evaluate is Evaluate, the webhook's and Alertmanagers' errors apart
// (notified): they have counters and alerts of their own, and leave the
// evaluation's run a success.
func (r *Reports) evaluate(ctx context.Context, from, to time.Time) (_ []Alert, notified, _ error) {
	w := store.Window{From: from, To: to}
	chs, err := r.db.Channels(ctx, w)
	if err != nil {
		return nil, nil, fmt.Errorf("alerts: %w", err)
	}
	fb, err := r.db.Fallback(ctx, w)
	if err != nil {
		return nil, nil, fmt.Errorf("alerts: %w", err)
	}
	kv, err := r.firing.open(ctx, r.pub)
	if err != nil {
		return nil, nil, fmt.Errorf("alerts: %w", err)
	}
	prev, err := r.loadFiring(ctx, kv)
	if err != nil {
		return nil, nil, fmt.Errorf("alerts: %w", err)
	}
	rules := r.cfg.Rules
	// The window before (as a report's, on UTC's clock: as long as the
	// window, ending where it starts): delivery_rate_drop is judged on it,
	// so with that rule on it is read at every evaluation, and an
	// evaluation that cannot read it fails (a drop left unjudged would
	// resolve); else only when an alert fires, to set beside its figure.
	bw := store.Window{From: windowBefore(from, to, time.UTC), To: from}
	var before Figures
	read := rules.WatchesDrops()
	if read {
		if before, err = readFigures(ctx, r.db, bw); err != nil {
			return nil, nil, fmt.Errorf("alerts: the window before: %w", err)
		}
	}
	// error_budget_burn's windows end where the evaluation's does; with
	// an objective, an evaluation that cannot read them fails (a burn
	// left unjudged would resolve).
	burn := BurnFigures{To: to}
	if rules.Objective.DeliveryRate > 0 {
		if burn, err = readBurn(ctx, r.db, to, rules.Objective); err != nil {
			return nil, nil, fmt.Errorf("alerts: the error budget's windows: %w", err)
		}
	}
	fired := append(rules.Evaluate(from, to, chs, fb), rules.Drops(from, to, chs, before)...)
	fired = append(fired, rules.Burns(burn)...)
	r.observeBurn(burn)
	if len(fired) > 0 && !read {
		if before, err = readFigures(ctx, r.db, bw); err != nil {
			r.logger.Warn("alerts without the window before: it was not read", "from", bw.From, "to", bw.To, "err", err)
		}
		read = err == nil
	}
	if read {
		rules.Before(fired, before)
	}
	resolve := func(f firing) Alert {
		if f.Rule == RuleErrorBudgetBurn {
			return rules.BurnResolved(f.Since, burn)
		}
		return rules.Resolved(f.Rule, f.Channel, f.Since, from, to, chs, fb, before)
	}
	var alerts []Alert
	var errs, unheard []error
	var kept []Alert
	silences := r.evaluationSilences(ctx, to)
	for _, tr := range transitions(fired, prev, resolve, rules.Watches, alertTiming{hold: r.cfg.AlertFor, repeat: r.cfg.AlertRepeat, keepFiring: r.cfg.AlertKeepFiringFor}, to) {
		al := &tr.alert
		if tr.state.Kept {
			kept = append(kept, *al)
			r.logger.Info("alert kept firing", "rule", al.Rule, "channel", al.Channel, "since", al.Since, "held_last", al.To, "keep_firing_for", r.cfg.AlertKeepFiringFor)
		}
		if !tr.quiet {
			// A published alert says which silence covers it (NATS and
			// the store hear it all the same). A silenced firing leaves
			// its state as if the webhook had not heard, so it hears at
			// the first evaluation after the silence (or when its repeat
			// is due, if it heard before); a silenced resolution is
			// dropped, as if heard.
			s, silenced := silencing(silences, al, to)
			if !tr.repost {
				al.SilencedBy = s.ID
			}
			held := silenced && tr.notify && r.cfg.AlertWebhookURL != ""
			if held {
				// Counted and logged once per post due and silence: a
				// firing the webhook never heard is due at every
				// evaluation the silence holds it.
				tr.notify = false
				if tr.state.HeldBy != s.ID {
					r.silenced.WithLabelValues(al.Rule).Inc()
					r.logger.Info("alert webhook held by a silence", "rule", al.Rule, "channel", al.Channel, "state", al.State, "silence", s.ID, "until", s.EndsAt)
				}
				tr.state.HeldBy = s.ID
			}
			var err error
			switch {
			case tr.repost && held:
			case tr.repost:
				err = r.notify(ctx, al)
			default:
				err = r.publishAlert(ctx, al, tr.notify)
			}
			if errors.Is(err, errNotPublished) {
				errs = append(errs, err)
				continue // the state stays: the next evaluation decides again
			}
			if err != nil {
				unheard = append(unheard, err) // the webhook's: tried again at the next evaluation
			}
			tr.heard(err == nil, to)
			if !tr.repost {
				alerts = append(alerts, *al)
			}
		}
		key := firingKey(al.Rule, al.Channel)
		var err error
		if tr.keep {
			var v []byte
			if v, err = json.Marshal(tr.state); err == nil {
				_, err = kv.Put(ctx, key, v)
			}
		} else {
			err = kv.Delete(ctx, key)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("alert state %s: %w", key, err))
		}
	}
	if err := r.toAlertmanagers(ctx, append(slices.Clone(alerts), kept...), r.now()); err != nil {
		unheard = append(unheard, err)
	}
	return alerts, errors.Join(unheard...), errors.Join(errs...)
}

// errNotPublished marks an alert NATS did not take.
var errNotPublished = errors.New("alert not published")

// publishAlert publishes al, counts and logs it and, when notify, POSTs it
// to the webhook, if any. The log warns when the webhook hears (a rule that
// begins to fire, or is due again) and notes the evaluations between.
func (r *Reports) publishAlert(ctx context.Context, al *Alert, notify bool) error {
	msg, err := events.NewAlertMessage(al)
	if err == nil {
		err = r.pub.Publish(ctx, msg)
	}
	if err != nil {
		return fmt.Errorf("%w: %s: %w", errNotPublished, al.Rule, err)
	}
	if al.State == events.AlertResolved {
		r.resolved.WithLabelValues(al.Rule).Inc()
		r.logger.Info("alert resolved", "rule", al.Rule, "channel", al.Channel, "summary", al.Summary)
	} else {
		level := slog.LevelInfo
		if notify {
			level = slog.LevelWarn
		}
		r.alerts.WithLabelValues(al.Rule).Inc()
		r.logger.Log(ctx, level, "alert firing", "rule", al.Rule, "channel", al.Channel, "since", al.Since, "summary", al.Summary)
	}
	if !notify {
		return nil
	}
	return r.notify(ctx, al)
}

// notify POSTs al to the webhook, if any, and counts the outcome.
func (r *Reports) notify(ctx context.Context, al *Alert) error {
	if r.cfg.AlertWebhookURL == "" {
		return nil
	}
	err := r.post(ctx, al)
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	r.posting.WithLabelValues(outcome).Inc()
	return err
}

// hideWebhook has err, an HTTP client's, quote the webhook's URL as the
// configuration shows it: a chat webhook's secret is its path, which the
// client's error quotes whole into every failed evaluation's log line.
func (r *Reports) hideWebhook(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = flagenv.Shown("alert-webhook-url", r.cfg.AlertWebhookURL)
	}
	return err
}

func (r *Reports) post(ctx context.Context, al *Alert) error {
	body, err := slackPayload(al, r.cfg.alertLink(al), r.cfg.runbookLink(al), r.cfg.Rules)
	if err != nil {
		return err
	}
	return r.postWebhook(ctx, body)
}

// postWebhook posts body to --alert-webhook-url.
func (r *Reports) postWebhook(ctx context.Context, body []byte) error {
	ctx, cancel := alertContext(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.cfg.AlertWebhookURL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("alert webhook: %w", r.hideWebhook(err))
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return fmt.Errorf("alert webhook: %w", r.hideWebhook(err))
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("alert webhook answered %s", resp.Status)
	}
	return nil
}
