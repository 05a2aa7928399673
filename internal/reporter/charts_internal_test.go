package reporter

import (
	"math"
	"os"
	"regexp"
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
	lines := []line{{"SMS", []*float64{p(.9), p(.95)}}, {"VIBER", []*float64{p(.8), nil}}, {"WHATSAPP", []*float64{p(.7), p(.85)}}}
	for _, marks := range [][]threshold{nil, {{.8, pctLabel("alert below", .8)}}, {{.99, "a"}, {.9, "b"}}} {
		c := trendChart("t", make([]time.Time, 2), time.Hour, "UTC", lines, rateAxis(), marks)
		var ys []float64
		for _, m := range regexp.MustCompile(`<text x="([0-9.]+)" y="([0-9.]+)"`).FindAllStringSubmatch(string(c.SVG), -1) {
			x, _ := strconv.ParseFloat(m[1], 64)
			y, _ := strconv.ParseFloat(m[2], 64)
			if x > lineLeft+lineWidth {
				ys = append(ys, y)
			}
		}
		if len(ys) != len(lines)+len(marks) {
			t.Fatalf("marks %v: %d texts right of the plot; want %d (a name a series, a label a threshold)", marks, len(ys), len(lines)+len(marks))
		}
		for i := range ys {
			for j := range i {
				if math.Abs(ys[i]-ys[j]) < 14 {
					t.Errorf("marks %v: legend texts at y %v and %v overlap (12 px text)", marks, ys[j], ys[i])
				}
			}
		}
	}
}

// A trend's time axis is labelled on its zone's clock, and says which.
func TestTrendAxisOnTheZonesClock(t *testing.T) {
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Fatal(err)
	}
	starts := []time.Time{time.Date(2026, 6, 1, 9, 0, 0, 0, kolkata), time.Date(2026, 6, 1, 10, 0, 0, 0, kolkata)}
	p := func(x float64) *float64 { return &x }
	svg := string(trendChart("t", starts, time.Hour, "Asia/Kolkata", []line{{"SMS", []*float64{p(.9), p(.95)}}}, rateAxis(), nil).SVG)
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
	a := colourOf([]line{{"SMS", []*float64{p(1)}}, {"PUSH", []*float64{p(1)}}, {"VIBER", []*float64{p(1)}}})
	b := colourOf([]line{{"VIBER", []*float64{p(1)}}, {"SMS", []*float64{p(1)}}, {"PUSH", []*float64{p(1)}}, {"RCS", []*float64{p(1)}}})
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
