package main_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otpscope/otpscope/internal/store"
)

// TestReadTokenCannotBackUp: through the CLIs, an --api-read-token lists
// the backups and the dead letters, and is refused with 403 a backup, a
// backup's removal and a replay, which leave the backup and the data
// directory as they were; the --api-token does each.
func TestReadTokenCannotBackUp(t *testing.T) {
	needEngine(t)
	const full, read = "e2e-api-token-0123456789", "e2e-read-token-0123456789"
	in := newInstance(t, t.TempDir())
	in.start(t, "--api-token", full, "--api-read-token", read)
	api := "http://" + in.adminListen
	run := func(tok string, args ...string) (string, error) {
		out, err := exec.Command(binary, append(args, "--api", api, "--api-token", tok)...).CombinedOutput()
		return string(out), err
	}
	refused := func(what, out string, err error) {
		t.Helper()
		if err == nil || !strings.Contains(out, "403") || !strings.Contains(out, "this token may only read") {
			t.Errorf("%s with the read token: %v\n%s\nwant refused, 403, \"this token may only read\"", what, err, out)
		}
	}

	out, err := run(read, "backup", "create")
	refused("otpscope backup create", out, err)
	if entries, _ := os.ReadDir(filepath.Join(in.dataDir, "backups")); len(entries) != 0 {
		t.Errorf("after the read token's backup create, <data-dir>/backups holds %d entries; want none", len(entries))
	}
	out, err = run(full, "backup", "create", "--json")
	var b store.BackupInfo
	if err != nil || json.Unmarshal([]byte(out), &b) != nil || b.Status != store.BackupCreated {
		t.Fatalf("otpscope backup create with the API token: %v\n%s\n%s", err, out, in.logs)
	}
	out, err = run(read, "backup", "delete", "--name", b.Name)
	refused("otpscope backup delete", out, err)
	if _, err := os.Stat(filepath.Join(in.dataDir, "backups", b.Name)); err != nil {
		t.Errorf("after the read token's backup delete: %v; want the backup kept", err)
	}
	if out, err = run(read, "backup", "list"); err != nil || !strings.Contains(out, b.Name) || !strings.Contains(out, store.BackupCreated) {
		t.Errorf("otpscope backup list with the read token: %v\n%s\nwant %s created", err, out, b.Name)
	}
	if out, err = run(read, "deadletters", "list"); err != nil {
		t.Errorf("otpscope deadletters list with the read token: %v\n%s", err, out)
	}
	out, err = run(read, "deadletters", "replay", "--all")
	refused("otpscope deadletters replay --all", out, err)
	if out, err = run(full, "deadletters", "replay", "--all"); err != nil {
		t.Errorf("otpscope deadletters replay --all with the API token: %v\n%s", err, out)
	}
	if out, err = run(full, "backup", "delete", "--name", b.Name); err != nil || !strings.Contains(out, store.BackupRemoved) {
		t.Errorf("otpscope backup delete with the API token: %v\n%s", err, out)
	}
	in.stop(t)
}
