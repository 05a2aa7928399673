package sink_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpscope/otpscope/internal/broker"
	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/metricstest"
	"github.com/otpscope/otpscope/internal/polltest"
	"github.com/otpscope/otpscope/internal/sink"
	"github.com/otpscope/otpscope/internal/store"
)

// outage fails every insert with err while down is set, as a ClickHouse with
// a full disk, no file descriptors left or out of reach would.
type outage struct {
	db       *store.DB
	err      error
	down     atomic.Bool
	failures atomic.Int32
}

func (o *outage) Insert(ctx context.Context, b *store.Batch) error {
	if o.down.Load() {
		o.failures.Add(1)
		return o.err
	}
	return o.db.Insert(ctx, b)
}

// runConsumer starts a sink like Pipeline.Run and returns it, its registry
// and its log.
func runConsumer(t *testing.T, f *fixture, db sink.Inserter) (*sink.Consumer, *prometheus.Registry, *polltest.Buffer) {
	t.Helper()
	logs := &polltest.Buffer{}
	reg := prometheus.NewRegistry()
	c := sink.NewConsumer(sinkConfig(), f.Broker, db, slog.New(slog.NewTextHandler(logs, nil)), reg)
	polltest.Go(t, "sink", c.Run)
	return c, reg, logs
}

func TestStoreOutageParksNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"disk full", &clickhouse.Exception{Code: 243, CodeName: "NOT_ENOUGH_SPACE", Message: "Cannot reserve 1.00 MiB, not enough space"}},
		{"no file descriptors", &clickhouse.Exception{Code: 460, CodeName: "CANNOT_CREATE_TIMER", Message: "Failed to create thread timer, errno: 24, strerror: Too many open files"}},
		{"unknown code", &clickhouse.Exception{Code: 9999, Message: "something new"}},
		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			const n = 300
			if err := f.Broker.Publish(t.Context(), deliveries(0, n)...); err != nil {
				t.Fatal(err)
			}
			ins := &outage{db: f.DB, err: tc.err}
			ins.down.Store(true)
			c, reg, logs := runConsumer(t, f, ins)
			// More failed attempts than the old sink allowed before it gave up.
			brokertest.WaitFor(t, 30*time.Second, "five failed inserts", func() bool { return ins.failures.Load() >= 5 })
			if err := c.Ready(t.Context()); err == nil || !errors.Is(err, tc.err) {
				t.Fatalf("Ready while inserts fail = %v; want the insert error %v", err, tc.err)
			}
			if g := metricstest.Must(t, reg, "otpscope_sink_store_healthy"); g != 0 {
				t.Fatalf("otpscope_sink_store_healthy while failing = %v; want 0", g)
			}
			ins.down.Store(false)
			f.waitCount(t, "SELECT uniqExact(event_id) FROM delivery_events", n)
			if got := f.count(t, "SELECT count() FROM delivery_events FINAL"); got != n {
				t.Fatalf("after the outage ClickHouse counts %d events; want %d", got, n)
			}
			if got := f.count(t, "SELECT count() FROM dead_letters"); got != 0 {
				t.Fatalf("the outage dead-lettered %d events; want none", got)
			}
			brokertest.WaitFor(t, 10*time.Second, "ready again", func() bool { return c.Ready(t.Context()) == nil })
			if g := metricstest.Must(t, reg, "otpscope_sink_store_healthy"); g != 1 {
				t.Fatalf("otpscope_sink_store_healthy after recovery = %v; want 1", g)
			}
			if down, up := strings.Count(logs.String(), "clickhouse inserts failing"), strings.Count(logs.String(), "clickhouse inserts healthy again"); down != 1 || up != 1 {
				t.Fatalf("logged %d failing and %d recovered lines for one outage of %d attempts; want one each", down, up, ins.failures.Load())
			}
		})
	}
}

// rejecting fails any insert holding the delivery of otpID with a row error,
// as ClickHouse rejecting a value would.
type rejecting struct {
	db    *store.DB
	otpID string
}

func (r *rejecting) Insert(ctx context.Context, b *store.Batch) error {
	for _, d := range b.Deliveries {
		if d.OTPID == r.otpID {
			return &clickhouse.Exception{Code: 53, CodeName: "TYPE_MISMATCH", Message: "value rejected"}
		}
	}
	return r.db.Insert(ctx, b)
}

func TestBadRowIsDeadLetteredAlone(t *testing.T) {
	f := newFixture(t)
	msgs := deliveries(0, 40)
	if err := f.Broker.Publish(t.Context(), msgs...); err != nil {
		t.Fatal(err)
	}
	const bad = "11111111-0000-4000-8000-000000000017"
	c, _, _ := runConsumer(t, f, &rejecting{db: f.DB, otpID: bad})
	f.waitCount(t, "SELECT count() FROM dead_letters WHERE source = 'sink' AND position(body, '"+bad+"') > 0", 1)
	f.waitCount(t, "SELECT uniqExact(event_id) FROM delivery_events", 39)
	if got := f.count(t, "SELECT count() FROM delivery_events WHERE otp_id = '"+bad+"'"); got != 0 {
		t.Fatalf("the rejected row was stored %d times", got)
	}
	if got := f.count(t, "SELECT count() FROM dead_letters"); got != 1 {
		t.Fatalf("dead letters = %d; want only the bad row", got)
	}
	if err := c.Ready(t.Context()); err != nil {
		t.Fatalf("a row error made the sink unready: %v", err)
	}
}

