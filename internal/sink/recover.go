package sink

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/otpscope/otpscope/internal/backoff"
	"github.com/otpscope/otpscope/internal/broker"
	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/store"
)

// After a full disk.
//
// The embedded engine commits parts whose writes failed for want of space
// (store.RecoverParts says how it was seen). An insert under way when its
// disk filled may have returned nil, its messages acknowledged, with its
// rows in such a part; a failed insert whose part was committed is retried
// and dropped by ClickHouse's block deduplication as already inserted.
// Either way the rows are unreadable, and so is every query over the table.
//
// So when the sink's inserts fail for want of space — every AckWait while
// they fail, and once they succeed again — it has the store check the
// parts written since shortly before the first failure (AckWait before it:
// an insert takes no longer). When any was broken the store restarts the engine, which sets them aside — early
// enough for ClickHouse to bring back the parts a broken merge replaced,
// which it keeps 8 minutes — and once inserts succeed the sink replays the
// stream from the first message of the batches it acknowledged since then:
// a second durable consumer, <durable>-replay, inserts every message again
// without block deduplication (facts stored twice collapse; the aggregates
// are sets) and is deleted once it has caught up with the stream. Being
// durable, a replay cut short by the process stopping goes on when the sink
// starts again.

// Recoverer is a store that can repair the parts a full disk broke:
// store.DB.
type Recoverer interface {
	RecoverParts(ctx context.Context, since time.Time) ([]store.BrokenPart, error)
	PartsToReplay(ctx context.Context) ([]store.SetAsidePart, error)
	PartsReplayed(ctx context.Context, parts []store.SetAsidePart) error
	InsertAgain(ctx context.Context, b *store.Batch) error
}

// replayMargin is how long before a part set aside at a start of the
// process (when no acknowledgements of the sink are known) its replay
// begins, in AckWaits: the part's events were published before it was
// written, by as much as the sink lagged. The default AckWait makes it
// ten minutes.
const replayMargin = 10

// replaySuffix names the replay consumer after the sink's.
const replaySuffix = "-replay"

// episode is a run of failed inserts: since when parts may be broken,
// since when they are not known to be whole (a committed part does not
// change: a check need not read it twice), when they were last checked,
// whether any insert failed for want of space (the checks run only then:
// CHECK TABLE reads every byte of a part, and a merge's part may be large),
// and whether inserts succeed again.
type episode struct {
	since, unchecked, checked time.Time
	space, over               bool
}

// ackLog remembers when the sink acknowledged which stream sequences, back
// to twice AckWait — and, while inserts fail, back to before they began.
// Only the inserting goroutine uses it.
type ackLog struct {
	entries []ackEntry
}

type ackEntry struct {
	at  time.Time
	seq uint64 // the batch's lowest stream sequence
}

func (l *ackLog) add(msgs []*broker.Msg, keep time.Time) {
	if len(msgs) == 0 {
		return
	}
	low := msgs[0].Sequence()
	for _, m := range msgs[1:] {
		low = min(low, m.Sequence())
	}
	drop := 0
	for drop < len(l.entries) && l.entries[drop].at.Before(keep) {
		drop++
	}
	l.entries = append(l.entries[drop:], ackEntry{at: time.Now(), seq: low})
}

// from is the lowest sequence acknowledged at or after t; 0 if none was.
func (l *ackLog) from(t time.Time) uint64 {
	var low uint64
	for _, e := range l.entries {
		if !e.at.Before(t) && (low == 0 || e.seq < low) {
			low = e.seq
		}
	}
	return low
}

// acked records msgs acknowledged.
func (c *Consumer) acked(msgs []*broker.Msg) {
	keep := time.Now().Add(-2 * c.cfg.AckWait)
	if c.episode != nil {
		keep = c.episode.since
	}
	c.acks.add(msgs, keep)
}

