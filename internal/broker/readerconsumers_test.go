package broker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/otpscope/otpscope/internal/broker"
	"github.com/otpscope/otpscope/internal/broker/brokertest"
)

// TestReaderConsumers: with --nats-reader-consumers billing, the reader
// creates the durable consumer billing, pulls the stream through it and
// acknowledges; it may create no other, and cannot read, pull from,
// acknowledge or delete otpscope's own (here one named as the sink's),
// which keeps every message for the sink.
func TestReaderConsumers(t *testing.T) {
	srv := brokertest.NewServer(t, func(c *broker.Config) { c.ReaderConsumers = []string{"billing"} })
	b := srv.Broker(t)
	stream := b.StreamName()
	svc := brokertest.JetStream(t, b)
	sink, err := svc.CreateOrUpdateConsumer(t.Context(), stream, jetstream.ConsumerConfig{Durable: "otpscope-sink", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := b.Publish(t.Context(), message(i+1)); err != nil {
			t.Fatal(err)
		}
	}

	nc := connectReader(t, srv)
	js, err := jetstream.New(nc.Conn)
	if err != nil {
		t.Fatal(err)
	}
	billing, err := js.CreateOrUpdateConsumer(t.Context(), stream, jetstream.ConsumerConfig{
		Durable: "billing", AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: "tyntec.2fa.>", DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		t.Fatalf("the reader's own consumer: %v", err)
	}
	batch, err := billing.Fetch(3, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for m := range batch.Messages() {
		if err := m.DoubleAck(t.Context()); err != nil {
			t.Errorf("the reader's ack: %v", err)
		}
		n++
	}
	if n != 3 {
		t.Errorf("the reader pulled %d messages; want the stream's 3", n)
	}

	nc.refused(t, `{"batch":1}`,
		"$JS.API.CONSUMER.CREATE."+stream+".fraud",
		"$JS.API.CONSUMER.CREATE."+stream, // an ephemeral one
		"$JS.API.CONSUMER.INFO."+stream+".otpscope-sink",
		"$JS.API.CONSUMER.MSG.NEXT."+stream+".otpscope-sink",
		"$JS.API.CONSUMER.DELETE."+stream+".otpscope-sink",
		"$JS.API.CONSUMER.LIST."+stream,
		"$JS.ACK."+stream+".otpscope-sink.1.1.1.0.0",
	)
	info, err := sink.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.NumPending != 3 || info.NumAckPending != 0 || info.Delivered.Consumer != 0 {
		t.Errorf("otpscope's consumer: %d pending, %d delivered, %d unacknowledged; want all 3 still its to read", info.NumPending, info.Delivered.Consumer, info.NumAckPending)
	}
}

// TestReaderConsumerNames: names that are not one plain token, or that
// otpscope's own consumers could have, are refused at start.
func TestReaderConsumerNames(t *testing.T) {
	for name, ok := range map[string]bool{"billing": true, "fraud_v2-eu": true, "a.b": false, "x>": false, "two words": false,
		"otpscope-sink": false, "OTPScope-mine": false, strings.Repeat("a", 65): false} {
		cfg := brokertest.Config(t)
		cfg.ReaderConsumers = []string{name}
		err := cfg.Validate()
		if (err == nil) != ok {
			t.Errorf("--nats-reader-consumers %q: %v; want accepted %v", name, err, ok)
		}
	}
}
