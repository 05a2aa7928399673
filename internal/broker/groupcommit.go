package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
	"github.com/prometheus/client_golang/prometheus"
)

// groupCommit gathers publishes that arrive while the stream is busy into
// JetStream atomic batches. It serves the embedded single-node server with
// fsync on every write (the default): there the stream's one writer stores
// each single publish with an fsync of its own, while it stores an atomic
// batch with one fsync for all its messages (coalesceSync in nats-server
// 2.15's stream.go). A batch costs the writer about 2.5 ms (the server stages
// it in a file store of its own) plus 18 µs a message, against about 220 µs
// for a single publish on this project's test machine, so it pays from about
// 15 messages on. Hence batches are made only from publishes that are
// already waiting: while fewer than groupBusyAt single publishes await their
// PubAck and no batch is in flight, a publish goes out on its own at once,
// as without group commit; so at any webhook rate that leaves the stream
// idle nothing changes.
//
// Nothing is lost to a batch. It is atomic: either every message is stored,
// or none is. When a batch fails (one duplicate Nats-Msg-Id, a tyntec
// retry, fails it whole) or its commit is not answered, each message is
// published again on its own, and the stream's duplicate window answers for
// the ones a lost answer hid.
//
// Batched messages keep the batch's headers (Nats-Batch-Id,
// Nats-Batch-Sequence, and Nats-Batch-Commit on the last): JetStream stores
// them with the message, and subscribers see them.
type groupCommit struct {
	nc      *nats.Conn
	acks    *pubAcks
	stream  string
	ackWait time.Duration // for a batch's commit answer

	mu       sync.Mutex
	queue    []*waiting
	queued   int       // messages in queue
	oldest   time.Time // when queue[0] arrived
	batching int       // batches awaiting their commit answer
	closed   bool

	wake chan struct{}
	done chan struct{}

	batches  atomic.Int64 // committed
	batched  atomic.Int64 // messages in committed batches
	failures atomic.Int64 // batches published again message by message
}

// Tuning, variables for the tests.
var (
	// groupBusyAt single publishes awaiting their PubAck make the stream
	// busy: new publishes wait to be batched.
	groupBusyAt = 16
	// groupMinBatch messages make a batch; fewer wait for more, or go out
	// on their own once the stream is no longer busy.
	groupMinBatch = 16
	// groupMaxInFlight batches may await their commit at once.
	groupMaxInFlight = 1
	// groupMaxBatch bounds a batch: nats-server's default limit
	// (max_batch_size). Concurrent webhooks make far smaller ones; a bulk
	// publish of more goes out message by message.
	groupMaxBatch = 1000
	// groupMaxHold bounds how long a publish waits in the queue: past it,
	// it goes out on its own whatever the stream's state.
	groupMaxHold = 20 * time.Millisecond
	// groupRecheck is how often a waiting queue looks at the stream again.
	groupRecheck = 200 * time.Microsecond
)

// Header names of JetStream's atomic batch publish.
const (
	headerBatchID     = "Nats-Batch-Id"
	headerBatchSeq    = "Nats-Batch-Sequence"
	headerBatchCommit = "Nats-Batch-Commit"
)

// waiting is one PublishNew's messages waiting in the queue, and where to
// tell it how they went.
type waiting struct {
	msgs []*nats.Msg
	sent chan sent // buffered: the committer never waits for the caller
}

// sent is how waiting messages went out: committed in a batch (every one
// stored anew, since a batch holding a duplicate fails), published on their
// own (awaiting their PubAcks), or not at all.
type sent struct {
	batched bool
	waits   []pubAckWait
	err     error
}

func newGroupCommit(nc *nats.Conn, acks *pubAcks, stream string) *groupCommit {
	g := &groupCommit{nc: nc, acks: acks, stream: stream, ackWait: 10 * time.Second,
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	go g.run()
	return g
}

// busy reports whether a publish must join the queue rather than go out on
// its own now.
func (g *groupCommit) busy() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.queue) > 0 || g.batching > 0 || g.acks.pending() >= groupBusyAt
}

// enqueue adds msgs to the queue; the answer comes on the returned channel.
func (g *groupCommit) enqueue(msgs []*nats.Msg) <-chan sent {
	w := &waiting{msgs: msgs, sent: make(chan sent, 1)}
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		w.sent <- sent{err: errors.New("broker closed")}
		return w.sent
	}
	if len(g.queue) == 0 {
		g.oldest = time.Now()
	}
	g.queue = append(g.queue, w)
	g.queued += len(msgs)
	g.mu.Unlock()
	g.signal()
	return w.sent
}