// recoverParts runs after each flush while inserts fail or have just
// recovered: every AckWait while they fail, it has the store check and
// repair the parts written since (so that a merge the full disk broke is
// repaired while ClickHouse keeps the parts it replaced: 8 minutes); once
// they succeed again, it checks a last time and replays what was set aside.
func (c *Consumer) recoverParts(ctx context.Context) {
	ep := c.episode
	if ep == nil {
		return
	}
	r, ok := c.db.(Recoverer)
	if !ok {
		c.episode = nil
		return
	}
	if !ep.space {
		if ep.over {
			c.episode = nil
		}
		return
	}
	if !ep.over {
		if time.Since(ep.checked) >= c.cfg.AckWait {
			ep.checked = time.Now()
			if c.checkParts(ctx, r, ep.unchecked) {
				ep.unchecked = ep.checked
			}
		}
		return
	}
	c.episode = nil
	if c.checkParts(ctx, r, ep.unchecked) {
		c.replaySetAside(ctx, r, c.acks.from(ep.since))
	}
}

// checkParts has the store repair the parts written since since, and says
// whether it could.
func (c *Consumer) checkParts(ctx context.Context, r Recoverer, since time.Time) bool {
	broken, err := r.RecoverParts(ctx, since)
	if len(broken) > 0 {
		c.metrics.brokenParts.Add(float64(len(broken)))
		c.logger.Error("parts written while the disk was full are broken", "parts", len(broken), "first", broken[0].String())
	}
	if err != nil {
		c.metrics.failures.WithLabelValues("recover").Inc()
		c.logger.Error("cannot recover the parts written while inserts failed", "since", since, "err", err)
		return false
	}
	return true
}

// replaySetAside replays the events of the parts set aside and not yet
// replayed: from stream sequence from when known (the first message
// acknowledged since inserts began failing), else from replayMargin
// AckWaits before the oldest part was written. It returns how many parts
// it replays.
func (c *Consumer) replaySetAside(ctx context.Context, r Recoverer, from uint64) int {
	parts, err := r.PartsToReplay(ctx)
	if err != nil {
		c.metrics.failures.WithLabelValues("recover").Inc()
		c.logger.Error("cannot list the parts set aside", "err", err)
		return 0
	}
	if len(parts) == 0 {
		return 0
	}
	start := replayStart{seq: from}
	if from == 0 {
		start.at = parts[0].WrittenAt.Add(-replayMargin * c.cfg.AckWait)
	}
	c.logger.Warn("broken parts set aside; inserting their events again from the stream", "parts", len(parts), "first", parts[0].Table+"/"+parts[0].Part, start.attr())
	c.startReplay(ctx, start, func(ctx context.Context) error { return r.PartsReplayed(ctx, parts) })
	return len(parts)
}

// Restorer is a store restored from a backup (store.DB, README "Backups
// and restores"): what came after the backup is in the stream.
type Restorer interface {
	RestoresToReplay(ctx context.Context) ([]store.RestoreToReplay, error)
	RestoresReplayed(ctx context.Context, rs []store.RestoreToReplay) error
	// The stream the sink inserts from, recorded as it starts so that a
	// backup holds the stream its position is in.
	LastStream(ctx context.Context) (name string, created time.Time, ok bool, err error)
	RecordStream(ctx context.Context, name string, created time.Time) error
}

