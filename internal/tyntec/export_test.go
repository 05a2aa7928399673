package tyntec

import "testing"

// SetBounds lowers the bounds of an answer read whole and of a list read
// element by element for t.
func SetBounds(t *testing.T, whole, list int64) {
	oldWhole, oldList := maxBody, maxListBody
	maxBody, maxListBody = whole, list
	t.Cleanup(func() { maxBody, maxListBody = oldWhole, oldList })
}
