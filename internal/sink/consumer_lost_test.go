package sink_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/metricstest"
	"github.com/otpscope/otpscope/internal/sink"
)

// A durable consumer deleted under a running sink (nats consumer rm, a
// stream recreated or restored, an R3 consumer lost) is provisioned again:
// the events published after still reach ClickHouse, once each, the
// fetches that failed meanwhile are counted and logged once, and the lag
// is read from the new consumer. Before, every fetch ended at once without
// messages, which the sink took for a quiet stream: nothing counted or
// logged, the lag frozen, and the loop spinning.
func TestSinkRecreatesItsLostConsumer(t *testing.T) {
	f := newFixture(t)
	c, reg, logs := runConsumer(t, f, f.DB)
	f.publish(t, deliveries(0, 10)...)
	f.waitCount(t, "SELECT count() FROM delivery_events", 10)

	js := brokertest.JetStream(t, f.Broker)
	if err := js.DeleteConsumer(t.Context(), f.Broker.StreamName(), sinkConfig().Durable); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	f.publish(t, deliveries(10, 10)...)
	// Created again from the position the sink recorded (up to all ten:
	// TestSinkResumesWhereItRecorded), it may insert some of the first ten
	// again, which collapse.
	f.waitCount(t, "SELECT uniqExact(event_id) FROM delivery_events", 20)
	if n := f.count(t, "SELECT count() FROM delivery_events FINAL"); n != 20 {
		t.Errorf("%d events after FINAL; want 20", n)
	}
	if n := metricstest.Must(t, reg, "otpscope_sink_failures_total", "kind", "fetch"); n < 1 {
		t.Errorf("fetch failures = %v; want the lost consumer's counted", n)
	}
	if _, err := js.Consumer(t.Context(), f.Broker.StreamName(), sinkConfig().Durable); err != nil {
		t.Errorf("the consumer is not back: %v", err)
	}
	brokertest.WaitFor(t, 10*time.Second, "the lag read from the new consumer", func() bool {
		pending, _, ok := c.Lag()
		return ok && pending == 0 && metricstest.Must(t, reg, "otpscope_sink_consumer_lag") == 0
	})
	if n := strings.Count(logs.String(), "fetch failed"); n != 1 {
		t.Errorf("%d lines say the fetch failed; want 1:\n%s", n, logs)
	}
	if !strings.Contains(logs.String(), "fetching again") {
		t.Errorf("no line says the sink fetches again:\n%s", logs)
	}
}

// A consumer created again starts after the position the sink recorded
// in the store, not at the stream's first message: the events stored
// before it was lost are not inserted again (otpscope_sink_rows_total
// counts each insert's rows), those published after are, once each. The
// store keeps the position by stream: in a stream created anew, or with
// none recorded, it starts at the first message (TestSinkRecreatesItsLostConsumer
// at its start; broker's TestNewConsumerResumesWhereAsked).
func TestSinkResumesWhereItRecorded(t *testing.T) {
	sink.SetPositionEvery(t, 100*time.Millisecond)
	f := newFixture(t)
	_, reg, logs := runConsumer(t, f, f.DB)
	f.publish(t, deliveries(0, 10)...)
	f.waitCount(t, "SELECT count() FROM delivery_events", 10)
	// Recorded after an insert, then every idle lag reading (5 s).
	f.waitCount(t, "SELECT max(acked_seq) FROM sink_positions WHERE consumer = '"+sinkConfig().Durable+"'", 10)

	js := brokertest.JetStream(t, f.Broker)
	if err := js.DeleteConsumer(t.Context(), f.Broker.StreamName(), sinkConfig().Durable); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	f.publish(t, deliveries(10, 10)...)
	f.waitCount(t, "SELECT uniqExact(event_id) FROM delivery_events", 20)
	brokertest.WaitFor(t, 10*time.Second, "the rows counted", func() bool { return metricstest.Must(t, reg, "otpscope_sink_rows_total") >= 20 })
	time.Sleep(time.Second) // what a consumer from the stream's start would insert again
	if n := metricstest.Must(t, reg, "otpscope_sink_rows_total"); n != 20 {
		t.Errorf("rows inserted = %v; want 20: the first ten once, the ten after once", n)
	}
	if !strings.Contains(logs.String(), "creating it again from the message after the position the sink recorded") || !strings.Contains(logs.String(), "from_seq=11") {
		t.Errorf("no line says where the consumer resumed:\n%s", logs)
	}
}

// While the consumer cannot be provisioned again (here its stream is gone
// and not made again), the fetches keep failing and are counted, and the
// lag is unknown: the gauges read NaN and Lag says so, where they kept
// their last reading for ever.
func TestSinkLagUnknownWhileItsConsumerIsGone(t *testing.T) {
	sink.SetLagStale(t, time.Second)
	f := newFixture(t)
	c, reg, _ := runConsumer(t, f, f.DB)
	f.publish(t, deliveries(0, 10)...)
	f.waitCount(t, "SELECT count() FROM delivery_events", 10)
	brokertest.WaitFor(t, 10*time.Second, "the lag known", func() bool {
		_, _, ok := c.Lag()
		return ok
	})

	js := brokertest.JetStream(t, f.Broker)
	if err := js.DeleteStream(t.Context(), f.Broker.StreamName()); err != nil {
		t.Fatal(err)
	}
	brokertest.WaitFor(t, 20*time.Second, "the lag unknown", func() bool {
		_, _, ok := c.Lag()
		return !ok && math.IsNaN(metricstest.Must(t, reg, "otpscope_sink_consumer_lag"))
	})
	if n := metricstest.Must(t, reg, "otpscope_sink_failures_total", "kind", "fetch"); n < 1 {
		t.Errorf("fetch failures = %v; want them counted", n)
	}
}
