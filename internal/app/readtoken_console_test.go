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
)

// The console signed in with a read token shows its pages; a replay, a
// delete or a backup clicked is refused, the page says why and keeps the
// token, and nothing is replayed, deleted or taken.
func TestConsoleWithAReadToken(t *testing.T) {
	b := browsertest.New(t, 3*time.Minute)
	cfg := reporterConfig(t)
	const full, read = "console-token-0123456789", "console-read-token-0123456789"
	cfg.APITokens, cfg.APIReadTokens = []string{full}, []string{read}
	a := serve(t, cfg)
	base := "http://" + a.AdminAddr()

	webhook := fmt.Sprintf(`{"channel":"SMS","otpId":"a4762c77-94cb-43d6-bbab-9f37e088ad41","status":"DELIVERED","timestamp":%q}`, time.Now().UTC().Format(time.RFC3339Nano))
	dead, err := events.NewDeadLetterMessage(events.DeadLetter{Reason: `Content-Type "text/plain": want application/json`, Status: 415, Source: "ingest", ReceivedAt: time.Now().UTC()}, []byte(webhook), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Broker().Publish(t.Context(), dead); err != nil {
		t.Fatal(err)
	}
	get := apiGetter(t, base, read)
	pending := func() int {
		var dl reporter.DeadLettersResponse
		get("/api/v1/deadletters?pending=true", &dl)
		return len(dl.DeadLetters)
	}
	polltest.Until(t, 30*time.Second, "the dead letter stored", func() bool { return pending() == 1 })

	b.Do("sign in with the read token", chromedp.Navigate(base+"/"), chromedp.WaitVisible("#login"),
		chromedp.SendKeys("#token", read), chromedp.Click("#sign-in"), chromedp.WaitReady("#page-overview[data-loaded]"))
	row := `#deadletters-table tr[data-id="` + dead.ID + `"]`
	b.Do("dead letters", chromedp.Navigate(base+"/console/#deadletters"), chromedp.WaitVisible(row),
		chromedp.Click(row+" .dl-inspect"), chromedp.WaitVisible("#dl-detail"))
	b.Do("replay", chromedp.Click(row+" .dl-replay"), chromedp.WaitVisible("#error"))
	if got := b.Text("#error"); !strings.Contains(got, "this token may only read") {
		t.Errorf("after a replay with the read token the page says %q; want why it was refused", got)
	}
	if login := browsertest.Run(b, "login hidden", chromedp.Evaluate[bool](`document.querySelector('#login').hidden`)); !login {
		t.Error("the page asks for another token after a 403; want the read token kept")
	}
	// Delete, confirmed, is refused alike, and deletes nothing.
	browsertest.Run(b, "confirm yes", chromedp.Evaluate[bool](`window.confirm = () => true; document.querySelector('#error').hidden = true; true`))
	b.Do("delete", chromedp.Click(row+" .dl-delete"), chromedp.WaitVisible("#error"))
	if got := b.Text("#error"); !strings.Contains(got, "this token may only read") {
		t.Errorf("after a delete with the read token the page says %q; want why it was refused", got)
	}
	if n := pending(); n != 1 {
		t.Errorf("%d dead letters never replayed after the read token's clicks; want 1", n)
	}
	// The backups are listed; taking one is refused alike, and takes none.
	browsertest.Run(b, "error hidden", chromedp.Evaluate[bool](`document.querySelector('#error').hidden = true; true`))
	b.Do("backups", chromedp.Navigate(base+"/console/#backups"), chromedp.WaitReady("#page-backups[data-loaded]"),
		chromedp.Click("#bk-take"), chromedp.WaitVisible("#error"))
	// Said once the list is drawn again too: a drawn load clears the
	// error line, and the refusal once flashed before it.
	browsertest.Run(b, "the list drawn again", chromedp.Poll[bool](`!document.querySelector('#bk-take').disabled && document.querySelector('#loading').hidden`))
	if hidden := browsertest.Run(b, "error hidden", chromedp.Evaluate[bool](`document.querySelector('#error').hidden`)); hidden {
		t.Error("after taking a backup with the read token and the list drawn again, the page says nothing; want why it was refused")
	} else if got := b.Text("#error"); !strings.Contains(got, "this token may only read") {
		t.Errorf("after taking a backup with the read token the page says %q; want why it was refused", got)
	}
	var bk reporter.BackupsResponse
	get("/api/v1/backups", &bk)
	if len(bk.Backups) != 0 {
		t.Errorf("backups after the read token's click: %+v; want none", bk.Backups)
	}
	b.NoErrorsBut("console with a read token", "403")
}
