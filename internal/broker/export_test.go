package broker

import "testing"

// SetAfterMissing sets a function run between finding a consumer missing and
// creating it, until the test ends.
func SetAfterMissing(t testing.TB, fn func()) {
	afterMissing = fn
	t.Cleanup(func() { afterMissing = nil })
}
