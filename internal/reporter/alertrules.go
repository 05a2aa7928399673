package reporter

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"golang.org/x/time/rate"

	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/ops"
	"github.com/otpscope/otpscope/internal/problem"
)

// RulesResponse is the body of GET /api/v1/alerts/rules: the alert rules
// this reporter evaluates, as its flags set them, for whoever asks why a
// rule fired, or why none did, without the flags at hand. Where alerts go
// is said, not the webhook's or Alertmanagers' addresses: a Slack
// webhook's URL is its secret.
type RulesResponse struct {
	// Schedule is --alert-schedule; empty, the rules are not evaluated.
	Schedule             string  `json:"schedule"`
	WindowSeconds        float64 `json:"window_seconds"`
	ForSeconds           float64 `json:"for_seconds"`
	KeepFiringForSeconds float64 `json:"keep_firing_for_seconds"`
	RepeatSeconds        float64 `json:"repeat_seconds"`
	Webhook              bool    `json:"webhook"`
	Alertmanagers        int     `json:"alertmanagers"`
	// RunbookURL is --alert-runbook-url, {rule} and {channel} not yet
	// replaced; empty, none.
	RunbookURL string `json:"runbook_url"`
	// TZ is --report-timezone, the clock of the summaries' words.
	TZ    string        `json:"tz"`
	Rules []RuleInForce `json:"rules"`
	// Says is all but the rules in words: when they are evaluated, over
	// what, and who hears.
	Says string `json:"says"`
}

// RuleInForce is one rule: On when it judges any channel (the fallback
// rate, for fallback_rate_high); its Threshold for every channel without
// its own (delivery_slow's in ms, delivery_rate_drop's a share: 0.1 is
// ten points); Channels, those with their own (0: off for that channel);
// MinVolume of Volume the window needs; delivery_rate_drop's Confidence;
// and Says, the rule in words.
type RuleInForce struct {
	Rule       string             `json:"rule"`
	On         bool               `json:"on"`
	Threshold  float64            `json:"threshold"`
	Channels   map[string]float64 `json:"channels,omitempty"`
	MinVolume  uint64             `json:"min_volume"`
	Volume     string             `json:"volume"`
	Confidence *float64           `json:"confidence,omitempty"`
	Says       string             `json:"says"`
}

// InForce is the rules c evaluates.
func (c *ReportsConfig) InForce() RulesResponse {
	a := c.Rules
	minSettled, minOTPs := max(a.MinSettled, 1), max(a.MinOTPs, 1)
	slow := map[string]float64{}
	for ch, d := range a.ChannelMaxLatencyP95 {
		slow[ch] = msOf(d)
	}
	pct := func(v float64) string { return AlertFigure(RuleDeliveryRateLow, v) }
	rules := []RuleInForce{
		inForce(RuleDeliveryRateLow, a.MinDeliveryRate, a.ChannelMinDeliveryRate, minSettled, "settled attempts", pct,
			"a channel's delivery rate below %s, with at least %d settled attempts in the window", "--alert-min-delivery-rate"),
		inForce(RuleDeliverySlow, msOf(a.MaxLatencyP95), slow, minSettled, "delivered attempts", func(v float64) string { return AlertFigure(RuleDeliverySlow, v) },
			"a channel's p95 latency (dispatch → DELIVERED) above %s, with at least %d delivered attempts in the window", "--alert-max-latency-p95"),
		inForce(RuleDeliveryRateDrop, a.MaxDeliveryRateDrop, a.ChannelMaxDeliveryRateDrop, minSettled, "settled attempts", points,
			"a channel's delivery rate more than %s below the window before's, with at least %d settled attempts in each", "--alert-max-delivery-rate-drop"),
		inForce(RuleFallbackRateHigh, a.MaxFallbackRate, nil, minOTPs, "journeys", pct,
			"the share of journeys that fell back above %s, with at least %d journeys in the window", "--alert-max-fallback-rate"),
	}
	drop := &rules[2]
	drop.Confidence = &a.DropConfidence
	if drop.On {
		if a.DropConfidence > 0 {
			drop.Says += fmt.Sprintf(", and a fall as large, were nothing changed, a chance under %s", lineSaid(a.DropConfidence))
		} else {
			drop.Says += ", judged on points alone (--alert-delivery-rate-drop-confidence 0)"
		}
	}
	rules = append(rules, burnInForce(a, minOTPs))
	r := RulesResponse{Schedule: c.Alerts, WindowSeconds: a.Window.Seconds(), ForSeconds: c.AlertFor.Seconds(), KeepFiringForSeconds: c.AlertKeepFiringFor.Seconds(),
		RepeatSeconds: c.AlertRepeat.Seconds(), Webhook: c.AlertWebhookURL != "", Alertmanagers: len(c.AlertmanagerURLs), RunbookURL: c.RunbookURL, TZ: c.zone().String(), Rules: rules}
	r.Says = c.alertWords()
	return r
}

