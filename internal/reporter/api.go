package reporter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/ops"
	"github.com/otpscope/otpscope/internal/problem"
	"github.com/otpscope/otpscope/internal/store"
)

// DefaultAPIWindow is the window of an API call without from and to.
const DefaultAPIWindow = 24 * time.Hour

// API is the analytics JSON API: /api/v1/channels, /api/v1/fallback and
// /api/v1/otps/{otpId}. Errors are RFC 9457 problem details.
type API struct {
	db *store.DB
	// rules say which channels the alerts judge by themselves: a filter
	// by another also lists OTHER's alerts, where it is judged.
	rules AlertRules
	responder
	now func() time.Time
}

// NewAPI returns the API over db; rules are the alert rules the reporter
// evaluates, with the objective /api/v1/slo reads against.
func NewAPI(db *store.DB, rules AlertRules, logger *slog.Logger) *API {
	return &API{db: db, rules: rules, now: time.Now, responder: responder{
		logger: logger, failure: "analytics query", title: "Analytics unavailable", detail: "the ClickHouse query failed"}}
}

// Mount adds the API's routes to r.
func (a *API) Mount(r chi.Router) {
	r.With(QueryParams(windowParams)).Get("/api/v1/channels", a.channels)
	r.With(QueryParams(windowParams)).Get("/api/v1/fallback", a.fallback)
	r.With(QueryParams(nil)).Get("/api/v1/otps/{otpId}", a.otp)
	r.With(QueryParams(with(windowParams, "step", "tz"))).Get("/api/v1/timeseries", a.timeseries) // console.go
	r.With(QueryParams(eventsParams)).Get("/api/v1/events", a.events)
	r.With(QueryParams(alertsParams)).Get("/api/v1/alerts", a.alerts)                  // console.go
	r.With(QueryParams(alertsParams)).Get("/api/v1/alerts/episodes", a.alertEpisodes)  // console.go
	r.With(QueryParams(with(windowParams, "limit"))).Get("/api/v1/resends", a.resends) // console.go
	r.With(QueryParams(reportParams)).Get("/api/v1/report", a.report)                  // reportapi.go
	r.With(QueryParams(sloParams)).Get("/api/v1/slo", a.slo)                           // objective.go
}

// The query parameters the endpoints read, as openapi.json lists them.
var (
	// windowParams are ParseWindow's.
	windowParams = []string{"from", "to", "since", "profile", "channel", "max_lag"}
	// /events reads every fact stored: no max_lag.
	eventsParams = []string{"from", "to", "since", "profile", "channel", "status", "source", "otp", "limit", "cursor"}
	// An alert is over every profile, and read as evaluated: no profile,
	// no max_lag.
	alertsParams = []string{"from", "to", "since", "channel", "state", "limit"}
)

// with is params and more, in a new slice.
func with(params []string, more ...string) []string {
	return append(slices.Clip(params), more...)
}

// CacheBuster is the one query parameter every endpoint lets pass unread:
// the one clients such as jQuery add to a GET so that no cache answers it.
const CacheBuster = "_"

