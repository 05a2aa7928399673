// Package sink moves every event from NATS JetStream into the ClickHouse store:
// a durable pull consumer fills batches (rows, bytes or time), inserts them, and
// acknowledges each message only after the insert that holds it returned nil.
package sink

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpscope/otpscope/internal/backoff"
	"github.com/otpscope/otpscope/internal/broker"
	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/store"
)

// Config shapes the consumer that moves events from NATS into ClickHouse.
type Config struct {
	// Durable is the consumer's name; every reporter replica shares it, so each
	// message goes to one of them.
	Durable string
	// A batch is inserted when it reaches MaxRows or MaxBytes, or FlushInterval
	// after its first message, whichever comes first.
	MaxRows       int
	MaxBytes      int
	FlushInterval time.Duration
	// AckWait is how long JetStream waits for an ack before redelivering; it must
	// exceed FlushInterval. A batch held up by a slow insert is marked in
	// progress every third of it (keepalive.go), so an insert may take longer.
	AckWait time.Duration
}

// Sink defaults: 10,000-row batches (small inserts are ClickHouse's enemy).
const (
	DefaultDurable   = "otpscope-sink"
	DefaultMaxRows   = 10000
	DefaultMaxBytes  = 32 << 20
	DefaultFlush     = time.Second
	DefaultAckWait   = 60 * time.Second
	deadLetterSource = "sink"
)

// retryPolicy delays the redelivery of a batch that failed to insert: 500ms
// after the first delivery, doubling up to 30s. While inserts fail, the sink
// also waits this long (by failed attempts in a row, at most a quarter of
// AckWait) before it tries the next batch, so that a store in trouble is
// not hammered.
var retryPolicy = backoff.Policy{First: 500 * time.Millisecond, Max: 30 * time.Second}

// Validate reports the first configuration error.
func (c *Config) Validate() error {
	if err := broker.CheckName("sink-consumer", c.Durable); err != nil {
		return err
	}
	switch {
	case c.MaxRows < 1:
		return fmt.Errorf("sink-batch-rows %d: want 1 or more", c.MaxRows)
	case c.MaxBytes < 1:
		return fmt.Errorf("sink-batch-bytes %d: want 1 or more", c.MaxBytes)
	case c.FlushInterval <= 0:
		return fmt.Errorf("sink-flush-interval %v: want a positive duration", c.FlushInterval)
	case c.AckWait <= c.FlushInterval:
		return fmt.Errorf("sink-ack-wait %v: want more than --sink-flush-interval %v", c.AckWait, c.FlushInterval)
	}
	return nil
}

// Inserter writes a batch to ClickHouse.
type Inserter interface {
	Insert(ctx context.Context, b *store.Batch) error
}

// Source opens the durable consumers the sink reads (the broker).
type Source interface {
	Consumer(ctx context.Context, spec broker.ConsumerSpec) (*broker.Consumer, error)
	HasConsumer(ctx context.Context, name string) (bool, error)
	// StreamIdentity names the stream and when it was created: a backup's
	// position is in one stream, not in another of the same name.
	StreamIdentity(ctx context.Context) (name string, created time.Time, err error)
}

// Consumer is the durable JetStream pull consumer that fills ClickHouse. A
// message is acknowledged only after the insert that holds it returned nil.
type Consumer struct {
	cfg     Config
	src     Source
	db      Inserter
	logger  *slog.Logger
	metrics *metrics
	health  health

	// pending and ackPending are the consumer's last known lag, for Lag.
	pending, ackPending atomic.Uint64
	lagKnown            atomic.Bool
	lagAt               atomic.Int64 // when the lag was last read, unix nanoseconds
	// boundShare is the last BoundShare read (float64 bits), shareAt when
	// (unix nanoseconds; 0: unknown), shareWaiting the messages waiting
	// then; shareFailing says the last reading failed.
	boundShare   atomic.Uint64
	shareAt      atomic.Int64
	shareWaiting atomic.Uint64
	shareFailing atomic.Bool
	// cons is the sink's consumer once Run made it, for Inserted.
	cons atomic.Pointer[broker.Consumer]
	// fetchFailures counts the fetches in a row that failed (Run's loop).
	fetchFailures int

	replayState // recover.go
}

