package sink

import (
	"math"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	rows          prometheus.Counter
	batchRows     prometheus.Histogram
	insertSeconds prometheus.Histogram
	failures      *prometheus.CounterVec
	lag           prometheus.Gauge
	ackPending    prometheus.Gauge
	boundShare    prometheus.Gauge
	// storeHealthy is 1 while inserts succeed, 0 from a failed insert until
	// the next one succeeds; insertFailures counts the failed attempts by
	// error class.
	storeHealthy   prometheus.Gauge
	insertFailures *prometheus.CounterVec
	// brokenParts counts the parts a full disk broke that the sink found,
	// or that the engine set aside as it started (recover.go); replayedRows
	// the rows inserted again after.
	brokenParts  prometheus.Counter
	replayedRows prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	// promauto registers each collector as it is made; a nil reg registers none.
	f := promauto.With(reg)
	m := &metrics{
		rows:           f.NewCounter(prometheus.CounterOpts{Name: "otpscope_sink_rows_total", Help: "Rows inserted into ClickHouse and acknowledged."}),
		batchRows:      f.NewHistogram(prometheus.HistogramOpts{Name: "otpscope_sink_batch_rows", Help: "Rows per successful insert.", Buckets: prometheus.ExponentialBuckets(1, 4, 9)}),
		insertSeconds:  f.NewHistogram(prometheus.HistogramOpts{Name: "otpscope_sink_insert_seconds", Help: "Time an insert of one batch takes.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 15)}),
		failures:       f.NewCounterVec(prometheus.CounterOpts{Name: "otpscope_sink_failures_total", Help: "Sink failures by kind: fetch, insert, dead_letter, recover (broken parts not recovered)."}, []string{"kind"}),
		lag:            f.NewGauge(prometheus.GaugeOpts{Name: "otpscope_sink_consumer_lag", Help: "Messages in the stream not yet delivered to the sink consumer."}),
		ackPending:     f.NewGauge(prometheus.GaugeOpts{Name: "otpscope_sink_ack_pending", Help: "Messages delivered to the sink and not yet acknowledged."}),
		boundShare:     f.NewGauge(prometheus.GaugeOpts{Name: "otpscope_sink_stream_bound_share", Help: "The share of the stream's bound (--stream-max-age, --stream-max-bytes) that events not yet inserted into ClickHouse take up, read every 10 s while events wait: at 1 the stream drops them uninserted. NaN until read."}),
		storeHealthy:   f.NewGauge(prometheus.GaugeOpts{Name: "otpscope_sink_store_healthy", Help: "1 while the sink's inserts into ClickHouse succeed, 0 while they fail and are retried."}),
		brokenParts:    f.NewCounter(prometheus.CounterOpts{Name: "otpscope_sink_broken_parts_total", Help: "Parts ClickHouse committed while its disk was full and cannot read back: found and set aside after the sink's inserts failed, or found set aside by the engine when the sink started."}),
		replayedRows:   f.NewCounter(prometheus.CounterOpts{Name: "otpscope_sink_replayed_rows_total", Help: "Rows inserted again from the stream after broken parts were set aside."}),
		insertFailures: f.NewCounterVec(prometheus.CounterOpts{Name: "otpscope_sink_insert_failures_total", Help: "Failed insert attempts by error class: row (the data), server (any other ClickHouse exception: disk, files, memory, parts…), network."}, []string{"class"}),
	}
	m.storeHealthy.Set(1)
	m.boundShare.Set(math.NaN()) // unknown until first read: a 0 would start an alert's for: over
	for _, k := range []string{"fetch", "insert", "dead_letter", "recover"} {
		m.failures.WithLabelValues(k)
	}
	for _, k := range []string{classRow, classServer, classNetwork} {
		m.insertFailures.WithLabelValues(k)
	}
	return m
}
