package reporter

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/ops"
	"github.com/otpscope/otpscope/internal/problem"
	"github.com/otpscope/otpscope/internal/store"
)

// The reads the operator's console needs beyond /channels and /fallback:
// figures over time, the stored events page by page, and new events as they
// arrive.

// TimeseriesResponse is the body of GET /api/v1/timeseries.
type TimeseriesResponse struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	AsOf time.Time `json:"as_of"`
	store.Timeseries
}

// defaultBuckets is how many buckets a timeseries without step has.
const defaultBuckets = 60

// DefaultStep is the step cutting d into at most defaultBuckets buckets: the
// smallest of a few round steps that does; beyond them, whole days. Steps of
// whole days read the day-level latency histograms (store.Timeseries). The
// buckets are aligned to the epoch, so a window not starting on a step's
// bound has one more, partial at each end: the last hour is 61 buckets of
// a minute, which a chart of the last hour wants rather than 13 of five.
func DefaultStep(d time.Duration) time.Duration {
	const day = 24 * time.Hour
	for _, s := range []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour, 3 * time.Hour, 6 * time.Hour, day, 2 * day, 7 * day} {
		if d <= s*defaultBuckets {
			return s
		}
	}
	return (d + defaultBuckets*day - 1) / (defaultBuckets * day) * day
}

func (a *API) timeseries(w http.ResponseWriter, r *http.Request) {
	readAt := a.now()
	win, ok := a.window(w, r)
	if !ok {
		return
	}
	step := DefaultStep(win.To.Sub(win.From))
	if s := r.URL.Query().Get("step"); s != "" {
		d, err := parseStep(s)
		if err != nil {
			badRequest(w, r, "Invalid step", "step", err.Error())
			return
		}
		step = d
	}
	zone, err := store.Zone(r.URL.Query().Get("tz"))
	if err != nil {
		badRequest(w, r, "Invalid tz", "tz", err.Error())
		return
	}
	ctx := store.PlanOnce(r.Context())
	ts, err := a.db.Timeseries(ctx, win, step, zone)
	a.answer(w, r, TimeseriesResponse{From: win.From, To: win.To, AsOf: answeredAsOf(ctx, readAt), Timeseries: ts}, err, store.ErrTooManyBuckets, "Invalid step", "step")
}

// parseStep reads a Go duration (5m, 1h), whole days (1d) or whole seconds (300), at least
// 1s and at most store.MaxStep.
func parseStep(s string) (time.Duration, error) {
	d, ok := store.ParseDuration(s)
	if !ok {
		n, nerr := strconv.ParseInt(s, 10, 64) // out of range: ±MaxInt64
		if nerr != nil && !errors.Is(nerr, strconv.ErrRange) {
			return 0, fmt.Errorf("%.64q is neither a duration (5m, 1d) nor seconds", s)
		}
		// Bounded before the conversion, which would overflow.
		d = time.Duration(max(min(n, int64(store.MaxStep/time.Second)+1), 0)) * time.Second
	}
	switch {
	case d < time.Second:
		return 0, fmt.Errorf("step %s is below 1s", s)
	case d > store.MaxStep:
		return 0, fmt.Errorf("step %s is over %s", s, store.MaxStep)
	}
	return d, nil
}

// EventsResponse is the body of GET /api/v1/events: a page of events and,
// as every windowed answer says, as_of.
type EventsResponse struct {
	// AsOf is when the page was read: it reads the stored events
	// themselves, no rollup, so every event stored before it is listed
	// here or on a later page.
	AsOf time.Time `json:"as_of"`
	store.EventPage
}

