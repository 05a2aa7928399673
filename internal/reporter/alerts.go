package reporter

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/store"
)

// Alert rules, the last token of tyntec.2fa.alert.<RULE>.
const (
	RuleDeliveryRateLow  = "delivery_rate_low"
	RuleFallbackRateHigh = "fallback_rate_high"
	// RuleDeliverySlow: a channel's p95 latency, dispatch to DELIVERED
	// (/channels' latency_ms, not a journey's time to deliver), is above its
	// threshold. Its value and threshold are milliseconds, the others' rates
	// (AlertFigure formats either).
	RuleDeliverySlow = "delivery_slow"
	// RuleDeliveryRateDrop: a channel's delivery rate fell more than its
	// limit below its rate in the window before (its threshold: that rate
	// less the limit), where delivery_rate_low's fixed threshold is still
	// met: an SMS at 98 % that falls to 86 %.
	RuleDeliveryRateDrop = "delivery_rate_drop"
)

// Defaults of the alert thresholds, shared by the reporter's rules, the
// thresholds the HTML report marks and the dashboards' colours.
const (
	DefaultMinDeliveryRate = 0.8
	DefaultMaxFallbackRate = 0.2
	// DefaultMaxLatencyP95: a one-time password most users wait a minute
	// for at most, on any channel (a voice call included) is late.
	DefaultMaxLatencyP95 = time.Minute
	// DefaultDropConfidence: delivery_rate_drop fires on a fall chance
	// makes under 5 % of the time, the usual line of a one-sided test.
	DefaultDropConfidence = 0.95
)

// AlertRules are the thresholds the alerts are evaluated against, each over
// the Window that ends at the evaluation.
type AlertRules struct {
	Window time.Duration
	// MinDeliveryRate fires delivery_rate_low for a channel whose delivery rate
	// is below it, once the channel has MinSettled settled attempts. 0 disables.
	// ChannelMinDeliveryRate overrides it per channel (0 turns the rule off
	// for that channel): channels differ, a silent auth that verifies 80 %
	// of the time may be healthy where an SMS at 80 % is not.
	MinDeliveryRate        float64
	ChannelMinDeliveryRate ChannelRates
	MinSettled             uint64
	// MaxFallbackRate fires fallback_rate_high when the share of journeys
	// (logins, OTP or not) that fell back is above it, once there are MinOTPs
	// journeys (named so from before methods existed). 0 disables.
	MaxFallbackRate float64
	MinOTPs         uint64
	// MaxLatencyP95 fires delivery_slow for a channel whose p95 time from
	// dispatch to DELIVERED is above it, once the channel has MinSettled
	// delivered attempts. ChannelMaxLatencyP95 overrides it per channel (0
	// turns the rule off for that channel). 0 disables.
	MaxLatencyP95        time.Duration
	ChannelMaxLatencyP95 ChannelDurations
	// MaxDeliveryRateDrop fires delivery_rate_drop for a channel whose
	// delivery rate is more than it (a share: 0.1 is ten points) below its
	// rate in the window before, as long and ending where the window
	// starts, both windows with MinSettled settled attempts.
	// ChannelMaxDeliveryRateDrop overrides it per channel (0 turns it off
	// for that channel). 0 disables.
	MaxDeliveryRateDrop        float64
	ChannelMaxDeliveryRateDrop ChannelRates
	// DropConfidence is how sure delivery_rate_drop must be that a fall is
	// not chance: it fires only when a fall as large, were nothing changed,
	// is less likely than 1 − DropConfidence (fallChance). An hour of a few
	// dozen attempts swings ten points by chance; a limit in points alone
	// would page on it. 0 judges on points alone.
	DropConfidence float64
	// Objective is the logins' service-level objective (objective.go):
	// /api/v1/slo reads against it, and error_budget_burn judges how fast
	// the recent windows burn its budget.
	Objective Objective
	// Zone is the clock the summaries give their times on
	// (--report-timezone, as the reports'); nil is UTC. The words alone: an
	// alert's fields, and the window Alertmanager hears, stay in UTC.
	Zone *time.Location
}

// clock is t as a summary says it: RFC 3339 on Zone's clock, its offset
// with it ("2026-11-03T17:00:00+05:30"; "…Z" in UTC).
func (a AlertRules) clock(t time.Time) string {
	zone := a.Zone
	if zone == nil {
		zone = time.UTC
	}
	return t.In(zone).Format(time.RFC3339)
}

