package broker_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/otpscope/otpscope/internal/broker"
	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/events"
)

func spec(name string) broker.ConsumerSpec {
	return broker.ConsumerSpec{
		Durable: name, Description: "test", Subjects: []string{events.SubjectDeliveryAll},
		AckWait: 30 * time.Second, Source: "test",
	}
}

// consume runs cons.Consume with handle until stop, which returns its error.
func consume(t *testing.T, cons *broker.Consumer, handle broker.Handler) (stop func() error) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- cons.Consume(ctx, handle) }()
	return func() error {
		cancel()
		return <-done
	}
}

// waitSettled waits until cons has no message pending or unacknowledged.
func waitSettled(t *testing.T, cons *broker.Consumer, timeout time.Duration) {
	t.Helper()
	brokertest.WaitFor(t, timeout, "everything settled", func() bool {
		lag, err := cons.Lag(t.Context())
		return err == nil && lag.Pending == 0 && lag.AckPending == 0
	})
}

func publish(t *testing.T, b *broker.Broker, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := b.Publish(t.Context(), message(i)); err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
}

// acks records the acknowledgements sent for a consumer's messages: the ack
// protocol travels on $JS.ACK.<stream>.<consumer>..., which a plain
// subscription sees. It is a synchronous subscription: after a Flush of nc
// every acknowledgement the server routed to it before is in its queue,
// where an asynchronous one's callback could still be pending (seen under
// load: TestDeadLetterSettlesOnce read none).
type acks struct {
	nc  *nats.Conn
	sub *nats.Subscription
}

func watchAcks(t *testing.T, b *broker.Broker, durable string) *acks {
	t.Helper()
	nc := brokertest.Conn(t, b)
	sub, err := nc.SubscribeSync("$JS.ACK." + b.StreamName() + "." + durable + ".>")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return &acks{nc: nc, sub: sub}
}

// get is the acknowledgements queued so far.
func (a *acks) get() []string {
	var out []string
	for {
		n, _, _ := a.sub.Pending()
		if n == 0 {
			return out
		}
		m, err := a.sub.NextMsg(time.Second)
		if err != nil {
			return out
		}
		out = append(out, string(m.Data))
	}
}

// deadLetters reads the dead letters in the stream.
func deadLetters(t *testing.T, b *broker.Broker) []events.DeadLetter {
	t.Helper()
	c, err := b.JetStream().OrderedConsumer(t.Context(), b.StreamName(), jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.SubjectDeadLetter}})
	if err != nil {
		t.Fatal(err)
	}
	var out []events.DeadLetter
	for {
		m, err := c.Next(jetstream.FetchMaxWait(200 * time.Millisecond))
		if errors.Is(err, jetstream.ErrNoMessages) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		var dl events.DeadLetter
		if err := json.Unmarshal(m.Data(), &dl); err != nil {
			t.Fatal(err)
		}
		out = append(out, dl)
	}
}

// A message the handler dead-letters is published to tyntec.2fa.deadletter
// and terminated, once: a second settlement of the same message does nothing.
func TestDeadLetterSettlesOnce(t *testing.T) {
	b := brokertest.NewServer(t).Broker(t)
	cons, err := b.Consumer(t.Context(), spec("dl"))
	if err != nil {
		t.Fatal(err)
	}
	seen := watchAcks(t, b, "dl")
	publish(t, b, 0, 1)

	var msgs []*broker.Msg
	brokertest.WaitFor(t, 5*time.Second, "the message", func() bool {
		msgs, err = cons.Fetch(t.Context(), 10, 200*time.Millisecond)
		return err == nil && len(msgs) == 1
	})
	cons.Settle(t.Context(), msgs[0], broker.DeadLetter(errors.New("cannot be stored")))
	cons.Settle(t.Context(), msgs[0], broker.Ack()) // the handler's loop settling again
	cons.Settle(t.Context(), msgs[0], broker.Retry(time.Millisecond))
	cons.Settle(t.Context(), msgs[0], broker.DeadLetter(errors.New("another reason")))

	waitSettled(t, cons, 5*time.Second)
	// A publish on the broker's connection, acknowledged, comes after any
	// second acknowledgement on it; a flush of the watcher then delivers
	// everything the server routed to it before.
	publish(t, b, 1, 2)
	if err := seen.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := seen.get(); len(got) != 1 || !strings.HasPrefix(got[0], "+TERM") {
		t.Errorf("acknowledgements = %q; want one +TERM", got)
	}
	dls := deadLetters(t, b)
	if len(dls) != 1 {
		t.Fatalf("%d dead letters; want 1", len(dls))
	}
	if dls[0].Reason != "cannot be stored" || dls[0].Source != "test" || dls[0].Field != message(0).Subject {
		t.Errorf("dead letter = %+v", dls[0])
	}
}

