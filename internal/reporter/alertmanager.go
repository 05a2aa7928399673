package reporter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/otpscope/otpscope/internal/cronspec"
	"github.com/otpscope/otpscope/internal/events"
)

// Alertmanager. With --alertmanager-url every evaluation posts the alerts
// it published, each rule firing and each resolution, to Alertmanager's
// API (POST <url>/api/v2/alerts), as Prometheus posts its own rules' alerts:
// a team routes, groups, silences and inhibits otpscope's alerts where it
// handles its others. Alertmanager repeats notifications itself
// (repeat_interval), so unlike the webhook it hears of a firing at every
// evaluation; one not heard of again before its endsAt resolves there by
// itself, so a reporter that stops evaluating leaves nothing firing for
// ever.

// alertmanagerPath is the API path added to each --alertmanager-url.
const alertmanagerPath = "api/v2/alerts"

// alertmanagerAPI matches a path that already ends in Alertmanager's API,
// which alertmanagerPath would be added to a second time.
var alertmanagerAPI = regexp.MustCompile(`(^|/)api/v[12](/alerts)?/*$`)

// CheckAlertmanagerURL refuses an --alertmanager-url that is not a base
// URL to which alertmanagerPath can be added.
func CheckAlertmanagerURL(base string) error {
	_, err := alertmanagerEndpoint(base)
	return err
}

// alertmanagerEndpoint is where the alerts for the Alertmanager at base go:
// base with alertmanagerPath added. A base that already ends in an API
// path is refused: the POST would go to …/api/v2/alerts/api/v2/alerts.
func alertmanagerEndpoint(base string) (*url.URL, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, errors.New("alertmanager-url: not a URL; want Alertmanager's base URL, e.g. http://alertmanager:9093")
	}
	if alertmanagerAPI.MatchString(u.Path) {
		return nil, fmt.Errorf("alertmanager-url %q: want Alertmanager's base URL, e.g. http://alertmanager:9093, without %s (otpscope adds /%s)",
			u.Redacted(), alertmanagerAPI.FindString(u.Path), alertmanagerPath)
	}
	return u.JoinPath(alertmanagerPath), nil
}

// alertmanagerAlert is one alert of Alertmanager's API v2 (postableAlert).
type alertmanagerAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
	// GeneratorURL links the alert to the console (--console-url).
	GeneratorURL string `json:"generatorURL,omitempty"`
}

// alertmanagerEndsAt is how long a firing stays firing in Alertmanager
// unless heard of again: four evaluation intervals of at least a minute,
// as Prometheus sets its own (4 × max(evaluation interval, resend delay)),
// so that an evaluation or two that fail do not resolve it.
func alertmanagerEndsAt(interval time.Duration) time.Duration { return 4 * max(interval, time.Minute) }

// alertmanagerAlerts is what Alertmanager is told of alerts at now: the
// rule's name as alertname, its channel (none for the fallback rate), the
// static labels, and the figures as annotations, linked to the console
// when there is a link. A firing starts at its since and ends unless heard
// of again; a resolution ends now.
func alertmanagerAlerts(alerts []Alert, static map[string]string, now time.Time, interval time.Duration, link, runbook func(*Alert) string) []alertmanagerAlert {
	out := make([]alertmanagerAlert, 0, len(alerts))
	for i := range alerts {
		al := &alerts[i]
		labels := map[string]string{"service": "otpscope", "severity": "warning"}
		maps.Copy(labels, static)
		labels["alertname"] = al.Rule
		if al.Channel != "" {
			labels["channel"] = al.Channel
		}
		end := now.Add(alertmanagerEndsAt(interval))
		if al.State == events.AlertResolved {
			end = now
		}
		annotations := map[string]string{
			"summary":   al.Summary,
			"value":     strconv.FormatFloat(al.Value, 'f', 4, 64),
			"threshold": strconv.FormatFloat(al.Threshold, 'f', 4, 64),
			"volume":    strconv.FormatUint(al.Volume, 10),
			"window":    al.From.UTC().Format(time.RFC3339) + " – " + al.To.UTC().Format(time.RFC3339),
		}
		// Prometheus rules' name for a runbook, which receivers (PagerDuty,
		// Opsgenie, Slack templates) know.
		if rb := runbook(al); rb != "" {
			annotations["runbook_url"] = rb
		}
		// The window before's figure, for a template to set beside value
		// (none when there was nothing to judge there).
		if b := al.Before; b != nil {
			annotations["window_before"] = b.From.UTC().Format(time.RFC3339) + " – " + b.To.UTC().Format(time.RFC3339)
			annotations["volume_before"] = strconv.FormatUint(b.Volume, 10)
			if b.Value != nil {
				annotations["value_before"] = strconv.FormatFloat(*b.Value, 'f', 4, 64)
			}
		}
		out = append(out, alertmanagerAlert{
			Labels:       labels,
			Annotations:  annotations,
			StartsAt:     al.Since.UTC(),
			EndsAt:       end.UTC(),
			GeneratorURL: link(al),
		})
	}
	return out
}

