package broker_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/broker"
	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/events"
)

// With no stream for the subject the server answers "no responders" at
// once: the publish fails then, not at its timeout.
func TestPublishWithoutStreamFailsAtOnce(t *testing.T) {
	b := brokertest.NewServer(t).Broker(t)
	if err := b.JetStream().DeleteStream(t.Context(), b.StreamName()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := b.PublishNew(t.Context(), 10*time.Second, message(1))
	if !errors.Is(err, broker.ErrUnavailable) || !strings.Contains(err.Error(), "no stream") {
		t.Fatalf("PublishNew without a stream = %v; want ErrUnavailable saying no stream answered", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("PublishNew without a stream failed after %v; want at once", took)
	}
	if n := b.PendingPubAcks(); n != 0 {
		t.Errorf("%d publishes still await a PubAck; want 0", n)
	}
}

// A publish JetStream refuses fails with the server's reason, and the
// messages after it in the same call are no longer awaited.
func TestPublishRefusedNamesTheReason(t *testing.T) {
	b := brokertest.NewServer(t).Broker(t)
	refused := message(1)
	refused.Header = map[string][]string{events.HeaderMsgID: {refused.ID}, "Nats-Expected-Last-Sequence": {"41"}}
	_, err := b.PublishNew(t.Context(), 10*time.Second, refused, message(2), message(3))
	if !errors.Is(err, broker.ErrUnavailable) || !strings.Contains(err.Error(), "wrong last sequence") {
		t.Fatalf("PublishNew of a message the stream refuses = %v; want ErrUnavailable with the server's reason", err)
	}
	if n := b.PendingPubAcks(); n != 0 {
		t.Errorf("%d publishes still await a PubAck; want 0", n)
	}
	// The two after it were sent and stored all the same.
	brokertest.WaitFor(t, 5*time.Second, "two messages stored", func() bool { return brokertest.StreamMsgs(t, b) == 2 })
}

// Many publishes at once each get their own PubAck: the duplicates among
// them, and only those, are reported as not stored.
func TestConcurrentPublishesGetTheirOwnPubAcks(t *testing.T) {
	b := brokertest.NewServer(t).Broker(t)
	const n = 200
	errs := make(chan error, n)
	for i := range n {
		go func() {
			// Ids 0..99 twice: each pair stores once.
			stored, err := b.PublishNew(t.Context(), 10*time.Second, message(i%100))
			if err == nil && len(stored) != 1 {
				err = errors.New("no stored flag")
			}
			if err == nil && !stored[0] {
				err = errDuplicate
			}
			errs <- err
		}()
	}
	dups := 0
	for range n {
		switch err := <-errs; {
		case errors.Is(err, errDuplicate):
			dups++
		case err != nil:
			t.Fatal(err)
		}
	}
	if dups != n/2 {
		t.Errorf("%d of %d publishes reported duplicates; want %d", dups, n, n/2)
	}
	if got := brokertest.StreamMsgs(t, b); got != n/2 {
		t.Errorf("stream holds %d messages; want %d", got, n/2)
	}
	if p := b.PendingPubAcks(); p != 0 {
		t.Errorf("%d publishes still await a PubAck; want 0", p)
	}
}

var errDuplicate = errors.New("duplicate")

// A publish still awaiting its PubAck when the connection drops fails then,
// even for a caller without a deadline: the answer, if the server sent one,
// is lost with the connection.
func TestPublishAwaitingPubAckFailsOnDisconnect(t *testing.T) {
	srv := brokertest.NewServer(t)
	b := srv.Broker(t)
	neverAcknowledge(t, b)
	done := make(chan error, 1)
	go func() { done <- b.Publish(t.Context(), message(1)) }()
	brokertest.WaitFor(t, 5*time.Second, "the publish to await its PubAck", func() bool { return b.PendingPubAcks() == 1 })
	srv.Stop()
	select {
	case err := <-done:
		if !errors.Is(err, broker.ErrUnavailable) || !strings.Contains(err.Error(), "connection lost") {
			t.Fatalf("Publish when the connection dropped = %v; want ErrUnavailable saying so", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Publish without a deadline still waits 10 s after the connection dropped")
	}
	if n := b.PendingPubAcks(); n != 0 {
		t.Errorf("%d publishes still await a PubAck; want 0", n)
	}
}