// sureDrop reports whether delivery_rate_drop is sure enough of a fall
// whose chance, were nothing changed, is chance.
func (a AlertRules) sureDrop(chance float64) bool {
	return a.DropConfidence <= 0 || chance < 1-a.DropConfidence
}

// maxDeliveryRateDrop is the drop limit of channel: its own, else the
// default; 0 when the rule is off for it.
func (a AlertRules) maxDeliveryRateDrop(channel string) float64 {
	if r, ok := a.ChannelMaxDeliveryRateDrop[channel]; ok {
		return r
	}
	return a.MaxDeliveryRateDrop
}

// WatchesDrops reports whether delivery_rate_drop is on for any channel:
// then every evaluation reads the window before.
func (a AlertRules) WatchesDrops() bool {
	for _, r := range a.ChannelMaxDeliveryRateDrop {
		if r > 0 {
			return true
		}
	}
	return a.MaxDeliveryRateDrop > 0
}

// maxLatencyP95 is the latency threshold of channel: its own, else the
// default; 0 when the rule is off for it.
func (a AlertRules) maxLatencyP95(channel string) time.Duration {
	if d, ok := a.ChannelMaxLatencyP95[channel]; ok {
		return d
	}
	return a.MaxLatencyP95
}

// minDeliveryRate is the delivery-rate threshold of channel: its own, else
// the default; 0 when the rule is off for it.
func (a AlertRules) minDeliveryRate(channel string) float64 {
	if r, ok := a.ChannelMinDeliveryRate[channel]; ok {
		return r
	}
	return a.MinDeliveryRate
}

// ChannelRates is a rate per channel, the value of a flag such as
// --alert-channel-min-delivery-rate SMS=0.95,VOICE=0.7: channels in any
// case (kept upper-case, as tyntec writes them), rates within 0..1. OTHER's
// is the rate of the channels otpscope does not know, judged together.
type ChannelRates map[string]float64

func (c ChannelRates) String() string {
	var parts []string
	for _, ch := range slices.Sorted(maps.Keys(c)) {
		parts = append(parts, ch+"="+strconv.FormatFloat(c[ch], 'g', -1, 64))
	}
	return strings.Join(parts, ",")
}

// Set replaces the rates with those of v ("" sets none).
func (c *ChannelRates) Set(v string) error {
	rates, err := setPairs(v, "CHANNEL=RATE, e.g. SMS=0.95", channelKey, func(s string) (float64, error) {
		r, err := strconv.ParseFloat(s, 64)
		if err != nil || r < 0 || r > 1 {
			return 0, errors.New("the rate must be a number within 0..1")
		}
		return r, nil
	})
	if err == nil {
		*c = rates
	}
	return err
}

// setPairs reads v, comma-separated KEY=VALUE pairs ("" none), into a map:
// each key as key returns it (or refuses it), each value parsed by value;
// form names the pairs' form in errors. A key given twice is refused.
func setPairs[V any](v, form string, key func(string) (string, error), value func(string) (V, error)) (map[string]V, error) {
	out := map[string]V{}
	for part := range strings.SplitSeq(v, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		k, raw, ok := strings.Cut(part, "=")
		if k = strings.TrimSpace(k); !ok || k == "" {
			return nil, fmt.Errorf("%q: want %s", part, form)
		}
		k, err := key(k)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", part, err)
		}
		x, err := value(strings.TrimSpace(raw))
		if err != nil {
			return nil, fmt.Errorf("%q: %w", part, err)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("%s given twice", k)
		}
		out[k] = x
	}
	return out, nil
}

// channelKey is a channel as tyntec writes it: upper-case, and a name a
// channel can have (events.WellFormed), which the API's filters ask too.
func channelKey(s string) (string, error) {
	if c := strings.ToUpper(s); events.WellFormed(c) {
		return c, nil
	}
	return "", fmt.Errorf("%q is not a channel name: want a word of letters, digits and _, a letter first, such as SMS", s)
}

// KnownChannels are the channels otpscope knows: tyntec's documented OTP
// channels and the verification methods counted as channels.
var KnownChannels = []string{
	string(events.ChannelSMS), string(events.ChannelVoice), string(events.ChannelViber), string(events.ChannelWhatsApp),
	string(events.ChannelSilent), string(events.ChannelPush),
}

