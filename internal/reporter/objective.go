package reporter

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/otpscope/otpscope/internal/ops"
	"github.com/otpscope/otpscope/internal/store"
)

// Objective is a team's service-level objective for its logins: the share
// of settled journeys (logins, OTP or not: /fallback's) delivered on some
// channel, over a rolling window ending now (--slo-delivery-rate,
// --slo-window). What falls short of it is the error budget: with 99 %
// over 28 days, one settled journey in a hundred may fail, and a burn rate
// of 1 spends exactly that by the window's end. A journey still pending is
// neither, as everywhere (docs/analytics.md).
type Objective struct {
	// DeliveryRate is the share of settled journeys to deliver; 0 sets
	// none (the figures are still read, without a budget).
	DeliveryRate float64
	// Window is the rolling window it is held over; 0 is
	// DefaultSLOWindow.
	Window time.Duration
}

// window is o's window, DefaultSLOWindow for 0.
func (o Objective) window() time.Duration { return cmp.Or(o.Window, DefaultSLOWindow) }

// DefaultSLOWindow is four whole weeks: every weekday as often, so a
// weekend's quieter traffic does not tilt the figure (the SRE workbook's
// suggestion, Google, "Implementing SLOs").
const DefaultSLOWindow = 28 * 24 * time.Hour

// The SLO window's bounds: a day at least, and at most a year, which the
// daily rollups read as fast as a month.
const (
	minSLOWindow = 24 * time.Hour
	maxSLOWindow = 366 * 24 * time.Hour
)

// BurnWindows are the recent windows the budget's burn rate is read over:
// the SRE workbook's long windows ("Alerting on SLOs"): a burn of 14.4 over
// the last hour or of 6 over six hours spends 2 % or 5 % of a 30-day
// budget there and is worth a page; one above 1 over three days, a ticket.
// Those longer than the SLO window are left out.
var BurnWindows = []time.Duration{time.Hour, 6 * time.Hour, 3 * 24 * time.Hour}

// RegisterFlags registers --slo-delivery-rate and --slo-window.
func (o *Objective) RegisterFlags(fs *flag.FlagSet) {
	o.Window = DefaultSLOWindow
	fs.Float64Var(&o.DeliveryRate, "slo-delivery-rate", 0, "the objective for logins: the share of settled journeys (logins, OTP or not) delivered on some channel over --slo-window, e.g. 0.99; what falls short is the error budget, which /api/v1/slo and the console say how much is left of and how fast it burns (0: none, the figures without a budget); within 0..1, 1 excluded")
	fs.Var((*sloWindow)(&o.Window), "slo-window", "the rolling window --slo-delivery-rate is held over, ending now: whole days (28d) or a duration, at least 1d, at most 366d")
}

// Validate reports a rate or window out of bounds.
func (o Objective) Validate() error {
	if o.DeliveryRate < 0 || o.DeliveryRate >= 1 {
		return fmt.Errorf("slo-delivery-rate %v: must be within 0..1, 1 excluded (a budget of no failure at all is spent by the first), e.g. 0.99", o.DeliveryRate)
	}
	if w := sloWindow(o.window()); time.Duration(w) < minSLOWindow || time.Duration(w) > maxSLOWindow {
		return fmt.Errorf("slo-window %s: must be from 1d to 366d, e.g. 28d", w.string())
	}
	return nil
}

// sloWindow is --slo-window: whole days said as days.
type sloWindow time.Duration

func (w *sloWindow) String() string { return (*w).string() }

func (w sloWindow) string() string {
	d := time.Duration(w)
	if d > 0 && d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return d.String()
}

func (w *sloWindow) Set(s string) error {
	d, ok := store.ParseDuration(strings.TrimSpace(s))
	if !ok || d <= 0 {
		return fmt.Errorf("%q: want whole days (28d) or a duration (720h)", s)
	}
	*w = sloWindow(d)
	return nil
}

