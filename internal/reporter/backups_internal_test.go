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
