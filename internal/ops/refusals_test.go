package ops

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestRefusals: one line at the first refusal, none within the interval,
// then one counting every refusal since the line before.
func TestRefusals(t *testing.T) {
	var logs bytes.Buffer
	r := NewRefusals(slog.New(slog.NewTextHandler(&logs, nil)), "request refused for its webhook token")
	r.every = time.Hour
	r.Note("/webhooks/tyntec", "203.0.113.7:5100", "", false)
	r.Note("/webhooks/tyntec", "203.0.113.8:5100", "", true)
	r.Note("/webhooks/tyntec", "203.0.113.9:5100", "", true)
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], `msg="request refused for its webhook token" refused=1 path=/webhooks/tyntec token=missing remote=203.0.113.7:5100`) {
		t.Fatalf("after three refusals within the interval, logs:\n%s\nwant one line, of the first", logs.String())
	}
	r.next.Store(0) // the interval has passed
	r.Note("/otps/track", "10.0.0.2:443", "198.51.100.4", true)
	lines = strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], "refused=3 path=/otps/track token=wrong remote=10.0.0.2:443 forwarded_for=198.51.100.4") {
		t.Fatalf("after the interval, logs:\n%s\nwant a second line counting the three since the first", logs.String())
	}
}
