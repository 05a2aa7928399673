package reporter

import (
	"cmp"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/store"
)

// Report kinds: the scheduled ones, and an ad-hoc report from the CLI.
const (
	KindHourly = "hourly"
	KindDaily  = "daily"
	KindWeekly = "weekly"
	KindAdHoc  = "adhoc"
)

// Report is a summary of one window: the figures of /api/v1/channels and
// /api/v1/fallback, so that reports and the API agree by construction.
type Report struct {
	Kind string    `json:"kind"`
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// TZ is the time zone whose clock the window and the trend's buckets
	// follow (--report-timezone; UTC by default). Always set; optional in
	// the schema, as the reports of builds before 2026-12-06 lack it.
	TZ          string               `json:"tz,omitempty"`
	Profile     string               `json:"profile,omitempty"`
	Channel     string               `json:"channel,omitempty"`
	GeneratedAt time.Time            `json:"generated_at"`
	Channels    []store.ChannelStats `json:"channels"`
	Fallback    store.FallbackStats  `json:"fallback"`
	// Completeness is how much of the window's attempts was still pending
	// when the report was generated: figures with pending attempts may change.
	Completeness store.Completeness `json:"completeness"`
	// Trend is the window per channel over time, when the store answers
	// timeseries (the HTML report draws it).
	Trend *store.Timeseries `json:"trend,omitempty"`
	// Thresholds are the alert rules' limits the HTML report marks on its charts.
	Thresholds Thresholds `json:"thresholds"`
	// Alerts are those evaluated within the window, newest first (at most
	// DefaultAlertsLimit), when the store keeps them: a channel keeps its
	// own and the fallback rate's; they are over every profile.
	Alerts []store.AlertRecord `json:"alerts,omitempty"`
	// AlertEpisodes are the same alerts one per firing (store.AlertEpisodes),
	// which the table and HTML forms list: a rule that fired all day is one
	// row, not one per evaluation.
	AlertEpisodes []store.AlertEpisode `json:"alert_episodes,omitempty"`
	// Resends are the resend policy's decisions made within the window and
	// what became of their OTPs (store.Resends' groups), when the store
	// keeps them.
	Resends []store.ResendGroup `json:"resends,omitempty"`
	// Before is the window before this one with the same filters (see
	// windowBefore: the day or week before a day's or week's report): its
	// channels' and journeys' figures, which the table, CSV and HTML forms
	// set beside the window's rates. Absent from the reports of builds
	// before 2026-12-07, and from a report of an empty window.
	Before *Figures `json:"before,omitempty"`
	// Objective is the journeys against the objective (--slo-delivery-rate),
	// the window's and the SLO window's ending with it; absent without an
	// objective, and from the reports of builds before 2026-12-07.
	Objective *ReportObjective `json:"objective,omitempty"`
}

// Figures are a window and its /channels and /fallback figures: a
// report's window before, and the alerts' (Reports.evaluate).
type Figures struct {
	From     time.Time            `json:"from"`
	To       time.Time            `json:"to"`
	Channels []store.ChannelStats `json:"channels"`
	Fallback store.FallbackStats  `json:"fallback"`
	// Trend is a report's window before over time, with the step and zone
	// of the report's own trend, which the HTML report draws beside it;
	// none for the alerts, nor when the window's length is not a whole
	// number of its trend's buckets.
	Trend *store.Timeseries `json:"trend,omitempty"`
}

// readFigures reads w's /channels and /fallback figures.
func readFigures(ctx context.Context, db Analytics, w store.Window) (Figures, error) {
	f := Figures{From: w.From, To: w.To}
	var err error
	if f.Channels, err = db.Channels(ctx, w); err != nil {
		return f, err
	}
	f.Fallback, err = db.Fallback(ctx, w)
	return f, err
}

// windowBefore is the start of the window before [from, to), which ends
// at from: as many calendar days earlier on zone's clock when from and to
// are midnights there (the day or the week before, however long the
// clocks made it: a week with the spring's change has 167 hours), else as
// long as the window.
func windowBefore(from, to time.Time, zone *time.Location) time.Time {
	lf, lt := from.In(zone), to.In(zone)
	if midnight(lf) && midnight(lt) {
		days := dateOf(lt).Sub(dateOf(lf)) / (24 * time.Hour)
		return time.Date(lf.Year(), lf.Month(), lf.Day()-int(days), 0, 0, 0, 0, zone)
	}
	return from.Add(-to.Sub(from))
}

func midnight(t time.Time) bool {
	return t.Hour() == 0 && t.Minute() == 0 && t.Second() == 0 && t.Nanosecond() == 0
}

