package sink_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/broker"
	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/chdb/chdbtest"
	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/sink"
	"github.com/otpscope/otpscope/internal/sink/sinktest"
	"github.com/otpscope/otpscope/internal/store"
)

func TestMain(m *testing.M) { chdbtest.Main(m) }

// fixture is the pipeline with the sink's own failure-injecting inserters.
type fixture struct{ *sinktest.Pipeline }

func newFixture(t *testing.T, natsCfg ...func(*broker.Config)) *fixture {
	return &fixture{sinktest.Open(t, natsCfg...)}
}

func sinkConfig() sink.Config { return sinktest.Config() }

func (f *fixture) run(t *testing.T, cfg sink.Config, db sink.Inserter) func() {
	return f.Run(t, cfg, db)
}

// publish publishes msgs on the pipeline's broker.
func (f *fixture) publish(t *testing.T, msgs ...events.Message) {
	t.Helper()
	if err := f.Broker.Publish(t.Context(), msgs...); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) count(t *testing.T, query string) uint64 { return f.Count(t, query) }

func (f *fixture) waitCount(t *testing.T, query string, want uint64) { f.WaitCount(t, query, want) }

func deliveries(from, n int) []events.Message {
	msgs := make([]events.Message, n)
	for i := range msgs {
		ev := events.DeliveryStatus{
			Channel: events.ChannelSMS, Status: events.StatusDelivered, Source: events.SourceWebhook,
			OTPID:      fmt.Sprintf("11111111-0000-4000-8000-%012d", from+i),
			Timestamp:  time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC).Add(time.Duration(from+i) * time.Millisecond),
			ReceivedAt: time.Date(2026, 6, 1, 8, 0, 1, 0, time.UTC),
		}
		m, err := events.NewDeliveryMessage(&ev)
		if err != nil {
			panic(err)
		}
		msgs[i] = m
	}
	return msgs
}

func TestSinkMovesEverySubjectIntoItsTable(t *testing.T) {
	f := newFixture(t)
	f.publish(t, deliveries(0, 1200)...)
	st, _ := events.NewOTPStatusMessage(&events.OTPStatus{OTPID: "11111111-0000-4000-8000-000000000001", API: "v4", Status: events.OTPVerified, ObservedAt: time.Now(), Source: events.SourcePoll, SampleRate: 1})
	v1, _ := events.NewV1EventMessage(&events.V1Event{OTPID: "11111111-0000-4000-8000-000000000002", Type: "SMS", StatusText: "DELIVERED", Created: time.Now(), ObservedAt: time.Now()})
	rs, _ := events.NewResendMessage(&events.Resend{OTPID: "11111111-0000-4000-8000-000000000003", DecisionID: "x", Result: events.ResendDryRun, DecidedAt: time.Now(), DryRun: true})
	dl, _ := events.NewDeadLetterMessage(events.DeadLetter{Reason: "bad", Source: "ingest", ReceivedAt: time.Now()}, []byte("{"), 100)
	tr, _ := events.NewTrackMessage(&events.Track{OTPID: "11111111-0000-4000-8000-000000000004", API: "v1", At: time.Now()})
	f.publish(t, st, v1, rs, dl, tr)
	f.run(t, sinkConfig(), f.DB)
	f.waitCount(t, "SELECT count() FROM delivery_events", 1200)
	for q, want := range map[string]uint64{
		"SELECT count() FROM otp_status":   1,
		"SELECT count() FROM v1_events":    1,
		"SELECT count() FROM resends":      1,
		"SELECT count() FROM dead_letters": 1,
	} {
		f.waitCount(t, q, want)
	}
}

// failFirst fails its first n inserts: before inserting, as ClickHouse being
// down would, or, afterInsert, after it, as a consumer that crashed between
// the insert and the ack would (the batch is redelivered).
type failFirst struct {
	db          *store.DB
	afterInsert bool
	n           atomic.Int32
}

