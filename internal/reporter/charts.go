package reporter

import (
	"cmp"
	"fmt"
	"html/template"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/otpscope/otpscope/internal/store"
)

// The HTML report's charts are SVG written here rather than in the page's
// template: every position is arithmetic, and every piece of text goes
// through template.HTMLEscapeString before it is part of the SVG.

// svgChart is one figure of the HTML report.
type svgChart struct {
	Title string
	SVG   template.HTML
}

const (
	svgWidth   = 640
	barLeft    = 150.0 // labels to the left of it
	barWidth   = 360.0
	barRow     = 24.0
	plotTop    = 12.0
	lineLeft   = 56.0
	lineWidth  = 440.0
	lineHeight = 160.0
)

// channelColors are the trend lines' colours by name, a channel the same
// whatever its rank and the same as on the console's charts
// (internal/console/assets/app.js; a test holds them alike): Okabe and
// Ito's palette, told apart with the common colour blindnesses too. Any
// other channel is grey; the fallback rate of all channels black.
var channelColors = map[string]string{"SMS": "#0072b2", "VOICE": "#e69f00", "VIBER": "#cc79a7", "WHATSAPP": "#009e73",
	"SILENT": "#d55e00", "PUSH": "#56b4e9", allChannels: "#000000"}

const (
	otherColor  = "#999999"
	allChannels = "all channels"
)

func lineColor(name string) string { return cmp.Or(channelColors[name], otherColor) }

// axis is a linear scale from [0, Max] onto pixels, with labelled ticks.
type axis struct {
	Max    float64
	Ticks  []float64
	Format func(float64) string
}

// rateAxis runs 0–100 % in steps of 20 %.
func rateAxis() axis {
	return axis{Max: 1, Ticks: []float64{0, .2, .4, .6, .8, 1}, Format: func(x float64) string { return strconv.FormatFloat(100*x, 'f', 0, 64) + "%" }}
}

// countAxis runs from 0 to top rounded up to a step of 1, 2 or 5 × 10ⁿ.
func countAxis(top float64) axis {
	top = max(top, 1)
	raw := top / 4
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 5, 10} {
		if step = m * mag; step >= raw {
			break
		}
	}
	step = max(step, 1)
	a := axis{Max: math.Ceil(top/step) * step, Format: func(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }}
	for x := 0.0; x <= a.Max+step/2; x += step {
		a.Ticks = append(a.Ticks, x)
	}
	return a
}

func (a axis) scale(x, pixels float64) float64 {
	if a.Max <= 0 {
		return 0
	}
	return pixels * min(max(x, 0), a.Max) / a.Max
}

// threshold is an alert rule's limit drawn on a chart.
type threshold struct {
	Value float64
	Label string
}

func esc(s string) string { return template.HTMLEscapeString(s) }

// labelWidth is about how wide s is drawn at the charts' 12 px: 7 px a
// character, more than most take.
func labelWidth(s string) float64 { return 7 * float64(utf8.RuneCountInString(s)) }

func f1(x float64) string { return strconv.FormatFloat(x, 'f', 1, 64) }

