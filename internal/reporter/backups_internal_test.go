package reporter

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/store"
)

// TestBackupsOneAtATime: while a backup is being taken, another request is
// refused at once (409), not queued behind it.
func TestBackupsOneAtATime(t *testing.T) {
	b := NewBackups(nil, nil, slog.New(slog.DiscardHandler), nil)
	b.taking.Lock() // a backup under way
	rec := httptest.NewRecorder()
	b.take(rec, httptest.NewRequest(http.MethodPost, "/api/v1/backups", nil))
	b.taking.Unlock()
	if rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), "one backup at a time") {
		t.Errorf("a second backup at once: %d %s; want 409 saying one at a time", rec.Code, rec.Body)
	}
}

// TestNoBackupRemovedWhileOneIsTaken: the backup being written is a
// directory like the others; removing one waits for it to be done (409).
func TestNoBackupRemovedWhileOneIsTaken(t *testing.T) {
	b := NewBackups(nil, nil, slog.New(slog.DiscardHandler), nil)
	b.taking.Lock() // a backup under way
	defer b.taking.Unlock()
	rec := httptest.NewRecorder()
	b.delete(rec, httptest.NewRequest(http.MethodDelete, "/api/v1/backups/otpscope-20261203T030000.000Z", nil))
	if rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), "A backup is being taken") {
		t.Errorf("removing a backup while one is taken: %d %s; want 409", rec.Code, rec.Body)
	}
}

// TestNoBackupWhileAReplayStarts: while the sink cannot say up to where it
// has inserted the stream (a replay starting), a backup is refused for a
// few seconds (503, Retry-After), not taken with no position, which a
// restore would take for "unknown" and replay too little from.
func TestNoBackupWhileAReplayStarts(t *testing.T) {
	db := &namedBackups{}
	b := NewBackups(db, func(context.Context) (uint64, error) { return 0, store.ErrPositionPending }, slog.New(slog.DiscardHandler), nil)
	rec := httptest.NewRecorder()
	b.take(rec, httptest.NewRequest(http.MethodPost, "/api/v1/backups", nil))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" || len(db.names) != 0 {
		t.Errorf("a backup while a replay starts: %d %s, taken %v; want 503 with Retry-After, none taken", rec.Code, rec.Body, db.names)
	}
}

// TestBackupTakenAnswersJSON: a backup taken is answered 201 with its
// JSON as every API answer is (application/json, not cached); the headers
// were once set after the status, too late, and it went as text/plain.
func TestBackupTakenAnswersJSON(t *testing.T) {
	db := &namedBackups{}
	b := NewBackups(db, func(context.Context) (uint64, error) { return 42, nil }, slog.New(slog.DiscardHandler), nil)
	rec := httptest.NewRecorder()
	b.take(rec, httptest.NewRequest(http.MethodPost, "/api/v1/backups", nil))
	resp := rec.Result()
	var info store.BackupInfo
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil || resp.StatusCode != http.StatusCreated || info.StreamSeq != 42 || len(db.names) != 1 || info.Name != db.names[0] {
		t.Fatalf("a backup taken: %s %+v (%v), taken %v; want 201 with it", resp.Status, info, err, db.names)
	}
	if ct, cc := resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"); ct != "application/json" || cc != "no-store" {
		t.Errorf("a backup taken answered Content-Type %q, Cache-Control %q; want application/json, no-store", ct, cc)
	}
}

// namedBackups records the names of the backups taken.
type namedBackups struct {
	BackupStore
	names []string
}

func (n *namedBackups) Backup(_ context.Context, name string, seq uint64, now time.Time) (store.BackupInfo, error) {
	n.names = append(n.names, name)
	return store.BackupInfo{Name: name, StartedAt: now, StreamSeq: seq, Status: store.BackupCreated}, nil
}

func (n *namedBackups) PruneBackups(context.Context, int) ([]string, error) { return nil, nil }

// TestScheduledBackupsNamedApart: a schedule's backups are named apart
// from those taken by hand, which its --backup-keep never prunes.
func TestScheduledBackupsNamedApart(t *testing.T) {
	db := &namedBackups{}
	b := NewBackups(db, func(context.Context) (uint64, error) { return 7, nil }, slog.New(slog.DiscardHandler), nil)
	at := time.Date(2026, 12, 3, 3, 0, 0, 0, time.UTC)
	if err := b.scheduled(t.Context(), at, 7); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Take(t.Context(), at.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	want := []string{store.ScheduledBackupName(at), store.BackupName(at.Add(time.Hour))}
	if len(db.names) != 2 || db.names[0] != want[0] || db.names[1] != want[1] || want[0] == store.BackupName(at) {
		t.Errorf("backups taken %v; want %v: the schedule's named apart", db.names, want)
	}
}
