package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// storeScrapeTimeout bounds what a scrape waits for NATS' answers: a
// server that does not answer leaves these gauges out of the scrape, not
// the scrape late.
const storeScrapeTimeout = 2 * time.Second

var (
	streamBytesDesc = prometheus.NewDesc("otpscope_nats_stream_bytes",
		"Bytes otpscope's stream holds (the events of --stream-max-age).", nil, nil)
	storeBytesDesc = prometheus.NewDesc("otpscope_nats_store_bytes",
		"Bytes JetStream stores that count against otpscope_nats_store_limit_bytes: the embedded server's whole file store (the stream and the KV buckets); with an external server, the account's.", nil, nil)
	storeLimitDesc = prometheus.NewDesc("otpscope_nats_store_limit_bytes",
		"The file store limit at which JetStream refuses new messages (webhooks answered 503): the embedded server's, fixed at start (75 % of the disk's free space then, the store's own bytes counted as free); with an external server, the account's, 0 when it has none (the server's own limit is not told to clients).", nil, nil)
)

// storeCollector reads, at each scrape, how full the store is: the only
// warning before JetStream refuses writes, which otpscope_nats_jetstream_ok
// reports once it has happened.
type storeCollector struct{ b *Broker }

func (c storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- streamBytesDesc
	ch <- storeBytesDesc
	ch <- storeLimitDesc
}

func (c storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), storeScrapeTimeout)
	defer cancel()
	if info, err := c.b.streamInfo(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(streamBytesDesc, prometheus.GaugeValue, float64(info.State.Bytes))
	}
	if used, limit, err := c.b.storeUsage(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(storeBytesDesc, prometheus.GaugeValue, float64(used))
		ch <- prometheus.MustNewConstMetric(storeLimitDesc, prometheus.GaugeValue, float64(limit))
	}
}

// storeUsage is the bytes JetStream stores against the limit that makes it
// refuse new messages, and that limit (0: none known). The embedded
// server's is its own store's, for all streams; an external server's, the
// account's in the stream's replica tier (R3 on a cluster), or overall
// when the account has no tiers.
func (b *Broker) storeUsage(ctx context.Context) (used uint64, limit int64, err error) {
	if b.srv != nil {
		jsz, err := b.srv.Jsz(nil)
		if err != nil {
			return 0, 0, err
		}
		if jsz.Disabled {
			return 0, 0, errors.New("JetStream is disabled")
		}
		return jsz.Store, jsz.Config.MaxStore, nil
	}
	ai, err := b.js.AccountInfo(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("account info: %w", err)
	}
	tier := ai.Tier
	if t, ok := ai.Tiers[fmt.Sprintf("R%d", max(b.replicas.Load(), 1))]; ok {
		tier = t
	}
	return tier.Store, max(tier.Limits.MaxStore, 0), nil
}
