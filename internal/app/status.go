package app

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/otpscope/otpscope/internal/broker"
	"github.com/otpscope/otpscope/internal/ops"
	"github.com/otpscope/otpscope/internal/poller"
	"github.com/otpscope/otpscope/internal/reload"
	"github.com/otpscope/otpscope/internal/store"
	"github.com/otpscope/otpscope/internal/tyntec"
)

// status is one status line: what each module the process runs knows.
type status struct {
	at time.Time
	// ingest
	accepted    uint64
	lastWebhook time.Time
	// tyntec's webhooks refused for their token since the last accepted,
	// and when the last was
	refused     uint64
	lastRefused time.Time
	// the stream
	streamMsgs uint64
	streamLast time.Time
	streamErr  error
	// the sink
	sinkPending, sinkAckPending uint64
	sinkKnown                   bool
	// the share of the stream's bound the sink's backlog takes
	sinkShare      float64
	sinkShareKnown bool
	// why the sink waits for another reporter ("" when it runs)
	sinkWaiting string
	// the poller
	tracked, due int
	oldest       time.Duration
	counted      bool // a cycle counted the three since the lease
	tyntec       tyntec.Health
	leading      bool
	registering  *poller.RegistrationFailure
	// when the newest webhook the poller read was stored
	pollerWebhook time.Time
}

// reportStatus logs one status line every --status-interval until ctx ends,
// and a warning while the poller tracks OTPs but no webhook arrives (the
// sign of a callback no longer pointed here) or while it falls behind.
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
		attrs, warns := a.statusAttrs(prev, cur)
		a.logger.Info("status", attrs...)
		for _, w := range warns {
			a.logger.Warn(w)
		}
		if rec := tyntecRecovered(prev, cur); rec != nil {
			a.logger.Info("tyntec answers again", rec...)
		}
		prev = cur
	}
}

// status reads what each module knows now.
func (a *App) status(ctx context.Context) status {
	s := status{at: time.Now()}
	if a.ingest != nil {
		s.accepted, s.lastWebhook = a.ingest.Stats()
		s.refused, s.lastRefused = a.ingest.Refused()
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s.streamMsgs, s.streamLast, s.streamErr = a.broker.StreamState(ctx)
	if a.sink != nil {
		s.sinkPending, s.sinkAckPending, s.sinkKnown = a.sink.Lag()
		s.sinkShare, s.sinkShareKnown = a.sink.BoundShare()
	}
	if a.embeddedSink != nil {
		s.sinkWaiting = a.embeddedSink.Waiting()
	}
	if a.poller != nil {
		s.tracked, s.due, s.oldest, s.counted = a.poller.Backlog()
		s.tyntec = a.poller.TyntecHealth()
		s.pollerWebhook = a.poller.LastWebhook()
		s.leading = a.poller.Leading()
		s.registering = a.poller.RegistrationFailing()
	}
	return s
}

// statusAttrs turns two readings into the status line's attributes and the
// warnings of the second (pollerWarnings).
func (a *App) statusAttrs(prev, cur status) (attrs []any, warns []string) {
	age := func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return cur.at.Sub(t).Round(time.Second).String()
	}
	if a.ingest != nil {
		secs := cur.at.Sub(prev.at).Seconds()
		attrs = append(attrs, slog.String("webhooks_per_s", formatRate(float64(cur.accepted-prev.accepted)/secs)))
		attrs = append(attrs, slog.String("last_webhook_age", age(cur.lastWebhook)))
	}
	if cur.streamErr != nil {
		attrs = append(attrs, slog.String("stream", cur.streamErr.Error()))
	} else {
		attrs = append(attrs, slog.Uint64("stream_msgs", cur.streamMsgs), slog.String("stream_lag", age(cur.streamLast)))
	}
	if a.sink != nil && cur.sinkKnown {
		attrs = append(attrs, slog.Uint64("sink_lag", cur.sinkPending), slog.Uint64("sink_ack_pending", cur.sinkAckPending))
	} else if a.sink != nil {
		attrs = append(attrs, slog.String("sink_lag", "unknown")) // not read yet, or NATS out of reach
	}
	if a.poller != nil && cur.counted {
		attrs = append(attrs, slog.Int("tracked_otps", cur.tracked), slog.Int("reconcile_backlog", cur.due),
			slog.String("oldest_unreconciled", cur.oldest.Round(time.Second).String()))
	}
	return attrs, a.warnings(cur)
}

