package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/otpscope/otpscope/internal/broker"
	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/sink"
)

type latencyConfig struct {
	senders        int
	rate           float64
	duration       time.Duration
	ackWait, flush time.Duration
	batch          int
	natsSync       string
}

// runLatency publishes at a steady rate while the sink runs, notes each
// event's PubAck time, and compares it with the time ClickHouse stored the
// row (inserted_at, the same clock: everything runs here).
func runLatency(ctx context.Context, lc latencyConfig) error {
	db, dir, closeStore, err := openStore(ctx, "bench-sink-latency-")
	if err != nil {
		return err
	}
	defer closeStore()
	b, err := openBroker(ctx, dir, lc.natsSync)
	if err != nil {
		return err
	}
	defer b.Close()

	cons := sink.NewConsumer(sink.Config{Durable: "bench", MaxRows: lc.batch, MaxBytes: sink.DefaultMaxBytes, FlushInterval: lc.flush, AckWait: lc.ackWait},
		b, db, quiet, prometheus.NewRegistry())
	sinkCtx, stopSink := context.WithCancel(ctx)
	defer stopSink()
	done := make(chan error, 1)
	go func() { done <- cons.Run(sinkCtx) }()

	var mu sync.Mutex
	acked := make(map[string]time.Time)
	every := time.Duration(float64(lc.senders) / lc.rate * float64(time.Second))
	end := time.Now().Add(lc.duration)
	var g errgroup.Group
	for s := range lc.senders {
		g.Go(func() error {
			next := time.Now().Add(time.Duration(s) * every / time.Duration(lc.senders))
			for i := 0; time.Now().Before(end); i++ {
				time.Sleep(time.Until(next))
				next = next.Add(every)
				now := time.Now().UTC()
				ev := events.DeliveryStatus{Channel: events.ChannelSMS, Status: events.StatusDelivered, Source: events.SourceWebhook,
					OTPID: uuid.NewString(), Timestamp: now, ReceivedAt: now}
				m, err := events.NewDeliveryMessage(&ev)
				if err != nil {
					return err
				}
				if err := b.Publish(ctx, m); err != nil {
					return err
				}
				at := time.Now()
				mu.Lock()
				acked[m.ID] = at
				mu.Unlock()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	n := len(acked)
	published := time.Since(end.Add(-lc.duration))
	// Wait for every event, a stalled one included (AckWait and a flush).
	deadline := time.Now().Add(lc.ackWait + lc.flush + 30*time.Second)
	var got uint64
	for time.Now().Before(deadline) {
		if err := db.Conn().QueryRow(ctx, "SELECT uniqExact(event_id) FROM delivery_events").Scan(&got); err != nil {
			return err
		}
		if got >= uint64(n) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	stopSink()
	if err := <-done; err != nil {
		return err
	}
	redelivered, err := redeliveries(ctx, b, "bench")
	if err != nil {
		return err
	}
	rows, err := db.Conn().Query(ctx, "SELECT event_id, min(inserted_at) FROM delivery_events GROUP BY event_id")
	if err != nil {
		return err
	}
	defer rows.Close()
	lat := make([]time.Duration, 0, n)
	for rows.Next() {
		var id string
		var at time.Time
		if err := rows.Scan(&id, &at); err != nil {
			return err
		}
		if a, ok := acked[id]; ok {
			lat = append(lat, max(at.Sub(a), 0))
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(int(p*float64(len(lat))), len(lat)-1)].Round(time.Millisecond)
	}
	late := 0
	for _, d := range lat {
		if d > lc.flush+2*time.Second {
			late++
		}
	}
	fmt.Printf("PubAck → visible in ClickHouse: %d events (%d senders, %.0f/s asked, %.0f/s published, for %v; flush %v, ack wait %v, nats sync %s)\n",
		n, lc.senders, lc.rate, float64(n)/published.Seconds(), lc.duration, lc.flush, lc.ackWait, lc.natsSync)
	fmt.Printf("  p50 %v  p99 %v  p99.9 %v  max %v   later than flush+2s: %d   never visible: %d   redelivered by NATS: %d\n",
		pct(0.50), pct(0.99), pct(0.999), pct(1), late, n-len(lat), redelivered)
	return nil
}

// redeliveries is how many messages the consumer durable had delivered
// more than once: each waited AckWait.
func redeliveries(ctx context.Context, b *broker.Broker, durable string) (uint64, error) {
	nc, err := b.Connect("bench")
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, err
	}
	c, err := js.Consumer(ctx, b.StreamName(), durable)
	if err != nil {
		return 0, err
	}
	info, err := c.Info(ctx)
	if err != nil {
		return 0, err
	}
	return uint64(info.NumRedelivered), nil
}
