package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
)

// Backups and restores (README, "Backups and restores"). A backup is
// ClickHouse's own BACKUP DATABASE to File('<name>'), which a server writes
// under its backups.allowed_path: the embedded engine's is
// <data-dir>/backups (Config.BackupDir). The backup holds the row that
// describes it, written first, with the stream position up to which every
// event was inserted; `otpscope restore` puts a backup back and records a
// restore, and the sink then inserts the stream again from that position
// (RestoresToReplay), so what arrived after the backup comes back too, as
// far as the stream still holds it (--stream-max-age).

// Backup statuses.
const (
	BackupStarted = "started"
	BackupCreated = "created"
	BackupFailed  = "failed"
	BackupRemoved = "removed" // by PruneBackups or DeleteBackup
)

// BackupInfo is one backup of the database.
type BackupInfo struct {
	Name      string    `json:"name"`
	StartedAt time.Time `json:"started_at"`
	// StreamSeq: every event of the stream up to it was inserted before the
	// backup began; 0 when the process did not know.
	StreamSeq uint64 `json:"stream_seq"`
	Status    string `json:"status"`
	Bytes     uint64 `json:"bytes"`
	Files     uint64 `json:"files"`
	Error     string `json:"error,omitempty"`
	// UpdatedAt is when the status was last recorded: the end of a backup
	// taken or failed.
	UpdatedAt time.Time `json:"updated_at"`
}

// ErrBackupOnCluster: a cluster's backup is ClickHouse's BACKUP … ON
// CLUSTER or its operators' tools, not one server's.
var ErrBackupOnCluster = errors.New("backups of a ClickHouse cluster are ClickHouse's own (BACKUP DATABASE … ON CLUSTER, or clickhouse-backup): otpscope backs up the embedded engine or one server")

// ErrBackupExists is returned for a name a backup has already.
var ErrBackupExists = errors.New("a backup of that name exists")

// ErrNoBackup is returned by Restore and DeleteBackup for a backup the backup directory
// does not hold.
var ErrNoBackup = errors.New("no such backup")

// ErrBadBackup is returned by Restore for a backup that cannot be restored
// whole: cut short, damaged, or not otpscope's.
var ErrBadBackup = errors.New("the backup cannot be restored")

// ErrBackupOnServer is returned by DeleteBackup with a ClickHouse server:
// its backups are files under its own backups.allowed_path.
var ErrBackupOnServer = errors.New("a ClickHouse server's backups are removed on the server (under its backups.allowed_path): otpscope removes the embedded engine's")

// ErrBadBackupName is returned for a name that is not a backup's.
var ErrBadBackupName = errors.New("a backup name has only letters, digits, '.', '-' and '_'")

