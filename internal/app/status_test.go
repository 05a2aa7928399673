package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/ingest"
	"github.com/otpscope/otpscope/internal/ops"
	"github.com/otpscope/otpscope/internal/poller"
	"github.com/otpscope/otpscope/internal/sink"
	"github.com/otpscope/otpscope/internal/tyntec"
)

func TestStatusLine(t *testing.T) {
	a := &App{cfg: Config{StatusInterval: time.Minute}, ingest: &ingest.Handler{}, sink: &sink.Consumer{}, poller: &poller.Poller{}}
	t0 := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	prev := status{at: t0, accepted: 100}
	flowing := status{at: t0.Add(time.Minute), accepted: 400, lastWebhook: t0.Add(59 * time.Second), streamMsgs: 900, streamLast: t0.Add(59 * time.Second),
		sinkPending: 3, sinkKnown: true, tracked: 40, due: 2, oldest: 95 * time.Second, counted: true}
	stopped := flowing
	stopped.at, stopped.accepted = t0.Add(10*time.Minute), 100
	never := status{at: t0.Add(time.Minute), tracked: 3}
	behind := flowing
	behind.oldest = 17 * time.Minute
	refusing := flowing
	refusing.tracked, refusing.tyntec = 0, tyntec.Health{FailingSince: t0, LastFailedAt: t0.Add(50 * time.Second), Failed: 5, Outcome: "unauthorized", LastError: "GET /2fa/v4/otp: 401 Unauthorized"}
	stale := refusing
	stale.at = t0.Add(time.Hour) // no call since the streak
	away := refusing
	away.tyntec.Outcome, away.tyntec.LastError = "network_error", "dial tcp 127.0.0.1:9: connection refused"
	unregistered := flowing
	unregistered.registering = &poller.RegistrationFailure{Since: t0, Attempts: 4, Err: "POST /2fa/v4/configurations/callbacks: 400 Bad Request"}
	page := refusing
	page.tyntec.Outcome, page.tyntec.LastError = "bad_answer", "GET /2fa/v4/otp: tyntec: answer does not read: invalid character '<'"
	blip := refusing
	blip.tyntec.Failed = 2
	tokens := status{at: t0.Add(time.Minute), accepted: 100, lastWebhook: t0.Add(-time.Minute), refused: 12, lastRefused: t0.Add(40 * time.Second)}
	scanner := tokens
	scanner.refused = 9
	bygone := tokens
	bygone.at = t0.Add(time.Hour)
	natsAway := never
	natsAway.streamErr = errors.New("nats: connection closed")

	tests := []struct {
		name       string
		prev, cur  status
		want       []string
		wantWarned string
	}{
		{"flowing", prev, flowing, []string{"webhooks_per_s=5.00", "last_webhook_age=1s", "stream_msgs=900", "stream_lag=1s", "sink_lag=3", "tracked_otps=40", "reconcile_backlog=2", "oldest_unreconciled=1m35s"}, ""},
		{"stopped", prev, stopped, []string{"webhooks_per_s=0.00", "last_webhook_age=9m1s"}, "no webhook for 9m1s while the poller tracks OTPs"},
		{"never", prev, never, []string{"last_webhook_age=never"}, "no webhook ever while the poller tracks OTPs"},
		{"NATS away", prev, natsAway, []string{`stream="nats: connection closed"`, "sink_lag=unknown"}, ""},
		{"behind", prev, behind, []string{"oldest_unreconciled=17m0s"}, "the poller falls behind: an OTP has waited 17m0s to be settled (over 15m0s)"},
		{"tyntec refuses the key", prev, refusing, nil, "tyntec refuses the API key: its last 5 calls, for 1m0s, were answered 401 or 403 (GET /2fa/v4/otp: 401 Unauthorized): check --tyntec-api-key"},
		{"tyntec away", prev, away, nil, "tyntec does not answer: its last 5 calls, for 1m0s, failed (dial tcp 127.0.0.1:9: connection refused)"},
		{"the callback registration fails", prev, unregistered, nil, "registering the callback at tyntec (--register-callback-url) fails: 4 attempts for 1m0s (POST /2fa/v4/configurations/callbacks: 400 Bad Request); it is tried again"},
		{"tyntec's answers do not read", prev, page, nil, "tyntec's answers do not read: its last 5 calls, for 1m0s, were answered 2xx with a body that is not tyntec's (GET /2fa/v4/otp: tyntec: answer does not read: invalid character '<'): is --tyntec-url tyntec's API, not a proxy's page?"},
		{"a failed call and its retry", prev, blip, nil, ""},
		{"a streak an hour old, no call since", prev, stale, nil, ""},
		{"tyntec's webhooks refused", prev, tokens, nil, "12 webhooks refused for their token since the last accepted, 2m0s ago, the last 20s ago: does tyntec's callback send a token of --webhook-token"},
		{"a scanner's few", prev, scanner, nil, ""},
		{"refusals an hour ago", prev, bygone, nil, ""},
	}
	for _, tt := range tests {
		attrs, warns := a.statusAttrs(tt.prev, tt.cur)
		warn := strings.Join(warns, "; ")
		var b strings.Builder
		slog.New(slog.NewTextHandler(&b, nil)).Info("status", attrs...)
		line := b.String()
		for _, w := range tt.want {
			if !strings.Contains(line, w) {
				t.Errorf("%s: status line %q lacks %s", tt.name, line, w)
			}
		}
		if (warn == "") != (tt.wantWarned == "") || !strings.HasPrefix(warn, tt.wantWarned) {
			t.Errorf("%s: warning %q; want %q", tt.name, warn, tt.wantWarned)
		}
	}
	// Before the poller's first cycle its zeros are no count: left out.
	uncounted := flowing
	uncounted.tracked, uncounted.due, uncounted.oldest, uncounted.counted = 0, 0, 0, false
	attrs, _ := a.statusAttrs(prev, uncounted)
	if line := fmt.Sprint(attrs); strings.Contains(line, "tracked_otps") || strings.Contains(line, "oldest_unreconciled") {
		t.Errorf("status line before the poller's first cycle %s; want its counts left out", line)
	}
}