// dateOf is t's calendar date as a UTC midnight: days apart, whatever t's
// zone did between them.
func dateOf(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// RateBefore is channel's delivery rate in the window before; nil: none
// (no settled attempt there, or no window before).
func (r *Report) RateBefore(channel string) *float64 {
	if r.Before == nil {
		return nil
	}
	for _, c := range r.Before.Channels {
		if c.Channel == channel {
			return c.DeliveryRate
		}
	}
	return nil
}

// FallbackRateBefore is the journeys' fallback rate in the window before.
func (r *Report) FallbackRateBefore() *float64 {
	if r.Before == nil {
		return nil
	}
	return r.Before.Fallback.FallbackRate
}

// Thresholds are the limits of the alert rules; 0 is a rule that is off.
type Thresholds struct {
	MinDeliveryRate float64 `json:"min_delivery_rate,omitempty"`
	MaxFallbackRate float64 `json:"max_fallback_rate,omitempty"`
	// MaxLatencyP95MS is delivery_slow's limit when every channel has the
	// same (no --alert-channel-max-latency-p95): one line on the chart of
	// every channel's latency (dispatch to DELIVERED).
	MaxLatencyP95MS float64 `json:"max_latency_p95_ms,omitempty"`
}

// Thresholds are the limits of a's rules.
func (a AlertRules) Thresholds() Thresholds {
	t := Thresholds{MinDeliveryRate: a.MinDeliveryRate, MaxFallbackRate: a.MaxFallbackRate}
	if len(a.ChannelMaxLatencyP95) == 0 {
		t.MaxLatencyP95MS = float64(a.MaxLatencyP95.Milliseconds())
	}
	return t
}

// TrendReader answers a window cut into buckets (*store.DB does).
type TrendReader interface {
	Timeseries(ctx context.Context, w store.Window, step time.Duration, zone *time.Location) (store.Timeseries, error)
}

// AlertReader lists stored alerts, by evaluation and by firing (*store.DB
// does).
type AlertReader interface {
	Alerts(ctx context.Context, f store.AlertFilter) ([]store.AlertRecord, error)
	AlertEpisodes(ctx context.Context, f store.AlertFilter) ([]store.AlertEpisode, error)
}

// ResendReader reports resend decisions (*store.DB does).
type ResendReader interface {
	Resends(ctx context.Context, f store.ResendFilter) (store.ResendReport, error)
}

// trendStep is the bucket of a report's trend: the smallest of a few round
// steps that cuts the window into at most 48 (49 when the window does not
// start on a step's bound: the buckets are aligned to the epoch).
func trendStep(window time.Duration) time.Duration {
	for _, s := range []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour, 7 * 24 * time.Hour} {
		if window <= 48*s {
			return s
		}
	}
	return (window/48 + 24*time.Hour - 1).Truncate(24 * time.Hour)
}

// Analytics answers the windowed queries; *store.DB implements it.
type Analytics interface {
	Channels(ctx context.Context, w store.Window) ([]store.ChannelStats, error)
	Fallback(ctx context.Context, w store.Window) (store.FallbackStats, error)
	Completeness(ctx context.Context, w store.Window, now time.Time) (store.Completeness, error)
}

// BuildReport computes the report of window w, its trend's buckets on the
// clock of zone (nil: UTC).
func BuildReport(ctx context.Context, db Analytics, kind string, w store.Window, zone *time.Location, now time.Time) (Report, error) {
	zone = cmp.Or(zone, time.UTC)
	r := Report{Kind: kind, From: w.From, To: w.To, TZ: zone.String(), Profile: w.Profile, Channel: w.Channel, GeneratedAt: now.UTC()}
	ctx = store.PlanOnce(ctx)
	var err error
	if r.Channels, err = db.Channels(ctx, w); err != nil {
		return r, fmt.Errorf("%s report: %w", kind, err)
	}
	if r.Fallback, err = db.Fallback(ctx, w); err != nil {
		return r, fmt.Errorf("%s report: %w", kind, err)
	}
	if r.Completeness, err = db.Completeness(ctx, w, now); err != nil {
		return r, fmt.Errorf("%s report: %w", kind, err)
	}
	if !r.empty() && w.To.After(w.From) {
		bw := w
		bw.From, bw.To = windowBefore(w.From, w.To, zone), w.From
		b, err := readFigures(ctx, db, bw)
		if err != nil {
			return r, fmt.Errorf("%s report, the window before: %w", kind, err)
		}
		r.Before = &b
	}
	if tr, ok := db.(TrendReader); ok && w.To.After(w.From) {
		step := trendStep(w.To.Sub(w.From))
		ts, err := tr.Timeseries(ctx, w, step, zone)
		if err != nil {
			return r, fmt.Errorf("%s report: %w", kind, err)
		}
		r.Trend = &ts
		// The window before's buckets are the window's, shifted by its
		// length, when that is a whole number of them (every scheduled
		// report's, and a last hour's or day's): else none match.
		if r.Before != nil && w.To.Sub(w.From)%step == 0 {
			bw := w
			bw.From, bw.To = r.Before.From, r.Before.To
			ts, err := tr.Timeseries(ctx, bw, step, zone)
			if err != nil {
				return r, fmt.Errorf("%s report, the window before: %w", kind, err)
			}
			r.Before.Trend = &ts
		}
	}
	if ar, ok := db.(AlertReader); ok {
		f := store.AlertFilter{From: w.From, To: w.To, Channel: w.Channel, Limit: DefaultAlertsLimit}
		if r.Alerts, err = ar.Alerts(ctx, f); err != nil {
			return r, fmt.Errorf("%s report: %w", kind, err)
		}
		if r.AlertEpisodes, err = ar.AlertEpisodes(ctx, f); err != nil {
			return r, fmt.Errorf("%s report: %w", kind, err)
		}
	}
	if rr, ok := db.(ResendReader); ok {
		rep, err := rr.Resends(ctx, store.ResendFilter{From: w.From, To: w.To, Profile: w.Profile, Channel: w.Channel, Latest: -1})
		if err != nil {
			return r, fmt.Errorf("%s report: %w", kind, err)
		}
		r.Resends = rep.Groups
	}
	return r, nil
}

// LocalWindow is the window on the clock of the report's time zone, as
// " (2026-06-02 00:00 – 2026-06-03 00:00 Europe/Berlin)"; "" in UTC.
func (r *Report) LocalWindow() string {
	if r.TZ == "" || r.TZ == "UTC" {
		return ""
	}
	zone := r.zone()
	if zone == time.UTC {
		return " (" + r.TZ + ")" // a zone not known here
	}
	const layout = "2006-01-02 15:04"
	return fmt.Sprintf(" (%s – %s %s)", r.From.In(zone).Format(layout), r.To.In(zone).Format(layout), r.TZ)
}