// SLOResponse is the body of GET /api/v1/slo: the journeys of the SLO
// window, the objective (null when none is set), the error budget and how
// fast the recent windows burn it.
type SLOResponse struct {
	Objective     *float64  `json:"objective"`
	WindowSeconds float64   `json:"window_seconds"`
	From          time.Time `json:"from"`
	To            time.Time `json:"to"`
	// AsOf: every fact stored before it is counted (the oldest of the
	// windows' answers: max_lag's reads).
	AsOf time.Time `json:"as_of"`
	SLOFigures
	// Budget is null without an objective or a settled journey.
	Budget *SLOBudget `json:"budget"`
	Burn   []SLOBurn  `json:"burn"`
	// Says is the answer in words, as the console shows it.
	Says string `json:"says"`
}

// SLOFigures are a window's journeys as the objective counts them.
type SLOFigures struct {
	Journeys  uint64 `json:"journeys"`
	Delivered uint64 `json:"delivered"`
	Failed    uint64 `json:"failed"`
	Pending   uint64 `json:"pending"`
	// DeliveryRate is delivered / (delivered + failed); null when none
	// settled.
	DeliveryRate *float64 `json:"delivery_rate"`
}

// SLOBudget is the error budget of the SLO window: FailuresAllowed of its
// settled journeys may fail, (1 − objective) of them; Spent is the share
// of them that did (above 1: overspent), Remaining 1 − Spent (negative
// when overspent).
type SLOBudget struct {
	FailuresAllowed float64 `json:"failures_allowed"`
	Spent           float64 `json:"spent"`
	Remaining       float64 `json:"remaining"`
}

// SLOWindow is a window as long as WindowSeconds, ending at To, and its
// journeys.
type SLOWindow struct {
	WindowSeconds float64   `json:"window_seconds"`
	From          time.Time `json:"from"`
	To            time.Time `json:"to"`
	SLOFigures
}

// SLOBurn is a recent window and its burn rate: its failed share of
// settled journeys over the budget's, (1 − objective); 1 spends the budget
// exactly by the SLO window's end. Null without an objective or a settled
// journey.
type SLOBurn struct {
	SLOWindow
	Rate *float64 `json:"rate"`
}

// sloParams: the console reads it as it reads the overview, with max_lag.
var sloParams = []string{"max_lag"}

// slo answers GET /api/v1/slo: the SLO window and each burn window ending
// now, read side by side.
func (a *API) slo(w http.ResponseWriter, r *http.Request) {
	readAt := a.now()
	win, ok := a.window(w, r)
	if !ok {
		return
	}
	o := a.rules.Objective
	windows := []time.Duration{o.window()}
	for _, d := range BurnWindows {
		if d <= o.window() {
			windows = append(windows, d)
		}
	}
	ctx := store.PlanOnce(r.Context())
	figures, err := readSLO(ctx, a.db, win, windows)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := SLOResponse{WindowSeconds: o.window().Seconds(), From: win.To.Add(-windows[0]), To: win.To, AsOf: answeredAsOf(ctx, readAt), SLOFigures: figures[0], Burn: []SLOBurn{}}
	if o.DeliveryRate > 0 {
		out.Objective = &o.DeliveryRate
		out.Budget = o.budget(figures[0])
	}
	for i, d := range windows[1:] {
		b := SLOBurn{SLOWindow: SLOWindow{WindowSeconds: d.Seconds(), From: win.To.Add(-d), To: win.To, SLOFigures: figures[i+1]}}
		b.Rate = o.burnRate(b.SLOFigures)
		out.Burn = append(out.Burn, b)
	}
	out.Says = o.says(out)
	ops.WriteJSON(w, out)
}

// readSLO reads the journeys of each window as long as one of spans and
// ending at w.To (w's filters and max_lag), side by side.
func readSLO(ctx context.Context, db Analytics, w store.Window, spans []time.Duration) ([]SLOFigures, error) {
	figures := make([]SLOFigures, len(spans))
	g, gctx := errgroup.WithContext(ctx)
	for i, d := range spans {
		bw := w
		bw.From = w.To.Add(-d)
		g.Go(func() error {
			fb, err := db.Fallback(gctx, bw)
			figures[i] = sloFigures(fb.Outcomes, fb.OTPs)
			return err
		})
	}
	return figures, g.Wait()
}