// Unknown are the channels given a rate that are not KnownChannels, sorted:
// accepted, since tyntec adds channels, but more often a typo, which leaves
// the channel meant on the default threshold. OTHER is not one: its rate is
// the threshold of the channels otpscope does not know, judged together.
func (c ChannelRates) Unknown() []string { return unknownChannels(c) }

// Unknown is ChannelRates.Unknown for durations.
func (c ChannelDurations) Unknown() []string { return unknownChannels(c) }

func unknownChannels[V any](m map[string]V) []string {
	var out []string
	for _, ch := range slices.Sorted(maps.Keys(m)) {
		if !slices.Contains(KnownChannels, ch) && ch != OtherChannels {
			out = append(out, ch)
		}
	}
	return out
}

// ChannelDurations is a duration per channel, the value of
// --alert-channel-max-latency-p95 SMS=30s,VOICE=2m: channels in any case
// (kept upper-case), durations not negative.
type ChannelDurations map[string]time.Duration

func (c ChannelDurations) String() string {
	var parts []string
	for _, ch := range slices.Sorted(maps.Keys(c)) {
		parts = append(parts, ch+"="+c[ch].String())
	}
	return strings.Join(parts, ",")
}

// Set replaces the durations with those of v ("" sets none).
func (c *ChannelDurations) Set(v string) error {
	durations, err := setPairs(v, "CHANNEL=DURATION, e.g. SMS=30s", func(s string) (string, error) {
		ch, err := channelKey(s)
		if err == nil && ch == OtherChannels {
			err = errors.New("OTHER, the channels otpscope does not know judged together, has no latency alert (their percentiles cannot be summed): name the channel to watch its latency")
		}
		return ch, err
	}, func(s string) (time.Duration, error) {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return 0, errors.New("want a duration such as 30s or 2m, not negative")
		}
		return d, nil
	})
	if err == nil {
		*c = durations
	}
	return err
}

// Alert is the payload of tyntec.2fa.alert.<RULE> (events.Alert): the sink
// stores it, the API lists it.
type Alert = events.Alert

// Evaluate returns the alerts that fire on the figures of one window, each
// as if it began firing then (Reports.Evaluate carries a firing on). The
// channels are judged as AlertRules.series groups them: one alert at most
// per rule for every channel otpscope does not know.
func (a AlertRules) Evaluate(from, to time.Time, chs []store.ChannelStats, fb store.FallbackStats) []Alert {
	series, other := a.series(chs)
	var out []Alert
	for _, c := range series {
		threshold := a.minDeliveryRate(c.Channel)
		settled := c.Delivered + c.Failed
		if threshold <= 0 || c.DeliveryRate == nil || settled < max(a.MinSettled, 1) || *c.DeliveryRate >= threshold {
			continue
		}
		members := failedBy(c.Errors)
		if c.Channel == OtherChannels {
			members = "; " + otherMembers(other)
		}
		v, t := AlertFigures(RuleDeliveryRateLow, *c.DeliveryRate, threshold)
		out = append(out, Alert{
			Rule: RuleDeliveryRateLow, Channel: c.Channel, State: events.AlertFiring, Since: to, From: from, To: to, Value: *c.DeliveryRate, Threshold: threshold, Volume: settled,
			Summary: fmt.Sprintf("%s delivery rate %s below %s (%d of %d settled attempts delivered, %s – %s%s)", c.Channel,
				v, t, c.Delivered, settled, a.clock(from), a.clock(to), members),
		})
	}
	for _, c := range series {
		threshold := a.maxLatencyP95(c.Channel)
		if threshold <= 0 || c.LatencyMS == nil || c.Delivered < max(a.MinSettled, 1) || c.LatencyMS.P95 <= msOf(threshold) {
			continue
		}
		v, t := AlertFigures(RuleDeliverySlow, c.LatencyMS.P95, msOf(threshold))
		out = append(out, Alert{
			Rule: RuleDeliverySlow, Channel: c.Channel, State: events.AlertFiring, Since: to, From: from, To: to, Value: c.LatencyMS.P95, Threshold: msOf(threshold), Volume: c.Delivered,
			Summary: fmt.Sprintf("%s p95 latency (dispatch → DELIVERED) %s above %s (%d delivered attempts, %s – %s)", c.Channel,
				v, t, c.Delivered, a.clock(from), a.clock(to)),
		})
	}
	if a.MaxFallbackRate > 0 && fb.FallbackRate != nil && fb.OTPs >= max(a.MinOTPs, 1) && *fb.FallbackRate > a.MaxFallbackRate {
		v, t := AlertFigures(RuleFallbackRateHigh, *fb.FallbackRate, a.MaxFallbackRate)
		out = append(out, Alert{
			Rule: RuleFallbackRateHigh, State: events.AlertFiring, Since: to, From: from, To: to, Value: *fb.FallbackRate, Threshold: a.MaxFallbackRate, Volume: fb.OTPs,
			Summary: fmt.Sprintf("fallback rate %s above %s (%d of %d journeys fell back, %s – %s)", v, t,
				fb.FallbackOTPs, fb.OTPs, a.clock(from), a.clock(to)),
		})
	}
	return out
}

