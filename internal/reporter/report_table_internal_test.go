package reporter

import (
	"bytes"
	"fmt"
	"html"
	"strings"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/store"
)

// The text table of a window without data says so, and shows a figure it
// has none of as "–", not as a blank.
func TestTableWithoutData(t *testing.T) {
	r := &Report{Kind: KindAdHoc, From: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC),
		Completeness: store.Completeness{Final: true}}
	var b bytes.Buffer
	if err := r.table(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if !strings.Contains(out, "No data:") || strings.Contains(out, "Final:") || !strings.Contains(out, "time to deliver p50 – ms, p95 – ms") {
		t.Errorf("the table of an empty window:\n%s\nwant No data, and – for the times", out)
	}
}

// A window held open by attempts the poller found unrecoverable says so,
// and says when nothing else can still settle.
func TestCompletenessNoteNamesTheUnrecoverable(t *testing.T) {
	first := time.Date(2026, 12, 3, 17, 30, 0, 0, time.UTC)
	c := store.Completeness{Pending: 127, AwaitingReconciliation: 72, SettledUntil: &first}
	if note := completenessNote(c, time.UTC); !strings.HasPrefix(note, "Not final: 127 attempts still pending (72 overdue") || strings.Contains(note, "unrecoverable") {
		t.Errorf("note without unrecoverable attempts: %q", note)
	}
	c.Unrecoverable = 108
	if note := completenessNote(c, time.UTC); !strings.HasPrefix(note, "Not final: 127 attempts still pending") || !strings.Contains(note, "108 of them have an outcome the poller found lost for good (unrecoverable)") {
		t.Errorf("note with 108 of 127 pending unrecoverable: %q", note)
	}
	c = store.Completeness{Pending: 5, Unrecoverable: 5, SettledUntil: &first}
	if note := completenessNote(c, time.UTC); !strings.HasPrefix(note, "Not final, though nothing can still settle: the 5 attempts") {
		t.Errorf("a window whose 5 pending attempts are unrecoverable: %q", note)
	}
	if note := completenessNote(store.Completeness{Final: true}, time.UTC); note != "Final: every attempt in the window has settled." {
		t.Errorf("a final window's note: %q", note)
	}
}

// The table's alert line counts every firing the window saw, resolved ones
// too: a firing evaluated three times and resolved is one firing, resolved,
// not "fired: 0".
func TestTableCountsResolvedFirings(t *testing.T) {
	from := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	ep := func(state string, since time.Time, evals uint64) store.AlertEpisode {
		return store.AlertEpisode{AlertRecord: store.AlertRecord{Alert: events.Alert{Rule: RuleDeliveryRateLow, Channel: "SMS", State: state, Since: since, To: from.Add(3 * time.Hour)}}, Evaluations: evals}
	}
	for _, c := range []struct {
		eps  []store.AlertEpisode
		want string
	}{
		{[]store.AlertEpisode{ep(events.AlertResolved, from.Add(time.Hour), 3)},
			"Alert firings in the window: 1 (resolved: 1, still firing at its end: 0)\n"},
		{[]store.AlertEpisode{ep(events.AlertFiring, from.Add(5*time.Hour), 1), ep(events.AlertResolved, from.Add(time.Hour), 3), ep(events.AlertResolved, from.Add(-time.Hour), 2)},
			"Alert firings in the window: 3 (resolved: 2, still firing at its end: 1); 1 of them began before the window\n"},
		{nil, "Alert firings in the window: 0 (resolved: 0, still firing at its end: 0)\n"},
	} {
		r := &Report{Kind: KindAdHoc, From: from, To: from.Add(48 * time.Hour), AlertEpisodes: c.eps}
		var b bytes.Buffer
		if err := r.table(&b); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), "\n"+c.want) {
			t.Errorf("table of %d episodes:\n%s\nwant the line %q", len(c.eps), b.String(), c.want)
		}
		for _, e := range c.eps {
			want := fmt.Sprintf("  %d evaluations  ", e.Evaluations)
			if e.Evaluations == 1 {
				want = "  1 evaluation  "
			}
			if !strings.Contains(b.String(), want) {
				t.Errorf("table of %d episodes:\n%s\nwant %q", len(c.eps), b.String(), want)
			}
		}
	}
}