// The lag gauges settle at zero once the sink has inserted everything and
// gone idle: read after an insert, they may still count its batch's acks,
// and an idle sink reads them again.
func TestIdleSinkReportsNoLag(t *testing.T) {
	f := newFixture(t)
	_, reg, _ := runConsumer(t, f, f.DB)
	for round := range 3 {
		f.publish(t, deliveries(round*400, 400)...)
		f.waitCount(t, "SELECT count() FROM delivery_events", uint64((round+1)*400))
	}
	polltest.Until(t, 20*time.Second, "consumer_lag and ack_pending at 0", func() bool {
		return metricstest.Must(t, reg, "otpscope_sink_consumer_lag") == 0 && metricstest.Must(t, reg, "otpscope_sink_ack_pending") == 0
	})
}

// While ClickHouse refuses inserts, the events waiting for the sink take up
// more and more of the stream's bound: the gauge and BoundShare say how
// much, 1 once the stream has dropped some, and 0 once the sink has
// inserted what is left. Unknown (NaN) before the first reading and once
// the sink stopped.
func TestSinkBacklogAgainstTheStreamBound(t *testing.T) {
	sink.SetBoundShareEvery(t, 50*time.Millisecond)
	const maxBytes = 256 << 10
	f := newFixture(t, func(c *broker.Config) { c.Stream.MaxBytes = maxBytes })
	ins := &outage{db: f.DB, err: &clickhouse.Exception{Code: 243, CodeName: "NOT_ENOUGH_SPACE", Message: "Cannot reserve 1.00 MiB, not enough space"}}
	ins.down.Store(true)
	logs := &polltest.Buffer{}
	reg := prometheus.NewRegistry()
	c := sink.NewConsumer(sinkConfig(), f.Broker, ins, slog.New(slog.NewTextHandler(logs, nil)), reg)
	share := func() float64 { return metricstest.Must(t, reg, "otpscope_sink_stream_bound_share") }
	if got := share(); !math.IsNaN(got) {
		t.Fatalf("before the sink ran: share %v; want NaN (unknown, not 0)", got)
	}
	stop := polltest.Go(t, "sink", c.Run)

	// Well short of the bound. A delivery takes 400–600 bytes in the stream.
	const n = 300
	f.publish(t, deliveries(0, n)...)
	polltest.Until(t, 20*time.Second, "the backlog's share of the bound read", func() bool { return share() > 0.2 })
	got, ok := c.BoundShare()
	if !ok || got < 0.2 || got > 0.9 {
		t.Fatalf("%d events waiting, the stream bound at 256 KiB: BoundShare %v, %v; want their bytes' share, 0.2–0.9", n, got, ok)
	}

	// Past the bound: the stream drops the oldest, which the sink had not
	// inserted.
	f.publish(t, deliveries(n, 2*n)...)
	polltest.Until(t, 20*time.Second, "the share at 1", func() bool { return share() == 1 })
	ins.down.Store(false)
	polltest.Until(t, 20*time.Second, "the share at 0 once the rest is inserted", func() bool { return share() == 0 })
	if got, ok := c.BoundShare(); !ok || got != 0 {
		t.Errorf("everything left inserted: BoundShare %v, %v; want 0", got, ok)
	}
	if rows := f.count(t, "SELECT uniqExact(event_id) FROM delivery_events"); rows == 0 || rows >= 2*n {
		t.Errorf("%d events in ClickHouse; want fewer than the %d published (the stream dropped some), more than none", rows, 2*n)
	}

	stop()
	if got, ok := c.BoundShare(); ok || !math.IsNaN(share()) {
		t.Errorf("the sink stopped: BoundShare %v, %v, gauge %v; want unknown, NaN", got, ok, share())
	}
	if _, _, ok := c.Lag(); ok || !math.IsNaN(metricstest.Must(t, reg, "otpscope_sink_consumer_lag")) || !math.IsNaN(metricstest.Must(t, reg, "otpscope_sink_ack_pending")) {
		t.Errorf("the sink stopped: Lag ok %v, gauges %v, %v; want unknown, NaN", ok, metricstest.Must(t, reg, "otpscope_sink_consumer_lag"), metricstest.Must(t, reg, "otpscope_sink_ack_pending"))
	}
}

// A reading of nothing waiting (0) is read again a second after events
// wait, not left standing for the interval: the status said "12 being
// inserted: 0 % of the stream's bound".
func TestSinkShareReadAgainAfterAQuietMoment(t *testing.T) {
	sink.SetBoundShareEvery(t, time.Hour) // only the quiet moment's reading again
	f := newFixture(t, func(c *broker.Config) { c.Stream.MaxBytes = 256 << 10 })
	ins := &outage{db: f.DB, err: &clickhouse.Exception{Code: 243, CodeName: "NOT_ENOUGH_SPACE", Message: "Cannot reserve 1.00 MiB, not enough space"}}
	reg := prometheus.NewRegistry()
	c := sink.NewConsumer(sinkConfig(), f.Broker, ins, slog.New(slog.NewTextHandler(io.Discard, nil)), reg)
	share := func() float64 { return metricstest.Must(t, reg, "otpscope_sink_stream_bound_share") }
	polltest.Go(t, "sink", c.Run)
	f.publish(t, deliveries(0, 10)...)
	polltest.Until(t, 20*time.Second, "the share at 0, everything inserted", func() bool { return share() == 0 })
	ins.down.Store(true)
	f.publish(t, deliveries(10, 110)...)
	polltest.Until(t, 20*time.Second, "the share read again with 100 events waiting", func() bool { return share() > 0 })
}
