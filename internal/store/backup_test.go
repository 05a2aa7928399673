package store_test

import (
	"errors"
	"os"
	"path/filepath"
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

// TestPruneBackups: all but the newest backups otpscope took are removed
// from the backup directory and listed as removed; anything else there is
// left alone.
func TestPruneBackups(t *testing.T) {
	db := openSingle(t)
	ctx := t.Context()
	dir := t.TempDir()
	store.SetBackupDir(db, dir)
	at := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	var names []string
	for i := range 3 {
		name := store.BackupName(at.AddDate(0, 0, i))
		names = append(names, name)
		if err := os.MkdirAll(filepath.Join(dir, name, "data"), 0o750); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "by-hand"), 0o750); err != nil {
		t.Fatal(err)
	}
	if removed, err := db.PruneBackups(ctx, 0); err != nil || len(removed) != 0 {
		t.Errorf("keep 0 removed %v, %v; want nothing (keep all)", removed, err)
	}
	removed, err := db.PruneBackups(ctx, 2)
	if err != nil || len(removed) != 1 || removed[0] != names[0] {
		t.Fatalf("keep 2 removed %v, %v; want the oldest, %s", removed, err, names[0])
	}
	for i, name := range append(names, "by-hand") {
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
