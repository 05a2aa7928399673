package reporter

import (
	"context"
	"encoding/json"
	"fmt"
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

// Evaluate returns the alerts that fire on the figures of one window.
func (a AlertRules) Evaluate(from, to time.Time, chs []store.ChannelStats, fb store.FallbackStats) []Alert {
	var out []Alert
	if a.MinDeliveryRate > 0 {
		for _, c := range chs {
			settled := c.Delivered + c.Failed
			if c.DeliveryRate == nil || settled < max(a.MinSettled, 1) || *c.DeliveryRate >= a.MinDeliveryRate {
				continue
			}
			out = append(out, Alert{
				Rule: RuleDeliveryRateLow, Channel: c.Channel, From: from, To: to, Value: *c.DeliveryRate, Threshold: a.MinDeliveryRate, Volume: settled,
				Summary: fmt.Sprintf("%s delivery rate %s below %s (%d of %d settled attempts delivered, %s – %s)", c.Channel,
					fmtPct(c.DeliveryRate), fmtPct(&a.MinDeliveryRate), c.Delivered, settled, from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339)),
			})
		}
	}
	if a.MaxFallbackRate > 0 && fb.FallbackRate != nil && fb.OTPs >= max(a.MinOTPs, 1) && *fb.FallbackRate > a.MaxFallbackRate {
		out = append(out, Alert{
			Rule: RuleFallbackRateHigh, From: from, To: to, Value: *fb.FallbackRate, Threshold: a.MaxFallbackRate, Volume: fb.OTPs,
			Summary: fmt.Sprintf("fallback rate %s above %s (%d of %d OTPs fell back, %s – %s)", fmtPct(fb.FallbackRate), fmtPct(&a.MaxFallbackRate),
				fb.FallbackOTPs, fb.OTPs, from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339)),
		})
	}
	return out
}

// slackPayload is what a Slack incoming webhook (and compatible receivers)
// accepts: text, plus the alert itself for receivers that read JSON.
func slackPayload(al *Alert) ([]byte, error) {
	return json.Marshal(struct {
		Text  string `json:"text"`
		Alert *Alert `json:"alert"`
	}{":rotating_light: otpscope " + al.Rule + ": " + al.Summary + " (value " + strconv.FormatFloat(al.Value, 'f', 4, 64) + ")", al})
}

// alertContext bounds one webhook POST.
func alertContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, 10*time.Second)
}