// Failed attempts without an error code (recovered by polling: tyntec's v1
// events have none) show as "(none)" in the CSV and HTML reports, the HTML
// saying why; the JSON keeps the API's "".
func TestReportNamesAMissingErrorCode(t *testing.T) {
	from := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	r := &Report{Kind: KindAdHoc, From: from, To: from.Add(time.Hour), Completeness: store.Completeness{Final: true},
		Channels: []store.ChannelStats{{Channel: "SMS", Attempts: 20, Failed: 10, Errors: []store.ErrorCount{{Code: "", Count: 8}, {Code: "1101", Count: 2}}}}}
	render := func(format string) string {
		var b bytes.Buffer
		if err := r.Render(&b, format); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	if s := render("csv"); !strings.Contains(s, "\nerror,SMS (none),failed_attempts,8\n") || !strings.Contains(s, "\nerror,SMS 1101,failed_attempts,2\n") {
		t.Errorf("CSV errors:\n%s\nwant SMS (none) 8 and SMS 1101 2", s)
	}
	s := render("html")
	if !strings.Contains(s, `<tr><td>SMS</td><td class="no-code">(none)</td><td>8</td></tr>`) || !strings.Contains(s, "<tr><td>SMS</td><td>1101</td><td>2</td></tr>") ||
		!strings.Contains(s, `<p id="no-code-note">(none): failed attempts whose failure carried no error code`) {
		t.Errorf("HTML errors:\n%s\nwant (none) for the empty code, with a note", s)
	}
	if s := render("json"); !strings.Contains(s, `"code": ""`) {
		t.Errorf("JSON report:\n%s\nwant the API's empty code", s)
	}
	// A report whose every code is known has no note.
	r.Channels[0].Errors = r.Channels[0].Errors[1:]
	if s := render("html"); strings.Contains(s, "no-code") {
		t.Errorf("HTML without an empty code has the note:\n%s", s)
	}
}

// A report in a zone gives its times on the zone's clock in the table and
// HTML forms (the window in UTC and on the clock both), as the console
// does; in UTC they read as before. Its JSON and CSV keep UTC.
func TestReportTimesOnTheZonesClock(t *testing.T) {
	from := time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC) // Berlin's 1 December
	settled := from.Add(20*time.Hour + 30*time.Minute + 1500*time.Millisecond)
	ep := store.AlertEpisode{AlertRecord: store.AlertRecord{Alert: events.Alert{Rule: RuleDeliveryRateLow, Channel: "SMS", State: events.AlertResolved,
		Since: from.Add(2 * time.Hour), To: from.Add(3 * time.Hour)}}, Evaluations: 4}
	for _, c := range []struct {
		tz   string
		want []string
	}{
		{"Europe/Berlin", []string{"2026-12-01T20:30:01.5+01:00", "since 2026-12-01T02:00:00+01:00, last 2026-12-01T03:00:00+01:00",
			">2026-12-01T03:00:00+01:00</td>", ">2026-12-01T02:00:00+01:00</td>", "generated 2026-12-02T00:15:00+01:00."}},
		{"UTC", []string{"2026-12-01T19:30:01.5Z", "since 2026-12-01T01:00:00Z, last 2026-12-01T02:00:00Z",
			">2026-12-01T02:00:00Z</td>", ">2026-12-01T01:00:00Z</td>", "generated 2026-12-01T23:15:00Z."}},
	} {
		r := &Report{Kind: KindDaily, From: from, To: from.Add(24 * time.Hour), TZ: c.tz, GeneratedAt: from.Add(24*time.Hour + 15*time.Minute + 250*time.Millisecond),
			Completeness: store.Completeness{Pending: 3, SettledUntil: &settled}, AlertEpisodes: []store.AlertEpisode{ep},
			Channels: []store.ChannelStats{{Channel: "SMS", Attempts: 3, Pending: 3}}}
		var text, page bytes.Buffer
		if err := r.table(&text); err != nil {
			t.Fatal(err)
		}
		if err := r.html(&page); err != nil {
			t.Fatal(err)
		}
		both := text.String() + html.UnescapeString(page.String())
		for _, want := range c.want {
			if !strings.Contains(both, want) {
				t.Errorf("%s: the table and HTML lack %q:\n%s", c.tz, want, both)
			}
		}
		if c.tz != "UTC" && strings.Contains(both, "T20:30:01.5Z") {
			t.Errorf("%s: settled until still in UTC:\n%s", c.tz, both)
		}
		var csv bytes.Buffer
		if err := r.csv(&csv); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(csv.String(), "2026-12-01T19:30:01.5Z") {
			t.Errorf("%s: the CSV's settled until is not UTC:\n%s", c.tz, csv.String())
		}
	}
}

