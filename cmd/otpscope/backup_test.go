package main_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/otpscope/otpscope/internal/chdb/chdbtest"
	"github.com/otpscope/otpscope/internal/polltest"
	"github.com/otpscope/otpscope/internal/store"
)

// TestBackupAndRestore is the README's disaster: a backup is taken while
// webhooks arrive, more arrive after it, then the engine's data is lost.
// otpscope restore puts the backup back, and on its next start the sink
// inserts the stream again from the backup's position: every webhook
// acknowledged is in ClickHouse again, once.
func TestBackupAndRestore(t *testing.T) {
	needEngine(t)
	in := newInstance(t, t.TempDir())
	in.start(t)
	client := &http.Client{Timeout: 5 * time.Second}
	ids := map[string]bool{}
	post := func(n int) {
		t.Helper()
		for range n {
			id := uuid.NewString()
			if code, err := postWebhook(client, in.listen, id, "DELIVERED", time.Now()); err != nil || code != http.StatusOK {
				t.Fatalf("webhook: %d, %v", code, err)
			}
			ids[id] = true
		}
	}
	post(100)
	conn := in.clickhouse(t)
	chdbtest.WaitForIDs(t, conn, 30*time.Second, "SELECT toString(otp_id) FROM delivery_events", ids)

	api := "http://" + in.adminListen
	out, err := exec.Command(binary, "backup", "create", "--api", api, "--json").CombinedOutput()
	if err != nil {
		t.Fatalf("otpscope backup create: %v\n%s\n%s", err, out, in.logs)
	}
	var b store.BackupInfo
	if err := json.Unmarshal(out, &b); err != nil || b.Status != store.BackupCreated || b.StreamSeq < 100 || b.Bytes == 0 {
		t.Fatalf("otpscope backup create said %s (%v); want a backup created after the first 100 webhooks", out, err)
	}
	if _, err := os.Stat(filepath.Join(in.dataDir, "backups", b.Name)); err != nil {
		t.Errorf("the backup is not in <data-dir>/backups: %v", err)
	}
	// The action is in the log: what, the answer, who (no API token here).
	if want := regexp.MustCompile(`msg="api action" service=otpscope method=POST path=/api/v1/backups status=201 took=\S+ token=none remote=127\.0\.0\.1:\d+ user_agent="otpscope backup create"`); !want.MatchString(in.logs.String()) {
		t.Errorf("no audit line for the backup in the log, want %s:\n%s", want, in.logs)
	}
	listed, err := exec.Command(binary, "backup", "list", "--api", api).CombinedOutput()
	if err != nil || !strings.Contains(string(listed), b.Name) || !strings.Contains(string(listed), "created") {
		t.Errorf("otpscope backup list: %v\n%s", err, listed)
	}

	// A restore while otpscope runs is refused, saying why.
	out, err = exec.Command(binary, "restore", "--data-dir", in.dataDir, "--clickhouse-listen", in.chListen, "--name", b.Name).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "is otpscope running on it? stop it first") {
		t.Errorf("otpscope restore beside the running otpscope: %v\n%s\nwant a refusal asking whether it still runs", err, out)
	}

	post(50) // after the backup
	chdbtest.WaitForIDs(t, conn, 30*time.Second, "SELECT toString(otp_id) FROM delivery_events", ids)
	in.stop(t)

	// The engine's data is lost; the backups and the stream are not.
	if err := os.RemoveAll(filepath.Join(in.dataDir, "clickhouse")); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(binary, "restore", "--data-dir", in.dataDir, "--clickhouse-listen", in.chListen, "--name", b.Name).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "restored "+b.Name) || strings.Contains(string(out), "note:") {
		t.Fatalf("otpscope restore: %v\n%s\n(want it restored, with no note: the data directory has its files)", err, out)
	}
	// On a rebuilt machine the files a backup does not hold may be
	// missing: restore names each one before otpscope makes it anew.
	key := filepath.Join(in.dataDir, "pseudonym.key")
	if err := os.Rename(key, key+".kept"); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(binary, "restore", "--data-dir", in.dataDir, "--clickhouse-listen", in.chListen, "--name", b.Name).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "note: "+key+" is missing") || strings.Contains(string(out), "credentials.json") {
		t.Errorf("otpscope restore without %s: %v\n%s\n(want a note of that file alone)", key, err, out)
	}
	if err := os.Rename(key+".kept", key); err != nil {
		t.Fatal(err)
	}
	// A damaged backup (a data file cut short; the engine's RESTORE copies
	// it without a word) is refused with the database untouched: on the
	// engine's own default database, tables moved aside could not come
	// back. The start below finds every webhook.
	damaged := b.Name + "-damaged"
	if out, err := exec.Command("cp", "-a", filepath.Join(in.dataDir, "backups", b.Name), filepath.Join(in.dataDir, "backups", damaged)).CombinedOutput(); err != nil {
		t.Fatalf("copy the backup: %v\n%s", err, out)
	}
	var victim string
	var size int64
	_ = filepath.Walk(filepath.Join(in.dataDir, "backups", damaged), func(p string, info os.FileInfo, err error) error {
		if err == nil && filepath.Ext(p) == ".bin" && info.Size() > size {
			victim, size = p, info.Size()
		}
		return nil
	})
	if err := os.Truncate(victim, size/2); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(binary, "restore", "--data-dir", in.dataDir, "--clickhouse-listen", in.chListen, "--name", damaged).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "the database is untouched") {
		t.Errorf("otpscope restore of a damaged backup: %v\n%s\n(want it refused, the database untouched)", err, out)
	}
	// A backup that does not exist is refused, saying so.
	out, err = exec.Command(binary, "restore", "--data-dir", in.dataDir, "--clickhouse-listen", in.chListen, "--name", "otpscope-19990101T000000.000Z").CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || !strings.Contains(string(out), "no such backup") {
		t.Errorf("otpscope restore of no backup: %v\n%s", err, out)
	}
	// Nor is a mistyped --data-dir made into a database first.
	typo := filepath.Join(t.TempDir(), "dat")
	out, err = exec.Command(binary, "restore", "--data-dir", typo, "--clickhouse-listen", in.chListen, "--name", b.Name).CombinedOutput()
	if _, statErr := os.Stat(typo); !errors.As(err, &exit) || !strings.Contains(string(out), "no such backup") || statErr == nil {
		t.Errorf("otpscope restore from a data directory that does not exist: %v\n%s\n(want no such backup, and nothing made at %s: %v)", err, out, typo, statErr)
	}

	in.start(t)
	conn = in.clickhouse(t)
	chdbtest.WaitForIDs(t, conn, 60*time.Second, "SELECT toString(otp_id) FROM delivery_events", ids)
	var stored, distinct uint64
	if err := conn.QueryRow(t.Context(), "SELECT count(), uniqExact(event_id) FROM delivery_events FINAL").Scan(&stored, &distinct); err != nil {
		t.Fatal(err)
	}
	if distinct != uint64(len(ids)) || stored != distinct {
		t.Errorf("after the restore ClickHouse has %d rows of %d events; want the %d webhooks once each", stored, distinct, len(ids))
	}
	if !strings.Contains(in.logs.String(), "restored from a backup; inserting the stream again") {
		t.Errorf("the sink did not say it replays the stream after the restore:\n%s", in.logs)
	}
	in.stop(t)
}

