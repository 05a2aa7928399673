package reporter

import (
	"math"
	"strconv"
)

// fallChance is the one-sided p-value of Fisher's exact test that a
// channel which delivered d0 of its n0 settled attempts in the window
// before and d1 of n1 now did not fall: the chance, were every settled
// attempt of the two windows as likely to fail as any other, that the
// window now would hold as many of their failures as it does, or more.
//
// Exact rather than a z-test: an OTP channel delivers 95–100 % of its
// attempts, and at a few dozen of them a z-test calls a fall from 32 of 32
// to 28 of 32 a 2 % chance where it is 6 % (a window before with no
// failures makes its variance too small).
func fallChance(d0, n0, d1, n1 uint64) float64 {
	f0, f1 := n0-d0, n1-d1
	all, failed := n0+n1, f0+f1
	if n0 == 0 || n1 == 0 || failed == 0 {
		return 1
	}
	// X, the window now's share of the failures, is hypergeometric: the
	// tail P(X ≥ f1) sums its terms from f1 up. Past the mean they only
	// shrink, so the sum stops once they no longer count.
	logAll := logChoose(all, n1)
	var p, prev float64
	for k := f1; k <= min(failed, n1); k++ {
		term := math.Exp(logChoose(failed, k) + logChoose(all-failed, n1-k) - logAll)
		p += term
		if term < prev && term < p*1e-15 {
			break
		}
		prev = term
	}
	return min(p, 1)
}

// logChoose is the natural log of n choose k.
func logChoose(n, k uint64) float64 {
	a, _ := math.Lgamma(float64(n) + 1)
	b, _ := math.Lgamma(float64(k) + 1)
	c, _ := math.Lgamma(float64(n-k) + 1)
	return a - b - c
}

// chanceSaid says a p-value as the alerts do: "21.1%", "4.99%", "0.14%",
// "< 0.0001%": near the usual lines (10 %, 5 %, 1 %) with two decimals,
// under 1 % two digits, each cut, not rounded, so that a chance under a
// line never reads as it: the demo's drop fired at 4.9968 % and once read
// "5.0%".
func chanceSaid(p float64) string {
	pct := 100 * p
	// cut drops the digits past scale's; the 1e-9 keeps a float's error
	// (100 × 0.211 = 21.0999…) from cutting a digit that is there.
	cut := func(scale float64) float64 { return math.Floor(pct*scale+1e-9) / scale }
	switch {
	case p < 1e-6:
		return "< 0.0001%"
	case p < 0.01:
		scale := math.Pow(10, 1-math.Floor(math.Log10(pct)))
		return strconv.FormatFloat(cut(scale), 'g', 2, 64) + "%"
	case p < 0.1:
		return strconv.FormatFloat(cut(100), 'f', 2, 64) + "%"
	}
	return strconv.FormatFloat(cut(10), 'f', 1, 64) + "%"
}

// lineSaid says the chance a drop must be under, 1 − confidence: "5%".
func lineSaid(confidence float64) string {
	return strconv.FormatFloat(100*(1-confidence), 'g', 4, 64) + "%"
}
