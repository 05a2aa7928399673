package broker

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/client_golang/prometheus/testutil"

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

// Server is the embedded NATS server, or nil.
func (b *Broker) Server() *server.Server { return b.srv }

// WatchFast makes the JetStream watcher look and retry at once, until the test
// ends.
func WatchFast(t testing.TB) {
	every, after := watchEvery, reenableAfter
	watchEvery, reenableAfter = 20*time.Millisecond, 100*time.Millisecond
	t.Cleanup(func() { watchEvery, reenableAfter = every, after })
}

// SetGroupCommit sets group commit's thresholds until the test ends.
func SetGroupCommit(t testing.TB, busyAt, minBatch int, maxHold time.Duration) {
	b, m, h := groupBusyAt, groupMinBatch, groupMaxHold
	groupBusyAt, groupMinBatch, groupMaxHold = busyAt, minBatch, maxHold
	t.Cleanup(func() { groupBusyAt, groupMinBatch, groupMaxHold = b, m, h })
}

// WatchByHand keeps the JetStream watcher from looking by itself until the
// test ends (its first tick is an hour away): the test calls Look instead.
func WatchByHand(t testing.TB) {
	every, after := watchEvery, reenableAfter
	watchEvery, reenableAfter = time.Hour, 0
	t.Cleanup(func() { watchEvery, reenableAfter = every, after })
}

// Look is one look of the watcher.
func (b *Broker) Look(ctx context.Context) { b.look(ctx, b.health) }

// JetStreamRestarts is how many times the watcher restarted JetStream.
func (b *Broker) JetStreamRestarts() int64 { return int64(testutil.ToFloat64(b.health.restarts)) }

// SetRestartWaits sets the wait between restarts of JetStream, first and at
// most, until the test ends.
func SetRestartWaits(t testing.TB, first, most time.Duration) {
	after, atMost := reenableAfter, reenableAtMost
	reenableAfter, reenableAtMost = first, most
	t.Cleanup(func() { reenableAfter, reenableAtMost = after, atMost })
}

// SetWatchClock gives the watcher's looks the time now tells (with
// WatchByHand: looks run only on the test's goroutine).
func (b *Broker) SetWatchClock(now func() time.Time) { b.health.now = now }

// PendingPubAcks is how many publishes await their PubAck.
func (b *Broker) PendingPubAcks() int { return b.acks.pending() }

// Unrecovered is the other streams the watcher last logged as unrecoverable.
func (b *Broker) Unrecovered() string { return b.health.unrecovered }

// StallLeaseRefresh makes lease refreshes wait until release is closed, as
// in a process paused between its refreshes, until the test ends.
func StallLeaseRefresh(t testing.TB, release <-chan struct{}) {
	r := refresh
	refresh = func(ctx context.Context, l *Lease, rev uint64) (uint64, error) {
		select {
		case <-release:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		return r(ctx, l, rev)
	}
	t.Cleanup(func() { refresh = r })
}

// DeadLettersCounted is otpscope_dead_letters_total{source}.
func (b *Broker) DeadLettersCounted(source string) float64 {
	return testutil.ToFloat64(b.deadLetters.WithLabelValues(source))
}

// OpenListenWarning is openListenWarning, for the tests.
var OpenListenWarning = openListenWarning