// Consume settles by the handler's decision: a dead letter is terminated (not
// redelivered) and a dead letter of a dead letter is only terminated.
func TestConsumeDeadLetters(t *testing.T) {
	b := brokertest.NewServer(t).Broker(t)
	s := spec("consume-dl")
	s.Subjects = []string{events.SubjectDeliveryAll, events.SubjectDeadLetter}
	cons, err := b.Consumer(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	publish(t, b, 0, 3)
	var mu sync.Mutex
	handled := map[string]int{}
	stop := consume(t, cons, func(_ context.Context, m *broker.Msg) broker.Decision {
		mu.Lock()
		handled[m.ID()]++
		mu.Unlock()
		return broker.DeadLetter(errors.New("poison"))
	})
	// Three messages, three dead letters, each handled once (the dead
	// letters are not dead-lettered again).
	brokertest.WaitFor(t, 10*time.Second, "six messages handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(handled) == 6
	})
	waitSettled(t, cons, 10*time.Second)
	if err := stop(); err != nil {
		t.Fatalf("Consume: %v", err)
	}
	for id, n := range handled {
		if n != 1 {
			t.Errorf("message %s handled %d times; want 1", id, n)
		}
	}
	if n := len(deadLetters(t, b)); n != 3 {
		t.Errorf("%d dead letters; want 3", n)
	}
	if n := b.DeadLettersCounted("test"); n != 3 {
		t.Errorf("otpscope_dead_letters_total{source=\"test\"} = %v; want 3", n)
	}
}

// otpscope_dead_letters_total counts what the stream stores on the dead
// letter subject, whoever publishes it: a dead letter published twice (a
// webhook retried) once, and nothing else.
func TestDeadLettersCounted(t *testing.T) {
	b := brokertest.NewServer(t).Broker(t)
	for _, s := range broker.DeadLetterSources {
		if n := b.DeadLettersCounted(s); n != 0 {
			t.Errorf("%s: %v dead letters counted before any; want 0", s, n)
		}
	}
	dl, err := events.NewDeadLetterMessage(events.DeadLetter{Reason: "malformed JSON", Source: "ingest", ReceivedAt: time.Now()}, []byte("{"), 100)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := b.Publish(t.Context(), dl, message(0)); err != nil {
			t.Fatal(err)
		}
	}
	if n := b.DeadLettersCounted("ingest"); n != 1 {
		t.Errorf("otpscope_dead_letters_total{source=\"ingest\"} = %v; want 1", n)
	}
}

