package ingest

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/ops"
)

// Outcomes of a webhook request, the label of otpscope_ingest_requests_total.
const (
	outcomeAccepted     = "accepted"
	outcomeUnauthorized = "unauthorized"
	outcomeBadRequest   = "bad_request"
	outcomeTooLarge     = "too_large"
	outcomeMediaType    = "unsupported_media_type"
	outcomeUnavailable  = "unavailable"
)

type metrics struct {
	requests    *prometheus.CounterVec
	accepted    prometheus.Counter // requests{outcome="accepted"}, looked up once
	events      *prometheus.CounterVec
	eventSeries ops.Series[[2]string, prometheus.Counter] // events' by channel and status
	publish     prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	// promauto registers each collector as it is made; a nil reg registers none.
	f := promauto.With(reg)
	m := &metrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{Name: "otpscope_ingest_requests_total", Help: "Webhook requests by outcome."}, []string{"outcome"}),
		events:   f.NewCounterVec(prometheus.CounterOpts{Name: "otpscope_ingest_events_total", Help: "Delivery events stored, by channel and status (OTHER for values tyntec did not document); duplicates the stream dropped are not counted."}, []string{"channel", "status"}),
		publish:  f.NewHistogram(prometheus.HistogramOpts{Name: "otpscope_ingest_publish_seconds", Help: "Time from publishing a request's events to JetStream's last acknowledgement.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
	}
	// Zero series for every outcome, so rates exist before the first failure.
	m.accepted = m.requests.WithLabelValues(outcomeAccepted)
	for _, o := range []string{outcomeAccepted, outcomeUnauthorized, outcomeBadRequest, outcomeTooLarge, outcomeMediaType, outcomeUnavailable} {
		m.requests.WithLabelValues(o)
	}
	return m
}

// countEvent keeps label cardinality bounded: undocumented values share OTHER.
func (m *metrics) countEvent(ev *events.DeliveryStatus) {
	ch, st := string(ev.Channel), string(ev.Status)
	if ev.UnknownChannel {
		ch = "OTHER"
	}
	if ev.UnknownStatus {
		st = "OTHER"
	}
	m.eventSeries.Get([2]string{ch, st}, func() prometheus.Counter { return m.events.WithLabelValues(ch, st) }).Inc()
}
