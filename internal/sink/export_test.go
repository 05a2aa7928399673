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

// SetPositionEvery sets how often the sink records its position, until
// the test ends.
func SetPositionEvery(t testing.TB, d time.Duration) {
	old := positionEvery
	positionEvery = d
	t.Cleanup(func() { positionEvery = old })
}

// SetBoundShareEvery sets how often the sink reads its backlog's share of
// the stream's bound, until the test ends.
func SetBoundShareEvery(t testing.TB, d time.Duration) {
	old := boundShareInterval
	boundShareInterval = d
	t.Cleanup(func() { boundShareInterval = old })
}
