package reporter_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/problem"
	"github.com/otpscope/otpscope/internal/reporter"
	"github.com/otpscope/otpscope/internal/store"
)

// htmlDoc is what the HTML report holds, read back with a lenient XML parser.
type htmlDoc struct {
	svgs, bars, scripts, external, ths int
	cells                              map[string][]string // table id → cell texts, in order
	figures                            []figure
	ids                                map[string]string // element id → its text
}

// figure is one chart: its caption, tick labels and threshold markers.
type figure struct {
	title     string
	bars      int
	gridlines int
	axes      []string          // the axis classes (x-axis, y-axis)
	ticks     map[string]string // tick label → its position (data-x or data-y)
	marks     []map[string]string
}

func attrs(x xml.StartElement) map[string]string {
	m := map[string]string{}
	for _, a := range x.Attr {
		m[a.Name.Local] = a.Value
	}
	return m
}

func parseHTML(t *testing.T, b []byte) htmlDoc {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict, d.AutoClose, d.Entity = false, xml.HTMLAutoClose, xml.HTMLEntity
	doc := htmlDoc{cells: map[string][]string{}, ids: map[string]string{}}
	table, inCell := "", false
	var text strings.Builder
	var fig *figure
	var tick map[string]string // the tick <text> being read
	var tickText, idText, caption strings.Builder
	idOpen, inCaption := "", false
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("HTML report does not parse: %v", err)
		}
		switch x := tok.(type) {
		case xml.StartElement:
			at := attrs(x)
			if id := at["id"]; id != "" && x.Name.Local != "table" {
				idOpen = id
				idText.Reset()
			}
			switch x.Name.Local {
			case "figure":
				doc.figures = append(doc.figures, figure{ticks: map[string]string{}})
				fig = &doc.figures[len(doc.figures)-1]
			case "figcaption":
				inCaption = true
				caption.Reset()
			case "svg":
				doc.svgs++
			case "rect":
				if at["class"] == "bar" {
					doc.bars++
					fig.bars++
				}
			case "line":
				if at["class"] == "gridline" {
					fig.gridlines++
				}
			case "g":
				switch c := at["class"]; {
				case strings.HasPrefix(c, "axis "):
					fig.axes = append(fig.axes, strings.TrimPrefix(c, "axis "))
				case c == "threshold":
					fig.marks = append(fig.marks, at)
				}
			case "text":
				if at["class"] == "tick" {
					tick = at
					tickText.Reset()
				}
			case "script":
				doc.scripts++
			case "th":
				doc.ths++
			case "table":
				table = at["id"]
			case "td":
				inCell = true
				text.Reset()
			}
			for _, a := range x.Attr {
				if (a.Name.Local == "src" || a.Name.Local == "href") && strings.Contains(a.Value, "//") {
					doc.external++
				}
			}
		case xml.CharData:
			if inCell {
				text.Write(x)
			}
			if tick != nil {
				tickText.Write(x)
			}
			if inCaption {
				caption.Write(x)
			}
			if idOpen != "" {
				idText.Write(x)
			}
		case xml.EndElement:
			switch x.Name.Local {
			case "td":
				inCell = false
				doc.cells[table] = append(doc.cells[table], strings.TrimSpace(text.String()))
			case "table":
				table = ""
			case "figcaption":
				inCaption = false
				fig.title = strings.TrimSpace(caption.String())
			case "text":
				if tick != nil {
					fig.ticks[strings.TrimSpace(tickText.String())] = tick["data-x"] + tick["data-y"]
					tick = nil
				}
			case "p":
				if idOpen != "" {
					doc.ids[idOpen] = strings.TrimSpace(idText.String())
					idOpen = ""
				}
			}
		}
	}
	return doc
}

func (tr *traffic) window() store.Window {
	return store.Window{From: simStart.Add(-time.Hour), To: tr.truth.At.Add(time.Hour)}
}