func (a *API) events(w http.ResponseWriter, r *http.Request) {
	readAt := a.now()
	win, ok := a.window(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	f := store.EventFilter{From: win.From, To: win.To, Channel: win.Channel, Profile: win.Profile,
		Status: strings.TrimSpace(q.Get("status")), Source: q.Get("source"), OTPID: q.Get("otp"), After: q.Get("cursor")}
	if !limitParam(w, r, store.MaxEventsLimit, &f.Limit) || !eventFilters(w, r, &f) {
		return
	}
	page, err := a.db.Events(r.Context(), f)
	a.answer(w, r, EventsResponse{AsOf: readAt.UTC(), EventPage: page}, err, store.ErrBadCursor, "Invalid cursor", "cursor")
}

// eventFilters checks /events' own filters: a value that could never
// match is a mistake, said as such, not an empty page. Any status may be
// stored (tyntec's undocumented ones as they come), so only a word is
// asked of it, as of a channel.
func eventFilters(w http.ResponseWriter, r *http.Request, f *store.EventFilter) bool {
	if f.OTPID != "" {
		id, err := uuid.Parse(f.OTPID)
		if err != nil {
			badRequest(w, r, "Invalid filter", "otp", fmt.Sprintf("%.64q is not an OTP id (a UUID)", f.OTPID))
			return false
		}
		f.OTPID = id.String()
	}
	if f.Source != "" && f.Source != events.SourceWebhook && f.Source != events.SourcePoll {
		badRequest(w, r, "Invalid filter", "source", fmt.Sprintf("%.64q: want %s or %s", f.Source, events.SourceWebhook, events.SourcePoll))
		return false
	}
	if f.Status != "" && !events.WellFormed(strings.ToUpper(f.Status)) {
		badRequest(w, r, "Invalid filter", "status", fmt.Sprintf("%.64q is not a status (a word such as DELIVERED or failed)", f.Status))
		return false
	}
	return true
}

// AlertsResponse is the body of GET /api/v1/alerts.
type AlertsResponse struct {
	From   time.Time           `json:"from"`
	To     time.Time           `json:"to"`
	Alerts []store.AlertRecord `json:"alerts"`
}

// Bounds of the alerts an answer lists.
const (
	DefaultAlertsLimit = 100
	MaxAlertsLimit     = 1000
)

// alerts lists the alerts evaluated within the window, newest first, firing
// and resolved: the alert state the console shows. An alert is over every
// profile, so a profile does not narrow them; a channel keeps its own and
// those of no channel (the fallback rate's); state keeps those firing or
// those resolved.
func (a *API) alerts(w http.ResponseWriter, r *http.Request) {
	f, ok := a.alertFilter(w, r)
	if !ok {
		return
	}
	recs, err := a.db.Alerts(r.Context(), f)
	a.reply(w, r, AlertsResponse{From: f.From, To: f.To, Alerts: recs}, err)
}

// alertFilter reads /alerts' parameters, or answers 400.
func (a *API) alertFilter(w http.ResponseWriter, r *http.Request) (store.AlertFilter, bool) {
	win, ok := a.window(w, r)
	if !ok {
		return store.AlertFilter{}, false
	}
	f := store.AlertFilter{From: win.From, To: win.To, Channel: win.Channel, OrOther: win.Channel != "" && !a.rules.ownSeries(win.Channel),
		State: strings.ToLower(strings.TrimSpace(r.URL.Query().Get("state"))), Limit: DefaultAlertsLimit}
	if !limitParam(w, r, MaxAlertsLimit, &f.Limit) {
		return f, false
	}
	if f.State != "" && f.State != events.AlertFiring && f.State != events.AlertResolved {
		badRequest(w, r, "Invalid state", "state", fmt.Sprintf("state %q: want %s or %s", f.State, events.AlertFiring, events.AlertResolved))
		return f, false
	}
	return f, true
}

// ResendsResponse is the body of GET /api/v1/resends.
type ResendsResponse struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// AsOf: every fact stored before it counts. Exact, it is when the
	// decisions were read: the outcomes the rollup job kept are completed
	// by those of the OTPs touched since, computed from their facts in the
	// same read. With max_lag, and the job's last run within it, the kept
	// outcomes alone are read: its run less the slack.
	AsOf time.Time `json:"as_of"`
	store.ResendReport
}

// resends reports the resend decisions made within the window (by when
// they were made) and what became of their OTPs; a profile keeps its
// decisions, a channel those a failure on it triggered, limit how many of
// the newest are listed.
func (a *API) resends(w http.ResponseWriter, r *http.Request) {
	readAt := a.now()
	win, ok := a.window(w, r)
	if !ok {
		return
	}
	f := store.ResendFilter{From: win.From, To: win.To, Profile: win.Profile, Channel: win.Channel, MaxLag: win.MaxLag}
	if !limitParam(w, r, store.MaxResendsListed, &f.Latest) {
		return
	}
	ctx := store.PlanOnce(r.Context())
	rep, err := a.db.Resends(ctx, f)
	a.reply(w, r, ResendsResponse{From: win.From, To: win.To, AsOf: answeredAsOf(ctx, readAt), ResendReport: rep}, err)
}

// AlertEpisodesResponse is the body of GET /api/v1/alerts/episodes.
type AlertEpisodesResponse struct {
	From     time.Time            `json:"from"`
	To       time.Time            `json:"to"`
	Episodes []store.AlertEpisode `json:"episodes"`
}

// alertEpisodes lists the firings whose evaluations fall within the
// window, each as its latest evaluation there, most recent first: what
// /alerts lists, one row per firing instead of one per evaluation. The
// parameters are /alerts'; state keeps the episodes whose latest
// evaluation is in it (resolved: over within the window).
func (a *API) alertEpisodes(w http.ResponseWriter, r *http.Request) {
	f, ok := a.alertFilter(w, r)
	if !ok {
		return
	}
	eps, err := a.db.AlertEpisodes(r.Context(), f)
	a.reply(w, r, AlertEpisodesResponse{From: f.From, To: f.To, Episodes: eps}, err)
}

// Subscriber subscribes to core NATS subjects (broker.Broker does).
type Subscriber interface {
	Subscribe(subject string, fn func(*nats.Msg)) (unsubscribe func(), err error)
}