// inForce is one rule whose threshold is threshold but for channels' own
// (fig writes each), its words says (a threshold's %s, the volume's %d)
// or, when it judges nothing, that flag is 0.
func inForce(rule string, threshold float64, channels map[string]float64, minVolume uint64, volume string, fig func(float64) string, says, flag string) RuleInForce {
	r := RuleInForce{Rule: rule, Threshold: threshold, Channels: maps.Clone(channels), MinVolume: minVolume, Volume: volume}
	r.On = threshold > 0 || slices.ContainsFunc(slices.Collect(maps.Values(channels)), func(v float64) bool { return v > 0 })
	if !r.On {
		r.Says = "off: " + flag + " is 0"
		return r
	}
	var own []string
	for _, ch := range slices.Sorted(maps.Keys(channels)) {
		switch v := channels[ch]; {
		case v > 0:
			own = append(own, ch+" "+fig(v))
		case threshold > 0:
			own = append(own, ch+" off")
		}
	}
	limit := fig(threshold)
	switch {
	case threshold <= 0:
		limit = strings.Join(own, ", ") + " (no other channel)"
	case len(own) > 0:
		limit += " (" + strings.Join(own, ", ") + ")"
	}
	r.Says = fmt.Sprintf(says, limit, minVolume)
	return r
}

// burnInForce is error_budget_burn as a's objective sets it.
func burnInForce(a AlertRules, minOTPs uint64) RuleInForce {
	r := RuleInForce{Rule: RuleErrorBudgetBurn, On: a.Objective.DeliveryRate > 0, Threshold: burnPairs[0].factor, MinVolume: minOTPs, Volume: "settled journeys"}
	if !r.On {
		r.Says = "off: --slo-delivery-rate is 0"
		return r
	}
	var pairs []string
	for _, p := range burnPairs {
		pairs = append(pairs, fmt.Sprintf("at least %s as fast as it lasts over the last %s and the last %s", AlertFigure(RuleErrorBudgetBurn, p.factor), humanDuration(p.long), humanDuration(p.short)))
	}
	r.Says = fmt.Sprintf("the logins burning the error budget of the objective (%s of settled journeys delivered over %s) %s, with at least %d settled journeys in the longer window",
		sloPct(a.Objective.DeliveryRate), humanDuration(a.Objective.window()), strings.Join(pairs, ", or "), minOTPs)
	return r
}

// alertWords says when c's rules are evaluated, over what, and who hears.
func (c *ReportsConfig) alertWords() string {
	if c.Alerts == "" {
		return "Not evaluated: --alert-schedule is empty."
	}
	b := fmt.Sprintf("Evaluated on %q (--alert-schedule) over the last %s (--alert-window). A rule fires ", c.Alerts, humanDuration(c.Rules.Window))
	if c.AlertFor > 0 {
		b += "once it has held at every evaluation for " + humanDuration(c.AlertFor) + " (--alert-for)"
	} else {
		b += "at the first evaluation it holds at"
	}
	if c.AlertKeepFiringFor > 0 {
		b += " and resolves " + humanDuration(c.AlertKeepFiringFor) + " after it last held (--alert-keep-firing-for). "
	} else {
		b += " and resolves at the first it does not. "
	}
	switch {
	case c.AlertWebhookURL != "" && c.AlertRepeat > 0:
		b += "The webhook hears when one fires, every " + humanDuration(c.AlertRepeat) + " while it fires (--alert-repeat) and when it resolves"
	case c.AlertWebhookURL != "":
		b += "The webhook hears when one fires and when it resolves"
	default:
		b += "No webhook (--alert-webhook-url)"
	}
	switch n := len(c.AlertmanagerURLs); n {
	case 0:
		b += "; no Alertmanager (--alertmanager-url)"
	case 1:
		b += "; an Alertmanager hears every evaluation"
	default:
		b += fmt.Sprintf("; %d Alertmanagers hear every evaluation", n)
	}
	b += "; every firing and resolution is published on NATS and stored."
	if c.RunbookURL != "" {
		b += " A firing names its runbook: " + c.RunbookURL + " (--alert-runbook-url)."
	}
	return b
}

// TestAlertResponse is the body of POST /api/v1/alerts/test: what the
// webhook and each Alertmanager, in --alertmanager-url's order, did with a
// test alert; Webhook is null without --alert-webhook-url.
type TestAlertResponse struct {
	Webhook       *TestPost  `json:"webhook"`
	Alertmanagers []TestPost `json:"alertmanagers"`
}

