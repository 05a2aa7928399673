package sink

import (
	"testing"
	"time"
)

// SetLagStale sets how long a lag reading stands unanswered, until the
// test ends.
func SetLagStale(t testing.TB, d time.Duration) {
	old := lagStale
	lagStale = d
	t.Cleanup(func() { lagStale = old })
}