// Lag is the sink consumer's last known lag: messages in the stream not yet
// delivered to it, and delivered but not yet acknowledged; ok is false
// before it is first known, and once the reading is older than lagStale
// (the server out of reach): a failing sink reads its lag again only
// between its retries, and a reader must not get a figure of before NATS
// went as if it were now's.
func (c *Consumer) Lag() (pending, ackPending uint64, ok bool) {
	return c.pending.Load(), c.ackPending.Load(), c.lagFresh()
}

// lagFresh says whether the lag was read, within lagStale.
func (c *Consumer) lagFresh() bool {
	return c.lagKnown.Load() && time.Since(time.Unix(0, c.lagAt.Load())) <= lagStale
}

// BoundShare is the last known share of the stream's bound that the
// events the sink has not inserted yet take up (broker.Consumer.BoundShare):
// at 1 the stream begins to drop them before they reach ClickHouse. ok is
// false while the lag is unknown.
func (c *Consumer) BoundShare() (share float64, ok bool) {
	return math.Float64frombits(c.boundShare.Load()), c.lagFresh() && c.shareAt.Load() != 0
}

// errNotConsuming: Inserted asked of a sink that has not started.
var errNotConsuming = errors.New("the sink is not consuming yet")

// Inserted asks the server up to which stream sequence every event has
// been inserted (and acknowledged, or dead-lettered): a backup taken now
// holds all of them. While a replay runs, the events after its ack floor
// are not all inserted again yet, though the sink's own consumer
// acknowledged them: the lesser floor is the one a backup holds. While
// the replay's consumer is being opened, or one from the stream's first
// message has inserted nothing yet (its floor 0, which a backup would
// record as "unknown"), it is store.ErrPositionPending.
func (c *Consumer) Inserted(ctx context.Context) (uint64, error) {
	cons := c.cons.Load()
	if cons == nil {
		return 0, errNotConsuming
	}
	replay := c.replayCons.Load()
	if replay == nil && c.replaying.Load() > 0 {
		return 0, store.ErrPositionPending
	}
	lag, err := cons.Lag(ctx)
	if err != nil || replay == nil {
		return lag.AckFloor, err
	}
	again, err := replay.Lag(ctx)
	if err != nil {
		return 0, err
	}
	if again.AckFloor == 0 {
		return 0, store.ErrPositionPending
	}
	return min(lag.AckFloor, again.AckFloor), nil
}

// NewConsumer returns a consumer of src's stream; reg may be nil. Dead
// letters are published through src's broker.
func NewConsumer(cfg Config, src Source, db Inserter, logger *slog.Logger, reg prometheus.Registerer) *Consumer {
	m := newMetrics(reg)
	return &Consumer{cfg: cfg, src: src, db: db, logger: logger, metrics: m, health: health{logger: logger, metrics: m}}
}

// pending is what a batch holds besides its rows: the messages to ack.
type pending struct {
	batch store.Batch
	msgs  []*broker.Msg
	first time.Time
}