// replayRestores inserts the stream again from the position of the backup
// restored last, so the events acknowledged after it was taken come back.
// A restore replaces every table: the last one is what the database holds,
// and any restore before it is replayed by that. The position is another
// stream's when the backup was taken of one that is gone (a machine
// rebuilt, the stream created anew): then the stream is inserted from its
// first message, or what it got before the restore would be lost. Then
// the stream inserted from is recorded, for the backups to come.
func (c *Consumer) replayRestores(ctx context.Context, r Restorer) {
	name, created, err := c.stream(ctx)
	known := err == nil
	if !known {
		c.logger.Warn("the stream's identity is unknown: a restore's position is trusted to be in it", "err", err)
	}
	record := func(ctx context.Context) error {
		if !known {
			return nil
		}
		return r.RecordStream(ctx, name, created)
	}
	rs, err := r.RestoresToReplay(ctx)
	if err != nil {
		c.metrics.failures.WithLabelValues("recover").Inc()
		c.logger.Error("cannot list the restores to replay", "err", err)
		return // the stream not recorded either: a restore's must stay known
	}
	if len(rs) == 0 {
		if err := record(ctx); err != nil {
			c.logger.Warn("the stream is not recorded", "err", err)
		}
		return
	}
	last := rs[len(rs)-1] // oldest first
	start := replayStart{seq: last.StreamSeq + 1}
	if last.StreamSeq == 0 {
		// Unknown position: from before the backup by as much as the sink
		// may have lagged, as for a part set aside at a start.
		start = replayStart{at: last.StartedAt.Add(-replayMargin * c.cfg.AckWait)}
	}
	if backedUp, backedUpAt, ok, err := r.LastStream(ctx); err != nil {
		c.logger.Warn("the backup's stream is unknown: its position is trusted to be in this one", "err", err)
	} else if known && ok && (backedUp != name || !backedUpAt.Equal(created)) {
		c.logger.Warn("the backup was taken of another stream; inserting this one from its first message", "backup", last.Name,
			"backup_stream", backedUp, "backup_stream_created", backedUpAt, "stream", name, "stream_created", created)
		start = replayStart{}
	}
	c.logger.Warn("restored from a backup; inserting the stream again from its position", "backup", last.Name, start.attr())
	// Recorded once the replay's consumer exists: a start cut short
	// before must still find the backup's stream.
	c.startReplay(ctx, start, func(ctx context.Context) error {
		if err := r.RestoresReplayed(ctx, rs); err != nil {
			return err
		}
		return record(ctx)
	})
}

// stream is the sink's stream: its name, and when JetStream created it,
// which tells it from one of the same name created anew.
func (c *Consumer) stream(ctx context.Context) (string, time.Time, error) {
	name, created, err := c.src.StreamIdentity(ctx)
	// As the store keeps it, to the millisecond.
	return name, created.UTC().Truncate(time.Millisecond), err
}

// replayStart is where a replay begins: a stream sequence, else a time;
// neither is where an existing replay consumer is.
type replayStart struct {
	seq uint64
	at  time.Time
}

// attr is start for a log line: the sequence, or the time when there is
// none.
func (s replayStart) attr() slog.Attr {
	switch {
	case s.seq > 0:
		return slog.Uint64("from_seq", s.seq)
	case s.at.IsZero():
		return slog.String("from", "the stream's first message")
	}
	return slog.Time("from_time", s.at)
}

// startReplay replays the stream from start beside the sink's own
// consuming, and has recorded (when not nil) record that what it replays
// for is replayed once the replay consumer exists (being durable, it
// outlives the process).
func (c *Consumer) startReplay(ctx context.Context, start replayStart, recorded func(context.Context) error) {
	c.replaying.Add(1)
	c.replays.Go(func() {
		defer c.replaying.Add(-1)
		c.replay(ctx, start, recorded)
	})
}