// failedBy names a channel's failures by error code, the most first (as
// the store lists them): a few with their counts, the rest counted, so
// that a delivery_rate_low says what went wrong (what the console's errors
// column says) without growing with the codes. A failure without a code
// (recovered by polling) is "(none)", as in the reports.
func failedBy(errs []store.ErrorCount) string {
	if len(errs) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("; failed: ")
	for i, e := range errs[:min(len(errs), otherNamed)] {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d", cmp.Or(e.Code, "(none)"), e.Count)
	}
	if n := len(errs) - otherNamed; n > 0 {
		fmt.Fprintf(&b, " and %d more codes", n)
	}
	return b.String()
}

// Before sets on each firing alert its figure in the window before the
// alerts' own (as long, ending where it starts), from that window's
// figures, and ends its summary with it: "; the hour before: 96.1% (…)". A
// rate below its threshold reads as a drop when the window before was well
// above it, and as how things stand when it was not. Resolutions are left
// as they are ("back to" says enough), and so are the alerts that have
// their figure there (delivery_rate_drop's, judged on it).
func (a AlertRules) Before(alerts []Alert, before Figures) {
	series, _ := a.series(before.Channels)
	fb, name := before.Fallback, BeforeName(before.To.Sub(before.From))
	for i := range alerts {
		al := &alerts[i]
		if al.State != events.AlertFiring || al.Before != nil {
			continue
		}
		before := &events.AlertBefore{From: before.From, To: before.To}
		var said string
		switch al.Rule {
		case RuleDeliveryRateLow:
			c := channelStats(series, al.Channel)
			before.Value, before.Volume = copyOf(c.DeliveryRate), c.Delivered+c.Failed
			said = settledSaid(c)
		case RuleDeliverySlow:
			c := channelStats(series, al.Channel)
			before.Volume = c.Delivered
			said = "no delivered attempts"
			if c.LatencyMS != nil {
				before.Value = copyOf(&c.LatencyMS.P95)
				said = fmt.Sprintf("%s (%d delivered attempts)", AlertFigure(al.Rule, c.LatencyMS.P95), c.Delivered)
			}
		case RuleFallbackRateHigh:
			before.Value, before.Volume = copyOf(fb.FallbackRate), fb.OTPs
			said = fmt.Sprintf("%s (%d of %d journeys fell back)", fmtPct(fb.FallbackRate), fb.FallbackOTPs, fb.OTPs)
			if fb.FallbackRate == nil {
				said = "no journeys"
			}
		default:
			continue
		}
		al.Before = before
		al.Summary += "; " + name + ": " + said
	}
}

// settledSaid is a channel's delivery rate of its settled attempts, as the
// alerts say it: "96.0% (96 of 100 settled attempts delivered)".
func settledSaid(c store.ChannelStats) string {
	if c.DeliveryRate == nil {
		return "no settled attempts"
	}
	return fmt.Sprintf("%s (%d of %d settled attempts delivered)", fmtPct(c.DeliveryRate), c.Delivered, c.Delivered+c.Failed)
}

