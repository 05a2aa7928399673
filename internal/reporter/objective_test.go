package reporter_test

import (
	"encoding/json"
	"flag"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/reporter"
)

// testSLO: /api/v1/slo counts the journeys of the SLO window and of each
// burn window ending now as the ground truth does, and its budget and burn
// rates are those figures' against the objective.
func testSLO(t *testing.T, tr *traffic) {
	// Now an hour after the middle journey began: the last hour holds the
	// later half of the traffic (less than an hour long), the longer
	// windows all of it.
	var starts []time.Time
	for _, j := range tr.truth.Journeys() {
		starts = append(starts, j.Attempts[0].Start)
	}
	slices.SortFunc(starts, time.Time.Compare)
	now := starts[len(starts)/2].Add(time.Hour).Truncate(time.Millisecond)
	objective := reporter.Objective{DeliveryRate: 0.9, Window: 7 * 24 * time.Hour}
	serve := func(o reporter.Objective) *httptest.Server {
		r := chi.NewRouter()
		reporter.NewAPI(tr.f.DB, reporter.AlertRules{Objective: o}, brokertest.Logger(t)).SetNow(func() time.Time { return now }).Mount(r)
		s := httptest.NewServer(r)
		t.Cleanup(s.Close)
		return s
	}
	get := func(s *httptest.Server, q string) (*http.Response, reporter.SLOResponse) {
		t.Helper()
		api := &traffic{api: s}
		var got reporter.SLOResponse
		v, _ := url.ParseQuery(q)
		resp := api.get(t, "/api/v1/slo", v, &got)
		return resp, got
	}
	want := func(from time.Time) reporter.SLOFigures {
		_, fb, _ := expect(tr.truth, from, now)
		f := reporter.SLOFigures{Journeys: fb.OTPs, Delivered: fb.Outcomes.DeliveredPrimary + fb.Outcomes.DeliveredFallback, Failed: fb.Outcomes.Failed, Pending: fb.Outcomes.Pending}
		return f
	}
	same := func(name string, got, want reporter.SLOFigures) {
		t.Helper()
		if got.Journeys != want.Journeys || got.Delivered != want.Delivered || got.Failed != want.Failed || got.Pending != want.Pending ||
			!sameRate(got.DeliveryRate, want.Delivered, want.Delivered+want.Failed) {
			t.Errorf("%s = %+v (rate %v); want %+v", name, got, got.DeliveryRate, want)
		}
	}

	resp, got := get(serve(objective), "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/slo: %s", resp.Status)
	}
	if got.Objective == nil || *got.Objective != 0.9 || got.WindowSeconds != objective.Window.Seconds() || !got.To.Equal(now) || !got.From.Equal(now.Add(-objective.Window)) {
		t.Errorf("objective %v over %v s, %s … %s; want 0.9 over 7 days ending %s", got.Objective, got.WindowSeconds, got.From, got.To, now)
	}
	w := want(now.Add(-objective.Window))
	same("the SLO window", got.SLOFigures, w)
	if w.Failed == 0 || w.Delivered == 0 {
		t.Fatalf("the window has %d delivered and %d failed journeys: want both, for a budget worth checking", w.Delivered, w.Failed)
	}
	settled := float64(w.Delivered + w.Failed)
	allowed := 0.1 * settled
	if b := got.Budget; b == nil || math.Abs(b.FailuresAllowed-allowed) > 1e-9 || math.Abs(b.Spent-float64(w.Failed)/allowed) > 1e-9 || math.Abs(b.Remaining-(1-b.Spent)) > 1e-9 {
		t.Errorf("budget = %+v; want %v failures allowed, %d failed", got.Budget, allowed, w.Failed)
	}
	if len(got.Burn) != len(reporter.BurnWindows) {
		t.Fatalf("%d burn windows; want %d", len(got.Burn), len(reporter.BurnWindows))
	}
	var journeys []uint64
	for i, b := range got.Burn {
		d := reporter.BurnWindows[i]
		bw := want(now.Add(-d))
		journeys = append(journeys, bw.Journeys)
		if b.WindowSeconds != d.Seconds() || !b.From.Equal(now.Add(-d)) || !b.To.Equal(now) {
			t.Errorf("burn window %d = %v s, %s … %s; want %v ending %s", i, b.WindowSeconds, b.From, b.To, d, now)
		}
		same("the last "+d.String(), b.SLOFigures, bw)
		switch {
		case bw.Delivered+bw.Failed == 0:
			if b.Rate != nil {
				t.Errorf("the last %v: burn rate %v; want none, nothing settled", d, *b.Rate)
			}
		case b.Rate == nil || math.Abs(*b.Rate-float64(bw.Failed)/float64(bw.Delivered+bw.Failed)/0.1) > 1e-9:
			t.Errorf("the last %v: burn rate %v; want %d failed of %d settled over 10%%", d, b.Rate, bw.Failed, bw.Delivered+bw.Failed)
		}
	}
	if journeys[0] == w.Journeys {
		t.Errorf("the last hour holds all %d journeys of the week: want a burn window the test tells apart", w.Journeys)
	}
	for _, part := range []string{"settled journeys delivered over the last 7 d (objective 90.00%)", "of the error budget", "burn rate ", "× over the last 1 h"} {
		if !strings.Contains(got.Says, part) {
			t.Errorf("says %q; want %q in it", got.Says, part)
		}
	}

	// No objective: the same figures, no budget, no burn rate.
	_, off := get(serve(reporter.Objective{Window: objective.Window}), "max_lag=1m")
	same("without an objective", off.SLOFigures, w)
	if off.Objective != nil || off.Budget != nil || len(off.Burn) != len(reporter.BurnWindows) || off.Burn[0].Rate != nil {
		t.Errorf("without an objective: objective %v, budget %+v, burn %+v; want none of them", off.Objective, off.Budget, off.Burn)
	}
	if !strings.Contains(off.Says, "no objective set") {
		t.Errorf("without an objective, says %q", off.Says)
	}

	// A window of a day leaves out the burn window longer than it.
	_, day := get(serve(reporter.Objective{DeliveryRate: 0.99, Window: 24 * time.Hour}), "")
	if len(day.Burn) != 2 || day.Burn[1].WindowSeconds != (6*time.Hour).Seconds() {
		t.Errorf("a day's SLO has burn windows %+v; want the last hour's and 6 hours'", day.Burn)
	}

	// A report holds its window's journeys, and the SLO window's ending
	// with it, to the objective, in each of its forms.
	reportFrom := starts[0].Truncate(time.Second)
	reportTo := now.Add(-30 * time.Minute).Truncate(time.Second)
	cfg := reporter.ReportCLIConfig{From: reportFrom.Format(time.RFC3339), To: reportTo.Format(time.RFC3339), TZ: "UTC", Objective: objective}
	forms := map[string]string{}
	for _, format := range reporter.Formats {
		cfg.Format = format
		var b strings.Builder
		if err := reporter.WriteReport(t.Context(), tr.f.DB, cfg, now, &b); err != nil {
			t.Fatal(err)
		}
		forms[format] = b.String()
	}
	var rep reporter.Report
	if err := json.Unmarshal([]byte(forms["json"]), &rep); err != nil {
		t.Fatal(err)
	}
	o := rep.Objective
	if o == nil {
		t.Fatal("the report has no objective")
	}
	_, fb, _ := expect(tr.truth, reportFrom, reportTo)
	here := reporter.SLOFigures{Journeys: fb.OTPs, Delivered: fb.Outcomes.DeliveredPrimary + fb.Outcomes.DeliveredFallback, Failed: fb.Outcomes.Failed, Pending: fb.Outcomes.Pending}
	same("the report's window", o.Window, here)
	sloFrom := reportTo.Add(-objective.Window)
	same("the report's SLO window", o.SLO.SLOFigures, want(sloFrom))
	if o.Objective != 0.9 || !o.SLO.From.Equal(sloFrom) || !o.SLO.To.Equal(reportTo) || o.BurnRate == nil ||
		math.Abs(*o.BurnRate-float64(here.Failed)/float64(here.Delivered+here.Failed)/0.1) > 1e-9 || o.SLO.Budget == nil {
		t.Errorf("the report's objective = %+v; want 0.9, the window's burn rate, the 7 days to %s with a budget", o, reportTo)
	}
	for format, part := range map[string]string{
		"table": "Objective 90.00% of settled journeys delivered: this window ",
		"html":  `<p id="objective">Objective 90.00% of settled journeys delivered: this window `,
		"csv":   "objective,slo_window,budget_remaining,",
	} {
		if !strings.Contains(forms[format], part) {
			t.Errorf("the %s report lacks %q", format, part)
		}
	}
	if !strings.Contains(forms["table"], "; the 7 d to "+reportTo.Format(time.RFC3339)+" ") {
		t.Errorf("the table's objective does not name the SLO window:\n%s", forms["table"])
	}
	cfg.Objective = reporter.Objective{}
	cfg.Format = "json"
	var none strings.Builder
	if err := reporter.WriteReport(t.Context(), tr.f.DB, cfg, now, &none); err != nil || strings.Contains(none.String(), `"objective"`) {
		t.Errorf("a report without an objective: %v, says one: %v", err, strings.Contains(none.String(), `"objective"`))
	}

	for _, q := range []string{"max_lag=forever", "since=1h", "from=2026-06-01T00:00:00Z"} {
		resp, err := http.Get(serve(objective).URL + "/api/v1/slo?" + q)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET /api/v1/slo?%s: %s %s; want 400", q, resp.Status, body)
		}
	}
}

func TestObjectiveFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		ok   bool
		want reporter.Objective
	}{
		{nil, true, reporter.Objective{Window: reporter.DefaultSLOWindow}},
		{[]string{"--slo-delivery-rate", "0.995", "--slo-window", "30d"}, true, reporter.Objective{DeliveryRate: 0.995, Window: 30 * 24 * time.Hour}},
		{[]string{"--slo-window", "720h"}, true, reporter.Objective{Window: 30 * 24 * time.Hour}},
		{[]string{"--slo-delivery-rate", "1"}, false, reporter.Objective{}},
		{[]string{"--slo-delivery-rate", "-0.1"}, false, reporter.Objective{}},
		{[]string{"--slo-window", "12h"}, false, reporter.Objective{}},
		{[]string{"--slo-window", "367d"}, false, reporter.Objective{}},
		{[]string{"--slo-window", "0"}, false, reporter.Objective{}},
	} {
		var o reporter.Objective
		fs := flag.NewFlagSet("reporter", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		o.RegisterFlags(fs)
		err := fs.Parse(c.args)
		if err == nil {
			err = o.Validate()
		}
		if (err == nil) != c.ok || c.ok && o != c.want {
			t.Errorf("%v: %+v, %v; want ok %v, %+v", c.args, o, err, c.ok, c.want)
		}
	}
	// The zero Objective is none, over the default window.
	if err := (reporter.Objective{}).Validate(); err != nil {
		t.Errorf("the zero objective: %v", err)
	}
	if err := (reporter.Objective{Window: 400 * 24 * time.Hour}).Validate(); err == nil || !strings.Contains(err.Error(), "slo-window 400d:") {
		t.Errorf("a window of 400 days: %v; want it refused, said in days", err)
	}
	// A budget's failures allowed are said to a tenth, and under ten to
	// two figures, never "0".
	for allowed, want := range map[float64]string{123.45: "(85 of 123.5 failures allowed)", 0.034: "(1 of 0.034 failures allowed)", 2.43: "(1 of 2.4 failures allowed)", 40: "(1 of 40 failures allowed)"} {
		f := reporter.SLOFigures{Delivered: 100, Failed: 85}
		if allowed < 100 {
			f.Failed = 1
		}
		if got := reporter.SLOSays(0.99, allowed, f); !strings.Contains(got, want) {
			t.Errorf("%v failures allowed: %q; want %q in it", allowed, got, want)
		}
	}
	// Said as it is given: the README's flag table shows the default.
	fs := flag.NewFlagSet("reporter", flag.ContinueOnError)
	new(reporter.Objective).RegisterFlags(fs)
	if d := fs.Lookup("slo-window").DefValue; d != "28d" {
		t.Errorf("--slo-window's default reads %q; want 28d", d)
	}
}
