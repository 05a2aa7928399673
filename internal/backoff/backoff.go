// Package backoff is otpscope's one way to wait and retry: exponential delays
// bounded by a maximum, retries that last while a context does, and a sleep
// that ends with the context. (Small enough that a dependency would not earn
// its place; every loop that waits uses it.)
package backoff

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Policy is an exponential backoff: First, then doubling up to Max.
type Policy struct {
	First time.Duration
	Max   time.Duration
}

// Delay is the wait before retry n (n = 1 is the first retry).
func (p Policy) Delay(n int) time.Duration {
	d := p.First
	for i := 1; i < n && d < p.Max; i++ {
		d *= 2
	}
	return min(d, p.Max)
}

// permanent marks an error that retrying cannot fix.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// Permanent wraps err so that Retry returns it at once.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

// Retry calls fn until it returns nil or a Permanent error, waiting p's delays
// in between, for as long as ctx lasts. It returns nil, the permanent error
// (unwrapped), or ctx's error with the last error of fn.
func Retry(ctx context.Context, p Policy, fn func() error) error {
	for n := 1; ; n++ {
		err := fn()
		if err == nil {
			return nil
		}
		var perm permanent
		if errors.As(err, &perm) {
			return perm.error
		}
		if !Sleep(ctx, p.Delay(n)) {
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		}
	}
}

// Sleep waits d or until ctx ends, and reports whether it waited the whole d.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
