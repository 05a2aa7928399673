package store_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/otpscope/otpscope/internal/store"
)

// TestBackupAndRestore: a backup holds the database as it was, and the row
// that describes it; a restore puts it back in place of what came after,
// and records itself for the sink to insert the stream again from the
// backup's position, once.
func TestBackupAndRestore(t *testing.T) {
	db := openSingle(t)
	ctx := t.Context()
	insert := func(from, to int) { t.Helper(); insertDelivered(t, db, from, to) }
	insert(0, 40)
	at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	name := store.BackupName(at) + "-" + uuid.NewString()[:8] // the engine's backups outlive a test (-count)
	b, err := db.Backup(ctx, name, 40, at)
	if err != nil {
		t.Fatal(err)
	}
	if b.Status != store.BackupCreated || b.Bytes == 0 || b.Files == 0 || b.StreamSeq != 40 || !b.StartedAt.Equal(at) {
		t.Errorf("backup %+v; want created, with its size, at stream sequence 40", b)
	}
	if _, err := db.Backup(ctx, name, 41, at); !errors.Is(err, store.ErrBackupExists) {
		t.Errorf("a second backup of the same name: %v; want ErrBackupExists", err)
	}
	if _, err := db.Backup(ctx, "../elsewhere", 0, at); !errors.Is(err, store.ErrBadBackupName) {
		t.Errorf("backup named ../elsewhere: %v; want ErrBadBackupName", err)
	}
	list, err := db.Backups(ctx)
	if err != nil || len(list) != 1 || list[0] != b {
		t.Errorf("backups listed %+v, %v; want the one taken, %+v", list, err, b)
	}

	insert(40, 60) // after the backup
	if n := count(t, db, "SELECT uniqExact(event_id) FROM delivery_events"); n != 60 {
		t.Fatalf("%d events before the restore; want 60", n)
	}
	r, err := db.Restore(ctx, name, at.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if r.StreamSeq != 40 || !r.StartedAt.Equal(at) {
		t.Errorf("restored %+v; want the backup's own description", r)
	}
	// The restored database lists the backup as created, with its size,
	// although the backup holds its row as it was while being taken.
	if list, err := db.Backups(ctx); err != nil || len(list) != 1 || list[0].Status != store.BackupCreated || list[0].Bytes != b.Bytes || list[0].Files != b.Files {
		t.Errorf("backups listed after the restore %+v, %v; want %s created, %d bytes in %d files", list, err, name, b.Bytes, b.Files)
	}
	if n := count(t, db, "SELECT uniqExact(event_id) FROM delivery_events"); n != 40 {
		t.Errorf("%d events after the restore; want the backup's 40", n)
	}
	todo, err := db.RestoresToReplay(ctx)
	if err != nil || len(todo) != 1 || todo[0].Name != name || todo[0].StreamSeq != 40 || !todo[0].StartedAt.Equal(at) {
		t.Fatalf("restores to replay %+v, %v; want the one restore from sequence 40", todo, err)
	}
	if err := db.RestoresReplayed(ctx, todo); err != nil {
		t.Fatal(err)
	}
	if todo, err := db.RestoresToReplay(ctx); err != nil || len(todo) != 0 {
		t.Errorf("restores to replay after replaying: %+v, %v; want none", todo, err)
	}
	// The restored database migrates and takes inserts as before.
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	insert(40, 60)
	if n := count(t, db, "SELECT uniqExact(event_id) FROM delivery_events"); n != 60 {
		t.Errorf("%d events after inserting the later ones again; want 60", n)
	}
	store.SetBackupDir(db, backupDir)
	if _, err := db.Restore(ctx, store.BackupName(at.Add(time.Minute)), at); !errors.Is(err, store.ErrNoBackup) {
		t.Errorf("restoring a backup that does not exist: %v; want ErrNoBackup", err)
	}
	if n := count(t, db, "SELECT uniqExact(event_id) FROM delivery_events"); n != 60 {
		t.Errorf("%d events after a restore refused; want the 60 untouched", n)
	}
}

// TestPruneBackups: all but the newest whole backups a schedule took are
// removed from the backup directory and listed as removed; one taken by
// hand, one cut short (no .backup file) and anything else there is left
// alone, and none of them counts among those kept.
func TestPruneBackups(t *testing.T) {
	db := openSingle(t)
	ctx := t.Context()
	dir := t.TempDir()
	store.SetBackupDir(db, dir)
	at := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	mkdir := func(name string, whole bool) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(dir, name, "data"), 0o750); err != nil {
			t.Fatal(err)
		}
		if whole {
			if err := os.WriteFile(filepath.Join(dir, name, ".backup"), nil, 0o640); err != nil {
				t.Fatal(err)
			}
		}
	}
	byHand := store.BackupName(at.AddDate(0, 0, -1))
	mkdir(byHand, true)
	var names []string
	for i := range 3 {
		names = append(names, store.ScheduledBackupName(at.AddDate(0, 0, i)))
		mkdir(names[i], true)
	}
	cutShort := store.ScheduledBackupName(at.AddDate(0, 0, 3))
	mkdir(cutShort, false)
	mkdir("by-hand", false)
	if removed, err := db.PruneBackups(ctx, 0); err != nil || len(removed) != 0 {
		t.Errorf("keep 0 removed %v, %v; want nothing (keep all)", removed, err)
	}
	removed, err := db.PruneBackups(ctx, 2)
	if err != nil || len(removed) != 1 || removed[0] != names[0] {
		t.Fatalf("keep 2 removed %v, %v; want the oldest scheduled, %s", removed, err, names[0])
	}
	for i, name := range append(names, byHand, cutShort, "by-hand") {
		_, err := os.Stat(filepath.Join(dir, name))
		if gone := i == 0; gone != os.IsNotExist(err) {
			t.Errorf("%s: %v; want it gone %v", name, err, gone)
		}
	}
	list, err := db.Backups(ctx)
	if err != nil || len(list) != 1 || list[0].Name != names[0] || list[0].Status != store.BackupRemoved {
		t.Errorf("backups listed %+v, %v; want %s removed", list, err, names[0])
	}
}

