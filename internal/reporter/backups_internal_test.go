package reporter

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
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