// QueryParams refuses a query that does not parse (Go's URL.Query drops a
// malformed pair without a word: a bad cursor would read page one), that
// names a parameter the endpoint does not read (reads, and CacheBuster),
// or that gives one other than repeatable twice (only the first would
// count: since=1h&since=2h would answer for the hour). A parameter read by
// nothing would answer for something other than what was asked without a
// word: profle=… for every profile, profile=… on /alerts (an alert is
// over every profile) the same, tz=… on /channels UTC's day.
func QueryParams(reads []string, repeatable ...string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			q, err := url.ParseQuery(r.URL.RawQuery)
			if err != nil {
				badRequest(w, r, "Invalid query", "", err.Error())
				return
			}
			// In order: the same query always names the same parameter.
			for _, k := range slices.Sorted(maps.Keys(q)) {
				if k != CacheBuster && !slices.Contains(reads, k) {
					badRequest(w, r, "Unknown parameter", k, fmt.Sprintf("%s reads no parameter %.64q: %s", r.URL.Path, k, paramList(reads)))
					return
				}
				if v := q[k]; len(v) > 1 && !slices.Contains(repeatable, k) {
					badRequest(w, r, "Invalid query", k, fmt.Sprintf("%.64q is given %d times: give it once", k, len(v)))
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// paramList says which parameters an endpoint reads, for an error.
func paramList(reads []string) string {
	if len(reads) == 0 {
		return "it reads none"
	}
	return "it reads " + strings.Join(reads, ", ")
}

// ChannelsResponse is the body of GET /api/v1/channels.
type ChannelsResponse struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// AsOf: every fact stored before it is counted (see answeredAsOf).
	AsOf     time.Time            `json:"as_of"`
	Channels []store.ChannelStats `json:"channels"`
	// Completeness is how much of the window's attempts is still pending.
	Completeness store.Completeness `json:"completeness"`
}

// FallbackResponse is the body of GET /api/v1/fallback.
type FallbackResponse struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	AsOf time.Time `json:"as_of"`
	store.FallbackStats
	// Completeness is how much of the window's attempts (every channel) is
	// still pending.
	Completeness store.Completeness `json:"completeness"`
}

// windowError names the query parameter that was wrong.
type windowError struct {
	field string
	err   error
}

func (e *windowError) Error() string { return e.field + ": " + e.err.Error() }

// ParseWindow reads from, to (RFC 3339), since (a Go duration: the window
// from now−since to now, for "the last 24h" without computing dates; not
// with from or to), profile, channel and max_lag (a Go duration up to
// MaxLagLimit: store.Window.MaxLag). Without to the window ends now;
// without from it starts DefaultAPIWindow before its end.
func ParseWindow(q map[string][]string, now time.Time) (store.Window, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	w := store.Window{Profile: get("profile"), Channel: get("channel"), To: now.UTC().Truncate(time.Millisecond)}
	if s := get("to"); s != "" {
		t, err := parseTime(s)
		if err != nil {
			return w, &windowError{"to", err}
		}
		w.To = t
	}
	w.From = w.To.Add(-DefaultAPIWindow)
	if s := get("since"); s != "" {
		if get("from") != "" || get("to") != "" {
			return w, &windowError{"since", errors.New("since is a window ending now: give since, or from and to, not both")}
		}
		d, ok := store.ParseDuration(s)
		if !ok || d <= 0 {
			return w, &windowError{"since", fmt.Errorf("%.64q is not a positive duration such as 7d, 24h or 90m", s)}
		}
		w.From = w.To.Add(-d)
	}
	if s := get("from"); s != "" {
		t, err := parseTime(s)
		if err != nil {
			return w, &windowError{"from", err}
		}
		w.From = t
	}
	// Any channel may be stored (tyntec's undocumented ones as they come),
	// so an unknown name is a filter that matches nothing; one that could
	// never be a channel is a typo, said as such.
	if c := strings.ToUpper(strings.TrimSpace(w.Channel)); c != "" && !events.WellFormed(c) {
		return w, &windowError{"channel", fmt.Errorf("%.64q is not a channel name (a word such as SMS or whatsapp)", w.Channel)}
	}
	if s := get("max_lag"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 || d > MaxLagLimit {
			return w, &windowError{"max_lag", fmt.Errorf("%q is not a duration from 0 to %v, such as 30s or 2m", s, MaxLagLimit)}
		}
		w.MaxLag = d
	}
	if w.From.After(w.To) {
		return w, &windowError{"from", fmt.Errorf("%s is after to %s", w.From.Format(time.RFC3339Nano), w.To.Format(time.RFC3339Nano))}
	}
	// No fact is stored before events.MinTimestamp, and an end far in the
	// future is a mistake (or beyond what ClickHouse's dates hold). to
	// first: without from, from derives from it, and to is the one to fix.
	latest := now.UTC().AddDate(MaxWindowYearsAhead, 0, 0)
	for _, end := range []struct {
		field string
		t     time.Time
	}{{"to", w.To}, {"from", w.From}} {
		if end.t.Before(events.MinTimestamp) || end.t.After(latest) {
			return w, &windowError{end.field, fmt.Errorf("%s is outside %s … %s", end.t.Format(time.RFC3339), events.MinTimestamp.Format(time.RFC3339), latest.Format(time.RFC3339))}
		}
	}
	// Channels are tyntec's upper-case words; --channel sms means SMS, and
	// " sms" too (it was checked trimmed).
	w.Channel = strings.ToUpper(strings.TrimSpace(w.Channel))
	// Profile ids that are UUIDs are stored canonical (lower case), as the
	// webhooks' are validated: an upper-case one names the same profile.
	if id, err := uuid.Parse(w.Profile); err == nil {
		w.Profile = id.String()
	}
	// Facts are stored to the millisecond: an end between two is moved up
	// to the next, so from stays inclusive and to exclusive of what is
	// stored (the store's SQL would cut the sub-millisecond part off).
	w.From, w.To = ceilMillisecond(w.From), ceilMillisecond(w.To)
	return w, nil
}

// parseTime reads an RFC 3339 time (any of its spellings) of a window's
// end. A space where the offset's sign stands is a + the client did not
// encode (a query reads + as a space): said, since the time looks right
// as typed.
func parseTime(s string) (time.Time, error) {
	if t, ok := events.ParseRFC3339(s); ok {
		return t, nil
	}
	if i := strings.LastIndexByte(s, ' '); i > 0 {
		if _, ok := events.ParseRFC3339(s[:i] + "+" + s[i+1:]); ok {
			return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time: encode the offset's + as %%2B (a query reads + as a space)", s)
		}
	}
	return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time", s)
}

// ceilMillisecond is t rounded up to a whole millisecond.
func ceilMillisecond(t time.Time) time.Time {
	if c := t.Truncate(time.Millisecond); !c.Equal(t) {
		return c.Add(time.Millisecond)
	}
	return t
}

// MaxWindowYearsAhead bounds how far in the future a window may end.
const MaxWindowYearsAhead = 10

// MaxLagLimit bounds max_lag: an hour the rollup job has not looked at for
// longer than a day is computed live anyway (patchAge in internal/store),
// and an answer a day behind is no longer the dashboard's "now".
const MaxLagLimit = 24 * time.Hour

// answeredAsOf is the as_of of answers read under ctx (store.PlanOnce) at
// readAt: every fact stored before it is counted. Exact answers count
// every fact visible at readAt; with max_lag it is the oldest rollup the
// answer read without the facts stored since (store.AsOf).
func answeredAsOf(ctx context.Context, readAt time.Time) time.Time {
	if t, ok := store.AsOf(ctx); ok {
		return t
	}
	return readAt.UTC()
}

func (a *API) window(w http.ResponseWriter, r *http.Request) (store.Window, bool) {
	win, err := ParseWindow(r.URL.Query(), a.now())
	if err != nil {
		var we *windowError
		field := ""
		if errors.As(err, &we) {
			field = we.field
		}
		badRequest(w, r, windowTitle(field), field, err.Error())
		return win, false
	}
	return win, true
}

// windowTitle is the problem title for a bad window parameter: the
// filters are not the time window.
func windowTitle(field string) string {
	switch field {
	case "channel", "profile":
		return "Invalid filter"
	case "max_lag":
		return "Invalid max_lag"
	}
	return "Invalid time window"
}

func (a *API) channels(w http.ResponseWriter, r *http.Request) {
	// After the rows: they note the pending attempts they counted, which
	// the completeness then counts (store.PlanOnce).
	serveWindow(a, w, r, a.db.Channels, completenessAfter, func(win store.Window, asOf time.Time, chs []store.ChannelStats, c store.Completeness) any {
		return ChannelsResponse{From: win.From, To: win.To, AsOf: asOf, Channels: chs, Completeness: c}
	})
}

func (a *API) fallback(w http.ResponseWriter, r *http.Request) {
	// Beside the journeys: its completeness counts every channel's
	// attempts, which the journeys' queries do not note, under the same plan.
	serveWindow(a, w, r, a.db.Fallback, completenessBeside, func(win store.Window, asOf time.Time, fb store.FallbackStats, c store.Completeness) any {
		return FallbackResponse{From: win.From, To: win.To, AsOf: asOf, FallbackStats: fb, Completeness: c}
	})
}

// Whether an answer's completeness is read after its report or beside it.
const (
	completenessAfter  = false
	completenessBeside = true
)

// serveWindow answers with report over the request's window and its
// completeness, as respond wraps them; both share one plan of the window
// (store.PlanOnce), and with beside their queries run at once.
func serveWindow[T any](a *API, w http.ResponseWriter, r *http.Request, report func(context.Context, store.Window) (T, error), beside bool, respond func(store.Window, time.Time, T, store.Completeness) any) {
	readAt := a.now()
	win, ok := a.window(w, r)
	if !ok {
		return
	}
	ctx := store.PlanOnce(r.Context())
	var v T
	var c store.Completeness
	answer := func(ctx context.Context) (err error) {
		v, err = report(ctx, win)
		return err
	}
	complete := func(ctx context.Context) (err error) {
		c, err = a.db.Completeness(ctx, completenessWindow(win, r.URL.Path), a.now())
		return err
	}
	var err error
	if beside {
		g, gctx := errgroup.WithContext(ctx)
		g.Go(func() error { return answer(gctx) })
		g.Go(func() error { return complete(gctx) })
		err = g.Wait()
	} else if err = answer(ctx); err == nil {
		err = complete(ctx)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	ops.WriteJSON(w, respond(win, answeredAsOf(ctx, readAt), v, c))
}

// completenessWindow is the window whose attempts an answer's completeness
// counts: /fallback's channel filter selects journeys by their primary
// channel, so its completeness counts every channel's attempts.
func completenessWindow(w store.Window, path string) store.Window {
	if strings.HasSuffix(path, "/fallback") {
		w.Channel = ""
	}
	return w
}

func (a *API) otp(w http.ResponseWriter, r *http.Request) {
	j, err := a.db.Journey(r.Context(), chi.URLParam(r, "otpId"), a.now())
	switch {
	case errors.Is(err, store.ErrBadOTPID):
		badRequest(w, r, "Invalid OTP id", "otpId", err.Error())
	case errors.Is(err, store.ErrNotFound):
		problem.Write(w, problem.Details{Status: http.StatusNotFound, Title: "Unknown OTP",
			Detail: err.Error() + " (no event of it is stored: a webhook just sent takes a few seconds to be)", Instance: r.URL.Path})
	default:
		a.reply(w, r, j, err)
	}
}

// responder answers for a handler: with JSON, or with a 503 problem when
// what the handler reads from fails.
type responder struct {
	logger        *slog.Logger
	failure       string // logged with the error
	title, detail string // of the 503 problem
}

// reply writes v, or fails with err when it is not nil.
func (re responder) reply(w http.ResponseWriter, r *http.Request, v any, err error) {
	if err != nil {
		re.fail(w, r, err)
		return
	}
	ops.WriteJSON(w, v)
}

// fail logs err and answers 503; a client that left gets nothing. A query
// that found no connection free (store.ErrBusy) is said as such, with
// Retry-After: ClickHouse is busy, nothing failed. A read cut at
// ReadTimeout is answered 504: asking again would take as long.
func (re responder) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(context.Cause(r.Context()), errReadTimeout) {
		re.logger.Warn(re.failure+": cut at the API's read timeout", "path", r.URL.Path, "query", r.URL.RawQuery, "timeout", ReadTimeout, "err", err)
		problem.Write(w, problem.Details{Status: http.StatusGatewayTimeout, Title: "Analytics query too costly",
			Detail:   fmt.Sprintf("the answer's ClickHouse queries did not end within %v and were stopped: ask for a shorter window (or fewer profiles), or, for months of data, check that the rollups run (--rollup-schedule); when an hour's window is cut too, the engine itself is slow: otpscope status, and the machine's CPU and memory", ReadTimeout),
			Instance: r.URL.Path})
		return
	}
	if errors.Is(err, context.Canceled) {
		return // the client left
	}
	if errors.Is(err, store.ErrBusy) {
		re.logger.Warn(re.failure+": ClickHouse busy", "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", strconv.Itoa(limitRetryAfter))
		problem.Write(w, problem.Details{Status: http.StatusServiceUnavailable, Title: "ClickHouse busy",
			Detail: "no connection to ClickHouse came free in time: its queries are slow or too many; try again after Retry-After", Instance: r.URL.Path})
		return
	}
	re.logger.Error(re.failure, "path", r.URL.Path, "err", err)
	problem.Write(w, problem.Details{Status: http.StatusServiceUnavailable, Title: re.title, Detail: re.detail, Instance: r.URL.Path})
}

// limitParam reads the request's limit into *limit, left as it is when the
// request gives none; max 0 bounds it by nothing. A limit that is not a
// number from 1 to max is answered 400 and ok is false.
func limitParam(w http.ResponseWriter, r *http.Request, max int, limit *int) (ok bool) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return true
	}
	n, err := strconv.Atoi(s)
	if err == nil && n >= 1 && (max == 0 || n <= max) {
		*limit = n
		return true
	}
	want := "a positive number"
	if max > 0 {
		want = fmt.Sprintf("1 … %d", max)
	}
	badRequest(w, r, "Invalid limit", "limit", fmt.Sprintf("limit %q: want %s", s, want))
	return false
}

// badRequest answers 400 with a problem titled title about the query
// parameter or body field field ("" for the request as a whole).
func badRequest(w http.ResponseWriter, r *http.Request, title, field, detail string) {
	problem.Write(w, problem.Details{Status: http.StatusBadRequest, Title: title, Detail: detail, Field: field, Instance: r.URL.Path})
}
