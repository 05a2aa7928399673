// Command sink measures the sink end to end — events from a filled JetStream
// stream into ClickHouse through the consumer, clickhouse-go and the embedded
// engine's HTTP endpoint — against the engine inserting the same rows into
// the same schema directly, in inserts of the sink's batch size, and against
// JetStream alone: the same messages drained by a bare nats.go consumer that
// acknowledges each one (as a consumer shared by replicas must) or each
// batch. From the raw insert's CPU and a drain's, it reports the bound: the
// most sink/raw any sink doing both could reach with every core busy. Each
// of -runs rounds measures all of them on fresh events; the medians are
// reported, and the CPU time per 100k events, which a shared machine
// disturbs less.
//
//	OTPSCOPE_CHDB_LIB=$PWD/.cache/chdb/libchdb.so go run ./bench/sink -events 200000 -nats-sync 2m
//
// With -latency it measures instead how long an event takes from its PubAck
// to being visible in ClickHouse under a steady load — several senders, one
// event at a time each, at a fixed total rate — and reports p50/p99/max and
// how many messages NATS redelivered (each of which waited AckWait): it
// should stay within the flush interval plus an insert. The steady 10k
// events/s for 5 minutes of bench/README.md:
//
//	OTPSCOPE_CHDB_LIB=$PWD/.cache/chdb/libchdb.so go run ./bench/sink -latency -senders 64 -rate 10000 -duration 5m -nats-sync 2m
//
// -nats-sync sets the stream's fsync policy. The default, always, fsyncs
// every stored message: it slows the publishers (filling the stream, which
// is not measured, and the latency run's senders, which reach ~700/s here)
// and hardly the sink, which reads.
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
	"path/filepath"
	"runtime"
	"slices"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

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
	runs := flag.Int("runs", 3, "rounds of the throughput benchmark, each with its own baselines; the medians are reported")
	profile := flag.String("cpuprofile", "", "write a CPU profile to this file: of the last round's drain, or with -latency of the whole run")
	latency := flag.Bool("latency", false, "measure PubAck → visible in ClickHouse under a steady load instead of throughput")
	var lc latencyConfig
	flag.IntVar(&lc.senders, "senders", 8, "with -latency: concurrent senders, each publishing one event at a time")
	flag.Float64Var(&lc.rate, "rate", 2000, "with -latency: events per second, all senders together")
	flag.DurationVar(&lc.duration, "duration", 30*time.Second, "with -latency: how long to publish")
	flag.DurationVar(&lc.ackWait, "ack-wait", sink.DefaultAckWait, "with -latency: the sink's AckWait (a stalled event shows up this late)")
	flag.DurationVar(&lc.flush, "flush", sink.DefaultFlush, "with -latency: the sink's flush interval")
	flag.StringVar(&lc.natsSync, "nats-sync", broker.DefaultSync, `the stream's sync policy, as --nats-sync ("always" or an interval): it slows publishing (the fill, not measured; the latency run's senders), hardly the sink`)
	flag.Parse()
	if *runs < 1 || *n < 1 {
		fmt.Fprintln(os.Stderr, "bench/sink: -runs and -events must be positive")
		os.Exit(2)
	}
	lc.batch = *batch
	ctx := context.Background()
	runner := func() error { return run(ctx, *n, *batch, *runs, lc.natsSync, *profile) }
	if *latency {
		runner = func() error {
			stop, err := cpuprofile.Start(*profile)
			if err != nil {
				return err
			}
			defer stop()
			return runLatency(ctx, lc)
		}
	}
	if err := runner(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/sink:", err)
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
// stream under dir with the sync policy sync (the --nats-sync values).
func openBroker(ctx context.Context, dir, sync string) (*broker.Broker, error) {
	return broker.Open(ctx, broker.Config{Listen: "127.0.0.1:-1", DataDir: dir, Sync: sync, Stream: broker.StreamConfig{
		Name: broker.DefaultStreamName, DuplicateWindow: broker.DefaultDuplicateWindow, Replicas: 1, MaxAge: broker.DefaultMaxAge}}, "bench", quiet)
}

// throughput is one round of the throughput benchmark.
type throughput struct {
	raw, bare, driver, drain, drainBatch, sink float64       // rows/s
	elapsed, insert                            time.Duration // the sink's drain, and its time in inserts
	// rawCPU, driverCPU, drainCPU and sinkCPU are the process's CPU time
	// (all threads: engine, NATS server, sink) for the raw insert, the
	// driver's, the bare JetStream drain and the sink's drain: on a shared
	// machine, a figure that other processes' load changes less.
	rawCPU, driverCPU, drainCPU, drainBatchCPU, sinkCPU time.Duration
}

// bound is the most sink/raw a sink could reach in this round on these
// cores: it must at least insert (the raw insert's CPU) and take every
// message from JetStream and acknowledge it (a bare drain's CPU, drainCPU),
// and with every core busy that takes their sum over the cores — or the
// raw insert's own time, if that is longer.
func (t throughput) bound(n, cores int, drainCPU time.Duration) float64 {
	rawElapsed := float64(n) / t.raw
	floor := max(rawElapsed, (t.rawCPU+drainCPU).Seconds()/float64(cores))
	return rawElapsed / floor
}

// run measures the sink's throughput runs times, each round against its own
// baselines on fresh events (new ids, so no insert is deduplicated away), and
// prints every round and the medians. With profile set, the last round's
// drain is profiled.
func run(ctx context.Context, n, batch, runs int, natsSync, profile string) error {
	db, dir, closeStore, err := openStore(ctx, "bench-sink-")
	if err != nil {
		return err
	}
	defer closeStore()
	var all []throughput
	cores := runtime.GOMAXPROCS(0)
	for r := range runs {
		p := "" // the last round's drain is profiled
		if r == runs-1 {
			p = profile
		}
		t, err := round(ctx, db, filepath.Join(dir, fmt.Sprintf("nats-%d", r)), natsSync, n, batch, p)
		if err != nil {
			return fmt.Errorf("round %d: %w", r+1, err)
		}
		fmt.Printf("round %d: raw %6.0f rows/s  bare %6.0f rows/s  driver %6.0f rows/s  drains %6.0f / %6.0f msgs/s  sink %6.0f events/s  sink/raw %.2f (bounds %.2f / %.2f)  (drain %v, in inserts %v; CPU per 100k: raw %.2fs, driver %.2fs, drains %.2fs / %.2fs, sink %.2fs)\n",
			r+1, t.raw, t.bare, t.driver, t.drain, t.drainBatch, t.sink, t.sink/t.raw, t.bound(n, cores, t.drainCPU), t.bound(n, cores, t.drainBatchCPU),
			t.elapsed.Round(time.Millisecond), t.insert.Round(time.Millisecond),
			per100k(t.rawCPU, n), per100k(t.driverCPU, n), per100k(t.drainCPU, n), per100k(t.drainBatchCPU, n), per100k(t.sinkCPU, n))
		all = append(all, t)
	}
	med := func(f func(throughput) float64) float64 {
		v := make([]float64, len(all))
		for i, t := range all {
			v[i] = f(t)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	rawRate, bareRate, sinkRate := med(func(t throughput) float64 { return t.raw }), med(func(t throughput) float64 { return t.bare }), med(func(t throughput) float64 { return t.sink })
	driverRate := med(func(t throughput) float64 { return t.driver })
	drainRate, drainBatchRate := med(func(t throughput) float64 { return t.drain }), med(func(t throughput) float64 { return t.drainBatch })
	fmt.Printf("medians of %d rounds, %d events each:\n", runs, n)
	fmt.Printf("raw engine insert  %9.0f rows/s   (JSONEachRow, %d-row inserts straight into the engine, same schema: table + channel_events view)\n", rawRate, batch)
	fmt.Printf("raw, bare table    %9.0f rows/s   (the same into a copy of delivery_events without the view)\n", bareRate)
	fmt.Printf("driver, no NATS    %9.0f rows/s   (the messages decoded into the sink's batches, inserted through the store: clickhouse-go → HTTP endpoint → engine)\n", driverRate)
	fmt.Printf("JetStream drain    %9.0f msgs/s   (the same messages fetched in the sink's batches and acknowledged one by one, nats.go alone: no decoding, no insert)\n", drainRate)
	fmt.Printf("  acked per batch  %9.0f msgs/s   (the same with one AckAll per batch, which only one sink at a time per consumer may do)\n", drainBatchRate)
	fmt.Printf("sink end to end    %9.0f events/s (NATS → consumer → clickhouse-go → HTTP endpoint → engine, batch %d)\n", sinkRate, batch)
	fmt.Printf("sink / raw = %.2f (the median of the rounds' ratios, each against its own baseline; ratio of the medians %.2f), sink / bare = %.2f\n",
		med(func(t throughput) float64 { return t.sink / t.raw }), sinkRate/rawRate, med(func(t throughput) float64 { return t.sink / t.bare }))
	fmt.Printf("bound on sink / raw = %.2f acking each message, %.2f acking each batch, on %d cores (the raw insert's CPU and the drain's, both cores busy; medians of the rounds' bounds)\n",
		med(func(t throughput) float64 { return t.bound(n, cores, t.drainCPU) }), med(func(t throughput) float64 { return t.bound(n, cores, t.drainBatchCPU) }), cores)
	fmt.Printf("CPU per 100k events: raw insert %.2fs, driver %.2fs, drains %.2fs / %.2fs (each message / each batch acked), sink %.2fs (all threads of this process)\n",
		med(func(t throughput) float64 { return per100k(t.rawCPU, n) }), med(func(t throughput) float64 { return per100k(t.driverCPU, n) }),
		med(func(t throughput) float64 { return per100k(t.drainCPU, n) }), med(func(t throughput) float64 { return per100k(t.drainBatchCPU, n) }),
		med(func(t throughput) float64 { return per100k(t.sinkCPU, n) }))
	return nil
}

// round measures the baselines and then the sink on n fresh events; the
// sink's stream lives under natsDir. With profile set, the CPU profile
// covers the drain only: neither the baselines nor filling the stream.
func round(ctx context.Context, db *store.DB, natsDir, natsSync string, n, batch int, profile string) (throughput, error) {
	var t throughput
	ch := db.Embedded()
	// Every round starts from empty tables, so that no round inserts into
	// (and merges) more data than another.
	for _, table := range []string{"delivery_events", "channel_events"} {
		if _, err := ch.Engine().Query(ctx, "TRUNCATE TABLE "+table, ""); err != nil {
			return t, err
		}
	}
	evs := deliveries(n)

	// Baselines: the same rows straight into the engine, as many per insert
	// as the sink's batch holds — into the same schema (delivery_events with
	// the channel_events view, in a database of its own), and into a bare
	// copy of the table.
	for _, q := range []string{"DROP DATABASE IF EXISTS rawbase SYNC", "CREATE DATABASE rawbase"} {
		if _, err := ch.Engine().Query(ctx, q, ""); err != nil {
			return t, err
		}
	}
	rawDB, err := store.Open(ctx, store.Config{DSN: ch.DSN() + "/rawbase"}, quiet)
	if err != nil {
		return t, err
	}
	rawDB.Close()
	if t.raw, t.rawCPU, err = rawInsert(ctx, ch.Engine(), evs, "rawbase.delivery_events", batch); err != nil {
		return t, err
	}
	if _, err := ch.Engine().Query(ctx, "CREATE TABLE rawbase.bare AS delivery_events", ""); err != nil {
		return t, err
	}
	if t.bare, _, err = rawInsert(ctx, ch.Engine(), evs, "rawbase.bare", batch); err != nil {
		return t, err
	}
	if _, err := ch.Engine().Query(ctx, "DROP DATABASE rawbase SYNC", ""); err != nil {
		return t, err
	}

	all := make([]events.Message, len(evs))
	for i := range evs {
		if all[i], err = events.NewDeliveryMessage(&evs[i]); err != nil {
			return t, err
		}
	}
	// The sink without NATS: the messages' bodies decoded into the sink's
	// batches and inserted through the store (clickhouse-go → endpoint →
	// engine), one after the other.
	if t.driver, t.driverCPU, err = driverInsert(ctx, db, all, batch); err != nil {
		return t, err
	}
	for _, table := range []string{"delivery_events", "channel_events"} {
		if _, err := ch.Engine().Query(ctx, "TRUNCATE TABLE "+table, ""); err != nil {
			return t, err
		}
	}

	// The sink: fill the stream, then time the consumer draining it.
	b, err := openBroker(ctx, natsDir, natsSync)
	if err != nil {
		return t, err
	}
	defer b.Close()
	for from := 0; from < len(all); from += 4096 { // within the async publish window (8192)
		if err := b.Publish(ctx, all[from:min(from+4096, len(all))]...); err != nil {
			return t, err
		}
	}
	reg := prometheus.NewRegistry()
	cons := sink.NewConsumer(sink.Config{Durable: "bench", MaxRows: batch, MaxBytes: sink.DefaultMaxBytes, FlushInterval: time.Second, AckWait: time.Minute},
		b, db, quiet, reg)
	sinkCtx, stopSink := context.WithCancel(ctx)
	defer stopSink()
	done := make(chan error, 1)
	stopProfile, err := cpuprofile.Start(profile)
	if err != nil {
		return t, err
	}
	defer stopProfile()
	c0, t0 := cpuTime(), time.Now()
	go func() { done <- cons.Run(sinkCtx) }()
	// The drain ends when the sink has counted every row inserted (it counts
	// a batch once its insert returned, so the rows are visible): read from
	// its metrics, not by asking the engine, whose answers would cost the
	// run being measured ~1.5 ms of CPU each (at 50 a second, 4 % of it).
	for sinkRows(reg) < float64(n) {
		time.Sleep(5 * time.Millisecond)
	}
	t.elapsed, t.sinkCPU = time.Since(t0), cpuTime()-c0
	stopProfile()
	var got uint64
	if err := db.Conn().QueryRow(ctx, "SELECT count() FROM delivery_events").Scan(&got); err != nil {
		return t, err
	}
	if got != uint64(n) {
		return t, fmt.Errorf("the sink counted %d rows inserted and delivery_events holds %d; want both %d", uint64(sinkRows(reg)), got, n)
	}
	stopSink()
	if err := <-done; err != nil {
		return t, err
	}
	t.sink = float64(n) / t.elapsed.Seconds()
	t.insert = insertTime(reg)
	// The JetStream baseline: the same messages through a consumer of their
	// own, fetched in the sink's batches and acknowledged one by one, as
	// the sink's consumer must be (replicas share it), and nothing else.
	// After the sink, so that it reads what the sink has read already: a
	// baseline as cheap as it gets, and so a bound as high.
	if t.drain, t.drainCPU, err = drain(ctx, b, n, batch, false); err != nil {
		return t, err
	}
	if t.drainBatch, t.drainBatchCPU, err = drain(ctx, b, n, batch, true); err != nil {
		return t, err
	}
	return t, nil
}

// deliveries makes n delivery events with fresh otp ids: a realistic mix of
// channels and statuses, 13 s apart.
func deliveries(n int) []events.DeliveryStatus {
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
	return evs
}

// rawInsert writes the rows as JSONEachRow into table through the engine's own
// insert path: no driver, no endpoint, no NATS.
func rawInsert(ctx context.Context, engine *chdb.Engine, evs []events.DeliveryStatus, table string, per int) (rate float64, cpu time.Duration, err error) {
	bodies := make([]*bytes.Buffer, 0, len(evs)/per+1)
	for from := 0; from < len(evs); from += per {
		bodies = append(bodies, jsonRows(evs, from, min(from+per, len(evs))))
	}
	c0, t0 := cpuTime(), time.Now()
	for _, body := range bodies {
		if _, err := engine.Insert(ctx, chdb.Statement{SQL: "INSERT INTO " + table, Format: "JSONEachRow"}, body); err != nil {
			return 0, 0, fmt.Errorf("raw insert: %w", err)
		}
	}
	return float64(len(evs)) / time.Since(t0).Seconds(), cpuTime() - c0, nil
}

// driverInsert decodes the messages into batches of per rows and inserts
// them through the store, as the sink does, without NATS.
func driverInsert(ctx context.Context, db *store.DB, msgs []events.Message, per int) (rate float64, cpu time.Duration, err error) {
	c0, t0 := cpuTime(), time.Now()
	var b store.Batch
	for from := 0; from < len(msgs); from += per {
		b.Reset()
		for i := from; i < min(from+per, len(msgs)); i++ {
			if err := b.Add(msgs[i].Subject, msgs[i].ID, msgs[i].Data, uint64(i+1)); err != nil {
				return 0, 0, fmt.Errorf("driver batch: %w", err)
			}
		}
		if err := db.Insert(ctx, &b); err != nil {
			return 0, 0, fmt.Errorf("driver insert: %w", err)
		}
	}
	return float64(len(msgs)) / time.Since(t0).Seconds(), cpuTime() - c0, nil
}

// drain fetches n messages from b's stream through a durable consumer of its
// own, with nats.go alone, batch at a time, and acknowledges them: each one
// (what a consumer shared by replicas needs, as the sink's is), or with
// perBatch only each batch's last under AckAll (what one sink at a time per
// consumer could do). No decoding, no insert: the least any sink does per
// message.
func drain(ctx context.Context, b *broker.Broker, n, batch int, perBatch bool) (rate float64, cpu time.Duration, err error) {
	nc, err := b.Connect("bench-drain")
	if err != nil {
		return 0, 0, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, 0, err
	}
	cfg := jetstream.ConsumerConfig{Durable: "bench-drain-each", AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Minute, MaxAckPending: 4 * batch}
	if perBatch {
		cfg.Durable, cfg.AckPolicy = "bench-drain-batch", jetstream.AckAllPolicy
	}
	cons, err := js.CreateConsumer(ctx, b.StreamName(), cfg)
	if err != nil {
		return 0, 0, err
	}
	c0, t0 := cpuTime(), time.Now()
	for got := 0; got < n; {
		msgs, err := cons.Fetch(min(batch, n-got), jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return 0, 0, err
		}
		var last jetstream.Msg
		for m := range msgs.Messages() {
			if !perBatch {
				if err := m.Ack(); err != nil {
					return 0, 0, err
				}
			}
			last = m
			got++
		}
		if perBatch && last != nil {
			if err := last.Ack(); err != nil {
				return 0, 0, err
			}
		}
	}
	return float64(n) / time.Since(t0).Seconds(), cpuTime() - c0, nil
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

// cpuTime is the CPU time this process has used, all threads.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// per100k is d in seconds per 100,000 of n events.
func per100k(d time.Duration, n int) float64 { return d.Seconds() * 100000 / float64(n) }

// insertTime is the time the consumer spent in inserts.
func insertTime(g prometheus.Gatherer) time.Duration {
	if m := metric(g, "otpscope_sink_insert_seconds"); m != nil {
		return time.Duration(m.GetHistogram().GetSampleSum() * float64(time.Second))
	}
	return 0
}

// sinkRows is how many rows the consumer inserted and acknowledged.
func sinkRows(g prometheus.Gatherer) float64 {
	if m := metric(g, "otpscope_sink_rows_total"); m != nil {
		return m.GetCounter().GetValue()
	}
	return 0
}

// metric is the first series of the metric name in g, or nil.
func metric(g prometheus.Gatherer, name string) *dto.Metric {
	mfs, err := g.Gather()
	if err != nil {
		return nil
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0]
		}
	}
	return nil
}
