package reporter

import (
	"regexp"
	"strconv"
	"testing"
)

// A bar's value follows it unless it would run past the chart's edge; then
// it ends inside the bar.
func TestBarValuesStayInTheChart(t *testing.T) {
	c := barRows("t", []string{"long", "short"}, []string{"p50 1 min 4 s · p95 2 min 10 s", "p50 1 s · p95 2 s"},
		[]float64{10, 2}, countAxis(10), "#000", nil)
	texts := regexp.MustCompile(`<text ([^>]*)dy="14">(p50[^<]*)</text>`).FindAllStringSubmatch(string(c.SVG), -1)
	if len(texts) != 2 {
		t.Fatalf("found %d values in %s", len(texts), c.SVG)
	}
	x := func(attrs string) float64 {
		v, err := strconv.ParseFloat(regexp.MustCompile(`x="([0-9.]+)"`).FindStringSubmatch(attrs)[1], 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	// The long one's bar spans the axis: its value ends inside it.
	if long := texts[0][1]; !regexp.MustCompile(`text-anchor="end"`).MatchString(long) || x(long) > barLeft+barWidth {
		t.Errorf("the full bar's value is drawn at %q; want it ending inside the bar", long)
	}
	// The short one follows its bar, within the chart.
	if short := texts[1][1]; regexp.MustCompile(`text-anchor`).MatchString(short) || x(short)+labelWidth(texts[1][2]) > svgWidth {
		t.Errorf("the short bar's value is drawn at %q; want it after the bar", short)
	}
}
