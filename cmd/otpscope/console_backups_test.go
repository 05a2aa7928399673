package main_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"github.com/otpscope/otpscope/internal/app"
	"github.com/otpscope/otpscope/internal/console/browsertest"
	"github.com/otpscope/otpscope/internal/polltest"
	"github.com/otpscope/otpscope/internal/reporter"
	"github.com/otpscope/otpscope/internal/store"
)

// TestConsoleBackups drives the console's Backups page in headless
// Chromium against the binary, whose embedded engine writes the backups:
// an operator signed in with an API token takes a backup by clicking (the
// API lists it as the page does, with its stream position, and its files
// are in --backup-dir), then deletes it, confirmed: its files are gone, it
// stays listed as removed, and the page reported no error.
func TestConsoleBackups(t *testing.T) {
	needEngine(t)
	b := browsertest.New(t, 3*time.Minute)
	const apiToken = "console-backups-token-0123"
	in := newInstance(t, t.TempDir())
	in.start(t, "--api-token", apiToken)
	client := &http.Client{Timeout: 5 * time.Second}
	for range 3 {
		if code, err := postWebhook(client, in.listen, uuid.NewString(), "DELIVERED", time.Now()); err != nil || code != http.StatusOK {
			t.Fatalf("webhook: %d, %v", code, err)
		}
	}
	base := "http://" + in.adminListen
	list := func() []store.BackupInfo {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/api/v1/backups", nil)
		req.Header.Set("Authorization", "Bearer "+apiToken)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r reporter.BackupsResponse
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			t.Fatal(err)
		}
		return r.Backups
	}
	// The backup's stream position is the sink's acknowledged floor: taken
	// before the sink acknowledged the three webhooks, it was 0 ("unknown"
	// on the page), four runs in five on an idle machine.
	polltest.Until(t, 30*time.Second, "the sink acknowledging the three webhooks", func() bool {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/api/v1/status", nil)
		req.Header.Set("Authorization", "Bearer "+apiToken)
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var st app.StatusResponse
		return json.NewDecoder(resp.Body).Decode(&st) == nil && st.Stream.Messages >= 3 && st.Sink != nil && st.Sink.Lag == 0 && st.Sink.AckPending == 0
	})

	b.Do("sign in", chromedp.Navigate(base+"/console/#backups"), chromedp.WaitVisible("#login"),
		chromedp.SendKeys("#token", apiToken), chromedp.Click("#sign-in"),
		chromedp.WaitReady("#page-backups[data-loaded]"))
	if got := b.Text("#backups-table tbody"); got != "no backups yet" {
		t.Errorf("backups before any: %q; want no backups yet", got)
	}

	b.Do("take a backup", chromedp.Click("#bk-take"), chromedp.WaitReady("#bk-result[data-taken]"))
	name := browsertest.Run(b, "taken", chromedp.AttributeValue("#bk-result", "data-taken")).Value
	row := `#backups-table tr[data-name="` + name + `"]`
	b.Do("the backup listed", chromedp.WaitReady(row+`[data-status="created"]`))
	b.Screenshot("console-backups")
	listed := list()
	if len(listed) != 1 || listed[0].Name != name || listed[0].Status != store.BackupCreated {
		t.Fatalf("the API lists %+v; want the backup %s the page took, created", listed, name)
	}
	if got, want := b.Text(row+" td:nth-child(7)"), listed[0].StreamSeq; want == 0 || got != strconv.FormatUint(want, 10) {
		t.Errorf("stream position on the page %q; the API's %d (want the three webhooks' position)", got, want)
	}
	if _, err := os.Stat(filepath.Join(in.dataDir, "backups", name)); err != nil {
		t.Errorf("the backup is not in <data-dir>/backups: %v", err)
	}

	browsertest.Run(b, "confirm yes", chromedp.Evaluate[bool](`window.confirm = () => true; true`))
	b.Do("delete", chromedp.Click(row+" .bk-delete"), chromedp.WaitReady(`#bk-result[data-deleted="`+name+`"]`),
		chromedp.WaitReady(row+`[data-status="removed"]`))
	if n := browsertest.Run(b, "delete buttons", chromedp.Evaluate[int](`document.querySelectorAll('#backups-table .bk-delete').length`)); n != 0 {
		t.Errorf("%d Delete buttons after the delete; want none for a removed backup", n)
	}
	// The Delete gone, the keyboard is at the line saying what happened.
	if got := browsertest.Run(b, "focus", chromedp.Evaluate[string](`document.activeElement.id`)); got != "bk-result" {
		t.Errorf("after the delete the keyboard is at %q; want bk-result", got)
	}
	// Its files are gone: no size or count of them, and its end is its removal.
	if got := browsertest.Run(b, "the removed row", chromedp.Evaluate[string](`[...document.querySelectorAll('`+row+` td')].slice(3, 6).map((td) => td.textContent).join('|')`)); !strings.HasPrefix(got, "removed ") || !strings.HasSuffix(got, "|–|–") {
		t.Errorf("the removed backup's ended|size|files read %q; want removed <time>|–|–", got)
	}
	if _, err := os.Stat(filepath.Join(in.dataDir, "backups", name)); !os.IsNotExist(err) {
		t.Errorf("the deleted backup's files: %v; want them gone", err)
	}
	if listed := list(); len(listed) != 1 || listed[0].Status != store.BackupRemoved {
		t.Errorf("the API lists %+v after the delete; want the backup, removed", listed)
	}
	b.NoErrors("backups page")
}
