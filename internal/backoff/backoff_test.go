package backoff

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestDelayDoublesUpToMax(t *testing.T) {
	p := Policy{First: 100 * time.Millisecond, Max: time.Second}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		if got := p.Delay(i + 1); got != w*time.Millisecond {
			t.Errorf("Delay(%d) = %v; want %v", i+1, got, w*time.Millisecond)
		}
	}
}

func TestRetryStopsOnSuccessOrPermanent(t *testing.T) {
	p := Policy{First: time.Millisecond, Max: time.Millisecond}
	calls := 0
	if err := Retry(t.Context(), p, func() error {
		if calls++; calls < 3 {
			return errors.New("not yet")
		}
		return nil
	}); err != nil || calls != 3 {
		t.Fatalf("Retry = %v after %d calls; want nil after 3", err, calls)
	}
	boom := errors.New("boom")
	calls = 0
	if err := Retry(t.Context(), p, func() error { calls++; return Permanent(boom) }); err != boom || calls != 1 {
		t.Fatalf("Retry = %v after %d calls; want boom after 1", err, calls)
	}
}

func TestRetryEndsWithTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	calls := 0
	err := Retry(ctx, Policy{First: time.Millisecond, Max: time.Millisecond}, func() error {
		if calls++; calls == 2 {
			cancel()
		}
		return errors.New("down")
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Retry = %v; want context.Canceled", err)
	}
	if Sleep(ctx, time.Hour) {
		t.Fatal("Sleep on an ended context waited")
	}
}
