package tyntec

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// opNames are the client's operations, the op label of its metrics; every
// call names one of them (TestEveryOpCounted).
var opNames = []string{
	"v1_get_otp", "v1_list_events", "v1_list_otps", "v1_resend", "v1_send", "v1_check",
	"v4_send_otp", "v4_get_otp", "v4_list_otps", "v4_validate_otp",
	"v4_list_callbacks", "v4_create_callback", "v4_patch_callback", "v4_delete_callback",
	"v4_list_priorities", "v4_get_priority", "v4_create_priority", "v4_list_profiles", "v4_get_profile",
}

// outcomes are every outcome label of otpscope_tyntec_calls_total: ok, a
// class of error status (outcomeOf), or no answer.
var outcomes = []string{"ok", "bad_request", "unauthorized", "not_found", "gone", "rate_limited", "server_error", "other_status", "otp_refused", "bad_answer", "timeout", "network_error"}

// metrics are the client's Prometheus collectors. Clients that share a
// Registerer share the collectors.
type metrics struct {
	calls    *prometheus.CounterVec   // one per HTTP attempt, by op and outcome
	retries  *prometheus.CounterVec   // by op and reason
	duration *prometheus.HistogramVec // by op
	wait     prometheus.Histogram     // time waiting for the rate budget
	// unknownWords counts words of answers otpscope does not know, by op
	// and field (otp_status, event_type, channel).
	unknownWords *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	// Made unregistered (promauto.With(nil)); register below shares them.
	f := promauto.With(nil)
	m := &metrics{
		calls:        f.NewCounterVec(prometheus.CounterOpts{Name: "otpscope_tyntec_calls_total", Help: "HTTP requests to the tyntec API by operation and outcome (ok, bad_request, unauthorized, not_found, gone, rate_limited, server_error, other_status, otp_refused: a v1 re-send's or check's 401/403 about the OTP, bad_answer: a 2xx whose body does not read, timeout, network_error)."}, []string{"op", "outcome"}),
		retries:      f.NewCounterVec(prometheus.CounterOpts{Name: "otpscope_tyntec_retries_total", Help: "Retried tyntec API requests by operation and reason."}, []string{"op", "reason"}),
		duration:     f.NewHistogramVec(prometheus.HistogramOpts{Name: "otpscope_tyntec_call_duration_seconds", Help: "Duration of one HTTP request to the tyntec API, by operation.", Buckets: prometheus.DefBuckets}, []string{"op"}),
		unknownWords: f.NewCounterVec(prometheus.CounterOpts{Name: "otpscope_tyntec_unknown_words_total", Help: "Words in tyntec's answers otpscope does not know, by operation and field (otp_status, event_type, channel); the answer is taken as it came (an unknown status is not final), and the word is logged."}, []string{"op", "field"}),
		wait:         f.NewHistogram(prometheus.HistogramOpts{Name: "otpscope_tyntec_rate_limit_wait_seconds", Help: "Time spent waiting for the tyntec API call budget before a request.", Buckets: []float64{0.001, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60}}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	m.calls = register(reg, m.calls, &err)
	m.retries = register(reg, m.retries, &err)
	m.duration = register(reg, m.duration, &err)
	m.wait = register(reg, m.wait, &err)
	m.unknownWords = register(reg, m.unknownWords, &err)
	// Every call's series from zero: one that appears only at its first
	// 401 or 429 hides that one from increase() (OtpscopeTyntecUnauthorized).
	for _, op := range opNames {
		for _, o := range outcomes {
			m.calls.WithLabelValues(op, o)
		}
	}
	return m, err
}

// register registers c, or returns the collector already registered under
// the same name so that several clients can share one registry.
func register[C prometheus.Collector](reg prometheus.Registerer, c C, errp *error) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		if *errp == nil {
			*errp = err
		}
	}
	return c
}
