package reporter_test

import (
	"fmt"
	"math"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/grafanatest"
	"github.com/otpscope/otpscope/internal/reporter"
	"github.com/otpscope/otpscope/internal/store"
)

// dashboardPanel returns the one panel of file titled title.
func dashboardPanel(t *testing.T, file, title string) grafanatest.Panel {
	t.Helper()
	var found []grafanatest.Panel
	for _, p := range loadDashboards(t)[file].Panels {
		if p.Title == title {
			found = append(found, p)
		}
	}
	if len(found) != 1 || len(found[0].Targets) != 1 {
		t.Fatalf("%s: %d panels titled %q; want one with one query", file, len(found), title)
	}
	return found[0]
}

func panelVars(channel string) map[string]string {
	vars := map[string]string{"profile": "__all", "channel": "__all", "datasource": "ClickHouse"}
	if channel != "" {
		vars["channel"] = channel
	}
	return vars
}

// variableValues lists what each dashboard's query variable name offers over
// [from, to), by dashboard file.
func (tr *traffic) variableValues(t *testing.T, name string, from, to time.Time) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for file, d := range loadDashboards(t) {
		for _, v := range d.Templating.List {
			if q, ok := v.Query.(string); ok && v.Name == name {
				rows, err := grafanatest.ReadAll(t.Context(), tr.readerConn(t), expand(t, q, from, to, time.Minute, panelVars("")))
				if err != nil {
					t.Fatalf("%s variable %s: %v", file, name, err)
				}
				out[file] = rows
			}
		}
	}
	if len(out) != 2 {
		t.Fatalf("variable %s in %d dashboards; want the two ClickHouse ones", name, len(out))
	}
	return out
}

func windowQuery(from, to time.Time, channel string) url.Values {
	q := url.Values{"from": {from.Format(time.RFC3339Nano)}, "to": {to.Format(time.RFC3339Nano)}}
	if channel != "" {
		q.Set("channel", channel)
	}
	return q
}

// ttdRow is one row of the panel "Time added by fallback".
type ttdRow struct {
	otps     uint64
	p50, p95 *float64
}