// Drops returns the delivery_rate_drop alerts on the figures of [from, to)
// against those of the window before, each as if it began firing then.
// Each channel is judged against its own rate there, OTHER's channels
// together (AlertRules.series); both windows need MinSettled settled
// attempts, so a channel that starts or stops has no drop.
func (a AlertRules) Drops(from, to time.Time, chs []store.ChannelStats, before Figures) []Alert {
	series, other := a.series(chs)
	was, _ := a.series(before.Channels)
	name := BeforeName(before.To.Sub(before.From))
	var out []Alert
	for _, c := range series {
		drop, b := a.maxDeliveryRateDrop(c.Channel), channelStats(was, c.Channel)
		settled, need := c.Delivered+c.Failed, max(a.MinSettled, 1)
		if drop <= 0 || c.DeliveryRate == nil || b.DeliveryRate == nil || settled < need || b.Delivered+b.Failed < need || *c.DeliveryRate >= *b.DeliveryRate-drop {
			continue
		}
		chance := fallChance(b.Delivered, b.Delivered+b.Failed, c.Delivered, settled)
		if !a.sureDrop(chance) {
			continue
		}
		members := failedBy(c.Errors)
		if c.Channel == OtherChannels {
			members = "; " + otherMembers(other)
		}
		threshold := *b.DeliveryRate - drop
		v, t := AlertFigures(RuleDeliveryRateDrop, *c.DeliveryRate, threshold)
		out = append(out, Alert{
			Rule: RuleDeliveryRateDrop, Channel: c.Channel, State: events.AlertFiring, Since: to, From: from, To: to, Value: *c.DeliveryRate, Threshold: threshold, Volume: settled,
			Before: &events.AlertBefore{From: before.From, To: before.To, Value: copyOf(b.DeliveryRate), Volume: b.Delivered + b.Failed},
			Summary: fmt.Sprintf("%s delivery rate %s below %s, more than %s under %s (%d of %d settled attempts delivered, %s – %s%s); %s: %s; %s", c.Channel,
				v, t, points(drop), name, c.Delivered, settled, a.clock(from), a.clock(to), members, name, settledSaid(b), chanceOfFall(chance)),
		})
	}
	return out
}

// chanceOfFall says a fall's chance, were nothing changed (fallChance).
func chanceOfFall(p float64) string {
	return "a fall as large by chance, were nothing changed: " + chanceSaid(p)
}

// points says a difference of rates in percentage points: 0.1 is "10.0 points".
func points(d float64) string { return strconv.FormatFloat(100*d, 'f', 1, 64) + " points" }

// BeforeName names the window before one span long, as the console does:
// the hour, day or week before, else its length ("the 10 min before").
func BeforeName(span time.Duration) string {
	switch span {
	case time.Hour:
		return "the hour before"
	case 24 * time.Hour:
		return "the day before"
	case 7 * 24 * time.Hour:
		return "the week before"
	}
	return "the " + humanDuration(span) + " before"
}

// copyOf is a pointer to a copy of *p; nil for nil.
func copyOf[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// OtherChannels is the channel of the alerts on every channel otpscope
// does not know, judged together (AlertRules.series); the metrics count
// them under the same name.
const OtherChannels = "OTHER"

// otherNamed is how many of OTHER's channels an alert names; the rest it
// counts.
const otherNamed = 3

// ownSeries reports whether the rules judge channel by itself: a known
// channel, or one an operator gave a threshold of its own. Every other
// channel is judged in OTHER, whatever its name, OTHER included.
func (a AlertRules) ownSeries(channel string) bool {
	if channel == OtherChannels {
		return false
	}
	_, rate := a.ChannelMinDeliveryRate[channel]
	_, latency := a.ChannelMaxLatencyP95[channel]
	_, drop := a.ChannelMaxDeliveryRateDrop[channel]
	return rate || latency || drop || slices.Contains(KnownChannels, channel)
}

// series is chs as the rules judge them: each channel that has its own
// series as it is, then, when there are others, one series OTHER summing
// their attempts and outcomes, and those others, the most failed first.
// An unknown channel is accepted from anyone holding a webhook token
// (tyntec adds channels), so judging each by itself would let one request
// of made-up channels page once per name; judged together, a real new
// channel that fails is still noticed. OTHER has no latency: percentiles
// of several channels cannot be summed from theirs, so it is judged on its
// delivery rate only.
func (a AlertRules) series(chs []store.ChannelStats) ([]store.ChannelStats, []store.ChannelStats) {
	var own, other []store.ChannelStats
	sum := store.ChannelStats{Channel: OtherChannels}
	for _, c := range chs {
		if a.ownSeries(c.Channel) {
			own = append(own, c)
			continue
		}
		other = append(other, c)
		sum.Attempts += c.Attempts
		sum.Delivered += c.Delivered
		sum.Failed += c.Failed
		sum.Undeliverable += c.Undeliverable
		sum.TimedOut += c.TimedOut
		sum.Pending += c.Pending
	}
	if len(other) == 0 {
		return own, nil
	}
	if settled := sum.Delivered + sum.Failed; settled > 0 {
		r := float64(sum.Delivered) / float64(settled)
		sum.DeliveryRate = &r
	}
	slices.SortFunc(other, func(x, y store.ChannelStats) int {
		return cmp.Or(cmp.Compare(y.Failed, x.Failed), cmp.Compare(y.Delivered+y.Failed, x.Delivered+x.Failed), cmp.Compare(x.Channel, y.Channel))
	})
	return append(own, sum), other
}

// otherMembers names the channels judged in OTHER, the most failed first:
// a few by name with their figures, the rest counted, so that an alert's
// size does not grow with the names a webhook made up.
func otherMembers(other []store.ChannelStats) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d channel", len(other))
	if len(other) != 1 {
		b.WriteString("s")
	}
	b.WriteString(" otpscope does not know, judged together: ")
	for i, c := range other[:min(len(other), otherNamed)] {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d failed of %d settled", c.Channel, c.Failed, c.Delivered+c.Failed)
	}
	if n := len(other) - otherNamed; n > 0 {
		fmt.Fprintf(&b, " and %d more", n)
	}
	return b.String()
}