func testReports(t *testing.T, tr *traffic) {
	ctx := t.Context()
	w := tr.window()
	chs, err := tr.f.DB.Channels(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	fb, err := tr.f.DB.Fallback(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	cfg := reporter.ReportCLIConfig{From: w.From.Format(time.RFC3339), To: w.To.Format(time.RFC3339)}

	t.Run("html", func(t *testing.T) {
		cfg := cfg
		cfg.Format = "html"
		cfg.Thresholds = reporter.Thresholds{MinDeliveryRate: 0.9, MaxFallbackRate: 0.3}
		var b bytes.Buffer
		if err := reporter.WriteReport(ctx, tr.f.DB, cfg, time.Now(), &b); err != nil {
			t.Fatal(err)
		}
		doc := parseHTML(t, b.Bytes())
		// The methods are channels like the others, and their paths are paths.
		for _, want := range []string{">SILENT<", ">PUSH<", "SILENT&gt;", "PUSH&gt;"} {
			if !bytes.Contains(b.Bytes(), []byte(want)) {
				t.Errorf("HTML report lacks %s", want)
			}
		}
		// Three trend charts, then rate, volume and time to deliver per
		// channel, outcomes, paths.
		if doc.svgs != 8 || doc.scripts != 0 || doc.external != 0 {
			t.Errorf("HTML report has %d charts, %d scripts, %d external references; want 8, 0, 0", doc.svgs, doc.scripts, doc.external)
		}
		delivered := 0
		for _, c := range chs {
			if c.LatencyMS == nil {
				continue
			}
			delivered++
			// Each delivering channel's bar says its p50 and p95.
			want := fmt.Sprintf("p50 %s · p95 %s", reporter.HumanMS(c.LatencyMS, false), reporter.HumanMS(c.LatencyMS, true))
			if !bytes.Contains(b.Bytes(), []byte(want)) {
				t.Errorf("HTML report lacks %s's time to deliver, %q", c.Channel, want)
			}
		}
		if delivered == 0 {
			t.Fatal("no channel delivered: the time to deliver chart is not tried")
		}
		if want := 2*len(chs) + delivered + 4 + len(fb.Paths); doc.bars != want {
			t.Errorf("HTML report has %d bars; want %d", doc.bars, want)
		}
		marks := map[string]float64{"Delivery rate over time": 0.9, "Delivery rate per channel": 0.9, "Fallback rate over time": 0.3}
		for _, f := range doc.figures {
			if len(f.axes) == 0 || f.gridlines < 2 || len(f.ticks) < 2 {
				t.Errorf("chart %q has axes %v, %d gridlines, ticks %v; want an axis with ticks and gridlines", f.title, f.axes, f.gridlines, f.ticks)
			}
			if strings.HasSuffix(f.title, "over time") && !slices.Contains(f.axes, "x-axis") {
				t.Errorf("trend %q has no time axis", f.title)
			}
			want, ok := marks[f.title]
			if !ok {
				if len(f.marks) != 0 {
					t.Errorf("chart %q marks %v; want no threshold", f.title, f.marks)
				}
				continue
			}
			delete(marks, f.title)
			if len(f.marks) != 1 {
				t.Errorf("chart %q has %d threshold markers; want 1", f.title, len(f.marks))
				continue
			}
			m := f.marks[0]
			// The marker sits where the rate axis puts its value: between
			// the 0% and 100% ticks, in proportion.
			p0, err0 := strconv.ParseFloat(f.ticks["0%"], 64)
			p100, err100 := strconv.ParseFloat(f.ticks["100%"], 64)
			pos, err := strconv.ParseFloat(m["data-x"]+m["data-y"], 64)
			if err0 != nil || err100 != nil || err != nil {
				t.Fatalf("chart %q: ticks %v, marker %v", f.title, f.ticks, m)
			}
			if m["data-value"] != strconv.FormatFloat(want, 'g', -1, 64) || math.Abs(pos-(p0+want*(p100-p0))) > 0.2 {
				t.Errorf("chart %q marks %v at %v; want %v at %.1f (0%% at %v, 100%% at %v)", f.title, m["data-value"], pos, want, p0+want*(p100-p0), p0, p100)
			}
		}
		if len(marks) != 0 {
			t.Errorf("charts missing: %v", marks)
		}
		cells := doc.cells["channels"]
		const cols = 12
		if len(cells) != cols*len(chs) {
			t.Fatalf("channels table has %d cells; want %d", len(cells), cols*len(chs))
		}
		human := regexp.MustCompile(`^(\d+ ms|\d+\.\d s|–)$`) // as the console's fmtMs
		for i, c := range chs {
			row := cells[cols*i : cols*i+cols]
			want := []string{c.Channel, strconv.FormatUint(c.Attempts, 10), strconv.FormatUint(c.Delivered, 10), strconv.FormatUint(c.Failed, 10),
				strconv.FormatUint(c.Undeliverable, 10), strconv.FormatUint(c.TimedOut, 10)}
			if !slices.Equal(row[:len(want)], want) {
				t.Errorf("channels row %d = %v; want %v", i, row, want)
			}
			if !human.MatchString(row[9]) || !human.MatchString(row[10]) {
				t.Errorf("channels row %d latencies %q, %q; want human durations", i, row[9], row[10])
			}
		}
		// The traffic has settled: the page says its figures are final.
		if c := doc.cells["completeness-figures"]; len(c) != 6 || c[1] != "0" || c[3] != "0" {
			t.Errorf("completeness table = %v; want nothing pending", c)
		}
		if !bytes.Contains(b.Bytes(), []byte("Final: every attempt in the window has settled.")) {
			t.Error("the HTML report does not say its figures are final")
		}
		if j := doc.cells["journeys"]; len(j) < 4 || j[0] != "Journeys (logins)" || j[1] != strconv.FormatUint(fb.OTPs, 10) || j[2] != "Journeys with fallback" {
			t.Errorf("journeys table starts %v; want Journeys (logins) %d, then those with fallback", j, fb.OTPs)
		}
		if _, ok := doc.ids["no-data"]; ok {
			t.Error("a report with data says it has none")
		}
	})

	t.Run("html without data", func(t *testing.T) {
		cfg := reporter.ReportCLIConfig{From: "2001-01-01T00:00:00Z", To: "2001-01-02T00:00:00Z", Format: "html",
			Thresholds: reporter.Thresholds{MinDeliveryRate: 0.8}}
		var b bytes.Buffer
		if err := reporter.WriteReport(ctx, tr.f.DB, cfg, time.Now(), &b); err != nil {
			t.Fatal(err)
		}
		doc := parseHTML(t, b.Bytes())
		if !strings.HasPrefix(doc.ids["no-data"], "No data") {
			t.Errorf("an empty window's report says %q; want it to say there is no data", doc.ids["no-data"])
		}
		if doc.ths != 0 || doc.svgs != 0 || len(doc.cells["channels"]) != 0 || len(doc.cells["errors"]) != 0 {
			t.Errorf("an empty window's report has %d headers, %d charts, tables %v; want none", doc.ths, doc.svgs, doc.cells)
		}
		if !strings.HasPrefix(doc.ids["completeness"], "Final") {
			t.Errorf("completeness note %q", doc.ids["completeness"])
		}
	})

	t.Run("csv and json", func(t *testing.T) {
		for _, format := range []string{"csv", "json", "table"} {
			cfg := cfg
			cfg.Format = format
			var b bytes.Buffer
			if err := reporter.WriteReport(ctx, tr.f.DB, cfg, time.Now(), &b); err != nil {
				t.Fatal(err)
			}
			switch format {
			case "csv":
				recs, err := csv.NewReader(&b).ReadAll()
				if err != nil {
					t.Fatal(err)
				}
				found := false
				got := map[string]string{}
				for _, r := range recs {
					if r[0] == "journeys" && r[2] == "otps" {
						found = r[3] == strconv.FormatUint(fb.OTPs, 10)
					}
					got[r[0]+","+r[1]+","+r[2]] = r[3]
				}
				if !found {
					t.Errorf("CSV has no journeys,otps = %d", fb.OTPs)
				}
				// Every count of /channels is there, as in the JSON.
				for _, c := range chs {
					want := map[string]uint64{"unknown_status": c.UnknownStatus, "recovered_by_polling": c.RecoveredByPolling, "unrecoverable": c.Unrecoverable}
					if v := c.Verification; v != nil {
						want["verification_polled"], want["verification_verified"] = v.Polled, v.Verified
					}
					for metric, n := range want {
						if g := got["channel,"+c.Channel+","+metric]; g != strconv.FormatUint(n, 10) {
							t.Errorf("CSV channel,%s,%s = %q; want %d", c.Channel, metric, g, n)
						}
					}
				}
			case "json":
				var rep reporter.Report
				if err := json.Unmarshal(b.Bytes(), &rep); err != nil {
					t.Fatal(err)
				}
				if rep.Fallback.OTPs != fb.OTPs || len(rep.Channels) != len(chs) || rep.Channels[0].Attempts != chs[0].Attempts {
					t.Errorf("JSON report = %+v; want the API's figures", rep)
				}
				// The trend's buckets add up to the window's figures.
				if rep.Trend == nil || len(rep.Trend.Start) == 0 || len(rep.Trend.Start) > 48 {
					t.Fatalf("JSON report trend %+v; want up to 48 buckets", rep.Trend)
				}
				for _, c := range chs {
					var sum uint64
					for _, s := range rep.Trend.Channels {
						if s.Channel == c.Channel {
							for _, n := range s.Attempts {
								sum += n
							}
						}
					}
					if sum != c.Attempts {
						t.Errorf("trend of %s adds up to %d attempts; the window has %d", c.Channel, sum, c.Attempts)
					}
				}
			case "table":
				if !strings.Contains(b.String(), chs[0].Channel) || !strings.Contains(b.String(), "Journeys (logins) "+strconv.FormatUint(fb.OTPs, 10)+", with fallback "+strconv.FormatUint(fb.FallbackOTPs, 10)) {
					t.Errorf("table report:\n%s", b.String())
				}
			}
		}
	})

	// A report of the traffic's later part sets its rates beside those of
	// the window before, the earlier part, as /channels and /fallback
	// answer for it, in every form.
	t.Run("the window before", func(t *testing.T) {
		// The logins come in the simulation's first minutes, their last
		// facts until truth.At: both sides of mid have some.
		mid := simStart.Add(3 * time.Minute)
		// Whole hours long: the window before's trend buckets are then the
		// window's, shifted.
		end := mid.Add(w.To.Sub(mid).Truncate(time.Hour) + time.Hour)
		first := store.Window{From: mid.Add(-end.Sub(mid)), To: mid}
		chsBefore, err := tr.f.DB.Channels(ctx, first)
		if err != nil {
			t.Fatal(err)
		}
		fbBefore, err := tr.f.DB.Fallback(ctx, first)
		if err != nil {
			t.Fatal(err)
		}
		chsAfter, err := tr.f.DB.Channels(ctx, store.Window{From: mid, To: end})
		if err != nil {
			t.Fatal(err)
		}
		if len(chsBefore) == 0 || fbBefore.FallbackRate == nil || len(chsAfter) == 0 {
			t.Fatalf("channels %v before %s (fallback rate %v), %v after: want traffic on both sides", chsBefore, mid, fbBefore.FallbackRate, chsAfter)
		}
		pct := func(x *float64) string {
			if x == nil {
				return "–"
			}
			return strconv.FormatFloat(100**x, 'f', 1, 64) + "%"
		}
		cfg := reporter.ReportCLIConfig{From: mid.Format(time.RFC3339), To: end.Format(time.RFC3339)}
		out := map[string]*bytes.Buffer{}
		for _, format := range []string{"json", "html", "csv"} {
			cfg.Format = format
			out[format] = &bytes.Buffer{}
			if err := reporter.WriteReport(ctx, tr.f.DB, cfg, time.Now(), out[format]); err != nil {
				t.Fatal(err)
			}
		}
		var rep reporter.Report
		if err := json.Unmarshal(out["json"].Bytes(), &rep); err != nil {
			t.Fatal(err)
		}
		if b := rep.Before; b == nil || !b.From.Equal(first.From) || !b.To.Equal(mid) || len(b.Channels) != len(chsBefore) ||
			b.Fallback.OTPs != fbBefore.OTPs || pct(b.Fallback.FallbackRate) != pct(fbBefore.FallbackRate) {
			t.Fatalf("the report's window before: %+v; want [%s, %s) with /channels' %v and %d journeys", b, first.From, mid, chsBefore, fbBefore.OTPs)
		}
		before := map[string]*float64{}
		for _, c := range chsBefore {
			before[c.Channel] = c.DeliveryRate
		}
		recs, err := csv.NewReader(out["csv"]).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, r := range recs {
			got[r[0]+","+r[1]+","+r[2]] = r[3]
		}
		doc := parseHTML(t, out["html"].Bytes())
		const cols = 12
		cells := doc.cells["channels"]
		if len(cells) != cols*len(rep.Channels) {
			t.Fatalf("channels table has %d cells; want %d", len(cells), cols*len(rep.Channels))
		}
		for i, c := range rep.Channels {
			if got := cells[cols*i+8]; got != pct(before[c.Channel]) {
				t.Errorf("HTML: %s's rate before = %q; want %q", c.Channel, got, pct(before[c.Channel]))
			}
		}
		for _, c := range chsBefore {
			want := "" // no settled attempt
			if c.DeliveryRate != nil {
				want = strconv.FormatFloat(*c.DeliveryRate, 'f', 4, 64)
			}
			if g, ok := got["channel_before,"+c.Channel+",delivery_rate"]; !ok || g != want {
				t.Errorf("CSV channel_before,%s,delivery_rate = %q; want %q", c.Channel, g, want)
			}
		}
		if j := doc.cells["journeys"]; !slices.Contains(j, "Fallback rate before") || j[slices.Index(j, "Fallback rate before")+1] != pct(fbBefore.FallbackRate) {
			t.Errorf("HTML journeys %v; want the fallback rate before, %s", j, pct(fbBefore.FallbackRate))
		}
		// Its trend, on the window's buckets, as /timeseries answers for
		// it, which the HTML's trend charts draw under the window's lines.
		if rep.Trend == nil || rep.Before.Trend == nil {
			t.Fatalf("trend %v, the window before's %v; want both", rep.Trend, rep.Before.Trend)
		}
		// (step_seconds read back as a Duration: seconds as nanoseconds.)
		ts, err := tr.f.DB.Timeseries(ctx, first, time.Duration(rep.Trend.Step)*time.Second, time.UTC)
		if err != nil {
			t.Fatal(err)
		}
		bt := rep.Before.Trend
		if !slices.EqualFunc(bt.Start, ts.Start, time.Time.Equal) || bt.Step != rep.Trend.Step || len(bt.Start) != len(rep.Trend.Start) || len(bt.Channels) != len(ts.Channels) {
			t.Fatalf("the window before's trend %d buckets of %v from %v; want /timeseries' %d of the window's step %v", len(bt.Start), bt.Step, bt.Start, len(ts.Start), rep.Trend.Step)
		}
		html := out["html"].String()
		drawn := 0
		for i, c := range ts.Channels {
			if !slices.Equal(bt.Channels[i].Attempts, c.Attempts) {
				t.Errorf("%s's attempts the window before %v; want /timeseries' %v", c.Channel, bt.Channels[i].Attempts, c.Attempts)
			}
			if slices.ContainsFunc(rep.Trend.Channels, func(s store.Series) bool { return s.Channel == c.Channel }) {
				drawn++
				if n := strings.Count(html, `<g class="series before" data-name="`+c.Channel+`">`); n != 2 {
					t.Errorf("HTML draws %s's window before on %d trend charts; want 2 (delivery rate, attempts)", c.Channel, n)
				}
			}
		}
		if drawn == 0 || strings.Count(html, `<g class="series before" data-name="all channels">`) != 1 || strings.Count(html, `<g class="legend before">`) != 3 {
			t.Errorf("HTML draws no channel's window before, or not the fallback rate's, or not every trend's legend row")
		}
		// A window of whole hours and 7 s: its buckets shifted by it are
		// not the window before's, which has no trend.
		odd := cfg
		odd.Format, odd.To = "json", end.Add(7*time.Second).Format(time.RFC3339)
		var b bytes.Buffer
		if err := reporter.WriteReport(ctx, tr.f.DB, odd, time.Now(), &b); err != nil {
			t.Fatal(err)
		}
		var oddRep reporter.Report
		if err := json.Unmarshal(b.Bytes(), &oddRep); err != nil || oddRep.Before == nil || oddRep.Trend == nil || oddRep.Before.Trend != nil {
			t.Errorf("a report of a window of whole hours and 7 s: %v, trend %v, the window before %+v; want no trend of the window before", err, oddRep.Trend != nil, oddRep.Before)
		}
	})

	t.Run("resends", func(t *testing.T) {
		// Two decisions of a profile of their own (the dashboards' test
		// adds others to the window): a send whose OTP never delivered,
		// and a dry-run.
		const profile = "profile-report-resends"
		for i, r := range []events.Resend{
			{Result: events.ResendSent, Via: "VOICE", TriggerChannel: events.ChannelSMS, TriggerStatus: events.StatusUndeliverable},
			{Result: events.ResendDryRun, Via: "SMS", TriggerChannel: events.ChannelViber, TriggerStatus: events.StatusTimedOut, DryRun: true},
		} {
			r.OTPID, r.ProfileID, r.DecisionID, r.Attempt = fmt.Sprintf("00000000-0000-4000-8000-0000000e0e0%d", i), profile, fmt.Sprintf("report-%d", i), 1
			r.DecidedAt = w.From.Add(time.Minute)
			m, err := events.NewResendMessage(&r)
			if err != nil {
				t.Fatal(err)
			}
			if err := tr.f.Broker.Publish(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
		tr.f.WaitCount(t, "SELECT count() FROM resends WHERE profile_id = '"+profile+"'", 2)
		cfg := cfg
		cfg.Profile = profile
		out := map[string]string{}
		for _, format := range []string{"json", "csv", "table", "html"} {
			cfg.Format = format
			var b bytes.Buffer
			if err := reporter.WriteReport(ctx, tr.f.DB, cfg, time.Now(), &b); err != nil {
				t.Fatal(err)
			}
			out[format] = b.String()
		}
		var rep reporter.Report
		if err := json.Unmarshal([]byte(out["json"]), &rep); err != nil {
			t.Fatal(err)
		}
		if len(rep.Resends) != 2 || rep.Resends[0].Decisions != 1 || rep.Resends[0].NotDelivered != 1 || rep.Resends[1].Decisions != 1 {
			t.Errorf("report resends %+v; want the two decisions, their OTPs not delivered", rep.Resends)
		}
		for format, want := range map[string][]string{
			"csv":   {"resend,dryrun VIBER TIMED_OUT > SMS,decisions,1", "resend,sent SMS UNDELIVERABLE > VOICE,not_delivered,1"},
			"table": {"Resend decisions: 2", "sent SMS UNDELIVERABLE > VOICE"},
			"html":  {`<table id="resends">`, "<td>dryrun</td><td>VIBER TIMED_OUT</td><td>SMS</td><td>1</td>"},
		} {
			for _, w := range want {
				if !strings.Contains(out[format], w) {
					t.Errorf("%s report lacks %q:\n%s", format, w, out[format])
				}
			}
		}
		// A window without decisions says so.
		cfg.Format, cfg.From, cfg.To = "html", w.To.Add(time.Hour).Format(time.RFC3339), w.To.Add(2*time.Hour).Format(time.RFC3339)
		var b bytes.Buffer
		if err := reporter.WriteReport(ctx, tr.f.DB, cfg, time.Now(), &b); err != nil || !strings.Contains(b.String(), `id="no-resends"`) {
			t.Errorf("a report without resends: %v\n%s", err, b.String())
		}
	})

	t.Run("summary published and written", func(t *testing.T) {
		got := subscribe(t, tr, events.SubjectRoot+".report.>")
		dir := t.TempDir()
		r := reporter.NewReports(reporter.ReportsConfig{Dir: dir}, tr.f.DB, tr.f.Broker, brokertest.Logger(t), nil)
		if err := r.Summary(ctx, reporter.KindHourly, w.From, w.To); err != nil {
			t.Fatal(err)
		}
		msg := got.next(t)
		var rep reporter.Report
		if err := json.Unmarshal(msg.Data, &rep); err != nil {
			t.Fatal(err)
		}
		if msg.Subject != events.ReportSubject(reporter.KindHourly) || rep.Fallback.OTPs != fb.OTPs || msg.Header.Get(events.HeaderMsgID) == "" {
			t.Errorf("published %s %+v", msg.Subject, rep.Fallback)
		}
		for _, ext := range []string{"json", "csv", "html"} {
			if _, err := os.Stat(filepath.Join(dir, rep.Name()+"."+ext)); err != nil {
				t.Errorf("report file: %v", err)
			}
		}
	})

	// With --report-timezone the daily summary is the zone's day, 23 hours
	// on the day its clocks go forward, run on its clock; its trend's
	// buckets are its hours, and its forms show the local window.
	t.Run("daily summary of a zone's day", func(t *testing.T) {
		got := subscribe(t, tr, events.SubjectRoot+".report.>")
		dir := t.TempDir()
		r := reporter.NewReports(reporter.ReportsConfig{Dir: dir, Daily: reporter.DefaultReportDaily, Timezone: "Europe/Berlin"}, tr.f.DB, tr.f.Broker, brokertest.Logger(t), nil)
		now := time.Date(2026, 3, 29, 22, 15, 0, 0, time.UTC) // 00:15 on 30 March in Berlin
		spec, ok, err := reporter.RunJob(ctx, r, reporter.KindDaily, now)
		if !ok || err != nil {
			t.Fatalf("daily job: %v, %v", ok, err)
		}
		if spec != "CRON_TZ=Europe/Berlin 15 0 * * *" {
			t.Errorf("the daily job runs on %q; want Berlin's clock", spec)
		}
		var rep reporter.Report
		if err := json.Unmarshal(got.next(t).Data, &rep); err != nil {
			t.Fatal(err)
		}
		from, to := time.Date(2026, 3, 28, 23, 0, 0, 0, time.UTC), time.Date(2026, 3, 29, 22, 0, 0, 0, time.UTC)
		if rep.TZ != "Europe/Berlin" || !rep.From.Equal(from) || !rep.To.Equal(to) {
			t.Errorf("daily summary %s %s – %s; want Europe/Berlin %s – %s", rep.TZ, rep.From, rep.To, from, to)
		}
		// Half hours of Berlin's clock: 48, of which 02:00 and 02:30 are
		// skipped, empty, starting with 03:00 CEST.
		if rep.Trend == nil || len(rep.Trend.Start) != 48 || rep.Trend.Zone != "Europe/Berlin" ||
			!rep.Trend.Start[4].Equal(time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC)) || !rep.Trend.Start[6].Equal(rep.Trend.Start[4]) {
			t.Errorf("daily summary's trend %+v; want Berlin's 48 half hours, 02:00 and 02:30 starting at 03:00 CEST", rep.Trend)
		}
		html, err := os.ReadFile(filepath.Join(dir, rep.Name()+".html"))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"(2026-03-29 00:00 – 2026-03-30 00:00 Europe/Berlin)"} {
			if !strings.Contains(string(html), want) {
				t.Errorf("the HTML summary lacks %q", want)
			}
		}
	})

	// The weekly summary is the zone's week, Monday to Monday, run on its
	// clock, published on its own subject and written as weekly-<start>.
	t.Run("weekly summary of a zone's week", func(t *testing.T) {
		got := subscribe(t, tr, events.SubjectRoot+".report.>")
		dir := t.TempDir()
		r := reporter.NewReports(reporter.ReportsConfig{Dir: dir, Weekly: reporter.DefaultReportWeekly, Timezone: "Europe/Berlin"}, tr.f.DB, tr.f.Broker, brokertest.Logger(t), nil)
		now := time.Date(2026, 6, 7, 22, 30, 0, 0, time.UTC) // 00:30 on Monday 8 June in Berlin
		spec, ok, err := reporter.RunJob(ctx, r, reporter.KindWeekly, now)
		if !ok || err != nil {
			t.Fatalf("weekly job: %v, %v", ok, err)
		}
		if spec != "CRON_TZ=Europe/Berlin 30 0 * * 1" {
			t.Errorf("the weekly job runs on %q; want Berlin's clock, Mondays", spec)
		}
		msg := got.next(t)
		var rep reporter.Report
		if err := json.Unmarshal(msg.Data, &rep); err != nil {
			t.Fatal(err)
		}
		from, to := time.Date(2026, 5, 31, 22, 0, 0, 0, time.UTC), time.Date(2026, 6, 7, 22, 0, 0, 0, time.UTC)
		if msg.Subject != events.SubjectRoot+".report.weekly" || rep.Kind != reporter.KindWeekly || rep.TZ != "Europe/Berlin" || !rep.From.Equal(from) || !rep.To.Equal(to) {
			t.Errorf("weekly summary on %s: %s %s %s – %s; want weekly, Europe/Berlin %s – %s", msg.Subject, rep.Kind, rep.TZ, rep.From, rep.To, from, to)
		}
		// The simulated traffic (1 June) is in it, as /channels counts it.
		chs, err := tr.f.DB.Channels(ctx, store.Window{From: from, To: to})
		if err != nil {
			t.Fatal(err)
		}
		if len(chs) == 0 || len(rep.Channels) != len(chs) || rep.Channels[0].Attempts != chs[0].Attempts {
			t.Errorf("the weekly summary's channels %+v; want /channels' for the week, %+v", rep.Channels, chs)
		}
		if _, err := os.Stat(filepath.Join(dir, "weekly-20260531T2200Z.html")); err != nil {
			t.Errorf("the weekly summary's file: %v", err)
		}
		// Beside it, the week before, Monday to Monday on Berlin's clock.
		if b := rep.Before; b == nil || !b.From.Equal(from.AddDate(0, 0, -7)) || !b.To.Equal(from) {
			t.Errorf("the weekly summary's week before: %+v; want %s – %s", b, from.AddDate(0, 0, -7), from)
		}
	})

	t.Run("alerts", func(t *testing.T) {
		got := subscribe(t, tr, events.SubjectRoot+".alert.>")
		var mu sync.Mutex
		var posted []map[string]any
		var hookDown atomic.Bool
		hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if hookDown.Load() {
				http.Error(w, "down", http.StatusBadGateway)
				return
			}
			var v map[string]any
			_ = json.NewDecoder(r.Body).Decode(&v)
			mu.Lock()
			posted = append(posted, v)
			mu.Unlock()
		}))
		defer hook.Close()
		postsSince := func(n int) []map[string]any {
			mu.Lock()
			defer mu.Unlock()
			return slices.Clone(posted[n:])
		}
		rules := reporter.AlertRules{Window: time.Hour, MinDeliveryRate: 0.99, MinSettled: 10, MaxFallbackRate: 0.01, MinOTPs: 10}
		// The summaries' words on --report-timezone's clock.
		cfg := reporter.ReportsConfig{Rules: rules, AlertWebhookURL: hook.URL, AlertRepeat: time.Hour, ConsoleURL: "https://otpscope.example.com/console/", Timezone: "Asia/Kolkata"}
		kolkata, err := time.LoadLocation(cfg.Timezone)
		if err != nil {
			t.Fatal(err)
		}
		r := reporter.NewReports(cfg, tr.f.DB, tr.f.Broker, brokertest.Logger(t), nil)
		// Evaluated a minute before the window's end, so that the window
		// [from, to) holds them; the data all lies before that.
		evalTo := w.To.Add(-time.Minute)
		alerts, err := r.Evaluate(ctx, w.From, evalTo)
		if err != nil {
			t.Fatal(err)
		}
		want := 1 // fallback_rate_high
		for _, c := range chs {
			if c.DeliveryRate != nil && *c.DeliveryRate < 0.99 && c.Delivered+c.Failed >= 10 {
				want++
			}
		}
		if len(alerts) != want || want < 2 {
			t.Fatalf("%d alerts %+v; want %d", len(alerts), alerts, want)
		}
		subjects := map[string]int{}
		for range alerts {
			subjects[got.next(t).Subject]++
		}
		if subjects[events.AlertSubject(reporter.RuleFallbackRateHigh)] != 1 || subjects[events.AlertSubject(reporter.RuleDeliveryRateLow)] != want-1 {
			t.Errorf("alert subjects %v", subjects)
		}
		if posts := postsSince(0); len(posts) != want {
			t.Fatalf("%d webhook posts; want %d", len(posts), want)
		} else {
			for _, p := range posts {
				var al reporter.Alert
				b, _ := json.Marshal(p["alert"])
				text, _ := p["text"].(string)
				// The summary begins with the figure: said once.
				if err := json.Unmarshal(b, &al); err != nil || text != ":rotating_light: otpscope "+al.Rule+": "+al.Summary+" "+consoleLink(&al) {
					t.Errorf("webhook body %v has no Slack text of the rule and its summary, one of a rule that fired before, or no link to the console's overview of its window and channel (--console-url): %q", p, consoleLink(&al))
				}
			}
		}
		for _, al := range alerts {
			if al.State != events.AlertFiring || !al.Since.Equal(evalTo) {
				t.Errorf("a rule firing for the first time: %+v; want firing since %v", al, evalTo)
			}
			if span := w.From.In(kolkata).Format(time.RFC3339) + " – " + evalTo.In(kolkata).Format(time.RFC3339); !strings.Contains(al.Summary, span) {
				t.Errorf("a firing's summary %q; want its window on Kolkata's clock, %s", al.Summary, span)
			}
		}
		// GET /api/v1/alerts/firing: the rules firing now, from any runner.
		var firing reporter.FiringResponse
		if resp := tr.get(t, "/api/v1/alerts/firing", nil, &firing); resp.StatusCode != http.StatusOK || len(firing.Firing) != want {
			t.Errorf("/api/v1/alerts/firing: %s, %+v; want the %d rules firing", resp.Status, firing.Firing, want)
		}
		for _, f := range firing.Firing {
			al := byRule(alerts, f.Rule, f.Channel)
			if !f.Since.Equal(evalTo) || !f.To.Equal(evalTo) || al == nil || f.Value != al.Value || f.Threshold != al.Threshold || f.Summary != al.Summary {
				t.Errorf("/api/v1/alerts/firing lists %+v; want a rule firing since %v, with the figures of its alert %+v", f, evalTo, al)
			}
		}

		// The sink stores them; GET /api/v1/alerts lists them, newest first
		// (all evaluated at once here), a channel's with the fallback rate's.
		// (Other tests' alerts are evaluated at other times.)
		tr.f.WaitCount(t, fmt.Sprintf("SELECT count() FROM alerts FINAL WHERE evaluated_at = fromUnixTimestamp64Milli(%d)", evalTo.UnixMilli()), uint64(want))
		q := url.Values{"from": {evalTo.Format(time.RFC3339Nano)}, "to": {w.To.Format(time.RFC3339Nano)}}
		var listed reporter.AlertsResponse
		if resp := tr.get(t, "/api/v1/alerts", q, &listed); resp.StatusCode != http.StatusOK {
			t.Fatalf("/api/v1/alerts: %s", resp.Status)
		}
		if len(listed.Alerts) != want {
			t.Fatalf("/api/v1/alerts listed %d alerts; want %d", len(listed.Alerts), want)
		}
		byKey := map[string]reporter.Alert{}
		for _, al := range alerts {
			byKey[al.Rule+"/"+al.Channel] = al
		}
		var channel string
		for _, got := range listed.Alerts {
			al, ok := byKey[got.Rule+"/"+got.Channel]
			if !ok || got.Value != al.Value || got.Threshold != al.Threshold || got.Volume != al.Volume || got.Summary != al.Summary ||
				!got.From.Equal(al.From) || !got.To.Equal(al.To) {
				t.Errorf("listed %+v; evaluated %+v", got, al)
			}
			if got.Channel != "" {
				channel = got.Channel
			}
		}
		q.Set("channel", strings.ToLower(channel))
		var one reporter.AlertsResponse
		tr.get(t, "/api/v1/alerts", q, &one)
		if len(one.Alerts) != 2 || one.Alerts[0].Channel == one.Alerts[1].Channel {
			t.Errorf("alerts of channel %s: %+v; want its own and the fallback rate's", channel, one.Alerts)
		}
		q.Set("to", evalTo.Format(time.RFC3339Nano)) // [from, to): evaluated at to, so outside
		var none reporter.AlertsResponse
		if tr.get(t, "/api/v1/alerts", q, &none); len(none.Alerts) != 0 {
			t.Errorf("alerts evaluated at the window's end listed in it: %+v", none.Alerts)
		}
		q.Set("limit", "0")
		if resp := tr.get(t, "/api/v1/alerts", q, nil); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("limit 0: %s; want 400", resp.Status)
		}

		// A report of a window holds the alerts evaluated within it, in
		// every format (here a window with no traffic of its own).
		rep, err := reporter.BuildReport(ctx, tr.f.DB, reporter.KindHourly, store.Window{From: evalTo, To: w.To}, nil, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Alerts) != want {
			t.Fatalf("report holds %d alerts; want %d", len(rep.Alerts), want)
		}
		for format, check := range map[string]func(string) bool{
			"html": func(s string) bool {
				return strings.Count(s, "<td>"+reporter.RuleDeliveryRateLow+"</td>") == want-1 && strings.Contains(s, `id="alerts"`)
			},
			"table": func(s string) bool {
				return strings.Contains(s, fmt.Sprintf("Alert firings in the window: %d (resolved: 0, still firing at its end: %d)", want, want)) && strings.Contains(s, alerts[0].Summary)
			},
			"csv": func(s string) bool {
				// Each firing with its window before's figure, as stored.
				return strings.Count(s, "\nalert,") == 7*want && strings.Count(s, ",volume_before,") == want && strings.Count(s, "\nalert_episode,") == 4*want && strings.Count(s, ",state,firing\n") == 2*want
			},
		} {
			var b strings.Builder
			if err := rep.Render(&b, format); err != nil {
				t.Fatal(err)
			}
			if !check(b.String()) {
				t.Errorf("%s report does not show the %d alerts:\n%s", format, want, b.String())
			}
		}
		quietRep, err := reporter.BuildReport(ctx, tr.f.DB, reporter.KindHourly, store.Window{From: evalTo.Add(-time.Minute), To: evalTo}, nil, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		if err := quietRep.Render(&b, "html"); err != nil || len(quietRep.Alerts) != 0 || !strings.Contains(b.String(), `id="no-alerts"`) {
			t.Errorf("a window without alerts: %d alerts, %v, no \"no alert\" note", len(quietRep.Alerts), err)
		}

		// The firing carries on, as the alerts' state in NATS remembers it:
		// through a restart (a new runner), without a post until the repeat
		// is due; a post that fails is tried again at the next evaluation.
		evaluate := func(r *reporter.Reports, at time.Duration) ([]reporter.Alert, error) {
			t.Helper()
			alerts, err := r.Evaluate(ctx, w.From, evalTo.Add(at))
			for range alerts {
				var al reporter.Alert
				if err := json.Unmarshal(got.next(t).Data, &al); err != nil || !al.To.Equal(evalTo.Add(at)) {
					t.Errorf("published %+v, %v; want an alert evaluated at %v", al, err, evalTo.Add(at))
				}
			}
			return alerts, err
		}
		posts := len(postsSince(0))
		for _, step := range []struct {
			at    time.Duration
			down  bool
			posts int
		}{{10 * time.Minute, false, 0}, {70 * time.Minute, true, 0}, {80 * time.Minute, false, want}, {90 * time.Minute, false, 0}} {
			hookDown.Store(step.down)
			again, err := evaluate(reporter.NewReports(cfg, tr.f.DB, tr.f.Broker, brokertest.Logger(t), nil), step.at)
			if step.down != (err != nil) {
				t.Errorf("evaluated at +%v with the webhook down %v: %v", step.at, step.down, err)
			}
			if len(again) != want {
				t.Errorf("evaluated at +%v: %d alerts; want the %d still firing", step.at, len(again), want)
			}
			for _, al := range again {
				if al.State != events.AlertFiring || !al.Since.Equal(evalTo) {
					t.Errorf("evaluated at +%v: %+v; want firing since %v", step.at, al, evalTo)
				}
			}
			newPosts := postsSince(posts)
			if len(newPosts) != step.posts {
				t.Errorf("evaluated at +%v (repeat 1h, webhook down %v): %d posts; want %d", step.at, step.down, len(newPosts), step.posts)
			}
			for _, p := range newPosts {
				if text, _ := p["text"].(string); !strings.Contains(text, "; firing since "+evalTo.In(kolkata).Format(time.RFC3339)+" https://") {
					t.Errorf("a repeat says %q; want since when the rule fires", text)
				}
			}
			posts += len(newPosts)
		}

		// An entry of the alerts' state that is not a firing rule is dropped,
		// not a stop to every evaluation after it.
		state, err := tr.f.Broker.KeyValue(ctx, jetstream.KeyValueConfig{Bucket: reporter.BucketAlerts})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := state.PutString(ctx, "delivery_rate_low.JUNK", "not json"); err != nil {
			t.Fatal(err)
		}

		// Rules that hold no longer resolve, each once, and the webhook hears:
		// here in the window the last firing was evaluated over, as when late
		// facts change its figures within the minute. The webhook is down at
		// first: the resolutions are posted again at the next evaluation,
		// not published again.
		lenient := cfg
		lenient.Rules = reporter.AlertRules{Window: time.Hour, MinDeliveryRate: 0.01, MinSettled: 10, MaxFallbackRate: 0.99, MinOTPs: 10}
		quiet := reporter.NewReports(lenient, tr.f.DB, tr.f.Broker, brokertest.Logger(t), nil)
		hookDown.Store(true)
		resolved, err := evaluate(quiet, 90*time.Minute)
		if err == nil || len(resolved) != want {
			t.Fatalf("lenient rules, the webhook down: %+v, %v; want the %d firing rules resolved, and the webhook's error", resolved, err, want)
		}
		for _, al := range resolved {
			if al.State != events.AlertResolved || !al.Since.Equal(evalTo) || !strings.Contains(al.Summary, "back to") {
				t.Errorf("resolution %+v; want resolved, since %v, the figure back", al, evalTo)
			}
		}
		var nothing reporter.FiringResponse
		if tr.get(t, "/api/v1/alerts/firing", nil, &nothing); nothing.Firing == nil || len(nothing.Firing) != 0 || len(postsSince(posts)) != 0 {
			t.Errorf("/api/v1/alerts/firing with resolutions unheard: %+v; want an empty list", nothing.Firing)
		}
		hookDown.Store(false)
		if again, err := evaluate(quiet, 100*time.Minute); err != nil || len(again) != 0 {
			t.Errorf("lenient rules, the webhook back: %+v, %v; want nothing published", again, err)
		}
		newPosts := postsSince(posts)
		if len(newPosts) != want {
			t.Errorf("%d posts of resolutions; want %d", len(newPosts), want)
		}
		for _, p := range newPosts {
			if text, _ := p["text"].(string); !strings.Contains(text, "resolved") {
				t.Errorf("a resolution says %q", text)
			}
		}
		if again, err := evaluate(quiet, 110*time.Minute); err != nil || len(again) != 0 || len(postsSince(posts)) != want {
			t.Errorf("lenient rules again: %+v, %v; want nothing, resolved once", again, err)
		}
		if keys, err := state.Keys(ctx); !errors.Is(err, jetstream.ErrNoKeysFound) {
			t.Errorf("alerts' state after every rule resolved: %v, %v; want it empty", keys, err)
		}
		if tr.get(t, "/api/v1/alerts/firing", nil, &nothing); nothing.Firing == nil || len(nothing.Firing) != 0 {
			t.Errorf("/api/v1/alerts/firing after every rule resolved: %+v; want an empty list", nothing.Firing)
		}

		// With --alert-for the rules are pending first: nothing published,
		// posted or listed as firing until they have held that long.
		patient := cfg
		patient.AlertFor = 10 * time.Minute
		if pending, err := evaluate(reporter.NewReports(patient, tr.f.DB, tr.f.Broker, brokertest.Logger(t), nil), 120*time.Minute); err != nil || len(pending) != 0 {
			t.Errorf("--alert-for 10m, first evaluation: %+v, %v; want nothing yet", pending, err)
		}
		if tr.get(t, "/api/v1/alerts/firing", nil, &nothing); len(nothing.Firing) != 0 || len(postsSince(posts)) != want {
			t.Errorf("pending rules listed as firing (%+v) or posted", nothing.Firing)
		}
		fired, err := evaluate(reporter.NewReports(patient, tr.f.DB, tr.f.Broker, brokertest.Logger(t), nil), 130*time.Minute)
		if err != nil || len(fired) != want || len(postsSince(posts)) != 2*want {
			t.Fatalf("--alert-for 10m, ten minutes on: %+v, %v; want the %d rules firing, and posted", fired, err, want)
		}
		for _, al := range fired {
			if al.State != events.AlertFiring || !al.Since.Equal(evalTo.Add(120*time.Minute)) {
				t.Errorf("fired after --alert-for: %+v; want firing since the first evaluation it held at", al)
			}
		}
		tr.f.WaitCount(t, fmt.Sprintf("SELECT count() FROM alerts FINAL WHERE evaluated_at = fromUnixTimestamp64Milli(%d) AND state = 'resolved' AND since = fromUnixTimestamp64Milli(%d)",
			evalTo.Add(90*time.Minute).UnixMilli(), evalTo.UnixMilli()), uint64(want))
		// GET /api/v1/alerts?state= keeps one state: the resolutions, or
		// the firings of the same window.
		q = url.Values{"from": {evalTo.Add(90 * time.Minute).Format(time.RFC3339Nano)}, "to": {evalTo.Add(111 * time.Minute).Format(time.RFC3339Nano)}}
		for state, n := range map[string]int{"": want + want, events.AlertFiring: want, events.AlertResolved: want} {
			q.Set("state", state)
			var listed reporter.AlertsResponse
			tr.get(t, "/api/v1/alerts", q, &listed)
			if len(listed.Alerts) != n {
				t.Errorf("/api/v1/alerts?state=%s listed %d; want %d", state, len(listed.Alerts), n)
			}
			for _, al := range listed.Alerts {
				if state != "" && al.State != state || !al.Since.Equal(evalTo) {
					t.Errorf("/api/v1/alerts?state=%s listed %+v; want it %s since %v", state, al, state, evalTo)
				}
			}
		}

		// By firing: each rule's first run, evaluated firing five times
		// (+0, +10, +70, +80, +90) and resolved at +90, then its second
		// run, fired at +130 after --alert-for.
		tr.f.WaitCount(t, fmt.Sprintf("SELECT count() FROM alerts FINAL WHERE evaluated_at = fromUnixTimestamp64Milli(%d)", evalTo.Add(130*time.Minute).UnixMilli()), uint64(want))
		q = url.Values{"from": {evalTo.Format(time.RFC3339Nano)}, "to": {evalTo.Add(131 * time.Minute).Format(time.RFC3339Nano)}}
		var eps reporter.AlertEpisodesResponse
		tr.get(t, "/api/v1/alerts/episodes", q, &eps)
		resolvedRuns := 0
		for _, e := range eps.Episodes {
			switch {
			case e.State == events.AlertResolved && e.Since.Equal(evalTo) && e.Evaluations == 5 && e.To.Equal(evalTo.Add(90*time.Minute)):
				resolvedRuns++
			case e.State == events.AlertFiring && e.Since.Equal(evalTo.Add(120*time.Minute)) && e.Evaluations == 1:
			default:
				t.Errorf("episode %+v; want a first run resolved at +90 after 5 evaluations, or a second run since +120", e)
			}
		}
		if len(eps.Episodes) != 2*want || resolvedRuns != want {
			t.Errorf("%d episodes, %d resolved; want %d, %d", len(eps.Episodes), resolvedRuns, 2*want, want)
		}
		// A report of that window lists the same runs, one row each.
		runs, err := reporter.BuildReport(ctx, tr.f.DB, reporter.KindHourly, store.Window{From: evalTo, To: evalTo.Add(131 * time.Minute)}, nil, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		var table strings.Builder
		if err := runs.Render(&table, "table"); err != nil || len(runs.AlertEpisodes) != 2*want ||
			!strings.Contains(table.String(), fmt.Sprintf("Alert firings in the window: %d (resolved: %d, still firing at its end: %d)\n", 2*want, want, want)) || strings.Count(table.String(), "5 evaluations") != want {
			t.Errorf("report of both runs: %d episodes, %v\n%s", len(runs.AlertEpisodes), err, table.String())
		}
	})

	t.Run("alertmanager", func(t *testing.T) { testAlertmanager(t, tr) })

	t.Run("schedule starts and stops", func(t *testing.T) {
		cfg := reporter.ReportsConfig{Hourly: reporter.DefaultReportHourly, Daily: reporter.DefaultReportDaily, Weekly: reporter.DefaultReportWeekly, Alerts: reporter.DefaultAlerts, Rules: reporter.AlertRules{Window: time.Hour}}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		r := reporter.NewReports(cfg, tr.f.DB, tr.f.Broker, brokertest.Logger(t), nil)
		ctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		bad := reporter.ReportsConfig{Hourly: "every hour"}
		if err := bad.Validate(); err == nil {
			t.Error("Validate accepted the cron spec \"every hour\"")
		}
		for _, u := range []string{"otpscope.example.com/console/", "ftp://otpscope.example.com/", "https://otpscope.example.com/console/#alerts"} {
			bad := reporter.ReportsConfig{ConsoleURL: u, Rules: reporter.AlertRules{Window: time.Hour}}
			if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "console-url") {
				t.Errorf("Validate with --console-url %q: %v; want it refused", u, err)
			}
		}
		// README, --rollup-schedule: more often than cron's minute.
		often := reporter.ReportsConfig{Rollups: "@every 20s", Rules: reporter.AlertRules{Window: time.Hour}}
		if err := often.Validate(); err != nil {
			t.Errorf("Validate refused --rollup-schedule \"@every 20s\": %v", err)
		}
	})

	// Last: the reads above computed the traffic live, as nothing had
	// rolled it up yet.
	t.Run("rollup job metrics", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		r := reporter.NewReports(reporter.ReportsConfig{}, tr.f.DB, tr.f.Broker, brokertest.Logger(t), reg)
		if err := r.RefreshRollups(ctx, time.Now()); err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				switch mf.GetName() {
				case "otpscope_rollup_run_seconds":
					got["runs"] = float64(m.GetHistogram().GetSampleCount())
				case "otpscope_rollup_hours_total":
					got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
				case "otpscope_rollup_days_total":
					got["days"] = m.GetCounter().GetValue()
				case "otpscope_rollup_resend_outcomes_total":
					got["resends"] = m.GetCounter().GetValue()
				}
			}
		}
		// Never rolled up, every hour near the traffic is computed, and
		// every resend decision's outcome (the two above, at least).
		if got["runs"] != 1 || got["computed"] == 0 || got["patched"] != 0 || got["checked"] != 0 || got["redefined"] != 0 || got["vouched"] != 0 || got["days"] == 0 || got["resends"] < 2 {
			t.Errorf("after one run of the job over traffic never rolled up: %v; want 1 run, hours computed, none patched or checked, days summed, resend outcomes computed", got)
		}
	})
}