func (i *failFirst) Insert(ctx context.Context, b *store.Batch) error {
	if !i.afterInsert {
		if i.n.Add(-1) >= 0 {
			return errors.New("connection refused")
		}
		return i.db.Insert(ctx, b)
	}
	if err := i.db.Insert(ctx, b); err != nil {
		return err
	}
	if i.n.Add(-1) >= 0 {
		return errors.New("crash after insert, before ack")
	}
	return nil
}

// runFailFirst runs the sink on an inserter that fails its first n inserts.
func (f *fixture) runFailFirst(t *testing.T, n int32, afterInsert bool) *failFirst {
	ins := &failFirst{db: f.DB, afterInsert: afterInsert}
	ins.n.Store(n)
	f.run(t, sinkConfig(), ins)
	return ins
}

func TestExactlyOnceWhenTheBatchIsRedelivered(t *testing.T) {
	f := newFixture(t)
	f.publish(t, deliveries(0, 300)...)
	ins := f.runFailFirst(t, 2, true)
	brokertest.WaitFor(t, 30*time.Second, "two failed inserts and a good one", func() bool {
		return ins.n.Load() < 0 && f.count(t, "SELECT uniqExact(event_id) FROM delivery_events") == 300
	})
	if n := f.count(t, "SELECT count() FROM delivery_events FINAL"); n != 300 {
		t.Fatalf("after redeliveries ClickHouse counts %d events; want 300", n)
	}
}

func TestExactlyOnceOutsideTheDuplicateWindow(t *testing.T) {
	f := newFixture(t, func(c *broker.Config) {
		c.Stream.DuplicateWindow = 100 * time.Millisecond
		c.Stream.MaxAge = time.Hour
	})
	msgs := deliveries(0, 10)
	f.publish(t, msgs...)
	// Publish the same messages again until the stream stores them: then the
	// window has passed for them. A repeat the window still catches is
	// dropped; one stored twice over is a duplicate the sink must absorb too.
	brokertest.WaitFor(t, 10*time.Second, "the repeats outside the duplicate window to be stored", func() bool {
		if err := f.Broker.Publish(t.Context(), msgs...); err != nil {
			t.Fatal(err)
		}
		return brokertest.StreamMsgs(t, f.Broker) >= 20
	})
	f.run(t, sinkConfig(), f.DB)
	f.waitCount(t, "SELECT uniqExact(event_id) FROM delivery_events", 10)
	if n := f.count(t, "SELECT count() FROM delivery_events FINAL"); n != 10 {
		t.Fatalf("the same 10 webhooks published twice count %d; want 10", n)
	}
}

func TestRestartLosesNothing(t *testing.T) {
	f := newFixture(t)
	const n = 5000
	f.publish(t, deliveries(0, n)...)
	cfg := sinkConfig()
	cfg.MaxRows = 200
	stop := f.run(t, cfg, f.DB)
	brokertest.WaitFor(t, 30*time.Second, "some rows", func() bool { return f.count(t, "SELECT count() FROM delivery_events") > 0 })
	stop()
	mid := f.count(t, "SELECT uniqExact(event_id) FROM delivery_events")
	t.Logf("stopped after %d of %d events", mid, n)
	f.publish(t, deliveries(n, 100)...) // traffic while stopped
	f.run(t, cfg, f.DB)
	f.waitCount(t, "SELECT uniqExact(event_id) FROM delivery_events", n+100)
	if got := f.count(t, "SELECT count() FROM delivery_events FINAL"); got != n+100 {
		t.Fatalf("after restart ClickHouse counts %d; want %d", got, n+100)
	}
}

func TestPoisonMessageIsDeadLettered(t *testing.T) {
	f := newFixture(t)
	bad := events.Message{Subject: "tyntec.2fa.delivery.SMS.DELIVERED", ID: "poison-1", Data: []byte(`{"otpId": 42}`)}
	good := deliveries(0, 5)
	f.publish(t, append(good, bad)...)
	f.run(t, sinkConfig(), f.DB)
	f.waitCount(t, "SELECT count() FROM delivery_events", 5)
	f.waitCount(t, "SELECT count() FROM dead_letters WHERE source = 'sink' AND field = 'tyntec.2fa.delivery.SMS.DELIVERED' AND body = '{\"otpId\": 42}'", 1)
}