// TestScheduledBackups: --backup-schedule takes backups by itself and
// --backup-keep leaves the newest in --backup-dir, the others listed as
// removed.
func TestScheduledBackups(t *testing.T) {
	needEngine(t)
	in := newInstance(t, t.TempDir())
	backups := t.TempDir()
	in.start(t, "--backup-schedule", "@every 1s", "--backup-keep", "2", "--backup-dir", backups)
	api := "http://" + in.adminListen
	var list struct {
		Backups []store.BackupInfo `json:"backups"`
	}
	removed := func() int {
		out, err := exec.Command(binary, "backup", "list", "--api", api, "--json").Output()
		if err != nil || json.Unmarshal(out, &list) != nil {
			return 0
		}
		n := 0
		for _, b := range list.Backups {
			if b.Status == store.BackupRemoved {
				n++
			}
		}
		return n
	}
	// Between two backups (one a second, a prune after each) the
	// directory holds the newest two, and those are what the list says.
	var entries []os.DirEntry
	settled := func() bool {
		n := removed()
		entries, _ = os.ReadDir(backups)
		if n < 2 || len(entries) != 2 {
			return false
		}
		for i, e := range entries {
			if b := list.Backups[len(entries)-1-i]; e.Name() != b.Name || b.Status != store.BackupCreated {
				return false
			}
		}
		return true
	}
	if !polltest.Within(30*time.Second, 100*time.Millisecond, settled) {
		t.Errorf("after 30s --backup-dir holds %d entries and the list says %+v; want the 2 newest backups, 2 or more removed\n%s", len(entries), list.Backups, in.logs)
	}
	in.stop(t)

	// Started again, with the next backup a year away, the gauge says when
	// the newest backup began, read from the database.
	in.start(t, "--backup-schedule", "0 3 1 1 *", "--backup-dir", backups)
	removed() // lists them
	newest := int64(-1)
	for _, b := range list.Backups {
		if b.Status == store.BackupCreated {
			newest = b.StartedAt.Unix()
			break
		}
	}
	if got := lastTaken(t, in); got != newest {
		t.Errorf("after a restart otpscope_backup_last_taken_timestamp_seconds = %d; want %d, the newest backup's", got, newest)
	}
	in.stop(t)
	// Without a schedule it stays 0: a backup by hand is no schedule.
	in.start(t, "--backup-dir", backups)
	if got := lastTaken(t, in); got != 0 {
		t.Errorf("without --backup-schedule otpscope_backup_last_taken_timestamp_seconds = %d; want 0", got)
	}
	// Without a schedule nothing prunes: a backup is removed by name.
	entries, _ = os.ReadDir(backups)
	if len(entries) == 0 {
		t.Fatalf("no backup left in --backup-dir to remove")
	}
	name := entries[0].Name()
	out, err := exec.Command(binary, "backup", "delete", "--api", api, "--name", name).CombinedOutput()
	if err != nil || !strings.Contains(string(out), name) || !strings.Contains(string(out), store.BackupRemoved) {
		t.Errorf("otpscope backup delete --name %s: %v\n%s", name, err, out)
	}
	if _, err := os.Stat(filepath.Join(backups, name)); !os.IsNotExist(err) {
		t.Errorf("after otpscope backup delete, %s in --backup-dir: %v; want it gone", name, err)
	}
	removed()
	if len(list.Backups) == 0 || !slices.ContainsFunc(list.Backups, func(b store.BackupInfo) bool { return b.Name == name && b.Status == store.BackupRemoved }) {
		t.Errorf("after otpscope backup delete the list says %+v; want %s removed", list.Backups, name)
	}
	out, err = exec.Command(binary, "backup", "delete", "--api", api, "--name", name).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "404") {
		t.Errorf("otpscope backup delete of a backup removed already: %v\n%s; want an error naming 404", err, out)
	}
	in.stop(t)
}

// lastTaken reads otpscope_backup_last_taken_timestamp_seconds from the
// instance's /metrics.
func lastTaken(t *testing.T, in *instance) int64 {
	t.Helper()
	resp, err := http.Get("http://" + in.adminListen + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "otpscope_backup_last_taken_timestamp_seconds "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return int64(f)
		}
	}
	t.Fatalf("/metrics has no otpscope_backup_last_taken_timestamp_seconds")
	return 0
}
