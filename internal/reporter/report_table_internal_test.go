package reporter

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/store"
)

// The text table of a window without data says so, and shows a figure it
// has none of as "–", not as a blank.
func TestTableWithoutData(t *testing.T) {
	r := &Report{Kind: KindAdHoc, From: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC),
		Completeness: store.Completeness{Final: true}}
	var b bytes.Buffer
	if err := r.table(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if !strings.Contains(out, "No data:") || strings.Contains(out, "Final:") || !strings.Contains(out, "time to deliver p50 – ms, p95 – ms") {
		t.Errorf("the table of an empty window:\n%s\nwant No data, and – for the times", out)
	}
}

// A window held open by attempts the poller found unrecoverable says so,
// and says when nothing else can still settle.
func TestCompletenessNoteNamesTheUnrecoverable(t *testing.T) {
	first := time.Date(2026, 12, 3, 17, 30, 0, 0, time.UTC)
	c := store.Completeness{Pending: 127, AwaitingReconciliation: 72, SettledUntil: &first}
	if note := completenessNote(c); !strings.HasPrefix(note, "Not final: 127 attempts still pending (72 overdue") || strings.Contains(note, "unrecoverable") {
		t.Errorf("note without unrecoverable attempts: %q", note)
	}
	c.Unrecoverable = 108
	if note := completenessNote(c); !strings.HasPrefix(note, "Not final: 127 attempts still pending") || !strings.Contains(note, "108 of them have an outcome the poller found lost for good (unrecoverable)") {
		t.Errorf("note with 108 of 127 pending unrecoverable: %q", note)
	}
	c = store.Completeness{Pending: 5, Unrecoverable: 5, SettledUntil: &first}
	if note := completenessNote(c); !strings.HasPrefix(note, "Not final, though nothing can still settle: the 5 attempts") {
		t.Errorf("a window whose 5 pending attempts are unrecoverable: %q", note)
	}
	if note := completenessNote(store.Completeness{Final: true}); note != "Final: every attempt in the window has settled." {
		t.Errorf("a final window's note: %q", note)
	}
}
