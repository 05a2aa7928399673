// Package polltest waits for a condition in tests: a test polls for what it
// waits for instead of sleeping for a guessed time.
package polltest

import (
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
