package poller

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/otpscope/otpscope/internal/events"
)

// resendIgnored is the result label of a failed delivery no policy rule
// matches; the others are the audit's (events.Resend*).
const resendIgnored = "ignored"

// resendResults are every result of otpscope_poller_resends_total.
var resendResults = []string{events.ResendSent, events.ResendSkipped, events.ResendFailed, events.ResendDryRun, resendIgnored}

// dueKinds are the kinds of otpscope_poller_due_otps and of
// otpscope_poller_reconciled_total.
var dueKinds = []string{"delivery", "verify"}

// metrics are the poller's collectors; tyntec calls by endpoint and outcome
// are the client's otpscope_tyntec_calls_total{op,outcome}.
type metrics struct {
	cycles        prometheus.Counter
	cycleSeconds  prometheus.Histogram
	due           *prometheus.GaugeVec // backlog by kind (delivery, verify)
	oldest        prometheus.Gauge
	tracked       prometheus.Gauge
	discovered    prometheus.Counter
	reconciled    *prometheus.CounterVec
	missed        *prometheus.CounterVec
	finished      *prometheus.CounterVec
	rateLimited   prometheus.Counter
	resends       *prometheus.CounterVec
	leader        prometheus.Gauge
	v1SeesV4      prometheus.Gauge
	unrecoverable *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	// Made unregistered (promauto.With(nil)); registered below, where one
	// already registered under the same name is not an error.
	f := promauto.With(nil)
	m := &metrics{
		cycles:        f.NewCounter(prometheus.CounterOpts{Name: "otpscope_poller_cycles_total", Help: "Reconciliation cycles run."}),
		cycleSeconds:  f.NewHistogram(prometheus.HistogramOpts{Name: "otpscope_poller_cycle_duration_seconds", Help: "Duration of a reconciliation cycle (including waits for the rate budget).", Buckets: []float64{0.01, 0.1, 0.5, 1, 5, 15, 30, 60, 120}}),
		due:           f.NewGaugeVec(prometheus.GaugeOpts{Name: "otpscope_poller_due_otps", Help: "OTPs due at the start of the last cycle, by kind: delivery (state to reconcile) or verify (final status to read)."}, []string{"kind"}),
		oldest:        f.NewGauge(prometheus.GaugeOpts{Name: "otpscope_poller_oldest_unreconciled_seconds", Help: "Age of the oldest tracked OTP whose delivery is not known to be settled."}),
		tracked:       f.NewGauge(prometheus.GaugeOpts{Name: "otpscope_poller_tracked_otps", Help: "OTPs tracked (not finished) at the start of the last cycle."}),
		discovered:    f.NewCounter(prometheus.CounterOpts{Name: "otpscope_poller_discovered_total", Help: "OTPs found by GET /2fa/v4/otp that no webhook or registration announced."}),
		reconciled:    f.NewCounterVec(prometheus.CounterOpts{Name: "otpscope_poller_reconciled_total", Help: "OTPs read by kind: delivery (v1 events, or v4 status where v1 does not serve v4 OTPs) or verify (status)."}, []string{"kind"}),
		missed:        f.NewCounterVec(prometheus.CounterOpts{Name: "otpscope_poller_missed_webhooks_total", Help: "Delivery facts of v4 OTPs learned by polling that no webhook reported."}, []string{"channel", "status"}),
		finished:      f.NewCounterVec(prometheus.CounterOpts{Name: "otpscope_poller_finished_total", Help: "OTPs no longer tracked, by reason (final, undelivered, not_sampled, expired, unreconciled, not_found, unrecoverable)."}, []string{"reason"}),
		rateLimited:   f.NewCounter(prometheus.CounterOpts{Name: "otpscope_poller_rate_limited_total", Help: "429 answers that paused the poller for their Retry-After."}),
		resends:       f.NewCounterVec(prometheus.CounterOpts{Name: "otpscope_poller_resends_total", Help: "Resend decisions by result (sent, skipped, failed, dryrun; ignored = no policy rule)."}, []string{"result"}),
		leader:        f.NewGauge(prometheus.GaugeOpts{Name: "otpscope_poller_leader", Help: "1 while this replica holds the lease and calls tyntec."}),
		v1SeesV4:      f.NewGauge(prometheus.GaugeOpts{Name: "otpscope_poller_v1_sees_v4", Help: "Whether tyntec's v1 API serves v4 OTPs, as learned at run time: 1 yes (lost v4 webhooks recoverable), 0 no, -1 not known yet."}),
		unrecoverable: f.NewCounterVec(prometheus.CounterOpts{Name: "otpscope_poller_unrecoverable_total", Help: "Attempts of v4 OTPs whose lost webhooks the poller could not recover (tyntec's v1 API does not serve v4 OTPs), by channel (OTHER: an attempt with no channel, whose every webhook may be lost, or on a channel otpscope does not know)."}, []string{"channel"}),
	}
	m.v1SeesV4.Set(-1)
	// Every known label value from zero: a series that appears only at its
	// first give-up or failed resend hides that one from increase(), so
	// OtpscopePollerGaveUp and OtpscopeResendsFailing would miss it.
	for _, r := range doneReasons {
		m.finished.WithLabelValues(r)
	}
	for _, r := range resendResults {
		m.resends.WithLabelValues(r)
	}
	for _, k := range dueKinds {
		m.due.WithLabelValues(k)
		m.reconciled.WithLabelValues(k) // the operations dashboard's rate(), 0 before the first read
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.cycles, m.cycleSeconds, m.due, m.oldest, m.tracked, m.discovered,
		m.reconciled, m.missed, m.finished, m.rateLimited, m.resends, m.leader, m.v1SeesV4, m.unrecoverable} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				continue
			}
			return nil, err
		}
	}
	return m, nil
}

// notLeading zeroes what only the leader's cycles set, for a replica that
// lost the lease or never held it: kept, its last cycle's readings went on
// being exported until a restart, a stale oldest firing OtpscopePollerBehind
// and a stale tracked arming OtpscopeNoWebhooks while another replica leads.
func (m *metrics) notLeading() {
	m.leader.Set(0)
	m.tracked.Set(0)
	m.oldest.Set(0)
	for _, k := range dueKinds {
		m.due.WithLabelValues(k).Set(0)
	}
}
