// Package polltest waits for a condition in tests: a test polls for what it
// waits for instead of sleeping for a guessed time. It also runs what a test
// waits on (Go) and holds the output it polls (Buffer).
package polltest

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"
)

// Interval is how often Until checks its condition.
const Interval = 20 * time.Millisecond

// Within calls cond every interval until it holds, and reports whether it
// did before timeout passed.
func Within(timeout, interval time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval)
	}
	return true
}

// Until calls cond every Interval until it holds; when it does not within
// timeout, the test fails, saying it was waiting for what.
func Until(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	UntilEvery(t, Interval, timeout, what, cond)
}

// UntilEvery is Until with a condition checked every interval, for a
// condition that costs more than a glance (an HTTP request, a query).
func UntilEvery(t testing.TB, interval, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Within(timeout, interval, cond) {
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

// Buffer is output the code under test writes while the test reads it — a
// log to poll for a line, or to print when the test fails. Unlike a
// bytes.Buffer it is safe for both at once.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Go calls run in a goroutine with a context that stop cancels; stop then
// waits for run to return and fails the test if it returned an error,
// named by what. The test's cleanup calls stop too; calling it more than
// once is harmless.
func Go(t testing.TB, what string, run func(ctx context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	stop = sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: %v", what, err)
		}
	})
	t.Cleanup(stop)
	return stop
}
