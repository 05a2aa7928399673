package chdb

import (
	"context"
	"testing"
	"time"
)

func TestGateOwnersFirst(t *testing.T) {
	var g gate
	ctx := t.Context()
	if err := g.lock(ctx, false); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 3)
	waitFor := func(owners, guests int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			g.mu.Lock()
			o, gu := len(g.owners), len(g.guests)
			g.mu.Unlock()
			if o == owners && gu == guests {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("waiters = %d owners, %d guests; want %d, %d", o, gu, owners, guests)
			}
			time.Sleep(time.Millisecond) // polling, not waiting for a condition blindly
		}
	}
	take := func(name string, guest bool) {
		if err := g.lock(ctx, guest); err != nil {
			t.Error(err)
			return
		}
		got <- name
		g.unlock()
	}
	go take("guest 1", true)
	waitFor(0, 1)
	// A guest that gives up leaves the queue.
	cctx, cancel := context.WithCancel(ctx)
	cancelled := make(chan error, 1)
	go func() { cancelled <- g.lock(cctx, true) }()
	waitFor(0, 2)
	cancel()
	if err := <-cancelled; err == nil {
		t.Fatal("lock with a cancelled context = nil; want an error")
	}
	waitFor(0, 1)
	go take("owner", false)
	waitFor(1, 1)
	g.unlock()
	if first, second := <-got, <-got; first != "owner" || second != "guest 1" {
		t.Errorf("order = %s, %s; want owner, guest 1", first, second)
	}
}
