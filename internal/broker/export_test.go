package broker

import (
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// JetStream gives this package's tests the raw JetStream context.
func (b *Broker) JetStream() jetstream.JetStream { return b.js }

// SetAfterMissing sets a function run between finding a consumer missing and
// creating it, until the test ends.
func SetAfterMissing(t testing.TB, fn func()) {
	afterMissing = fn
	t.Cleanup(func() { afterMissing = nil })
}
