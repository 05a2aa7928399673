package reporter_test

import (
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"reflect"
	"regexp"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/otpscope/otpscope/internal/chdb/chdbtest"
	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/grafanatest"
	"github.com/otpscope/otpscope/internal/polltest"
	"github.com/otpscope/otpscope/internal/reporter"
	"github.com/otpscope/otpscope/internal/store"
)

// rateColumn and msColumn are the column names that hold a share of 1 and
// milliseconds, by the dashboards' naming.
var (
	rateColumn = regexp.MustCompile(`(_rate|^conversion|^success)$`)
	msColumn   = regexp.MustCompile(`_ms$`)
)

// checkColours holds a stat panel's colours to its meaning: Grafana's
// default thresholds (green, red from 80) would paint a count above 80 red.
// A rate with an alert rule is red on the wrong side of the rule's default;
// anything else is not coloured by value.
func checkColours(t *testing.T, file string, p *grafanatest.Panel) {
	t.Helper()
	d := p.FieldConfig.Defaults
	if d.Thresholds == nil || d.Thresholds.Mode != "absolute" || len(d.Thresholds.Steps) == 0 || d.Thresholds.Steps[0].Value != nil {
		t.Errorf("%s stat %q: no explicit absolute thresholds with a base step", file, p.Title)
		return
	}
	steps := d.Thresholds.Steps
	limit, below := 0.0, ""
	switch p.Title {
	case "Delivery rate":
		limit, below = reporter.DefaultMinDeliveryRate, "red"
	case "Fallback rate":
		limit, below = reporter.DefaultMaxFallbackRate, "green"
	}
	if below == "" {
		if p.Options.ColorMode != "none" || len(steps) != 1 || d.Color == nil || d.Color.Mode != "fixed" {
			t.Errorf("%s stat %q: colour mode %q, %d steps, color %+v; want no colour by value", file, p.Title, p.Options.ColorMode, len(steps), d.Color)
		}
		return
	}
	above := map[string]string{"red": "green", "green": "red"}[below]
	if p.Options.ColorMode == "none" || d.Color == nil || d.Color.Mode != "thresholds" || len(steps) != 2 ||
		steps[0].Color != below || steps[1].Color != above || steps[1].Value == nil || *steps[1].Value != limit {
		t.Errorf("%s stat %q: thresholds %+v, colour mode %q; want %s below %v, %s from it", file, p.Title, steps, p.Options.ColorMode, below, limit, above)
	}
	if d.Unit != "percentunit" {
		t.Errorf("%s stat %q: unit %q; want percentunit", file, p.Title, d.Unit)
	}
}

func expand(t *testing.T, sql string, from, to time.Time, interval time.Duration, vars map[string]string) string {
	t.Helper()
	sql, err := grafanatest.Expand(sql, from, to, interval, vars)
	if err != nil {
		t.Fatal(err)
	}
	return sql
}