func (tr *traffic) timeAddedByFallback(t *testing.T, from, to time.Time, channel string) map[string]ttdRow {
	t.Helper()
	p := dashboardPanel(t, "fallback-resends.json", "Time added by fallback")
	q := "SELECT outcome, otps, toNullable(toFloat64(time_to_deliver_p50_ms)), toNullable(toFloat64(time_to_deliver_p95_ms)) FROM (" +
		expand(t, p.Targets[0].RawSQL, from, to, time.Minute, panelVars(channel)) + ")"
	rows, err := tr.readerConn(t).Query(t.Context(), q)
	if err != nil {
		t.Fatalf("query: %v\n%s", err, q)
	}
	defer rows.Close()
	out := map[string]ttdRow{}
	for rows.Next() {
		var outcome string
		var r ttdRow
		if err := rows.Scan(&outcome, &r.otps, &r.p50, &r.p95); err != nil {
			t.Fatal(err)
		}
		out[outcome] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// recoveredByPolling sums the panel "Missed webhooks recovered by polling"
// per channel.
func (tr *traffic) recoveredByPolling(t *testing.T, from, to time.Time, channel string) map[string]uint64 {
	t.Helper()
	p := dashboardPanel(t, "fallback-resends.json", "Missed webhooks recovered by polling")
	q := "SELECT channel, toUInt64(sum(recovered)) FROM (" + expand(t, p.Targets[0].RawSQL, from, to, time.Minute, panelVars(channel)) + ") GROUP BY channel"
	return tr.countsBy(t, q)
}

// countsBy runs q, whose rows are a name and a count, and returns the
// counts by name.
func (tr *traffic) countsBy(t *testing.T, q string) map[string]uint64 {
	t.Helper()
	rows, err := tr.readerConn(t).Query(t.Context(), q)
	if err != nil {
		t.Fatalf("query: %v\n%s", err, q)
	}
	defer rows.Close()
	out := map[string]uint64{}
	for rows.Next() {
		var name string
		var n uint64
		if err := rows.Scan(&name, &n); err != nil {
			t.Fatal(err)
		}
		out[name] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// apiRecovered is the API's recovered_by_polling per channel, the channels
// with none left out.
func (tr *traffic) apiRecovered(t *testing.T, from, to time.Time, channel string) map[string]uint64 {
	t.Helper()
	var chs reporter.ChannelsResponse
	tr.get(t, "/api/v1/channels", windowQuery(from, to, channel), &chs)
	out := map[string]uint64{}
	for _, c := range chs.Channels {
		if c.RecoveredByPolling > 0 {
			out[c.Channel] = c.RecoveredByPolling
		}
	}
	return out
}

// conversionStat runs the stat "Verification conversion".
func (tr *traffic) conversionStat(t *testing.T, from, to time.Time, channel string) *float64 {
	t.Helper()
	p := dashboardPanel(t, "channel-success.json", "Verification conversion")
	return tr.scalar(t, expand(t, p.Targets[0].RawSQL, from, to, time.Minute, panelVars(channel)))
}

// apiConversion is the API's verification conversion of the window's
// journeys delivered (first) on channel, every channel for "".
func (tr *traffic) apiConversion(t *testing.T, from, to time.Time, channel string) *float64 {
	t.Helper()
	var chs reporter.ChannelsResponse
	tr.get(t, "/api/v1/channels", windowQuery(from, to, channel), &chs)
	var polled, verified uint64
	for _, c := range chs.Channels {
		if c.Verification != nil {
			polled, verified = polled+c.Verification.Polled, verified+c.Verification.Verified
		}
	}
	return ratio(verified, polled)
}

// hostileProfile is a profile id that would end a quoted literal and widen
// the query it is put in.
const hostileProfile = `evil\' OR 1=1 OR '`

// rate4 is a rate as the dashboards round it, to four places.
func rate4(r *float64) string {
	if r == nil {
		return "null"
	}
	return fmt.Sprintf("%.4f", *r)
}

func samePtr(a, b *float64) bool {
	return (a == nil) == (b == nil) && (a == nil || math.Abs(*a-*b) <= 1e-9)
}

// TestDashboardPanelsAgreeWithTheAPI holds three panels to the API on
// journeys built for them: journeys whose DISPATCHED was lost (no time to
// deliver), conversion attributed to the delivering channel (a push-first
// login an SMS delivered, a fallback delivered by Voice), a final status
// polled more than a day after its journey's first attempt, facts the
// poller recovered (an SMS webhook and a push approval) and a recovered fact
// of an attempt that started before the window.
func TestDashboardPanelsAgreeWithTheAPI(t *testing.T) {
	f := newFixture(t)
	ar := chi.NewRouter()
	reporter.NewAPI(f.DB, reporter.AlertRules{}, brokertest.Logger(t)).Mount(ar)
	api := httptest.NewServer(ar)
	t.Cleanup(api.Close)
	tr := &traffic{f: f, api: api}

	base := time.Date(2026, 8, 3, 10, 0, 0, 0, time.UTC)
	at := func(d string) time.Time {
		x, err := time.ParseDuration(d)
		if err != nil {
			t.Fatal(err)
		}
		return base.Add(x)
	}
	otp := func(n int) string { return fmt.Sprintf("eeeeeeee-0000-4000-8000-%012d", n) }
	var b store.Batch
	fact := func(id, ch, st, when string, polled bool) {
		d := events.DeliveryStatus{OTPID: id, ProfileID: "prof-d", Channel: events.Channel(ch), Status: events.Status(st),
			Timestamp: at(when), ReceivedAt: at(when).Add(time.Second), Source: events.SourceWebhook}
		if polled {
			d.Source, d.MissedWebhook, d.ReceivedAt = events.SourcePoll, true, at(when).Add(time.Minute)
		}
		if d.Status.Failed() {
			d.Error = &events.DeliveryError{Code: "tyntec::" + ch + "::" + st}
		}
		b.Deliveries = append(b.Deliveries, store.DeliveryRow{DeliveryStatus: d, EventID: events.DeliveryID(&d)})
	}
	status := func(id string, s events.OTPState, observed string) {
		b.Statuses = append(b.Statuses, store.OTPStatusRow{EventID: fmt.Sprintf("os-%d", len(b.Statuses)),
			OTPStatus: events.OTPStatus{OTPID: id, API: "v4", Status: s, ProfileID: "prof-d", ObservedAt: at(observed), Source: events.SourcePoll, SampleRate: 1}})
	}
	push := func(uuid, corr, st, created, updated, source string) {
		b.Push = append(b.Push, store.PushRow{EventID: fmt.Sprintf("pe-%d", len(b.Push)), PushEvent: events.PushEvent{UUID: uuid, Status: st,
			CreatedAt: at(created), UpdatedAt: at(updated), CorrelationID: corr, Source: source, ReceivedAt: at(updated).Add(time.Second)}})
	}

	// [0, 15m): delivered on the primary, one journey with no known start.
	fact(otp(1), "SMS", "DISPATCHED", "0s", false)
	fact(otp(1), "SMS", "DELIVERED", "4s", false)
	status(otp(1), events.OTPVerified, "1m")
	fact(otp(2), "SMS", "DISPATCHED", "5m", false)
	fact(otp(2), "SMS", "DELIVERED", "5m5s", false)
	status(otp(2), events.OTPExpired, "11m")
	fact(otp(3), "SMS", "DELIVERED", "10m", false)  // its DISPATCHED lost
	fact(otp(11), "SMS", "DISPATCHED", "7m", false) // delivered within the second: 0 ms
	fact(otp(11), "SMS", "DELIVERED", "7m", false)
	status(otp(3), events.OTPVerified, "12m")
	// [15m, 35m): delivered after a fallback.
	fact(otp(4), "SMS", "DISPATCHED", "20m", false)
	fact(otp(4), "SMS", "UNDELIVERABLE", "20m2s", false)
	fact(otp(4), "VOICE", "DISPATCHED", "20m3s", false)
	fact(otp(4), "VOICE", "DELIVERED", "20m9s", false)
	status(otp(4), events.OTPVerified, "22m")
	fact(otp(5), "VIBER", "DISPATCHED", "30m", false)
	fact(otp(5), "VIBER", "TIMED_OUT", "30m40s", false)
	fact(otp(5), "SMS", "DELIVERED", "30m45s", false) // the SMS DISPATCHED lost
	status(otp(5), events.OTPExpired, "33m")
	// [35m, 1h): a denied push and the SMS OTP that delivered the login; a
	// push approval the poller read; an SMS whose webhooks the poller
	// recovered; a status polled more than a day after the journey began.
	push("eeeeeeee-0000-4000-8000-0000000000a1", "login-6", events.PushDenied, "40m", "40m5s", events.SourceWebhook)
	b.Links = append(b.Links, store.JourneyLinkRow{OTPID: otp(6), JourneyID: "login-6", Source: "track", LinkedAt: at("40m6s"), EventID: "link-6"})
	fact(otp(6), "SMS", "DISPATCHED", "40m6s", false)
	fact(otp(6), "SMS", "DELIVERED", "40m9s", false)
	status(otp(6), events.OTPVerified, "41m")
	push("eeeeeeee-0000-4000-8000-0000000000a2", "eeeeeeee-0000-4000-8000-0000000000a2", events.PushApproved, "45m", "45m3s", events.SourcePoll)
	fact(otp(8), "SMS", "DISPATCHED", "50m", true)
	fact(otp(8), "SMS", "DELIVERED", "50m3s", true)
	fact(otp(10), "SMS", "DISPATCHED", "55m", false)
	fact(otp(10), "SMS", "DELIVERED", "55m2s", false)
	status(otp(10), events.OTPVerified, "25h55m")
	// Pending and failed journeys, which a path's delivery rate leaves out
	// and counts: an SMS not settled, an SMS undeliverable, and a denied
	// push whose SMS OTP is not settled (PUSH>SMS pending).
	fact(otp(12), "SMS", "DISPATCHED", "12m", false)
	fact(otp(13), "SMS", "DISPATCHED", "13m", false)
	fact(otp(13), "SMS", "UNDELIVERABLE", "13m5s", false)
	push("eeeeeeee-0000-4000-8000-0000000000a3", "login-14", events.PushDenied, "46m", "46m5s", events.SourceWebhook)
	b.Links = append(b.Links, store.JourneyLinkRow{OTPID: otp(14), JourneyID: "login-14", Source: "track", LinkedAt: at("46m6s"), EventID: "link-14"})
	fact(otp(14), "SMS", "DISPATCHED", "46m6s", false)
	// A profile no build accepts now (a silent-auth profileId was free
	// text): stored, it must be neither offered nor able to widen a query.
	fact(otp(15), "SMS", "DISPATCHED", "14m", false)
	fact(otp(15), "SMS", "DELIVERED", "14m3s", false)
	b.Deliveries[len(b.Deliveries)-1].ProfileID, b.Deliveries[len(b.Deliveries)-2].ProfileID = hostileProfile, hostileProfile
	// Before the window: an SMS attempt whose DELIVERED, in the window, the
	// poller recovered.
	fact(otp(9), "SMS", "DISPATCHED", "-10s", false)
	fact(otp(9), "SMS", "DELIVERED", "5s", true)
	if err := f.DB.Insert(t.Context(), &b); err != nil {
		t.Fatal(err)
	}

	from, to := base, base.Add(time.Hour)
	tr.readerConn(t) // one connection for the subtests, closed with the test

	// The panels read the hours the rollup job computed and compute the
	// others live: each subtest runs before the job (every hour live) and
	// after it (every hour rolled up).
	agree := func(t *testing.T) { tr.panelsAgree(t, at, from, to) }
	t.Run("live", agree)
	time.Sleep(1100 * time.Millisecond) // past a single server's slack
	if _, err := f.DB.RefreshRollups(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Run("rolled up", agree)

	// Facts stored since the job's run: in an hour it computed, the panels
	// show them at its next run (README, "Dashboards and connecting
	// Grafana"), where the API's exact answers have them at once; in an
	// hour no run computed (no fact near it before), at once.
	attempts := func(from, to time.Time) *float64 {
		p := dashboardPanel(t, "channel-success.json", "Attempts")
		return tr.scalar(t, expand(t, p.Targets[0].RawSQL, from, to, time.Minute, panelVars("")))
	}
	journeys := func(from, to time.Time) *float64 {
		p := dashboardPanel(t, "fallback-resends.json", "Journeys")
		return tr.scalar(t, expand(t, p.Targets[0].RawSQL, from, to, time.Minute, panelVars("")))
	}
	apiFigures := func(from, to time.Time) (attempts, journeys *float64) {
		want := tr.apiStats(t, from, to, "")
		return want["channel-success.json/Attempts"], want["fallback-resends.json/Journeys"]
	}
	later, laterTo := base.Add(72*time.Hour), base.Add(73*time.Hour)
	a0, j0 := attempts(from, to), journeys(from, to)
	b = store.Batch{}
	fact(otp(16), "SMS", "DISPATCHED", "57m", false)
	fact(otp(16), "SMS", "DELIVERED", "57m2s", false)
	fact(otp(17), "SMS", "DISPATCHED", "72h10m", false)
	// Of profiles not seen before: the lists offer them as the panels
	// count them (below, and "variable lists").
	b.Deliveries[0].ProfileID, b.Deliveries[1].ProfileID, b.Deliveries[2].ProfileID = "prof-e", "prof-e", "prof-f"
	if err := f.DB.Insert(t.Context(), &b); err != nil {
		t.Fatal(err)
	}
	if got := tr.variableValues(t, "profile", later, laterTo); fmt.Sprint(got) != "map[channel-success.json:[prof-f] fallback-resends.json:[prof-f]]" {
		t.Errorf("profiles offered over an hour no run computed: %q; want prof-f (its facts read live)", got)
	}
	wantA, wantJ := apiFigures(from, to)
	if a, j := attempts(from, to), journeys(from, to); deref(a) != deref(a0) || deref(j) != deref(j0) || *wantA != *a0+1 || *wantJ != *j0+1 {
		t.Errorf("an OTP stored in a rolled-up hour since the job: panels Attempts %v, Journeys %v (before it %v, %v); want them unchanged, and the API one more (%v, %v)",
			deref(a), deref(j), deref(a0), deref(j0), deref(wantA), deref(wantJ))
	}
	// Read as if ten minutes later with no run since: the hours the facts
	// marked after the run are computed live, so a stopped job makes the
	// panels slower, not older.
	for _, title := range []string{"channel-success.json/Attempts", "fallback-resends.json/Journeys"} {
		file, name, _ := strings.Cut(title, "/")
		p := dashboardPanel(t, file, name)
		sql := expand(t, p.Targets[0].RawSQL, from, to, time.Minute, panelVars(""))
		if !strings.Contains(sql, "now64(3)") {
			t.Fatalf("%s reads no clock: %s", title, sql)
		}
		got := tr.scalar(t, strings.ReplaceAll(sql, "now64(3)", "(now64(3) + INTERVAL 10 MINUTE)"))
		if want := map[string]*float64{"channel-success.json/Attempts": wantA, "fallback-resends.json/Journeys": wantJ}[title]; deref(got) != deref(want) {
			t.Errorf("%s read ten minutes after the job's last run: %v; want the API's %v (the hours marked since computed live)", title, deref(got), deref(want))
		}
	}
	if a, j := attempts(later, laterTo), journeys(later, laterTo); deref(a) != 1.0 || deref(j) != 1.0 {
		t.Errorf("an OTP stored in an hour no run computed: panels Attempts %v, Journeys %v; want 1, 1 (computed live)", deref(a), deref(j))
	}
	time.Sleep(1100 * time.Millisecond)
	if _, err := f.DB.RefreshRollups(t.Context()); err != nil {
		t.Fatal(err)
	}
	if a, j := attempts(from, to), journeys(from, to); deref(a) != deref(wantA) || deref(j) != deref(wantJ) {
		t.Errorf("after the next run: panels Attempts %v, Journeys %v; API %v, %v", deref(a), deref(j), deref(wantA), deref(wantJ))
	}
	t.Run("rolled up, with a fact since", agree)
}

// panelsAgree holds the panels of TestDashboardPanelsAgreeWithTheAPI to the
// API over [from, to); at places its journeys' facts.
func (tr *traffic) panelsAgree(t *testing.T, at func(string) time.Time, from, to time.Time) {
	t.Run("stats", func(t *testing.T) {
		// The whole hour (after the job: its sums) and a window that
		// cuts it (its stored rows), for every channel and for SMS.
		for _, w := range [][2]time.Time{{from, to}, {at("5m"), at("53m")}} {
			for _, ch := range []string{"", "SMS"} {
				want := tr.apiStats(t, w[0], w[1], ch)
				for key, v := range want {
					file, title, _ := strings.Cut(key, "/")
					p := dashboardPanel(t, file, title)
					got := tr.scalar(t, expand(t, p.Targets[0].RawSQL, w[0], w[1], time.Minute, panelVars(ch)))
					if !samePtr(got, v) {
						t.Errorf("[%s, %s) channel %q: stat %s = %v; API says %v", w[0].Format(time.TimeOnly), w[1].Format(time.TimeOnly), ch, key, deref(got), deref(v))
					}
				}
			}
		}
	})
	t.Run("time series by the hour", func(t *testing.T) {
		// At an interval of whole hours the series that count read a
		// rolled-up hour inside the window from its sums: the same rows as
		// from its stored rows (the sums turned off), for a window of one
		// whole hour and one that also cuts the hour before; and the whole
		// hour's points do not need its stored rows at all.
		const sums = "$__interval_s % 3600 = 0"
		noRows := strings.NewReplacer("FROM hour_attempts", "FROM (SELECT * FROM hour_attempts WHERE 0)", "FROM hour_journeys", "FROM (SELECT * FROM hour_journeys WHERE 0)")
		for _, title := range []string{"channel-success.json/Delivery rate per channel", "channel-success.json/Volumes by status", "channel-success.json/Method success rate",
			"fallback-resends.json/Missed webhooks recovered by polling", "fallback-resends.json/Fallback rate over time"} {
			file, name, _ := strings.Cut(title, "/")
			sql := dashboardPanel(t, file, name).Targets[0].RawSQL
			if !strings.Contains(sql, sums) {
				t.Fatalf("%s: no %q", title, sums)
			}
			for _, w := range [][2]time.Time{{from, to}, {at("-30m"), to}} {
				for _, ch := range []string{"", "SMS"} {
					read := func(sql string) []string {
						rows, err := grafanatest.ReadAll(t.Context(), tr.readerConn(t), expand(t, sql, w[0], w[1], time.Hour, panelVars(ch)))
						if err != nil {
							t.Fatalf("%s: %v", title, err)
						}
						return rows
					}
					got, want := read(sql), read(strings.ReplaceAll(sql, sums, "0 = 1"))
					if len(want) == 0 || !slices.Equal(got, want) {
						t.Errorf("%s [%s, %s) channel %q by the hour: %q; from the stored rows %q", title, w[0].Format(time.TimeOnly), w[1].Format(time.TimeOnly), ch, got, want)
					}
					if w[0] == from {
						if sumsOnly := read(noRows.Replace(sql)); !slices.Equal(sumsOnly, want) {
							t.Errorf("%s [%s, %s) channel %q by the hour without the stored rows: %q; want %q", title, w[0].Format(time.TimeOnly), w[1].Format(time.TimeOnly), ch, sumsOnly, want)
						}
					}
				}
			}
		}
	})
	t.Run("latency per channel", func(t *testing.T) {
		// The tables' exact percentiles are the API's (one rule for the
		// position: quantileExact's, which the tables apply to counts per
		// value); NULL for a channel none of whose attempts has a latency.
		// "Per method" lists the verification methods of "Per channel".
		for _, panel := range []struct {
			title, key string
			methods    bool
			least      int // rows the fixture gives the API
		}{{"Per channel", "channel", false, 3}, {"Per method", "method", true, 1}} {
			p := dashboardPanel(t, "channel-success.json", panel.title)
			for _, w := range [][2]time.Time{{from, to}, {at("3m"), at("53m")}} {
				q := "SELECT " + panel.key + ", toNullable(toFloat64(latency_p50_ms)), toNullable(toFloat64(latency_p95_ms)) FROM (" +
					expand(t, p.Targets[0].RawSQL, w[0], w[1], time.Minute, panelVars("")) + ")"
				rows, err := tr.readerConn(t).Query(t.Context(), q)
				if err != nil {
					t.Fatalf("query: %v\n%s", err, q)
				}
				got := map[string]string{}
				for rows.Next() {
					var ch string
					var p50, p95 *float64
					if err := rows.Scan(&ch, &p50, &p95); err != nil {
						t.Fatal(err)
					}
					got[ch] = fmt.Sprint(deref(p50), " ", deref(p95))
				}
				rows.Close()
				var chs reporter.ChannelsResponse
				tr.get(t, "/api/v1/channels", windowQuery(w[0], w[1], ""), &chs)
				want := map[string]string{}
				for _, c := range chs.Channels {
					if panel.methods && c.Channel != "SILENT" && c.Channel != "PUSH" {
						continue
					}
					var p50, p95 *float64 // NULL where no attempt has a latency
					if c.LatencyMS != nil {
						p50, p95 = &c.LatencyMS.P50, &c.LatencyMS.P95
					}
					want[c.Channel] = fmt.Sprint(deref(p50), " ", deref(p95))
				}
				if len(want) < panel.least || fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("[%s, %s): %s latency p50 p95 %v; API latency_ms %v", w[0].Format(time.TimeOnly), w[1].Format(time.TimeOnly), panel.title, got, want)
				}
			}
		}
	})
	t.Run("outcome split", func(t *testing.T) {
		p := dashboardPanel(t, "fallback-resends.json", "Outcome split")
		for _, w := range [][2]time.Time{{from, to}, {at("5m"), at("53m")}} {
			var fb reporter.FallbackResponse
			tr.get(t, "/api/v1/fallback", windowQuery(w[0], w[1], ""), &fb)
			want := map[string]uint64{}
			for k, v := range map[string]uint64{store.OutcomeDeliveredPrimary: fb.Outcomes.DeliveredPrimary, store.OutcomeDeliveredFallback: fb.Outcomes.DeliveredFallback,
				store.OutcomeFailed: fb.Outcomes.Failed, store.OutcomePending: fb.Outcomes.Pending} {
				if v > 0 {
					want[k] = v
				}
			}
			got := tr.countsBy(t, expand(t, p.Targets[0].RawSQL, w[0], w[1], time.Minute, panelVars("")))
			if len(want) < 3 || fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("[%s, %s): Outcome split %v; API outcomes %v (want at least three)", w[0].Format(time.TimeOnly), w[1].Format(time.TimeOnly), got, want)
			}
		}
	})

	t.Run("time added by fallback", func(t *testing.T) {
		// A window holding one outcome's delivered journeys: the panel's
		// row of that outcome is the API's time to deliver.
		for _, c := range []struct {
			outcome  string
			from, to time.Time
		}{{store.OutcomeDeliveredPrimary, at("0s"), at("15m")}, {store.OutcomeDeliveredFallback, at("15m"), at("35m")}} {
			var fb reporter.FallbackResponse
			tr.get(t, "/api/v1/fallback", windowQuery(c.from, c.to, ""), &fb)
			got := tr.timeAddedByFallback(t, c.from, c.to, "")
			want := fb.Outcomes.DeliveredPrimary
			if c.outcome == store.OutcomeDeliveredFallback {
				want = fb.Outcomes.DeliveredFallback
			}
			r, ok := got[c.outcome]
			var p50, p95 *float64
			if fb.TimeToDeliverMS != nil {
				p50, p95 = &fb.TimeToDeliverMS.P50, &fb.TimeToDeliverMS.P95
			}
			if len(got) != 1 || !ok || r.otps != want || want == 0 || !samePtr(r.p50, p50) || !samePtr(r.p95, p95) {
				t.Errorf("[%s, %s): panel %+v (p50 %v, p95 %v); API: %d %s, time_to_deliver_ms %+v",
					c.from.Format(time.TimeOnly), c.to.Format(time.TimeOnly), got, deref(r.p50), deref(r.p95), want, c.outcome, fb.TimeToDeliverMS)
			}
		}
		// The whole window: a row per delivered outcome, counting every
		// delivered journey, those without a time to deliver included.
		var fb reporter.FallbackResponse
		tr.get(t, "/api/v1/fallback", windowQuery(from, to, ""), &fb)
		got := tr.timeAddedByFallback(t, from, to, "")
		if got[store.OutcomeDeliveredPrimary].otps != fb.Outcomes.DeliveredPrimary || got[store.OutcomeDeliveredFallback].otps != fb.Outcomes.DeliveredFallback || len(got) != 2 {
			t.Errorf("whole window: panel %+v; API outcomes %+v", got, fb.Outcomes)
		}
	})

	t.Run("verification conversion", func(t *testing.T) {
		for _, ch := range []string{"", "SMS", "VOICE", "VIBER", "PUSH"} {
			got, want := tr.conversionStat(t, from, to, ch), tr.apiConversion(t, from, to, ch)
			if !samePtr(got, want) {
				t.Errorf("stat Verification conversion (channel %q) = %v; API says %v", ch, deref(got), deref(want))
			}
		}
		// The table per delivering channel: the API's figures per channel.
		p := dashboardPanel(t, "channel-success.json", "Verification conversion per delivering channel")
		q := expand(t, p.Targets[0].RawSQL, from, to, time.Minute, panelVars(""))
		rows, err := tr.readerConn(t).Query(t.Context(), "SELECT channel, polled, verified, sample_rate FROM ("+q+") ORDER BY channel")
		if err != nil {
			t.Fatalf("query: %v\n%s", err, q)
		}
		defer rows.Close()
		var got []string
		for rows.Next() {
			var ch string
			var polled, verified uint64
			var rate float64
			if err := rows.Scan(&ch, &polled, &verified, &rate); err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprintf("%s %d/%d @%g", ch, verified, polled, rate))
		}
		var chs reporter.ChannelsResponse
		tr.get(t, "/api/v1/channels", windowQuery(from, to, ""), &chs)
		var want []string
		for _, c := range chs.Channels {
			if v := c.Verification; v != nil {
				want = append(want, fmt.Sprintf("%s %d/%d @%g", c.Channel, v.Verified, v.Polled, v.SampleRate))
			}
		}
		sort.Strings(want)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("table Verification conversion per delivering channel: %v; API: %v", got, want)
		}
	})

	t.Run("paths", func(t *testing.T) {
		// Both path tables are /fallback's paths[], the method-first one
		// those that start with a method.
		var fb reporter.FallbackResponse
		tr.get(t, "/api/v1/fallback", windowQuery(from, to, ""), &fb)
		var want, wantMethods []string
		for _, p := range fb.Paths {
			row := fmt.Sprintf("%s %d: %d delivered, %d failed, %d pending, rate %s", p.Path, p.OTPs, p.Delivered, p.Failed, p.Pending, rate4(p.DeliveryRate))
			want = append(want, row)
			if strings.HasPrefix(p.Path, "PUSH") || strings.HasPrefix(p.Path, "SILENT") {
				wantMethods = append(wantMethods, row)
			}
		}
		sort.Strings(want)
		sort.Strings(wantMethods)
		if !slices.ContainsFunc(fb.Paths, func(p store.PathStats) bool { return p.Path == "PUSH>SMS" && p.Pending > 0 && p.Delivered > 0 }) ||
			!slices.ContainsFunc(fb.Paths, func(p store.PathStats) bool { return p.Path == "SMS" && p.Pending > 0 && p.Failed > 0 }) {
			t.Fatalf("API paths %v: want SMS and PUSH>SMS with pending journeys beside settled ones", want)
		}
		for _, c := range []struct {
			file, title, count string
			want               []string
		}{{"fallback-resends.json", "Paths", "otps", want}, {"channel-success.json", "Method → OTP fallback paths", "journeys", wantMethods}} {
			p := dashboardPanel(t, c.file, c.title)
			q := expand(t, p.Targets[0].RawSQL, from, to, time.Minute, panelVars(""))
			rows, err := tr.readerConn(t).Query(t.Context(), "SELECT path, "+c.count+", delivered, failed, pending, delivery_rate FROM ("+q+") ORDER BY path")
			if err != nil {
				t.Fatalf("query: %v\n%s", err, q)
			}
			var got []string
			for rows.Next() {
				var path string
				var n, delivered, failed, pending uint64
				var rate *float64
				if err := rows.Scan(&path, &n, &delivered, &failed, &pending, &rate); err != nil {
					t.Fatal(err)
				}
				got = append(got, fmt.Sprintf("%s %d: %d delivered, %d failed, %d pending, rate %s", path, n, delivered, failed, pending, rate4(rate)))
			}
			rows.Close()
			sort.Strings(got)
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("table %s: %v; API: %v", c.title, got, c.want)
			}
		}
	})

	t.Run("variable lists", func(t *testing.T) {
		// The profiles and channels offered are those of the facts in the
		// range: read, like the panels, from the rolled-up hours' sums and
		// the other hours' facts.
		for name, facts := range map[string]string{
			"profile": "SELECT DISTINCT profile_id FROM channel_events WHERE day >= toDate($__fromTime) - 1 AND day <= toDate($__toTime) AND match(profile_id, '^[A-Za-z0-9._:-]+$') ORDER BY 1",
			"channel": "SELECT DISTINCT toString(channel) FROM channel_events WHERE day >= toDate($__fromTime) - 1 AND day <= toDate($__toTime) ORDER BY 1",
		} {
			want, err := grafanatest.ReadAll(t.Context(), tr.readerConn(t), expand(t, facts, from, to, time.Minute, panelVars("")))
			if err != nil || len(want) == 0 {
				t.Fatalf("%s of the facts: %q, %v", name, want, err)
			}
			for file, got := range tr.variableValues(t, name, from, to) {
				if !slices.Equal(got, want) {
					t.Errorf("%s variable %s: %q; the facts in the range have %q", file, name, got, want)
				}
			}
		}
	})

	t.Run("a profile is a value, not SQL", func(t *testing.T) {
		p := dashboardPanel(t, "fallback-resends.json", "Paths")
		rows := func(profile string) int {
			vars := panelVars("")
			vars["profile"] = profile
			return tr.runAll(t, expand(t, p.Targets[0].RawSQL, from, to, time.Minute, vars))
		}
		if all, one, injected := rows(grafanatest.All), rows("prof-d"), rows("prof-d' OR 1=1 OR '"); all == 0 || one == 0 || injected != 0 {
			t.Errorf("Paths rows: %d for every profile, %d for prof-d, %d for a profile with SQL in it; want some, some, none", all, one, injected)
		}
		for file, d := range loadDashboards(t) {
			for _, v := range d.Templating.List {
				q, ok := v.Query.(string)
				if !ok || v.Name != "profile" {
					continue
				}
				rows, err := tr.readerConn(t).Query(t.Context(), expand(t, q, from, to, time.Minute, panelVars("")))
				if err != nil {
					t.Fatal(err)
				}
				for rows.Next() {
					var name string
					if err := rows.Scan(&name); err != nil {
						t.Fatal(err)
					}
					if name == hostileProfile {
						t.Errorf("%s: the profile variable offers %q", file, name)
					}
				}
				rows.Close()
			}
		}
	})

	t.Run("recovered by polling", func(t *testing.T) {
		for _, ch := range []string{"", "SMS", "PUSH"} {
			got, want := tr.recoveredByPolling(t, from, to, ch), tr.apiRecovered(t, from, to, ch)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("panel Missed webhooks recovered by polling (channel %q): %v; API recovered_by_polling: %v", ch, got, want)
			}
		}
		// What the data holds: a polled SMS fact and a polled push approval.
		if want := tr.apiRecovered(t, from, to, ""); want["SMS"] == 0 || want["PUSH"] == 0 {
			t.Errorf("API recovered_by_polling %v: want SMS and PUSH", want)
		}
	})
}