// barRows is one horizontal bar per label, a value axis below with vertical
// gridlines, and the thresholds as dashed lines across the bars.
func barRows(title string, labels, shown []string, values []float64, ax axis, color string, marks []threshold) svgChart {
	var b strings.Builder
	n := float64(len(labels))
	axisY := plotTop + barRow*n + 2
	height := int(axisY + 36)
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="%s" width="%d" height="%d" viewBox="0 0 %d %d">`, esc(title), svgWidth, height, svgWidth, height)
	b.WriteString(`<g class="grid">`)
	for _, t := range ax.Ticks {
		x := barLeft + ax.scale(t, barWidth)
		fmt.Fprintf(&b, `<line class="gridline" x1="%s" y1="%s" x2="%s" y2="%s" stroke="#e0e0e0"></line>`, f1(x), f1(plotTop-4), f1(x), f1(axisY))
	}
	b.WriteString(`</g>`)
	for i := range labels {
		y := plotTop + barRow*float64(i)
		w := ax.scale(values[i], barWidth)
		// The value's text follows the bar, or ends inside it in white
		// where it would run past the chart's edge.
		value := fmt.Sprintf(`x="%s"`, f1(barLeft+w+6))
		if tw := labelWidth(shown[i]); barLeft+w+6+tw > svgWidth && tw+12 <= w {
			value = fmt.Sprintf(`class="inside" x="%s" text-anchor="end" fill="#fff"`, f1(barLeft+w-6))
		}
		fmt.Fprintf(&b, `<g><text x="0" y="%s" dy="14">%s</text><rect class="bar" x="%s" y="%s" width="%s" height="18" fill="%s"></rect><text %s y="%s" dy="14">%s</text></g>`,
			f1(y), esc(labels[i]), f1(barLeft), f1(y), f1(w), color, value, f1(y), esc(shown[i]))
	}
	fmt.Fprintf(&b, `<g class="axis x-axis"><line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#444"></line>`, f1(barLeft), f1(axisY), f1(barLeft+barWidth), f1(axisY))
	for _, t := range ax.Ticks {
		x := barLeft + ax.scale(t, barWidth)
		fmt.Fprintf(&b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#444"></line><text class="tick" data-x="%s" x="%s" y="%s" text-anchor="middle">%s</text>`,
			f1(x), f1(axisY), f1(x), f1(axisY+4), f1(x), f1(x), f1(axisY+16), esc(ax.Format(t)))
	}
	b.WriteString(`</g>`)
	for _, m := range marks {
		x := barLeft + ax.scale(m.Value, barWidth)
		fmt.Fprintf(&b, `<g class="threshold" data-value="%s" data-x="%s"><line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#c62828" stroke-width="2" stroke-dasharray="5 3"></line><text x="%s" y="%s" fill="#c62828" text-anchor="middle">%s</text></g>`,
			strconv.FormatFloat(m.Value, 'g', -1, 64), f1(x), f1(x), f1(plotTop-6), f1(x), f1(axisY), f1(x), f1(axisY+30), esc(m.Label))
	}
	b.WriteString(`</svg>`)
	return svgChart{Title: title, SVG: template.HTML(b.String())}
}

// line is one series of a trend chart; a nil point is a gap. A line of
// the window before (Before) is drawn thin, dashed and paler, under the
// window's, bucket beside bucket, and shares one legend row with the
// others of it.
type line struct {
	Name   string
	Points []*float64
	Before bool
}

