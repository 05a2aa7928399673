package poller

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/otpscope/otpscope/internal/broker"
	"github.com/otpscope/otpscope/internal/ops"
)

// A handler cut short by the poller's own shutdown is retried without a
// warning: only a real failure is worth an operator's attention, and a run
// of them (NATS unable to store: every message fails) one line.
func TestSettleQuietOnShutdown(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	p := &Poller{logger: logger, unhandled: ops.NewSparse(logger, "messages not handled; will be redelivered", "messages")}
	for _, tc := range []struct {
		err  error
		warn bool
	}{
		{fmt.Errorf("store record x: %w", context.Canceled), false},
		{errors.New("store record x: nats: timeout"), true},
	} {
		logs.Reset()
		d := p.settle(DurableTrack, "tyntec.2fa.delivery.SMS.DELIVERED", 0, tc.err)
		if d != broker.Retry(0) {
			t.Errorf("settle(%v) = %+v; want a retry at once", tc.err, d)
		}
		if got := strings.Contains(logs.String(), "level=WARN"); got != tc.warn {
			t.Errorf("settle(%v) logged %q; want a warning %v", tc.err, logs.String(), tc.warn)
		}
	}
	logs.Reset()
	for range 1000 {
		p.settle(DurableResend, "tyntec.2fa.delivery.SMS.UNDELIVERABLE", 0, errors.New("nats: insufficient resources"))
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
		t.Errorf("1,000 messages failing alike logged %d warnings; want 1 (the rest counted for the next):\n%s", n, logs.String())
	}
}