// Retry has the message redelivered, not before the delay.
func TestRetryRedeliversAfterDelay(t *testing.T) {
	b := brokertest.NewServer(t).Broker(t)
	cons, err := b.Consumer(t.Context(), spec("retry"))
	if err != nil {
		t.Fatal(err)
	}
	publish(t, b, 0, 1)
	const delay = 700 * time.Millisecond
	var (
		mu         sync.Mutex
		deliveries []time.Time
		counts     []uint64
	)
	stop := consume(t, cons, func(_ context.Context, m *broker.Msg) broker.Decision {
		mu.Lock()
		defer mu.Unlock()
		deliveries = append(deliveries, time.Now())
		counts = append(counts, m.Deliveries())
		if len(deliveries) == 1 {
			return broker.Retry(delay)
		}
		return broker.Ack()
	})
	brokertest.WaitFor(t, 10*time.Second, "the redelivery", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(deliveries) == 2
	})
	waitSettled(t, cons, 5*time.Second)
	stop()
	mu.Lock()
	defer mu.Unlock()
	if len(deliveries) != 2 {
		t.Fatalf("%d deliveries; want 2", len(deliveries))
	}
	if got := deliveries[1].Sub(deliveries[0]); got < delay {
		t.Errorf("redelivered after %v; want at least %v", got, delay)
	}
	if counts[0] != 1 || counts[1] != 2 {
		t.Errorf("Deliveries() = %v; want [1 2]", counts)
	}
}

// Replicas provisioning the same consumer at once get one consumer, and
// provisioning it again — from another replica, after a restart, with a
// different start time — keeps its position and updates its settings.
func TestProvisioningKeepsOneConsumerAndItsPosition(t *testing.T) {
	srv := brokertest.NewServer(t)
	b := srv.Broker(t)
	publish(t, b, 0, 10)

	const replicas = 4
	// Every replica finds the consumer missing before any creates it.
	var missing sync.WaitGroup
	missing.Add(replicas)
	broker.SetAfterMissing(t, func() { missing.Done(); missing.Wait() })
	var wg sync.WaitGroup
	conss := make([]*broker.Consumer, replicas)
	errs := make([]error, replicas)
	for i := range replicas {
		rb := srv.Broker(t)
		s := spec("race")
		s.StartAt = time.Now().Add(-time.Hour).Add(time.Duration(i) * time.Millisecond) // each replica's own "now"
		wg.Add(1)
		go func() {
			defer wg.Done()
			conss[i], errs[i] = rb.Consumer(t.Context(), s)
		}()
	}
	wg.Wait()
	broker.SetAfterMissing(t, nil)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: Consumer: %v", i, err)
		}
	}
	names := consumerNames(t, b)
	if len(names) != 1 || names[0] != "race" {
		t.Fatalf("consumers = %v; want [race]", names)
	}

	// Take five of the ten.
	cons := conss[0]
	var taken int
	brokertest.WaitFor(t, 5*time.Second, "five messages", func() bool {
		msgs, err := cons.Fetch(t.Context(), 5-taken, 200*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			cons.Settle(t.Context(), m, broker.Ack())
		}
		taken += len(msgs)
		return taken == 5
	})

	// Restart, and provision again as a new process would: a start time in
	// the future (which a new consumer would start at: nothing) and a longer
	// ack wait.
	srv.Restart()
	brokertest.WaitFor(t, 10*time.Second, "reconnect", func() bool { return b.Ready(t.Context()) == nil })
	s := spec("race")
	s.StartAt = time.Now().Add(time.Hour)
	s.AckWait = 45 * time.Second
	again, err := b.Consumer(t.Context(), s)
	if err != nil {
		t.Fatalf("Consumer after restart: %v", err)
	}
	lag, err := again.Lag(t.Context())
	if err != nil || lag.Pending != 5 {
		t.Fatalf("Lag after restart = %+v, %v; want 5 pending", lag, err)
	}
	var msgs []*broker.Msg
	brokertest.WaitFor(t, 5*time.Second, "the sixth message", func() bool {
		msgs, err = again.Fetch(t.Context(), 1, 200*time.Millisecond)
		return err == nil && len(msgs) == 1
	})
	if got, want := msgs[0].ID(), message(5).ID; got != want {
		t.Errorf("next message = %s; want %s (the sixth)", got, want)
	}
	info, err := b.JetStream().Consumer(t.Context(), b.StreamName(), "race")
	if err != nil {
		t.Fatal(err)
	}
	if c := info.CachedInfo().Config; c.AckWait != 45*time.Second || c.DeliverPolicy != jetstream.DeliverByStartTimePolicy || c.OptStartTime == nil || c.OptStartTime.After(time.Now()) {
		t.Errorf("consumer config after reprovisioning: ack wait %v, deliver %v, start %v; want the new ack wait, the first start time", c.AckWait, c.DeliverPolicy, c.OptStartTime)
	}
	if names := consumerNames(t, b); len(names) != 1 {
		t.Errorf("consumers = %v; want one", names)
	}
}