// trendChart draws series over the buckets starting at starts (on the
// clock of zone, an IANA name), with a time axis, a value axis, horizontal
// gridlines, a legend and the thresholds as dashed horizontal lines; the
// lines of the window before first, under the others.
func trendChart(title string, starts []time.Time, step time.Duration, zone string, lines []line, ax axis, marks []threshold) svgChart {
	var b strings.Builder
	height := int(plotTop + lineHeight + 40)
	bottom := plotTop + lineHeight
	n := len(starts)
	xAt := func(i int) float64 { // the middle of bucket i
		return lineLeft + lineWidth*(float64(i)+0.5)/float64(max(n, 1))
	}
	yAt := func(v float64) float64 { return bottom - ax.scale(v, lineHeight) }
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="%s" width="%d" height="%d" viewBox="0 0 %d %d">`, esc(title), svgWidth, height, svgWidth, height)
	b.WriteString(`<g class="grid">`)
	for _, t := range ax.Ticks {
		fmt.Fprintf(&b, `<line class="gridline" x1="%s" y1="%s" x2="%s" y2="%s" stroke="#e0e0e0"></line>`, f1(lineLeft), f1(yAt(t)), f1(lineLeft+lineWidth), f1(yAt(t)))
	}
	b.WriteString(`</g>`)
	fmt.Fprintf(&b, `<g class="axis y-axis"><line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#444"></line>`, f1(lineLeft), f1(plotTop), f1(lineLeft), f1(bottom))
	for _, t := range ax.Ticks {
		y := yAt(t)
		fmt.Fprintf(&b, `<text class="tick" data-y="%s" x="%s" y="%s" dy="4" text-anchor="end">%s</text>`, f1(y), f1(lineLeft-6), f1(y), esc(ax.Format(t)))
	}
	b.WriteString(`</g>`)
	fmt.Fprintf(&b, `<g class="axis x-axis"><line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#444"></line>`, f1(lineLeft), f1(bottom), f1(lineLeft+lineWidth), f1(bottom))
	layout := "15:04"
	if n > 0 && starts[n-1].Sub(starts[0]) >= 24*time.Hour {
		layout = "01-02 15:04"
	}
	every := max(1, (n+5)/6) // at most about six labels
	for i := 0; i < n; i += every {
		x := xAt(i)
		fmt.Fprintf(&b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#444"></line><text class="tick" x="%s" y="%s" text-anchor="middle">%s</text>`,
			f1(x), f1(bottom), f1(x), f1(bottom+4), f1(x), f1(bottom+16), esc(starts[i].Format(layout)))
	}
	fmt.Fprintf(&b, `<text x="%s" y="%s" text-anchor="middle" fill="#666">%s, buckets of %s</text></g>`, f1(lineLeft+lineWidth/2), f1(bottom+32), esc(cmp.Or(zone, "UTC")), esc(humanDuration(step)))
	// The legend, right of the plot, a row each: the thresholds first (a
	// dashed swatch, as their lines), then the series. A threshold's label
	// at its line's height would fall among the series' rows.
	legendY := func(row int) float64 { return plotTop + 16*float64(row) }
	for i, m := range marks {
		y, ly := yAt(m.Value), legendY(i)
		fmt.Fprintf(&b, `<g class="threshold" data-value="%s" data-y="%s"><line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#c62828" stroke-width="2" stroke-dasharray="5 3"></line>`+
			`<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#c62828" stroke-width="2" stroke-dasharray="5 3"></line><text x="%s" y="%s" dy="9" fill="#c62828">%s</text></g>`,
			strconv.FormatFloat(m.Value, 'g', -1, 64), f1(y), f1(lineLeft), f1(y), f1(lineLeft+lineWidth), f1(y),
			f1(lineLeft+lineWidth+8), f1(ly+5), f1(lineLeft+lineWidth+18), f1(ly+5), f1(lineLeft+lineWidth+22), f1(ly), esc(m.Label))
	}
	rows := len(marks)
	// A line of the window before with no point is left out, and so is
	// the legend's row when none is left: it would name nothing drawn.
	lines = slices.DeleteFunc(slices.Clone(lines), func(l line) bool {
		return l.Before && !slices.ContainsFunc(l.Points, func(p *float64) bool { return p != nil })
	})
	// The window before's lines first, under the window's.
	under := append(slices.DeleteFunc(slices.Clone(lines), func(l line) bool { return !l.Before }), slices.DeleteFunc(slices.Clone(lines), func(l line) bool { return l.Before })...)
	for _, l := range under {
		color := lineColor(l.Name)
		var d strings.Builder
		pen := false
		var dots strings.Builder
		for i, p := range l.Points {
			if p == nil {
				pen = false
				continue
			}
			cmd := "L"
			if !pen {
				cmd = "M"
			}
			fmt.Fprintf(&d, "%s%s %s ", cmd, f1(xAt(i)), f1(yAt(*p)))
			if !l.Before {
				fmt.Fprintf(&dots, `<circle cx="%s" cy="%s" r="2" fill="%s"></circle>`, f1(xAt(i)), f1(yAt(*p)), color)
			}
			pen = true
		}
		if l.Before {
			fmt.Fprintf(&b, `<g class="series before" data-name="%s"><path d="%s" fill="none" stroke="%s" stroke-width="1" stroke-dasharray="4 3" stroke-opacity="0.6"></path></g>`, esc(l.Name), strings.TrimSpace(d.String()), color)
			continue
		}
		fmt.Fprintf(&b, `<g class="series" data-name="%s"><path d="%s" fill="none" stroke="%s" stroke-width="2"></path>%s</g>`, esc(l.Name), strings.TrimSpace(d.String()), color, dots.String())
		ly := legendY(rows)
		rows++
		fmt.Fprintf(&b, `<g class="legend"><rect x="%s" y="%s" width="10" height="10" fill="%s"></rect><text x="%s" y="%s" dy="9">%s</text></g>`,
			f1(lineLeft+lineWidth+8), f1(ly), color, f1(lineLeft+lineWidth+22), f1(ly), esc(l.Name))
	}
	if slices.ContainsFunc(lines, func(l line) bool { return l.Before }) {
		ly := legendY(rows)
		fmt.Fprintf(&b, `<g class="legend before"><line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#666" stroke-width="1" stroke-dasharray="4 3"></line><text x="%s" y="%s" dy="9">%s</text></g>`,
			f1(lineLeft+lineWidth+6), f1(ly+5), f1(lineLeft+lineWidth+18), f1(ly+5), f1(lineLeft+lineWidth+22), f1(ly), "window before")
	}
	b.WriteString(`</svg>`)
	return svgChart{Title: title, SVG: template.HTML(b.String())}
}

