package broker

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"
)

// TestUntilAnsweredGrowsItsTries: the first try is short (a fresh cluster
// drops requests until it has a meta leader, and a first try of 10 s made
// every first start wait that long), each next one twice the last, up to
// 10 s for a slow disk.
func TestUntilAnsweredGrowsItsTries(t *testing.T) {
	b := &Broker{logger: slog.New(slog.DiscardHandler)}
	var budgets []time.Duration
	err := b.untilAnswered(t.Context(), "test", func(ctx context.Context) error {
		d, ok := ctx.Deadline()
		if !ok {
			t.Fatal("a try without a deadline")
		}
		budgets = append(budgets, time.Until(d).Round(100*time.Millisecond))
		if len(budgets) < 6 {
			return errors.New("no answer")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	for i := range want {
		if budgets[i] != want[i] {
			t.Fatalf("tries had %v; want %v", budgets, want)
		}
	}
}
