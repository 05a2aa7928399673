package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/otpscope/otpscope/internal/backoff"
	"github.com/otpscope/otpscope/internal/events"
)

// ConsumerSpec describes a durable pull consumer on otpscope's stream, shared
// by every replica that uses the same Durable name.
type ConsumerSpec struct {
	Durable     string
	Description string
	// Subjects filter the stream; empty means all of it. One subject is sent
	// as a plain filter: a multi-subject filter costs the server a
	// subject-tree intersection per message.
	Subjects      []string
	AckWait       time.Duration // default 30s
	MaxAckPending int           // default 4096
	// StartAt is where a consumer that does not exist yet starts; zero means
	// the beginning of the stream. An existing consumer keeps its position.
	StartAt time.Time
	// StartSeq, when not zero, is the stream sequence a consumer that does
	// not exist yet starts at, instead of StartAt.
	StartSeq uint64
	// Resume, when set, is asked where a consumer that does not exist yet
	// starts, before StartSeq and StartAt: at the sequence it returns, or
	// by them for 0 — and for a sequence past the stream's next, which
	// cannot be a position in this stream (one restored from an older
	// snapshot, whose new messages would be skipped). An error fails the
	// provisioning, which is retried.
	Resume func(ctx context.Context, s StreamState) (uint64, error)
	// Source names the component in the dead letters it publishes.
	Source string
	// Retry is the delay before a retried message is redelivered, growing with
	// its deliveries; zero means 500ms doubling up to 30s.
	Retry backoff.Policy
}

// Consumer is a durable pull consumer. Its messages are settled exactly once,
// by Settle or by the loop of Consume.
type Consumer struct {
	b    *Broker
	spec ConsumerSpec
	// c is the server's consumer, swapped when a fetch finds it gone and
	// provisions it again (fetch); read it with js.
	mu sync.Mutex
	c  jetstream.Consumer
}

func (c *Consumer) js() jetstream.Consumer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.c
}

// Consumer provisions the durable consumer of spec and returns it. The rule,
// the same for every consumer of otpscope:
//
//   - missing: create it, starting at spec.StartAt (or the stream's start);
//   - present: keep its position (deliver policy and start time, which
//     JetStream cannot change anyway) and update the mutable settings —
//     description, filter, ack wait, max ack pending — to the spec;
//   - a replica racing to create it is harmless: whoever loses the create
//     takes the present path.
//
// So a restart or a second replica never moves a consumer, and a changed
// flag (ack wait) takes effect at the next start.
func (b *Broker) Consumer(ctx context.Context, spec ConsumerSpec) (*Consumer, error) {
	if spec.Durable == "" {
		return nil, errors.New("consumer: durable name is empty")
	}
	if spec.AckWait <= 0 {
		spec.AckWait = 30 * time.Second
	}
	if spec.MaxAckPending <= 0 {
		spec.MaxAckPending = 4096
	}
	if spec.Retry.First <= 0 {
		spec.Retry = backoff.Policy{First: 500 * time.Millisecond, Max: 30 * time.Second}
	}
	if spec.Retry.Max < spec.Retry.First {
		spec.Retry.Max = spec.Retry.First
	}
	// Provisioning retries while ctx lasts: on a cluster the stream may be
	// electing a leader (a node restarting, a loaded machine) when a module
	// starts, and a sink that gave up there would store nothing.
	var c *Consumer
	err := backoff.Retry(ctx, backoff.Policy{First: 100 * time.Millisecond, Max: 5 * time.Second}, func() error {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		var err error
		if c, err = b.provision(pctx, spec); err != nil {
			b.logger.Warn("consumer not provisioned yet; retrying", "consumer", spec.Durable, "err", err)
		}
		return err
	})
	return c, err
}

