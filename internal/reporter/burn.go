package reporter

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/store"
)

// RuleErrorBudgetBurn: the logins burn the objective's error budget
// (--slo-delivery-rate) fast enough to page: over a pair of recent windows
// at once (burnPairs). Its value and threshold are burn rates (1 spends
// the budget exactly by the SLO window's end), its volume the longer
// window's settled journeys; it is over every channel. On whenever an
// objective is set.
const RuleErrorBudgetBurn = "error_budget_burn"

// burnPair is a long window and a short one, a twelfth of it, whose burn
// rates must both reach factor: the long says much of the budget went, the
// short that it still goes, so that the alert resolves minutes after the
// failures stop rather than once the hour is clean (the SRE workbook,
// "Alerting on SLOs": multiwindow, multi-burn-rate alerts).
type burnPair struct {
	long, short time.Duration
	factor      float64
}

// burnPairs are the workbook's two that page: 14.4 times over an hour
// spends 2 % of a 30-day budget in that hour, 6 times over six hours 5 %.
// A slower burn is the console's and /api/v1/slo's to show, not a page.
var burnPairs = []burnPair{{time.Hour, 5 * time.Minute, 14.4}, {6 * time.Hour, 30 * time.Minute, 6}}

// BurnFigures are the journeys of the windows error_budget_burn judges,
// each ending at To, by length: each pair's two, and the SLO window's,
// whose budget left its summary says.
type BurnFigures struct {
	To      time.Time
	Windows map[time.Duration]SLOFigures
}

// readBurn reads the windows error_budget_burn judges at to, exact.
func readBurn(ctx context.Context, db Analytics, to time.Time, o Objective) (BurnFigures, error) {
	spans := []time.Duration{o.window()}
	for _, p := range burnPairs {
		spans = append(spans, p.long, p.short)
	}
	figures, err := readSLO(store.PlanOnce(ctx), db, store.Window{To: to}, spans)
	b := BurnFigures{To: to, Windows: map[time.Duration]SLOFigures{}}
	for i, d := range spans {
		b.Windows[d] = figures[i]
	}
	return b, err
}

// Burns returns error_budget_burn firing at b.To when a pair's two windows
// both burn the budget at least its factor, the longer with MinOTPs
// settled journeys; the first pair that holds (the fastest) is the one it
// says. None without an objective.
func (a AlertRules) Burns(b BurnFigures) []Alert {
	o := a.Objective
	if o.DeliveryRate <= 0 {
		return nil
	}
	for _, p := range burnPairs {
		long, short := b.Windows[p.long], b.Windows[p.short]
		lr, sr := o.burnRate(long), o.burnRate(short)
		settled := long.Delivered + long.Failed
		if lr == nil || sr == nil || settled < max(a.MinOTPs, 1) || *lr < p.factor || *sr < p.factor {
			continue
		}
		from := b.To.Add(-p.long)
		v, t := AlertFigures(RuleErrorBudgetBurn, *lr, p.factor)
		return []Alert{{
			Rule: RuleErrorBudgetBurn, State: events.AlertFiring, Since: b.To, From: from, To: b.To, Value: *lr, Threshold: p.factor, Volume: settled,
			Summary: fmt.Sprintf("logins burning the error budget %s as fast as it lasts over the last %s, at least %s pages (%d of %d settled journeys failed, %s – %s; the last %s %s, %d of %d); %s",
				v, humanDuration(p.long), t, long.Failed, settled, a.clock(from), a.clock(b.To), humanDuration(p.short), AlertFigure(RuleErrorBudgetBurn, *sr), short.Failed, short.Delivered+short.Failed, a.budgetSaid(b)),
		}}
	}
	return nil
}