// Run consumes until ctx ends, then inserts what it holds and returns.
func (c *Consumer) Run(ctx context.Context) error {
	cons, err := c.src.Consumer(ctx, broker.ConsumerSpec{
		Durable:     c.cfg.Durable,
		Description: "otpscope reporter: events into ClickHouse",
		// The whole stream, not the subjects with a table: a multi-subject filter
		// costs the server a subject-tree intersection per message, while the
		// few messages without a table (reports, tracking without a journey)
		// are simply acknowledged.
		Subjects:      []string{events.SubjectAll},
		AckWait:       c.cfg.AckWait,
		MaxAckPending: 4 * c.cfg.MaxRows,
		Source:        deadLetterSource,
		Retry:         retryPolicy,
		Resume:        c.resume,
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped before it consumed: nothing held, no failure
		}
		return err
	}
	c.cons.Store(cons)
	// A sink that stopped (its lease lost, the process stopping) knows no
	// backlog: another replica, or the next holder, says it, and a last
	// reading kept would have OtpscopeSinkStalled page for this one.
	defer c.lagGone()
	if r, ok := c.db.(Positions); ok {
		recording := make(chan struct{})
		go func() { defer close(recording); c.recordPositions(ctx, r) }()
		defer func() { <-recording }()
	}
	c.logger.Info("sink consuming", "consumer", c.cfg.Durable, "batch_rows", c.cfg.MaxRows, "flush", c.cfg.FlushInterval)
	defer c.replays.Wait()
	if r, ok := c.db.(Recoverer); ok {
		if cut, err := c.src.HasConsumer(ctx, c.cfg.Durable+replaySuffix); err == nil && cut {
			c.logger.Warn("a replay of the stream (after broken parts or a restore) was cut short; going on with it")
			c.startReplay(ctx, replayStart{}, nil)
		}
		// Parts the engine set aside as it started (recover.go): found
		// by no check of this process, so counted here.
		c.metrics.brokenParts.Add(float64(c.replaySetAside(ctx, r, 0)))
	}
	if r, ok := c.db.(Restorer); ok {
		c.replayRestores(ctx, r)
	}

	// Three batches go round: one fills from NATS while the one before is
	// inserted and the one before that acknowledged, so fetching and
	// decoding, ClickHouse's work and the acks (a message each, 10–20 % of
	// the inserting goroutine's time when it also sent them) overlap.
	// Inserts and acks outlive ctx (bounded by AckWait each), so stopping
	// drains.
	free := make(chan *pending, 3)
	for range cap(free) {
		free <- &pending{}
	}
	full := make(chan *pending)
	inserted := make(chan insertedBatch)
	flushed := make(chan struct{})
	go func() {
		defer close(inserted)
		for p := range full {
			stop := c.keepAlive(cons, p.msgs)
			if n := c.health.failures(); n > 0 && len(p.msgs) > 0 {
				backoff.Sleep(ctx, min(retryPolicy.Delay(n), c.cfg.AckWait/4))
			}
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.AckWait)
			ack := c.flush(fctx, cons, p)
			c.recoverParts(ctx)
			inserted <- insertedBatch{p: p, ack: ack, ctx: fctx, cancel: cancel, stop: stop}
		}
	}()
	go func() {
		defer close(flushed)
		for b := range inserted {
			if b.ack {
				for _, m := range b.p.msgs {
					cons.Settle(b.ctx, m, broker.Ack())
				}
			}
			b.stop()
			c.updateLag(b.ctx, cons)
			b.cancel()
			b.p.batch.Reset()
			b.p.msgs = b.p.msgs[:0]
			free <- b.p
		}
	}()
	defer func() { close(full); <-flushed }()

	p := <-free
	var lagAt time.Time // when the fetching loop last read the lag
	for {
		if ctx.Err() != nil {
			c.handOver(cons, full, p) // stopping: insert what is held
			return nil
		}
		wait := c.cfg.FlushInterval
		if len(p.msgs) > 0 {
			wait = max(time.Until(p.first.Add(c.cfg.FlushInterval)), 10*time.Millisecond)
		}
		// A fetch hands its messages over when it ends, up to a flush interval
		// later than the first came: the batch's clock starts when the fetch
		// did, or a quiet stream's events would wait two intervals.
		fetched := time.Now()
		// Each message is decoded as it arrives, while the server sends the
		// next and the client reads it.
		err := cons.FetchEach(ctx, c.cfg.MaxRows-len(p.msgs), wait, func(m *broker.Msg) { c.take(ctx, cons, p, m, fetched) })
		if err != nil {
			if ctx.Err() == nil {
				c.fetchFailed(ctx, cons, err)
			}
			continue
		}
		c.fetched()
		if len(p.msgs) > 0 && (len(p.msgs) >= c.cfg.MaxRows || p.batch.Bytes() >= c.cfg.MaxBytes || !time.Now().Before(p.first.Add(c.cfg.FlushInterval))) {
			c.handOver(cons, full, p)
			p = <-free
		} else if len(p.msgs) == 0 && time.Since(lagAt) >= idleLagInterval {
			// Idle: the inserting goroutine reads the lag after each insert,
			// when the last batch's acks may not be counted yet; without this
			// the gauges would keep that reading for as long as no event came.
			c.updateLag(ctx, cons)
			lagAt = time.Now()
		}
	}
}

