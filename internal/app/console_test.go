package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/otpscope/otpscope/internal/app"
	"github.com/otpscope/otpscope/internal/console/browsertest"
	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/polltest"
	"github.com/otpscope/otpscope/internal/reporter"
	"github.com/otpscope/otpscope/internal/store"
)

// TestConsoleInABrowser drives the console in headless Chromium against the
// reporter with an API token: sign in, then every page loads without a
// console error, shows the API's figures for the same window, looks an OTP
// up and replays a dead letter by clicking, and shows a live event.
func TestConsoleInABrowser(t *testing.T) {
	b := browsertest.New(t, 3*time.Minute)
	cfg := reporterConfig(t)
	const token = "console-token-0123456789"
	cfg.APITokens = []string{token}
	// Exact reads, whose figures the API's equal as soon as the events are
	// stored; TestConsoleFollowsTheRollupJob reads as the console does by
	// default.
	cfg.Reports.Rollups = ""
	cfg.Reports.Rules.Objective.DeliveryRate = 0.99
	a := serve(t, cfg)
	base := "http://" + a.AdminAddr()
	ctx := t.Context()

	// Journeys of the last few minutes: delivered on SMS; SMS failed then
	// Viber delivered; pending on WhatsApp.
	now := time.Now().UTC().Add(-5 * time.Minute).Truncate(time.Millisecond)
	const (
		otpSMS      = "a4762c77-94cb-43d6-bbab-9f37e088ad01"
		otpFallback = "a4762c77-94cb-43d6-bbab-9f37e088ad02"
		otpPending  = "a4762c77-94cb-43d6-bbab-9f37e088ad03"
		otpReplayed = "a4762c77-94cb-43d6-bbab-9f37e088ad04"
		otpLive     = "a4762c77-94cb-43d6-bbab-9f37e088ad05"
		otpEarlier  = "a4762c77-94cb-43d6-bbab-9f37e088ad07"
	)
	ev := func(otp string, ch events.Channel, st events.Status, after time.Duration) events.Message {
		d := events.DeliveryStatus{Channel: ch, Status: st, OTPID: otp, ProfileID: "profile-1", Source: events.SourceWebhook,
			Timestamp: now.Add(after), ReceivedAt: now.Add(after)}
		if st == events.StatusUndeliverable {
			d.Error = &events.DeliveryError{Code: "tyntec::SMS::undeliverable"}
		}
		m, err := events.NewDeliveryMessage(&d)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	msgs := []events.Message{
		ev(otpSMS, events.ChannelSMS, events.StatusDispatched, 0),
		ev(otpSMS, events.ChannelSMS, events.StatusDelivered, 2*time.Second),
		ev(otpFallback, events.ChannelSMS, events.StatusDispatched, time.Second),
		ev(otpFallback, events.ChannelSMS, events.StatusUndeliverable, 4*time.Second),
		ev(otpFallback, events.ChannelViber, events.StatusDispatched, 5*time.Second),
		ev(otpFallback, events.ChannelViber, events.StatusDelivered, 8*time.Second),
		ev(otpPending, events.ChannelWhatsApp, events.StatusDispatched, 3*time.Second),
		// And an hour before them, an SMS that failed: the hour before's.
		ev(otpEarlier, events.ChannelSMS, events.StatusDispatched, -time.Hour),
		ev(otpEarlier, events.ChannelSMS, events.StatusUndeliverable, -time.Hour+3*time.Second),
	}
	webhook := fmt.Sprintf(`{"channel":"SMS","otpId":%q,"status":"DELIVERED","timestamp":%q}`, otpReplayed, now.Format(time.RFC3339Nano))
	dead, err := events.NewDeadLetterMessage(events.DeadLetter{Reason: `Content-Type "text/plain": want application/json`, Status: 415, Source: "ingest", ReceivedAt: time.Now().UTC()}, []byte(webhook), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Broker().Publish(ctx, append(msgs, dead)...); err != nil {
		t.Fatal(err)
	}
	// A verified silent auth and a denied push: channels of their own.
	silent, err := events.NewSilentOutcomeMessage(&events.SilentOutcome{AttemptID: "sa-console", CorrelationID: "sa-console",
		StartedAt: now.Add(time.Second), FinishedAt: now.Add(2 * time.Second), Result: events.SilentVerified, ReceivedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	push, err := events.NewPushMessage(&events.PushEvent{UUID: "a4762c77-94cb-43d6-bbab-9f37e088ad06", CorrelationID: "push-console",
		Status: events.PushDenied, CreatedAt: now.Add(time.Second), UpdatedAt: now.Add(9 * time.Second), Source: events.SourceWebhook, ReceivedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	// An alert the reporter's rules fired on SMS, firing since ten minutes
	// before, 94.7 % the hour before.
	wasRate := 0.947
	alert, err := events.NewAlertMessage(&events.Alert{Rule: reporter.RuleDeliveryRateLow, Channel: "SMS", State: events.AlertFiring, Since: now.Add(-10 * time.Minute),
		From: now.Add(-time.Hour), To: now, Value: 0.5, Threshold: 0.8, Volume: 2, Summary: "SMS delivery rate 50.0% below 80.0%",
		Before: &events.AlertBefore{From: now.Add(-2 * time.Hour), To: now.Add(-time.Hour), Value: &wasRate, Volume: 638}})
	if err != nil {
		t.Fatal(err)
	}
	// The evaluation before, of the same firing: one row in the console.
	before, err := events.NewAlertMessage(&events.Alert{Rule: reporter.RuleDeliveryRateLow, Channel: "SMS", State: events.AlertFiring, Since: now.Add(-10 * time.Minute),
		From: now.Add(-time.Hour - 5*time.Minute), To: now.Add(-5 * time.Minute), Value: 0.6, Threshold: 0.8, Volume: 2, Summary: "SMS delivery rate 60.0% below 80.0%"})
	if err != nil {
		t.Fatal(err)
	}
	// And another firing, of delivery_slow, whose figures are times.
	slow, err := events.NewAlertMessage(&events.Alert{Rule: reporter.RuleDeliverySlow, Channel: "VOICE", State: events.AlertFiring, Since: now.Add(-2 * time.Minute),
		From: now.Add(-time.Hour - 2*time.Minute), To: now.Add(-2 * time.Minute), Value: 75000, Threshold: 60000, Volume: 3, Summary: "VOICE p95 latency (dispatch → DELIVERED) 75.0 s above 60.0 s"})
	if err != nil {
		t.Fatal(err)
	}
	// The resend policy's decisions: a dry-run for the OTP Viber then
	// delivered (delivered otherwise), one sent for the pending OTP.
	resend := func(otp string, result, via string, ch events.Channel, st events.Status, after time.Duration) events.Message {
		m, err := events.NewResendMessage(&events.Resend{OTPID: otp, ProfileID: "profile-1", DecisionID: otp + "." + string(ch), Result: result, Via: via,
			TriggerChannel: ch, TriggerStatus: st, Attempt: 1, DecidedAt: now.Add(after), DryRun: result == events.ResendDryRun, Reason: "console test"})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	dryRun := resend(otpFallback, events.ResendDryRun, "VOICE", events.ChannelSMS, events.StatusUndeliverable, 6*time.Second)
	sent := resend(otpPending, events.ResendSent, "SMS", events.ChannelWhatsApp, events.StatusTimedOut, 20*time.Second)
	if err := a.Broker().Publish(ctx, silent, push, alert, before, slow, dryRun, sent); err != nil {
		t.Fatal(err)
	}
	// And the reporter's state of it: the rule firing now.
	state, err := a.Broker().KeyValue(ctx, jetstream.KeyValueConfig{Bucket: reporter.BucketAlerts})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := state.PutString(ctx, "delivery_rate_low.SMS", `{"rule":"delivery_rate_low","channel":"SMS","since":"`+now.Add(-10*time.Minute).Format(time.RFC3339Nano)+`","to":"`+now.Format(time.RFC3339Nano)+`","value":0.5,"threshold":0.8}`); err != nil {
		t.Fatal(err)
	}
	get := apiGetter(t, base, token)
	polltest.Until(t, 30*time.Second, "the events and the dead letter stored", func() bool {
		var p store.EventPage
		var dl reporter.DeadLettersResponse
		get("/api/v1/events?limit=100", &p)
		get("/api/v1/deadletters", &dl)
		var chs reporter.ChannelsResponse
		get("/api/v1/channels?since=1h", &chs)
		var al reporter.AlertsResponse
		get("/api/v1/alerts?since=1h", &al)
		var rs reporter.ResendsResponse
		get("/api/v1/resends?since=1h", &rs)
		return len(p.Events) == len(msgs) && len(dl.DeadLetters) == 1 && len(chs.Channels) == 5 && len(al.Alerts) == 3 && rs.Decisions == 2
	})

	// Sign in: the pages load without a token, the API asks for one.
	b.Do("open the console", chromedp.Navigate(base+"/"), chromedp.WaitVisible("#login"))
	b.Screenshot("console-login")
	b.Do("sign in", chromedp.SendKeys("#token", token), chromedp.Click("#sign-in"),
		chromedp.WaitReady("#page-overview[data-loaded]"))

	// Overview: the table is /channels for the window the page shows.
	window := func() url.Values {
		from := browsertest.Run(b, "window from", chromedp.AttributeValue("#shown", "data-from"))
		to := browsertest.Run(b, "window to", chromedp.AttributeValue("#shown", "data-to"))
		return url.Values{"from": {from.Value}, "to": {to.Value}}
	}
	w := window()
	var chs reporter.ChannelsResponse
	get("/api/v1/channels?"+w.Encode(), &chs)
	if len(chs.Channels) != 5 {
		t.Fatalf("API: %d channels in %v; want 5 (SMS, VIBER, WHATSAPP, SILENT, PUSH)", len(chs.Channels), w)
	}
	for _, c := range chs.Channels {
		row := `#channels tr[data-channel="` + c.Channel + `"] `
		for field, want := range map[string]uint64{"attempts": c.Attempts, "delivered": c.Delivered, "failed": c.Failed, "pending": c.Pending} {
			if got := b.Text(row + `[data-field="` + field + `"]`); got != strconv.FormatUint(want, 10) {
				t.Errorf("overview %s %s = %q; API %d", c.Channel, field, got, want)
			}
		}
		rate := browsertest.Run(b, "delivery rate", chromedp.AttributeValue(row+`[data-field="delivery_rate"]`, "data-value"))
		if want := ""; c.DeliveryRate != nil {
			want = strconv.FormatFloat(*c.DeliveryRate, 'g', -1, 64)
			if rate.Value != want {
				t.Errorf("overview %s delivery rate = %q; API %s", c.Channel, rate.Value, want)
			}
		}
	}
	// Beside each rate, the hour before's, as the API answers for it.
	// windowBefore is the window as long as w, ending where it starts.
	windowBefore := func(w url.Values) url.Values {
		start, _ := time.Parse(time.RFC3339, w.Get("from"))
		end, _ := time.Parse(time.RFC3339, w.Get("to"))
		return url.Values{"from": {start.Add(-end.Sub(start)).Format(time.RFC3339)}, "to": {w.Get("from")}}
	}
	var chsBefore reporter.ChannelsResponse
	get("/api/v1/channels?"+windowBefore(w).Encode(), &chsBefore)
	rateBefore := map[string]string{}
	for _, c := range chsBefore.Channels {
		if c.DeliveryRate != nil {
			rateBefore[c.Channel] = strconv.FormatFloat(*c.DeliveryRate, 'g', -1, 64)
		}
	}
	if rateBefore["SMS"] != "0" || len(chsBefore.Channels) != 1 {
		t.Errorf("API: the hour before has %v; want SMS alone, delivering none", chsBefore.Channels)
	}
	for _, c := range chs.Channels {
		got := browsertest.Run(b, "rate before", chromedp.AttributeValue(`#channels tr[data-channel="`+c.Channel+`"] [data-field="delivery_rate_before"]`, "data-value"))
		if got.Value != rateBefore[c.Channel] {
			t.Errorf("overview %s's rate the hour before = %q; API %q", c.Channel, got.Value, rateBefore[c.Channel])
		}
	}
	// The buckets of /timeseries add up to /channels for the same window.
	var ts reporter.TimeseriesResponse
	get("/api/v1/timeseries?"+w.Encode()+"&step=1m", &ts)
	for _, c := range chs.Channels {
		var attempts, delivered, failed uint64
		for _, s := range ts.Channels {
			if s.Channel == c.Channel {
				for i := range s.Attempts {
					attempts, delivered, failed = attempts+s.Attempts[i], delivered+s.Delivered[i], failed+s.Failed[i]
				}
			}
		}
		if attempts != c.Attempts || delivered != c.Delivered || failed != c.Failed {
			t.Errorf("timeseries %s adds up to %d/%d/%d; channels %d/%d/%d", c.Channel, attempts, delivered, failed, c.Attempts, c.Delivered, c.Failed)
		}
	}
	// The charts are drawn from /timeseries of the same window.
	if n := browsertest.Run(b, "charts", chromedp.Evaluate[int](`document.querySelectorAll('#page-overview .uplot canvas').length`)); n != 4 {
		t.Errorf("overview draws %d charts; want 4", n)
	}
	// The delivery rate's faint lines are /timeseries of the hour before in
	// the window's step: SMS's failure an hour earlier, 0.0% in its minute.
	var tsBefore reporter.TimeseriesResponse
	get("/api/v1/timeseries?"+windowBefore(w).Encode()+"&step=60", &tsBefore)
	var wantBefore []string
	for _, c := range tsBefore.Channels {
		if c.Channel == "SMS" {
			for _, r := range c.DeliveryRate {
				if r == nil {
					wantBefore = append(wantBefore, "–")
				} else {
					wantBefore = append(wantBefore, strconv.FormatFloat(100**r, 'f', 1, 64)+"%")
				}
			}
		}
	}
	b.Do("show the rate as a table", chromedp.Click(`#chart-rate + button.chart-data-toggle`))
	gotBefore := browsertest.Run(b, "the hour before's rates", chromedp.Evaluate[[]string](`(() => {
		const t = document.querySelector('#chart-rate-data table'), col = [...t.querySelectorAll('thead th')].findIndex((h) => h.textContent === 'SMS the hour before');
		return col < 0 ? [] : [...t.querySelectorAll('tbody tr')].map((r) => r.cells[col].textContent); })()`))
	if !slices.Equal(gotBefore, wantBefore) || !slices.Contains(gotBefore, "0.0%") {
		t.Errorf("the rate chart's hour before for SMS: %q; the API's %q, with SMS's failure", gotBefore, wantBefore)
	}
	b.Do("hide the table", chromedp.Click(`#chart-rate + button.chart-data-toggle`))
	// The alerts are /alerts' for the same window.
	var al reporter.AlertsResponse
	get("/api/v1/alerts?"+w.Encode(), &al)
	var eps reporter.AlertEpisodesResponse
	get("/api/v1/alerts/episodes?"+w.Encode(), &eps)
	if n := browsertest.Run(b, "alert rows", chromedp.Evaluate[int](`document.querySelectorAll('#alerts tr[data-alert]').length`)); len(al.Alerts) != 3 || n != 2 || len(eps.Episodes) != 2 {
		t.Errorf("overview lists %d alerts; the API %d evaluations in %d episodes, want the two evaluations of one firing as one, and the other firing", n, len(al.Alerts), len(eps.Episodes))
	} else {
		slowRow := `#alerts tr[data-rule="` + reporter.RuleDeliverySlow + `"] `
		if v, th := b.Text(slowRow+`[data-field="value"]`), b.Text(slowRow+`[data-field="threshold"]`); v != "75.0 s" || th != "60.0 s" {
			t.Errorf("delivery_slow's value and threshold = %q, %q; want 75.0 s, 60.0 s", v, th)
		}
		row := `#alerts tr[data-alert="` + al.Alerts[0].ID + `"] ` // the newest
		if got := b.Text(`#alerts tr[data-alert="` + al.Alerts[0].ID + `"][data-evaluations="2"] [data-field="channel"]`); got != "SMS" {
			t.Errorf("the firing's row (%q) does not count its two evaluations", got)
		}
		if got := b.Text(row + `[data-field="rule"]`); got != reporter.RuleDeliveryRateLow {
			t.Errorf("overview alert rule = %q; want %s", got, reporter.RuleDeliveryRateLow)
		}
		if got := b.Text(row + `[data-field="value"]`); got != "50.0%" {
			t.Errorf("overview alert value = %q; want 50.0%%", got)
		}
		// Beside it, its figure the hour before, as stored; delivery_slow's
		// alert had none.
		if got, slowGot := b.Text(row+`[data-field="before"]`), b.Text(slowRow+`[data-field="before"]`); got != "94.7%" || slowGot != "–" ||
			eps.Episodes[0].Before == nil || eps.Episodes[0].Before.Volume != 638 {
			t.Errorf("overview alerts' before = %q, delivery_slow's %q (the API's %+v); want 94.7%% and –", got, slowGot, eps.Episodes[0].Before)
		}
		if got, want := b.Text(row+`[data-field="state"]`), "firing since "+now.Add(-10*time.Minute).Format("2006-01-02 15:04:05Z"); got != want {
			t.Errorf("overview alert state = %q; want %q", got, want)
		}
	}
	// Above it all, the rules firing now: /alerts/firing's.
	var firing reporter.FiringResponse
	get("/api/v1/alerts/firing", &firing)
	if got, want := b.Text("#firing"), "Firing now: delivery_rate_low on SMS since "+now.Add(-10*time.Minute).Format("2006-01-02 15:04:05Z")+" (50.0%) silence…"; got != want || len(firing.Firing) != 1 {
		t.Errorf("overview says %q (the API lists %+v); want %q", got, firing.Firing, want)
	}
	// Under the alerts, the rules in force: the reporter's own flags.
	var rules reporter.RulesResponse
	get("/api/v1/alerts/rules", &rules)
	if got := b.Text(`#alert-rules-list li[data-rule="` + reporter.RuleDeliveryRateLow + `"]`); len(rules.Rules) != 5 || got != reporter.RuleDeliveryRateLow+": "+rules.Rules[0].Says ||
		!strings.HasPrefix(got, "delivery_rate_low: a channel's delivery rate below ") {
		t.Errorf("overview lists delivery_rate_low as %q (the API's %+v)", got, rules.Rules)
	}
	// Under them, the objective, as /api/v1/slo says it (read once a
	// minute: its figures may be of before the journeys were stored).
	var slo reporter.SLOResponse
	get("/api/v1/slo", &slo)
	if got := b.Text("#slo"); slo.Objective == nil || !strings.HasPrefix(got, "Objective: ") || !strings.Contains(got, " over the last 28 d (objective 99.00%)") {
		t.Errorf("overview says the objective as %q (the API says %q)", got, slo.Says)
	}
	// The pipeline line is /status': the stream's messages (read before the
	// API's here: a scheduled report may add one in between), no warning.
	shown := browsertest.Run(b, "pipeline", chromedp.AttributeValue("#pipeline", "data-stream-messages"))
	var st app.StatusResponse
	get("/api/v1/status", &st)
	if n, err := strconv.ParseUint(shown.Value, 10, 64); err != nil || n == 0 || n > st.Stream.Messages || st.Sink == nil {
		t.Errorf("overview's pipeline shows %q stream messages; /api/v1/status %+v", shown.Value, st)
	}
	if text := b.Text("#pipeline"); !strings.Contains(text, "sink 0 waiting") || strings.Contains(text, "poller") || strings.Contains(text, "webhook") {
		t.Errorf("overview's pipeline says %q; want the sink caught up, and nothing of modules the reporter does not run", text)
	}
	// The dead letter, not yet replayed, is said beside the pipeline.
	if got := b.Text("#dead-letters"); !strings.HasPrefix(got, "1 dead letter never replayed") || st.DeadLetters == nil || st.DeadLetters.Pending != 1 {
		t.Errorf("overview says %q of dead letters; /api/v1/status %+v; want the one never replayed", got, st.DeadLetters)
	}
	b.Screenshot("console-overview")
	b.NoErrors("overview")
	// "CSV" saves the report of the window shown (/api/v1/report), fetched
	// with the token: its channels are /channels' for the window.
	dir := t.TempDir()
	b.Do("downloads into "+dir, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir})
		return err
	}), chromedp.Click(`#report button[data-format="csv"]`))
	from, err := time.Parse(time.RFC3339, w.Get("from"))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "otpscope-adhoc-"+from.UTC().Format("20060102T1504Z")+".csv")
	var saved []byte
	polltest.Until(t, 30*time.Second, "the report saved as "+file, func() bool {
		saved, err = os.ReadFile(file)
		return err == nil && len(saved) > 0
	})
	for _, c := range chs.Channels {
		if row := fmt.Sprintf("\nchannel,%s,attempts,%d\n", c.Channel, c.Attempts); !bytes.Contains(saved, []byte(row)) {
			t.Errorf("the saved report lacks %q, /channels':\n%s", strings.TrimSpace(row), saved)
		}
	}
	if got := b.Text("#report-status"); got != "saved "+filepath.Base(file) {
		t.Errorf("the report's status says %q", got)
	}
	// A profile filter narrows the figures, not the alerts (over every
	// profile): the page says so and asks for them without it, since an
	// endpoint refuses a parameter it does not read.
	setProfile := func(what, v, shown string) {
		t.Helper()
		browsertest.Run(b, what, chromedp.Evaluate[bool](fmt.Sprintf(`{const e = document.querySelector('#profile'); e.value = %q; e.dispatchEvent(new Event('change')); true}`, v)))
		b.Do(what, chromedp.WaitReady(`#page-overview`+shown))
	}
	setProfile("a profile filter", "profile-1", `[data-shown$=", profile profile-1"]`)
	rows := browsertest.Run(b, "alert rows", chromedp.Evaluate[int](`document.querySelectorAll('#alerts tr[data-alert]').length`))
	if noted := !browsertest.Run(b, "alerts' note", chromedp.Evaluate[bool](`document.querySelector('#alerts-profile').hidden`)); rows != 2 || !noted {
		t.Errorf("with a profile filter overview lists %d alerts (want the same 2), its note that alerts are over every profile shown: %v", rows, noted)
	}
	b.NoErrors("overview with a profile filter")
	setProfile("no profile filter", "", `[data-shown]:not([data-shown*="profile"])`)
	// The firing silenced from the overview (after the report's download,
	// whose file is named by the window read above: a refresh in between
	// may move it on a minute): its button opens the silences with the form set
	// to its rule and channel; with a reason and a name (the form asks
	// who silences) the API keeps the silence (two hours, by that name),
	// and the firing says until when. Ended from the list, it holds no
	// more.
	b.Do("silence the firing", chromedp.Click(`#firing button.silence`), chromedp.WaitVisible(`#silence-form input[name="comment"]`),
		chromedp.SendKeys(`#silence-form input[name="comment"]`, "carrier outage, ticket 4711"), chromedp.SendKeys(`#silence-form input[name="by"]`, "dana"),
		chromedp.Click(`#silence-form button[type="submit"]`),
		chromedp.WaitReady(`#firing span[data-silenced]:not([data-silenced=""])`))
	var silences reporter.SilencesResponse
	get("/api/v1/alerts/silences", &silences)
	if l := silences.Silences; len(l) != 1 || l[0].Rule != reporter.RuleDeliveryRateLow || l[0].Channel != "SMS" || l[0].Comment != "carrier outage, ticket 4711" ||
		l[0].CreatedBy != "dana" || l[0].EndsAt.Sub(l[0].StartsAt) != 2*time.Hour || l[0].State != reporter.SilenceActive {
		t.Fatalf("after the console's silence the API lists %+v; want delivery_rate_low on SMS, two hours, the reason and name given", l)
	}
	until := silences.Silences[0].EndsAt.UTC().Format("2006-01-02 15:04:05Z")
	if got, want := b.Text("#silence-result"), "silenced delivery_rate_low on SMS until "+until+"."; got != want {
		t.Errorf("the silence form says %q; want %q", got, want)
	}
	if got, want := b.Text(`#firing span[data-rule="delivery_rate_low"]`), "delivery_rate_low on SMS since "+now.Add(-10*time.Minute).Format("2006-01-02 15:04:05Z")+" (50.0%; silenced until "+until+")"; got != want {
		t.Errorf("the silenced firing says %q; want %q", got, want)
	}
	item := `#silences-list li[data-silence="` + silences.Silences[0].ID + `"]`
	if got := b.Text(item); got != "delivery_rate_low on SMS until "+until+" (carrier outage, ticket 4711, by dana) End now" {
		t.Errorf("the silences list %q", got)
	}
	b.Do("end the silence", chromedp.Click(item+` button`), chromedp.WaitReady(item+`[data-state="expired"]`), chromedp.WaitReady(`#firing span[data-silenced=""]`))
	get("/api/v1/alerts/silences", &silences)
	if len(silences.Silences) != 1 || silences.Silences[0].State != reporter.SilenceExpired {
		t.Errorf("after End now the API lists %+v; want the silence expired", silences.Silences)
	}
	b.NoErrors("silences")

	// Journeys: outcomes and paths are /fallback's.
	b.Do("journeys", chromedp.Navigate(base+"/console/#journeys"), chromedp.WaitReady("#page-journeys[data-loaded]"))
	w = window()
	var fb reporter.FallbackResponse
	get("/api/v1/fallback?"+w.Encode(), &fb)
	for field, want := range map[string]uint64{"delivered_primary": fb.Outcomes.DeliveredPrimary, "delivered_fallback": fb.Outcomes.DeliveredFallback,
		"failed": fb.Outcomes.Failed, "pending": fb.Outcomes.Pending} {
		if got := b.Text(`#outcomes [data-field="` + field + `"]`); got != strconv.FormatUint(want, 10) {
			t.Errorf("journeys %s = %q; API %d", field, got, want)
		}
	}
	for _, p := range fb.Paths {
		if got := b.Text(`#paths tr[data-path="` + p.Path + `"] [data-field="otps"]`); got != strconv.FormatUint(p.OTPs, 10) {
			t.Errorf("journeys path %s OTPs = %q; API %d", p.Path, got, p.OTPs)
		}
	}
	if fb.Outcomes.DeliveredFallback != 1 || len(fb.Paths) != 5 {
		t.Errorf("API fallback = %+v; want one fallback delivery over five paths (SILENT and PUSH among them)", fb.FallbackStats)
	}
	// Beside each path's rate, the hour before's, as the API answers for it:
	// the SMS that failed an hour earlier.
	var fbBefore reporter.FallbackResponse
	get("/api/v1/fallback?"+windowBefore(w).Encode(), &fbBefore)
	pathBefore := map[string]string{}
	for _, p := range fbBefore.Paths {
		if p.DeliveryRate != nil {
			pathBefore[p.Path] = strconv.FormatFloat(*p.DeliveryRate, 'g', -1, 64)
		}
	}
	if len(fbBefore.Paths) != 1 || pathBefore["SMS"] != "0" {
		t.Errorf("API: the hour before's paths %+v; want SMS alone, delivering none", fbBefore.Paths)
	}
	for _, p := range fb.Paths {
		got := browsertest.Run(b, "path rate before", chromedp.AttributeValue(`#paths tr[data-path="`+p.Path+`"] [data-field="delivery_rate_before"]`, "data-value"))
		if got.Value != pathBefore[p.Path] {
			t.Errorf("journeys path %s's rate the hour before = %q; API %q", p.Path, got.Value, pathBefore[p.Path])
		}
	}
	b.Screenshot("console-journeys")

	// Resends: the groups and the latest decisions are /resends'.
	b.Do("resends", chromedp.Navigate(base+"/console/#resends"), chromedp.WaitReady("#page-resends[data-loaded]"))
	w = window()
	var rs reporter.ResendsResponse
	get("/api/v1/resends?"+w.Encode(), &rs)
	if rs.Decisions != 2 || len(rs.Groups) != 2 || len(rs.Latest) != 2 {
		t.Fatalf("API resends = %+v; want the two decisions, in two groups", rs.ResendReport)
	}
	for _, g := range rs.Groups {
		row := `#resend-groups tr[data-group="` + strings.Join([]string{g.Result, g.TriggerChannel, g.TriggerStatus, g.Via}, "|") + `"] `
		for field, want := range map[string]uint64{"decisions": g.Decisions, "delivered_via": g.DeliveredVia, "delivered_otherwise": g.DeliveredOtherwise, "not_delivered": g.NotDelivered} {
			if got := b.Text(row + `[data-field="` + field + `"]`); got != strconv.FormatUint(want, 10) {
				t.Errorf("resends %s %s = %q; API %d", row, field, got, want)
			}
		}
	}
	for decision, want := range map[string]string{otpFallback + ".SMS": store.ResendDeliveredOtherwise, otpPending + ".WHATSAPP": store.ResendNotDelivered} {
		got := browsertest.Run(b, "resend outcome", chromedp.AttributeValue(`#resend-latest tr[data-decision="`+decision+`"] [data-field="outcome"]`, "data-value"))
		if got.Value != want {
			t.Errorf("resend decision %s: outcome %q; want %s", decision, got.Value, want)
		}
	}
	b.Screenshot("console-resends")

	// OTP lookup by typing the id and clicking.
	b.Do("OTP lookup", chromedp.Navigate(base+"/console/#otp"), chromedp.WaitVisible("#otp-id"),
		chromedp.SendKeys("#otp-id", otpFallback), chromedp.Click("#otp-go"),
		chromedp.WaitVisible(`#otp-result[data-otp="`+otpFallback+`"]`))
	var j store.Journey
	get("/api/v1/otps/"+otpFallback, &j)
	if got := b.Text(`#otp-summary [data-field="path"]`); got != j.Path {
		t.Errorf("OTP path = %q; API %q", got, j.Path)
	}
	if got := b.Text(`#otp-summary [data-field="outcome"]`); got != j.Outcome {
		t.Errorf("OTP outcome = %q; API %q", got, j.Outcome)
	}
	if n := browsertest.Run(b, "timeline", chromedp.Evaluate[int](`document.querySelectorAll('#otp-timeline li').length`)); n != len(j.Events) {
		t.Errorf("OTP timeline has %d events; API %d", n, len(j.Events))
	}
	if got := b.Text(`#otp-resends tr[data-decision="` + otpFallback + `.SMS"] [data-field="result"]`); len(j.Resends) != 1 || j.Resends[0].Result != events.ResendDryRun || got != "dry run (not sent)" {
		t.Errorf("OTP resend decisions: %q (API %+v); want the dry-run", got, j.Resends)
	}
	b.Screenshot("console-otp")

	// Events: the first page is /events' for the window; the next page
	// follows the cursor.
	b.Do("events", chromedp.Navigate(base+"/console/#events"), chromedp.WaitReady("#page-events[data-loaded]"),
		chromedp.SetValue("#ev-limit", "25"), chromedp.SetValue("#ev-status", "DISPATCHED"), chromedp.Click("#ev-search"))
	// The page's first, unfiltered list is already there: wait for the
	// filtered one to replace it.
	browsertest.Run(b, "filtered events", chromedp.Poll[bool](`(() => { const rows = [...document.querySelectorAll('#events-table tbody tr[data-event]')];
		return rows.length > 0 && rows.every((tr) => tr.textContent.includes('DISPATCHED')); })()`))
	w = window()
	w.Set("status", "dispatched")
	var page store.EventPage
	get("/api/v1/events?"+w.Encode(), &page)
	if n := browsertest.Run(b, "event rows", chromedp.Evaluate[int](`document.querySelectorAll('#events-table tbody tr[data-event]').length`)); n != len(page.Events) || n != 4 {
		t.Errorf("events page shows %d DISPATCHED rows; API %d, want 4", n, len(page.Events))
	}
	b.Screenshot("console-events")
	// Pages follow the cursor without overlap.
	var p1, p2 store.EventPage
	get("/api/v1/events?limit=5", &p1)
	get("/api/v1/events?limit=5&cursor="+p1.Next, &p2)
	if len(p1.Events) != 5 || len(p2.Events) != len(msgs)-5 || p2.Next != "" || p1.Events[4].EventID == p2.Events[0].EventID {
		t.Errorf("pages of 5: %d then %d events (next %q); want 5 then %d, no overlap", len(p1.Events), len(p2.Events), p2.Next, len(msgs)-5)
	}

	// Dead letters: inspect the raw body, replay it by clicking.
	row := `#deadletters-table tr[data-id="` + dead.ID + `"]`
	b.Do("dead letters", chromedp.Navigate(base+"/console/#deadletters"), chromedp.WaitVisible(row),
		chromedp.Click(row+" .dl-inspect"), chromedp.WaitVisible("#dl-detail"))
	if body := b.Text("#dl-body"); !strings.Contains(body, otpReplayed) {
		t.Errorf("dead letter body = %q; want the webhook", body)
	}
	b.Do("replay", chromedp.Click(row+" .dl-replay"), chromedp.WaitReady(`#dl-result[data-replayed="`+dead.ID+`"]`))
	b.Screenshot("console-deadletters")
	polltest.Until(t, 30*time.Second, "the replayed webhook stored", func() bool {
		var p store.EventPage
		get("/api/v1/events?otp="+otpReplayed, &p)
		return len(p.Events) == 1
	})
	// Delete it, confirmed (the dialog answered yes): gone from the page
	// and the API; the event its replay stored stays.
	browsertest.Run(b, "confirm yes", chromedp.Evaluate[bool](`window.confirm = () => true; true`))
	b.Do("delete", chromedp.Click(row+" .dl-delete"),
		chromedp.WaitReady(`#dl-result[data-deleted="`+dead.ID+`"]`), chromedp.WaitNotPresent(row))
	if !browsertest.Run(b, "replay all", chromedp.Evaluate[bool](`document.querySelector('#dl-replay-all').disabled`)) {
		t.Error("with no dead letter left to replay, Replay all pending is offered")
	}
	var dls reporter.DeadLettersResponse
	get("/api/v1/deadletters?id="+dead.ID, &dls)
	var kept store.EventPage
	get("/api/v1/events?otp="+otpReplayed, &kept)
	if len(dls.DeadLetters) != 0 || len(kept.Events) != 1 {
		t.Errorf("after Delete: the API lists %d such dead letters, %d events of its replay; want 0, 1", len(dls.DeadLetters), len(kept.Events))
	}

	// Live: an event published now shows up.
	b.Do("live", chromedp.Navigate(base+"/console/#live"))
	browsertest.Run(b, "live connected", chromedp.Poll[bool](`document.querySelector('#live-state').textContent === 'connected'`))
	if err := a.Broker().Publish(ctx, ev(otpLive, events.ChannelSMS, events.StatusDispatched, 0)); err != nil {
		t.Fatal(err)
	}
	b.Do("live event", chromedp.WaitVisible(`#live-table tr[data-otp="`+otpLive+`"]`))
	// A silent-auth outcome shows as its SILENT fact.
	liveSilent := events.SilentOutcome{AttemptID: "sa-live", CorrelationID: "sa-live", StartedAt: now, FinishedAt: now.Add(time.Second), Result: events.SilentNotVerified, ReceivedAt: now}
	m, err := events.NewSilentOutcomeMessage(&liveSilent)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Broker().Publish(ctx, m); err != nil {
		t.Fatal(err)
	}
	b.Do("live silent auth", chromedp.WaitVisible(`#live-table tr[data-otp="`+liveSilent.Fact().OTPID+`"]`))
	if got := b.Text(`#live-table tr[data-otp="` + liveSilent.Fact().OTPID + `"]`); !strings.Contains(got, "SILENT") || !strings.Contains(got, "UNDELIVERABLE") {
		t.Errorf("live silent-auth row = %q; want SILENT UNDELIVERABLE", got)
	}
	// A burst is listed whole and counted, in a few writes to the list
	// rather than one an event (a wall screen's renderer kept busy).
	browsertest.Run(b, "count the list's writes", chromedp.Evaluate[bool](`window.liveWrites = 0; new MutationObserver((rs) => { window.liveWrites += rs.length; }).observe(document.querySelector('#live-table tbody'), { childList: true }); true`))
	var burst []events.Message
	for i := range 60 {
		burst = append(burst, ev(fmt.Sprintf("a4762c77-94cb-43d6-bbab-9f37e088b%03d", i), events.ChannelSMS, events.StatusDispatched, time.Duration(i)*time.Millisecond))
	}
	if err := a.Broker().Publish(ctx, burst...); err != nil {
		t.Fatal(err)
	}
	browsertest.Run(b, "the burst listed", chromedp.Poll[bool](`document.querySelectorAll('#live-table tr[data-otp^="a4762c77-94cb-43d6-bbab-9f37e088b"]').length === 60 && document.querySelector('#live-count').textContent === '62'`))
	if n := browsertest.Run(b, "the list's writes", chromedp.Evaluate[int](`window.liveWrites`)); n > 20 {
		t.Errorf("60 events written to the list in %d changes; want a few (drawn together)", n)
	}
	// Paused, the list stands still and says how many it holds back;
	// resumed, a row says what it left out.
	b.Do("pause", chromedp.Click("#live-pause"))
	const otpPaused = "a4762c77-94cb-43d6-bbab-9f37e088ad0f"
	if err := a.Broker().Publish(ctx, ev(otpPaused, events.ChannelSMS, events.StatusDispatched, 0)); err != nil {
		t.Fatal(err)
	}
	browsertest.Run(b, "held back", chromedp.Poll[bool](`document.querySelector('#live-held').textContent === '1 new not listed while paused'`))
	if n := browsertest.Run(b, "paused rows", chromedp.Evaluate[int](`document.querySelectorAll('#live-table tr[data-otp="`+otpPaused+`"]').length`)); n != 0 {
		t.Errorf("a paused list shows the new event (%d rows)", n)
	}
	b.Do("resume", chromedp.Click("#live-pause"))
	if got := b.Text("#live-table tr.gap"); !strings.Contains(got, "1 event not listed") {
		t.Errorf("after the pause the list says %q; want what it left out", got)
	}
	b.Screenshot("console-live")
	b.NoErrors("console")
}

// TestConsoleFollowsTheRollupJob: by default the console reads as the
// rollup job last left the hours (config.json's maxLag: its interval and a
// minute), so facts stored since its last run show at its next, and the
// page says as of when; the exact API has them at once.
func TestConsoleFollowsTheRollupJob(t *testing.T) {
	b := browsertest.New(t, 3*time.Minute)
	cfg := reporterConfig(t)
	// Hourly: the job runs only when the test runs it (below).
	cfg.Reports.Rollups = "@every 1h"
	a := serve(t, cfg)
	base := "http://" + a.AdminAddr()
	ctx := t.Context()
	get := apiGetter(t, base, "")
	var config struct{ MaxLag string }
	get("/console/config.json", &config)
	if config.MaxLag != "1h1m0s" {
		t.Errorf("config.json maxLag = %q; want 1h1m0s (the job's interval and a minute)", config.MaxLag)
	}

	now := time.Now().UTC().Add(-5 * time.Minute).Truncate(time.Millisecond)
	delivered := func(otp string) []events.Message {
		var msgs []events.Message
		for i, st := range []events.Status{events.StatusDispatched, events.StatusDelivered} {
			m, err := events.NewDeliveryMessage(&events.DeliveryStatus{Channel: events.ChannelSMS, Status: st, OTPID: otp, Source: events.SourceWebhook,
				Timestamp: now.Add(time.Duration(i) * time.Second), ReceivedAt: time.Now().UTC()})
			if err != nil {
				t.Fatal(err)
			}
			msgs = append(msgs, m)
		}
		return msgs
	}
	smsAttempts := func(query string) uint64 {
		var chs reporter.ChannelsResponse
		get("/api/v1/channels?since=1h"+query, &chs)
		for _, c := range chs.Channels {
			if c.Channel == "SMS" {
				return c.Attempts
			}
		}
		return 0
	}
	stored := func(want uint64, msgs []events.Message) {
		t.Helper()
		if err := a.Broker().Publish(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
		polltest.Until(t, 30*time.Second, "the events stored", func() bool { return smsAttempts("") == want })
	}
	// What the reporter's job does on its schedule, from a replica of its own.
	db, err := store.Open(ctx, store.Config{DSN: cfg.ClickHouse.DSN}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	runJob := func() time.Time {
		t.Helper()
		if _, err := db.RefreshRollups(ctx); err != nil {
			t.Fatal(err)
		}
		return time.Now()
	}

	stored(1, delivered("c4762c77-94cb-43d6-bbab-9f37e088ad01"))
	ran := runJob()
	stored(2, delivered("c4762c77-94cb-43d6-bbab-9f37e088ad02"))

	// The second OTP came after the job's run: the console shows the first.
	sms := `#channels tr[data-channel="SMS"] [data-field="attempts"]`
	b.Do("open the console", chromedp.Navigate(base+"/console/#overview"), chromedp.WaitReady("#page-overview[data-loaded]"))
	if got := b.Text(sms); got != "1" {
		t.Errorf("overview SMS attempts = %q before the job's next run; want 1, as the job left the hour (the exact API: %d)", got, smsAttempts(""))
	}
	if lagged := smsAttempts("&max_lag=" + config.MaxLag); lagged != 1 {
		t.Errorf("the API with max_lag %s: %d SMS attempts; want 1", config.MaxLag, lagged)
	}
	asOf := func() time.Time {
		v := browsertest.Run(b, "as of", chromedp.AttributeValue("#read-at", "data-as-of"))
		at, err := time.Parse(time.RFC3339Nano, v.Value)
		if err != nil {
			t.Fatalf("#read-at data-as-of %q: %v", v.Value, err)
		}
		return at
	}
	if at := asOf(); at.After(ran) {
		t.Errorf("the page says as of %v; want at most the job's run (%v)", at, ran)
	}
	if got := b.Text("#read-at"); !strings.HasPrefix(got, "as of ") {
		t.Errorf("#read-at = %q; want as of the answers' as_of", got)
	}

	// The job's next run brings it, at the page's next refresh.
	ran = runJob()
	browsertest.Run(b, "the overview after the job's next run", chromedp.Poll[bool](`document.querySelector('`+sms+`')?.textContent === '2'`, chromedp.WithPollingTimeout(30*time.Second)))
	// As of that run (less its slack), or of the read itself when every
	// hour is as the run left it: an exact answer.
	if at := asOf(); at.Before(ran.Add(-time.Minute)) {
		t.Errorf("after the job's next run the page says as of %v; want at most a minute before the run (%v)", at, ran)
	}
	b.NoErrors("following the rollup job")
}

// apiGetter returns a function that GETs path from the API at base with
// token and decodes the 200 answer into v, failing the test otherwise.
func apiGetter(t *testing.T, base, token string) func(path string, v any) {
	return func(path string, v any) {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", path, resp.Status)
		}
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
}
