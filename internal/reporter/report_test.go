package reporter_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/reporter"
	"github.com/otpscope/otpscope/internal/store"
)

// htmlDoc is what the HTML report holds, read back with a lenient XML parser.
type htmlDoc struct {
	svgs, rects, scripts, external int
	cells                          map[string][]string // table id → cell texts, in order
}

func parseHTML(t *testing.T, b []byte) htmlDoc {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict, d.AutoClose, d.Entity = false, xml.HTMLAutoClose, xml.HTMLEntity
	doc := htmlDoc{cells: map[string][]string{}}
	table, inCell := "", false
	var text strings.Builder
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
			switch x.Name.Local {
			case "svg":
				doc.svgs++
			case "rect":
				doc.rects++
			case "script":
				doc.scripts++
			case "table":
				for _, a := range x.Attr {
					if a.Name.Local == "id" {
						table = a.Value
					}
				}
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
		case xml.EndElement:
			switch x.Name.Local {
			case "td":
				inCell = false
				doc.cells[table] = append(doc.cells[table], strings.TrimSpace(text.String()))
			case "table":
				table = ""
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
		var b bytes.Buffer
		if err := reporter.WriteReport(ctx, tr.f.DB, cfg, time.Now(), &b); err != nil {
			t.Fatal(err)
		}
		doc := parseHTML(t, b.Bytes())
		if doc.svgs != 4 || doc.scripts != 0 || doc.external != 0 {
			t.Errorf("HTML report has %d charts, %d scripts, %d external references; want 4, 0, 0", doc.svgs, doc.scripts, doc.external)
		}
		if want := 2*len(chs) + 4 + len(fb.Paths); doc.rects != want {
			t.Errorf("HTML report has %d bars; want %d", doc.rects, want)
		}
		cells := doc.cells["channels"]
		const cols = 11
		if len(cells) != cols*len(chs) {
			t.Fatalf("channels table has %d cells; want %d", len(cells), cols*len(chs))
		}
		for i, c := range chs {
			row := cells[cols*i : cols*i+cols]
			want := []string{c.Channel, strconv.FormatUint(c.Attempts, 10), strconv.FormatUint(c.Delivered, 10), strconv.FormatUint(c.Failed, 10),
				strconv.FormatUint(c.Undeliverable, 10), strconv.FormatUint(c.TimedOut, 10)}
			if !slices.Equal(row[:len(want)], want) {
				t.Errorf("channels row %d = %v; want %v", i, row, want)
			}
		}
		// The traffic has settled: the page says its figures are final.
		if c := doc.cells["completeness-figures"]; len(c) != 6 || c[1] != "0" || c[3] != "0" {
			t.Errorf("completeness table = %v; want nothing pending", c)
		}
		if !bytes.Contains(b.Bytes(), []byte("Final: every attempt in the window has settled.")) {
			t.Error("the HTML report does not say its figures are final")
		}
		if j := doc.cells["journeys"]; len(j) < 2 || j[0] != "OTPs" || j[1] != strconv.FormatUint(fb.OTPs, 10) {
			t.Errorf("journeys table starts %v; want OTPs %d", j, fb.OTPs)
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
				for _, r := range recs {
					if r[0] == "journeys" && r[2] == "otps" {
						found = r[3] == strconv.FormatUint(fb.OTPs, 10)
					}
				}
				if !found {
					t.Errorf("CSV has no journeys,otps = %d", fb.OTPs)
				}
			case "json":
				var rep reporter.Report
				if err := json.Unmarshal(b.Bytes(), &rep); err != nil {
					t.Fatal(err)
				}
				if rep.Fallback.OTPs != fb.OTPs || len(rep.Channels) != len(chs) || rep.Channels[0].Attempts != chs[0].Attempts {
					t.Errorf("JSON report = %+v; want the API's figures", rep)
				}
			case "table":
				if !strings.Contains(b.String(), chs[0].Channel) || !strings.Contains(b.String(), "OTPs "+strconv.FormatUint(fb.OTPs, 10)) {
					t.Errorf("table report:\n%s", b.String())
				}
			}
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

	t.Run("alerts", func(t *testing.T) {
		got := subscribe(t, tr, events.SubjectRoot+".alert.>")
		var mu sync.Mutex
		var posted []map[string]any
		hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var v map[string]any
			_ = json.NewDecoder(r.Body).Decode(&v)
			mu.Lock()
			posted = append(posted, v)
			mu.Unlock()
		}))
		defer hook.Close()
		rules := reporter.AlertRules{Window: time.Hour, MinDeliveryRate: 0.99, MinSettled: 10, MaxFallbackRate: 0.01, MinOTPs: 10}
		r := reporter.NewReports(reporter.ReportsConfig{Rules: rules, AlertWebhookURL: hook.URL}, tr.f.DB, tr.f.Broker, brokertest.Logger(t), nil)
		alerts, err := r.Evaluate(ctx, w.From, w.To)
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
		mu.Lock()
		defer mu.Unlock()
		if len(posted) != want {
			t.Fatalf("%d webhook posts; want %d", len(posted), want)
		}
		if text, _ := posted[0]["text"].(string); !strings.Contains(text, "otpscope") {
			t.Errorf("webhook body %v has no Slack text", posted[0])
		}

		quiet := reporter.NewReports(reporter.ReportsConfig{Rules: reporter.AlertRules{MinDeliveryRate: 0.01, MinSettled: 10, MaxFallbackRate: 0.99, MinOTPs: 10}}, tr.f.DB, tr.f.Broker, brokertest.Logger(t), nil)
		if alerts, err := quiet.Evaluate(ctx, w.From, w.To); err != nil || len(alerts) != 0 {
			t.Errorf("lenient rules fired %+v, %v", alerts, err)
		}
	})

	t.Run("schedule starts and stops", func(t *testing.T) {
		cfg := reporter.ReportsConfig{Hourly: reporter.DefaultReportHourly, Daily: reporter.DefaultReportDaily, Alerts: reporter.DefaultAlerts, Rules: reporter.AlertRules{Window: time.Hour}}
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
	})
}

type subscription struct{ ch chan *nats.Msg }

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