// zone is the location of r.TZ, UTC when it has none (or one not known
// here: the window beside says so).
func (r *Report) zone() *time.Location {
	if zone, err := store.Zone(r.TZ); err == nil && r.TZ != "" {
		return zone
	}
	return time.UTC
}

// zoneTime writes t on zone's clock with its offset, to the millisecond
// when it has one (2026-06-01T15:00:00+05:30; in UTC 2026-06-01T09:30:00Z):
// the table and HTML forms' times but the window's, which they give in
// UTC and on the zone's clock both. The JSON and CSV keep UTC.
func zoneTime(t time.Time, zone *time.Location) string {
	return t.In(zone).Format("2006-01-02T15:04:05.999Z07:00")
}

// Name is the report's file name without extension: kind and window start.
func (r *Report) Name() string {
	return r.Kind + "-" + r.From.UTC().Format("20060102T1504Z")
}

// Message is the report as published on tyntec.2fa.report.<KIND>. Its id
// derives from kind and window, so a report re-run for the same window (a
// restart, two replicas) is one message within JetStream's duplicate window.
func (r *Report) Message() (events.Message, error) {
	data, err := json.Marshal(r)
	if err != nil {
		return events.Message{}, fmt.Errorf("encode report: %w", err)
	}
	id := "rp-" + shortDigest(r.Kind, r.From.UTC().Format(time.RFC3339Nano), r.To.UTC().Format(time.RFC3339Nano), r.Profile, r.Channel)
	return newMessage(events.ReportSubject(r.Kind), id, events.TypeReport, r.To, data), nil
}

func newMessage(subject, id, typ string, at time.Time, data []byte) events.Message {
	return events.NewMessage(subject, id, "reporter", typ, at, "", data)
}

// shortDigest is the 12-byte digest report and alert ids end in.
func shortDigest(parts ...string) string { return events.Digest(12, parts...) }

// Formats of a rendered report.
var Formats = []string{"table", "json", "csv", "html"}

// Render writes r in format (table, json, csv or html).
func (r *Report) Render(w io.Writer, format string) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	case "csv":
		return r.csv(w)
	case "html":
		return r.html(w)
	case "table":
		return r.table(w)
	}
	return fmt.Errorf("report format %q: want one of %s", format, strings.Join(Formats, ", "))
}

func fmtRate(x *float64) string {
	if x == nil {
		return ""
	}
	return strconv.FormatFloat(*x, 'f', 4, 64)
}

func fmtPct(x *float64) string {
	if x == nil {
		return "–"
	}
	return strconv.FormatFloat(100**x, 'f', 1, 64) + "%"
}

func fmtMS(p *store.Percentiles, p95 bool) string {
	if p == nil {
		return ""
	}
	if p95 {
		return strconv.FormatFloat(p.P95, 'f', 0, 64)
	}
	return strconv.FormatFloat(p.P50, 'f', 0, 64)
}

// orDash is s, or "–" in a table for a figure there is none of (the CSV
// keeps an empty field).
func orDash(s string) string { return cmp.Or(s, "–") }

func u(n uint64) string { return strconv.FormatUint(n, 10) }

func fmtTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// completenessNote is one sentence on how final a report's figures are.
// Attempts the poller declared unrecoverable stay pending for good (their
// outcome is lost: docs/analytics.md); the sentence says how many of the
// pending they are, so that a window that will never be final says why.
func completenessNote(c store.Completeness, zone *time.Location) string {
	switch {
	case c.Final:
		return "Final: every attempt in the window has settled."
	case c.Pending == c.Unrecoverable:
		return fmt.Sprintf("Not final, though nothing can still settle: the %d attempts still pending are those whose outcome the poller found lost for good (unrecoverable).", c.Pending)
	}
	settled := ""
	if c.SettledUntil != nil {
		settled = zoneTime(*c.SettledUntil, zone)
	}
	note := fmt.Sprintf("Not final: %d attempts still pending (%d overdue, awaiting reconciliation); every attempt starting before %s has settled.",
		c.Pending, c.AwaitingReconciliation, settled)
	if c.Unrecoverable > 0 {
		note += fmt.Sprintf(" %d of them have an outcome the poller found lost for good (unrecoverable): those stay pending.", c.Unrecoverable)
	}
	return note
}

