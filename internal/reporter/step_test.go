package reporter_test

import (
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/reporter"
)

// The default step is the smallest round step giving at most 60 buckets,
// whole days beyond the round ones, so long windows read day-level
// histograms.
func TestDefaultStep(t *testing.T) {
	const day = 24 * time.Hour
	for _, c := range []struct{ window, want time.Duration }{
		{time.Hour, time.Minute},
		{61 * time.Minute, 5 * time.Minute},
		{24 * time.Hour, time.Hour},
		{30 * day, day},
		{90 * day, 2 * day},
		{365 * day, 7 * day},
		{800 * day, 14 * day},
	} {
		got := reporter.DefaultStep(c.window)
		if got != c.want {
			t.Errorf("DefaultStep(%s) = %s; want %s", c.window, got, c.want)
		}
		if n := (c.window + got - 1) / got; n > 60 {
			t.Errorf("DefaultStep(%s) = %s gives %d buckets; want at most 60", c.window, got, n)
		}
	}
}