var backupName = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]*$`)

// ErrPositionPending: the sink cannot say yet up to where it has inserted
// the stream — a replay of it is starting — and a backup taken now could
// record no position (and a restore of it would replay too little).
var ErrPositionPending = errors.New("the sink's position in the stream is not known yet: a replay of the stream is starting")

// BackupName is the name of a backup begun at t: otpscope-<UTC time to the
// millisecond>, which sorts as the backups were taken.
func BackupName(t time.Time) string {
	return backupPrefix + t.UTC().Format(backupStamp)
}

// ScheduledBackupName is the name of a backup a schedule began at t:
// otpscope-scheduled-<UTC time>. The schedule's pruning removes only
// those: a backup taken by hand is its taker's to remove.
func ScheduledBackupName(t time.Time) string {
	return scheduledPrefix + t.UTC().Format(backupStamp)
}

// backupStamp is the UTC time in a backup's name (BackupName).
const backupStamp = "20060102T150405.000Z"

// backupPrefix starts the name of every backup otpscope takes;
// scheduledPrefix a scheduled one's.
const (
	backupPrefix    = "otpscope-"
	scheduledPrefix = backupPrefix + "scheduled-"
)

// partialPrefix names a backup's directory while it is written: renamed
// to the backup's name once whole, so that one cut short (the process
// killed) is never taken for a backup, and is removed by the next.
const partialPrefix = ".partial-"

// Backup backs the database up as name (BackupName), recording streamSeq
// in the backup itself. It returns when the backup is taken or failed; a
// failed backup is recorded too.
func (db *DB) Backup(ctx context.Context, name string, streamSeq uint64, now time.Time) (BackupInfo, error) {
	if db.cluster != "" {
		return BackupInfo{}, ErrBackupOnCluster
	}
	if !backupName.MatchString(name) {
		return BackupInfo{}, fmt.Errorf("%w: %q", ErrBadBackupName, name)
	}
	// A name taken already is refused before ClickHouse refuses it: its
	// record would replace the backup's, and the embedded engine's
	// connection is left unusable for a moment by a BACKUP that fails.
	var taken uint64
	if err := db.conn.QueryRow(ctx, "SELECT count() FROM backups WHERE name = ?", name).Scan(&taken); err != nil {
		return BackupInfo{}, fmt.Errorf("backup %s: %w", name, err)
	}
	if taken > 0 {
		return BackupInfo{}, fmt.Errorf("%w: %s", ErrBackupExists, name)
	}
	if err := db.removeCutShort(ctx); err != nil {
		return BackupInfo{}, fmt.Errorf("backup %s: %w", name, err)
	}
	b := BackupInfo{Name: name, StartedAt: now.UTC(), StreamSeq: streamSeq, Status: BackupStarted, UpdatedAt: time.Now().UTC().Truncate(time.Millisecond)}
	if err := db.recordBackup(ctx, b); err != nil {
		return b, err
	}
	// Written under a name of its own until whole (the embedded engine's;
	// a server's directory is not ours to rename).
	written := name
	if db.backupDir != "" {
		written = partialPrefix + name
	}
	// Its answer (id, status) is not read: clickhouse-go cannot decode the
	// status's Enum over HTTP. The id is ours, to find it in system.backups.
	id := uuid.NewString()
	err := db.conn.Exec(ctx, fmt.Sprintf("BACKUP DATABASE `%s` TO File('%s') SETTINGS id = '%s'", db.database(ctx), written, id))
	if err == nil {
		err = db.conn.QueryRow(ctx, "SELECT total_size, num_files FROM system.backups WHERE id = ?", id).Scan(&b.Bytes, &b.Files)
	}
	if err == nil && written != name {
		err = os.Rename(filepath.Join(db.backupDir, written), filepath.Join(db.backupDir, name))
	}
	b.Status = BackupCreated
	if err != nil {
		b.Status, b.Error = BackupFailed, err.Error()
		if db.backupDir != "" {
			// What a failed BACKUP wrote is no backup.
			_ = os.RemoveAll(filepath.Join(db.backupDir, written))
		}
	}
	b.UpdatedAt = time.Now().UTC().Truncate(time.Millisecond)
	// Recorded whatever came of it, on a context the caller's end does not
	// cut short: a failed backup listed as started for ever would mislead.
	if rerr := db.recordBackup(context.WithoutCancel(ctx), b); rerr != nil && err == nil {
		err = rerr
	}
	if err != nil {
		return b, fmt.Errorf("backup %s: %w", name, err)
	}
	return b, nil
}

func (db *DB) recordBackup(ctx context.Context, b BackupInfo) error {
	// Times as literals: a bound time.Time loses its milliseconds.
	err := db.conn.Exec(ctx, fmt.Sprintf("INSERT INTO backups (name, started_at, stream_seq, status, bytes, files, error, updated_at) VALUES (?, %s, ?, ?, ?, ?, ?, %s)", msTime(b.StartedAt), msTime(b.UpdatedAt)),
		b.Name, b.StreamSeq, b.Status, b.Bytes, b.Files, b.Error)
	if err != nil {
		return fmt.Errorf("record backup %s: %w", b.Name, err)
	}
	return nil
}

// database is the database the store's tables are in.
func (db *DB) database(ctx context.Context) string {
	var name string
	if err := db.conn.QueryRow(ctx, "SELECT currentDatabase()").Scan(&name); err != nil || name == "" {
		return "default"
	}
	return name
}

// Backups lists the backups taken of this database, newest first, as far
// as the database knows them: a restored database knows those up to the
// one restored.
func (db *DB) Backups(ctx context.Context) ([]BackupInfo, error) {
	out := []BackupInfo{}
	err := db.eachRow(ctx, "backups", `SELECT name, started_at, stream_seq, toString(status), bytes, files, error, updated_at