// warnings are the status's warnings about its modules, for the log line
// and the API alike: the poller's, ingest's, a sink waiting for another
// reporter, and the process short of memory.
func (a *App) warnings(cur status) []string {
	warns := append(a.pollerWarnings(cur), ingestWarnings(cur)...)
	if cur.sinkWaiting != "" {
		warns = append(warns, cur.sinkWaiting)
	}
	if cur.sinkShareKnown && cur.sinkShare > sinkBoundShareWarn {
		warns = append(warns, sinkBoundWarning(cur.sinkShare))
	}
	if a.faults != nil {
		if w := a.faults.warning(); w != "" {
			warns = append(warns, w)
		}
	}
	return warns
}

// sinkBoundShareWarn is the share of the stream's bound the sink's
// backlog may take before a warning (past it, as OtpscopeSinkNearStreamBound):
// half of it gone is time to act, the rest is the time to do it in.
const sinkBoundShareWarn = 0.5

// sinkBoundWarning says how much of the stream's bound events the sink has
// not inserted take up, and what happens at all of it.
func sinkBoundWarning(share float64) string {
	return "events not yet in ClickHouse take up " + percent(share) + " of the stream's bound (--stream-max-age, --stream-max-bytes): " +
		"at 100 % it drops them before the sink inserts them; see why the sink is behind (its log, otpscope_sink_failures_total), or raise the bound"
}

// percent writes a share as a whole percentage, "under 1 %" for less but
// not none.
func percent(share float64) string {
	if share > 0 && share < 0.005 {
		return "under 1 %"
	}
	return strconv.Itoa(int(math.Round(share*100))) + " %"
}

// refusedWebhooksWarn is how many of tyntec's webhooks refused for their
// token since the last one accepted make a warning (fewer may be a
// scanner's), while the last was within refusedWebhooksLately.
const (
	refusedWebhooksWarn   = 10
	refusedWebhooksLately = 10 * time.Minute
)

// ingestWarnings are the status's warnings about ingest: tyntec's
// webhooks refused for their token lately, none accepted since.
func ingestWarnings(cur status) []string {
	if cur.refused < refusedWebhooksWarn || cur.at.Sub(cur.lastRefused) > refusedWebhooksLately {
		return nil
	}
	since := "since start"
	if !cur.lastWebhook.IsZero() {
		since = "since the last accepted, " + cur.at.Sub(cur.lastWebhook).Round(time.Second).String() + " ago"
	}
	return []string{strconv.FormatUint(cur.refused, 10) + " webhooks refused for their token " + since + ", the last " + cur.at.Sub(cur.lastRefused).Round(time.Second).String() +
		" ago: does tyntec's callback send a token of --webhook-token (the log names from where)?"}
}

// tyntecFailedWarn is how many failed calls in a row make a warning: a
// call and its retries.
const tyntecFailedWarn = 3

// tyntecStale is how long after its last failed call a streak is still
// told: a leader with nothing due calls tyntec only at discovery (every
// 5 min on defaults: two of them and a minute), and one that made no call
// since knows nothing new.
const tyntecStale = 11 * time.Minute