// The window before a day's or a week's report on a zone's clock is the
// calendar day or week before, however long the clocks made it; any
// other window's is as long as it.
func TestWindowBeforeIsTheDayOrWeekBefore(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct {
		name           string
		from, to, want string
		zone           *time.Location
	}{
		// 29 March, 23 hours: the day before is 28 March, 24.
		{"Berlin's short day", "2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z", "2026-03-27T23:00:00Z", berlin},
		// 30 March to 6 April: the week before held the change, 167 hours.
		{"the week after the change", "2026-03-29T22:00:00Z", "2026-04-05T22:00:00Z", "2026-03-22T23:00:00Z", berlin},
		{"the week of the change", "2026-03-22T23:00:00Z", "2026-03-29T22:00:00Z", "2026-03-15T23:00:00Z", berlin},
		{"three UTC days", "2026-06-01T00:00:00Z", "2026-06-04T00:00:00Z", "2026-05-29T00:00:00Z", time.UTC},
		// Not midnights on the zone's clock: as long.
		{"two hours across the change", "2026-03-29T00:30:00Z", "2026-03-29T02:30:00Z", "2026-03-28T22:30:00Z", berlin},
		{"a UTC day in Berlin", "2026-06-01T00:00:00Z", "2026-06-02T00:00:00Z", "2026-05-31T00:00:00Z", berlin},
		{"an hour", "2026-06-01T09:00:00Z", "2026-06-01T10:00:00Z", "2026-06-01T08:00:00Z", time.UTC},
	} {
		if got := windowBefore(utc(c.from), utc(c.to), c.zone); !got.Equal(utc(c.want)) {
			t.Errorf("%s: the window before [%s, %s) starts at %s; want %s", c.name, c.from, c.to, got.UTC().Format(time.RFC3339), c.want)
		}
	}
}

// The table and HTML forms set each channel's rate and the fallback rate
// beside the window before's, and say which window that was.
func TestReportSetsRatesBesideTheWindowBefore(t *testing.T) {
	rate := func(x float64) *float64 { return &x }
	from := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	r := &Report{Kind: KindDaily, From: from, To: from.Add(24 * time.Hour), TZ: "UTC", GeneratedAt: from.Add(25 * time.Hour),
		Completeness: store.Completeness{Final: true},
		Channels: []store.ChannelStats{{Channel: "SMS", Attempts: 10, Delivered: 9, Failed: 1, DeliveryRate: rate(0.9)},
			{Channel: "VIBER", Attempts: 2, Delivered: 2, DeliveryRate: rate(1)}},
		Fallback: store.FallbackStats{OTPs: 10, FallbackOTPs: 1, FallbackRate: rate(0.1)},
		Before: &Figures{From: from.Add(-24 * time.Hour), To: from,
			Channels: []store.ChannelStats{{Channel: "SMS", Attempts: 8, Delivered: 6, Failed: 2, DeliveryRate: rate(0.75)}},
			Fallback: store.FallbackStats{OTPs: 8, FallbackOTPs: 2, FallbackRate: rate(0.25)}}}
	var text, page, csv bytes.Buffer
	for _, f := range []func() error{func() error { return r.table(&text) }, func() error { return r.html(&page) }, func() error { return r.csv(&csv) }} {
		if err := f(); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"rate before", "90.0%        75.0%", "100.0%            –", "with fallback 1 (10.0%; before 25.0%)",
		"Rate before: the window before, 2026-05-31T00:00:00Z – 2026-06-01T00:00:00Z, with the same filters."} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("the table lacks %q:\n%s", want, text.String())
		}
	}
	for _, want := range []string{"<th>Rate before</th>", "<td>90.0%</td><td>75.0%</td>", "<td>100.0%</td><td>–</td>", "<tr><td>Fallback rate before</td><td>25.0%</td></tr>",
		`<p id="before">Rate before: the window before, <time datetime="2026-05-31T00:00:00Z">2026-05-31T00:00:00Z</time>`} {
		if !strings.Contains(page.String(), want) {
			t.Errorf("the HTML lacks %q:\n%s", want, page.String())
		}
	}
	for _, want := range []string{"before,,from,2026-05-31T00:00:00Z", "channel_before,SMS,delivery_rate,0.7500", "channel_before,SMS,attempts,8", "journeys_before,,fallback_rate,0.2500"} {
		if !strings.Contains(csv.String(), want) {
			t.Errorf("the CSV lacks %q:\n%s", want, csv.String())
		}
	}
	// A window of --since ends at a millisecond; its bounds read to the
	// second, as the window's own.
	r.Before.From, r.Before.To = r.Before.From.Add(219*time.Millisecond), r.Before.To.Add(219*time.Millisecond)
	text.Reset()
	page.Reset()
	if err := r.table(&text); err != nil {
		t.Fatal(err)
	}
	if err := r.html(&page); err != nil {
		t.Fatal(err)
	}
	if want := "2026-05-31T00:00:00Z – 2026-06-01T00:00:00Z"; !strings.Contains(text.String(), want) || !strings.Contains(page.String(), ">2026-05-31T00:00:00Z</time>") {
		t.Errorf("the window before's bounds are not to the second:\n%s\n%s", text.String(), page.String())
	}
}