func loadDashboards(t *testing.T) map[string]grafanatest.Dashboard {
	t.Helper()
	ds, err := grafanatest.Load("../../dashboards")
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// readerConn is an anonymous connection to the endpoint, as Grafana's: the
// dashboards' queries must pass the allowlist and the reader limits.
func (tr *traffic) readerConn(t *testing.T) clickhouse.Conn {
	t.Helper()
	if tr.reader == nil {
		tr.reader = chdbtest.Conn(t, tr.f.CH.ReaderOptions())
	}
	return tr.reader
}

// scalar runs a stat panel's query: one row, one numeric (or NULL) column.
func (tr *traffic) scalar(t *testing.T, sql string) *float64 {
	t.Helper()
	rows, err := tr.readerConn(t).Query(t.Context(), sql)
	if err != nil {
		t.Fatalf("query: %v\n%s", err, sql)
	}
	defer rows.Close()
	cts := rows.ColumnTypes()
	if len(cts) != 1 || !rows.Next() {
		t.Fatalf("stat query gave %d columns and no row:\n%s", len(cts), sql)
	}
	v := reflect.New(cts[0].ScanType())
	if err := rows.Scan(v.Interface()); err != nil {
		t.Fatalf("scan: %v", err)
	}
	x := v.Elem()
	if x.Kind() == reflect.Pointer {
		if x.IsNil() {
			return nil
		}
		x = x.Elem()
	}
	var f float64
	switch {
	case x.CanFloat():
		f = x.Float()
	case x.CanUint():
		f = float64(x.Uint())
	case x.CanInt():
		f = float64(x.Int())
	default:
		t.Fatalf("stat query gave a %s", x.Type())
	}
	return &f
}

func (tr *traffic) runAll(t *testing.T, sql string) int {
	t.Helper()
	n, _ := tr.run(t, sql)
	return n
}

// run runs sql and returns how many rows it gave, and its column names.
func (tr *traffic) run(t *testing.T, sql string) (n int, cols []string) {
	t.Helper()
	rows, err := tr.readerConn(t).Query(t.Context(), sql)
	if err != nil {
		t.Fatalf("query: %v\n%s", err, sql)
	}
	defer rows.Close()
	cols = rows.Columns()
	for rows.Next() {
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("query: %v\n%s", err, sql)
	}
	return n, cols
}

func ratio(num, den uint64) *float64 {
	if den == 0 {
		return nil
	}
	r := float64(num) / float64(den)
	return &r
}

func num(n uint64) *float64 { f := float64(n); return &f }

// apiStats are the stat panels' figures according to the API.
func (tr *traffic) apiStats(t *testing.T, from, to time.Time, channel string) map[string]*float64 {
	q := url.Values{"from": {from.Format(time.RFC3339Nano)}, "to": {to.Format(time.RFC3339Nano)}}
	if channel != "" {
		q.Set("channel", channel)
	}
	var chs reporter.ChannelsResponse
	tr.get(t, "/api/v1/channels", q, &chs)
	var fb reporter.FallbackResponse
	tr.get(t, "/api/v1/fallback", q, &fb)
	var att, del, fail, pend, polled, verified uint64
	for _, c := range chs.Channels {
		att, del, fail, pend = att+c.Attempts, del+c.Delivered, fail+c.Failed, pend+c.Pending
		if c.Verification != nil {
			polled, verified = polled+c.Verification.Polled, verified+c.Verification.Verified
		}
	}
	stats := map[string]*float64{
		"channel-success.json/Attempts":                num(att),
		"channel-success.json/Delivered":               num(del),
		"channel-success.json/Failed":                  num(fail),
		"channel-success.json/Pending":                 num(pend),
		"channel-success.json/Delivery rate":           ratio(del, del+fail),
		"fallback-resends.json/Journeys":               num(fb.OTPs),
		"fallback-resends.json/Journeys with fallback": num(fb.FallbackOTPs),
		"fallback-resends.json/Fallback rate":          fb.FallbackRate,
		"fallback-resends.json/Delivered on primary":   num(fb.Outcomes.DeliveredPrimary),
		"fallback-resends.json/Delivered on fallback":  num(fb.Outcomes.DeliveredFallback),
		"fallback-resends.json/Failed":                 num(fb.Outcomes.Failed),
		"fallback-resends.json/Pending":                num(fb.Outcomes.Pending),
		// With a channel chosen, the journeys that channel delivered
		// first, in the stat as in the API.
		"channel-success.json/Verification conversion": ratio(verified, polled),
	}
	return stats
}

// checkErrorCodes holds the "Top error codes" panel's rows to the API's
// errors by channel, a failure without a code named (none), as the
// console and the reports name it, not a blank cell.
func (tr *traffic) checkErrorCodes(t *testing.T, sql string, from, to time.Time, channel string) {
	t.Helper()
	var chs reporter.ChannelsResponse
	tr.get(t, "/api/v1/channels", windowQuery(from, to, channel), &chs)
	want := map[[2]string]uint64{}
	for _, c := range chs.Channels {
		for _, e := range c.Errors {
			code := e.Code
			if code == "" {
				code = "(none)"
			}
			want[[2]string{c.Channel, code}] = e.Count
		}
	}
	rows, err := tr.readerConn(t).Query(t.Context(), sql)
	if err != nil {
		t.Fatalf("query: %v\n%s", err, sql)
	}
	defer rows.Close()
	n, none := 0, false
	for rows.Next() {
		var ch, code string
		var failed uint64
		if err := rows.Scan(&ch, &code, &failed); err != nil {
			t.Fatal(err)
		}
		n++
		none = none || code == "(none)"
		if w, ok := want[[2]string{ch, code}]; !ok || w != failed {
			t.Errorf("Top error codes (channel %q): %s %q %d; the API counts %d (known: %v)", channel, ch, code, failed, w, ok)
		}
	}
	if n == 0 || !none {
		t.Errorf("Top error codes (channel %q): %d rows, (none) among them %v; want the failures, those without a code as (none) (one was published above)", channel, n, none)
	}
}

func testDashboards(t *testing.T, tr *traffic) {
	from, to := simStart.Add(-time.Hour), tr.truth.At.Add(time.Hour)
	// Two evaluations of one firing in the window, for the Alerts panel to
	// list as one row.
	// And a delivery_slow firing, whose figures are milliseconds.
	slow := events.Alert{Rule: reporter.RuleDeliverySlow, Channel: "SMS", State: events.AlertFiring, Since: simStart.Add(10 * time.Minute), From: simStart.Add(-50 * time.Minute), To: simStart.Add(10 * time.Minute),
		Value: 65000, Threshold: 60000, Volume: 80, Summary: "SMS p95 latency (dispatch → DELIVERED) 65.0 s above 60.0 s"}
	// The fallback rate's firings were 10 % the hour before; the
	// latency's has no window before.
	was := 0.1
	for _, at := range []time.Duration{10 * time.Minute, 15 * time.Minute, 0} {
		alert := events.Alert{Rule: reporter.RuleFallbackRateHigh, State: events.AlertFiring, Since: simStart.Add(10 * time.Minute), From: simStart.Add(at - time.Hour), To: simStart.Add(at),
			Value: 0.3, Threshold: 0.2, Volume: 60, Summary: "fallback rate 30.0% above 20.0%",
			Before: &events.AlertBefore{From: simStart.Add(at - 2*time.Hour), To: simStart.Add(at - time.Hour), Value: &was, Volume: 50}}
		if at == 10*time.Minute {
			alert.SilencedBy = "the-silence-at-10" // the episode's: the latest a silence covered
		}
		if at == 0 {
			alert = slow
		}
		m, err := events.NewAlertMessage(&alert)
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.f.Broker.Publish(t.Context(), m); err != nil {
			t.Fatal(err)
		}
		tr.f.WaitCount(t, fmt.Sprintf("SELECT count() FROM alerts FINAL WHERE event_id = '%s'", m.ID), 1)
	}
	// Resend decisions in the window, one of each outcome: before a
	// delivery on via, for an OTP delivered on another channel, and for an
	// OTP with no fact.
	var delivered store.EventPage
	tr.get(t, "/api/v1/events", url.Values{"from": {from.Format(time.RFC3339Nano)}, "to": {to.Format(time.RFC3339Nano)}, "status": {"DELIVERED"}, "channel": {"SMS"}, "limit": {"1"}}, &delivered)
	if len(delivered.Events) != 1 {
		t.Fatalf("no SMS delivery in the traffic: %+v", delivered)
	}
	e := delivered.Events[0]
	for i, r := range []events.Resend{
		{OTPID: e.OTPID, Via: "SMS", TriggerChannel: "VIBER", TriggerStatus: "UNDELIVERABLE", Result: events.ResendSent, DecidedAt: e.Time.Add(-time.Second)},
		{OTPID: e.OTPID, Via: "VOICE", TriggerChannel: "SMS", TriggerStatus: "TIMED_OUT", Result: events.ResendDryRun, DryRun: true, DecidedAt: e.Time.Add(-2 * time.Second)},
		{OTPID: "00000000-0000-4000-8000-00000000d0d0", Via: "VOICE", TriggerChannel: "SMS", TriggerStatus: "UNDELIVERABLE", Result: events.ResendSkipped, DecidedAt: simStart},
	} {
		r.DecisionID, r.Attempt = fmt.Sprintf("dashboard-%d", i), 1
		m, err := events.NewResendMessage(&r)
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.f.Broker.Publish(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	tr.f.WaitCount(t, "SELECT count() FROM resends WHERE decision_id LIKE 'dashboard-%'", 3)
	// An SMS failure without an error code, as the poller recovers one
	// (tyntec's v1 events carry none), for "Top error codes" to name.
	noCode := "00000000-0000-4000-8000-00000000c0de"
	for i, st := range []events.Status{events.StatusDispatched, events.StatusUndeliverable} {
		ds := events.DeliveryStatus{OTPID: noCode, Channel: events.ChannelSMS, Status: st, Timestamp: simStart.Add(5*time.Minute + time.Duration(i)*10*time.Second),
			ReceivedAt: time.Now().UTC(), Source: events.SourcePoll}
		m, err := events.NewDeliveryMessage(&ds)
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.f.Broker.Publish(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	tr.f.WaitCount(t, "SELECT count() FROM delivery_events WHERE otp_id = '"+noCode+"'", 2)
	// Stored is not yet counted: the insert's materialized views mark its
	// hours for the rollups after its rows are readable, and the stats
	// below are held to the API's answer.
	polltest.Until(t, 30*time.Second, "the API to count the SMS failure without a code", func() bool {
		var chs reporter.ChannelsResponse
		tr.get(t, "/api/v1/channels", windowQuery(from, to, "SMS"), &chs)
		for _, c := range chs.Channels {
			for _, e := range c.Errors {
				if e.Code == "" {
					return true
				}
			}
		}
		return false
	})
	for _, channel := range []string{"", "SMS"} {
		vars := map[string]string{"profile": "__all", "channel": "__all", "datasource": "ClickHouse"}
		if channel != "" {
			vars["channel"] = channel
		}
		want := tr.apiStats(t, from, to, channel)
		checked := 0
		for file, d := range loadDashboards(t) {
			for _, v := range d.Templating.List {
				if v.Type != "query" {
					continue
				}
				// Grafana writes a custom allValue unformatted, where a value
				// chosen is ${var:sqlstring}, quoted: the allValue is quoted.
				if v.Datasource == nil || v.Datasource.Type != "grafana-clickhouse-datasource" || v.AllValue != "'"+grafanatest.All+"'" {
					t.Errorf("%s variable %s: want the ClickHouse data source and allValue '__all', quoted", file, v.Name)
				}
				if q, ok := v.Query.(string); ok && tr.runAll(t, expand(t, q, from, to, time.Minute, vars)) == 0 {
					t.Errorf("%s variable %s has no values", file, v.Name)
				}
			}
			for _, p := range d.Panels {
				if p.Type == "stat" && channel == "" {
					checkColours(t, file, &p)
				}
				if p.Datasource.Type != "grafana-clickhouse-datasource" || p.Datasource.UID != "${datasource}" {
					t.Errorf("%s %q: data source %+v; want the $datasource variable", file, p.Title, p.Datasource)
				}
				for _, tg := range p.Targets {
					sql := expand(t, tg.RawSQL, from, to, time.Minute, vars)
					if p.Type != "stat" {
						n, cols := tr.run(t, sql)
						switch {
						case p.Title == "Alerts":
							// The API's firings of the same window.
							q := url.Values{"from": {from.Format(time.RFC3339Nano)}, "to": {to.Format(time.RFC3339Nano)}, "channel": {channel}}
							var eps reporter.AlertEpisodesResponse
							tr.get(t, "/api/v1/alerts/episodes", q, &eps)
							if n != len(eps.Episodes) || n == 0 {
								t.Errorf("%s %q (channel %q): %d rows; the API lists %d firings (at least the one published here)", file, p.Title, channel, n, len(eps.Episodes))
							}
							// Each figure in its rule's unit.
							for _, want := range [][5]string{{reporter.RuleFallbackRateHigh, "30%", "20%", "10%", "the-silence-at-10"}, {reporter.RuleDeliverySlow, "65 s", "60 s", "", ""}} {
								var observed, threshold, before, silenced string
								err := tr.readerConn(t).QueryRow(t.Context(), "SELECT observed, threshold, before, silenced_by FROM ("+sql+") WHERE rule = ? AND since = ? LIMIT 1", want[0], simStart.Add(10*time.Minute)).Scan(&observed, &threshold, &before, &silenced)
								if (channel == "" || channel == "SMS" || want[0] == reporter.RuleFallbackRateHigh) && (err != nil || observed != want[1] || threshold != want[2] || before != want[3] || silenced != want[4]) {
									t.Errorf("%s %q (channel %q), %s: observed %q, threshold %q, before %q, silenced by %q, %v; want %s, %s, %q, %q", file, p.Title, channel, want[0], observed, threshold, before, silenced, err, want[1], want[2], want[3], want[4])
								}
							}
							for _, e := range eps.Episodes {
								if e.Rule == reporter.RuleFallbackRateHigh && e.SilencedBy != "the-silence-at-10" {
									t.Errorf("/api/v1/alerts/episodes: the fallback rate's firing silenced by %q; want the-silence-at-10, the latest a silence covered", e.SilencedBy)
								}
							}
						case p.Title == "Top error codes":
							tr.checkErrorCodes(t, sql, from, to, channel)
						case p.Title == "Resends and their outcome":
							tr.checkResends(t, sql, url.Values{"from": {from.Format(time.RFC3339Nano)}, "to": {to.Format(time.RFC3339Nano)}, "channel": {channel}})
						case p.Title == "Missed webhooks recovered by polling":
							// Attempts with a polled fact, methods included,
							// as the API's recovered_by_polling.
							got, want := tr.recoveredByPolling(t, from, to, channel), tr.apiRecovered(t, from, to, channel)
							if n == 0 || fmt.Sprint(got) != fmt.Sprint(want) {
								t.Errorf("%s %q (channel %q): %d rows, %v; API recovered_by_polling: %v", file, p.Title, channel, n, got, want)
							}
						case p.Title == "Time added by fallback":
							// A row per delivered outcome, counting every
							// delivered journey (TestDashboardPanelsAgreeWithTheAPI
							// holds the percentiles to the API's).
							var fb reporter.FallbackResponse
							tr.get(t, "/api/v1/fallback", windowQuery(from, to, channel), &fb)
							got := tr.timeAddedByFallback(t, from, to, channel)
							if n == 0 || got[store.OutcomeDeliveredPrimary].otps != fb.Outcomes.DeliveredPrimary || got[store.OutcomeDeliveredFallback].otps != fb.Outcomes.DeliveredFallback {
								t.Errorf("%s %q (channel %q): %+v; API outcomes %+v", file, p.Title, channel, got, fb.Outcomes)
							}
						case n == 0:
							t.Errorf("%s %q (channel %q): no rows", file, p.Title, channel)
						}
						for _, c := range cols {
							want := ""
							switch {
							case rateColumn.MatchString(c):
								want = "percentunit"
							case msColumn.MatchString(c):
								want = "ms"
							}
							if want != "" && p.UnitOf(c) != want {
								t.Errorf("%s %q column %s: unit %q; want %s", file, p.Title, c, p.UnitOf(c), want)
							}
						}
						continue
					}
					key := file + "/" + p.Title
					w, ok := want[key]
					if !ok {
						if channel == "" {
							t.Errorf("stat panel %s has no API figure to compare with", key)
						}
						continue
					}
					got := tr.scalar(t, sql)
					checked++
					if (got == nil) != (w == nil) || (got != nil && math.Abs(*got-*w) > 1e-9) {
						t.Errorf("stat %s (channel %q) = %v; API says %v", key, channel, deref(got), deref(w))
					}
				}
			}
		}
		if checked < len(want) {
			t.Errorf("checked %d stat panels; want %d", checked, len(want))
		}
	}
}

// checkResends holds the resends panel's rows (sql, expanded) to the
// groups of GET /api/v1/resends for the same window: the panel's columns
// are a store.ResendGroup's fields, in order.
func (tr *traffic) checkResends(t *testing.T, sql string, q url.Values) {
	t.Helper()
	var api reporter.ResendsResponse
	tr.get(t, "/api/v1/resends", q, &api)
	rows, err := tr.readerConn(t).Query(t.Context(), sql)
	if err != nil {
		t.Fatalf("query: %v\n%s", err, sql)
	}
	defer rows.Close()
	var panel []store.ResendGroup
	for rows.Next() {
		var g store.ResendGroup
		if err := rows.Scan(&g.Result, &g.TriggerChannel, &g.TriggerStatus, &g.Via, &g.Decisions, &g.DeliveredVia, &g.DeliveredOtherwise, &g.NotDelivered, &g.DeliverAfterMS); err != nil {
			t.Fatalf("scan the resends panel: %v", err)
		}
		panel = append(panel, g)
	}
	got, _ := json.Marshal(panel)
	want, _ := json.Marshal(api.Groups)
	if len(panel) == 0 || string(got) != string(want) {
		t.Errorf("resends panel (channel %q):\n%s\nthe API's groups:\n%s", q.Get("channel"), got, want)
	}
}

func deref(f *float64) any {
	if f == nil {
		return nil
	}
	return *f
}
