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
)

// A handler cut short by the poller's own shutdown is retried without a
// warning: only a real failure is worth an operator's attention.
func TestSettleQuietOnShutdown(t *testing.T) {
	var logs bytes.Buffer
	p := &Poller{logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))}
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
}
