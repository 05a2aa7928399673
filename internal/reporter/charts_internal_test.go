package reporter

import (
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
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

// The texts right of a trend's plot (the thresholds' labels and the
// series' names) are a legend of rows that do not overlap, wherever the
// thresholds' lines are: an 80 % line's label once fell among the names.
func TestTrendLegendRowsApart(t *testing.T) {
	p := func(x float64) *float64 { return &x }
	lines := []line{{Name: "SMS", Points: []*float64{p(.9), p(.95)}}, {Name: "VIBER", Points: []*float64{p(.8), nil}}, {Name: "WHATSAPP", Points: []*float64{p(.7), p(.85)}}}
	for _, marks := range [][]threshold{nil, {{.8, pctLabel("alert below", .8)}}, {{.99, "a"}, {.9, "b"}}} {
		c := trendChart("t", make([]time.Time, 2), time.Hour, "UTC", lines, rateAxis(), marks)
		if ys := legendRows(t, string(c.SVG)); len(ys) != len(lines)+len(marks) {
			t.Fatalf("marks %v: %d texts right of the plot; want %d (a name a series, a label a threshold)", marks, len(ys), len(lines)+len(marks))
		}
	}
}

// legendRows are the heights of the texts right of a trend's plot, its
// legend's rows, which it checks do not overlap.
func legendRows(t *testing.T, svg string) []float64 {
	t.Helper()
	var ys []float64
	for _, m := range regexp.MustCompile(`<text x="([0-9.]+)" y="([0-9.]+)"`).FindAllStringSubmatch(svg, -1) {
		x, _ := strconv.ParseFloat(m[1], 64)
		y, _ := strconv.ParseFloat(m[2], 64)
		if x > lineLeft+lineWidth {
			ys = append(ys, y)
		}
	}
	for i := range ys {
		for j := range i {
			if math.Abs(ys[i]-ys[j]) < 14 {
				t.Errorf("legend texts at y %v and %v overlap (12 px text)", ys[j], ys[i])
			}
		}
	}
	return ys
}

// A trend's time axis is labelled on its zone's clock, and says which.
func TestTrendAxisOnTheZonesClock(t *testing.T) {
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Fatal(err)
	}
	starts := []time.Time{time.Date(2026, 6, 1, 9, 0, 0, 0, kolkata), time.Date(2026, 6, 1, 10, 0, 0, 0, kolkata)}
	p := func(x float64) *float64 { return &x }
	svg := string(trendChart("t", starts, time.Hour, "Asia/Kolkata", []line{{Name: "SMS", Points: []*float64{p(.9), p(.95)}}}, rateAxis(), nil).SVG)
	for _, want := range []string{">09:00</text>", ">10:00</text>", "Asia/Kolkata, buckets of 1 h"} {
		if !strings.Contains(svg, want) {
			t.Errorf("the chart lacks %q:\n%s", want, svg)
		}
	}
}

// A channel's line has its own colour whatever its rank, the same as on
// the console's charts, and no two channels share one: a reader of both
// finds SMS in one colour, and VIBER never looks like PUSH.
func TestTrendColoursByChannel(t *testing.T) {
	p := func(x float64) *float64 { return &x }
	colourOf := func(lines []line) map[string]string {
		svg := string(trendChart("t", make([]time.Time, 1), time.Hour, "UTC", lines, rateAxis(), nil).SVG)
		got := map[string]string{}
		for _, m := range regexp.MustCompile(`<g class="series" data-name="([^"]+)"><path d="[^"]*" fill="none" stroke="([^"]+)"`).FindAllStringSubmatch(svg, -1) {
			got[m[1]] = m[2]
		}
		return got
	}
	a := colourOf([]line{{Name: "SMS", Points: []*float64{p(1)}}, {Name: "PUSH", Points: []*float64{p(1)}}, {Name: "VIBER", Points: []*float64{p(1)}}})
	b := colourOf([]line{{Name: "VIBER", Points: []*float64{p(1)}}, {Name: "SMS", Points: []*float64{p(1)}}, {Name: "PUSH", Points: []*float64{p(1)}}, {Name: "RCS", Points: []*float64{p(1)}}})
	for _, ch := range []string{"SMS", "PUSH", "VIBER"} {
		if a[ch] == "" || a[ch] != b[ch] {
			t.Errorf("%s drawn %q, and %q at another rank; want one colour", ch, a[ch], b[ch])
		}
	}
	if b["RCS"] != otherColor {
		t.Errorf("an undocumented channel drawn %q; want %s", b["RCS"], otherColor)
	}

	js, err := os.ReadFile("../console/assets/app.js")
	if err != nil {
		t.Fatal(err)
	}
	array := func(name string) []string {
		m := regexp.MustCompile(`const ` + name + ` = \[([^\]]*)\];`).FindSubmatch(js)
		if m == nil {
			t.Fatalf("app.js has no %s array", name)
		}
		return regexp.MustCompile(`'([^']*)'`).FindAllString(string(m[1]), -1)
	}
	colours, channels := array("COLORS"), array("CHANNELS")
	if len(colours) != len(channels)+1 || strings.Trim(colours[len(channels)], "'") != otherColor {
		t.Fatalf("console COLORS %v: want a colour a channel of %v, then %s for any other", colours, channels, otherColor)
	}
	seen := map[string]string{}
	for i, ch := range channels {
		ch, c := strings.Trim(ch, "'"), strings.Trim(colours[i], "'")
		if channelColors[ch] != c {
			t.Errorf("%s: the console draws it %s, the report %s", ch, c, channelColors[ch])
		}
		if other, ok := seen[c]; ok {
			t.Errorf("%s and %s share %s", other, ch, c)
		}
		seen[c] = ch
	}
	if len(channels) != len(channelColors)-1 {
		t.Errorf("the report colours %d channels, the console %d", len(channelColors)-1, len(channels))
	}
}