// provision looks the consumer up, creates or updates it (the rule above).
func (b *Broker) provision(ctx context.Context, spec ConsumerSpec) (*Consumer, error) {
	c, err := b.js.Consumer(ctx, b.stream.Name, spec.Durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		if afterMissing != nil {
			afterMissing()
		}
		cfg := jetstream.ConsumerConfig{Durable: spec.Durable, AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverAllPolicy}
		resume, rerr := b.resume(ctx, spec)
		if rerr != nil {
			return nil, rerr
		}
		switch {
		case resume > 0:
			cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, resume
		case spec.StartSeq > 0:
			cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, spec.StartSeq
		case !spec.StartAt.IsZero():
			start := spec.StartAt.UTC()
			cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &start
		}
		spec.apply(&cfg)
		c, err = b.js.CreateConsumer(ctx, b.stream.Name, cfg)
		if err == nil {
			return &Consumer{b: b, c: c, spec: spec}, nil
		}
		if !errors.Is(err, jetstream.ErrConsumerExists) {
			return nil, fmt.Errorf("create consumer %s: %w", spec.Durable, err)
		}
		// Another replica created it meanwhile: take it as it is.
		c, err = b.js.Consumer(ctx, b.stream.Name, spec.Durable)
	}
	if err != nil {
		return nil, fmt.Errorf("look up consumer %s: %w", spec.Durable, err)
	}
	cfg := c.CachedInfo().Config
	want := cfg
	spec.apply(&want)
	if !sameMutable(cfg, want) {
		if c, err = b.js.UpdateConsumer(ctx, b.stream.Name, want); err != nil {
			return nil, fmt.Errorf("update consumer %s: %w", spec.Durable, err)
		}
	}
	return &Consumer{b: b, c: c, spec: spec}, nil
}

// StreamState is the stream a missing consumer is created on, for
// ConsumerSpec.Resume: its name, when JetStream created it (which tells
// it from one created anew under the same name) and its last sequence.
type StreamState struct {
	Name    string
	Created time.Time
	LastSeq uint64
}

// resume is where spec.Resume starts a missing consumer; 0: by StartSeq
// or StartAt.
func (b *Broker) resume(ctx context.Context, spec ConsumerSpec) (uint64, error) {
	if spec.Resume == nil {
		return 0, nil
	}
	info, err := b.streamInfo(ctx)
	if err != nil {
		return 0, err
	}
	st := StreamState{Name: b.stream.Name, Created: info.Created, LastSeq: info.State.LastSeq}
	seq, err := spec.Resume(ctx, st)
	if err != nil {
		return 0, fmt.Errorf("where consumer %s resumes: %w", spec.Durable, err)
	}
	if seq > st.LastSeq+1 {
		b.logger.Warn("a consumer's recorded position is past the stream's end: the stream is older than the position (restored?); creating it by its start instead",
			"consumer", spec.Durable, "position", seq, "stream_last_seq", st.LastSeq)
		return 0, nil
	}
	return seq, nil
}

// afterMissing, when set by a test, runs between finding a consumer missing
// and creating it: the window in which another replica may create it.
var afterMissing func()

// apply sets the settings a consumer may change after its creation.
func (s ConsumerSpec) apply(cfg *jetstream.ConsumerConfig) {
	cfg.Description = s.Description
	cfg.AckWait = s.AckWait
	cfg.MaxAckPending = s.MaxAckPending
	cfg.FilterSubject, cfg.FilterSubjects = "", nil
	switch len(s.Subjects) {
	case 0:
	case 1:
		cfg.FilterSubject = s.Subjects[0]
	default:
		cfg.FilterSubjects = s.Subjects
	}
}

func sameMutable(a, b jetstream.ConsumerConfig) bool {
	if a.Description != b.Description || a.AckWait != b.AckWait || a.MaxAckPending != b.MaxAckPending ||
		a.FilterSubject != b.FilterSubject || len(a.FilterSubjects) != len(b.FilterSubjects) {
		return false
	}
	for i := range a.FilterSubjects {
		if a.FilterSubjects[i] != b.FilterSubjects[i] {
			return false
		}
	}
	return true
}

// Msg is a message delivered by a Consumer.
type Msg struct {
	m       jetstream.Msg
	meta    *jetstream.MsgMetadata
	settled bool
}

// Subject is the message's subject.
func (m *Msg) Subject() string { return m.m.Subject() }

// Data is the message's body.
func (m *Msg) Data() []byte { return m.m.Data() }

// Header is the value of a header of the message.
func (m *Msg) Header(key string) string { return m.m.Headers().Get(key) }

// ID is the message's id (Nats-Msg-Id).
func (m *Msg) ID() string { return m.Header(events.HeaderMsgID) }

// Sequence is the message's sequence number in the stream.
func (m *Msg) Sequence() uint64 { return m.meta.Sequence.Stream }