// sloFigures are a window's journeys from its outcomes.
func sloFigures(o store.Outcomes, journeys uint64) SLOFigures {
	f := SLOFigures{Journeys: journeys, Delivered: o.DeliveredPrimary + o.DeliveredFallback, Failed: o.Failed, Pending: o.Pending}
	if settled := f.Delivered + f.Failed; settled > 0 {
		r := float64(f.Delivered) / float64(settled)
		f.DeliveryRate = &r
	}
	return f
}

// budget is the error budget of the SLO window's figures f; nil when none
// settled.
func (o Objective) budget(f SLOFigures) *SLOBudget {
	settled := f.Delivered + f.Failed
	if settled == 0 {
		return nil
	}
	allowed := (1 - o.DeliveryRate) * float64(settled)
	spent := float64(f.Failed) / allowed
	return &SLOBudget{FailuresAllowed: allowed, Spent: spent, Remaining: 1 - spent}
}

// burnRate is f's failed share over the budget's; nil without an
// objective or a settled journey.
func (o Objective) burnRate(f SLOFigures) *float64 {
	settled := f.Delivered + f.Failed
	if o.DeliveryRate <= 0 || settled == 0 {
		return nil
	}
	r := float64(f.Failed) / float64(settled) / (1 - o.DeliveryRate)
	return &r
}

// says is r in words: "99.31% of 12345 settled journeys delivered over the
// last 28 d (objective 99.00%): 31% of the error budget left (85 of 123.5
// failures allowed); burn rate 0.4× over the last 1 h, …".
func (o Objective) says(r SLOResponse) string {
	var b strings.Builder
	span := humanDuration(o.window())
	settled := r.Delivered + r.Failed
	if r.DeliveryRate == nil {
		fmt.Fprintf(&b, "no settled journeys over the last %s", span)
	} else {
		fmt.Fprintf(&b, "%s of %d settled journeys delivered over the last %s", sloPct(*r.DeliveryRate), settled, span)
	}
	switch {
	case r.Objective == nil:
		b.WriteString(" (no objective set: --slo-delivery-rate)")
		return b.String()
	case r.Budget == nil:
		fmt.Fprintf(&b, " (objective %s): no error budget yet", sloPct(*r.Objective))
	case r.Budget.Remaining >= 0:
		fmt.Fprintf(&b, " (objective %s): %s of the error budget left (%d of %s failures allowed)", sloPct(*r.Objective), budgetPct(r.Budget.Remaining), r.Failed, trimFloat(r.Budget.FailuresAllowed))
	default:
		fmt.Fprintf(&b, " (objective %s): the error budget spent, %s over (%d of %s failures allowed)", sloPct(*r.Objective), budgetPct(-r.Budget.Remaining), r.Failed, trimFloat(r.Budget.FailuresAllowed))
	}
	for i, burn := range r.Burn {
		if i == 0 {
			b.WriteString("; burn rate ")
		} else {
			b.WriteString(", ")
		}
		if burn.Rate == nil {
			fmt.Fprintf(&b, "– over the last %s (none settled)", humanDuration(time.Duration(burn.WindowSeconds*float64(time.Second))))
			continue
		}
		fmt.Fprintf(&b, "%s× over the last %s", strconv.FormatFloat(*burn.Rate, 'f', 1, 64), humanDuration(time.Duration(burn.WindowSeconds*float64(time.Second))))
	}
	return b.String()
}

// sloPct says a delivery rate to a hundredth of a point: an objective of
// 99.9 % and a rate of 99.95 % differ there.
func sloPct(v float64) string { return strconv.FormatFloat(100*v, 'f', 2, 64) + "%" }

// budgetPct says a share of the budget in whole percent.
func budgetPct(v float64) string { return strconv.FormatFloat(100*v, 'f', 0, 64) + "%" }

// trimFloat says v to a tenth, without a trailing ".0", and under 10 to
// two figures: a budget of 0.034 failures is not "0".
func trimFloat(v float64) string {
	if v < 10 {
		return strconv.FormatFloat(v, 'g', 2, 64)
	}
	return strings.TrimSuffix(strconv.FormatFloat(v, 'f', 1, 64), ".0")
}
