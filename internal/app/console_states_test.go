package app_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/otpscope/otpscope/internal/console/browsertest"
	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/polltest"
	"github.com/otpscope/otpscope/internal/reporter"
	"github.com/otpscope/otpscope/internal/store"
)

// TestConsoleNeverShowsFiguresUnderAnotherWindow drives the console through
// what an operator meets besides the happy path: a window the API refuses
// (the old figures stay, greyed, under their own window), a slow answer
// overtaken by a newer one (dropped), a filter changed on a later events
// page (back to the first), an unrecoverable attempt, a silent-auth fact
// on Live (no OTP lookup), a dead letter whose array replays in part, and
// the server gone (said, with since when).
func TestConsoleNeverShowsFiguresUnderAnotherWindow(t *testing.T) {
	b := browsertest.New(t, 3*time.Minute)
	cfg := reporterConfig(t)
	const token = "console-token-0123456789"
	cfg.APITokens = []string{token}
	// Exact reads, whose figures the API's equal as soon as the events are
	// stored; TestConsoleFollowsTheRollupJob reads as the console does by
	// default.
	cfg.Reports.Rollups = ""
	// The server is stopped below with the console polling it: a load in
	// flight then may take a loaded machine's while to finish.
	cfg.ShutdownTimeout = 30 * time.Second
	a, stop := start(t, cfg)
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			stop()
		}
	})
	base := "http://" + a.AdminAddr()
	ctx := t.Context()

	now := time.Now().UTC().Add(-5 * time.Minute).Truncate(time.Millisecond)
	const (
		otpSMS     = "b4762c77-94cb-43d6-bbab-9f37e088ad01"
		otpViber   = "b4762c77-94cb-43d6-bbab-9f37e088ad02"
		otpLost    = "b4762c77-94cb-43d6-bbab-9f37e088ad03"
		otpReplay  = "b4762c77-94cb-43d6-bbab-9f37e088ad04"
		otpViber2  = "b4762c77-94cb-43d6-bbab-9f37e088ad05"
		otpLiveSMS = "b4762c77-94cb-43d6-bbab-9f37e088ad06"
	)
	ev := func(otp string, ch events.Channel, st events.Status, after time.Duration) events.Message {
		d := events.DeliveryStatus{Channel: ch, Status: st, OTPID: otp, Source: events.SourceWebhook,
			Timestamp: now.Add(after), ReceivedAt: now.Add(after)}
		m, err := events.NewDeliveryMessage(&d)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	msgs := []events.Message{
		ev(otpSMS, events.ChannelSMS, events.StatusDispatched, 0),
		ev(otpSMS, events.ChannelSMS, events.StatusDelivered, 2*time.Second),
		ev(otpViber, events.ChannelViber, events.StatusDispatched, time.Second),
		ev(otpViber, events.ChannelViber, events.StatusDelivered, 3*time.Second),
		ev(otpViber2, events.ChannelViber, events.StatusDispatched, 4*time.Second),
		ev(otpLost, events.ChannelWhatsApp, events.StatusDispatched, 5*time.Second),
	}
	// The poller gave the WhatsApp attempt up: pending for good.
	lost, err := events.NewReconcileMessage(&events.Reconcile{OTPID: otpLost, API: "v4", Result: events.ReconcileUnrecoverable,
		Channel: events.ChannelWhatsApp, Since: now.Add(5 * time.Second), Reason: "console test", ObservedAt: now.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	// A dead letter of two webhooks, the second never valid.
	body := fmt.Sprintf(`[{"channel":"SMS","otpId":%q,"status":"DELIVERED","timestamp":%q},{"channel":"SMS","otpId":"not-a-uuid","status":"DELIVERED"}]`,
		otpReplay, now.Format(time.RFC3339Nano))
	dead, err := events.NewDeadLetterMessage(events.DeadLetter{Reason: `Content-Type "text/plain": want application/json`, Status: 415, Source: "ingest",
		ReceivedAt: time.Now().UTC()}, []byte(body), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Broker().Publish(ctx, append(msgs, lost, dead)...); err != nil {
		t.Fatal(err)
	}
	get := apiGetter(t, base, token)
	polltest.Until(t, 30*time.Second, "the events, the reconciliation and the dead letter stored", func() bool {
		var p store.EventPage
		var dl reporter.DeadLettersResponse
		var chs reporter.ChannelsResponse
		get("/api/v1/events?limit=100", &p)
		get("/api/v1/deadletters", &dl)
		get("/api/v1/channels?since=1h&channel=whatsapp", &chs)
		return len(p.Events) == len(msgs) && len(dl.DeadLetters) == 1 && len(chs.Channels) == 1 && chs.Channels[0].Unrecoverable == 1
	})

	js := func(what, expr string) {
		t.Helper()
		browsertest.Run(b, what, chromedp.Evaluate[any](expr))
	}
	until := func(what, cond string) {
		t.Helper()
		browsertest.Run(b, what, chromedp.Poll[bool](cond))
	}
	attr := func(sel, name string) string {
		t.Helper()
		return browsertest.Run(b, sel+" "+name, chromedp.AttributeValue(sel, name)).Value
	}

	// A wrong token is said in the form, where the eye is.
	b.Do("a wrong token", chromedp.Navigate(base+"/"), chromedp.WaitVisible("#login"),
		chromedp.SendKeys("#token", "wrong-token-0123456789"), chromedp.Click("#sign-in"), chromedp.WaitVisible("#login-msg"))
	if got := b.Text("#login-msg"); got != "The token was refused." {
		t.Errorf("after a wrong token the form says %q", got)
	}
	b.Do("sign in", chromedp.SendKeys("#token", token), chromedp.Click("#sign-in"), chromedp.WaitReady("#page-overview[data-loaded]"))

	// The unrecoverable attempt: its own column, and the figures said not final.
	if got := b.Text(`#channels tr[data-channel="WHATSAPP"] [data-field="unrecoverable"]`); got != "1" {
		t.Errorf("overview: WHATSAPP unrecoverable = %q; want 1", got)
	}
	if got := b.Text("#completeness"); !strings.Contains(got, "1 unrecoverable") {
		t.Errorf("overview completeness = %q; want the unrecoverable attempt counted", got)
	}
	b.NoErrorsBut("overview", "status of 401") // the wrong token's

	// A window the API refuses: the figures stay, greyed, labelled with the
	// window they answer for.
	shownFrom, loaded := attr("#shown", "data-from"), attr("#page-overview", "data-loaded")
	js("a window ending before it starts", `(() => {
		document.querySelector('#range').value = 'custom';
		document.querySelector('#from').value = '2026-01-02T12:00:00';
		document.querySelector('#to').value = '2026-01-02T10:00:00';
		document.querySelector('#range').dispatchEvent(new Event('change'));
	})()`)
	until("the error shown", `!document.querySelector('#error').hidden`)
	if msg := b.Text("#error"); !strings.Contains(msg, "is after to") || !strings.Contains(msg, "figures below are those of "+strings.Replace(shownFrom, "T", " ", 1)) {
		t.Errorf("error = %q; want the refusal, and the window the figures below are of (%s)", msg, shownFrom)
	}
	if got := attr("#shown", "data-from"); got != shownFrom || attr("#page-overview", "data-loaded") != loaded {
		t.Errorf("after a refused window the label says from %s; want the figures' own %s", got, shownFrom)
	}
	if !browsertest.Run(b, "stale", chromedp.Evaluate[bool](`document.querySelector('main').classList.contains('stale')`)) {
		t.Error("the figures of the last good load are not marked stale")
	}

	// A slow answer overtaken by a newer window's is dropped: its figures
	// never show under the newer label. The wrapper lets the slow request
	// complete even once aborted, so that the page itself must drop it.
	js("slow answers for a window from 2000", `(() => {
		const f = window.fetch;
		window.fetch = (u, o) => String(u).includes('from=2000-01-01') ?
			new Promise((res) => setTimeout(res, 1500)).then(() => f(u, Object.assign({}, o, { signal: undefined }))) : f(u, o);
	})()`)
	from, to := time.Now().UTC().Add(-time.Hour).Truncate(time.Second), time.Now().UTC().Truncate(time.Second)
	js("a slow window, then a quick one", fmt.Sprintf(`(() => {
		const set = (f, t) => { document.querySelector('#from').value = f; document.querySelector('#to').value = t;
			document.querySelector('#to').dispatchEvent(new Event('change')); };
		set('2000-01-01T00:00:00', %q);
		set(%q, %q);
	})()`, to.Format("2006-01-02T15:04:05"), from.Format("2006-01-02T15:04:05"), to.Format("2006-01-02T15:04:05")))
	want := from.Format(time.RFC3339) + "/" + to.Format(time.RFC3339)
	until("the quick window drawn", `document.querySelector('#page-overview').dataset.loaded === '`+want+`'`)
	time.Sleep(2500 * time.Millisecond) // the slow answer has come by now
	if got := attr("#page-overview", "data-loaded"); got != want || attr("#shown", "data-from") != from.Format(time.RFC3339) {
		t.Errorf("after the slow answer came, the overview shows %s (label from %s); want %s", got, attr("#shown", "data-from"), want)
	}
	if browsertest.Run(b, "fresh", chromedp.Evaluate[bool](`document.querySelector('main').classList.contains('stale')`)) {
		t.Error("the figures are still marked stale after a good load")
	}

	// Events on the last hour: pages after the first keep the first's
	// window (a relative one would move on at every page); Previous goes
	// back; a filter changed on page 2 starts over at page 1.
	b.Do("events", chromedp.Navigate(base+"/console/#events"), chromedp.WaitReady("#page-events[data-loaded]"))
	js("last hour, two a page", `(() => { const o = document.createElement('option'); o.text = '2'; document.querySelector('#ev-limit').append(o);
		document.querySelector('#ev-limit').value = '2'; document.querySelector('#range').value = '1h';
		document.querySelector('#range').dispatchEvent(new Event('change')); })()`)
	until("page 1 of two", `document.querySelectorAll('#events-table tbody tr[data-event]').length === 2 && !document.querySelector('#ev-next').disabled &&
		document.querySelector('#ev-prev').disabled && document.querySelector('#ev-first').disabled`)
	page1, first := attr("#page-events", "data-loaded"), attr("#events-table tbody tr[data-event]", "data-event")
	time.Sleep(1100 * time.Millisecond) // a relative window has moved on by now
	// The next page's first request fails as an unreachable server's: the
	// count stays at page 1, and the page tries again by itself.
	js("the next page's first request fails", `(() => {
		const f = window.fetch; let failed = false;
		window.fetch = (u, o) => !failed && String(u).includes('cursor=') ? (failed = true, Promise.reject(new TypeError('Failed to fetch'))) : f(u, o);
	})()`)
	b.Do("next page", chromedp.Click("#ev-next"))
	until("the failure said", `document.querySelector('#error').textContent.includes('not answering')`)
	if got := b.Text("#ev-page"); got != "page 1" {
		t.Errorf("after a failed next page the count says %q; want page 1", got)
	}
	until("page 2, tried again", `document.querySelector('#ev-page').textContent === 'page 2' && document.querySelector('#error').hidden &&
		!document.querySelector('#ev-first').disabled`)
	if page2 := attr("#page-events", "data-loaded"); strings.TrimSuffix(page2, "#2") != strings.TrimSuffix(page1, "#1") {
		t.Errorf("events page 2 read window %s; want page 1's %s", page2, page1)
	}
	b.Do("previous page", chromedp.Click("#ev-prev"))
	until("page 1 again", `document.querySelector('#ev-page').textContent === 'page 1'`)
	if got := attr("#events-table tbody tr[data-event]", "data-event"); got != first {
		t.Errorf("events: back on page 1 the first row is %s; want %s", got, first)
	}
	b.Do("next page", chromedp.Click("#ev-next"))
	until("page 2", `document.querySelector('#ev-page').textContent === 'page 2'`)
	js("channel viber", `(() => { const c = document.querySelector('#channel'); c.value = 'viber'; c.dispatchEvent(new Event('change')); })()`)
	until("viber's first page", `document.querySelector('#ev-page').textContent === 'page 1' &&
		[...document.querySelectorAll('#events-table tbody tr[data-event]')].every((tr) => tr.textContent.includes('VIBER'))`)
	var viber store.EventPage
	get("/api/v1/events?"+fmt.Sprintf("from=%s&to=%s&channel=viber&limit=2", attr("#shown", "data-from"), attr("#shown", "data-to")), &viber)
	if len(viber.Events) != 2 {
		t.Fatalf("API: %d VIBER events on the first page; want 2", len(viber.Events))
	}
	if got := attr("#events-table tbody tr[data-event]", "data-event"); got != viber.Events[0].EventID {
		t.Errorf("events after the filter: first row %s; the API's first page starts with %s", got, viber.Events[0].EventID)
	}
	js("all channels", `(() => { const c = document.querySelector('#channel'); c.value = ''; c.dispatchEvent(new Event('change')); })()`)

	// The OTP whose attempt is lost for good says so.
	b.Do("lookup", chromedp.Navigate(base+"/console/#otp/"+otpLost), chromedp.WaitVisible(`#otp-result[data-otp="`+otpLost+`"]`))
	if got := attr(`#otp-attempts [data-field="outcome"]`, "data-unrecoverable"); got != "true" {
		t.Errorf("OTP lookup: the WhatsApp attempt's unrecoverable = %q; want true", got)
	}

	// A dead letter replayed in part says what it left out.
	row := `#deadletters-table tr[data-id="` + dead.ID + `"]`
	b.Do("replay", chromedp.Navigate(base+"/console/#deadletters"), chromedp.WaitVisible(row),
		chromedp.Click(row+" .dl-replay"), chromedp.WaitReady(`#dl-result[data-left="1"]`))
	if got := b.Text("#dl-result"); !strings.Contains(got, "still invalid") || !strings.Contains(got, "not a UUID") {
		t.Errorf("replay result = %q; want the element left out, and why", got)
	}
	// Its Replay button, disabled once replayed, hands the keyboard to the
	// result rather than drop it.
	until("the keyboard at the replay's result", `document.activeElement === document.querySelector('#dl-result')`)

	// Live: a silent-auth fact has no OTP lookup; a delivery event has one.
	b.Do("live", chromedp.Navigate(base+"/console/#live"))
	until("live connected", `document.querySelector('#live-state').textContent === 'connected'`)
	silent := events.SilentOutcome{AttemptID: "sa-states", CorrelationID: "sa-states", StartedAt: now, FinishedAt: now.Add(time.Second), Result: events.SilentVerified, ReceivedAt: now}
	sm, err := events.NewSilentOutcomeMessage(&silent)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Broker().Publish(ctx, sm, ev(otpLiveSMS, events.ChannelSMS, events.StatusDispatched, 0)); err != nil {
		t.Fatal(err)
	}
	silentRow, smsRow := `#live-table tr[data-otp="`+silent.Fact().OTPID+`"]`, `#live-table tr[data-otp="`+otpLiveSMS+`"]`
	b.Do("live rows", chromedp.WaitVisible(silentRow), chromedp.WaitVisible(smsRow))
	links := browsertest.Run(b, "links", chromedp.Evaluate[[]int](`[document.querySelectorAll('`+silentRow+` a').length, document.querySelectorAll('`+smsRow+` a').length]`))
	if len(links) != 2 || links[0] != 0 || links[1] != 1 {
		t.Errorf("live links (silent, SMS) = %v; want 0 and 1", links)
	}
	// Only the refused window's requests failed.
	b.NoErrorsBut("console", "?from=2026-01-02T12%3A00%3A00Z&to=2026-01-02T10%3A00%3A00Z", "status of 401")

	// The server gone: the overview says since when, the figures greyed;
	// Live says it is connecting again.
	b.Do("overview", chromedp.Navigate(base+"/console/#overview"), chromedp.WaitReady("#page-overview[data-loaded]"))
	js("last hour", `(() => { const r = document.querySelector('#range'); r.value = '1h'; r.dispatchEvent(new Event('change')); })()`)
	until("the last hour drawn", `!document.querySelector('main').classList.contains('stale') && document.querySelector('#error').hidden`)
	// Stopped right after a refresh is drawn, between two.
	drawn := attr("#page-overview", "data-loaded")
	until("the next refresh drawn", `document.querySelector('#page-overview').dataset.loaded !== '`+drawn+`'`)
	stop()
	stopped = true
	until("said unreachable", `document.querySelector('#error').textContent.includes('not answering since') && document.querySelector('main').classList.contains('stale')`)
	b.Screenshot("console-unreachable")
}
