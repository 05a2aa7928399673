package app

import (
	"context"
	"log/slog"
	"strconv"
	"time"
)

// status is one status line: what each module the process runs knows.
type status struct {
	at time.Time
	// ingest
	accepted    uint64
	lastWebhook time.Time
	// the stream
	streamMsgs uint64
	streamLast time.Time
	streamErr  error
	// the sink
	sinkPending, sinkAckPending uint64
	sinkKnown                   bool
	// the poller
	tracked, due int
	oldest       time.Duration
}

// reportStatus logs one status line every --status-interval until ctx ends,
// and a warning while the poller tracks OTPs but no webhook arrives: the
// signs of a callback no longer pointed here.
func (a *App) reportStatus(ctx context.Context) error {
	t := time.NewTicker(a.cfg.StatusInterval)
	defer t.Stop()
	prev := a.status(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		cur := a.status(ctx)
		attrs, warn := a.statusAttrs(prev, cur)
		a.logger.Info("status", attrs...)
		if warn != "" {
			a.logger.Warn(warn)
		}
		prev = cur
	}
}

// status reads what each module knows now.
func (a *App) status(ctx context.Context) status {
	s := status{at: time.Now()}
	if a.ingest != nil {
		s.accepted, s.lastWebhook = a.ingest.Stats()
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s.streamMsgs, s.streamLast, s.streamErr = a.broker.StreamState(ctx)
	if a.sink != nil {
		s.sinkPending, s.sinkAckPending, s.sinkKnown = a.sink.Lag()
	}
	if a.poller != nil {
		s.tracked, s.due, s.oldest = a.poller.Backlog()
	}
	return s
}

// statusAttrs turns two readings into the status line's attributes and, when
// webhooks stopped arriving while OTPs are tracked, a warning.
func (a *App) statusAttrs(prev, cur status) (attrs []any, warn string) {
	age := func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return cur.at.Sub(t).Round(time.Second).String()
	}
	// Without the ingest module the stream's newest message stands in for
	// the last webhook.
	last := cur.streamLast
	if a.ingest != nil {
		secs := cur.at.Sub(prev.at).Seconds()
		attrs = append(attrs, slog.String("webhooks_per_s", formatRate(float64(cur.accepted-prev.accepted)/secs)))
		attrs = append(attrs, slog.String("last_webhook_age", age(cur.lastWebhook)))
		last = cur.lastWebhook
	}
	if cur.streamErr != nil {
		attrs = append(attrs, slog.String("stream", cur.streamErr.Error()))
	} else {
		attrs = append(attrs, slog.Uint64("stream_msgs", cur.streamMsgs), slog.String("stream_lag", age(cur.streamLast)))
	}
	if a.sink != nil && cur.sinkKnown {
		attrs = append(attrs, slog.Uint64("sink_lag", cur.sinkPending), slog.Uint64("sink_ack_pending", cur.sinkAckPending))
	}
	if a.poller != nil {
		attrs = append(attrs, slog.Int("tracked_otps", cur.tracked), slog.Int("reconcile_backlog", cur.due),
			slog.String("oldest_unreconciled", cur.oldest.Round(time.Second).String()))
		if cur.tracked > 0 && (last.IsZero() || cur.at.Sub(last) > a.cfg.StatusInterval) {
			warn = "no webhook for " + age(last) + " while the poller tracks OTPs: is tyntec's callback pointed here (poller register-callback)?"
		}
	}
	return attrs, warn
}

func formatRate(r float64) string { return strconv.FormatFloat(r, 'f', 2, 64) }