// humanDuration writes d the way a person reads it: 850 ms, 2.9 s, 12 s,
// 1 min 4 s, 2 h 5 min. It is for spans (a chart's buckets); latencies are
// fmtLatency's.
func humanDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return strconv.FormatInt(d.Milliseconds(), 10) + " ms"
	case d < 10*time.Second:
		return strconv.FormatFloat(math.Round(d.Seconds()*10)/10, 'f', -1, 64) + " s"
	case d < time.Minute:
		return strconv.Itoa(int(d.Round(time.Second)/time.Second)) + " s"
	case d < time.Hour:
		d = d.Round(time.Second)
		return joinUnits(int(d/time.Minute), "min", int(d%time.Minute/time.Second), "s")
	case d < 24*time.Hour:
		d = d.Round(time.Minute)
		return joinUnits(int(d/time.Hour), "h", int(d%time.Hour/time.Minute), "min")
	}
	d = d.Round(time.Hour)
	return joinUnits(int(d/(24*time.Hour)), "d", int(d%(24*time.Hour)/time.Hour), "h")
}

func joinUnits(a int, au string, b int, bu string) string {
	s := strconv.Itoa(a) + " " + au
	if b != 0 {
		s += " " + strconv.Itoa(b) + " " + bu
	}
	return s
}

// fmtLatency is a latency in milliseconds as the console's fmtMs writes
// it: under a second in whole milliseconds, above in seconds to a tenth
// ("16.6 s", "60.4 s"; not "17 s", nor "1 min", which a p95 of 60.4 s
// above a threshold of 1 min read as). Reports, alerts and the console
// then read alike.
func fmtLatency(ms float64) string { return fmtLatencyDigits(ms, 0) }

// fmtLatencyDigits is fmtLatency with extra digits more.
func fmtLatencyDigits(ms float64, extra int) string {
	if ms < 1000 {
		if extra == 0 {
			ms = math.Round(ms) // half up, as JavaScript's Math.round
		}
		return strconv.FormatFloat(ms, 'f', extra, 64) + " ms"
	}
	if extra == 0 {
		return toFixed1(ms/1000) + " s"
	}
	return strconv.FormatFloat(ms/1000, 'f', 1+extra, 64) + " s"
}

// toFixed1 is x to one decimal as JavaScript's toFixed(1), the console's,
// writes it: Go rounds an exact half to even (16.25 to 16.2), JavaScript
// up. Only quarters are exact halves of a tenth in binary.
func toFixed1(x float64) string {
	if f := x - math.Floor(x); f == 0.25 || f == 0.75 {
		x += 0.05
	}
	return strconv.FormatFloat(x, 'f', 1, 64)
}

// humanMS is a percentile in milliseconds as fmtLatency writes it; "–" for
// none.
func humanMS(p *store.Percentiles, p95 bool) string {
	if p == nil {
		return "–"
	}
	ms := p.P50
	if p95 {
		ms = p.P95
	}
	return fmtLatency(ms)
}