type subscription struct{ ch chan *nats.Msg }

// byRule is the alert of rule on channel in alerts, or nil.
func byRule(alerts []reporter.Alert, rule, channel string) *reporter.Alert {
	for i := range alerts {
		if alerts[i].Rule == rule && alerts[i].Channel == channel {
			return &alerts[i]
		}
	}
	return nil
}

func subscribe(t *testing.T, tr *traffic, subject string) subscription {
	t.Helper()
	s := subscription{ch: make(chan *nats.Msg, 64)}
	unsubscribe, err := tr.f.Broker.Subscribe(subject, func(m *nats.Msg) { s.ch <- m })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(unsubscribe)
	return s
}

func (s subscription) next(t *testing.T) *nats.Msg {
	t.Helper()
	select {
	case m := <-s.ch:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message published")
		return nil
	}
}

func TestHTMLReportDurationsAndThresholds(t *testing.T) {
	rate, was := 0.75, 0.947
	rep := reporter.Report{
		Kind: reporter.KindAdHoc, From: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 6, 2, 0, 0, 0, 0, time.UTC),
		Channels: []store.ChannelStats{{Channel: "SMS", Attempts: 4, Delivered: 3, Failed: 1, DeliveryRate: &rate,
			LatencyMS: &store.Percentiles{P50: 2900, P95: 18448}}},
		Fallback:     store.FallbackStats{OTPs: 4, TimeToDeliverMS: &store.Percentiles{P50: 850, P95: 3_900_000}},
		Completeness: store.Completeness{Final: true},
		Thresholds:   reporter.AlertRules{MinDeliveryRate: 0.8, MaxLatencyP95: time.Minute}.Thresholds(),
		// Alerts' figures in their rules' units: a time to deliver, a rate.
		AlertEpisodes: []store.AlertEpisode{
			{AlertRecord: store.AlertRecord{Alert: events.Alert{Rule: reporter.RuleDeliverySlow, Channel: "SMS", State: events.AlertFiring, Value: 60400, Threshold: 60000}}, Worst: 75000},
			{AlertRecord: store.AlertRecord{Alert: events.Alert{Rule: reporter.RuleDeliveryRateLow, Channel: "SMS", State: events.AlertFiring, Value: 0.75, Threshold: 0.8,
				Before: &events.AlertBefore{Value: &was}}}, Worst: 0.7},
		},
	}
	var b bytes.Buffer
	if err := rep.Render(&b, "html"); err != nil {
		t.Fatal(err)
	}
	doc := parseHTML(t, b.Bytes())
	// Latencies read as the console's fmtMs writes them: seconds to a
	// tenth (18448 ms read "18 s"), milliseconds under a second.
	if c := doc.cells["channels"]; len(c) != 12 || c[9] != "2.9 s" || c[10] != "18.4 s" {
		t.Errorf("channels row %v; want latencies 2.9 s and 18.4 s", c)
	}
	if j := doc.cells["journeys"]; len(j) == 0 || j[len(j)-1] != "850 ms / 3900.0 s" {
		t.Errorf("journeys table %v; want time to deliver 850 ms / 3900.0 s", j)
	}
	// A value above its threshold never reads as it: 60400 ms above 1 min
	// read "1 min" twice.
	// Beside the value, the window before's (delivery_slow's has none).
	if a := doc.cells["alerts"]; len(a) != 22 || a[6] != "60.4 s" || a[7] != "–" || a[8] != "75.0 s" || a[9] != "60.0 s" || a[17] != "75.0%" || a[18] != "94.7%" || a[19] != "70.0%" || a[20] != "80.0%" {
		t.Errorf("alerts table %v; want delivery_slow's figures in seconds to a tenth (60.4 s above 60.0 s), delivery_rate_low's as percentages, 94.7%% before", a)
	}
	if _, ok := doc.ids["no-errors"]; !ok || doc.cells["errors"] != nil {
		t.Errorf("a report without errors shows %v; want the sentence saying so", doc.cells["errors"])
	}
	latency := false
	for _, f := range doc.figures {
		if f.title == "Delivery rate per channel" && (len(f.marks) != 1 || f.marks[0]["data-value"] != "0.8" || f.ticks["80%"] != f.marks[0]["data-x"]) {
			t.Errorf("delivery rate chart marks %v, ticks %v; want one marker on the 80%% tick", f.marks, f.ticks)
		}
		if f.title == "Latency per channel, dispatched → delivered (p95)" {
			latency = true
			if len(f.marks) != 1 || f.marks[0]["data-value"] != "60" || f.ticks["60 s"] == "" || f.ticks["60 s"] != f.marks[0]["data-x"] {
				t.Errorf("time to deliver chart marks %v, ticks %v; want one marker on the 60 s tick (delivery_slow's 1 min)", f.marks, f.ticks)
			}
		}
	}
	if !latency || !bytes.Contains(b.Bytes(), []byte("alert above 60.0 s")) {
		t.Errorf("no time to deliver chart labelled \"alert above 60.0 s\"")
	}
	// With a limit of its own for a channel, no one line is every channel's.
	if x := (reporter.AlertRules{MaxLatencyP95: time.Minute, ChannelMaxLatencyP95: reporter.ChannelDurations{"VOICE": 2 * time.Minute}}).Thresholds().MaxLatencyP95MS; x != 0 {
		t.Errorf("thresholds with a channel's own latency limit mark %v ms; want none", x)
	}
}