// csv is the report in long form (section, name, metric, value): one table
// that holds channels, errors, outcomes and paths, for spreadsheets to pivot.
func (r *Report) csv(w io.Writer) error {
	cw := csv.NewWriter(w)
	rec := func(section, name, metric, value string) { _ = cw.Write([]string{section, name, metric, value}) }
	rec("section", "name", "metric", "value")
	rec("window", "", "from", r.From.UTC().Format(time.RFC3339))
	rec("window", "", "to", r.To.UTC().Format(time.RFC3339))
	rec("window", "", "tz", cmp.Or(r.TZ, "UTC"))
	// counts writes a channel's outcomes and rate, in the window
	// (channel) and the window before (channel_before).
	counts := func(section string, c store.ChannelStats) {
		rec(section, c.Channel, "attempts", u(c.Attempts))
		rec(section, c.Channel, "delivered", u(c.Delivered))
		rec(section, c.Channel, "failed", u(c.Failed))
		rec(section, c.Channel, "undeliverable", u(c.Undeliverable))
		rec(section, c.Channel, "timed_out", u(c.TimedOut))
		rec(section, c.Channel, "pending", u(c.Pending))
		rec(section, c.Channel, "delivery_rate", fmtRate(c.DeliveryRate))
	}
	for _, c := range r.Channels {
		counts("channel", c)
		rec("channel", c.Channel, "latency_p50_ms", fmtMS(c.LatencyMS, false))
		rec("channel", c.Channel, "latency_p95_ms", fmtMS(c.LatencyMS, true))
		rec("channel", c.Channel, "unknown_status", u(c.UnknownStatus))
		rec("channel", c.Channel, "recovered_by_polling", u(c.RecoveredByPolling))
		rec("channel", c.Channel, "unrecoverable", u(c.Unrecoverable))
		if v := c.Verification; v != nil {
			rec("channel", c.Channel, "verification_polled", u(v.Polled))
			rec("channel", c.Channel, "verification_verified", u(v.Verified))
			rec("channel", c.Channel, "verification_rate", fmtRate(v.Rate))
		}
		for _, e := range c.Errors {
			rec("error", c.Channel+" "+errorCode(e.Code), "failed_attempts", u(e.Count))
		}
	}
	f := r.Fallback
	// The metrics keep /fallback's field names, which count journeys
	// (README): a spreadsheet's pivot outlives a relabelling.
	rec("journeys", "", "otps", u(f.OTPs))
	rec("journeys", "", "fallback_otps", u(f.FallbackOTPs))
	rec("journeys", "", "fallback_rate", fmtRate(f.FallbackRate))
	rec("journeys", "", "resends", u(f.Resends))
	rec("journeys", "", "time_to_deliver_p50_ms", fmtMS(f.TimeToDeliverMS, false))
	rec("journeys", "", "time_to_deliver_p95_ms", fmtMS(f.TimeToDeliverMS, true))
	for _, o := range outcomeList(f.Outcomes) {
		rec("outcome", o.Name, "otps", u(o.N))
	}
	for _, p := range f.Paths {
		rec("path", p.Path, "otps", u(p.OTPs))
		rec("path", p.Path, "delivered", u(p.Delivered))
		rec("path", p.Path, "failed", u(p.Failed))
		rec("path", p.Path, "pending", u(p.Pending))
		rec("path", p.Path, "delivery_rate", fmtRate(p.DeliveryRate))
	}
	// The objective's rows: the window's ("window") and the SLO window's
	// ending with it ("slo_window"), as the JSON's objective.
	if o := r.Objective; o != nil {
		rec("objective", "", "objective", strconv.FormatFloat(o.Objective, 'f', -1, 64))
		figures := func(name string, f SLOFigures) {
			rec("objective", name, "delivered", u(f.Delivered))
			rec("objective", name, "failed", u(f.Failed))
			rec("objective", name, "pending", u(f.Pending))
			rec("objective", name, "delivery_rate", fmtRate(f.DeliveryRate))
		}
		figures("window", o.Window)
		rec("objective", "window", "burn_rate", fmtRate(o.BurnRate))
		figures("slo_window", o.SLO.SLOFigures)
		rec("objective", "slo_window", "from", o.SLO.From.UTC().Format(time.RFC3339))
		if b := o.SLO.Budget; b != nil {
			rec("objective", "slo_window", "budget_remaining", strconv.FormatFloat(b.Remaining, 'f', 4, 64))
		}
	}
	for _, a := range r.Alerts {
		name := a.Rule + " " + cmp.Or(a.Channel, "all") + " " + a.To.UTC().Format(time.RFC3339)
		rec("alert", name, "value", strconv.FormatFloat(a.Value, 'f', 4, 64))
		rec("alert", name, "threshold", strconv.FormatFloat(a.Threshold, 'f', 4, 64))
		rec("alert", name, "volume", u(a.Volume))
		rec("alert", name, "state", a.State)
		rec("alert", name, "since", a.Since.UTC().Format(time.RFC3339))
		if b := a.Before; b != nil {
			rec("alert", name, "value_before", fmtRate(b.Value))
			rec("alert", name, "volume_before", u(b.Volume))
		}
		if a.SilencedBy != "" {
			rec("alert", name, "silenced_by", a.SilencedBy)
		}
	}
	for _, e := range r.AlertEpisodes {
		name := e.Rule + " " + cmp.Or(e.Channel, "all") + " " + e.Since.UTC().Format(time.RFC3339)
		rec("alert_episode", name, "state", e.State)
		rec("alert_episode", name, "last_evaluated", e.To.UTC().Format(time.RFC3339))
		rec("alert_episode", name, "evaluations", u(e.Evaluations))
		rec("alert_episode", name, "worst", strconv.FormatFloat(e.Worst, 'f', 4, 64))
		if e.SilencedBy != "" {
			rec("alert_episode", name, "silenced_by", e.SilencedBy)
		}
	}
	for _, g := range r.Resends {
		name := resendGroupName(g)
		rec("resend", name, "decisions", u(g.Decisions))
		rec("resend", name, "delivered_via", u(g.DeliveredVia))
		rec("resend", name, "delivered_otherwise", u(g.DeliveredOtherwise))
		rec("resend", name, "not_delivered", u(g.NotDelivered))
		if g.DeliverAfterMS != nil {
			rec("resend", name, "deliver_after_p50_ms", strconv.FormatInt(*g.DeliverAfterMS, 10))
		}
	}
	if b := r.Before; b != nil {
		rec("before", "", "from", b.From.UTC().Format(time.RFC3339))
		rec("before", "", "to", b.To.UTC().Format(time.RFC3339))
		for _, c := range b.Channels {
			counts("channel_before", c)
		}
		rec("journeys_before", "", "otps", u(b.Fallback.OTPs))
		rec("journeys_before", "", "fallback_otps", u(b.Fallback.FallbackOTPs))
		rec("journeys_before", "", "fallback_rate", fmtRate(b.Fallback.FallbackRate))
	}
	c := r.Completeness
	rec("completeness", "", "pending", u(c.Pending))
	rec("completeness", "", "awaiting_reconciliation", u(c.AwaitingReconciliation))
	rec("completeness", "", "unrecoverable", u(c.Unrecoverable))
	rec("completeness", "", "settled_until", fmtTime(c.SettledUntil))
	rec("completeness", "", "final", strconv.FormatBool(c.Final))
	cw.Flush()
	return cw.Error()
}