// replay inserts every message of the replay consumer again until it has
// caught up with the stream as it was when the replay began, then deletes
// it. The sink's own consumer inserts what came after: waiting for a
// moment with nothing pending or unacknowledged never comes under steady
// webhooks, and the replay would insert every event twice for good.
func (c *Consumer) replay(ctx context.Context, start replayStart, recorded func(context.Context) error) {
	c.replayMu.Lock() // one replay at a time: they share the consumer's name
	defer c.replayMu.Unlock()
	r := c.db.(Recoverer)
	cons, err := c.src.Consumer(ctx, broker.ConsumerSpec{
		Durable:       c.cfg.Durable + replaySuffix,
		Description:   "otpscope reporter: events inserted again after a full disk broke parts, or a restore from a backup",
		Subjects:      []string{events.SubjectAll},
		AckWait:       c.cfg.AckWait,
		MaxAckPending: 4 * c.cfg.MaxRows,
		StartSeq:      start.seq,
		StartAt:       start.at,
		Source:        deadLetterSource,
		Retry:         retryPolicy,
	})
	if err != nil {
		c.logger.Error("replay consumer", "err", err)
		return
	}
	c.replayCons.Store(cons)
	defer c.replayCons.Store(nil)
	if recorded != nil {
		if err := recorded(ctx); err != nil {
			c.logger.Warn("replaying; the replay is not recorded and will run again at the next start", "err", err)
		}
	}
	// until is the stream's last message when the replay began; unknown
	// (0), the replay ends once nothing is pending.
	until, err := cons.StreamLast(ctx)
	if err != nil {
		c.logger.Warn("replaying until nothing is pending: the stream's last message is unknown", "err", err)
	}
	var (
		b       store.Batch
		msgs    []*broker.Msg
		rows    int
		fails   int
		fetches int // failed in a row
	)
	for ctx.Err() == nil {
		b.Reset()
		msgs = msgs[:0]
		err := cons.FetchEach(ctx, c.cfg.MaxRows, c.cfg.FlushInterval, func(m *broker.Msg) {
			if b.Add(m.Subject(), m.ID(), m.Data(), m.Sequence()) != nil {
				// No table, or dead-lettered when it first came.
				cons.Settle(ctx, m, broker.Ack())
				return
			}
			msgs = append(msgs, m)
		})
		if err != nil {
			if ctx.Err() == nil {
				// The first of a run, as the sink's: NATS away fails one
				// a second.
				if fetches++; fetches == 1 {
					c.logger.Warn("replay fetch failed; retrying", "err", err)
				}
				backoff.Sleep(ctx, time.Second)
			}
			continue
		}
		if fetches > 0 {
			c.logger.Info("replay fetching again", "failed_fetches", fetches)
			fetches = 0
		}
		if len(msgs) > 0 {
			if err := c.insertAgain(ctx, r, &b, msgs); err != nil {
				fails++
				c.logger.Warn("replay insert failed; retrying", "rows", len(msgs), "err", err)
				for _, m := range msgs {
					cons.Settle(ctx, m, broker.Retry(0))
				}
				backoff.Sleep(ctx, retryPolicy.Delay(fails))
				continue
			}
			fails = 0
			for _, m := range msgs {
				cons.Settle(ctx, m, broker.Ack())
			}
			rows += len(msgs)
			c.metrics.replayedRows.Add(float64(len(msgs)))
		}
		// Done once every message up to until is settled (its ack floor:
		// acks are sent without waiting, so a later look sees the last
		// ones), or nothing is pending at all.
		if lag, err := cons.Lag(ctx); err == nil && (until > 0 && lag.AckFloor >= until || lag.Pending == 0 && lag.AckPending == 0) {
			c.replayCons.Store(nil) // done: the sink's own floor is what counts again
			if err := cons.Delete(ctx); err != nil {
				c.logger.Warn("replay done; its consumer stays", "err", err)
			}
			c.logger.Info("replay done", "rows", rows)
			return
		}
	}
}

// insertAgain inserts a replayed batch; when ClickHouse blames a row, each
// message alone, leaving out those it rejects: the first pass dead-lettered
// them.
func (c *Consumer) insertAgain(ctx context.Context, r Recoverer, b *store.Batch, msgs []*broker.Msg) error {
	err := r.InsertAgain(ctx, b)
	if err == nil || !isRowError(err) {
		return err
	}
	var one store.Batch
	for _, m := range msgs {
		one.Reset()
		if one.Add(m.Subject(), m.ID(), m.Data(), m.Sequence()) != nil {
			continue
		}
		if err := r.InsertAgain(ctx, &one); err != nil && !isRowError(err) {
			return err
		}
	}
	return nil
}

// replayState is the Consumer's part in replays.
type replayState struct {
	episode  *episode // the inserting goroutine's
	acks     ackLog
	replays  sync.WaitGroup
	replayMu sync.Mutex
	// replaying counts the replays started and not ended; replayCons is
	// the running one's consumer, for Inserted.
	replaying  atomic.Int32
	replayCons atomic.Pointer[broker.Consumer]
}
