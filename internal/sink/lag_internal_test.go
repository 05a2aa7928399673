package sink

import (
	"testing"
	"time"
)

// TestLagStaleIsUnknown: a lag reading older than lagStale is unknown to
// its readers (the status line, /api/v1/status) at once, not only once the
// sink, retrying with NATS out of reach, next tries to read it.
func TestLagStaleIsUnknown(t *testing.T) {
	var c Consumer
	if _, _, ok := c.Lag(); ok {
		t.Fatal("a lag never read is known")
	}
	c.pending.Store(3)
	c.ackPending.Store(41)
	c.lagKnown.Store(true)
	c.lagAt.Store(time.Now().UnixNano())
	c.shareAt.Store(time.Now().UnixNano())
	if p, a, ok := c.Lag(); !ok || p != 3 || a != 41 {
		t.Errorf("a fresh reading: %d, %d, %v; want 3, 41, known", p, a, ok)
	}
	if _, ok := c.BoundShare(); !ok {
		t.Error("a fresh share unknown")
	}
	c.lagAt.Store(time.Now().Add(-lagStale - time.Second).UnixNano())
	if _, _, ok := c.Lag(); ok {
		t.Errorf("a reading %v old is known; want unknown past %v", lagStale+time.Second, lagStale)
	}
	if _, ok := c.BoundShare(); ok {
		t.Error("the share of a stale reading is known")
	}
}
