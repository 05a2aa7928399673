package reporter_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/reporter"
	"github.com/otpscope/otpscope/internal/sink/sinktest"
)

// TestValidateSchedules checks the specs robfig/cron v3.0.1 mishandles: a
// time zone alone (its parser panics), an @every under a second (it runs
// every second), a time zone on a report, whose zone is
// --report-timezone's, and that zone.
func TestValidateSchedules(t *testing.T) {
	for _, tc := range []struct {
		flag, spec string
		want       string // in the error; "" accepts
	}{
		{"report-daily", "CRON_TZ=Europe/Berlin", "a space and a schedule after"},
		{"alert-schedule", "TZ=UTC", "a space and a schedule after"},
		{"rollup-schedule", "CRON_TZ=UTC ", "a space and a schedule after"},
		{"backup-schedule", "TZ=UTC\t@daily", "a space and a schedule after"},
		{"report-hourly", "@every 0s", "at least 1s"},
		{"report-daily", "@every -24h", "at least 1s"},
		{"alert-schedule", "@every 1ms", "at least 1s"},
		{"rollup-schedule", "TZ=UTC @every 999ms", "at least 1s"},
		{"report-daily", "CRON_TZ=Europe/Berlin 30 2 * * *", "set --report-timezone, whose previous day"},
		{"report-hourly", "TZ=UTC 15 * * * *", "set --report-timezone, whose previous hour"},
		{"report-timezone", "Mars/Olympus_Mons", "not known"},
		{"report-timezone", "Local", "not an IANA name"},
		{"report-timezone", "America/Argentina/Buenos_Aires", ""},
		{"report-daily", "TZ=Nowhere/Atlantis 15 0 * * *", "bad location"},
		{"alert-schedule", "@every 1s", ""},
		{"rollup-schedule", "@every 20s", ""},
		{"report-daily", "15 0 * * *", ""},
		{"report-weekly", "30 0 * * 1", ""},
		{"report-weekly", "CRON_TZ=Europe/Berlin 30 0 * * 1", "set --report-timezone, whose previous week"},
		{"report-weekly", "@every 0s", "at least 1s"},
		// Elsewhere a time zone only moves when the job runs.
		{"alert-schedule", "CRON_TZ=Europe/Berlin */5 * * * *", ""},
		{"rollup-schedule", "TZ=UTC @every 15s", ""},
		{"backup-schedule", "CRON_TZ=Europe/Berlin 0 3 * * *", ""},
	} {
		cfg := reporter.ReportsConfig{Rules: reporter.AlertRules{Window: time.Hour}}
		*map[string]*string{"report-hourly": &cfg.Hourly, "report-daily": &cfg.Daily, "report-weekly": &cfg.Weekly, "alert-schedule": &cfg.Alerts,
			"rollup-schedule": &cfg.Rollups, "backup-schedule": &cfg.BackupSchedule, "report-timezone": &cfg.Timezone}[tc.flag] = tc.spec
		err := cfg.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("--%s %q: %v; want it accepted", tc.flag, tc.spec, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.flag)):
			t.Errorf("--%s %q: %v; want it refused, naming the flag and %q", tc.flag, tc.spec, err, tc.want)
		}
	}
}

// A refused webhook URL is quoted without its path: a chat webhook's
// secret (Slack's https://hooks.slack.com/services/T…/B…/<secret>).
func TestValidateHidesTheWebhooksPath(t *testing.T) {
	for _, u := range []string{"https:///services/T0/B0/slackSECRET", "ftp://hooks.example.com/services/T0/B0/slackSECRET"} {
		cfg := reporter.ReportsConfig{Rules: reporter.AlertRules{Window: time.Hour}, AlertWebhookURL: u}
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), "alert-webhook-url") || strings.Contains(err.Error(), "SECRET") {
			t.Errorf("--alert-webhook-url %s: %v; want it refused, naming the flag, not quoting the path", u, err)
		}
	}
}

// TestRunRefusesSchedule checks that Run, unvalidated, refuses a time zone
// alone rather than panicking in robfig/cron's parser.
func TestRunRefusesSchedule(t *testing.T) {
	r := reporter.NewReports(reporter.ReportsConfig{Daily: "CRON_TZ=Europe/Berlin"}, nil, nil, slog.New(slog.DiscardHandler), nil)
	if err := r.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "a space and a schedule after") {
		t.Errorf("Run = %v; want the spec refused", err)
	}
}

// TestLongestInterval: a job's deadline counts from the longest wait its
// schedule has, so that neither the weekend of a weekday schedule nor the
// wait for a rare one's first run looks like a job that stopped.
func TestLongestInterval(t *testing.T) {
	friday := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		spec string
		want time.Duration
	}{
		{"* * * * *", time.Minute},
		{"@every 20s", 20 * time.Second},
		{"15 0 * * *", 24 * time.Hour},
		{"*/5 * * * *", 5 * time.Minute},
		{"0 3 * * 1-5", 72 * time.Hour},     // Friday 03:00 to Monday's
		{"0 0 1 1 *", 365 * 24 * time.Hour}, // yearly: its first two runs
	} {
		if got := reporter.LongestInterval(tc.spec, friday); got != tc.want {
			t.Errorf("%q from %v: %v; want %v", tc.spec, friday, got, tc.want)
		}
	}
}

