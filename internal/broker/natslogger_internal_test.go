package broker

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/otpscope/otpscope/internal/ops"
)

// The embedded server's word on a client's failed login is a warning (the
// client's fault), once however often the client retries within
// ops.SparseEvery; nats-server 2.15 ends the line with the user's name,
// which an ERROR a try once slipped through. Its own faults stay errors.
func TestNATSLoggerTellsClientsFaultsSparsely(t *testing.T) {
	var logs bytes.Buffer
	l := slog.New(slog.NewTextHandler(&logs, nil))
	n := &natsLogger{l: l, clients: ops.NewSparse(l, "a client refused by the embedded NATS server", "refused")}
	for range 5 {
		n.Errorf("%s - cid:%d - authentication error - User %q", "127.0.0.1:55380", 49, "otpscope")
	}
	n.Errorf("Critical write error: %v", "no space left on device")
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `level=WARN msg="a client refused by the embedded NATS server" refused=1`) ||
		!strings.Contains(lines[0], "authentication error") || !strings.HasPrefix(lines[1], "time=") || !strings.Contains(lines[1], "level=ERROR msg=\"Critical write error") {
		t.Errorf("logged:\n%s\nwant one WARN for five failed logins, then the server's own ERROR", logs.String())
	}
}
