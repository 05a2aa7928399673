package reporter

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/otpscope/otpscope/internal/store"
)

// ReportObjective is a report's journeys against the objective
// (--slo-delivery-rate): the report window's own, and the SLO window
// ending where the report's does, with its budget, as /api/v1/slo would
// have said it then: the figures a team passes on each week.
type ReportObjective struct {
	Objective float64 `json:"objective"`
	// Window is the report window's journeys, its BurnRate their failed
	// share of settled journeys over the budget's (1 spends the budget
	// exactly by the SLO window's end); null when none settled.
	Window   SLOFigures `json:"window"`
	BurnRate *float64   `json:"burn_rate"`
	// SLO is the SLO window ending at the report's end, with the report's
	// filters, and its budget.
	SLO ReportSLOWindow `json:"slo_window"`
}

// ReportSLOWindow is the SLO window of a report's objective, and its
// budget.
type ReportSLOWindow struct {
	SLOWindow
	Budget *SLOBudget `json:"budget"`
}

// holdTo sets r's Objective from o, reading the SLO window ending at r's
// end with w's filters (w: the report's window); none without an
// objective.
func (r *Report) holdTo(ctx context.Context, db Analytics, w store.Window, o Objective) error {
	if o.DeliveryRate <= 0 {
		return nil
	}
	w.From, w.To = r.From, r.To
	figures, err := readSLO(store.PlanOnce(ctx), db, w, []time.Duration{o.window()})
	if err != nil {
		return fmt.Errorf("%s report, the objective's window: %w", r.Kind, err)
	}
	here := sloFigures(r.Fallback.Outcomes, r.Fallback.OTPs)
	r.Objective = &ReportObjective{Objective: o.DeliveryRate, Window: here, BurnRate: o.burnRate(here),
		SLO: ReportSLOWindow{SLOWindow: SLOWindow{WindowSeconds: o.window().Seconds(), From: r.To.Add(-o.window()), To: r.To, SLOFigures: figures[0]}, Budget: o.budget(figures[0])}}
	return nil
}

// says is the objective in words, the table's and the HTML's: "Objective
// 99.00% of settled journeys delivered: this window 99.40% of 2480 (burn
// rate 0.6×); the 28 d to 2026-12-07 00:00:00Z 99.20% of 12345, 20% of
// the error budget left".
func (o *ReportObjective) says(zone *time.Location) string {
	rate := func(f SLOFigures) string {
		if f.DeliveryRate == nil {
			return "none settled"
		}
		return sloPct(*f.DeliveryRate) + " of " + strconv.FormatUint(f.Delivered+f.Failed, 10)
	}
	s := fmt.Sprintf("Objective %s of settled journeys delivered: this window %s", sloPct(o.Objective), rate(o.Window))
	if o.BurnRate != nil {
		s += " (burn rate " + burnFigure(*o.BurnRate, 0) + ")"
	}
	s += fmt.Sprintf("; the %s to %s %s", humanDuration(time.Duration(o.SLO.WindowSeconds*float64(time.Second))), zoneTime(o.SLO.To.Truncate(time.Second), zone), rate(o.SLO.SLOFigures))
	switch b := o.SLO.Budget; {
	case b == nil:
		return s
	case b.Remaining >= 0:
		return s + ", " + budgetPct(b.Remaining) + " of the error budget left"
	default:
		return s + ", the error budget spent, " + budgetPct(-b.Remaining) + " over"
	}
}