// Watches reports whether the rules judge rule on channel ("" for the
// fallback rate) at all: not once it is turned off (its threshold or limit
// 0, for the channel or for all), once a channel otpscope does not know is
// judged as OTHER rather than by itself, nor a rule this release does not
// have. Resolved says why for each.
func (a AlertRules) Watches(rule, channel string) bool {
	if channel != "" && channel != OtherChannels && !a.ownSeries(channel) || channel == OtherChannels && rule == RuleDeliverySlow {
		return false
	}
	switch rule {
	case RuleDeliveryRateLow:
		return a.minDeliveryRate(channel) > 0
	case RuleDeliverySlow:
		return a.maxLatencyP95(channel) > 0
	case RuleFallbackRateHigh:
		return a.MaxFallbackRate > 0
	case RuleDeliveryRateDrop:
		return a.maxDeliveryRateDrop(channel) > 0
	case RuleErrorBudgetBurn:
		return channel == "" && a.Objective.DeliveryRate > 0
	}
	return false
}

// Resolved is the alert that ends the firing of rule on channel since
// since: the rule no longer holds on the figures of [from, to), because the
// figure is back within the threshold, the volume fell below the rule's
// minimum, or the rule was turned off.
//
// before is the window before's figures, which delivery_rate_drop is judged
// on (none needed for the other rules, or when it is off).
func (a AlertRules) Resolved(rule, channel string, since, from, to time.Time, chs []store.ChannelStats, fb store.FallbackStats, before Figures) Alert {
	al := Alert{Rule: rule, Channel: channel, State: events.AlertResolved, Since: since, From: from, To: to}
	span := fmt.Sprintf("firing since %s; %s – %s", a.clock(since), a.clock(from), a.clock(to))
	series, other := a.series(chs)
	switch {
	case channel != "" && channel != OtherChannels && !a.ownSeries(channel):
		// Fired by itself before OTHER judged it: an older release, or a
		// threshold of its own since removed.
		al.Summary = fmt.Sprintf("%s no longer judged by itself: the channels otpscope does not know are judged together, as %s (%s)", channel, OtherChannels, span)
		return al
	case channel == OtherChannels && rule == RuleDeliverySlow:
		// Fired by a channel named OTHER, before OTHER was every unknown one.
		al.Summary = fmt.Sprintf("%s latency no longer judged: the channels otpscope does not know are judged together on their delivery rate only (%s)", channel, span)
		return al
	}
	switch rule {
	case RuleDeliveryRateLow:
		c := channelStats(series, channel)
		settled := c.Delivered + c.Failed
		threshold := a.minDeliveryRate(channel)
		al.Threshold, al.Volume = threshold, settled
		if c.DeliveryRate != nil {
			al.Value = *c.DeliveryRate
		}
		switch {
		case threshold <= 0:
			al.Summary = fmt.Sprintf("%s delivery rate no longer watched: its threshold is 0 (--alert-min-delivery-rate, --alert-channel-min-delivery-rate) (%s)", channel, span)
		case c.DeliveryRate == nil || settled < max(a.MinSettled, 1):
			al.Summary = fmt.Sprintf("%s delivery rate no longer judged: %d settled attempts, the rule needs %d (%s)", channel, settled, max(a.MinSettled, 1), span)
		default:
			var members string
			if channel == OtherChannels {
				members = "; " + otherMembers(other)
			}
			al.Summary = fmt.Sprintf("%s delivery rate back to %s, at least %s (%d of %d settled attempts delivered; %s%s)", channel,
				fmtPct(c.DeliveryRate), fmtPct(&threshold), c.Delivered, settled, span, members)
		}
	case RuleDeliverySlow:
		c := channelStats(series, channel)
		threshold := a.maxLatencyP95(channel)
		al.Threshold, al.Volume = msOf(threshold), c.Delivered
		if c.LatencyMS != nil {
			al.Value = c.LatencyMS.P95
		}
		switch {
		case threshold <= 0:
			al.Summary = fmt.Sprintf("%s latency no longer watched: its threshold is 0 (--alert-max-latency-p95, --alert-channel-max-latency-p95) (%s)", channel, span)
		case c.LatencyMS == nil || c.Delivered < max(a.MinSettled, 1):
			al.Summary = fmt.Sprintf("%s latency no longer judged: %d delivered attempts, the rule needs %d (%s)", channel, c.Delivered, max(a.MinSettled, 1), span)
		default:
			al.Summary = fmt.Sprintf("%s p95 latency (dispatch → DELIVERED) back to %s, at most %s (%d delivered attempts; %s)", channel,
				AlertFigure(rule, al.Value), AlertFigure(rule, al.Threshold), c.Delivered, span)
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
			al.Summary = fmt.Sprintf("fallback rate no longer judged: %d journeys, the rule needs %d (%s)", fb.OTPs, max(a.MinOTPs, 1), span)
		default:
			al.Summary = fmt.Sprintf("fallback rate back to %s, at most %s (%d of %d journeys fell back; %s)", fmtPct(fb.FallbackRate), fmtPct(&a.MaxFallbackRate),
				fb.FallbackOTPs, fb.OTPs, span)
		}
	case RuleDeliveryRateDrop:
		c, drop := channelStats(series, channel), a.maxDeliveryRateDrop(channel)
		was, _ := a.series(before.Channels)
		b, name := channelStats(was, channel), BeforeName(before.To.Sub(before.From))
		settled, settledBefore, need := c.Delivered+c.Failed, b.Delivered+b.Failed, max(a.MinSettled, 1)
		al.Volume = settled
		if c.DeliveryRate != nil {
			al.Value = *c.DeliveryRate
		}
		if b.DeliveryRate != nil {
			al.Threshold = *b.DeliveryRate - drop
		}
		switch {
		case drop <= 0:
			al.Summary = fmt.Sprintf("%s delivery rate drop no longer watched: its limit is 0 (--alert-max-delivery-rate-drop, --alert-channel-max-delivery-rate-drop) (%s)", channel, span)
		case c.DeliveryRate == nil || b.DeliveryRate == nil || settled < need || settledBefore < need:
			al.Summary = fmt.Sprintf("%s delivery rate drop no longer judged: %d settled attempts, %s %d, the rule needs %d in each (%s)", channel, settled, name, settledBefore, need, span)
		case *c.DeliveryRate < *b.DeliveryRate-drop:
			// As far below, but no longer sure to be more than chance.
			al.Summary = fmt.Sprintf("%s delivery rate %s, more than %s under %s's %s, but %s, the rule needs under %s (%d of %d settled attempts delivered; %s)", channel,
				fmtPct(c.DeliveryRate), points(drop), name, fmtPct(b.DeliveryRate), chanceOfFall(fallChance(b.Delivered, settledBefore, c.Delivered, settled)), lineSaid(a.DropConfidence), c.Delivered, settled, span)
		default:
			// Back, or the window before fell as far: a drop no longer,
			// whatever delivery_rate_low says of the level.
			al.Summary = fmt.Sprintf("%s delivery rate %s, within %s of %s's %s (%d of %d settled attempts delivered; %s)", channel,
				fmtPct(c.DeliveryRate), points(drop), name, fmtPct(b.DeliveryRate), c.Delivered, settled, span)
		}
	default: // kept by a release with rules this one does not have
		al.Summary = fmt.Sprintf("%s no longer evaluated by this release (%s)", rule, span)
	}
	return al
}