// BurnResolved is the alert that ends error_budget_burn's firing since
// since, on b: the objective gone, or no pair holding, each said with its
// burn rates. Its value, threshold and volume are the fastest pair's.
func (a AlertRules) BurnResolved(since time.Time, b BurnFigures) Alert {
	p := burnPairs[0]
	al := Alert{Rule: RuleErrorBudgetBurn, State: events.AlertResolved, Since: since, From: b.To.Add(-p.long), To: b.To, Threshold: p.factor}
	span := fmt.Sprintf("firing since %s; %s – %s", a.clock(since), a.clock(al.From), a.clock(b.To))
	o := a.Objective
	if o.DeliveryRate <= 0 {
		al.Summary = fmt.Sprintf("error budget burn no longer watched: --slo-delivery-rate is 0 (%s)", span)
		return al
	}
	long := b.Windows[p.long]
	al.Volume = long.Delivered + long.Failed
	if r := o.burnRate(long); r != nil {
		al.Value = *r
	}
	var pairs []string
	for _, p := range burnPairs {
		pairs = append(pairs, fmt.Sprintf("%s over the last %s, %s over the last %s (paging at %s in both)",
			a.burnSaid(b.Windows[p.long]), humanDuration(p.long), a.burnSaid(b.Windows[p.short]), humanDuration(p.short), AlertFigure(RuleErrorBudgetBurn, p.factor)))
	}
	al.Summary = fmt.Sprintf("logins' error budget burn back below a page's pace: %s (%s); %s", strings.Join(pairs, "; "), span, a.budgetSaid(b))
	return al
}

// burnSaid is a window's burn rate as the alerts say it: "0.4×", or why
// there is none.
func (a AlertRules) burnSaid(f SLOFigures) string {
	if r := a.Objective.burnRate(f); r != nil {
		return AlertFigure(RuleErrorBudgetBurn, *r)
	}
	return "none (no settled journeys)"
}

// budgetSaid is the objective and its budget left, as error_budget_burn's
// summaries end: "objective 99.00% over 28 d: 31% of its error budget
// left".
func (a AlertRules) budgetSaid(b BurnFigures) string {
	o := a.Objective
	s := fmt.Sprintf("objective %s over %s: ", sloPct(o.DeliveryRate), humanDuration(o.window()))
	switch budget := o.budget(b.Windows[o.window()]); {
	case budget == nil:
		return s + "no settled journeys in it yet"
	case budget.Remaining >= 0:
		return s + budgetPct(budget.Remaining) + " of its error budget left"
	default:
		return s + "its error budget spent, " + budgetPct(-budget.Remaining) + " over"
	}
}

// observeBurn sets the SLO gauges from b, read at an evaluation: NaN for
// a window without a settled journey. None without an objective.
func (r *Reports) observeBurn(b BurnFigures) {
	if r.sloBudget == nil || b.Windows == nil {
		return
	}
	o := r.cfg.Rules.Objective
	nan := func(v *float64) float64 {
		if v == nil {
			return math.NaN()
		}
		return *v
	}
	budget := math.NaN()
	if bu := o.budget(b.Windows[o.window()]); bu != nil {
		budget = bu.Remaining
	}
	r.sloBudget.Set(budget)
	for _, p := range burnPairs {
		for _, d := range []time.Duration{p.long, p.short} {
			r.sloBurn.WithLabelValues(burnWindowLabel(d)).Set(nan(o.burnRate(b.Windows[d])))
		}
	}
}

// burnWindowLabel is a burn window as otpscope_slo_burn_rate's label
// says it, as Prometheus writes durations: 5m, 30m, 1h, 6h.
func burnWindowLabel(d time.Duration) string {
	if d%time.Hour == 0 {
		return strconv.Itoa(int(d/time.Hour)) + "h"
	}
	return strconv.Itoa(int(d/time.Minute)) + "m"
}

// burnFigure says a burn rate, with extra digits more: "14.4×".
func burnFigure(v float64, extra int) string {
	return strconv.FormatFloat(v, 'f', 1+extra, 64) + "×"
}