// toAlertmanagers posts alerts to every Alertmanager (of an HA cluster each
// hears all, as from Prometheus), counting each POST's outcome. A POST that
// fails is not retried: the next evaluation posts every firing again.
func (r *Reports) toAlertmanagers(ctx context.Context, alerts []Alert, now time.Time) error {
	if len(r.cfg.AlertmanagerURLs) == 0 || len(alerts) == 0 {
		return nil
	}
	body, err := json.Marshal(alertmanagerAlerts(alerts, r.cfg.AlertLabels, now, r.alertInterval(now), r.cfg.alertLink, r.cfg.runbookLink))
	if err != nil {
		return err
	}
	errs := r.postAlertmanagers(ctx, body)
	for _, err := range errs {
		outcome := "ok"
		if err != nil {
			outcome = "error"
		}
		r.alertmanagerPosts.WithLabelValues(outcome).Inc()
	}
	return errors.Join(errs...)
}

// postAlertmanagers posts body to every Alertmanager, in
// --alertmanager-url's order: each one's error, nil when it took it.
func (r *Reports) postAlertmanagers(ctx context.Context, body []byte) []error {
	errs := make([]error, len(r.cfg.AlertmanagerURLs))
	for i, base := range r.cfg.AlertmanagerURLs {
		errs[i] = r.postAlertmanager(ctx, base, body)
	}
	return errs
}

func (r *Reports) postAlertmanager(ctx context.Context, base string, body []byte) error {
	u, err := alertmanagerEndpoint(base)
	if err != nil {
		return err
	}
	ctx, cancel := alertContext(ctx)
	defer cancel()
	// A URL's user and password go as basic authentication (net/http).
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("alertmanager %s: %w", u.Redacted(), err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return fmt.Errorf("alertmanager: %w", err) // net/http's error names the URL, its password masked
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		var b [512]byte
		n, _ := resp.Body.Read(b[:])
		return fmt.Errorf("alertmanager %s answered %s: %s", u.Redacted(), resp.Status, strings.TrimSpace(string(b[:n])))
	}
	return nil
}

// alertInterval is the time between two evaluations of the alert schedule
// after now, or DefaultAlertInterval without one (alerts evaluated by hand).
func (r *Reports) alertInterval(now time.Time) time.Duration {
	sched, err := cronspec.Parse(r.cfg.Alerts)
	if err != nil {
		return defaultAlertInterval
	}
	next := sched.Next(now)
	return sched.Next(next).Sub(next)
}

// defaultAlertInterval is DefaultAlerts' interval.
const defaultAlertInterval = 5 * time.Minute

// Labels is the value of --alert-labels: name=value pairs added to every
// alert posted to Alertmanager, e.g. env=prod,team=auth. Names are
// Prometheus label names; alertname and channel are the alert's own.
type Labels map[string]string

var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

func (l Labels) String() string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(l)) {
		parts = append(parts, k+"="+l[k])
	}
	return strings.Join(parts, ",")
}

// Set replaces the labels with those of v ("" sets none).
func (l *Labels) Set(v string) error {
	labels, err := setPairs(v, "NAME=VALUE, e.g. env=prod", func(name string) (string, error) {
		switch {
		case !labelName.MatchString(name) || strings.HasPrefix(name, "__"):
			return "", fmt.Errorf("%q is not a label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)", name)
		case name == "alertname" || name == "channel":
			return "", fmt.Errorf("%s is the alert's own label", name)
		}
		return name, nil
	}, func(value string) (string, error) {
		if value == "" {
			return "", errors.New("want NAME=VALUE, e.g. env=prod")
		}
		return value, nil
	})
	if err == nil {
		*l = labels
	}
	return err
}