// TestPost is one destination's answer to a test alert: Sent when it took
// it (2xx), else Error says why not.
type TestPost struct {
	Sent  bool   `json:"sent"`
	Error string `json:"error,omitempty"`
}

// TestAlertRule is the rule a test alert names: none of the rules'.
const TestAlertRule = "otpscope_test"

// testAlertInterval is the evaluation interval a test alert is sent as
// of: Alertmanager ends it by itself four of them later (alertmanagerEndsAt).
const testAlertInterval = time.Minute

// SendTestAlert sends a test alert at now to the webhook and every
// Alertmanager as a firing goes to them, for a team to see its alerts
// arrive where it routes them (a chat webhook's URL mistyped, an
// Alertmanager route that drops them) before a rule fires: not published
// on NATS nor stored, since no rule fired, and not counted in the posts'
// metrics, which are the rules' alerts'. In Alertmanager its alertname is
// TestAlertRule, with --alert-labels, and it resolves four minutes later.
func (r *Reports) SendTestAlert(ctx context.Context, now time.Time) TestAlertResponse {
	al := Alert{Rule: TestAlertRule, State: events.AlertFiring, Since: now, From: now, To: now,
		Summary: "a test of otpscope's alert notifications, sent by hand at " + r.cfg.Rules.clock(now) + " (POST /api/v1/alerts/test): no rule fired"}
	link := func(*Alert) string { return r.cfg.ConsoleURL }
	posted := func(err error) TestPost {
		if err != nil {
			return TestPost{Error: err.Error()}
		}
		return TestPost{Sent: true}
	}
	out := TestAlertResponse{Alertmanagers: []TestPost{}}
	if r.cfg.AlertWebhookURL != "" {
		body, err := webhookBody(":test_tube: otpscope test alert: "+al.Summary, &al, r.cfg.runbookLink(&al), r.cfg.ConsoleURL)
		if err == nil {
			err = r.postWebhook(ctx, body)
		}
		sent := posted(err)
		out.Webhook = &sent
	}
	errs := make([]error, len(r.cfg.AlertmanagerURLs))
	if body, err := json.Marshal(alertmanagerAlerts([]Alert{al}, r.cfg.AlertLabels, now, testAlertInterval, link, r.cfg.runbookLink)); err != nil {
		for i := range errs {
			errs[i] = err
		}
	} else {
		errs = r.postAlertmanagers(ctx, body)
	}
	for _, err := range errs {
		out.Alertmanagers = append(out.Alertmanagers, posted(err))
	}
	return out
}

// Test alerts page whoever is on call: a script or a hand that repeats
// one would page them again and again. TestAlertBurst may be sent at
// once, then one every TestAlertEvery, per process.
const (
	TestAlertBurst = 3
	TestAlertEvery = 20 * time.Second
)

// MountRules adds GET /api/v1/alerts/rules to router, the rules in force,
// which the console lists under the alerts, and POST /api/v1/alerts/test,
// which sends a test alert (an action: the API token's alone), at most as
// often as TestAlertBurst and TestAlertEvery allow (else 429).
func (r *Reports) MountRules(router chi.Router) {
	rules := r.cfg.InForce()
	none := QueryParams(nil)
	router.With(none).Get("/api/v1/alerts/rules", func(w http.ResponseWriter, req *http.Request) {
		ops.WriteJSON(w, rules)
	})
	tests := rate.NewLimiter(rate.Every(TestAlertEvery), TestAlertBurst)
	router.With(none).Post("/api/v1/alerts/test", func(w http.ResponseWriter, req *http.Request) {
		if res := tests.Reserve(); res.Delay() > 0 {
			wait := res.Delay()
			res.Cancel()
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			problem.Write(w, problem.Details{Status: http.StatusTooManyRequests, Title: "Too many test alerts",
				Detail: fmt.Sprintf("each pages whoever is on call: %d at once, then one every %s; the next in %s", TestAlertBurst, humanDuration(TestAlertEvery), wait.Round(time.Second)), Instance: req.URL.Path})
			return
		}
		sent := r.SendTestAlert(req.Context(), r.now())
		attrs := []any{"alertmanagers", len(sent.Alertmanagers)}
		if sent.Webhook != nil {
			attrs = append(attrs, "webhook_sent", sent.Webhook.Sent)
		}
		for i, am := range sent.Alertmanagers {
			attrs = append(attrs, fmt.Sprintf("alertmanager_%d_sent", i+1), am.Sent)
		}
		r.logger.Info("test alert sent", attrs...)
		ops.WriteJSON(w, sent)
	})
}
