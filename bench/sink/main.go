// Command sink measures the sink end to end — events from a filled JetStream
// stream into ClickHouse through the consumer, clickhouse-go and the embedded
// engine's HTTP endpoint — against the engine's raw insert rate for the same
// rows in 10,000-row batches, measured in the same run.
//
//	OTPSCOPE_CHDB_LIB=$PWD/.cache/chdb/libchdb.so go run ./bench/sink -events 200000
//
// With -latency it measures instead how long an event takes from its PubAck
// to being visible in ClickHouse under a steady load — several senders, one
// event at a time each, at a fixed total rate — and reports p50/p99/max: it
// should stay within the flush interval plus an insert.
//
//	OTPSCOPE_CHDB_LIB=$PWD/.cache/chdb/libchdb.so go run ./bench/sink -latency -senders 8 -rate 2000 -duration 30s
//
// Everything runs in this process under a temporary directory.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpscope/otpscope/bench/cpuprofile"
	"github.com/otpscope/otpscope/internal/broker"
	"github.com/otpscope/otpscope/internal/chdb"
	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/sink"
	"github.com/otpscope/otpscope/internal/store"
)

func main() {
	n := flag.Int("events", 200000, "events to move")
	batch := flag.Int("batch", sink.DefaultMaxRows, "sink batch size (rows)")
	profile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file")
	latency := flag.Bool("latency", false, "measure PubAck → visible in ClickHouse under a steady load instead of throughput")
	var lc latencyConfig
	flag.IntVar(&lc.senders, "senders", 8, "with -latency: concurrent senders, each publishing one event at a time")
	flag.Float64Var(&lc.rate, "rate", 2000, "with -latency: events per second, all senders together")
	flag.DurationVar(&lc.duration, "duration", 30*time.Second, "with -latency: how long to publish")
	flag.DurationVar(&lc.ackWait, "ack-wait", sink.DefaultAckWait, "with -latency: the sink's AckWait (a stalled event shows up this late)")
	flag.DurationVar(&lc.flush, "flush", sink.DefaultFlush, "with -latency: the sink's flush interval")
	flag.Parse()
	stopProfile, err := cpuprofile.Start(*profile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/sink:", err)
		os.Exit(1)
	}
	defer stopProfile()
	lc.batch = *batch
	ctx := context.Background()
	runner := func() error { return run(ctx, *n, *batch) }
	if *latency {
		runner = func() error { return runLatency(ctx, lc) }
	}
	if err := runner(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/sink:", err)
		stopProfile()
		os.Exit(1)
	}
}

// quiet is the components' log: a run prints only its results.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// openStore opens a store on an engine of its own in a fresh temporary
// directory (named after pattern, as os.MkdirTemp does); closeStore closes
// the store and removes the directory.
func openStore(ctx context.Context, pattern string) (db *store.DB, dir string, closeStore func(), err error) {
	dir, err = os.MkdirTemp("", pattern)
	if err != nil {
		return nil, "", nil, err
	}
	db, err = store.Open(ctx, store.Config{DataDir: dir, Listen: "127.0.0.1:0"}, quiet)
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", nil, err
	}
	return db, dir, func() {
		db.Close()
		os.RemoveAll(dir)
	}, nil
}

// openBroker starts a broker on an embedded NATS server that keeps its
// stream under dir.
func openBroker(ctx context.Context, dir string) (*broker.Broker, error) {
	return broker.Open(ctx, broker.Config{Listen: "127.0.0.1:-1", DataDir: dir, Stream: broker.StreamConfig{
		Name: broker.DefaultStreamName, DuplicateWindow: broker.DefaultDuplicateWindow, Replicas: 1, MaxAge: broker.DefaultMaxAge}}, "bench", quiet)
}