// insertedBatch is a batch flush is done with, on its way to the acks:
// ack says its insert returned nil (the messages of one that failed are
// settled already); stop ends its keepalive, cancel its context.
type insertedBatch struct {
	p      *pending
	ack    bool
	ctx    context.Context
	cancel context.CancelFunc
	stop   func()
}

// idleLagInterval is how often an idle sink reads its consumer's lag.
const idleLagInterval = 5 * time.Second

// fetchFailed counts a failed fetch, logs the first of a run, reads the
// lag (which a consumer gone leaves unknown) and waits before the next.
// The broker has provisioned the consumer again if it was gone.
func (c *Consumer) fetchFailed(ctx context.Context, cons *broker.Consumer, err error) {
	c.metrics.failures.WithLabelValues("fetch").Inc()
	if c.fetchFailures++; c.fetchFailures == 1 {
		c.logger.Warn("fetch failed; retrying", "consumer", c.cfg.Durable, "err", err)
	}
	c.updateLag(ctx, cons)
	backoff.Sleep(ctx, broker.FetchRetry.Delay(c.fetchFailures))
}

// fetched ends a run of failed fetches.
func (c *Consumer) fetched() {
	if c.fetchFailures > 0 {
		c.logger.Info("fetching again", "consumer", c.cfg.Durable, "failed_fetches", c.fetchFailures)
		c.fetchFailures = 0
	}
}

// take adds one message to the batch, or settles it at once when it has no
// table (ack) or can never be stored (dead letter).
func (c *Consumer) take(ctx context.Context, cons *broker.Consumer, p *pending, m *broker.Msg, fetched time.Time) {
	err := p.batch.Add(m.Subject(), m.ID(), m.Data(), m.Sequence())
	switch {
	case err == nil:
		if len(p.msgs) == 0 {
			p.first = fetched
		}
		p.msgs = append(p.msgs, m)
	case errors.Is(err, store.ErrNoTable):
		cons.Settle(ctx, m, broker.Ack())
	default:
		c.deadLetter(ctx, cons, m, err)
	}
}

// flush inserts the batch and says whether its messages are to be acked
// (Run's acking goroutine does it; the ack log records them now, when
// their rows were written: recover.go). When the insert fails
// because of the store (anything but a row error: disk full, too many files,
// memory, parts, timeouts, a lost connection, an unknown code) every message
// is redelivered after a delay that grows with its deliveries, for as long as
// it takes: the store's health never parks an event. When ClickHouse blames
// the data, the batch is inserted row by row, so that only the rows that
// fail alone are dead-lettered.
func (c *Consumer) flush(ctx context.Context, cons *broker.Consumer, p *pending) (ack bool) {
	if len(p.msgs) == 0 {
		return false
	}
	err := c.insert(ctx, &p.batch)
	if err == nil {
		c.metrics.batchRows.Observe(float64(len(p.msgs)))
		c.metrics.rows.Add(float64(len(p.msgs)))
		// One ack per message, though acks are 10–15 % of the sink's CPU:
		// replicas share the consumer, so acknowledging the batch's last
		// message (AckAll) would acknowledge events another replica holds
		// and has not inserted. A pinned priority group would make one
		// replica the only receiver, but the server then writes a header
		// into every message it delivers, which costs the saving back
		// (bench/HISTORY.md, seventeenth session).
		c.acked(p.msgs)
		return true
	}
	if isRowError(err) {
		c.logger.Warn("insert rejected by ClickHouse; inserting the batch row by row", "rows", len(p.msgs), "err", err)
		c.isolate(ctx, cons, p.msgs)
		return false
	}
	c.retry(ctx, cons, p.msgs)
	return false
}