// noErrorCode stands in a report for the error code of failed attempts
// that carried none (the API keeps "" for them): those recovered by
// polling, since tyntec's v1 events have no error code.
const noErrorCode = "(none)"

// errorCode is code as a report shows it: noErrorCode for none.
func errorCode(code string) string { return cmp.Or(code, noErrorCode) }

// resendGroupName names a group of resend decisions: result, the failure
// that triggered them, and via, e.g. "sent SMS UNDELIVERABLE > VOICE".
func resendGroupName(g store.ResendGroup) string {
	return g.Result + " " + g.TriggerChannel + " " + g.TriggerStatus + " > " + g.Via
}

// resendDecisions is how many decisions the groups hold.
func resendDecisions(gs []store.ResendGroup) (n uint64) {
	for _, g := range gs {
		n += g.Decisions
	}
	return n
}

type outcomeN struct {
	Name string
	N    uint64
}

func outcomeList(o store.Outcomes) []outcomeN {
	return []outcomeN{
		{store.OutcomeDeliveredPrimary, o.DeliveredPrimary}, {store.OutcomeDeliveredFallback, o.DeliveredFallback},
		{store.OutcomeFailed, o.Failed}, {store.OutcomePending, o.Pending},
	}
}

func (r *Report) table(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "otpscope %s report %s – %s%s\n\n", r.Kind, r.From.UTC().Format(time.RFC3339), r.To.UTC().Format(time.RFC3339), r.LocalWindow())
	zone := r.zone()
	if len(r.Channels) == 0 && r.Fallback.OTPs == 0 {
		fmt.Fprintln(w, "No data: no attempt and no journey in the window (a channel filter that matches none gives this too).")
	} else {
		fmt.Fprintln(w, completenessNote(r.Completeness, zone))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(tw, "channel\tattempts\tdelivered\tundeliverable\ttimed out\tpending\tdelivery rate\trate before\tp50 ms\tp95 ms\tverified\t")
	for _, c := range r.Channels {
		conv := "–"
		if c.Verification != nil {
			conv = fmtPct(c.Verification.Rate)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t\n", c.Channel, c.Attempts, c.Delivered, c.Undeliverable, c.TimedOut, c.Pending,
			fmtPct(c.DeliveryRate), fmtPct(r.RateBefore(c.Channel)), orDash(fmtMS(c.LatencyMS, false)), orDash(fmtMS(c.LatencyMS, true)), conv)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if b := r.Before; b != nil {
		// To the second, as the window above.
		fmt.Fprintf(w, "\nRate before: the window before, %s – %s, with the same filters.\n", zoneTime(b.From.Truncate(time.Second), zone), zoneTime(b.To.Truncate(time.Second), zone))
	}
	f := r.Fallback
	// Journeys are logins (docs/analytics.md): one whose silent auth or push
	// succeeded sent no OTP, so "OTPs" here would not match tyntec's bill.
	fmt.Fprintf(w, "\nJourneys (logins) %d, with fallback %d (%s; before %s), resends %d; time to deliver p50 %s ms, p95 %s ms\n", f.OTPs, f.FallbackOTPs, fmtPct(f.FallbackRate), fmtPct(r.FallbackRateBefore()), f.Resends,
		orDash(fmtMS(f.TimeToDeliverMS, false)), orDash(fmtMS(f.TimeToDeliverMS, true)))
	for _, o := range outcomeList(f.Outcomes) {
		fmt.Fprintf(w, "  %-20s %d\n", o.Name, o.N)
	}
	if o := r.Objective; o != nil {
		fmt.Fprintf(w, "%s.\n", o.says(zone))
	}
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w)
	fmt.Fprintln(tw, "path\tjourneys\tdelivered\tfailed\tpending\tdelivery rate\t")
	for _, p := range f.Paths {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t\n", p.Path, p.OTPs, p.Delivered, p.Failed, p.Pending, fmtPct(p.DeliveryRate))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%s\n", alertCounts(r.From, r.AlertEpisodes))
	for _, e := range r.AlertEpisodes {
		evals := strconv.FormatUint(e.Evaluations, 10) + " evaluations"
		if e.Evaluations == 1 {
			evals = "1 evaluation"
		}
		silenced := ""
		if e.SilencedBy != "" {
			silenced = "  [silenced: " + e.SilencedBy + "]"
		}
		fmt.Fprintf(w, "  since %s, last %s  %-8s  %-14s  %s%s\n", zoneTime(e.Since, zone), zoneTime(e.To, zone), e.State, evals, e.Summary, silenced)
	}
	fmt.Fprintf(w, "\nResend decisions: %d\n", resendDecisions(r.Resends))
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	if len(r.Resends) > 0 {
		fmt.Fprintln(tw, "decided\tdecisions\tdelivered via\tdelivered otherwise\tnot delivered\t")
	}
	for _, g := range r.Resends {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t\n", resendGroupName(g), g.Decisions, g.DeliveredVia, g.DeliveredOtherwise, g.NotDelivered)
	}
	return tw.Flush()
}

