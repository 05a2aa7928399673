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