// insert inserts b and records the store's health: a row error says nothing
// about it (ClickHouse answered); any other error makes it failing.
func (c *Consumer) insert(ctx context.Context, b *store.Batch) error {
	start := time.Now()
	err := c.db.Insert(ctx, b)
	c.metrics.insertSeconds.Observe(time.Since(start).Seconds())
	switch {
	case err == nil:
		c.health.ok()
		if c.episode != nil {
			c.episode.over = true
		}
	case isRowError(err):
		c.metrics.insertFailures.WithLabelValues(classRow).Inc()
	default:
		c.metrics.failures.WithLabelValues("insert").Inc()
		c.health.failed(err)
		if c.episode == nil {
			// A part committed by the insert under way may be broken (recover.go).
			since := start.Add(-c.cfg.AckWait)
			c.episode = &episode{since: since, unchecked: since, checked: start}
		}
		c.episode.space = c.episode.space || isSpaceError(err)
	}
	return err
}

// retry has msgs redelivered after their backoff delay.
func (c *Consumer) retry(ctx context.Context, cons *broker.Consumer, msgs []*broker.Msg) {
	for _, m := range msgs {
		cons.Settle(ctx, m, broker.Retry(0))
	}
}

// isolate inserts each message alone: those ClickHouse rejects alone are
// dead-lettered. Should the store fail meanwhile, this one and the rest are
// retried.
func (c *Consumer) isolate(ctx context.Context, cons *broker.Consumer, msgs []*broker.Msg) {
	var one store.Batch
	for i, m := range msgs {
		one.Reset()
		if err := one.Add(m.Subject(), m.ID(), m.Data(), m.Sequence()); err != nil {
			c.deadLetter(ctx, cons, m, err)
			continue
		}
		err := c.insert(ctx, &one)
		switch {
		case err == nil:
			c.metrics.rows.Inc()
			cons.Settle(ctx, m, broker.Ack())
			c.acked(msgs[i : i+1])
		case isRowError(err):
			c.deadLetter(ctx, cons, m, fmt.Errorf("%w: %v", store.ErrPermanent, err))
		default:
			c.retry(ctx, cons, msgs[i:])
			return
		}
	}
}

// deadLetter counts and logs a message that can never be stored and has the
// broker dead-letter it.
func (c *Consumer) deadLetter(ctx context.Context, cons *broker.Consumer, m *broker.Msg, reason error) {
	c.metrics.failures.WithLabelValues("dead_letter").Inc()
	c.logger.Error("message cannot be stored; dead-lettered", "subject", m.Subject(), "err", reason)
	cons.Settle(ctx, m, broker.DeadLetter(reason))
}

// updateLag reads the consumer's lag. When the server has not answered
// for lagStale (out of reach, or no such consumer), the lag is unknown:
// the gauges read NaN (no alert on them holds) and Lag says so, rather
// than keep a reading that no longer moves.
func (c *Consumer) updateLag(ctx context.Context, cons *broker.Consumer) {
	lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	lag, err := cons.Lag(lctx)
	if err != nil {
		if ctx.Err() == nil && time.Since(time.Unix(0, c.lagAt.Load())) > lagStale {
			c.lagGone()
		}
		return
	}
	c.metrics.lag.Set(float64(lag.Pending))
	c.metrics.ackPending.Set(float64(lag.AckPending))
	c.pending.Store(lag.Pending)
	c.ackPending.Store(uint64(lag.AckPending))
	c.lagKnown.Store(true)
	c.lagAt.Store(time.Now().UnixNano())
	c.updateShare(lctx, cons, lag)
}