// channelStats is channel's figures in chs; none (zero) when it has none.
func channelStats(chs []store.ChannelStats, channel string) store.ChannelStats {
	if i := slices.IndexFunc(chs, func(c store.ChannelStats) bool { return c.Channel == channel }); i >= 0 {
		return chs[i]
	}
	return store.ChannelStats{}
}

// AlertFigure is an alert's value or threshold as people read it, as the
// console does: seconds to a tenth for delivery_slow (milliseconds; under
// a second in ms), a burn rate to a tenth for error_budget_burn ("14.4×"),
// a percentage to a tenth for the rates.
func AlertFigure(rule string, v float64) string { return alertFigure(rule, v, 0) }

// alertFigure is AlertFigure with extra digits more.
func alertFigure(rule string, v float64, extra int) string {
	switch rule {
	case RuleDeliverySlow:
		return fmtLatencyDigits(v, extra)
	case RuleErrorBudgetBurn:
		return burnFigure(v, extra)
	}
	return strconv.FormatFloat(100*v, 'f', 1+extra, 64) + "%"
}

// AlertFigures are an alert's value and threshold as people read them; a
// value that is not its threshold never reads as it: 10040 ms above 10 s
// reads "10.04 s above 10.0 s", not "10.0 s above 10.0 s", the value
// taking the fewest digits more (up to six) at which the two differ. The
// console's alertFigures (app.js) is this, ported; a console test holds
// the two alike.
func AlertFigures(rule string, value, threshold float64) (v, t string) {
	t = AlertFigure(rule, threshold)
	for extra := 0; ; extra++ {
		v = alertFigure(rule, value, extra)
		if extra == 6 || value == threshold || v != alertFigure(rule, threshold, extra) {
			return v, t
		}
	}
}