func run(ctx context.Context, n, batch int) error {
	db, dir, closeStore, err := openStore(ctx, "bench-sink-")
	if err != nil {
		return err
	}
	defer closeStore()
	ch := db.Embedded()

	evs := make([]events.DeliveryStatus, n)
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	channels := []events.Channel{events.ChannelSMS, events.ChannelSMS, events.ChannelViber, events.ChannelWhatsApp, events.ChannelVoice}
	statuses := []events.Status{events.StatusDispatched, events.StatusDelivered, events.StatusDelivered, events.StatusUndeliverable}
	for i := range evs {
		evs[i] = events.DeliveryStatus{
			Channel: channels[i%len(channels)], Status: statuses[i%len(statuses)], Source: events.SourceWebhook,
			OTPID: uuid.NewString(), ProfileID: "adbe6521-f5bd-4295-9fd9-776debdf7dc2",
			Timestamp: start.Add(time.Duration(i) * 13 * time.Second), ReceivedAt: start.Add(time.Duration(i)*13*time.Second + 200*time.Millisecond),
		}
		if evs[i].Status.Failed() {
			evs[i].Error = &events.DeliveryError{Code: "tyntec::delivery::1001", Message: "Subscriber unreachable"}
		}
	}

	// Baselines: the same rows straight into the engine, 10,000 per insert —
	// into the same schema (delivery_events with the attempts view, in a
	// database of its own), and into a bare copy of the table.
	if _, err := ch.Engine().Query(ctx, "CREATE DATABASE rawbase", ""); err != nil {
		return err
	}
	rawDB, err := store.Open(ctx, store.Config{DSN: ch.DSN() + "/rawbase"}, quiet)
	if err != nil {
		return err
	}
	rawDB.Close()
	rawRate, err := rawInsert(ctx, ch.Engine(), evs, "rawbase.delivery_events")
	if err != nil {
		return err
	}
	if _, err := ch.Engine().Query(ctx, "CREATE TABLE raw_copy AS delivery_events", ""); err != nil {
		return err
	}
	bareRate, err := rawInsert(ctx, ch.Engine(), evs, "raw_copy")
	if err != nil {
		return err
	}

	// The sink: fill the stream, then time the consumer draining it.
	b, err := openBroker(ctx, dir)
	if err != nil {
		return err
	}
	defer b.Close()
	msgs := make([]events.Message, 0, 10000)
	for i := range evs {
		m, err := events.NewDeliveryMessage(&evs[i])
		if err != nil {
			return err
		}
		if msgs = append(msgs, m); len(msgs) == cap(msgs) || i == len(evs)-1 {
			if err := b.Publish(ctx, msgs...); err != nil {
				return err
			}
			msgs = msgs[:0]
		}
	}
	reg := prometheus.NewRegistry()
	cons := sink.NewConsumer(sink.Config{Durable: "bench", MaxRows: batch, MaxBytes: sink.DefaultMaxBytes, FlushInterval: time.Second, AckWait: time.Minute},
		b, db, quiet, reg)
	sinkCtx, stopSink := context.WithCancel(ctx)
	defer stopSink()
	done := make(chan error, 1)
	t0 := time.Now()
	go func() { done <- cons.Run(sinkCtx) }()
	for {
		var got uint64
		if err := db.Conn().QueryRow(ctx, "SELECT count() FROM delivery_events").Scan(&got); err != nil {
			return err
		}
		if got >= uint64(n) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	elapsed := time.Since(t0)
	stopSink()
	if err := <-done; err != nil {
		return err
	}
	sinkRate := float64(n) / elapsed.Seconds()
	fmt.Printf("raw engine insert  %9.0f rows/s   (JSONEachRow, 10000-row inserts straight into the engine, same schema: table + attempts view)\n", rawRate)
	fmt.Printf("raw, bare table    %9.0f rows/s   (the same into a copy of delivery_events without the view)\n", bareRate)
	fmt.Printf("sink end to end    %9.0f events/s (NATS → consumer → clickhouse-go → HTTP endpoint → engine, batch %d)\n", sinkRate, batch)
	fmt.Printf("sink / raw = %.2f, sink / bare = %.2f   (%d events in %v, of which inserting %v)\n",
		sinkRate/rawRate, sinkRate/bareRate, n, elapsed.Round(time.Millisecond), insertTime(reg).Round(time.Millisecond))
	return nil
}

// rawInsert writes the rows as JSONEachRow into table through the engine's own
// insert path: no driver, no endpoint, no NATS.
func rawInsert(ctx context.Context, engine *chdb.Engine, evs []events.DeliveryStatus, table string) (float64, error) {
	const per = 10000
	bodies := make([]*bytes.Buffer, 0, len(evs)/per+1)
	for from := 0; from < len(evs); from += per {
		bodies = append(bodies, jsonRows(evs, from, min(from+per, len(evs))))
	}
	t0 := time.Now()
	for _, body := range bodies {
		if _, err := engine.Insert(ctx, chdb.Statement{SQL: "INSERT INTO " + table, Format: "JSONEachRow"}, body); err != nil {
			return 0, fmt.Errorf("raw insert: %w", err)
		}
	}
	return float64(len(evs)) / time.Since(t0).Seconds(), nil
}

// jsonRows renders rows for the baseline.
func jsonRows(evs []events.DeliveryStatus, from, to int) *bytes.Buffer {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for i := from; i < to; i++ {
		e := &evs[i]
		code, msg := "", ""
		if e.Error != nil {
			code, msg = e.Error.Code, e.Error.Message
		}
		_ = enc.Encode(map[string]any{
			"event_id": events.DeliveryID(e), "otp_id": e.OTPID, "profile_id": e.ProfileID,
			"channel": e.Channel, "status": e.Status,
			"event_time": e.Timestamp.Format("2006-01-02 15:04:05.000"), "received_at": e.ReceivedAt.Format("2006-01-02 15:04:05.000"),
			"error_code": code, "error_message": msg, "source": e.Source, "stream_seq": i + 1,
		})
	}
	return &buf
}

// insertTime is the time the consumer spent in inserts.
func insertTime(g prometheus.Gatherer) time.Duration {
	mfs, err := g.Gather()
	if err != nil {
		return 0
	}
	for _, mf := range mfs {
		if mf.GetName() == "otpscope_sink_insert_seconds" && len(mf.GetMetric()) > 0 {
			return time.Duration(mf.GetMetric()[0].GetHistogram().GetSampleSum() * float64(time.Second))
		}
	}
	return 0
}