// A new consumer starts at its start time: older messages are not delivered.
func TestNewConsumerStartsAtStartTime(t *testing.T) {
	b := brokertest.NewServer(t).Broker(t)
	publish(t, b, 0, 3)
	start := time.Now()
	brokertest.WaitFor(t, time.Second, "the clock to move", func() bool { return time.Now().After(start) })
	publish(t, b, 3, 5)
	s := spec("late")
	s.StartAt = start
	cons, err := b.Consumer(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	if lag, err := cons.Lag(t.Context()); err != nil || lag.Pending != 2 {
		t.Fatalf("Lag = %+v, %v; want 2 pending (the messages after the start time)", lag, err)
	}
}

func consumerNames(t *testing.T, b *broker.Broker) []string {
	t.Helper()
	s, err := b.JetStream().Stream(t.Context(), b.StreamName())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	l := s.ConsumerNames(t.Context())
	for n := range l.Name() {
		names = append(names, n)
	}
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	return names
}

// A consumer deleted under Consume (nats consumer rm, a stream restored,
// a replicated consumer lost) is provisioned again, and the messages
// published after are handled: a fetch from a consumer that is gone ends at
// once without messages, which Consume took for a quiet stream, for ever.
func TestConsumeProvisionsALostConsumer(t *testing.T) {
	b := brokertest.NewServer(t).Broker(t)
	cons, err := b.Consumer(t.Context(), spec("lost"))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	handled := map[string]int{}
	stop := consume(t, cons, func(_ context.Context, m *broker.Msg) broker.Decision {
		mu.Lock()
		handled[m.ID()]++
		mu.Unlock()
		return broker.Ack()
	})
	defer stop()
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(handled)
	}
	publish(t, b, 0, 2)
	brokertest.WaitFor(t, 10*time.Second, "two messages handled", func() bool { return count() == 2 })
	if err := b.JetStream().DeleteConsumer(t.Context(), b.StreamName(), "lost"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	publish(t, b, 2, 4)
	brokertest.WaitFor(t, 15*time.Second, "the messages published after handled", func() bool { return count() == 4 })
	if ok, err := b.HasConsumer(t.Context(), "lost"); !ok || err != nil {
		t.Errorf("the consumer is not back: %v", err)
	}
}

// A missing consumer starts where Resume says, before StartAt, and Resume
// sees the stream it is created on; a sequence past the stream's next
// cannot be a position in it (a stream restored from an older snapshot,
// whose new messages it would skip) and starts it by StartAt instead, as
// 0 does; an error fails the provisioning. An existing consumer keeps its
// place: Resume is not asked.
func TestNewConsumerResumesWhereAsked(t *testing.T) {
	b := brokertest.NewServer(t).Broker(t)
	publish(t, b, 0, 5)
	name, created, err := b.StreamIdentity(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		durable string
		resume  uint64
		err     error
		pending uint64 // the new consumer's
	}{
		{"resume-at-4", 4, nil, 2},
		{"resume-at-next", 6, nil, 0},
		{"resume-past-the-end", 7, nil, 5},
		{"resume-unknown", 0, nil, 5},
		{"resume-fails", 3, errors.New("store down"), 0},
	} {
		t.Run(tt.durable, func(t *testing.T) {
			var seen broker.StreamState
			s := spec(tt.durable)
			s.StartAt = time.Now().Add(-time.Hour) // the stream's start here: all five
			s.Resume = func(_ context.Context, st broker.StreamState) (uint64, error) {
				seen = st
				return tt.resume, tt.err
			}
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			defer cancel()
			cons, err := b.Consumer(ctx, s)
			if seen.Name != name || !seen.Created.Equal(created) || seen.LastSeq != 5 {
				t.Errorf("Resume saw %+v; want stream %s created %v, last sequence 5", seen, name, created)
			}
			if tt.err != nil {
				if err == nil {
					t.Fatalf("Consumer = nil error; want Resume's failure to fail it")
				}
				if ok, _ := b.HasConsumer(t.Context(), tt.durable); ok {
					t.Error("created though Resume failed")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if lag, err := cons.Lag(t.Context()); err != nil || lag.Pending != tt.pending {
				t.Errorf("Lag = %+v, %v; want %d pending", lag, err, tt.pending)
			}
			// Present, it keeps its place: Resume is not asked again.
			seen = broker.StreamState{}
			if _, err := b.Consumer(t.Context(), s); err != nil || seen.Name != "" {
				t.Errorf("provisioned again: %v, Resume asked %v; want the consumer kept, Resume not asked", err, seen.Name != "")
			}
		})
	}
}

// A fetch that ends empty while NATS is away fails, naming the connection's
// state, rather than pass for an idle moment: the sink counts and waits on
// failed fetches (otpscope_sink_failures_total{kind="fetch"} stayed at 1
// through a two-minute outage, so OtpscopeSinkFetchFailing could not fire).
// Once NATS is back an empty fetch is an idle moment again.
func TestFetchFailsWhileNATSIsAway(t *testing.T) {
	srv := brokertest.NewServer(t)
	b := srv.Broker(t)
	cons, err := b.Consumer(t.Context(), spec("away"))
	if err != nil {
		t.Fatal(err)
	}
	none := func(*broker.Msg) { t.Error("a message from an empty stream") }
	if err := cons.FetchEach(t.Context(), 10, 100*time.Millisecond, none); err != nil {
		t.Fatalf("an empty fetch with NATS up = %v; want nil", err)
	}
	srv.Stop()
	brokertest.WaitFor(t, 5*time.Second, "disconnect", func() bool { return b.Ready(t.Context()) != nil })
	for range 3 {
		if err := cons.FetchEach(t.Context(), 10, 100*time.Millisecond, none); err == nil || !strings.Contains(err.Error(), "nats connection") {
			t.Fatalf("a fetch with NATS away = %v; want a failure naming the connection", err)
		}
	}
	srv.Start()
	brokertest.WaitFor(t, 10*time.Second, "reconnect", func() bool { return b.Ready(t.Context()) == nil })
	brokertest.WaitFor(t, 10*time.Second, "an empty fetch that succeeds", func() bool {
		return cons.FetchEach(t.Context(), 10, 100*time.Millisecond, none) == nil
	})
}

// boundShare reads cons's BoundShare now.
func boundShare(t *testing.T, cons *broker.Consumer) float64 {
	t.Helper()
	lag, err := cons.Lag(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	s, err := cons.BoundShare(t.Context(), lag)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// BoundShare by bytes: the unsettled messages' bytes against the stream's
// max bytes; 0 once they are settled, about 1 once the stream drops them.
func TestBoundShareBytes(t *testing.T) {
	const maxBytes = 64 << 10
	b := brokertest.NewServer(t, func(c *broker.Config) {
		c.Stream.MaxBytes = maxBytes
		c.Stream.MaxAge = time.Hour
	}).Broker(t)
	cons, err := b.Consumer(t.Context(), spec("bound"))
	if err != nil {
		t.Fatal(err)
	}
	if s := boundShare(t, cons); s != 0 {
		t.Fatalf("empty stream: share %v; want 0", s)
	}
	publish(t, b, 0, 100)
	s, err := b.JetStream().Stream(t.Context(), b.StreamName())
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// The oldest is seconds old, a thousandth of the max age at most.
	all := float64(info.State.Bytes) / maxBytes
	if got := boundShare(t, cons); all < 0.1 || math.Abs(got-all) > 1e-9 {
		t.Errorf("100 messages unsettled, the stream %d bytes: share %v; want their bytes over the bound, %v", info.State.Bytes, got, all)
	}

	msgs, err := cons.Fetch(t.Context(), 50, 5*time.Second)
	if err != nil || len(msgs) != 50 {
		t.Fatalf("fetch 50: %d, %v", len(msgs), err)
	}
	for _, m := range msgs {
		cons.Settle(t.Context(), m, broker.Ack())
	}
	brokertest.WaitFor(t, 5*time.Second, "50 acknowledged", func() bool {
		lag, err := cons.Lag(t.Context())
		return err == nil && lag.AckFloor == 50
	})
	if got := boundShare(t, cons); math.Abs(got-all/2) > 1e-9 {
		t.Errorf("50 of 100 settled: share %v; want half, %v", got, all/2)
	}

	// Past the bound with nothing more settled, the stream drops the
	// oldest unsettled: all of the bound.
	publish(t, b, 100, 400)
	if got := boundShare(t, cons); got != 1 {
		t.Errorf("400 published past 64 KiB, 50 settled: share %v; want 1 (unsettled messages dropped)", got)
	}
	// A consumer made now from the stream's first message holds all of the
	// bound unsettled; one from its last ten messages lost nothing before
	// its start and holds their bytes.
	fresh, err := b.Consumer(t.Context(), spec("fresh"))
	if err != nil {
		t.Fatal(err)
	}
	if got := boundShare(t, fresh); got != 1 {
		t.Errorf("a consumer made on the full stream: share %v; want 1", got)
	}
	late := spec("late")
	late.StartSeq = 391
	lateCons, err := b.Consumer(t.Context(), late)
	if err != nil {
		t.Fatal(err)
	}
	if got := boundShare(t, lateCons); got <= 0 || got > 0.2 {
		t.Errorf("a consumer from the last ten messages: share %v; want their bytes' share, above 0, under 0.2", got)
	}

	msgs, err = cons.Fetch(t.Context(), 400, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		cons.Settle(t.Context(), m, broker.Ack())
	}
	waitSettled(t, cons, 10*time.Second)
	if got := boundShare(t, cons); got != 0 {
		t.Errorf("everything settled: share %v; want 0", got)
	}
}

// BoundShare by age: the oldest unsettled message's age against the
// stream's max age.
func TestBoundShareAge(t *testing.T) {
	const maxAge = 20 * time.Second
	b := brokertest.NewServer(t, func(c *broker.Config) {
		c.Stream.MaxBytes = 0 // none
		c.Stream.DuplicateWindow = 2 * time.Second
		c.Stream.MaxAge = maxAge
	}).Broker(t)
	cons, err := b.Consumer(t.Context(), spec("bound"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	publish(t, b, 0, 10)
	end := time.Now()
	brokertest.WaitFor(t, 10*time.Second, "2 s to pass", func() bool { return time.Since(end) > 2*time.Second })
	before := time.Now()
	got := boundShare(t, cons)
	lo, hi := before.Sub(end).Seconds()/maxAge.Seconds(), time.Since(start).Seconds()/maxAge.Seconds()
	if got < lo || got > hi {
		t.Errorf("the oldest unsettled published %s–%s ago: share %v; want its age over %s, within [%.3f, %.3f]",
			before.Sub(end).Round(time.Millisecond), time.Since(start).Round(time.Millisecond), got, maxAge, lo, hi)
	}
}
