package poller

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestCountersFromZero: the labelled counters the alerts read with
// increase(), and the operations dashboard with rate(), export every known
// label value at 0 from the start. A series
// born at its first give-up or failed resend hid that one: increase()
// needs two samples, so OtpscopePollerGaveUp missed a one-off batch of
// give-ups and OtpscopeResendsFailing a single failed resend.
func TestCountersFromZero(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := newMetrics(reg); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]map[string]bool{} // metric name → label value
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if got[mf.GetName()] == nil {
					got[mf.GetName()] = map[string]bool{}
				}
				got[mf.GetName()][lp.GetValue()] = m.GetCounter().GetValue() == 0 && m.GetGauge().GetValue() == 0
			}
		}
	}
	for name, values := range map[string][]string{
		"otpscope_poller_finished_total":   doneReasons,
		"otpscope_poller_resends_total":    resendResults,
		"otpscope_poller_due_otps":         dueKinds,
		"otpscope_poller_reconciled_total": dueKinds,
	} {
		for _, v := range values {
			if zero, ok := got[name][v]; !ok || !zero {
				t.Errorf("%s{%q} before anything happened: present %v, at 0 %v; want present at 0", name, v, ok, zero)
			}
		}
	}
	for _, must := range [][2]string{{"otpscope_poller_finished_total", "unreconciled"}, {"otpscope_poller_resends_total", "failed"}} {
		if !got[must[0]][must[1]] {
			t.Errorf("%s{%q} is not exported at 0 (the alert's series)", must[0], must[1])
		}
	}
}