func TestTransientFailureIsRetried(t *testing.T) {
	f := newFixture(t)
	f.publish(t, deliveries(0, 50)...)
	f.runFailFirst(t, 2, false)
	f.waitCount(t, "SELECT count() FROM delivery_events", 50)
	if n := f.count(t, "SELECT count() FROM dead_letters"); n != 0 {
		t.Fatalf("a transient failure dead-lettered %d messages", n)
	}
}

// slowFirst makes its first insert take longer than the consumer's AckWait,
// as a loaded engine might; it counts the rows it inserted.
type slowFirst struct {
	db    *store.DB
	delay time.Duration
	calls atomic.Int32
	rows  atomic.Int64
}

func (i *slowFirst) Insert(ctx context.Context, b *store.Batch) error {
	if i.calls.Add(1) == 1 {
		time.Sleep(i.delay)
	}
	if err := i.db.Insert(ctx, b); err != nil {
		return err
	}
	i.rows.Add(int64(b.Len()))
	return nil
}

// TestSlowInsertRedeliversNothing: messages held past AckWait by a slow
// insert — in the batch being inserted and in the full one waiting behind
// it — are kept in progress, so none is delivered a second time.
func TestSlowInsertRedeliversNothing(t *testing.T) {
	f := newFixture(t)
	const n = 600 // a full batch (500) and one that waits behind it
	f.publish(t, deliveries(0, n)...)
	cfg := sinkConfig()
	cfg.AckWait = 3 * time.Second
	ins := &slowFirst{db: f.DB, delay: 2*cfg.AckWait + time.Second}
	f.run(t, cfg, ins)
	f.waitCount(t, "SELECT count() FROM delivery_events", n)

	js := brokertest.JetStream(t, f.Broker)
	stream, err := js.StreamNameBySubject(t.Context(), events.SubjectAll)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.Consumer(t.Context(), stream, cfg.Durable)
	if err != nil {
		t.Fatal(err)
	}
	brokertest.WaitFor(t, 30*time.Second, "every message acknowledged", func() bool {
		info, err := cons.Info(t.Context())
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0
	})
	info, err := cons.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.NumRedelivered != 0 || ins.rows.Load() != n {
		t.Fatalf("an insert slower than AckWait: %d messages redelivered, %d rows inserted; want 0 and %d", info.NumRedelivered, ins.rows.Load(), n)
	}
}

// A batch whose facts span more months than ClickHouse's default
// max_partitions_per_insert_block (100; the tables are partitioned by
// month) is stored: ClickHouse refused the insert with TOO_MANY_PARTS, a
// server error the sink retries forever, so such a batch was held back
// for good (chdb.DefaultSettings raises the limit past the months a
// timestamp may fall in).
func TestABatchAcrossManyMonthsIsStored(t *testing.T) {
	f := newFixture(t)
	now := time.Now().UTC()
	msgs := make([]events.Message, 120)
	for i := range msgs {
		ev := events.DeliveryStatus{
			Channel: events.ChannelSMS, Status: events.StatusDelivered, Source: events.SourceWebhook,
			OTPID:     fmt.Sprintf("22222222-0000-4000-8000-%012d", i),
			Timestamp: now.AddDate(0, -i, 0), ReceivedAt: now,
		}
		m, err := events.NewDeliveryMessage(&ev)
		if err != nil {
			t.Fatal(err)
		}
		msgs[i] = m
	}
	f.publish(t, msgs...)
	cfg := sinkConfig()
	cfg.MaxRows = len(msgs) // one batch, one insert
	f.run(t, cfg, f.DB)
	f.waitCount(t, "SELECT uniqExact(event_id) FROM delivery_events", uint64(len(msgs)))
	if n := f.count(t, "SELECT uniqExact(toYYYYMM(event_time)) FROM delivery_events"); n != uint64(len(msgs)) {
		t.Errorf("%d months stored; want %d", n, len(msgs))
	}
}