// The window before's lines are drawn under the window's, thin, dashed and
// without dots, and share one legend row: beside each channel's line, the
// same channel's the window before, bucket beside bucket.
func TestTrendDrawsTheWindowBeforeUnder(t *testing.T) {
	p := func(x float64) *float64 { return &x }
	lines := []line{
		{Name: "SMS", Points: []*float64{p(.9), p(.8)}}, {Name: "VIBER", Points: []*float64{p(.7), nil}},
		{Name: "SMS", Points: []*float64{p(.95), p(.96)}, Before: true}, {Name: "VIBER", Points: []*float64{nil, p(.99)}, Before: true},
	}
	svg := string(trendChart("t", make([]time.Time, 2), time.Hour, "UTC", lines, rateAxis(), []threshold{{.8, "alert below 80%"}}).SVG)
	series := regexp.MustCompile(`<g class="(series[^"]*)" data-name="([^"]+)"><path d="([^"]*)"[^>]*stroke-width="([0-9])"[^>]*></path>(.*?)</g>`).FindAllStringSubmatch(svg, -1)
	var order []string
	for _, m := range series {
		order = append(order, m[1]+" "+m[2])
		if before := m[1] == "series before"; before != (m[4] == "1") || before != strings.Contains(m[0], `stroke-dasharray="4 3"`) || before != !strings.Contains(m[5], "<circle") {
			t.Errorf("%s %s drawn %q; want the window before's thin, dashed, without dots, the window's not", m[1], m[2], m[0])
		}
	}
	if want := []string{"series before SMS", "series before VIBER", "series SMS", "series VIBER"}; !slices.Equal(order, want) {
		t.Errorf("series drawn in the order %q; want %q (the window before's under)", order, want)
	}
	// VIBER's gap in the window before is a gap there too.
	if d := series[1][3]; strings.Count(d, "M") != 1 || strings.Contains(d, "L") {
		t.Errorf("VIBER before's path %q; want one point, the other bucket a gap", d)
	}
	legend := regexp.MustCompile(`<g class="legend[^"]*">.*?<text[^>]*>([^<]+)</text></g>`).FindAllStringSubmatch(svg, -1)
	var names []string
	for _, m := range legend {
		names = append(names, m[1])
	}
	if want := []string{"SMS", "VIBER", "window before"}; !slices.Equal(names, want) {
		t.Errorf("legend %q; want %q: one row for the window before's lines", names, want)
	}
	if ys := legendRows(t, svg); len(ys) != 4 {
		t.Errorf("legend texts at %v; want four rows (the threshold, two channels, the window before)", ys)
	}
	if x := 7 * float64(len("window before")); lineLeft+lineWidth+22+x > svgWidth {
		t.Errorf("the window before's legend runs past the chart's edge")
	}
	// A window before without a point (nothing then) draws nothing, and
	// its legend row names nothing.
	empty := []line{lines[0], {Name: "SMS", Points: []*float64{nil, nil}, Before: true}}
	if svg := string(trendChart("t", make([]time.Time, 2), time.Hour, "UTC", empty, rateAxis(), nil).SVG); strings.Contains(svg, "before") {
		t.Errorf("a window before without points drawn:\n%s", svg)
	}
}
