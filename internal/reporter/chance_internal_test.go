package reporter

import (
	"math"
	"testing"
)

// fallChance is Fisher's exact one-sided p-value, checked against sums of
// exact binomial coefficients (Python's math.comb).
func TestFallChanceIsFishersExactTest(t *testing.T) {
	for _, c := range []struct {
		d0, n0, d1, n1 uint64
		want           float64
	}{
		{32, 32, 28, 32, 0.05659640905542545}, // a z-test says 0.019
		{98, 100, 86, 100, 0.0014507907974147488},
		{98, 100, 88, 100, 0.005047353436393573},
		{30, 50, 25, 50, 0.21077588623076354},
		{49, 50, 44, 50, 0.055874808859073644},
		{95, 100, 90, 100, 0.1413819151888903},
		{980, 1000, 960, 1000, 0.006069770757779366},
		{9800, 10000, 8600, 10000, 5.114912483846393e-239},
	} {
		got := fallChance(c.d0, c.n0, c.d1, c.n1)
		if math.Abs(got-c.want) > 1e-9*c.want {
			t.Errorf("fallChance(%d of %d, %d of %d) = %g; want %g", c.d0, c.n0, c.d1, c.n1, got, c.want)
		}
	}
	// No failures, an empty window, or a rise: nothing to call a fall.
	for _, c := range [][4]uint64{{10, 10, 10, 10}, {0, 0, 5, 10}, {5, 10, 0, 0}} {
		if got := fallChance(c[0], c[1], c[2], c[3]); got != 1 {
			t.Errorf("fallChance%v = %g; want 1", c, got)
		}
	}
	if got := fallChance(80, 100, 95, 100); got < 0.99 {
		t.Errorf("fallChance of a rise from 80 to 95 of 100 = %g; want near 1", got)
	}
	// Cut, not rounded: under a line never reads as it.
	for p, want := range map[float64]string{0.0566: "5.66%", 0.04996820689933556: "4.99%", 0.0015: "0.15%", 0.00146: "0.14%", 0.009999: "0.99%",
		0.0999: "9.99%", 0.211: "21.1%", 1: "100.0%", 5e-239: "< 0.0001%"} {
		if got := chanceSaid(p); got != want {
			t.Errorf("chanceSaid(%g) = %q; want %q", p, got, want)
		}
	}
	for c, want := range map[float64]string{0.95: "5%", 0.9: "10%", 0.99: "1%", 0.999: "0.1%", 0.975: "2.5%"} {
		if got := lineSaid(c); got != want {
			t.Errorf("lineSaid(%v) = %q; want %q", c, got, want)
		}
	}
}