// alertCounts is the line summing up a window's alert episodes: every
// firing the window saw (evaluated within it), how many of them resolved
// there and how many were still firing at its last evaluation there, and
// how many had begun before the window, and how many a silence covered
// (the webhook did not page about them then).
func alertCounts(from time.Time, eps []store.AlertEpisode) string {
	var resolved, before, silenced int
	for _, e := range eps {
		if e.State == events.AlertResolved {
			resolved++
		}
		if e.Since.Before(from) {
			before++
		}
		if e.SilencedBy != "" {
			silenced++
		}
	}
	s := fmt.Sprintf("Alert firings in the window: %d (resolved: %d, still firing at its end: %d)", len(eps), resolved, len(eps)-resolved)
	if before > 0 {
		s += fmt.Sprintf("; %d of them began before the window", before)
	}
	if silenced > 0 {
		s += fmt.Sprintf("; %d under a silence", silenced)
	}
	return s
}

// empty reports whether the window holds nothing to show.
func (r *Report) empty() bool { return len(r.Channels) == 0 && r.Fallback.OTPs == 0 }

func pctLabel(kind string, x float64) string {
	return kind + " " + strconv.FormatFloat(100*x, 'f', -1, 64) + "%"
}

// trendLines are a trend's lines of delivery rate and attempts per channel
// and of the fallback rate of all. Given of, the window's series, ts is
// the window before's: its lines are marked Before, and only of's
// channels have them (the fallback rate's is of every channel).
func trendLines(ts *store.Timeseries, of []store.Series) (rates, vols, fallback []line) {
	before := of != nil
	otps, fbs := make([]uint64, len(ts.Start)), make([]uint64, len(ts.Start))
	for _, s := range ts.Channels {
		otps, fbs = addUp(otps, s.OTPs), addUp(fbs, s.FallbackOTPs)
		if before && !slices.ContainsFunc(of, func(o store.Series) bool { return o.Channel == s.Channel }) {
			continue
		}
		pts := make([]*float64, len(s.Attempts))
		for i, n := range s.Attempts {
			x := float64(n)
			pts[i] = &x
		}
		rates, vols = append(rates, line{s.Channel, s.DeliveryRate, before}), append(vols, line{s.Channel, pts, before})
	}
	fbRate := make([]*float64, len(otps))
	for i := range otps {
		if otps[i] > 0 {
			x := float64(fbs[i]) / float64(otps[i])
			fbRate[i] = &x
		}
	}
	return rates, vols, []line{{allChannels, fbRate, before}}
}

// addUp adds b to sum, bucket by bucket.
func addUp(sum, b []uint64) []uint64 {
	for i := range min(len(sum), len(b)) {
		sum[i] += b[i]
	}
	return sum
}

// charts are the HTML report's figures: the trend over the window, then the
// window's totals.
func (r *Report) charts() []svgChart {
	var out []svgChart
	var minDel, maxFb []threshold
	if x := r.Thresholds.MinDeliveryRate; x > 0 {
		minDel = []threshold{{x, pctLabel("alert below", x)}}
	}
	if x := r.Thresholds.MaxFallbackRate; x > 0 {
		maxFb = []threshold{{x, pctLabel("alert above", x)}}
	}
	if ts := r.Trend; ts != nil && len(ts.Start) > 0 && len(ts.Channels) > 0 {
		step := time.Duration(ts.Step)
		rates, vols, fb := trendLines(ts, nil)
		if b := r.Before; b != nil && b.Trend != nil && b.Trend.Step == ts.Step && len(b.Trend.Start) == len(ts.Start) {
			// Bucket beside bucket; a window before of another length (a
			// day that changed clocks) is not drawn.
			br, bv, bfb := trendLines(b.Trend, ts.Channels)
			rates, vols, fb = append(rates, br...), append(vols, bv...), append(fb, bfb...)
		}
		top := 0.0
		for _, l := range vols {
			for _, p := range l.Points {
				top = max(top, *p)
			}
		}
		out = append(out,
			trendChart("Delivery rate over time", ts.Start, step, ts.Zone, rates, rateAxis(), minDel),
			trendChart("Attempts over time", ts.Start, step, ts.Zone, vols, countAxis(top), nil),
			trendChart("Fallback rate over time", ts.Start, step, ts.Zone, fb, rateAxis(), maxFb))
	}
	var labels, shown, volShown []string
	var rates, vols []float64
	maxVol := 0.0
	for _, c := range r.Channels {
		labels = append(labels, c.Channel)
		x := 0.0
		if c.DeliveryRate != nil {
			x = *c.DeliveryRate
		}
		rates, shown = append(rates, x), append(shown, fmtPct(c.DeliveryRate))
		vols, volShown = append(vols, float64(c.Attempts)), append(volShown, u(c.Attempts))
		maxVol = max(maxVol, float64(c.Attempts))
	}
	if len(labels) > 0 {
		out = append(out,
			barRows("Delivery rate per channel", labels, shown, rates, rateAxis(), "#2f7d32", minDel),
			barRows("Attempts per channel", labels, volShown, vols, countAxis(maxVol), "#1565c0", nil))
	}
	if c := latencyChart(r.Channels, r.Thresholds.MaxLatencyP95MS); c != nil {
		out = append(out, *c)
	}
	if r.Fallback.OTPs > 0 {
		labels, shown = nil, nil
		var ns []float64
		maxN := 0.0
		for _, o := range outcomeList(r.Fallback.Outcomes) {
			labels, ns, shown = append(labels, o.Name), append(ns, float64(o.N)), append(shown, u(o.N))
			maxN = max(maxN, float64(o.N))
		}
		out = append(out, barRows("Journey outcomes", labels, shown, ns, countAxis(maxN), "#6a1b9a", nil))
	}
	if len(r.Fallback.Paths) > 0 {
		labels, shown = nil, nil
		var ns []float64
		for _, p := range r.Fallback.Paths {
			// The delivery rate: a pending journey is no failure.
			var x float64
			if p.DeliveryRate != nil {
				x = *p.DeliveryRate
			}
			labels, ns, shown = append(labels, p.Path), append(ns, x), append(shown, fmt.Sprintf("%s: %d delivered, %d failed, %d pending", fmtPct(p.DeliveryRate), p.Delivered, p.Failed, p.Pending))
		}
		out = append(out, barRows("Delivery rate per path", labels, shown, ns, rateAxis(), "#ef6c00", nil))
	}
	return out
}

