package reporter

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/otpscope/otpscope/internal/ops"
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
	r := RulesResponse{Schedule: c.Alerts, WindowSeconds: a.Window.Seconds(), ForSeconds: c.AlertFor.Seconds(), KeepFiringForSeconds: c.AlertKeepFiringFor.Seconds(),
		RepeatSeconds: c.AlertRepeat.Seconds(), Webhook: c.AlertWebhookURL != "", Alertmanagers: len(c.AlertmanagerURLs), TZ: c.zone().String(), Rules: rules}
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
	return b + "; every firing and resolution is published on NATS and stored."
}

// MountRules adds GET /api/v1/alerts/rules to router: the rules in force,
// which the console lists under the alerts.
func (r *Reports) MountRules(router chi.Router) {
	rules := r.cfg.InForce()
	router.With(QueryParams(nil)).Get("/api/v1/alerts/rules", func(w http.ResponseWriter, req *http.Request) {
		ops.WriteJSON(w, rules)
	})
}