// TestReportSaysJourneys: /fallback's otps count journeys (logins), a
// silent auth or push that succeeded among them with no OTP sent, so the
// report's table and page call them journeys, as the console does (they
// read "OTPs", some 20 % above tyntec's billed OTPs); the CSV's metrics
// keep the JSON's field names.
func TestReportSaysJourneys(t *testing.T) {
	rate := 0.2
	rep := reporter.Report{
		Kind: reporter.KindAdHoc, From: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 6, 2, 0, 0, 0, 0, time.UTC),
		Fallback: store.FallbackStats{OTPs: 10, FallbackOTPs: 2, FallbackRate: &rate,
			Outcomes: store.Outcomes{DeliveredPrimary: 8, DeliveredFallback: 2},
			Paths:    []store.PathStats{{Path: "SILENT", OTPs: 6, Delivered: 6}, {Path: "SMS", OTPs: 2, Delivered: 2}, {Path: "SILENT>SMS", OTPs: 2, Delivered: 2}}},
		Completeness: store.Completeness{Final: true},
	}
	otps := regexp.MustCompile(`\bOTPs\b`)
	var table bytes.Buffer
	if err := rep.Render(&table, "table"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "Journeys (logins) 10, with fallback 2 (20.0%; before –)") || !regexp.MustCompile(`path\s+journeys\s+delivered`).MatchString(table.String()) || otps.MatchString(table.String()) {
		t.Errorf("table report:\n%s\nwant journeys (logins) 10, with fallback 2, a path column of journeys, and no OTPs", table.String())
	}
	var page bytes.Buffer
	if err := rep.Render(&page, "html"); err != nil {
		t.Fatal(err)
	}
	doc := parseHTML(t, page.Bytes())
	if j := doc.cells["journeys"]; len(j) < 4 || j[0] != "Journeys (logins)" || j[1] != "10" || j[2] != "Journeys with fallback" || j[3] != "2" {
		t.Errorf("journeys table %v; want Journeys (logins) 10, Journeys with fallback 2", j)
	}
	if otps.Match(page.Bytes()) {
		t.Errorf("the HTML report says OTPs:\n%s", page.String())
	}
	var sheet bytes.Buffer
	if err := rep.Render(&sheet, "csv"); err != nil {
		t.Fatal(err)
	}
	for _, row := range []string{"journeys,,otps,10", "journeys,,fallback_otps,2", "path,SILENT,otps,6"} {
		if !strings.Contains(sheet.String(), row+"\n") {
			t.Errorf("CSV has no row %s:\n%s", row, sheet.String())
		}
	}
}