// latencyChart is the latency per channel (dispatched → delivered, as
// /channels' latency_ms; not the journeys' time to deliver): a bar to its p95, in
// seconds, labelled with its p50 and p95, and delivery_slow's limit
// (maxP95MS, when set) marked; nil when no channel delivered.
func latencyChart(chs []store.ChannelStats, maxP95MS float64) *svgChart {
	var labels, shown []string
	var p95s []float64
	top := 0.0
	for _, c := range chs {
		if c.LatencyMS == nil {
			continue
		}
		s := c.LatencyMS.P95 / 1000
		labels, p95s, top = append(labels, c.Channel), append(p95s, s), max(top, s)
		shown = append(shown, "p50 "+humanMS(c.LatencyMS, false)+" · p95 "+humanMS(c.LatencyMS, true))
	}
	if len(labels) == 0 {
		return nil
	}
	var marks []threshold
	if maxP95MS > 0 {
		limit := maxP95MS / 1000
		marks, top = []threshold{{limit, "alert above " + fmtLatency(maxP95MS)}}, max(top, limit)
	}
	ax := countAxis(top)
	ax.Format = func(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) + " s" }
	c := barRows("Latency per channel, dispatched → delivered (p95)", labels, shown, p95s, ax, "#00838f", marks)
	return &c
}