// tyntecWarning says what the poller's calls to tyntec have said lately,
// when the last tyntecFailedWarn or more failed, the last within
// tyntecStale.
func tyntecWarning(h tyntec.Health, at time.Time) string {
	if h.Failed < tyntecFailedWarn || at.Sub(h.LastFailedAt) > tyntecStale {
		return ""
	}
	streak := "its last " + strconv.Itoa(h.Failed) + " calls, for " + at.Sub(h.FailingSince).Round(time.Second).String() + ","
	const lost = "; lost webhooks are not recovered, nothing is re-sent"
	switch h.Outcome {
	case "unauthorized":
		return "tyntec refuses the API key: " + streak + " were answered 401 or 403 (" + h.LastError + "): check --tyntec-api-key" + lost
	case "server_error":
		return "tyntec fails: " + streak + " were answered 5xx (" + h.LastError + ")" + lost
	case "bad_answer":
		return "tyntec's answers do not read: " + streak + " were answered 2xx with a body that is not tyntec's (" + h.LastError + "): is --tyntec-url tyntec's API, not a proxy's page?" + lost
	default:
		return "tyntec does not answer: " + streak + " failed (" + h.LastError + ")" + lost
	}
}

// tyntecRecovered is what ends a tyntec warning in the log: the
// attributes of a streak of tyntecFailedWarn or more failed calls that
// ended since the previous reading (nil if none did).
func tyntecRecovered(prev, cur status) []any {
	h := cur.tyntec
	if h.Recovered < tyntecFailedWarn || !h.RecoveredAt.After(prev.at) {
		return nil
	}
	return []any{slog.Int("failed_calls", h.Recovered), slog.String("for", h.RecoveredAt.Sub(h.RecoveredFrom).Round(time.Second).String())}
}

// pollerBehindAfter is the age of the oldest unsettled OTP past which the
// poller is said to fall behind: well past a delivery's settling and a lost
// webhook's read, and under the 35 minutes an unsettled OTP is tracked on
// defaults before it is given up (deploy/prometheus's OtpscopePollerBehind).
const pollerBehindAfter = 15 * time.Minute

// pollerWarnings are the status's warnings about the poller: no webhook
// while it tracks OTPs (silence), and an OTP unsettled past
// pollerBehindAfter.
func (a *App) pollerWarnings(cur status) []string {
	var out []string
	if warn := a.silence(cur); warn != "" {
		out = append(out, warn)
	}
	if warn := tyntecWarning(cur.tyntec, cur.at); a.poller != nil && warn != "" {
		out = append(out, warn)
	}
	if r := cur.registering; r != nil {
		out = append(out, "registering the callback at tyntec (--register-callback-url) fails: "+strconv.Itoa(r.Attempts)+" attempts for "+cur.at.Sub(r.Since).Round(time.Second).String()+" ("+r.Err+"); it is tried again, and until it takes tyntec sends its webhooks where its callback configuration says")
	}
	if a.poller != nil && cur.oldest > pollerBehindAfter {
		out = append(out, "the poller falls behind: an OTP has waited "+cur.oldest.Round(time.Second).String()+" to be settled (over "+pollerBehindAfter.String()+"); past its expiry plus --grace it is given up and its attempts stay pending. Lost webhooks beyond its tyntec budget (--tyntec-rate-limit), or tyntec errors?")
	}
	return out
}

// silence warns when the poller tracks OTPs but no webhook arrived for
// longer than the status interval (a minute when the line is off): the
// sign of a callback no longer pointed here. The newest webhook is the
// later of the last one ingest accepted and the newest the poller
// replicas read, which outlives a restart (the last accepted is this
// process's, and after a restart it would say "ever"). Not while the
// stream cannot be read: NATS away stops webhooks too, and the line says
// so.
func (a *App) silence(cur status) string {
	if a.poller == nil || cur.tracked == 0 || cur.streamErr != nil {
		return ""
	}
	last := cur.pollerWebhook
	if cur.lastWebhook.After(last) {
		last = cur.lastWebhook
	}
	quiet := a.cfg.StatusInterval
	if quiet <= 0 {
		quiet = time.Minute
	}
	if !last.IsZero() && cur.at.Sub(last) <= quiet {
		return ""
	}
	since := " ever"
	if !last.IsZero() {
		since = " for " + cur.at.Sub(last).Round(time.Second).String()
	}
	return "no webhook" + since + " while the poller tracks OTPs: is tyntec's callback pointed here (poller register-callback)?"
}

