package ops

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/polltest"
)

// logLines are the log's lines so far.
func logLines(logs *polltest.Buffer) []string {
	return strings.Split(strings.TrimSpace(logs.String()), "\n")
}

// TestRefusals: one line at the first refusal of each path and token
// (missing, wrong), none within the interval, and when it has passed one
// counting every refusal of that kind since, with the last one's remote,
// even if none follows. (One count for every kind named the last request's
// path and token for refusals of others, and a burst's count waited for
// the next refusal, which might never come.)
func TestRefusals(t *testing.T) {
	var logs polltest.Buffer
	r := NewRefusals(slog.New(slog.NewTextHandler(&logs, nil)), "request refused for its webhook token")
	r.every = 200 * time.Millisecond
	r.Note("/webhooks/tyntec", "203.0.113.7:5100", "", false)
	r.Note("/webhooks/tyntec", "203.0.113.8:5100", "", true)
	r.Note("/webhooks/tyntec", "203.0.113.9:5100", "198.51.100.4", true)
	r.Note("/webhooks/tyntec", "203.0.113.10:5100", "", true)
	lines := logLines(&logs)
	if len(lines) != 2 || !strings.Contains(lines[0], `msg="request refused for its webhook token" refused=1 path=/webhooks/tyntec token=missing remote=203.0.113.7:5100`) ||
		!strings.Contains(lines[1], "refused=1 path=/webhooks/tyntec token=wrong remote=203.0.113.8:5100") {
		t.Fatalf("after a missing token and three wrong ones within the interval, logs:\n%s\nwant one line for each kind's first", logLines(&logs))
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(logLines(&logs)) < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	lines = logLines(&logs)
	if len(lines) != 3 || !strings.Contains(lines[2], "refused=2 path=/webhooks/tyntec token=wrong remote=203.0.113.10:5100") {
		t.Fatalf("once the interval passed with no refusal after, logs:\n%s\nwant a third line counting the two wrong tokens held back", lines)
	}
	r.Note("/otps/track", "10.0.0.2:443", "198.51.100.4", true)
	lines = logLines(&logs)
	if len(lines) != 4 || !strings.Contains(lines[3], "refused=1 path=/otps/track token=wrong remote=10.0.0.2:443 forwarded_for=198.51.100.4") {
		t.Fatalf("another path's refusal, logs:\n%s\nwant a line of its own at once", lines)
	}
	time.Sleep(3 * r.every) // nothing held back: nothing more
	if got := logLines(&logs); len(got) != 4 {
		t.Errorf("with nothing held back, %d lines; want 4:\n%s", len(got), got)
	}
}