// The console's reads lag by the rollup job's longest interval and a
// minute for its run (a single server here), at most what the API takes,
// and not at all without the job.
func TestFollowingLag(t *testing.T) {
	db := sinktest.Open(t).DB
	for spec, want := range map[string]time.Duration{
		reporter.DefaultRollups: 2 * time.Minute,
		"@every 15s":            75 * time.Second,
		"0 3 * * *":             reporter.MaxLagLimit,
		"":                      0,
	} {
		cfg := reporter.ReportsConfig{Rollups: spec}
		if got := cfg.FollowingLag(db); got != want {
			t.Errorf("--rollup-schedule %q: %v; want %v", spec, got, want)
		}
	}
}

// The hourly summary covers the previous hour of the zone's clock: UTC's
// hours in a zone whose offset is whole hours, across a change of clocks
// too; half past in Kolkata's.
func TestLastHourInAZone(t *testing.T) {
	zone := func(name string) *time.Location {
		z, err := time.LoadLocation(name)
		if err != nil {
			t.Fatal(err)
		}
		return z
	}
	for _, tc := range []struct {
		zone     string
		now      string
		from, to string
	}{
		{"UTC", "2026-06-01T10:15:00Z", "2026-06-01T09:00:00Z", "2026-06-01T10:00:00Z"},
		{"Europe/Berlin", "2026-10-25T01:15:00Z", "2026-10-25T00:00:00Z", "2026-10-25T01:00:00Z"}, // 02:15 CET, the second 02:00
		{"Europe/Berlin", "2026-03-29T01:15:00Z", "2026-03-29T00:00:00Z", "2026-03-29T01:00:00Z"}, // 03:15 CEST, just after the skip
		{"Asia/Kolkata", "2026-06-01T10:15:00Z", "2026-06-01T08:30:00Z", "2026-06-01T09:30:00Z"},
		{"Asia/Kolkata", "2026-06-01T09:45:00Z", "2026-06-01T08:30:00Z", "2026-06-01T09:30:00Z"},
	} {
		now, _ := time.Parse(time.RFC3339, tc.now)
		from, to := reporter.LastHour(now, zone(tc.zone))
		if got := from.UTC().Format(time.RFC3339) + " " + to.UTC().Format(time.RFC3339); got != tc.from+" "+tc.to {
			t.Errorf("%s at %s: the last hour is %s; want %s %s", tc.zone, tc.now, got, tc.from, tc.to)
		}
	}
}

// The weekly summary covers the previous week of the zone's clock, Monday's
// midnight to Monday's: on any day of the week after it, Sunday included
// (Go's first day, ISO's last), 167 hours in the week Berlin's clocks go
// forward.
func TestLastWeekInAZone(t *testing.T) {
	for _, tc := range []struct {
		zone     string
		now      string
		from, to string
	}{
		{"UTC", "2026-06-01T00:30:00Z", "2026-05-25T00:00:00Z", "2026-06-01T00:00:00Z"},                     // a Monday
		{"UTC", "2026-06-07T23:59:00Z", "2026-05-25T00:00:00Z", "2026-06-01T00:00:00Z"},                     // the Sunday after
		{"UTC", "2026-06-03T12:00:00Z", "2026-05-25T00:00:00Z", "2026-06-01T00:00:00Z"},                     // a Wednesday
		{"Europe/Berlin", "2026-03-29T22:30:00Z", "2026-03-23T00:00:00+01:00", "2026-03-30T00:00:00+02:00"}, // 00:30 CEST on Monday 30 March
		{"Europe/Berlin", "2026-03-29T21:30:00Z", "2026-03-16T00:00:00+01:00", "2026-03-23T00:00:00+01:00"}, // 23:30 CEST, still Sunday
		{"Asia/Kolkata", "2026-05-31T19:00:00Z", "2026-05-25T00:00:00+05:30", "2026-06-01T00:00:00+05:30"},  // 00:30 on Monday 1 June
	} {
		now, _ := time.Parse(time.RFC3339, tc.now)
		z, err := time.LoadLocation(tc.zone)
		if err != nil {
			t.Fatal(err)
		}
		from, to := reporter.LastWeek(now, z)
		wantFrom, _ := time.Parse(time.RFC3339, tc.from)
		wantTo, _ := time.Parse(time.RFC3339, tc.to)
		if !from.Equal(wantFrom) || !to.Equal(wantTo) || from.In(z).Weekday() != time.Monday || to.In(z).Weekday() != time.Monday {
			t.Errorf("%s at %s: the last week is %s – %s; want %s – %s, Monday to Monday", tc.zone, tc.now, from, to, tc.from, tc.to)
		}
	}
	z, _ := time.LoadLocation("Europe/Berlin")
	if from, to := reporter.LastWeek(time.Date(2026, 3, 29, 22, 30, 0, 0, time.UTC), z); to.Sub(from) != 167*time.Hour {
		t.Errorf("Berlin's week of the change to summer time lasts %s; want 167h", to.Sub(from))
	}
}
