package ingest

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/ops"
)

// Outcomes of a request, a label of otpscope_ingest_requests_total.
const (
	outcomeAccepted     = "accepted"
	outcomeUnauthorized = "unauthorized"
	outcomeBadRequest   = "bad_request"
	outcomeTooLarge     = "too_large"
	outcomeMediaType    = "unsupported_media_type"
	outcomeUnavailable  = "unavailable"
)

// Endpoints, the other label of otpscope_ingest_requests_total: alerts
// on tyntec's callback read the webhook's alone, since the app's backend
// posting silent-auth outcomes says nothing of it.
const (
	endpointWebhook = "webhook"
	endpointSilent  = "silent_auth"
	endpointPush    = "push"
	endpointTrack   = "track"
	// endpointUnknown: a body cut off before any endpoint ran, when
	// fasthttp no longer has the request's path (fast.go).
	endpointUnknown = "unknown"
)

// endpointOf is the endpoint label of a route's path.
func endpointOf(path string) string {
	switch path {
	case WebhookPath:
		return endpointWebhook
	case SilentPath:
		return endpointSilent
	case PushPath:
		return endpointPush
	case TrackPath:
		return endpointTrack
	}
	return endpointUnknown
}

type metrics struct {
	requests *prometheus.CounterVec
	// accepted is requests{outcome="accepted"} by endpoint, looked up once.
	accepted    map[string]prometheus.Counter
	events      *prometheus.CounterVec
	eventSeries ops.Series[[2]string, prometheus.Counter] // events' by channel and status
	publish     prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	// promauto registers each collector as it is made; a nil reg registers none.
	f := promauto.With(reg)
	m := &metrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{Name: "otpscope_ingest_requests_total", Help: "Requests to the ingest endpoints by endpoint (webhook, silent_auth, push, track; unknown: a body cut off before the endpoint was known) and outcome."}, []string{"endpoint", "outcome"}),
		events:   f.NewCounterVec(prometheus.CounterOpts{Name: "otpscope_ingest_events_total", Help: "Delivery events stored, by channel and status (OTHER for values tyntec did not document); duplicates the stream dropped are not counted."}, []string{"channel", "status"}),
		publish:  f.NewHistogram(prometheus.HistogramOpts{Name: "otpscope_ingest_publish_seconds", Help: "Time from publishing a request's events to JetStream's last acknowledgement.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		accepted: map[string]prometheus.Counter{},
	}
	// Zero series for every endpoint and outcome, so rates exist before
	// the first failure.
	for _, e := range []string{endpointWebhook, endpointSilent, endpointPush, endpointTrack} {
		m.accepted[e] = m.requests.WithLabelValues(e, outcomeAccepted)
		for _, o := range []string{outcomeUnauthorized, outcomeBadRequest, outcomeTooLarge, outcomeMediaType, outcomeUnavailable} {
			m.requests.WithLabelValues(e, o)
		}
	}
	m.requests.WithLabelValues(endpointUnknown, outcomeBadRequest)
	return m
}

// count counts a request to the route at path.
func (m *metrics) count(path, outcome string) {
	m.requests.WithLabelValues(endpointOf(path), outcome).Inc()
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