// running are the modules of the process that run: the poller's only with
// a tyntec API key.
func (a *App) running() []string {
	var out []string
	for _, m := range a.cfg.Modules {
		if m != ModulePoller || a.poller != nil {
			out = append(out, m)
		}
	}
	return out
}

// StatusResponse is the body of GET /api/v1/status: what the status line
// says, as JSON, for the modules this process runs (the others are left
// out), read when asked.
type StatusResponse struct {
	// Modules are those running (the poller only with a tyntec API key).
	Modules []string      `json:"modules"`
	At      time.Time     `json:"at"`
	Ingest  *IngestStatus `json:"ingest,omitempty"`
	Stream  StreamStatus  `json:"stream"`
	Sink    *SinkStatus   `json:"sink,omitempty"`
	Poller  *PollerStatus `json:"poller,omitempty"`
	// DeadLetters, with the reporter (whose sink stores them).
	DeadLetters *DeadLettersStatus `json:"dead_letters,omitempty"`
	// Warnings say what needs a look: the stream unreadable, no webhook
	// while the poller tracks OTPs, the poller falling behind, tyntec
	// refusing the key or not answering, tyntec's webhooks refused for their
	// token, the poller off for want of a key, a secret's changed file that
	// does not load, a readiness check failing.
	Warnings []string `json:"warnings"`
}

// IngestStatus: webhooks answered 200 since the process started, and when
// the last one was.
type IngestStatus struct {
	WebhooksAccepted uint64     `json:"webhooks_accepted"`
	LastWebhook      *time.Time `json:"last_webhook"`
}

// StreamStatus: the messages the stream holds, and when the newest was
// stored.
type StreamStatus struct {
	Messages    uint64     `json:"messages"`
	LastMessage *time.Time `json:"last_message"`
	Error       string     `json:"error,omitempty"`
}

// SinkStatus: events in the stream not yet handed to the sink, and those
// handed but not yet inserted and acknowledged.
type SinkStatus struct {
	Lag        uint64 `json:"lag"`
	AckPending uint64 `json:"ack_pending"`
	// StreamBoundShare is the share of the stream's bound that these take
	// up (at 1 the stream drops them uninserted), when known: read every
	// 10 s.
	StreamBoundShare *float64 `json:"stream_bound_share,omitempty"`
}

// PollerStatus: the OTPs the poller tracks, those whose delivery its last
// cycle had to read from tyntec, and the oldest unsettled one's age.
type PollerStatus struct {
	// Leading: this replica holds the lease, calls tyntec and knows the
	// backlog (the others say 0).
	Leading bool `json:"leading"`
	// BacklogCounted: a reconciliation cycle has counted the figures below
	// since this replica took the lease. False, they are zeros, not a
	// count: a restarted poller reads its whole bucket before its first
	// cycle. Left out by builds before 2026-12-06 (decoded as nil).
	BacklogCounted      *bool   `json:"backlog_counted,omitempty"`
	TrackedOTPs         int     `json:"tracked_otps"`
	ReconcileBacklog    int     `json:"reconcile_backlog"`
	OldestUnreconciledS float64 `json:"oldest_unreconciled_s"`
}

// DeadLettersStatus: the dead letters never replayed and when the newest
// arrived (store.PendingDeadLetters: those --retention-dead-letters still
// keeps, those a replay skipped included). Not a warning: one that cannot
// be replayed stays pending until it expires, and `otpscope status` would
// exit 1 all that while; the console's Overview says them instead.
type DeadLettersStatus struct {
	Pending       uint64     `json:"pending"`
	NewestPending *time.Time `json:"newest_pending"`
	// Error says why they could not be counted.
	Error string `json:"error,omitempty"`
}

