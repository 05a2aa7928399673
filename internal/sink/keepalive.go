package sink

import (
	"sync"
	"time"

	"github.com/otpscope/otpscope/internal/broker"
)

// A batch's messages are delivered when it starts filling and acknowledged
// after its insert. Normally that is a flush interval plus an insert or two,
// far below AckWait; but an insert can be slow (a loaded engine, a server
// merging, a retry after a failure), and a message not acknowledged within
// AckWait is delivered again — late and twice. So while a full batch waits
// for the inserter and while it is inserted, its messages are marked in
// progress every third of AckWait, which starts their AckWait again.

// keepAliveEvery is how often a held batch's messages are marked in progress.
func (c *Consumer) keepAliveEvery() time.Duration { return c.cfg.AckWait / 3 }

// handOver passes the full batch p to the inserter, keeping its messages
// alive while the inserter is busy with the one before.
func (c *Consumer) handOver(cons *broker.Consumer, full chan<- *pending, p *pending) {
	select {
	case full <- p:
		return
	default:
	}
	t := time.NewTicker(c.keepAliveEvery())
	defer t.Stop()
	for {
		select {
		case full <- p:
			return
		case <-t.C:
			cons.InProgress(p.msgs)
		}
	}
}

// keepAlive marks msgs in progress every keepAliveEvery until stop is
// called; stop returns when it no longer does. msgs may be settled
// meanwhile; the slice must not change until stop returned.
func (c *Consumer) keepAlive(cons *broker.Consumer, msgs []*broker.Msg) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(c.keepAliveEvery())
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				cons.InProgress(msgs)
			}
		}
	})
	return func() { close(done); wg.Wait() }
}
