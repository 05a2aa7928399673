package chdb

import (
	"context"
	"sync"
)

// gate is the engine's lock: one holder at a time, and when it is released
// the owner's waiting statements go before the guests'. Guests are clients
// of the HTTP endpoint other than the owner; with the handler letting at
// most one guest request at the engine, the owner's statement waits for at
// most one guest statement, which the reader connection's limits bound.
type gate struct {
	mu     sync.Mutex
	held   bool
	owners []*waiter
	guests []*waiter
}

type waiter struct {
	ready   chan struct{} // closed when the gate is handed over
	granted bool          // guarded by gate.mu
}

// lock takes the gate, waiting while ctx lasts.
func (g *gate) lock(ctx context.Context, guest bool) error {
	g.mu.Lock()
	if !g.held && len(g.owners) == 0 && (!guest || len(g.guests) == 0) {
		g.held = true
		g.mu.Unlock()
		return nil
	}
	w := &waiter{ready: make(chan struct{})}
	if guest {
		g.guests = append(g.guests, w)
	} else {
		g.owners = append(g.owners, w)
	}
	g.mu.Unlock()
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if w.granted {
		// Handed over while giving up: pass it on.
		g.handOver()
		return ctx.Err()
	}
	if guest {
		g.guests = remove(g.guests, w)
	} else {
		g.owners = remove(g.owners, w)
	}
	return ctx.Err()
}

// unlock releases the gate to the next waiter, owners first.
func (g *gate) unlock() {
	g.mu.Lock()
	g.handOver()
	g.mu.Unlock()
}

// handOver gives the held gate to the next waiter or frees it; g.mu is held.
func (g *gate) handOver() {
	var w *waiter
	switch {
	case len(g.owners) > 0:
		w, g.owners = g.owners[0], g.owners[1:]
	case len(g.guests) > 0:
		w, g.guests = g.guests[0], g.guests[1:]
	default:
		g.held = false
		return
	}
	w.granted = true
	close(w.ready)
}

func remove(ws []*waiter, w *waiter) []*waiter {
	for i, x := range ws {
		if x == w {
			return append(ws[:i], ws[i+1:]...)
		}
	}
	return ws
}