// msOf is d in milliseconds, the unit of delivery_slow's figures.
func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// alertLink is where an alert's reader sees what its rule judged: the
// console's overview of the alert's window, on its channel (all of them
// for the fallback rate, and for OTHER, which is no channel's name), with
// the alerts of the window and those firing now; "" without --console-url.
// The window is fixed, not the last hour: a link read an hour later still
// shows the fall. Its query is the console's own (hashFor), in whole
// seconds, its end the second after the evaluation's: the alert,
// evaluated at To, is listed among the window's (at most a second more
// than the rule judged).
func (c *ReportsConfig) alertLink(al *Alert) string {
	if c.ConsoleURL == "" {
		return ""
	}
	to := al.To.UTC().Truncate(time.Second).Add(time.Second)
	link := c.ConsoleURL + "#overview?range=custom&from=" + al.From.UTC().Format(time.RFC3339) + "&to=" + to.Format(time.RFC3339)
	if al.Channel != "" && al.Channel != OtherChannels {
		link += "&channel=" + url.QueryEscape(al.Channel)
	}
	return link
}

// runbookLink is the runbook of al's rule and channel (--alert-runbook-url);
// "" without one.
func (c *ReportsConfig) runbookLink(al *Alert) string {
	if c.RunbookURL == "" {
		return ""
	}
	return runbookFor(c.RunbookURL, al.Rule, al.Channel)
}

// runbookFor is template with {rule} and {channel} replaced, escaped for a
// path or fragment.
func runbookFor(template, rule, channel string) string {
	return strings.NewReplacer("{rule}", url.PathEscape(rule), "{channel}", url.PathEscape(channel)).Replace(template)
}

// slackPayload is what a Slack incoming webhook (and compatible receivers)
// accepts: text, the summary (which begins with the figure and its
// threshold), a firing's runbook when there is one, ending in link when
// there is one, its times on rules' clock as the summary's, plus the
// alert itself and the runbook for receivers that read JSON.
func slackPayload(al *Alert, link, runbook string, rules AlertRules) ([]byte, error) {
	text := ":rotating_light: otpscope " + al.Rule + ": " + al.Summary
	switch {
	case al.State == events.AlertResolved:
		text = ":white_check_mark: otpscope " + al.Rule + " resolved: " + al.Summary
	case al.Since.Before(al.To):
		text += "; firing since " + rules.clock(al.Since)
	}
	if al.State == events.AlertResolved {
		runbook = "" // nothing to do
	}
	return webhookBody(text, al, runbook, link)
}

// webhookBody is the webhook's JSON of al: text, then its runbook and link
// when there are, and al and the runbook for receivers that read JSON.
func webhookBody(text string, al *Alert, runbook, link string) ([]byte, error) {
	if runbook != "" {
		text += "; runbook: " + runbook
	}
	if link != "" {
		text += " " + link
	}
	return json.Marshal(struct {
		Text    string `json:"text"`
		Alert   *Alert `json:"alert"`
		Runbook string `json:"runbook_url,omitempty"`
	}{text, al, runbook})
}

// alertContext bounds one webhook POST.
func alertContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, 10*time.Second)
}