var htmlReport = template.Must(template.New("report").Funcs(template.FuncMap{
	"pct": fmtPct, "pctv": func(x float64) string { return fmtPct(&x) }, "alertv": AlertFigure, "objective": func(o *ReportObjective, zone *time.Location) string { return o.says(zone) }, "alertbefore": alertBeforeFigure, "alertvs": func(rule string, v, threshold float64) string { s, _ := AlertFigures(rule, v, threshold); return s }, "dur": humanMS, "time": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"outcomes": outcomeList, "note": completenessNote, "clock": zoneTime, "code": errorCode,
	"clocks": func(t time.Time, zone *time.Location) string { return zoneTime(t.Truncate(time.Second), zone) }, // to the second, as the window
	"durms":  func(ms int64) string { return fmtLatency(float64(ms)) },
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>otpscope {{.R.Kind}} report {{time .R.From}} – {{time .R.To}}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}th,td{padding:.3em .7em;border-bottom:1px solid #ddd;text-align:right}
th:first-child,td:first-child{text-align:left}figure{display:inline-block;margin:0 2em 1em 0}
figcaption{font-weight:600}svg text{font-size:12px}.no-data{color:#555;font-style:italic}
</style></head><body>
<h1>otpscope {{.R.Kind}} report</h1>
<p>Window <time datetime="{{time .R.From}}">{{time .R.From}}</time> – <time datetime="{{time .R.To}}">{{time .R.To}}</time>{{.R.LocalWindow}}{{if .R.Profile}}, profile {{.R.Profile}}{{end}}{{if .R.Channel}}, channel {{.R.Channel}}{{end}}; generated {{.Generated}}.</p>
<p id="completeness"{{if not .R.Completeness.Final}} style="background:#fff3cd;padding:.5em"{{end}}>{{note .R.Completeness .Zone}}</p>
<table id="completeness-figures"><tbody>
<tr><td>Pending attempts</td><td>{{.R.Completeness.Pending}}</td></tr>
<tr><td>Awaiting reconciliation</td><td>{{.R.Completeness.AwaitingReconciliation}}</td></tr>
<tr><td>Settled until</td><td>{{with .R.Completeness.SettledUntil}}{{clock . $.Zone}}{{else}}the end of the window{{end}}</td></tr>
</tbody></table>
{{if .Empty}}<p id="no-data" class="no-data">No data: no delivery event of this window{{if .R.Profile}} for profile {{.R.Profile}}{{end}}{{if .R.Channel}} on channel {{.R.Channel}}{{end}} has been stored. Nothing was sent, or the events have not arrived yet.</p>
{{else}}<h2>Channels</h2>
{{if .R.Channels}}<table id="channels"><thead><tr><th>Channel</th><th>Attempts</th><th>Delivered</th><th>Failed</th><th>Undeliverable</th><th>Timed out</th><th>Pending</th><th>Delivery rate</th><th>Rate before</th><th>Latency p50</th><th>p95</th><th>Verified</th></tr></thead><tbody>
{{range .R.Channels}}<tr><td>{{.Channel}}</td><td>{{.Attempts}}</td><td>{{.Delivered}}</td><td>{{.Failed}}</td><td>{{.Undeliverable}}</td><td>{{.TimedOut}}</td><td>{{.Pending}}</td><td>{{pct .DeliveryRate}}</td><td>{{pct ($.R.RateBefore .Channel)}}</td><td>{{dur .LatencyMS false}}</td><td>{{dur .LatencyMS true}}</td><td>{{if .Verification}}{{pct .Verification.Rate}}{{else}}–{{end}}</td></tr>
{{end}}</tbody></table>
{{with .R.Before}}<p id="before">Rate before: the window before, <time datetime="{{time .From}}">{{clocks .From $.Zone}}</time> – <time datetime="{{time .To}}">{{clocks .To $.Zone}}</time>, with the same filters.</p>
{{end}}{{else}}<p class="no-data">No attempt started in this window.</p>
{{end}}<h2>Journeys</h2>
{{if .R.Fallback.OTPs}}<table id="journeys"><tbody>
<tr><td>Journeys (logins)</td><td>{{.R.Fallback.OTPs}}</td></tr>
<tr><td>Journeys with fallback</td><td>{{.R.Fallback.FallbackOTPs}}</td></tr>
<tr><td>Fallback rate</td><td>{{pct .R.Fallback.FallbackRate}}</td></tr>
<tr><td>Fallback rate before</td><td>{{pct .R.FallbackRateBefore}}</td></tr>
<tr><td>Resends (attempts beyond the first on a channel)</td><td>{{.R.Fallback.Resends}}</td></tr>
{{range outcomes .R.Fallback.Outcomes}}<tr><td>{{.Name}}</td><td>{{.N}}</td></tr>{{end}}
<tr><td>Time to deliver p50 / p95</td><td>{{dur .R.Fallback.TimeToDeliverMS false}} / {{dur .R.Fallback.TimeToDeliverMS true}}</td></tr>
</tbody></table>
{{else}}<p class="no-data">No journey started in this window.</p>
{{end}}{{with .R.Objective}}<p id="objective">{{objective . $.Zone}}.</p>
{{end}}<h2>Charts</h2>
{{range .Charts}}<figure><figcaption>{{.Title}}</figcaption>
{{.SVG}}</figure>
{{end}}
<h2>Errors</h2>
{{if .Errors}}<table id="errors"><thead><tr><th>Channel</th><th>Error code</th><th>Failed attempts</th></tr></thead><tbody>
{{range .R.Channels}}{{$ch := .Channel}}{{range .Errors}}<tr><td>{{$ch}}</td><td{{if not .Code}} class="no-code"{{end}}>{{code .Code}}</td><td>{{.Count}}</td></tr>
{{end}}{{end}}</tbody></table>
{{if .NoCode}}<p id="no-code-note">(none): failed attempts whose failure carried no error code, such as those recovered by polling (tyntec's v1 events have none).</p>
{{end}}{{else}}<p class="no-data" id="no-errors">No failed attempt in this window.</p>
{{end}}{{end}}<h2>Alerts</h2>
{{if .R.AlertEpisodes}}<table id="alerts"><thead><tr><th>Last evaluated</th><th>Rule</th><th>Channel</th><th>State</th><th>Since</th><th>Evaluations</th><th>Value</th><th>Before</th><th>Worst</th><th>Threshold</th><th>Volume</th></tr></thead><tbody>
{{range .R.AlertEpisodes}}<tr title="{{.Summary}}"><td>{{clock .To $.Zone}}</td><td>{{.Rule}}</td><td>{{if .Channel}}{{.Channel}}{{else}}all{{end}}</td><td{{with .SilencedBy}} title="silence {{.}} held the webhook's posts of it"{{end}}>{{.State}}{{if .SilencedBy}} · silenced{{end}}</td><td>{{clock .Since $.Zone}}</td><td>{{.Evaluations}}</td><td>{{alertvs .Rule .Value .Threshold}}</td><td>{{alertbefore .Rule .Before .Threshold}}</td><td>{{alertvs .Rule .Worst .Threshold}}</td><td>{{alertv .Rule .Threshold}}</td><td>{{.Volume}}</td></tr>
{{end}}</tbody></table>
<p>One row per firing: its latest evaluation in the window (its resolution, once resolved), how many times it was evaluated firing, and its worst value.</p>
{{else}}<p class="no-data" id="no-alerts">No alert fired or resolved in this window.</p>
{{end}}<h2>Resends</h2>
{{if .R.Resends}}<table id="resends"><thead><tr><th>Decided</th><th>Failed on</th><th>Via</th><th>Decisions</th><th>Delivered via</th><th>Delivered otherwise</th><th>Not delivered</th><th>Via delivered after (p50)</th></tr></thead><tbody>
{{range .R.Resends}}<tr><td>{{.Result}}</td><td>{{.TriggerChannel}} {{.TriggerStatus}}</td><td>{{.Via}}</td><td>{{.Decisions}}</td><td>{{.DeliveredVia}}</td><td>{{.DeliveredOtherwise}}</td><td>{{.NotDelivered}}</td><td>{{with .DeliverAfterMS}}{{durms .}}{{else}}–{{end}}</td></tr>
{{end}}</tbody></table>
<p>What became of each decision's OTP, from its delivery facts when the report was made: delivered on the decision's channel after it, delivered otherwise (for a dry-run, a resend that would have been spent on an OTP delivered all the same), or not delivered.</p>
{{else}}<p class="no-data" id="no-resends">No resend decision in this window.</p>
{{end}}</body></html>
`))

func (r *Report) html(w io.Writer) error {
	errs, noCode := false, false
	for _, c := range r.Channels {
		errs = errs || len(c.Errors) > 0
		for _, e := range c.Errors {
			noCode = noCode || e.Code == ""
		}
	}
	zone := r.zone()
	return htmlReport.Execute(w, struct {
		R                     *Report
		Charts                []svgChart
		Empty, Errors, NoCode bool
		Zone                  *time.Location
		Generated             string // to the second, as the window
	}{r, r.charts(), r.empty(), errs, noCode, zone, zoneTime(r.GeneratedAt.Truncate(time.Second), zone)})
}

// alertBeforeFigure is a firing's figure in the window before, as its
// value is written: "–" without one (a resolution, or stored before
// 2026-12-07), "none to judge" when there was nothing there.
func alertBeforeFigure(rule string, b *events.AlertBefore, threshold float64) string {
	switch {
	case b == nil:
		return "–"
	case b.Value == nil:
		return "none to judge"
	}
	v, _ := AlertFigures(rule, *b.Value, threshold)
	return v
}