FROM backups FINAL ORDER BY started_at DESC, name DESC LIMIT 1000`, nil, func(rows driver.Rows) error {
		var b BackupInfo
		if err := rows.Scan(&b.Name, &b.StartedAt, &b.StreamSeq, &b.Status, &b.Bytes, &b.Files, &b.Error, &b.UpdatedAt); err != nil {
			return err
		}
		b.StartedAt, b.UpdatedAt = b.StartedAt.UTC(), b.UpdatedAt.UTC()
		out = append(out, b)
		return nil
	})
	return out, err
}

// Restore replaces every table of the database with backup name's, and
// records the restore for the sink to insert the stream again from the
// backup's position. Nothing else may use the database meanwhile: otpscope
// restore runs with otpscope stopped.
//
// The backup is restored whole into a scratch database and every table of
// it checked before anything is touched (tryBackup), and the tables it
// replaces are moved aside, not dropped, until it is restored. Should that
// fail, the tables are moved back — where the engine allows: the embedded
// engine's default database takes none back, and they stay in
// <database>_replaced.
func (db *DB) Restore(ctx context.Context, name string, now time.Time) (BackupInfo, error) {
	if db.cluster != "" {
		return BackupInfo{}, ErrBackupOnCluster
	}
	if err := findBackup(db.backupDir, name); err != nil {
		return BackupInfo{}, fmt.Errorf("the database is untouched: %w", err)
	}
	if err := db.roomFor(ctx, name); err != nil {
		return BackupInfo{}, fmt.Errorf("restore %s: the database is untouched: %w", name, err)
	}
	database := db.database(ctx)
	b, err := db.tryBackup(ctx, database, name)
	if err != nil {
		return b, fmt.Errorf("restore %s: the database is untouched: %w", name, err)
	}
	aside := database + "_replaced"
	if err := db.conn.Exec(ctx, fmt.Sprintf("CREATE DATABASE `%s`", aside)); err != nil {
		return b, fmt.Errorf("restore %s: the database %s, where the tables replaced are kept meanwhile, is left from a restore cut short (with the tables of %s before it?): restore into an empty engine directory instead, or drop it (README, Backups and restores): %w", name, aside, database, err)
	}
	moved, err := db.moveTables(ctx, database, aside)
	if err != nil {
		return b, fmt.Errorf("restore %s: %w", name, db.moveBack(ctx, database, aside, moved, false, err))
	}
	id := uuid.NewString()
	// The files were checked in the scratch copy: read once, not twice.
	if err := db.conn.Exec(ctx, fmt.Sprintf("RESTORE DATABASE `%s` FROM File('%s') SETTINGS id = '%s'", database, name, id)); err != nil {
		return b, fmt.Errorf("restore %s: %w", name, db.moveBack(ctx, database, aside, moved, true, err))
	}
	if err := db.conn.Exec(ctx, fmt.Sprintf("DROP DATABASE `%s` SYNC", aside)); err != nil {
		db.logger.Warn("restored; the tables it replaced are left in a database of their own", "database", aside, "err", err)
	}
	// Its row says "started": the backup holds the database as it was
	// while being taken. Recorded again as what it turned out to be, with
	// its size as the restore read it, so the list shows it created.
	b.Status, b.UpdatedAt = BackupCreated, time.Now().UTC().Truncate(time.Millisecond)
	_ = db.conn.QueryRow(ctx, "SELECT total_size, num_files FROM system.backups WHERE id = ?", id).Scan(&b.Bytes, &b.Files)
	if err := db.recordBackup(ctx, b); err != nil {
		return b, fmt.Errorf("restore %s: %w", name, err)
	}
	if err := db.forgetGoneBackups(ctx, b.Name); err != nil {
		db.logger.Warn("restored; the backups removed since are still listed as created", "err", err)
	}
	if err := db.conn.Exec(ctx, fmt.Sprintf("INSERT INTO restores (name, restored_at, started_at, stream_seq, replayed) VALUES (?, %s, %s, ?, 0)", msTime(now), msTime(b.StartedAt)),
		b.Name, b.StreamSeq); err != nil {
		return b, fmt.Errorf("restore %s: record it: %w", name, err)
	}
	return b, nil
}

// tryBackup restores backup name whole into a scratch database and has
// ClickHouse read every part of it (the engine's RESTORE copies a
// truncated file without a word), before the database is touched: on the
// embedded engine, tables moved aside cannot come back (its database is of
// another engine than the one they were moved to), so the restore that
// follows must not fail for the backup. It returns the row the backup
// holds of itself, written before it was taken: the one still "started"
// in it (the backups before it ended, or were cut short before it began).
// Its name may not be the directory's: a backup copied back under another
// name is the same one.
func (db *DB) tryBackup(ctx context.Context, database, name string) (BackupInfo, error) {
	scratch := database + "_restoring"
	drop := func() error {
		return db.conn.Exec(context.WithoutCancel(ctx), fmt.Sprintf("DROP DATABASE IF EXISTS `%s` SYNC", scratch))
	}
	if err := drop(); err != nil { // a scratch copy left by a restore cut short
		return BackupInfo{}, err
	}
	defer func() { _ = drop() }()
	if err := db.conn.Exec(ctx, fmt.Sprintf("RESTORE DATABASE `%s` AS `%s` FROM File('%s') SETTINGS allow_different_database_def = true", database, scratch, name)); err != nil {
		return BackupInfo{}, fmt.Errorf("%w: it cannot be read: %w", ErrBadBackup, err)
	}
	var b BackupInfo
	err := db.conn.QueryRow(ctx, fmt.Sprintf("SELECT name, started_at, stream_seq FROM `%s`.backups FINAL WHERE status = ? ORDER BY started_at DESC LIMIT 1", scratch), BackupStarted).
		Scan(&b.Name, &b.StartedAt, &b.StreamSeq)
	if err != nil {
		return b, fmt.Errorf("%w: it does not describe itself (not otpscope's?): %w", ErrBadBackup, err)
	}
	b.StartedAt = b.StartedAt.UTC()
	return b, db.checkTables(ctx, scratch)
}

// moveTables moves every table of database into the database to, and
// returns those it moved.
func (db *DB) moveTables(ctx context.Context, database, to string) ([]string, error) {
	tables, err := db.tables(ctx, database)
	if err != nil {
		return nil, err
	}
	var moved []string
	for _, t := range tables {
		if err := db.conn.Exec(ctx, fmt.Sprintf("RENAME TABLE `%s`.`%s` TO `%s`.`%s`", database, t, to, t)); err != nil {
			return moved, fmt.Errorf("move %s aside: %w", t, err)
		}
		moved = append(moved, t)
	}
	return moved, nil
}

// moveBack undoes a restore that failed with cause: it drops what the
// restore wrote to database, when it ran (restoreRan), and moves
// the tables moved aside back.
func (db *DB) moveBack(ctx context.Context, database, aside string, moved []string, restoreRan bool, cause error) error {
	ctx = context.WithoutCancel(ctx)
	var err error
	if restoreRan {
		var written []string
		written, err = db.tables(ctx, database)
		for _, t := range written {
			if err == nil {
				err = db.conn.Exec(ctx, fmt.Sprintf("DROP TABLE IF EXISTS `%s`.`%s` SYNC", database, t))
			}
		}
	}
	for _, t := range moved {
		if err == nil {
			err = db.conn.Exec(ctx, fmt.Sprintf("RENAME TABLE `%s`.`%s` TO `%s`.`%s`", aside, t, database, t))
		}
	}
	if err == nil {
		err = db.conn.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS `%s` SYNC", aside))
	}
	if err != nil {
		return fmt.Errorf("%w; and the tables it replaced were not all moved back: they are in the database %s (%v)", cause, aside, err)
	}
	return fmt.Errorf("%w (the database is as it was)", cause)
}

// checkTables has the engine read every part of database's tables, as
// a RESTORE does not: a backup's damaged file shows here, not later.
func (db *DB) checkTables(ctx context.Context, database string) error {
	tables, err := db.tablesWhere(ctx, database, "engine LIKE '%MergeTree'")
	if err != nil {
		return err
	}
	for _, t := range tables {
		var ok uint8
		if err := db.conn.QueryRow(ctx, fmt.Sprintf("CHECK TABLE `%s`.`%s` SETTINGS check_query_single_value_result = 1", database, t)).Scan(&ok); err != nil {
			return fmt.Errorf("%w: check its table %s: %w", ErrBadBackup, t, err)
		}
		if ok != 1 {
			return fmt.Errorf("%w: its table %s is damaged (CHECK TABLE failed)", ErrBadBackup, t)
		}
	}
	return nil
}

// tables lists database's tables.
func (db *DB) tables(ctx context.Context, database string) ([]string, error) {
	return db.tablesWhere(ctx, database, "NOT is_temporary")
}

// tablesWhere lists database's tables that meet cond (on system.tables).
func (db *DB) tablesWhere(ctx context.Context, database, cond string) ([]string, error) {
	var tables []string
	err := db.eachRow(ctx, "tables", "SELECT name FROM system.tables WHERE database = ? AND "+cond, []any{database}, func(rows driver.Rows) error {
		var t string
		if err := rows.Scan(&t); err != nil {
			return err
		}
		tables = append(tables, t)
		return nil
	})
	return tables, err
}

// FindBackup checks, before anything is opened, that cfg's engine has a
// backup called name (a server's backups are its own to find): a
// mistyped name or --data-dir must not create and migrate a database
// only to say there is no such backup.
func FindBackup(cfg Config, name string) error {
	if !cfg.Embedded() {
		return findBackup("", name)
	}
	return findBackup(cfg.backupDir(), name)
}

// findBackup checks name, and that dir holds it, whole, unless dir is "".
func findBackup(dir, name string) error {
	if strings.HasPrefix(name, partialPrefix) {
		return fmt.Errorf("%w: %s is what a backup cut short while being taken left, not a backup", ErrBadBackup, name)
	}
	if !backupName.MatchString(name) {
		return fmt.Errorf("%w: %q", ErrBadBackupName, name)
	}
	if dir == "" {
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("%w: %s in %s (%v)", ErrNoBackup, name, dir, err)
	}
	// The engine writes the file listing a backup's files last: without
	// it the backup was cut short.
	if _, err := os.Stat(filepath.Join(dir, name, backupMetadata)); err != nil {
		return fmt.Errorf("%w: %s is incomplete, cut short while being taken (%v)", ErrBadBackup, name, err)
	}
	return nil
}

// ErrNoRoom is returned by Restore when the engine's disk cannot hold the
// backup's tables beside the ones they replace.
var ErrNoRoom = errors.New("not enough free disk for the restore")

// roomFor refuses, before anything is written, a restore the engine's disk
// cannot hold: the backup is restored twice (a scratch copy to check,
// dropped, then in place), each time while the tables it replaces are
// still there, so the disk needs the backup's size free, and a tenth more
// for the engine's own files. A disk that fills midway would leave broken
// parts and a half-done restore to clean up. Only where the backup's files
// are this process's to measure (the embedded engine's).
func (db *DB) roomFor(ctx context.Context, name string) error {
	if db.backupDir == "" {
		return nil
	}
	var size uint64
	err := filepath.WalkDir(filepath.Join(db.backupDir, name), func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			size += uint64(info.Size())
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("the backup's size: %w", err)
	}
	var free uint64
	if err := db.conn.QueryRow(ctx, "SELECT free_space FROM system.disks WHERE name = 'default'").Scan(&free); err != nil {
		db.logger.Warn("the engine's free disk is unknown: restoring without checking it", "err", err)
		return nil
	}
	if need := size + size/10; free < need {
		return fmt.Errorf("%w: the backup's tables take %s, and the engine's disk has %s free of the %s the restore needs beside the tables it replaces: free some, or restore into an engine directory on a larger disk (README, Backups and restores)",
			ErrNoRoom, bytesIn(size), bytesIn(free), bytesIn(need))
	}
	return nil
}

// bytesIn is n bytes in MiB, or GiB from 1 GiB, for a message.
func bytesIn(n uint64) string {
	if n >= 1<<30 {
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// backupMetadata is the file a backup's directory holds once it is whole.
const backupMetadata = ".backup"

// RestoreToReplay is a restore whose stream the sink has not inserted
// again yet: from StreamSeq+1, or from StartedAt less a margin when the
// backup did not know its position.
type RestoreToReplay struct {
	Name       string
	RestoredAt time.Time
	StartedAt  time.Time
	StreamSeq  uint64
}

// RestoresToReplay lists the restores not replayed yet, oldest first.
func (db *DB) RestoresToReplay(ctx context.Context) ([]RestoreToReplay, error) {
	var out []RestoreToReplay
	err := db.eachRow(ctx, "restores", "SELECT name, restored_at, started_at, stream_seq FROM restores FINAL WHERE replayed = 0 ORDER BY restored_at", nil, func(rows driver.Rows) error {
		var r RestoreToReplay
		if err := rows.Scan(&r.Name, &r.RestoredAt, &r.StartedAt, &r.StreamSeq); err != nil {
			return err
		}
		out = append(out, r)
		return nil
	})
	return out, err
}

// RestoresReplayed records that the stream is being inserted again for rs.
func (db *DB) RestoresReplayed(ctx context.Context, rs []RestoreToReplay) error {
	for _, r := range rs {
		if err := db.conn.Exec(ctx, fmt.Sprintf("INSERT INTO restores (name, restored_at, started_at, stream_seq, replayed) VALUES (?, %s, %s, ?, 1)", msTime(r.RestoredAt), msTime(r.StartedAt)),
			r.Name, r.StreamSeq); err != nil {
			return fmt.Errorf("record restore %s replayed: %w", r.Name, err)
		}
	}
	return nil
}

// removeCutShort removes from the embedded engine's backup directory what
// backups cut short left (their directories still partial), and records
// the backups still "started" as failed: one backup is taken at a time,
// by the process that owns the engine, so none is under way.
func (db *DB) removeCutShort(ctx context.Context) error {
	if db.backupDir == "" {
		return nil
	}
	entries, err := os.ReadDir(db.backupDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), partialPrefix) {
			if err := os.RemoveAll(filepath.Join(db.backupDir, e.Name())); err != nil {
				return err
			}
			db.logger.Warn("removed what a backup cut short left", "dir", filepath.Join(db.backupDir, e.Name()))
		}
	}
	var cut []BackupInfo
	if err := db.eachRow(ctx, "backups", "SELECT name, started_at, stream_seq FROM backups FINAL WHERE status = ?", []any{BackupStarted}, func(rows driver.Rows) error {
		var b BackupInfo
		if err := rows.Scan(&b.Name, &b.StartedAt, &b.StreamSeq); err != nil {
			return err
		}
		cut = append(cut, b)
		return nil
	}); err != nil {
		return err
	}
	for _, b := range cut {
		b.Status, b.Error, b.UpdatedAt = BackupFailed, "cut short (the process stopped while it was taken)", time.Now().UTC().Truncate(time.Millisecond)
		if err := db.recordBackup(ctx, b); err != nil {
			return err
		}
		db.logger.Warn("a backup was cut short; recorded as failed", "name", b.Name)
	}
	return nil
}

// PruneBackups removes from the embedded engine's backup directory all but
// the newest keep whole backups a schedule took (otpscope-scheduled-<time>:
// their names sort as they were taken; one taken by hand, or cut short, is
// never counted) and records each as removed; it returns their names. A
// server's backups are on the server: nothing is removed there.
func (db *DB) PruneBackups(ctx context.Context, keep int) ([]string, error) {
	if db.backupDir == "" || keep <= 0 {
		return nil, nil
	}
	entries, err := os.ReadDir(db.backupDir)
	if err != nil {
		return nil, fmt.Errorf("prune backups: %w", err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), scheduledPrefix) && backupName.MatchString(e.Name()) && findBackup(db.backupDir, e.Name()) == nil {
			names = append(names, e.Name()) // ReadDir sorts by name
		}
	}
	if len(names) <= keep {
		return nil, nil
	}
	old := names[:len(names)-keep]
	var removed []string
	for _, name := range old {
		if _, err := db.removeBackup(ctx, name); err != nil {
			return removed, fmt.Errorf("prune backup %s: %w", name, err)
		}
		removed = append(removed, name)
	}
	return removed, nil
}

// DeleteBackup removes backup name from the embedded engine's backup
// directory and records it as removed: a backup taken by hand, which no
// --backup-keep prunes without a schedule. ErrNoBackup when the directory
// does not hold it; ErrBackupOnServer with a ClickHouse server.
func (db *DB) DeleteBackup(ctx context.Context, name string) (BackupInfo, error) {
	if db.cluster != "" {
		return BackupInfo{}, ErrBackupOnCluster
	}
	if db.backupDir == "" {
		return BackupInfo{}, ErrBackupOnServer
	}
	if !backupName.MatchString(name) || !strings.HasPrefix(name, backupPrefix) {
		return BackupInfo{}, fmt.Errorf("%w, and otpscope removes only the backups it took (%s…): %q", ErrBadBackupName, backupPrefix, name)
	}
	if _, err := os.Stat(filepath.Join(db.backupDir, name)); errors.Is(err, os.ErrNotExist) {
		return BackupInfo{}, fmt.Errorf("%w: %s in %s", ErrNoBackup, name, db.backupDir)
	} else if err != nil {
		return BackupInfo{}, fmt.Errorf("delete backup %s: %w", name, err)
	}
	return db.removeBackup(ctx, name)
}

// removeBackup deletes backup name's directory and records it removed,
// with when it was taken and from where (its first row).
func (db *DB) removeBackup(ctx context.Context, name string) (BackupInfo, error) {
	b := BackupInfo{Name: name, Status: BackupRemoved}
	if err := os.RemoveAll(filepath.Join(db.backupDir, name)); err != nil {
		return b, err
	}
	b.UpdatedAt = time.Now().UTC().Truncate(time.Millisecond)
	err := db.conn.QueryRow(ctx, "SELECT started_at, stream_seq, bytes, files FROM backups FINAL WHERE name = ?", name).Scan(&b.StartedAt, &b.StreamSeq, &b.Bytes, &b.Files)
	if err != nil || b.StartedAt.IsZero() {
		// Unknown to this database (taken after the backup it was
		// restored from): started when its name says, else now; never
		// Go's zero time, which the table holds as 1754.
		b.StartedAt = backupTime(name, b.UpdatedAt)
	}
	return b, db.recordBackup(ctx, b)
}

// backupTime is when backup name began, as its name says (BackupName,
// ScheduledBackupName), or otherwise.
func backupTime(name string, otherwise time.Time) time.Time {
	stamp := strings.TrimPrefix(strings.TrimPrefix(name, scheduledPrefix), backupPrefix)
	if len(stamp) >= len(backupStamp) {
		if t, err := time.Parse(backupStamp, stamp[:len(backupStamp)]); err == nil {
			return t
		}
	}
	return otherwise
}

// forgetGoneBackups records as removed every backup the restored
// database lists as created whose directory is no longer in the backup
// directory (pruned or deleted after the backup it was restored from was
// taken): otherwise the list offers them, and a restore of one fails. The
// one restored is left as it is (its directory may have been renamed).
func (db *DB) forgetGoneBackups(ctx context.Context, restored string) error {
	list, err := db.Backups(ctx)
	if err != nil {
		return err
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	for _, b := range list {
		if b.Name == restored || b.Status != BackupCreated || !errors.Is(findBackup(db.backupDir, b.Name), ErrNoBackup) {
			continue
		}
		b.Status, b.UpdatedAt = BackupRemoved, now
		if err := db.recordBackup(ctx, b); err != nil {
			return err
		}
	}
	return nil
}

// RecordStream records that the sink inserts from stream name, created
// at created (JetStream's stream info): a backup then holds which stream
// its position is in.
func (db *DB) RecordStream(ctx context.Context, name string, created time.Time) error {
	if err := db.conn.Exec(ctx, fmt.Sprintf("INSERT INTO streams (name, created_at) VALUES (?, %s)", msTime(created)), name); err != nil {
		return fmt.Errorf("record stream %s: %w", name, err)
	}
	return nil
}

// RecordPosition records that consumer has stored every message of stream
// name, created at created, up to seq (its acknowledgement floor).
func (db *DB) RecordPosition(ctx context.Context, consumer, name string, created time.Time, seq uint64) error {
	if err := db.conn.Exec(ctx, fmt.Sprintf("INSERT INTO sink_positions (consumer, stream, created_at, acked_seq) VALUES (?, ?, %s, ?)", msTime(created)), consumer, name, seq); err != nil {
		return fmt.Errorf("record the sink's position in %s: %w", name, err)
	}
	return nil
}

// Position is the furthest position consumer recorded in stream name,
// created at created; 0 when none was.
func (db *DB) Position(ctx context.Context, consumer, name string, created time.Time) (uint64, error) {
	var seq uint64
	err := db.conn.QueryRow(ctx, fmt.Sprintf("SELECT max(acked_seq) FROM sink_positions WHERE consumer = ? AND stream = ? AND created_at = %s", msTime(created)), consumer, name).Scan(&seq)
	if err != nil {
		return 0, fmt.Errorf("the sink's position in %s: %w", name, err)
	}
	return seq, nil
}

// LastStream is the stream the sink last recorded, in a restored database
// the one the backup's position is in; ok is false when none was (a
// database, or a backup, from before streams were recorded).
func (db *DB) LastStream(ctx context.Context) (name string, created time.Time, ok bool, err error) {
	err = db.conn.QueryRow(ctx, "SELECT name, created_at FROM streams ORDER BY seen_at DESC LIMIT 1").Scan(&name, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return "", time.Time{}, false, nil
	}
	if err != nil {
		return "", time.Time{}, false, fmt.Errorf("the stream recorded: %w", err)
	}
	return name, created.UTC(), true, nil
}