// TestSilenceWithoutIngest: a poller beside no ingest takes the newest
// webhook it read for the last one; the stream's newest message holds the
// poller's own reads too, and says nothing of tyntec's callback.
func TestSilenceWithoutIngest(t *testing.T) {
	a := &App{cfg: Config{StatusInterval: time.Minute}, poller: &poller.Poller{}}
	t0 := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	polling := status{at: t0, tracked: 40, streamMsgs: 900, streamLast: t0.Add(-time.Second), pollerWebhook: t0.Add(-3 * time.Minute)}
	if got := a.silence(polling); !strings.HasPrefix(got, "no webhook for 3m0s while the poller tracks OTPs") {
		t.Errorf("webhooks stopped, the poller's reads flowing: %q; want the silence told", got)
	}
	hooked := polling
	hooked.pollerWebhook = t0.Add(-10 * time.Second)
	if got := a.silence(hooked); got != "" {
		t.Errorf("a webhook read 10 s ago: %q; want no warning", got)
	}
}

// TestSilenceAfterARestart: beside ingest, the newest webhook the poller
// replicas read (kept in NATS) says when the last one came before this
// process started, where ingest's own count says "ever".
func TestSilenceAfterARestart(t *testing.T) {
	a := &App{cfg: Config{StatusInterval: time.Minute}, ingest: &ingest.Handler{}, poller: &poller.Poller{}}
	t0 := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	restarted := status{at: t0, tracked: 40, pollerWebhook: t0.Add(-3 * time.Minute)}
	if got := a.silence(restarted); !strings.HasPrefix(got, "no webhook for 3m0s while the poller tracks OTPs") {
		t.Errorf("restarted 3 minutes after the last webhook: %q; want the silence told since then", got)
	}
	restarted.lastWebhook = t0.Add(-5 * time.Second)
	if got := a.silence(restarted); got != "" {
		t.Errorf("a webhook accepted 5 s ago: %q; want no warning", got)
	}
}

// TestTyntecRecovered: a streak the status would warn of that ended since
// the previous reading is told once; a shorter one, or one that ended
// before, is not.
func TestTyntecRecovered(t *testing.T) {
	t0 := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	prev := status{at: t0}
	ended := status{at: t0.Add(time.Minute), tyntec: tyntec.Health{RecoveredAt: t0.Add(30 * time.Second), RecoveredFrom: t0.Add(-4 * time.Minute), Recovered: 7}}
	blip := ended
	blip.tyntec.Recovered = 2
	later := status{at: t0.Add(2 * time.Minute), tyntec: ended.tyntec}

	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("tyntec answers again", tyntecRecovered(prev, ended)...)
	if line := b.String(); !strings.Contains(line, "failed_calls=7") || !strings.Contains(line, "for=4m30s") {
		t.Errorf("the recovery's line %q; want failed_calls=7 for=4m30s", line)
	}
	if got := tyntecRecovered(prev, blip); got != nil {
		t.Errorf("a call and its retry recovered: %v; want nothing told", got)
	}
	if got := tyntecRecovered(ended, later); got != nil {
		t.Errorf("the next reading: %v; want the recovery told once", got)
	}
}

// notReady tells each failing readiness check once, side by side: NATS
// away fails the nats check and the poller's in the same words.
func TestNotReadyTellsEachCauseOnce(t *testing.T) {
	away := errors.New("nats connection RECONNECTING")
	slow := func(err error) func(context.Context) error {
		return func(context.Context) error { time.Sleep(500 * time.Millisecond); return err }
	}
	a := &App{checks: []ops.Check{{Name: "serving", Ready: slow(nil)}, {Name: "nats", Ready: slow(away)},
		{Name: "clickhouse", Ready: slow(errors.New("inserts failing for 55s"))}, {Name: "poller", Ready: slow(away)}}}
	start := time.Now()
	got := a.notReady(t.Context())
	if want := []string{"not ready, nats: nats connection RECONNECTING", "not ready, clickhouse: inserts failing for 55s"}; !slices.Equal(got, want) {
		t.Errorf("notReady = %q; want %q", got, want)
	}
	if took := time.Since(start); took > 1500*time.Millisecond { // one after another: 2 s
		t.Errorf("four checks of 500 ms took %v; want them side by side", took)
	}
}