// Stored is when the stream stored the message.
func (m *Msg) Stored() time.Time { return m.meta.Timestamp }

// Deliveries is how many times the message has been delivered, this time included.
func (m *Msg) Deliveries() uint64 { return m.meta.NumDelivered }

// Decision is what to do with a handled message: see Ack, Retry and DeadLetter.
type Decision struct {
	kind   decisionKind
	delay  time.Duration
	reason error
}

type decisionKind int

const (
	ack decisionKind = iota
	retry
	deadLetter
)

// Ack settles a message as done.
func Ack() Decision { return Decision{} }

// Retry has the message redelivered after delay; zero means the consumer's
// Retry policy for the message's deliveries so far.
func Retry(delay time.Duration) Decision { return Decision{kind: retry, delay: delay} }

// DeadLetter gives up on a message that can never be handled: it is published
// to tyntec.2fa.deadletter with reason, then terminated.
func DeadLetter(reason error) Decision {
	if reason == nil {
		reason = errors.New("dead-lettered")
	}
	return Decision{kind: deadLetter, reason: reason}
}

// Settle applies d to m, once: a message settled already is left alone. A
// dead letter that cannot be published is retried instead (the message comes
// back and is dead-lettered then); a dead letter that cannot itself be handled
// is only terminated, since dead-lettering it again would loop.
func (c *Consumer) Settle(ctx context.Context, m *Msg, d Decision) {
	if m.settled {
		return
	}
	m.settled = true
	var err error
	switch d.kind {
	case ack:
		err = m.m.Ack()
	case retry:
		err = m.m.NakWithDelay(c.retryDelay(m, d.delay))
	case deadLetter:
		err = c.deadLetter(ctx, m, d.reason)
	}
	if err != nil && ctx.Err() == nil {
		// The server redelivers after AckWait; nothing else to do.
		c.b.logger.Warn("settle message", "consumer", c.spec.Durable, "subject", m.Subject(), "err", err)
	}
}

func (c *Consumer) retryDelay(m *Msg, d time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return c.spec.Retry.Delay(int(m.Deliveries()))
}

func (c *Consumer) deadLetter(ctx context.Context, m *Msg, reason error) error {
	if m.Subject() == events.SubjectDeadLetter {
		return m.m.Term()
	}
	msg, err := events.NewDeadLetterMessage(events.DeadLetter{
		Reason:     reason.Error(),
		Field:      m.Subject(),
		Source:     c.spec.Source,
		ReceivedAt: time.Now().UTC(),
	}, m.Data(), 1<<20)
	if err == nil {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		err = c.b.Publish(pctx, msg)
		cancel()
	}
	if err != nil {
		c.b.logger.Warn("dead letter not published; will retry", "consumer", c.spec.Durable, "subject", m.Subject(), "err", err)
		return m.m.NakWithDelay(c.retryDelay(m, 0))
	}
	return m.m.Term()
}

// Fetch waits up to maxWait for at most n messages and returns those that
// came; none is an empty result, not an error. The caller settles each one.
// ctx ending does not cut the wait short: see fetch.
func (c *Consumer) Fetch(ctx context.Context, n int, maxWait time.Duration) ([]*Msg, error) {
	var out []*Msg
	err := c.fetch(ctx, n, maxWait, func(m *Msg) { out = append(out, m) })
	return out, err
}

// FetchEach is Fetch that hands each message to each as it arrives, so that
// the caller's work on one overlaps with the delivery of the next.
func (c *Consumer) FetchEach(ctx context.Context, n int, maxWait time.Duration, each func(*Msg)) error {
	return c.fetch(ctx, n, maxWait, each)
}

// InProgress tells the server that msgs, delivered and not settled yet, are
// still being worked on: their AckWait starts again, so that one held up by
// a slow insert is not redelivered meanwhile. It may run while another
// goroutine settles them: a message acknowledged already is left alone.
func (c *Consumer) InProgress(msgs []*Msg) {
	for _, m := range msgs {
		if err := m.m.InProgress(); err != nil && !errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
			c.b.logger.Debug("in-progress ack", "consumer", c.spec.Durable, "subject", m.Subject(), "err", err)
		}
	}
}

