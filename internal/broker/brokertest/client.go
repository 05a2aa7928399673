package brokertest

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/otpscope/otpscope/internal/broker"
)

// Conn is a NATS connection of its own to b's server, for tests that look
// behind the broker (subscribe, inspect the stream); t.Cleanup closes it.
func Conn(t testing.TB, b *broker.Broker) *nats.Conn {
	t.Helper()
	nc, err := b.Connect("brokertest")
	if err != nil {
		t.Fatalf("connect to nats: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// JetStream is a JetStream context on a connection of its own to b's server
// (see Conn).
func JetStream(t testing.TB, b *broker.Broker) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(Conn(t, b))
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return js
}