// deadLetters counts the dead letters never replayed, for the status.
func (a *App) deadLetters(ctx context.Context) *DeadLettersStatus {
	p, err := a.db.PendingDeadLetters(ctx)
	if err != nil {
		return &DeadLettersStatus{Error: err.Error()}
	}
	out := &DeadLettersStatus{Pending: p.Count}
	if !p.Newest.IsZero() {
		out.NewestPending = &p.Newest
	}
	return out
}

// serveStatus answers GET /api/v1/status.
func (a *App) serveStatus(w http.ResponseWriter, r *http.Request) {
	// Counted and checked beside the other readings, so that the answer
	// waits for the slowest of the reads, not their sum.
	var dead chan *DeadLettersStatus
	if a.db != nil {
		dead = make(chan *DeadLettersStatus, 1)
		// On the requests' pool, unbounded: a monitor's read, one query
		// of at most 2 s.
		go func() { dead <- a.deadLetters(store.ForRequest(r.Context())) }()
	}
	notReady := make(chan []string, 1)
	go func() { notReady <- a.notReady(r.Context()) }()
	cur := a.status(r.Context())
	at := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		t = t.UTC()
		return &t
	}
	out := StatusResponse{Modules: a.running(), At: cur.at.UTC(), Warnings: []string{},
		Stream: StreamStatus{Messages: cur.streamMsgs, LastMessage: at(cur.streamLast)}}
	if cur.streamErr != nil {
		out.Stream.Error = cur.streamErr.Error()
		// Not connected, the nats readiness check's warning says why.
		if !errors.Is(cur.streamErr, broker.ErrNotConnected) {
			out.Warnings = append(out.Warnings, "the stream: "+out.Stream.Error)
		}
	}
	if a.ingest != nil {
		out.Ingest = &IngestStatus{WebhooksAccepted: cur.accepted, LastWebhook: at(cur.lastWebhook)}
	}
	if a.sink != nil && cur.sinkKnown {
		out.Sink = &SinkStatus{Lag: cur.sinkPending, AckPending: cur.sinkAckPending}
		if cur.sinkShareKnown {
			out.Sink.StreamBoundShare = &cur.sinkShare
		}
	}
	if a.poller != nil {
		out.Poller = &PollerStatus{Leading: cur.leading, BacklogCounted: &cur.counted, TrackedOTPs: cur.tracked, ReconcileBacklog: cur.due, OldestUnreconciledS: cur.oldest.Seconds()}
	}
	if dead != nil {
		out.DeadLetters = <-dead
	}
	out.Warnings = append(out.Warnings, a.warnings(cur)...)
	out.Warnings = append(out.Warnings, <-notReady...)
	if a.cfg.runs(ModulePoller) && a.poller == nil {
		out.Warnings = append(out.Warnings, "the poller is off (no --tyntec-api-key): lost webhooks are not recovered, OTP statuses not read, nothing re-sent")
	}
	for _, what := range reload.Failing() {
		out.Warnings = append(out.Warnings, "the changed file of the "+what+" does not load, so the one before is still in use: fix it before revoking the old (the log says why)")
	}
	ops.WriteJSON(w, out)
}

// notReady are the readiness checks failing now, as warnings: what
// /readyz says of a full disk or ClickHouse refusing inserts. The checks
// run side by side, 3 s at most; a check failing in the words of one
// before it (the poller's NATS half, the nats check's) is told once.
func (a *App) notReady(ctx context.Context) []string {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	errs := make([]error, len(a.checks))
	var wg sync.WaitGroup
	for i, c := range a.checks {
		wg.Go(func() { errs[i] = c.Ready(ctx) })
	}
	wg.Wait()
	var out, told []string
	for i, err := range errs {
		if err == nil || slices.Contains(told, err.Error()) {
			continue
		}
		told = append(told, err.Error())
		out = append(out, "not ready, "+a.checks[i].Name+": "+err.Error())
	}
	return out
}

func formatRate(r float64) string { return strconv.FormatFloat(r, 'f', 2, 64) }
