package broker

import (
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/segmentio/encoding/json"
)

// pubAcks publishes messages to JetStream without waiting and routes each
// PubAck to the publish waiting for it, through one wildcard inbox
// subscription. It does what nats.go's jetstream.PublishMsgAsync does for
// otpscope, at less cost per message: nats.go decodes every PubAck with
// encoding/json while holding the lock every publisher needs (2.6 % of
// ingest's CPU under wrk; bench/HISTORY.md, eleventh session), and
// a future makes a channel for its ack and another for its error. Here a
// PubAck is decoded with segmentio's drop-in, outside the lock, into one
// buffered channel. What nats.go adds that otpscope does not use (expected
// stream headers, retries on no responders: a 503 answer makes the webhook's
// sender retry, and nothing is lost) is left out.
type pubAcks struct {
	nc     *nats.Conn
	prefix string // the inbox subject, "_INBOX.<nuid>.", before each publish's id

	mu      sync.Mutex
	next    uint64
	waiting map[uint64]chan pubAckResult
}

// maxPendingPubAcks bounds the publishes awaiting their PubAck (nats.go's
// WithPublishAsyncMaxPending, which otpscope set to the same): past it a
// publish fails at once, and the webhook is answered 503.
const maxPendingPubAcks = 8192

// pubAck is JetStream's answer to a publish; only what otpscope reads.
type pubAck struct {
	Stream    string    `json:"stream"`
	Duplicate bool      `json:"duplicate"`
	Error     *apiError `json:"error"`
}

// apiError is the error JetStream answers a publish (or a batch) with.
type apiError struct {
	ErrCode     int    `json:"err_code"`
	Description string `json:"description"`
}

// pubAckResult is one publish's outcome: its PubAck, or why there is none.
type pubAckResult struct {
	ack pubAck
	err error
}

// pubAckWait is a publish awaiting its PubAck.
type pubAckWait struct {
	id     uint64
	result chan pubAckResult // buffered: the router never waits
}

func newPubAcks(nc *nats.Conn) (*pubAcks, error) {
	p := &pubAcks{nc: nc, prefix: nc.NewInbox() + ".", waiting: make(map[uint64]chan pubAckResult)}
	sub, err := nc.Subscribe(p.prefix+"*", p.route)
	if err != nil {
		return nil, fmt.Errorf("subscribe to PubAcks: %w", err)
	}
	// PubAcks must never be dropped as a slow consumer's: a publish whose
	// answer is lost waits for its timeout and is answered 503.
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		return nil, err
	}
	// As nats.go does: a PubAck the server sent while the connection was
	// down is lost, so every wait fails when it drops, rather than hold a
	// caller without a deadline for ever.
	go p.failOnDisconnect(nc.StatusChanged(nats.RECONNECTING, nats.CLOSED))
	return p, nil
}

// errDisconnected fails the waits of a connection that dropped.
var errDisconnected = errors.New("connection lost before the PubAck came")

func (p *pubAcks) failOnDisconnect(status chan nats.Status) {
	for st := range status {
		p.mu.Lock()
		for id, result := range p.waiting {
			result <- pubAckResult{err: errDisconnected}
			delete(p.waiting, id)
		}
		p.mu.Unlock()
		if st == nats.CLOSED {
			return
		}
	}
}

// publish sends m with a reply subject of its own; its PubAck will come on
// the returned wait. m's Reply is overwritten.
func (p *pubAcks) publish(m *nats.Msg) (pubAckWait, error) {
	w := pubAckWait{result: make(chan pubAckResult, 1)}
	p.mu.Lock()
	if len(p.waiting) >= maxPendingPubAcks {
		p.mu.Unlock()
		return pubAckWait{}, fmt.Errorf("%d publishes already await their PubAck", maxPendingPubAcks)
	}
	p.next++
	w.id = p.next
	p.waiting[w.id] = w.result
	p.mu.Unlock()
	m.Reply = p.prefix + strconv.FormatUint(w.id, 36)
	if err := p.nc.PublishMsg(m); err != nil {
		p.forgetAll([]pubAckWait{w})
		return pubAckWait{}, err
	}
	return w, nil
}

// forgetAll drops waits whose PubAcks are no longer awaited (their caller
// gave up, or their publish failed).
func (p *pubAcks) forgetAll(ws []pubAckWait) {
	p.mu.Lock()
	for _, w := range ws {
		delete(p.waiting, w.id)
	}
	p.mu.Unlock()
}

// forgetWhenSent forgets the waits of a publish its caller gave up on while
// group commit held it, once it is sent (group commit sends each queued
// publish exactly once). Their PubAcks are awaited by nobody, and a server
// that never answered would otherwise hold them until the connection drops,
// each one counting toward maxPendingPubAcks.
func (p *pubAcks) forgetWhenSent(queued <-chan sent) {
	go func() { p.forgetAll((<-queued).waits) }()
}

// pending is how many publishes await their PubAck.
func (p *pubAcks) pending() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.waiting)
}

// route hands a PubAck to the publish waiting for it.
func (p *pubAcks) route(m *nats.Msg) {
	id, err := strconv.ParseUint(m.Subject[len(p.prefix):], 36, 64)
	if err != nil {
		return
	}
	p.mu.Lock()
	result, ok := p.waiting[id]
	delete(p.waiting, id)
	p.mu.Unlock()
	if !ok {
		return // its publisher gave up
	}
	result <- decodePubAck(m)
}

// errNoStream is the server's answer when no stream takes the subject.
var errNoStream = errors.New("no stream answered the publish")

func decodePubAck(m *nats.Msg) pubAckResult {
	// nats.go's header for a status answer; 503: no responders.
	if len(m.Data) == 0 && m.Header.Get("Status") == "503" {
		return pubAckResult{err: errNoStream}
	}
	var r pubAckResult
	if err := json.Unmarshal(m.Data, &r.ack); err != nil {
		return pubAckResult{err: fmt.Errorf("PubAck %q: %w", m.Data, err)}
	}
	switch e := r.ack.Error; {
	case e != nil:
		r.err = fmt.Errorf("publish refused: %s (%d)", e.Description, e.ErrCode)
	case r.ack.Stream == "":
		r.err = fmt.Errorf("PubAck %q names no stream", m.Data)
	}
	return r
}