// GET /api/v1/report answers the window's report as `reporter report`
// writes it, as a file to save: in each form, on the zone asked, with the
// alert thresholds the reporter evaluates marked; a form it has not, a
// max_lag (a report reads exactly) or an unknown zone is a 400.
func testReportDownload(t *testing.T, tr *traffic) {
	ar := chi.NewRouter()
	reporter.NewAPI(tr.f.DB, reporter.AlertRules{MinDeliveryRate: 0.9}, brokertest.Logger(t)).Mount(ar)
	api := httptest.NewServer(ar)
	t.Cleanup(api.Close)
	w := tr.window()
	q := url.Values{"from": {w.From.Format(time.RFC3339)}, "to": {w.To.Format(time.RFC3339)}, "tz": {"Europe/Berlin"}}
	download := func(q url.Values) (*http.Response, []byte) {
		t.Helper()
		resp, err := http.Get(api.URL + "/api/v1/report?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body
	}
	start := w.From.UTC().Format("20060102T1504Z")
	for _, c := range []struct{ format, media, file string }{
		{"", "text/html; charset=utf-8", "otpscope-adhoc-" + start + ".html"},
		{"csv", "text/csv; charset=utf-8", "otpscope-adhoc-" + start + ".csv"},
		{"table", "text/plain; charset=utf-8", "otpscope-adhoc-" + start + ".txt"},
	} {
		q := maps.Clone(q)
		if c.format != "" {
			q.Set("format", c.format)
		}
		resp, body := download(q)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != c.media ||
			resp.Header.Get("Content-Disposition") != `attachment; filename="`+c.file+`"` ||
			!strings.HasPrefix(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") ||
			resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("GET /api/v1/report?%s = %s, %v\n%.300s", q.Encode(), resp.Status, resp.Header, body)
			continue
		}
		// The command's own report of the window, but the time it was made.
		cfg := reporter.ReportCLIConfig{From: q.Get("from"), To: q.Get("to"), TZ: "Europe/Berlin", Format: cmp.Or(c.format, "html"),
			Thresholds: reporter.Thresholds{MinDeliveryRate: 0.9}}
		var want bytes.Buffer
		if err := reporter.WriteReport(t.Context(), tr.f.DB, cfg, time.Now(), &want); err != nil {
			t.Fatal(err)
		}
		generated := regexp.MustCompile(`generated[ ,_a-z]*[0-9T:+.Z-]+`)
		if got, want := generated.ReplaceAll(body, nil), generated.ReplaceAll(want.Bytes(), nil); !bytes.Equal(got, want) {
			t.Errorf("format %q: the answer is not the command's report:\n%.2000s\nwant\n%.2000s", c.format, got, want)
		}
	}
	if _, body := download(q); !bytes.Contains(body, []byte("alert below 90%")) {
		t.Errorf("the HTML does not mark the reporter's threshold:\n%.500s", body)
	}
	for field, bad := range map[string]url.Values{"format": {"format": {"pdf"}}, "max_lag": {"max_lag": {"1m"}}, "tz": {"tz": {"Mars/Olympus_Mons"}}} {
		resp, body := download(bad)
		var p problem.Details
		_ = json.Unmarshal(body, &p)
		if resp.StatusCode != http.StatusBadRequest || p.Field != field {
			t.Errorf("GET /api/v1/report?%s = %s %s; want a 400 naming %s", bad.Encode(), resp.Status, body, field)
		}
	}
}

// consoleLink is the console's overview of al's window and channel, as the
// console's own hash says it, at --console-url
// https://otpscope.example.com/console/.
func consoleLink(al *reporter.Alert) string {
	link := "https://otpscope.example.com/console/#overview?range=custom&from=" + al.From.UTC().Format(time.RFC3339) + "&to=" + al.To.UTC().Add(time.Second).Format(time.RFC3339)
	if al.Channel != "" && al.Channel != reporter.OtherChannels {
		link += "&channel=" + al.Channel
	}
	return link
}

// A report marks the alerts a silence covered, whose webhook posts it
// held, in each of its forms: the HTML's state, the table's line and
// count, the CSV's silenced_by rows.
func TestReportMarksSilencedAlerts(t *testing.T) {
	at := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	const id = "3f0c2a1e-9d2a-4f60-8c1b-2e7d5a9f1c33"
	silenced := events.Alert{Rule: reporter.RuleDeliveryRateLow, Channel: "SMS", State: events.AlertFiring, Since: at, From: at.Add(-time.Hour), To: at,
		Value: 0.5, Threshold: 0.8, Summary: "SMS low", SilencedBy: id}
	heard := events.Alert{Rule: reporter.RuleDeliveryRateLow, Channel: "VIBER", State: events.AlertResolved, Since: at, From: at.Add(-time.Hour), To: at,
		Value: 0.9, Threshold: 0.8, Summary: "VIBER back"}
	rep := reporter.Report{
		Kind: reporter.KindAdHoc, From: at.Add(-12 * time.Hour), To: at.Add(12 * time.Hour), Completeness: store.Completeness{Final: true},
		Alerts: []store.AlertRecord{{ID: "a1", Alert: silenced}, {ID: "a2", Alert: heard}},
		AlertEpisodes: []store.AlertEpisode{
			{AlertRecord: store.AlertRecord{ID: "a1", Alert: silenced}, Evaluations: 1},
			{AlertRecord: store.AlertRecord{ID: "a2", Alert: heard}},
		},
	}
	var page bytes.Buffer
	if err := rep.Render(&page, "html"); err != nil {
		t.Fatal(err)
	}
	if a := parseHTML(t, page.Bytes()).cells["alerts"]; len(a) != 22 || a[3] != "firing · silenced" || a[14] != "resolved" {
		t.Errorf("alerts table %v; want SMS's firing silenced, VIBER's resolution not", a)
	}
	if !bytes.Contains(page.Bytes(), []byte(`title="silence `+id+` held the webhook's posts of it"`)) {
		t.Errorf("the HTML does not name the silence:\n%s", page.String())
	}
	var table bytes.Buffer
	if err := rep.Render(&table, "table"); err != nil {
		t.Fatal(err)
	}
	if s := table.String(); !strings.Contains(s, "Alert firings in the window: 2 (resolved: 1, still firing at its end: 1); 1 under a silence\n") ||
		!strings.Contains(s, "SMS low  [silenced: "+id+"]\n") || !strings.Contains(s, "VIBER back\n") {
		t.Errorf("table report:\n%s\nwant SMS's firing marked silenced, and counted", s)
	}
	var csv bytes.Buffer
	if err := rep.Render(&csv, "csv"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"alert,delivery_rate_low SMS 2026-06-01T12:00:00Z,silenced_by," + id + "\n",
		"alert_episode,delivery_rate_low SMS 2026-06-01T12:00:00Z,silenced_by," + id + "\n",
	} {
		if !strings.Contains(csv.String(), want) {
			t.Errorf("CSV lacks %q:\n%s", want, csv.String())
		}
	}
	if n := strings.Count(csv.String(), "silenced_by"); n != 2 {
		t.Errorf("CSV has %d silenced_by rows; want 2, SMS's alone", n)
	}
}