// fetch is one pull request: each message is handed to each as it arrives.
//
// The request ends on the server's side (FetchMaxWait), never by a context:
// nats.go stops reading the moment a Fetch's context ends, and drops the
// messages the server already sent, which then count as delivered and come
// back only after AckWait — under steady load a few messages in every
// thousand arrived exactly AckWait late. With the expiry on the server, its
// "request timeout" status follows the last message sent, so every message
// delivered is handed over. A stop waits at most maxWait.
//
// A request that ends in an error is one: the messages that came before it
// are handed over all the same. When the consumer is gone (deleted by hand,
// its stream recreated or restored, a replicated consumer lost), every
// request would end at once without messages, for ever, and look like a
// quiet stream: fetch provisions it again by the rule of Broker.Consumer,
// so it resumes where it was if it is back and from its spec's start if
// not, and returns the error.
func (c *Consumer) fetch(ctx context.Context, n int, maxWait time.Duration, each func(*Msg)) error {
	if err := ctx.Err(); err != nil {
		return nil
	}
	batch, err := c.js().Fetch(n, jetstream.FetchMaxWait(maxWait))
	if err != nil {
		return fmt.Errorf("fetch from %s: %w", c.spec.Durable, err)
	}
	got := 0
	for m := range batch.Messages() {
		got++
		meta, err := m.Metadata()
		if err != nil { // not a JetStream message: nothing to settle it by
			c.b.logger.Error("message without metadata", "consumer", c.spec.Durable, "subject", m.Subject(), "err", err)
			_ = m.Term()
			continue
		}
		each(&Msg{m: m, meta: meta})
	}
	err = batch.Error()
	switch {
	case got == 0 && ctx.Err() == nil && c.b.nc.Status() != nats.CONNECTED:
		// A request that ends empty while NATS is away is no idle
		// moment: failed, so that it is counted and waited on as one
		// (otpscope_sink_failures_total{kind="fetch"}, which once stayed
		// at 1 through a two-minute outage).
		return fmt.Errorf("fetch from %s: nats connection %s", c.spec.Durable, c.b.nc.Status())
	case err == nil, errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return nil
	case errors.Is(err, jetstream.ErrConsumerLeadershipChanged):
		// The next request goes to the new leader.
		c.b.logger.Debug("fetch ended", "consumer", c.spec.Durable, "err", err)
		return nil
	case gone(err):
		if perr := c.reprovision(ctx); perr != nil {
			return fmt.Errorf("fetch from %s: %w; provisioning it again: %w", c.spec.Durable, err, perr)
		}
	}
	return fmt.Errorf("fetch from %s: %w", c.spec.Durable, err)
}

// gone says whether a pull request's error means the server has no such
// consumer: no responders is what a request to a deleted consumer gets.
func gone(err error) bool {
	return errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrConsumerDeleted) ||
		errors.Is(err, jetstream.ErrConsumerNotFound)
}

// reprovision looks the consumer up and creates it when it is missing.
func (c *Consumer) reprovision(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	again, err := c.b.provision(pctx, c.spec)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.c = again.c
	c.mu.Unlock()
	return nil
}

// Handler handles one message and says how to settle it.
type Handler func(ctx context.Context, m *Msg) Decision

// Consume hands each message to handle as it arrives and settles it by the
// decision, until ctx ends. Failed fetches are retried after FetchRetry's
// delays; the first of a run and the fetch that ends it are logged.
func (c *Consumer) Consume(ctx context.Context, handle Handler) error {
	failed := 0
	for ctx.Err() == nil {
		err := c.fetch(ctx, 256, time.Second, func(m *Msg) { c.Settle(ctx, m, handle(ctx, m)) })
		switch {
		case ctx.Err() != nil:
		case err != nil:
			if failed++; failed == 1 {
				c.b.logger.Warn("fetch failed; retrying", "consumer", c.spec.Durable, "err", err)
			}
			backoff.Sleep(ctx, FetchRetry.Delay(failed))
		case failed > 0:
			c.b.logger.Info("fetching again", "consumer", c.spec.Durable, "failed_fetches", failed)
			failed = 0
		}
	}
	return nil
}

// FetchRetry is the wait after failed fetches in a row: NATS or the
// consumer's leader away, or the consumer gone and not provisioned again
// yet.
var FetchRetry = backoff.Policy{First: time.Second, Max: 10 * time.Second}

// Lag is how far a consumer is behind.
type Lag struct {
	Pending    uint64 // messages not delivered yet
	AckPending uint64 // delivered, not settled yet
	AckFloor   uint64 // the stream sequence up to which every message is settled
}