// Live streams delivery events as they reach NATS to each client of GET
// /api/v1/live, as server-sent events. Each stream has its own subscription
// and a bounded buffer: a client that reads too slowly misses events (told
// by a "dropped" event) rather than holding memory or NATS back.
type Live struct {
	sub     Subscriber
	logger  *slog.Logger
	streams atomic.Int64
	stop    chan struct{}
	once    sync.Once
}

// Live's bounds.
const (
	// LiveBuffer is how many events a stream holds for its client.
	LiveBuffer = 256
	// MaxLiveStreams is how many streams may be open at once; more get 503.
	MaxLiveStreams = 32
	// LiveHeartbeat is how often an idle stream sends a comment, so that
	// proxies and the browser see it alive.
	LiveHeartbeat = 15 * time.Second
)

// NewLive returns the live stream over sub.
func NewLive(sub Subscriber, logger *slog.Logger) *Live {
	return &Live{sub: sub, logger: logger, stop: make(chan struct{})}
}

// Mount adds GET /api/v1/live to r.
func (l *Live) Mount(r chi.Router) { r.With(QueryParams(nil)).Get("/api/v1/live", l.serve) }

// Close ends every open stream (the server is shutting down: it would wait
// for them otherwise).
func (l *Live) Close() { l.once.Do(func() { close(l.stop) }) }

// LiveEvent is the data of one "delivery" server-sent event.
type LiveEvent struct {
	Subject string `json:"subject"`
	events.DeliveryStatus
}

func (l *Live) serve(w http.ResponseWriter, r *http.Request) {
	if l.streams.Add(1) > MaxLiveStreams {
		l.streams.Add(-1)
		w.Header().Set("Retry-After", "5")
		problem.Write(w, problem.Details{Status: http.StatusServiceUnavailable, Title: "Too many live streams", Detail: fmt.Sprintf("at most %d at once", MaxLiveStreams), Instance: r.URL.Path})
		return
	}
	defer l.streams.Add(-1)
	msgs := make(chan *nats.Msg, LiveBuffer)
	var dropped atomic.Int64
	take := func(m *nats.Msg) {
		select {
		case msgs <- m:
		default:
			dropped.Add(1)
		}
	}
	// Delivery facts, and the methods' outcomes as facts of SILENT and PUSH.
	for _, subject := range []string{events.SubjectDeliveryAll, events.SubjectSilentAll, events.SubjectPushAll} {
		unsubscribe, err := l.sub.Subscribe(subject, take)
		if err != nil {
			l.logger.Error("live stream", "err", err)
			problem.Write(w, problem.Details{Status: http.StatusServiceUnavailable, Title: "Live stream unavailable", Detail: "NATS failed", Instance: r.URL.Path})
			return
		}
		defer unsubscribe()
	}

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// send writes one event within the server's write timeout, counted from
	// now: the stream outlives that timeout, a stuck client does not.
	send := func(chunk string) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(LiveHeartbeat * 2))
		if _, err := w.Write([]byte(chunk)); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send(": live\n\n") {
		return
	}
	tick := time.NewTicker(LiveHeartbeat)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-l.stop:
			return
		case <-tick.C:
			if !send(": ping\n\n") {
				return
			}
		case m := <-msgs:
			if n := dropped.Swap(0); n > 0 && !send(fmt.Sprintf("event: dropped\ndata: %d\n\n", n)) {
				return
			}
			ev, ok := liveEvent(m)
			if !ok {
				continue // not ours to judge here: the sink dead-letters it
			}
			b, _ := json.Marshal(ev)
			if !send("event: delivery\ndata: " + string(b) + "\n\n") {
				return
			}
		}
	}
}

// liveEvent reads a delivery fact, or a method's outcome as its fact.
func liveEvent(m *nats.Msg) (LiveEvent, bool) {
	ev := LiveEvent{Subject: m.Subject}
	sub, err := events.ParseSubject(m.Subject)
	if err != nil {
		return ev, false
	}
	switch sub.Kind {
	case events.KindSilent:
		var o events.SilentOutcome
		if json.Unmarshal(m.Data, &o) != nil {
			return ev, false
		}
		ev.DeliveryStatus = o.Fact()
	case events.KindPush:
		var p events.PushEvent
		if json.Unmarshal(m.Data, &p) != nil {
			return ev, false
		}
		ev.DeliveryStatus = p.Fact()
	default:
		if json.Unmarshal(m.Data, &ev.DeliveryStatus) != nil {
			return ev, false
		}
	}
	return ev, true
}

// answer writes v, or — when err is the query's complaint about a parameter
// (bad) — a 400 naming field, or for any other error a 503.
func (a *API) answer(w http.ResponseWriter, r *http.Request, v any, err, bad error, title, field string) {
	switch {
	case errors.Is(err, bad):
		badRequest(w, r, title, field, err.Error())
	case err != nil:
		a.fail(w, r, err)
	default:
		ops.WriteJSON(w, v)
	}
}
