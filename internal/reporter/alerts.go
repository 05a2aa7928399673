package reporter

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/store"
)

// Alert rules, the last token of tyntec.2fa.alert.<RULE>.
const (
	RuleDeliveryRateLow  = "delivery_rate_low"
	RuleFallbackRateHigh = "fallback_rate_high"
)

// Defaults of the alert thresholds, shared by the reporter's rules, the
// thresholds the HTML report marks and the dashboards' colours.
const (
	DefaultMinDeliveryRate = 0.8
	DefaultMaxFallbackRate = 0.2
)

// AlertRules are the thresholds the alerts are evaluated against, each over
// the Window that ends at the evaluation.
type AlertRules struct {
	Window time.Duration
	// MinDeliveryRate fires delivery_rate_low for a channel whose delivery rate
	// is below it, once the channel has MinSettled settled attempts. 0 disables.
	MinDeliveryRate float64
	MinSettled      uint64
	// MaxFallbackRate fires fallback_rate_high when the share of OTPs that fell
	// back is above it, once there are MinOTPs journeys. 0 disables.
	MaxFallbackRate float64
	MinOTPs         uint64
}

// Alert is the payload of tyntec.2fa.alert.<RULE> (events.Alert): the sink
// stores it, the API lists it.
type Alert = events.Alert

// Evaluate returns the alerts that fire on the figures of one window, each
// as if it began firing then (Reports.Evaluate carries a firing on).
func (a AlertRules) Evaluate(from, to time.Time, chs []store.ChannelStats, fb store.FallbackStats) []Alert {
	var out []Alert
	if a.MinDeliveryRate > 0 {
		for _, c := range chs {
			settled := c.Delivered + c.Failed
			if c.DeliveryRate == nil || settled < max(a.MinSettled, 1) || *c.DeliveryRate >= a.MinDeliveryRate {
				continue
			}
			out = append(out, Alert{
				Rule: RuleDeliveryRateLow, Channel: c.Channel, State: events.AlertFiring, Since: to, From: from, To: to, Value: *c.DeliveryRate, Threshold: a.MinDeliveryRate, Volume: settled,
				Summary: fmt.Sprintf("%s delivery rate %s below %s (%d of %d settled attempts delivered, %s – %s)", c.Channel,
					fmtPct(c.DeliveryRate), fmtPct(&a.MinDeliveryRate), c.Delivered, settled, from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339)),
			})
		}
	}
	if a.MaxFallbackRate > 0 && fb.FallbackRate != nil && fb.OTPs >= max(a.MinOTPs, 1) && *fb.FallbackRate > a.MaxFallbackRate {
		out = append(out, Alert{
			Rule: RuleFallbackRateHigh, State: events.AlertFiring, Since: to, From: from, To: to, Value: *fb.FallbackRate, Threshold: a.MaxFallbackRate, Volume: fb.OTPs,
			Summary: fmt.Sprintf("fallback rate %s above %s (%d of %d OTPs fell back, %s – %s)", fmtPct(fb.FallbackRate), fmtPct(&a.MaxFallbackRate),
				fb.FallbackOTPs, fb.OTPs, from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339)),
		})
	}
	return out
}

// Resolved is the alert that ends the firing of rule on channel since
// since: the rule no longer holds on the figures of [from, to), because the
// figure is back within the threshold, the volume fell below the rule's
// minimum, or the rule was turned off.
func (a AlertRules) Resolved(rule, channel string, since, from, to time.Time, chs []store.ChannelStats, fb store.FallbackStats) Alert {
	al := Alert{Rule: rule, Channel: channel, State: events.AlertResolved, Since: since, From: from, To: to}
	span := fmt.Sprintf("firing since %s; %s – %s", since.UTC().Format(time.RFC3339), from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))
	switch rule {
	case RuleDeliveryRateLow:
		var c store.ChannelStats
		if i := slices.IndexFunc(chs, func(c store.ChannelStats) bool { return c.Channel == channel }); i >= 0 {
			c = chs[i]
		}
		settled := c.Delivered + c.Failed
		al.Threshold, al.Volume = a.MinDeliveryRate, settled
		if c.DeliveryRate != nil {
			al.Value = *c.DeliveryRate
		}
		switch {
		case a.MinDeliveryRate <= 0:
			al.Summary = fmt.Sprintf("%s delivery rate no longer watched: --alert-min-delivery-rate is 0 (%s)", channel, span)
		case c.DeliveryRate == nil || settled < max(a.MinSettled, 1):
			al.Summary = fmt.Sprintf("%s delivery rate no longer judged: %d settled attempts, the rule needs %d (%s)", channel, settled, max(a.MinSettled, 1), span)
		default:
			al.Summary = fmt.Sprintf("%s delivery rate back to %s, at least %s (%d of %d settled attempts delivered; %s)", channel,
				fmtPct(c.DeliveryRate), fmtPct(&a.MinDeliveryRate), c.Delivered, settled, span)
		}
	case RuleFallbackRateHigh:
		al.Threshold, al.Volume = a.MaxFallbackRate, fb.OTPs
		if fb.FallbackRate != nil {
			al.Value = *fb.FallbackRate
		}
		switch {
		case a.MaxFallbackRate <= 0:
			al.Summary = fmt.Sprintf("fallback rate no longer watched: --alert-max-fallback-rate is 0 (%s)", span)
		case fb.FallbackRate == nil || fb.OTPs < max(a.MinOTPs, 1):
			al.Summary = fmt.Sprintf("fallback rate no longer judged: %d OTPs, the rule needs %d (%s)", fb.OTPs, max(a.MinOTPs, 1), span)
		default:
			al.Summary = fmt.Sprintf("fallback rate back to %s, at most %s (%d of %d OTPs fell back; %s)", fmtPct(fb.FallbackRate), fmtPct(&a.MaxFallbackRate),
				fb.FallbackOTPs, fb.OTPs, span)
		}
	default: // kept by a release with rules this one does not have
		al.Summary = fmt.Sprintf("%s no longer evaluated by this release (%s)", rule, span)
	}
	return al
}

// slackPayload is what a Slack incoming webhook (and compatible receivers)
// accepts: text, plus the alert itself for receivers that read JSON.
func slackPayload(al *Alert) ([]byte, error) {
	text := ":rotating_light: otpscope " + al.Rule + ": " + al.Summary + " (value " + strconv.FormatFloat(al.Value, 'f', 4, 64) + ")"
	switch {
	case al.State == events.AlertResolved:
		text = ":white_check_mark: otpscope " + al.Rule + " resolved: " + al.Summary
	case al.Since.Before(al.To):
		text += ", firing since " + al.Since.UTC().Format(time.RFC3339)
	}
	return json.Marshal(struct {
		Text  string `json:"text"`
		Alert *Alert `json:"alert"`
	}{text, al})
}

// alertContext bounds one webhook POST.
func alertContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, 10*time.Second)
}