// Lag asks the server how far the consumer is behind.
func (c *Consumer) Lag(ctx context.Context) (Lag, error) {
	info, err := c.js().Info(ctx)
	if err != nil {
		return Lag{}, fmt.Errorf("consumer %s info: %w", c.spec.Durable, err)
	}
	return Lag{Pending: info.NumPending, AckPending: uint64(info.NumAckPending), AckFloor: info.AckFloor.Stream}, nil
}

// BoundShare is the share of the stream's bound that the messages from
// the consumer's oldest unsettled one to the stream's last take up: the
// largest of that oldest one's age against the stream's max age, their
// bytes (at the stream's mean message size) against its max bytes and
// their count against its max messages. The stream drops its oldest
// messages at its bound; it is 1 once it has dropped one the consumer had
// not settled, or holds only unsettled ones at its bound (and drops one at
// its next message). 0 when every message is settled or the stream has no
// bound. The count is
// of the stream's messages of every subject from the oldest unsettled on,
// which all go before it does; the age is that of the consumer's own
// (its one filter's; with several, the first message past the floor).
func (c *Consumer) BoundShare(ctx context.Context, lag Lag) (float64, error) {
	if lag.Pending+lag.AckPending == 0 {
		return 0, nil
	}
	// Stream asks for the stream's info, which it keeps.
	s, err := c.b.js.Stream(ctx, c.b.stream.Name)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", c.b.stream.Name, err)
	}
	info := s.CachedInfo()
	cfg, st := info.Config, info.State
	// Dropped before it was delivered: the ack floor left behind.
	if lag.AckFloor+1 < st.FirstSeq {
		return 1, nil
	}
	span := min(st.LastSeq-lag.AckFloor, st.Msgs)
	// Every message held unsettled, the stream at its bound: the server
	// drops the oldest at the next message (and moves the floor past a
	// dropped one it had delivered), so they take up all of it.
	if span == st.Msgs && st.Msgs > 0 && (cfg.MaxMsgs > 0 && int64(st.Msgs) >= cfg.MaxMsgs ||
		cfg.MaxBytes > 0 && st.Bytes+st.Bytes/st.Msgs > uint64(cfg.MaxBytes)) {
		return 1, nil
	}
	var share float64
	if cfg.MaxMsgs > 0 {
		share = max(share, float64(span)/float64(cfg.MaxMsgs))
	}
	if cfg.MaxBytes > 0 && st.Msgs > 0 {
		share = max(share, float64(st.Bytes)*float64(span)/float64(st.Msgs)/float64(cfg.MaxBytes))
	}
	if cfg.MaxAge > 0 {
		filter := ">"
		if len(c.spec.Subjects) == 1 {
			filter = c.spec.Subjects[0]
		}
		m, err := s.GetMsg(ctx, lag.AckFloor+1, jetstream.WithGetMsgSubject(filter))
		switch {
		case err == nil:
			share = max(share, time.Since(m.Time).Seconds()/cfg.MaxAge.Seconds())
		case !errors.Is(err, jetstream.ErrMsgNotFound):
			return 0, fmt.Errorf("stream %s: the consumer's oldest unsettled message: %w", c.b.stream.Name, err)
		}
	}
	// A message past the max age is dropped at the server's next check.
	return min(share, 1), nil
}

// StreamLast is the sequence of the last message the consumer's stream
// holds now.
func (c *Consumer) StreamLast(ctx context.Context) (uint64, error) {
	info, err := c.b.streamInfo(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.LastSeq, nil
}

// Name is the consumer's durable name.
func (c *Consumer) Name() string { return c.spec.Durable }

// HasConsumer says whether the stream has the durable consumer name.
func (b *Broker) HasConsumer(ctx context.Context, name string) (bool, error) {
	_, err := b.js.Consumer(ctx, b.stream.Name, name)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		return false, nil
	default:
		return false, fmt.Errorf("look up consumer %s: %w", name, err)
	}
}

// Delete removes the consumer from the stream, once it has done its work.
func (c *Consumer) Delete(ctx context.Context) error {
	err := c.b.js.DeleteConsumer(ctx, c.b.stream.Name, c.spec.Durable)
	if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("delete consumer %s: %w", c.spec.Durable, err)
	}
	return nil
}