// TestBackupCutShort: a backup is written under a partial name and renamed
// once whole; what one cut short (the process killed) left is removed by
// the next, and its row, still "started", is listed as failed.
func TestBackupCutShort(t *testing.T) {
	db := openSingle(t)
	ctx := t.Context()
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	store.SetBackupDir(db, backupDir)
	insertDelivered(t, db, 0, 10)
	at := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	suffix := "-" + uuid.NewString()[:8]
	cut := store.ScheduledBackupName(at) + suffix
	if err := os.MkdirAll(filepath.Join(backupDir, ".partial-"+cut, "data"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := db.Conn().Exec(ctx, "INSERT INTO backups (name, started_at, stream_seq, status) VALUES (?, toDateTime64('2026-12-02 03:00:00', 3, 'UTC'), 10, 'started')", cut); err != nil {
		t.Fatal(err)
	}
	name := store.ScheduledBackupName(at.Add(time.Hour)) + suffix
	b, err := db.Backup(ctx, name, 10, at.Add(time.Hour))
	if err != nil || b.Status != store.BackupCreated {
		t.Fatalf("backup after one cut short: %+v, %v; want it created", b, err)
	}
	if _, err := os.Stat(filepath.Join(backupDir, name, ".backup")); err != nil {
		t.Errorf("the backup taken: %v; want it whole under its name", err)
	}
	for _, partial := range []string{".partial-" + cut, ".partial-" + name} {
		if _, err := os.Stat(filepath.Join(backupDir, partial)); !os.IsNotExist(err) {
			t.Errorf("%s: %v; want it gone", partial, err)
		}
	}
	list, err := db.Backups(ctx)
	if err != nil || len(list) != 2 || list[1].Name != cut || list[1].Status != store.BackupFailed {
		t.Errorf("backups listed %+v, %v; want %s failed", list, err, cut)
	}
}

// TestDeleteBackup: a backup otpscope took is removed by name and listed
// as removed; a name it never took, another directory, a path, a server's
// backups are refused, each with its own error.
func TestDeleteBackup(t *testing.T) {
	db := openSingle(t)
	ctx := t.Context()
	dir := t.TempDir()
	store.SetBackupDir(db, dir)
	name := store.BackupName(time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC))
	for _, d := range []string{name, "by-hand"} {
		if err := os.MkdirAll(filepath.Join(dir, d, "data"), 0o750); err != nil {
			t.Fatal(err)
		}
	}
	b, err := db.DeleteBackup(ctx, name)
	if err != nil || b.Name != name || b.Status != store.BackupRemoved {
		t.Fatalf("DeleteBackup(%s) = %+v, %v; want it removed", name, b, err)
	}
	if _, err := os.Stat(filepath.Join(dir, name)); !os.IsNotExist(err) {
		t.Errorf("%s after DeleteBackup: %v; want it gone", name, err)
	}
	if list, err := db.Backups(ctx); err != nil || len(list) != 1 || list[0].Name != name || list[0].Status != store.BackupRemoved {
		t.Errorf("backups listed %+v, %v; want %s removed", list, err, name)
	}
	for _, c := range []struct {
		name string
		want error
	}{
		{name, store.ErrNoBackup},
		{"by-hand", store.ErrBadBackupName},
		{"../" + filepath.Base(dir), store.ErrBadBackupName},
	} {
		if _, err := db.DeleteBackup(ctx, c.name); !errors.Is(err, c.want) {
			t.Errorf("DeleteBackup(%q): %v; want %v", c.name, err, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "by-hand")); err != nil {
		t.Errorf("a directory otpscope did not write: %v; want it left alone", err)
	}
	store.SetBackupDir(db, "") // a server's
	if _, err := db.DeleteBackup(ctx, name); !errors.Is(err, store.ErrBackupOnServer) {
		t.Errorf("DeleteBackup on a server: %v; want ErrBackupOnServer", err)
	}
}

// TestNoBackupsOnACluster: a store on a cluster neither takes nor restores
// a backup (the API answers 501): ClickHouse's BACKUP … ON CLUSTER is the
// way there, and nothing is written or dropped meanwhile.
func TestNoBackupsOnACluster(t *testing.T) {
	db := openSingle(t)
	ctx := t.Context()
	insertDelivered(t, db, 0, 10)
	store.SetCluster(db, "otpscope")
	at := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	if _, err := db.Backup(ctx, store.BackupName(at), 10, at); !errors.Is(err, store.ErrBackupOnCluster) {
		t.Errorf("backup on a cluster: %v; want ErrBackupOnCluster", err)
	}
	if _, err := db.Restore(ctx, store.BackupName(at), at); !errors.Is(err, store.ErrBackupOnCluster) {
		t.Errorf("restore on a cluster: %v; want ErrBackupOnCluster", err)
	}
	store.SetCluster(db, "")
	if list, err := db.Backups(ctx); err != nil || len(list) != 0 {
		t.Errorf("backups listed %+v, %v; want none recorded", list, err)
	}
	if n := count(t, db, "SELECT count() FROM delivery_events"); n != 10 {
		t.Errorf("%d events after a refused restore; want the 10 untouched", n)
	}
}

// takeBackup backs db up, with its rows so far, as a new backup in the
// test engine's backup directory, and returns its name.
func takeBackup(t *testing.T, db *store.DB, seq uint64, at time.Time) string {
	t.Helper()
	name := store.BackupName(at) + "-" + uuid.NewString()[:8]
	if _, err := db.Backup(t.Context(), name, seq, at); err != nil {
		t.Fatal(err)
	}
	return name
}

// tablesAndRows is what the database holds: its tables, and the events
// in them (and in the view-fed channel_events, through its views).
func tablesAndRows(t *testing.T, db *store.DB) [3]uint64 {
	t.Helper()
	return [3]uint64{
		count(t, db, "SELECT count() FROM system.tables WHERE database = currentDatabase()"),
		count(t, db, "SELECT uniqExact(event_id) FROM delivery_events"),
		count(t, db, "SELECT count() FROM channel_events"),
	}
}

// TestRestoreRefusesDamagedBackups: a backup cut short (no .backup file),
// with a truncated data file, or not describing itself is refused, and the
// database keeps every table and row it had, its views still feeding.
func TestRestoreRefusesDamagedBackups(t *testing.T) {
	db := openSingle(t)
	ctx := t.Context()
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	insertDelivered(t, db, 0, 40)
	at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	cutShort := takeBackup(t, db, 40, at)
	truncated := takeBackup(t, db, 40, at.Add(time.Second))
	insertDelivered(t, db, 40, 60)
	store.SetBackupDir(db, backupDir)
	if err := os.Remove(filepath.Join(backupDir, cutShort, ".backup")); err != nil {
		t.Fatal(err)
	}
	// The largest data file: delivery_events' projection, read by CHECK
	// TABLE and the queries by time, not by RESTORE.
	var victim string
	var size int64
	_ = filepath.Walk(filepath.Join(backupDir, truncated), func(p string, info os.FileInfo, err error) error {
		if err == nil && filepath.Ext(p) == ".bin" && info.Size() > size {
			victim, size = p, info.Size()
		}
		return nil
	})
	if err := os.Truncate(victim, size/2); err != nil {
		t.Fatal(err)
	}
	before := tablesAndRows(t, db)
	for _, name := range []string{cutShort, truncated} {
		// Refused before a table is moved: the embedded engine's own
		// default database takes none back (this test's is another's).
		if _, err := db.Restore(ctx, name, at.Add(time.Hour)); !errors.Is(err, store.ErrBadBackup) || !strings.Contains(err.Error(), "the database is untouched") {
			t.Errorf("restoring %s: %v; want ErrBadBackup, the database untouched", name, err)
		}
		if after := tablesAndRows(t, db); after != before {
			t.Errorf("after restoring %s failed: tables, events, channel events %v; want %v untouched", name, after, before)
		}
	}
	// What a backup cut short left is named as such, not for its dot.
	if _, err := db.Restore(ctx, ".partial-"+cutShort, at.Add(time.Hour)); !errors.Is(err, store.ErrBadBackup) || !strings.Contains(err.Error(), "cut short") {
		t.Errorf("restoring .partial-%s: %v; want it named a backup cut short", cutShort, err)
	}
	// A restore cut short left the tables it replaced aside: never
	// dropped, nor mixed with those now.
	var database string
	if err := db.Conn().QueryRow(ctx, "SELECT currentDatabase()").Scan(&database); err != nil {
		t.Fatal(err)
	}
	if err := db.Conn().Exec(ctx, "CREATE DATABASE `"+database+"_replaced`"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Conn().Exec(context.Background(), "DROP DATABASE IF EXISTS `"+database+"_replaced`") })
	name := takeBackup(t, db, 60, at.Add(2*time.Second))
	if _, err := db.Restore(ctx, name, at.Add(time.Hour)); err == nil || !strings.Contains(err.Error(), database+"_replaced") {
		t.Errorf("restoring beside the tables a restore cut short set aside: %v; want it refused, naming them", err)
	}
	if after := tablesAndRows(t, db); after != before {
		t.Errorf("after a restore refused: tables, events, channel events %v; want %v untouched", after, before)
	}
	insertDelivered(t, db, 60, 70)
	if n := count(t, db, "SELECT count() FROM channel_events"); n != before[2]+10 {
		t.Errorf("%d channel events after 10 more events; want %d: the views feed them", n, before[2]+10)
	}
	if todo, err := db.RestoresToReplay(ctx); err != nil || len(todo) != 0 {
		t.Errorf("restores to replay %+v, %v; want none recorded", todo, err)
	}
}

// TestRestoreRenamedBackup: a backup copied back under another name is the
// same backup: restored, described by its own row, recorded for the replay.
func TestRestoreRenamedBackup(t *testing.T) {
	db := openSingle(t)
	ctx := t.Context()
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	insertDelivered(t, db, 0, 40)
	at := time.Date(2026, 12, 2, 11, 0, 0, 0, time.UTC)
	name := takeBackup(t, db, 40, at)
	insertDelivered(t, db, 40, 60)
	renamed := "otpscope-pre-upgrade-" + uuid.NewString()[:8]
	if err := os.Rename(filepath.Join(backupDir, name), filepath.Join(backupDir, renamed)); err != nil {
		t.Fatal(err)
	}
	store.SetBackupDir(db, backupDir)
	b, err := db.Restore(ctx, renamed, at.Add(time.Hour))
	if err != nil || b.Name != name || b.StreamSeq != 40 || !b.StartedAt.Equal(at) {
		t.Fatalf("Restore(%s) = %+v, %v; want backup %s, at stream sequence 40", renamed, b, err, name)
	}
	if n := count(t, db, "SELECT uniqExact(event_id) FROM delivery_events"); n != 40 {
		t.Errorf("%d events after the restore; want the backup's 40", n)
	}
	if todo, err := db.RestoresToReplay(ctx); err != nil || len(todo) != 1 || todo[0].StreamSeq != 40 {
		t.Errorf("restores to replay %+v, %v; want the restore, from sequence 40", todo, err)
	}
}

// TestRestoreRefusedWithoutRoom: a backup larger than the engine's disk
// has free (here padded with a sparse file as large as the whole disk,
// which takes no room of its own) is refused before anything is written,
// saying how much it needs and has: a disk filling midway would leave
// broken parts and a half-done restore. The database is untouched. (The
// restores of TestBackupAndRestore pass the same check.)
func TestRestoreRefusedWithoutRoom(t *testing.T) {
	db := openSingle(t)
	ctx := t.Context()
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	insertDelivered(t, db, 0, 20)
	at := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	name := takeBackup(t, db, 20, at)
	store.SetBackupDir(db, backupDir)
	var total uint64
	if err := db.Conn().QueryRow(ctx, "SELECT total_space FROM system.disks WHERE name = 'default'").Scan(&total); err != nil || total == 0 {
		t.Fatalf("the engine's disk: %d bytes, %v", total, err)
	}
	pad := filepath.Join(backupDir, name, "data", "padding.bin")
	if err := os.MkdirAll(filepath.Dir(pad), 0o750); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(pad)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(int64(total)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	t.Cleanup(func() { os.Remove(pad) })
	before := tablesAndRows(t, db)
	_, err = db.Restore(ctx, name, at.Add(time.Hour))
	if !errors.Is(err, store.ErrNoRoom) || !strings.Contains(err.Error(), "the database is untouched") || !regexp.MustCompile(`has [0-9.]+ [MG]iB free`).MatchString(err.Error()) {
		t.Errorf("restoring a backup larger than the free disk: %v; want ErrNoRoom, the database untouched, the figures", err)
	}
	if after := tablesAndRows(t, db); after != before {
		t.Errorf("after the refusal: tables, events, channel events %v; want %v untouched", after, before)
	}
}

// TestRestoreListsWhatTheDirectoryHolds: a restored database lists the
// backups as they were when its backup was taken. One removed since
// (pruned, deleted) is listed removed, not created: the list offered it,
// and a restore of it failed. One taken since and then removed is listed
// with the time its name says, not 1754 (Go's zero time in the table).
func TestRestoreListsWhatTheDirectoryHolds(t *testing.T) {
	db := openSingle(t)
	ctx := t.Context()
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	insertDelivered(t, db, 0, 20)
	at := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	older := takeBackup(t, db, 10, at)
	restored := takeBackup(t, db, 20, at.Add(time.Minute))
	store.SetBackupDir(db, backupDir)
	if _, err := db.DeleteBackup(ctx, older); err != nil {
		t.Fatal(err)
	}
	later := takeBackup(t, db, 20, at.Add(2*time.Minute))
	if _, err := db.Restore(ctx, restored, at.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	status := func() map[string]store.BackupInfo {
		list, err := db.Backups(ctx)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]store.BackupInfo{}
		for _, b := range list {
			m[b.Name] = b
		}
		return m
	}
	got := status()
	if got[older].Status != store.BackupRemoved || got[restored].Status != store.BackupCreated {
		t.Errorf("after the restore: %s %q, %s %q; want the one deleted since removed, the one restored created", older, got[older].Status, restored, got[restored].Status)
	}
	if _, ok := got[later]; ok {
		t.Errorf("after the restore %s is listed; want it unknown (taken after the backup restored)", later)
	}
	if _, err := db.DeleteBackup(ctx, later); err != nil {
		t.Fatal(err)
	}
	if b := status()[later]; b.Status != store.BackupRemoved || !b.StartedAt.Equal(at.Add(2*time.Minute)) {
		t.Errorf("%s deleted after the restore: %+v; want removed, started when its name says", later, b)
	}
}