// updateShare reads, at most every boundShareInterval, the share of the
// stream's bound the events not yet inserted take up: the sink's own, or
// a replay's when more (it inserts the stream's oldest again). Nothing
// waiting is 0 at once, without asking. A failed reading leaves the last
// standing for lagStale, as a failed lag does, then NaN; the first of a
// streak is logged.
func (c *Consumer) updateShare(ctx context.Context, cons *broker.Consumer, lag broker.Lag) {
	replay := c.replayCons.Load()
	waiting := lag.Pending + lag.AckPending
	if waiting == 0 && replay == nil {
		c.setShare(0, 0)
		return
	}
	// Half of what waited at the last reading gone (inserts succeed
	// again), or events waiting after a reading of none: read now, rather
	// than say the old share beside the new lag (0 % with events being
	// inserted); at most once a second, not at each insert of a busy sink.
	since, last := time.Since(time.Unix(0, c.shareAt.Load())), c.shareWaiting.Load()
	if since < min(time.Second, boundShareInterval) || since < boundShareInterval && last > 0 && waiting >= last/2 {
		return
	}
	share, err := cons.BoundShare(ctx, lag)
	if err == nil && replay != nil {
		var again broker.Lag
		if again, err = replay.Lag(ctx); err == nil {
			var r float64
			r, err = replay.BoundShare(ctx, again)
			share = max(share, r)
		}
	}
	if err == nil {
		c.setShare(share, waiting)
		c.shareFailing.Store(false)
		return
	}
	if ctx.Err() == nil && !c.shareFailing.Swap(true) {
		c.logger.Warn("cannot read the backlog's share of the stream's bound; retrying", "consumer", c.cfg.Durable, "err", err)
	}
	if time.Since(time.Unix(0, c.shareAt.Load())) > lagStale {
		c.shareGone()
	}
}

// setShare records a reading of the share of the stream's bound, with the
// messages waiting then.
func (c *Consumer) setShare(v float64, waiting uint64) {
	c.metrics.boundShare.Set(v)
	c.boundShare.Store(math.Float64bits(v))
	c.shareWaiting.Store(waiting)
	c.shareAt.Store(time.Now().UnixNano())
}

// lagGone makes the lag unknown: the gauges NaN, Lag and BoundShare not
// ok.
func (c *Consumer) lagGone() {
	c.metrics.lag.Set(math.NaN())
	c.metrics.ackPending.Set(math.NaN())
	c.shareGone()
	c.lagKnown.Store(false)
}

// shareGone makes the share unknown: NaN, and BoundShare not ok.
func (c *Consumer) shareGone() {
	c.metrics.boundShare.Set(math.NaN())
	c.shareAt.Store(0)
}

// boundShareInterval is how often the lag's reading also reads the share
// of the stream's bound the backlog takes, which costs two more requests
// and moves slowly: at most once a scrape of 15 s.
var boundShareInterval = 10 * time.Second

// lagStale is how long a lag reading stands while the server does not
// answer: one slow answer under load leaves the gauges as they were, so
// an alert's for: on them does not start over.
var lagStale = 30 * time.Second

// RegisterFlags registers the sink's flags.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Durable, "sink-consumer", DefaultDurable, "durable JetStream consumer shared by reporter replicas")
	fs.IntVar(&c.MaxRows, "sink-batch-rows", DefaultMaxRows, "insert when a batch has this many rows")
	fs.IntVar(&c.MaxBytes, "sink-batch-bytes", DefaultMaxBytes, "insert when a batch's events reach this many bytes")
	fs.DurationVar(&c.FlushInterval, "sink-flush-interval", DefaultFlush, "insert at the latest this long after a batch's first event")
	fs.DurationVar(&c.AckWait, "sink-ack-wait", DefaultAckWait, "JetStream redelivers an event not acknowledged within this time")
}