func (g *groupCommit) signal() {
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

func (g *groupCommit) close() {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	g.closed = true
	q := g.queue
	g.queue, g.queued = nil, 0
	g.mu.Unlock()
	close(g.done)
	for _, w := range q {
		w.sent <- sent{err: errors.New("broker closed")}
	}
}

// run sends the queue out whenever it may: on a new arrival, at the end of
// a batch, and every groupRecheck while publishes wait.
func (g *groupCommit) run() {
	recheck := time.NewTimer(time.Hour)
	recheck.Stop()
	for {
		select {
		case <-g.wake:
		case <-recheck.C:
		case <-g.done:
			return
		}
		for g.flush() {
		}
		g.mu.Lock()
		waiting := len(g.queue) > 0
		g.mu.Unlock()
		if waiting {
			recheck.Reset(groupRecheck)
		}
	}
}

// flush sends some of the queue out if it may, and reports whether it did:
// a batch when there are enough messages and none is in flight; else, on
// their own, when the stream is no longer busy or the oldest has waited
// groupMaxHold.
func (g *groupCommit) flush() bool {
	g.mu.Lock()
	if len(g.queue) == 0 || g.closed {
		g.mu.Unlock()
		return false
	}
	if n := len(g.queue[0].msgs); n > groupMaxBatch {
		// More than a batch may hold (a bulk publish): on their own, as
		// many in flight as the connection allows, rather than a batch the
		// server would refuse.
		w := g.take(1, n)[0]
		g.mu.Unlock()
		w.sent <- publishEach(g.acks, w.msgs)
		return true
	}
	if g.batching < groupMaxInFlight && g.queued >= groupMinBatch {
		n, k := 0, 0
		for k < len(g.queue) && n+len(g.queue[k].msgs) <= groupMaxBatch {
			n += len(g.queue[k].msgs)
			k++
		}
		batch := g.take(k, n)
		g.batching++
		g.mu.Unlock()
		go g.commit(batch, n)
		return true
	}
	if (g.batching == 0 && g.acks.pending() < groupBusyAt) || time.Since(g.oldest) >= groupMaxHold {
		all := g.take(len(g.queue), g.queued)
		g.mu.Unlock()
		for _, w := range all {
			w.sent <- publishEach(g.acks, w.msgs)
		}
		return true
	}
	g.mu.Unlock()
	return false
}

// take removes the first k waiting publishes, n messages, from the queue.
func (g *groupCommit) take(k, n int) []*waiting {
	out := make([]*waiting, k)
	copy(out, g.queue)
	g.queue = append(g.queue[:0], g.queue[k:]...)
	g.queued -= n
	g.oldest = time.Now() // the rest may have waited less; erring late only batches more
	return out
}

// publishEach publishes msgs on their own, without waiting: PublishNew's
// path when no batch is made, and group commit's for what it does not batch.
func publishEach(acks *pubAcks, msgs []*nats.Msg) sent {
	waits := make([]pubAckWait, 0, len(msgs))
	for _, m := range msgs {
		w, err := acks.publish(m)
		if err != nil {
			acks.forgetAll(waits)
			return sent{err: fmt.Errorf("publish %s: %w", m.Subject, err)}
		}
		waits = append(waits, w)
	}
	return sent{waits: waits}
}

// commit publishes ws's n messages as one atomic batch; when it fails, on
// their own.
func (g *groupCommit) commit(ws []*waiting, n int) {
	defer func() {
		g.mu.Lock()
		g.batching--
		g.mu.Unlock()
		g.signal()
	}()
	if err := g.publishBatch(ws, n); err != nil {
		g.failures.Add(1)
		for _, w := range ws {
			w.sent <- publishEach(g.acks, w.msgs)
		}
		return
	}
	g.batches.Add(1)
	g.batched.Add(int64(n))
	for _, w := range ws {
		w.sent <- sent{batched: true}
	}
}

// batchAck is the answer to a batch's commit: a PubAck naming the batch and
// its size, or an error.
type batchAck struct {
	Stream string    `json:"stream"`
	Batch  string    `json:"batch"`
	Count  int       `json:"count"`
	Error  *apiError `json:"error"`
}

func (g *groupCommit) publishBatch(ws []*waiting, n int) error {
	id := nuid.Next()
	seq := 0
	for _, w := range ws {
		for _, m := range w.msgs {
			seq++
			// A copy: the caller's message goes out again on its own, without
			// these headers, if the batch fails.
			bm := &nats.Msg{Subject: m.Subject, Data: m.Data, Header: make(nats.Header, len(m.Header)+3)}
			maps.Copy(bm.Header, m.Header)
			bm.Header[headerBatchID] = []string{id}
			bm.Header[headerBatchSeq] = []string{strconv.Itoa(seq)}
			if seq < n {
				if err := g.nc.PublishMsg(bm); err != nil {
					return err
				}
				continue
			}
			bm.Header[headerBatchCommit] = []string{"1"}
			resp, err := g.nc.RequestMsg(bm, g.ackWait)
			if err != nil {
				return err
			}
			var ack batchAck
			if err := json.Unmarshal(resp.Data, &ack); err != nil {
				return fmt.Errorf("batch answer %q: %w", resp.Data, err)
			}
			switch {
			case ack.Error != nil:
				return fmt.Errorf("batch refused: %s (%d)", ack.Error.Description, ack.Error.ErrCode)
			case ack.Stream != g.stream || ack.Batch != id || ack.Count != n:
				return fmt.Errorf("batch answer %q: want stream %s, batch %s of %d", resp.Data, g.stream, id, n)
			}
		}
	}
	return nil
}

// BatchStats counts what group commit did: atomic batches committed, the
// messages in them, and failed batches whose messages went out again on
// their own.
type BatchStats struct {
	Batches, Messages, Failures int64
}

// batchCounters are group commit's counters, for the process's registry;
// they stay at zero when it does not group.
func (b *Broker) batchCounters() []prometheus.Collector {
	counter := func(name, help string, of func(BatchStats) int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(of(b.Batches())) })
	}
	return []prometheus.Collector{
		counter("otpscope_nats_batched_messages_total",
			"Messages published in atomic batches by group commit (embedded single node, --nats-sync always, under load).",
			func(s BatchStats) int64 { return s.Messages }),
		counter("otpscope_nats_batch_failures_total",
			"Atomic batches that failed (a duplicate message id, no answer) and whose messages were published again one by one.",
			func(s BatchStats) int64 { return s.Failures }),
	}
}

// Batches reports b's group commit so far; zero when it does not group.
func (b *Broker) Batches() BatchStats {
	g := b.group
	if g == nil {
		return BatchStats{}
	}
	return BatchStats{Batches: g.batches.Load(), Messages: g.batched.Load(), Failures: g.failures.Load()}
}
