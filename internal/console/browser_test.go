package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/go-chi/chi/v5"

	"github.com/otpscope/otpscope/internal/console"
	"github.com/otpscope/otpscope/internal/console/browsertest"
	"github.com/otpscope/otpscope/internal/polltest"
	"github.com/otpscope/otpscope/internal/reporter"
)

// These tests drive the console in Chromium against fakeAPI: answers shaped
// as README's "JSON API" says, with failures and slow answers on demand,
// which the reporter cannot be made to give. internal/app's console tests
// drive it against the real reporter.

const (
	knownOTP = "c4762c77-94cb-43d6-bbab-9f37e088ad01"
	asOf     = "2026-06-02T09:12:44.107Z"
)

// fakeAPI answers the console's calls with small fixed figures.
type fakeAPI struct {
	mu sync.Mutex
	// fail: a path answered with this status as a problem+json.
	fail map[string]int
	// hold, when set, holds /channels and /deadletters answers until it
	// is closed.
	hold chan struct{}
	// final is what every completeness says; empty, a window with nothing.
	final, empty bool
	// lost: the pending attempt is unrecoverable (pending for good).
	lost bool
	// reads counts /channels calls by their from.
	reads map[string]int
	// fallbackReads counts /fallback calls by their from.
	fallbackReads map[string]int
	// errors are SMS's error codes in /channels; nil, none.
	errors []any
	// tsAsOf is /timeseries' as_of; empty, when asked.
	tsAsOf string
	// eventQueries are the queries /events was asked, in order.
	eventQueries []string
	// reportQueries are the queries /report was asked, in order.
	reportQueries []string
	// deadLetters is /status' dead_letters; nil, none.
	deadLetters map[string]any
	// token, when set, is the only bearer token answered; any other
	// request is refused 401, as --api-token's are.
	token string
	// episodes, firing and silences are /alerts/episodes',
	// /alerts/firing's and /alerts/silences'; nil, none. A silence POSTed
	// is added to silences, active for its duration; one DELETEd expires.
	// silenceChanges are the changes asked, as "POST <body>" and "DELETE
	// <id>".
	episodes, firing, silences []any
	silenceChanges             []string
	// refusedEarly counts the reads refused for a window starting before
	// 2000.
	refusedEarly int
	// lags are the max_lag values each path was asked with ("" without).
	lags map[string]map[string]bool
	// tsZone is the tz /timeseries was last asked with ("" without).
	tsZone string
	// before, when set, is a from whose /channels, /fallback and
	// /timeseries answer other rates (SMS 3 of 4 delivered, in every
	// bucket too; 2 of 4 journeys with fallback, the SMS path 1 of 2
	// delivered and no SMS>VIBER), or fail with 503 under failBefore;
	// beforeQueries are the queries asked with it.
	// refuseBefore answers it 400, as the API a window before its
	// earliest; emptyBefore answers /fallback no journeys and
	// /timeseries no channel.
	before        string
	failBefore    bool
	refuseBefore  bool
	emptyBefore   bool
	beforeQueries []string
	// rulesReads counts /alerts/rules calls; rules, when set, is their
	// answer in place of rulesInForce.
	rulesReads int
	rules      any
	// sloReads counts /slo calls; slo, when set, is their answer in place
	// of one without an objective.
	sloReads int
	slo      any
}

// rulesInForce is /alerts/rules: the reporter's default rules, PUSH's
// delivery rate off, as reporter.ReportsConfig.InForce says them.
var rulesInForce = (&reporter.ReportsConfig{Alerts: "*/5 * * * *", AlertRepeat: 4 * time.Hour, Rules: reporter.AlertRules{Window: time.Hour, MinDeliveryRate: 0.8,
	ChannelMinDeliveryRate: reporter.ChannelRates{"PUSH": 0}, MinSettled: 50, MaxLatencyP95: time.Minute, MaxFallbackRate: 0.2, MinOTPs: 50, DropConfidence: 0.95}}).InForce()

// lagsOf are the max_lag values path was asked with.
func (f *fakeAPI) lagsOf(path string) map[string]bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.lags[path])
}

func (f *fakeAPI) lastEventQuery() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.eventQueries) == 0 {
		return ""
	}
	return f.eventQueries[len(f.eventQueries)-1]
}

func (f *fakeAPI) set(fn func(f *fakeAPI)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// channelReads counts every /channels call.
func (f *fakeAPI) channelReads() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.reads {
		n += c
	}
	return n
}

// newFakeAPI is a fakeAPI answering every request, or with token set
// only those bearing it.
func newFakeAPI(token string) *fakeAPI {
	return &fakeAPI{fail: map[string]int{}, reads: map[string]int{}, fallbackReads: map[string]int{}, token: token}
}

func (f *fakeAPI) readsFrom(from string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads[from]
}

func (f *fakeAPI) fallbackReadsFrom(from string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fallbackReads[from]
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from, to := q.Get("from"), q.Get("to")
	f.mu.Lock()
	status, hold, final, empty, errs, tsAsOf, token, dead := f.fail[r.URL.Path], f.hold, f.final, f.empty, f.errors, f.tsAsOf, f.token, f.deadLetters
	lost := f.lost
	episodes, firing, silences, rules := f.episodes, f.firing, f.silences, f.rules
	isBefore := f.before != "" && from == f.before
	emptyBefore := isBefore && f.emptyBefore
	if isBefore {
		f.beforeQueries = append(f.beforeQueries, r.URL.Path+"?"+r.URL.RawQuery)
		if f.failBefore {
			status = http.StatusServiceUnavailable
		}
		if f.refuseBefore {
			status = http.StatusBadRequest
		}
	}
	if r.URL.Path == "/api/v1/channels" {
		f.reads[from]++
	}
	if r.URL.Path == "/api/v1/fallback" {
		f.fallbackReads[from]++
	}
	if r.URL.Path == "/api/v1/alerts/rules" {
		f.rulesReads++
	}
	if r.URL.Path == "/api/v1/slo" {
		f.sloReads++
	}
	slo := f.slo
	if r.URL.Path == "/api/v1/events" {
		f.eventQueries = append(f.eventQueries, r.URL.RawQuery)
	}
	if r.URL.Path == "/api/v1/report" {
		f.reportQueries = append(f.reportQueries, r.URL.RawQuery)
	}
	if r.URL.Path == "/api/v1/timeseries" {
		f.tsZone = q.Get("tz")
	}
	if f.lags == nil {
		f.lags = map[string]map[string]bool{}
	}
	if f.lags[r.URL.Path] == nil {
		f.lags[r.URL.Path] = map[string]bool{}
	}
	f.lags[r.URL.Path][q.Get("max_lag")] = true
	if errs == nil {
		errs = []any{}
	}
	if episodes == nil {
		episodes = []any{}
	}
	if firing == nil {
		firing = []any{}
	}
	f.mu.Unlock()
	problem := func(status int, title, detail string) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"title": title, "status": status, "detail": detail})
	}
	if token != "" && r.Header.Get("Authorization") != "Bearer "+token {
		problem(http.StatusUnauthorized, "Unauthorized", "a valid API token is required")
		return
	}
	// As the API: a window starting before 2000 is refused.
	if t, err := time.Parse(time.RFC3339, from); err == nil && t.Year() < 2000 {
		f.mu.Lock()
		f.refusedEarly++
		f.mu.Unlock()
		status = http.StatusBadRequest
	}
	if status == http.StatusBadRequest {
		problem(status, "Invalid time window", "from: "+from+" is outside 2000-01-01T00:00:00Z … 2036-12-07T00:00:00Z")
		return
	}
	if status != 0 {
		problem(status, "Alert state unavailable", "NATS did not answer for the alerts' state")
		return
	}
	pending := 1
	if final || empty {
		pending = 0
	}
	unrecoverable := 0
	if lost {
		unrecoverable = pending
	}
	completeness := map[string]any{"pending": pending, "awaiting_reconciliation": 0, "unrecoverable": unrecoverable, "settled_until": nil, "final": pending == 0}
	if pending > 0 {
		completeness["settled_until"] = from
	}
	var v any
	switch p := r.URL.Path; {
	case p == "/api/v1/status":
		st := map[string]any{"modules": []string{"reporter"}, "at": asOf, "stream": map[string]any{"messages": 5, "last_message": asOf}, "warnings": []string{}}
		if dead != nil {
			st["dead_letters"] = dead
		}
		v = st
	case p == "/api/v1/alerts/firing":
		v = map[string]any{"firing": firing}
	case p == "/api/v1/alerts/silences" && r.Method == http.MethodGet:
		if silences == nil {
			silences = []any{}
		}
		v = map[string]any{"silences": silences}
	case p == "/api/v1/alerts/silences" && r.Method == http.MethodPost:
		body, _ := io.ReadAll(r.Body)
		var req struct {
			Rule, Channel, Duration, Comment string
			CreatedBy                        string `json:"created_by"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			problem(http.StatusBadRequest, "Invalid silence", err.Error())
			return
		}
		d, err := time.ParseDuration(req.Duration)
		if days, ok := strings.CutSuffix(req.Duration, "d"); ok {
			n, _ := strconv.Atoi(days)
			d, err = time.Duration(n)*24*time.Hour, nil
		}
		if err != nil {
			problem(http.StatusBadRequest, "Invalid silence", "duration: "+err.Error())
			return
		}
		now := time.Now().UTC()
		s := map[string]any{"id": fmt.Sprintf("7a1b2c3d-0000-4000-8000-%012d", now.UnixNano()%1e12), "starts_at": now.Format(time.RFC3339), "ends_at": now.Add(d).Format(time.RFC3339),
			"comment": req.Comment, "created_by": req.CreatedBy, "created_at": now.Format(time.RFC3339), "state": "active"}
		if req.Rule != "" {
			s["rule"] = req.Rule
		}
		if req.Channel != "" {
			s["channel"] = req.Channel
		}
		f.set(func(f *fakeAPI) {
			f.silenceChanges = append(f.silenceChanges, "POST "+string(body))
			f.silences = append(slices.Clone(f.silences), s)
		})
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(s)
		return
	case strings.HasPrefix(p, "/api/v1/alerts/silences/") && r.Method == http.MethodDelete:
		id := strings.TrimPrefix(p, "/api/v1/alerts/silences/")
		var ended map[string]any
		f.set(func(f *fakeAPI) {
			f.silenceChanges = append(f.silenceChanges, "DELETE "+id)
			list := slices.Clone(f.silences)
			for i, s := range list {
				if s.(map[string]any)["id"] == id {
					ended = maps.Clone(s.(map[string]any))
					ended["state"], ended["ends_at"] = "expired", time.Now().UTC().Format(time.RFC3339)
					list[i] = ended
				}
			}
			f.silences = list
		})
		if ended == nil {
			problem(http.StatusNotFound, "No such silence", id)
			return
		}
		v = ended
	case p == "/api/v1/alerts/rules":
		v = rulesInForce
		if rules != nil {
			v = rules
		}
	case p == "/api/v1/alerts/test":
		v = map[string]any{"webhook": map[string]any{"sent": true}, "alertmanagers": []any{
			map[string]any{"sent": false, "error": "alertmanager http://am-0:9093/api/v2/alerts answered 404 Not Found: no such route"}, map[string]any{"sent": true}}}
	case p == "/api/v1/alerts/episodes":
		v = map[string]any{"from": from, "to": to, "episodes": episodes}
	case p == "/api/v1/channels":
		if hold != nil {
			select {
			case <-hold:
			case <-r.Context().Done():
				return
			}
		}
		chs := []any{map[string]any{"channel": "SMS", "attempts": 3, "delivered": 2, "failed": 0, "undeliverable": 0, "timed_out": 0, "pending": pending,
			"delivery_rate": 1, "latency_ms": map[string]any{"p50": 2000, "p95": 3000}, "errors": errs, "unknown_status": 0,
			"recovered_by_polling": 0, "unrecoverable": 0, "verification": nil}}
		if empty {
			chs = []any{}
		}
		if isBefore {
			chs = []any{map[string]any{"channel": "SMS", "attempts": 4, "delivered": 3, "failed": 1, "undeliverable": 1, "timed_out": 0, "pending": 0,
				"delivery_rate": 0.75, "latency_ms": map[string]any{"p50": 2000, "p95": 3000}, "errors": []any{}, "unknown_status": 0,
				"recovered_by_polling": 0, "unrecoverable": 0, "verification": nil}}
		}
		v = map[string]any{"from": from, "to": to, "as_of": asOf, "channels": chs, "completeness": completeness}
	case p == "/api/v1/fallback":
		v = map[string]any{"from": from, "to": to, "as_of": asOf, "otps": 3, "fallback_otps": 1, "fallback_rate": 0.3333, "resends": 0,
			"outcomes": map[string]any{"delivered_primary": 1, "delivered_fallback": 1, "failed": 0, "pending": pending},
			"paths": []any{map[string]any{"path": "SMS", "otps": 2, "delivered": 1, "failed": 0, "pending": 1, "delivery_rate": 1},
				map[string]any{"path": "SMS>VIBER", "otps": 16, "delivered": 13, "failed": 3, "pending": 0, "delivery_rate": 0.8125}},
			"time_to_deliver_ms": map[string]any{"p50": 2000, "p95": 8000}, "completeness": completeness}
		if isBefore {
			v.(map[string]any)["otps"], v.(map[string]any)["fallback_otps"], v.(map[string]any)["fallback_rate"] = 4, 2, 0.5
			v.(map[string]any)["paths"] = []any{map[string]any{"path": "SMS", "otps": 2, "delivered": 1, "failed": 1, "pending": 0, "delivery_rate": 0.5}}
		}
		if emptyBefore {
			v.(map[string]any)["otps"], v.(map[string]any)["fallback_otps"], v.(map[string]any)["fallback_rate"], v.(map[string]any)["paths"] = 0, 0, nil, []any{}
		}
	case p == "/api/v1/timeseries":
		if tsAsOf == "" {
			tsAsOf = time.Now().UTC().Format(time.RFC3339Nano)
		}
		ts := fakeTimeseries(from, to, tsAsOf)
		if emptyBefore {
			ts["channels"] = []any{}
		}
		if isBefore && !emptyBefore {
			sms := ts["channels"].([]any)[0].(map[string]any)
			for i := range sms["delivery_rate"].([]any) {
				sms["delivery_rate"].([]any)[i] = 0.75
				sms["fallback_rate"].([]any)[i] = 0.5
				sms["attempts"].([]any)[i] = 5
			}
		}
		v = ts
	case p == "/api/v1/slo":
		v = slo
		if slo == nil {
			v = reporter.SLOResponse{WindowSeconds: reporter.DefaultSLOWindow.Seconds(), Burn: []reporter.SLOBurn{}, Says: "no settled journeys over the last 28 d (no objective set: --slo-delivery-rate)"}
		}
	case p == "/api/v1/resends":
		v = map[string]any{"from": from, "to": to, "as_of": asOf, "decisions": 0, "groups": []any{}, "latest": []any{}}
	case p == "/api/v1/report":
		// As the reporter names it: kind and the window's start in UTC.
		start, _ := time.Parse(time.RFC3339, from)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="otpscope-adhoc-`+start.UTC().Format("20060102T1504Z")+`.html"`)
		fmt.Fprintf(w, "<!DOCTYPE html><title>report</title><p>%s</p>", r.URL.RawQuery)
		return
	case p == "/api/v1/events":
		v = map[string]any{"as_of": asOf, "events": []any{map[string]any{"otp_id": knownOTP, "profile_id": "profile-1", "event_id": "ds-1", "channel": "SMS",
			"status": "DELIVERED", "time": asOf, "received_at": asOf, "source": "webhook"}}, "next": ""}
	case strings.HasPrefix(p, "/api/v1/otps/"):
		id := strings.TrimPrefix(p, "/api/v1/otps/")
		if !uuidRE.MatchString(id) {
			problem(http.StatusBadRequest, "Bad Request", "otpId: not a UUID")
			return
		}
		if id != knownOTP {
			problem(http.StatusNotFound, "Not Found", "no stored event for OTP "+id)
			return
		}
		v = map[string]any{"otp_id": id, "profile_id": "profile-1", "path": "SMS", "primary": "SMS", "fallback": false, "resend_attempts": 0,
			"outcome": "delivered_primary", "time_to_deliver_ms": 2000, "polled_status": nil, "resends": []any{},
			"attempts":     []any{map[string]any{"channel": "SMS", "attempt": 1, "outcome": "delivered", "first_at": asOf, "delivered_at": asOf, "latency_ms": 2000}},
			"events":       []any{map[string]any{"otp_id": id, "event_id": "ds-1", "channel": "SMS", "status": "DELIVERED", "time": asOf, "received_at": asOf, "source": "webhook"}},
			"completeness": map[string]any{"pending": 0, "awaiting_reconciliation": 0, "unrecoverable": 0, "settled_until": nil, "final": true}}
	case p == "/api/v1/deadletters":
		if hold != nil {
			select {
			case <-hold:
			case <-r.Context().Done():
				return
			}
		}
		v = map[string]any{"deadLetters": []any{}}
	default:
		problem(http.StatusNotFound, "Not Found", r.URL.Path)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// fakeTimeseries cuts [from, to) as the API does, in buckets of a minute
// (a window up to an hour) or an hour, aligned to the epoch, the first and
// last cut by the window, each with the same figures.
func fakeTimeseries(from, to, asOf string) map[string]any {
	f, _ := time.Parse(time.RFC3339, from)
	t, _ := time.Parse(time.RFC3339, to)
	step := time.Minute
	if t.Sub(f) > time.Hour {
		step = time.Hour
	}
	var start []string
	for b := f.Truncate(step); b.Before(t); b = b.Add(step) {
		start = append(start, b.Format(time.RFC3339))
	}
	n := len(start)
	each := func(x any) []any {
		s := make([]any, n)
		for i := range s {
			s[i] = x
		}
		return s
	}
	return map[string]any{"from": from, "to": to, "as_of": asOf, "start": start, "step_seconds": step.Seconds(),
		"channels": []any{map[string]any{"channel": "SMS", "attempts": each(3), "delivered": each(2), "failed": each(0), "delivery_rate": each(1),
			"latency_p50_ms": each(2000), "latency_p95_ms": each(3000), "otps": each(3), "fallback_otps": each(1), "fallback_rate": each(0.3333)}}}
}

// page is the console served with a fakeAPI, in a browser.
type page struct {
	t    *testing.T
	b    *browsertest.Browser
	api  *fakeAPI
	base string
}

func newPage(t *testing.T) *page { return newPageWithToken(t, "") }

// newPageWithToken is newPage for an API that answers only token (none:
// any request), the pages told to ask for one.
func newPageWithToken(t *testing.T, token string) *page { return newPageBehind(t, token, nil) }

// newPageBehind is newPageWithToken with the API behind middleware (nil:
// none), as the reporter's limit. The pages read with a 2-minute lag, as
// with the default rollup schedule.
func newPageBehind(t *testing.T, token string, middleware func(http.Handler) http.Handler) *page {
	return newPageConfigured(t, console.Config{NeedToken: token != "", MaxLag: 2 * time.Minute}, token, middleware)
}

// newPageConfigured is newPageBehind with the console's configuration cfg.
func newPageConfigured(t *testing.T, cfg console.Config, token string, middleware func(http.Handler) http.Handler) *page {
	api := newFakeAPI(token)
	r := chi.NewRouter()
	console.Mount(r, cfg)
	if middleware != nil {
		r.With(middleware).Handle("/api/v1/*", api)
	} else {
		r.Handle("/api/v1/*", api)
	}
	srv := httptest.NewServer(r)
	// Closed after the browser: a held answer ends with its request.
	t.Cleanup(srv.Close)
	return &page{t: t, b: browsertest.New(t, 3*time.Minute), api: api, base: srv.URL}
}

func (p *page) open(hash string) {
	p.t.Helper()
	p.b.Do("open "+hash, chromedp.Navigate(p.base+"/console/#"+hash))
}

func (p *page) js(what, expr string) {
	p.t.Helper()
	browsertest.Run(p.b, what, chromedp.Evaluate[any](expr))
}

// choose sets the input or select sel to value as a user would: the
// change event follows.
func (p *page) choose(what, sel, value string) {
	p.t.Helper()
	p.js(what, `(() => { const e = document.querySelector(`+jsString(sel)+`); e.value = `+jsString(value)+`; e.dispatchEvent(new Event('change')); })()`)
}

// js2 is expr's value, a string.
func (p *page) js2(what, expr string) string {
	p.t.Helper()
	return browsertest.Run(p.b, what, chromedp.Evaluate[string](expr))
}

func (p *page) is(what, expr string) bool {
	p.t.Helper()
	return browsertest.Run(p.b, what, chromedp.Evaluate[bool](expr))
}

// until waits for cond, failing the test after chromedp's 30 s.
func (p *page) until(what, cond string) {
	p.t.Helper()
	browsertest.Run(p.b, what, chromedp.Poll[bool](cond))
}

// text is sel's text content now, "(missing)" without such an element:
// unlike Browser.Text it does not wait for one.
func (p *page) text(sel string) string {
	p.t.Helper()
	return browsertest.Run(p.b, "text of "+sel, chromedp.Evaluate[string](`(document.querySelector(`+jsString(sel)+`) || { textContent: '(missing)' }).textContent`))
}

func (p *page) attr(sel, name string) string {
	p.t.Helper()
	return browsertest.Run(p.b, sel+" "+name, chromedp.AttributeValue(sel, name)).Value
}

const overviewDrawn = `!!document.querySelector('#page-overview').dataset.loaded`

// A lookup that fails hides the OTP shown before: its details never stand
// under the new id, whether the id is unknown, not a UUID, or otpscope
// does not answer.
func TestConsoleFailedLookupHidesTheLastOTP(t *testing.T) {
	p := newPage(t)
	shown := `#otp-result[data-otp="` + knownOTP + `"]`
	p.open("otp/" + knownOTP)
	p.b.Do("the known OTP", chromedp.WaitVisible(shown))
	for _, c := range []struct{ id, says, fetch string }{
		{"00000000-0000-4000-8000-000000000000", "no stored event for OTP 00000000-0000-4000-8000-000000000000", ""},
		{"not-a-uuid", "not a UUID", ""},
		{"00000000-0000-4000-8000-000000000001", "Failed to fetch", `(() => { const f = window.fetch;
			window.fetch = (u, o) => String(u).includes('/api/v1/otps/') ? Promise.reject(new TypeError('Failed to fetch')) : f(u, o); })()`},
	} {
		if c.fetch != "" {
			p.js("otpscope down", c.fetch)
		}
		p.js("look up "+c.id, `location.hash = '#otp/`+c.id+`'`)
		p.until("the error for "+c.id, `!document.querySelector('#error').hidden && document.querySelector('#error').textContent.includes(`+jsString(c.says)+`)`)
		if !p.is("result hidden", `document.querySelector('#otp-result').hidden`) {
			t.Errorf("after the lookup of %s failed (%q), %s's details are still shown", c.id, p.b.Text("#error"), knownOTP)
		}
		if c.fetch == "" {
			p.js("back to the known OTP", `location.hash = '#otp/`+knownOTP+`'`)
			p.b.Do("the known OTP again", chromedp.WaitVisible(shown))
		}
	}
	p.b.NoErrorsBut("lookups", "status of 404", "status of 400")
}

// One part of the overview failing (the alerts' state, NATS down) leaves
// the rest drawn and names it; every part failing (otpscope down) is said
// as before, the figures greyed.
func TestConsoleOverviewDrawsThePartsThatAnswered(t *testing.T) {
	p := newPage(t)
	p.api.set(func(f *fakeAPI) { f.fail["/api/v1/alerts/firing"] = http.StatusServiceUnavailable })
	p.open("overview")
	p.until("the overview drawn", overviewDrawn)
	if got := p.b.Text(`#channels tr[data-channel="SMS"] [data-field="attempts"]`); got != "3" {
		t.Errorf("SMS attempts = %q; want 3", got)
	}
	if got := p.b.Text("#error"); !strings.Contains(got, "alert rules firing now") || !strings.Contains(got, "NATS did not answer for the alerts' state") {
		t.Errorf("error = %q; want the part that failed named, with the API's detail", got)
	}
	if got := p.b.Text("#firing"); !strings.Contains(got, "not loaded") {
		t.Errorf("firing line = %q; want it to say it did not load", got)
	}
	if p.is("stale", `document.querySelector('main').classList.contains('stale')`) {
		t.Error("the figures that answered are greyed as stale")
	}
	// The same part failing at the next refresh is not said again: the
	// error line is role=alert, each write announced.
	p.js("count the writes to the error", `window.errorWrites = 0; new MutationObserver(() => window.errorWrites++).observe(document.querySelector('#error'), { childList: true, subtree: true, characterData: true, attributes: true })`)
	loaded := p.attr("#page-overview", "data-loaded")
	p.until("the next refresh drawn", `document.querySelector('#page-overview').dataset.loaded !== `+jsString(loaded))
	if n := browsertest.Run(p.b, "writes", chromedp.Evaluate[int](`window.errorWrites`)); n != 0 {
		t.Errorf("a refresh with the same part failing touched #error %d times; want 0", n)
	}
	p.b.Screenshot("console-part-failed")
	p.js("otpscope down", `(() => { const f = window.fetch;
		window.fetch = (u, o) => String(u).includes('/api/v1/') ? Promise.reject(new TypeError('Failed to fetch')) : f(u, o); })()`)
	p.b.Do("refresh", chromedp.Click("#refresh"))
	p.until("said unreachable", `document.querySelector('#error').textContent.includes('not answering since') &&
		document.querySelector('main').classList.contains('stale')`)
	p.b.NoErrorsBut("overview", "status of 503")
}

// A new window's load greys the old window's figures and says what is
// coming, until its answer is drawn.
func TestConsoleSaysItIsLoadingAnotherWindow(t *testing.T) {
	p := newPage(t)
	p.open("overview")
	p.until("the last hour drawn", overviewDrawn)
	before := p.attr("#page-overview", "data-loaded")
	release := make(chan struct{})
	p.api.set(func(f *fakeAPI) { f.hold = release })
	p.choose("last 7 days", "#range", "7d")
	p.until("loading said", `document.querySelector('main').classList.contains('loading') && !document.querySelector('#loading').hidden`)
	if got := p.text("#loading"); got != "loading last 7 days…" {
		t.Errorf("loading says %q; want %q", got, "loading last 7 days…")
	}
	if got := p.attr("#page-overview", "data-loaded"); got != before {
		t.Errorf("the overview drew %s before its answer came; want %s still", got, before)
	}
	close(release)
	p.until("the 7 days drawn", `document.querySelector('#page-overview').dataset.loaded !== '`+before+`' &&
		!document.querySelector('main').classList.contains('loading') && document.querySelector('#loading').hidden`)
	from, _ := time.Parse(time.RFC3339, p.attr("#shown", "data-from"))
	to, _ := time.Parse(time.RFC3339, p.attr("#shown", "data-to"))
	if to.Sub(from) != 7*24*time.Hour {
		t.Errorf("drawn window %s … %s; want 7 days", from, to)
	}
	p.b.NoErrors("loading")
}

// A page without a window (Dead letters, Backups) hides the window bar:
// its loads are still said, and greyed, above the page.
func TestConsoleSaysItIsLoadingAPageWithoutAWindow(t *testing.T) {
	p := newPage(t)
	p.open("deadletters")
	p.until("the dead letters drawn", `!!document.querySelector('#page-deadletters').dataset.loaded && document.querySelector('#window').hidden`)
	release := make(chan struct{})
	p.api.set(func(f *fakeAPI) { f.hold = release })
	p.b.Do("reload", chromedp.Click("#dl-reload"))
	p.until("loading said where it shows", `document.querySelector('main').classList.contains('loading') &&
		document.querySelector('#loading').getClientRects().length > 0`)
	if got := p.text("#loading"); got != "loading dead letters…" {
		t.Errorf("loading says %q; want %q", got, "loading dead letters…")
	}
	close(release)
	p.until("drawn", `!document.querySelector('main').classList.contains('loading') && document.querySelector('#loading').hidden`)
	p.b.NoErrors("loading dead letters")
}

// The page says when its figures were read (as_of), and reads a custom
// window again while attempts in it may still settle, no longer once its
// answer is final.
func TestConsoleReadsAFixedWindowUntilFinal(t *testing.T) {
	p := newPage(t)
	p.open("overview")
	p.until("the overview drawn", overviewDrawn)
	if got := p.text("#read-at"); got != "as of 09:12:44Z" {
		t.Errorf("read-at = %q; want %q", got, "as of 09:12:44Z")
	}
	const from = "2026-06-01T00:00:00Z"
	p.pendingCustomDay(from)
	p.api.set(func(f *fakeAPI) { f.final = true })
	p.until("the final answer drawn", `document.querySelector('#completeness').textContent.includes('these figures are final')`)
	if n := p.readAgain(p.api.readsFrom, from); n > 0 {
		t.Errorf("a final fixed window was read %d more times", n)
	}
	p.b.NoErrors("fixed window")
}

// A fixed window whose pending attempts are all unrecoverable (their
// webhooks lost, and tyntec could not tell their outcome: pending for good)
// is not read again either: nothing in it can still settle.
func TestConsoleStopsReadingAWindowLeftWithTheUnrecoverable(t *testing.T) {
	p := newPage(t)
	p.open("overview")
	p.until("the overview drawn", overviewDrawn)
	const from = "2026-06-01T00:00:00Z"
	p.pendingCustomDay(from)
	p.api.set(func(f *fakeAPI) { f.lost = true })
	p.until("the unrecoverable attempt drawn", `document.querySelector('#completeness').textContent.includes('1 unrecoverable, pending for good')`)
	if n := p.readAgain(p.api.readsFrom, from); n > 0 {
		t.Errorf("a fixed window with nothing left to settle was read %d more times", n)
	}
	// The journeys page alike.
	p.open("journeys")
	p.until("the journeys drawn", `(document.querySelector('#page-journeys').dataset.loaded || '') === '`+from+`/2026-06-02T00:00:00Z'`)
	if n := p.readAgain(p.api.fallbackReadsFrom, from); n > 0 {
		t.Errorf("the journeys of a fixed window with nothing left to settle were read %d more times", n)
	}
	p.b.NoErrors("unrecoverable window")
}

// pendingCustomDay sets the window to the day from from (UTC) and waits
// until its answer, an attempt pending, has been read twice: the page
// reads it again.
func (p *page) pendingCustomDay(from string) {
	p.t.Helper()
	start, err := time.Parse(time.RFC3339, from)
	if err != nil {
		p.t.Fatal(err)
	}
	const wall = "2006-01-02T15:04:05"
	f, to := start.Format(wall), start.AddDate(0, 0, 1).Format(wall)
	p.js("a custom window", `(() => { document.querySelector('#from').value = '`+f+`'; document.querySelector('#to').value = '`+to+`';
		const r = document.querySelector('#range'); r.value = 'custom'; r.dispatchEvent(new Event('change')); })()`)
	p.until("the custom window drawn", `document.querySelector('#page-overview').dataset.loaded === '`+f+`Z/`+to+`Z'`)
	polltest.Until(p.t, 30*time.Second, "the pending window read again", func() bool { return p.api.readsFrom(from) >= 2 })
}

// readAgain is how many more times than now reads counts from read over
// the next 6 s, more than the 5 s between refreshes.
func (p *page) readAgain(reads func(string) int, from string) int {
	n := reads(from)
	time.Sleep(6 * time.Second)
	return reads(from) - n
}

// With a profile set, the alerts say they are over every profile.
func TestConsoleAlertsSayTheyIgnoreTheProfile(t *testing.T) {
	p := newPage(t)
	p.open("overview")
	p.until("the overview drawn", overviewDrawn)
	if !p.is("no profile", `!!document.querySelector('#alerts-profile') && document.querySelector('#alerts-profile').hidden`) {
		t.Error("without a profile the alerts' heading speaks of one")
	}
	p.choose("a profile", "#profile", "profile-1")
	p.until("the note shown", `!document.querySelector('#alerts-profile').hidden`)
	if got := p.text("#alerts-profile"); !strings.Contains(got, "over every profile") {
		t.Errorf("alerts heading note = %q", got)
	}
	// A channel filter keeps the journeys it was primary in: said.
	if got := p.text("#fallback-summary"); strings.Contains(got, "primary") {
		t.Errorf("without a channel the journeys say %q", got)
	}
	p.choose("a channel", "#channel", "sms")
	p.until("the journeys of SMS", `document.querySelector('#fallback-summary').textContent.includes('journeys whose primary channel is SMS')`)
	p.b.NoErrors("profile")
}

// Journeys says how final its figures are, and shows the API's per-path
// rate, which does not count pending journeys as failed.
func TestConsoleJourneysCountPendingAsNoFailure(t *testing.T) {
	p := newPage(t)
	p.open("journeys")
	p.until("journeys drawn", `!!document.querySelector('#page-journeys').dataset.loaded`)
	if got := p.text("#journey-completeness"); !strings.HasPrefix(got, "1 attempt still pending") {
		t.Errorf("journeys completeness = %q; want the pending attempt said", got)
	}
	// SMS: 2 journeys, 1 delivered, 1 pending: 100.0 %, where delivered /
	// journeys, 50 %, would call the pending failed.
	if got := p.b.Text(`#paths tr[data-path="SMS"] [data-field="delivery_rate"]`); got != "100.0%" {
		t.Errorf("SMS path's delivery rate %q; want the API's 100.0%%", got)
	}
	if got := p.b.Text(`#paths tr[data-path="SMS"] [data-field="pending"]`); got != "1" {
		t.Errorf("SMS path's pending %q; want 1", got)
	}
	// 13 of 16 is 81.25 %: an exact half, which the reports (Go) write
	// 81.2 % and JavaScript's toFixed 81.3 %; the console writes the reports'.
	if got := p.b.Text(`#paths tr[data-path="SMS>VIBER"] [data-field="delivery_rate"]`); got != "81.2%" {
		t.Errorf("SMS>VIBER path's delivery rate %q; want 81.2%% as the reports write 13 of 16", got)
	}
	// Under a channel filter the window's completeness counts every
	// journey's attempts, which the page says.
	p.open("journeys?channel=VOICE")
	p.until("journeys drawn for VOICE", `(document.querySelector('#page-journeys').dataset.loaded || '') !== '' && document.querySelector('#journey-completeness').textContent.includes('first channel is VOICE')`)
	p.b.NoErrors("journeys")
}

// A window with no attempts says so, not that its figures are final; the
// Events page does not promise a login's journey in the OTP lookup.
func TestConsoleEmptyWindowAndEventsHint(t *testing.T) {
	p := newPage(t)
	p.api.set(func(f *fakeAPI) { f.empty = true })
	p.open("overview")
	p.until("the overview drawn", overviewDrawn)
	if got := p.b.Text("#completeness"); got != "There were no attempts in this window." {
		t.Errorf("empty window completeness = %q", got)
	}
	if got := p.b.Text("#ev-scope"); strings.Contains(got, "a login's journey") || !strings.Contains(got, "one OTP's own attempts") {
		t.Errorf("events hint = %q; want the OTP lookup said to show one OTP's own attempts", got)
	}
	p.b.NoErrors("empty")
}

// The overview sets each channel's delivery rate and the journeys'
// fallback rate beside the window before, as long as the window and ending
// where it starts, read with the same lag: the API's own figures for it,
// with what they are of in the tooltip. When that window does not load
// its rates say so, the window's are drawn, and the page says what failed.
func TestConsoleSetsRatesBesideTheWindowBefore(t *testing.T) {
	p := newPage(t)
	p.api.set(func(f *fakeAPI) { f.before = "2026-05-31T00:00:00Z" })
	p.open("overview")
	p.until("the overview drawn", overviewDrawn)
	p.pendingCustomDay("2026-06-01T00:00:00Z")
	cell := `#channels tr[data-channel="SMS"] [data-field="delivery_rate_before"]`
	p.until("the day before's rate drawn", `(document.querySelector(`+jsString(cell)+`) || {}).textContent === '75.0%'`)
	if got, want := p.attr(cell, "title"), "the 24 h before (2026-05-31 00:00:00Z … 2026-06-01 00:00:00Z): 3 delivered, 1 failed of 4 attempts"; got != want {
		t.Errorf("the rate before's tooltip = %q; want %q", got, want)
	}
	if got := p.text("#rate-before"); got != "the 24 h before" {
		t.Errorf("the column's heading = %q; want %q", got, "the 24 h before")
	}
	if got := p.text(`#channels tr[data-channel="SMS"] [data-field="delivery_rate"]`); got != "100.0%" {
		t.Errorf("the window's own rate = %q; want 100.0%%", got)
	}
	if got := p.text("#fallback-summary"); !strings.Contains(got, "1 with fallback (33.3%; the 24 h before 50.0% of 4)") {
		t.Errorf("the fallback summary = %q; want the day before's rate beside the day's", got)
	}
	var asked []string
	p.api.set(func(f *fakeAPI) { asked = slices.Clone(f.beforeQueries) })
	for _, path := range []string{"/api/v1/channels", "/api/v1/fallback", "/api/v1/timeseries"} {
		if !slices.ContainsFunc(asked, func(q string) bool {
			return strings.HasPrefix(q, path+"?") && strings.Contains(q, "to=2026-06-01T00%3A00%3A00Z") && strings.Contains(q, "max_lag=2m") &&
				(path != "/api/v1/timeseries" || strings.Contains(q, "step=3600")) // the day's own step
		}) {
			t.Errorf("%s was not asked for the day before up to the day's start with the page's lag (and the day's step); asked %q", path, asked)
		}
	}
	// The delivery-rate chart draws, faint, the day before's rates beside
	// the day's, bucket beside bucket; its legend and table show both.
	p.until("the faint lines said", `document.querySelector('#rate-before-note').textContent === 'Faint: the 24 h before, bucket beside bucket (2026-05-31 00:00:00Z … 2026-06-01 00:00:00Z).'`)
	if got := p.text("#chart-rate .u-legend"); !strings.Contains(got, "SMS / before") {
		t.Errorf("the rate chart's legend = %q; want SMS's row named for both lines", got)
	}
	// A chart's table: each hour's SMS figure beside the day before's.
	beside := func(id, now, was string) {
		t.Helper()
		p.b.Do("show "+id+" as a table", chromedp.Click(`#`+id+` + button.chart-data-toggle`))
		if !p.is("the day before's column of "+id, `(() => {
			const t = document.querySelector('#`+id+`-data table'), heads = [...t.querySelectorAll('thead th')].map((h) => h.textContent);
			const rows = [...t.querySelectorAll('tbody tr')];
			return heads.join('|') === 'bucket (UTC)|SMS|SMS the 24 h before' && rows.length === 24 &&
				rows.every((r) => r.cells[1].textContent === '`+now+`' && r.cells[2].textContent === '`+was+`'); })()`) {
			t.Errorf("%s's table = %q; want each hour's SMS %s beside the day before's %s", id, p.text("#"+id+"-data"), now, was)
		}
	}
	beside("chart-rate", "100.0%", "75.0%")
	// The attempts' and the fallback rate's charts the same.
	for _, id := range []string{"attempts", "fallback"} {
		if got := p.text("#" + id + "-before-note"); got != "Faint: the 24 h before, bucket beside bucket (2026-05-31 00:00:00Z … 2026-06-01 00:00:00Z)." {
			t.Errorf("the %s chart's note = %q; want the day before named", id, got)
		}
		if got := p.text("#chart-" + id + " .u-legend"); !strings.Contains(got, "SMS / before") {
			t.Errorf("the %s chart's legend = %q; want SMS's row named for both lines", id, got)
		}
	}
	beside("chart-attempts", "3", "5")
	beside("chart-fallback", "33.3%", "50.0%")
	p.b.NoErrors("the window before")
	// The day before's series is read once while the day's buckets stay
	// where they are; its channels at every refresh.
	asks := func(path string) (n int) {
		p.api.set(func(f *fakeAPI) {
			for _, q := range f.beforeQueries {
				if strings.HasPrefix(q, path+"?") {
					n++
				}
			}
		})
		return n
	}
	channels, series := asks("/api/v1/channels"), asks("/api/v1/timeseries")
	time.Sleep(6 * time.Second)
	if asks("/api/v1/channels") <= channels || asks("/api/v1/timeseries") != series || series != 1 {
		t.Errorf("over a refresh the day before's channels were asked %d times, its series %d (%d before); want the channels again, the series once", asks("/api/v1/channels")-channels, asks("/api/v1/timeseries"), series)
	}
	// A day before without journeys says so, not a rate of none.
	p.api.set(func(f *fakeAPI) { f.emptyBefore = true })
	p.until("the day before's journeys said none", `document.querySelector('#fallback-summary').textContent.includes('(33.3%; the 24 h before no journeys)')`)
	// The day before not answering: its rates say so; the day's stand.
	p.api.set(func(f *fakeAPI) { f.emptyBefore, f.failBefore = false, true })
	p.until("the failure drawn", `(document.querySelector(`+jsString(cell)+`) || {}).textContent === '–'`)
	if got := p.attr(cell, "title"); !strings.HasPrefix(got, "the 24 h before: not loaded: ") {
		t.Errorf("the rate before's tooltip = %q; want it to say it did not load", got)
	}
	if got := p.text(`#channels tr[data-channel="SMS"] [data-field="delivery_rate"]`); got != "100.0%" {
		t.Errorf("the window's own rate = %q once the day before failed; want 100.0%%", got)
	}
	if got := p.text("#fallback-summary"); !strings.Contains(got, "(33.3%; the 24 h before not loaded)") {
		t.Errorf("the fallback summary = %q; want the day before said not loaded", got)
	}
	p.until("the page says what did not load", `document.querySelector('#error').textContent.includes('Part of the overview did not load: the channels of the 24 h before (')`)
	if !p.is("the faint lines kept", `!document.querySelector('#rate-before-note').hidden`) {
		t.Error("the faint lines went with the day before's channels; want the series read before kept")
	}
	// A window before the API's earliest time is refused (400): there is
	// none to read, which is no failure. The page says nothing is wrong,
	// and once final the window is not read again.
	p.api.set(func(f *fakeAPI) { f.failBefore, f.refuseBefore, f.final = false, true, true })
	p.until("the refusal drawn", `(document.querySelector(`+jsString(cell)+`) || {}).title.startsWith('the 24 h before: none to read: Invalid time window')`)
	p.until("no error said", `document.querySelector('#error').hidden`)
	if got := p.text("#fallback-summary"); !strings.Contains(got, "(33.3%; the 24 h before none to read)") {
		t.Errorf("the fallback summary = %q; want the day before said none to read", got)
	}
	if n := p.readAgain(p.api.readsFrom, "2026-06-01T00:00:00Z"); n > 0 {
		t.Errorf("a final window whose window before is refused was read %d more times", n)
	}
}

// A window before without attempts draws no faint rate, and the notes
// under the charts say it had none rather than name faint lines; the
// attempts' faint line is at 0.
func TestConsoleSaysTheWindowBeforeHadNoAttempts(t *testing.T) {
	p := newPage(t)
	p.api.set(func(f *fakeAPI) { f.before, f.emptyBefore = "2026-05-31T00:00:00Z", true })
	p.open("overview")
	p.until("the overview drawn", overviewDrawn)
	p.pendingCustomDay("2026-06-01T00:00:00Z")
	const none = "Faint: the 24 h before, bucket beside bucket (2026-05-31 00:00:00Z … 2026-06-01 00:00:00Z): no attempts then."
	p.until("the rate's note", `document.querySelector('#rate-before-note').textContent === '`+none+`'`)
	for _, id := range []string{"attempts", "fallback"} {
		if got := p.text("#" + id + "-before-note"); got != none {
			t.Errorf("the %s chart's note = %q; want %q", id, got, none)
		}
	}
	p.b.Do("show the attempts as a table", chromedp.Click(`#chart-attempts + button.chart-data-toggle`))
	if !p.is("the day before's attempts at 0", `(() => {
		const rows = [...document.querySelectorAll('#chart-attempts-data tbody tr')];
		return rows.length === 24 && rows.every((r) => r.cells[1].textContent === '3' && r.cells[2].textContent === '0'); })()`) {
		t.Errorf("the attempts' table = %q; want each hour's 3 beside the day before's 0", p.text("#chart-attempts-data"))
	}
	p.b.NoErrors("a window before without attempts")
}

// Journeys sets each path's delivery rate and the fallback rate beside
// the window before's, as the Overview does: a path the window before did
// not take has none; that window not loading is said, and read again; one
// refused (before the API's earliest) is none to read.
func TestConsoleJourneysBesideTheWindowBefore(t *testing.T) {
	p := newPage(t)
	p.api.set(func(f *fakeAPI) { f.before = "2026-05-31T00:00:00Z" })
	p.open("journeys?range=custom&from=2026-06-01T00:00:00Z&to=2026-06-02T00:00:00Z")
	row := func(path string) string {
		return `#paths tr[data-path="` + path + `"] [data-field="delivery_rate_before"]`
	}
	p.until("the day before's rates drawn", `(document.querySelector(`+jsString(row("SMS"))+`) || {}).textContent === '50.0%'`)
	if got, want := p.attr(row("SMS"), "title"), "the 24 h before (2026-05-31 00:00:00Z … 2026-06-01 00:00:00Z): 1 delivered, 1 failed of 2 journeys"; got != want {
		t.Errorf("the SMS path's rate before: tooltip %q; want %q", got, want)
	}
	if got, want := p.attr(row("SMS>VIBER"), "title"), "no SMS>VIBER journey the 24 h before (2026-05-31 00:00:00Z … 2026-06-01 00:00:00Z)"; got != want || p.text(row("SMS>VIBER")) != "–" {
		t.Errorf("a path the day before did not take: %q, tooltip %q; want –, %q", p.text(row("SMS>VIBER")), got, want)
	}
	if got := p.text("#path-rate-before"); got != "the 24 h before" {
		t.Errorf("the column's heading = %q; want the 24 h before", got)
	}
	if got := p.text("#journey-summary"); !strings.HasSuffix(got, "(the journeys that tried a second channel, whatever became of them); the 24 h before 50.0% of 4") {
		t.Errorf("the journeys' summary = %q; want the day before's fallback rate beside the day's", got)
	}
	p.b.NoErrors("journeys beside the window before")
	p.api.set(func(f *fakeAPI) { f.failBefore = true })
	p.until("the failure drawn", `(document.querySelector(`+jsString(row("SMS"))+`) || {}).title.startsWith('the 24 h before: not loaded: ')`)
	p.until("the page says what did not load", `document.querySelector('#error').textContent.includes('Part of the journeys did not load: the journeys of the 24 h before (')`)
	if got := p.text(`#paths tr[data-path="SMS"] [data-field="delivery_rate"]`); got != "100.0%" {
		t.Errorf("the window's own SMS path rate = %q once the day before failed; want 100.0%%", got)
	}
	p.api.set(func(f *fakeAPI) { f.failBefore, f.refuseBefore = false, true })
	p.until("the refusal drawn", `(document.querySelector(`+jsString(row("SMS"))+`) || {}).title.startsWith('the 24 h before: none to read: ')`)
	p.until("no error said", `document.querySelector('#error').hidden`)
	if got := p.text("#journey-summary"); !strings.HasSuffix(got, "; the 24 h before none to read") {
		t.Errorf("the journeys' summary = %q; want the day before said none to read", got)
	}
}

// A window before whose series does not load draws no faint lines, and
// the page says so.
func TestConsoleRateChartWithoutTheWindowBefore(t *testing.T) {
	p := newPage(t)
	p.api.set(func(f *fakeAPI) { f.before, f.failBefore = "2026-05-31T00:00:00Z", true })
	p.open("overview?range=custom&from=2026-06-01T00:00:00Z&to=2026-06-02T00:00:00Z")
	p.until("the page says what did not load", `document.querySelector('#error').textContent.includes('the delivery rates of the 24 h before (')`)
	p.b.Do("show the rate as a table", chromedp.Click(`#chart-rate + button.chart-data-toggle`))
	if !p.is("no faint lines", `document.querySelector('#rate-before-note').hidden && document.querySelector('#chart-rate-data thead').textContent === 'bucket (UTC)SMS'`) {
		t.Errorf("the rate chart without the day before's series: note %q, table %q; want neither", p.text("#rate-before-note"), p.text("#chart-rate-data thead"))
	}
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// The overview says why a channel's attempts failed: its most frequent
// error codes in the table, every one in the cell's tooltip, a failure
// without a code as "(none)".
func TestConsoleChannelsShowTheirErrors(t *testing.T) {
	p := newPage(t)
	p.api.set(func(f *fakeAPI) {
		f.errors = []any{map[string]any{"code": "tyntec::sim::sms_undeliverable", "count": 110},
			map[string]any{"code": "", "count": 5}, map[string]any{"code": "tyntec::sim::sms_timeout", "count": 2}}
	})
	p.open("overview")
	p.until("the overview drawn", overviewDrawn)
	cell := `#channels tr[data-channel="SMS"] [data-field="errors"]`
	if got, want := p.text(cell+" summary"), "tyntec::sim::sms_undeliverable (110), (none) (5) +1 more"; got != want {
		t.Errorf("SMS errors cell = %q; want %q", got, want)
	}
	// Shown whole, wrapped in its column, not clipped: a count cut to
	// "(11…" read as 11 of 110.
	if !p.is("the errors cell not clipped", `(() => { const c = document.querySelector(`+jsString(cell)+`), s = c.querySelector('summary');
		return c.scrollWidth <= c.clientWidth && s.scrollWidth <= s.clientWidth && c.getBoundingClientRect().width <= 18 * parseFloat(getComputedStyle(document.documentElement).fontSize) + 1; })()`) {
		t.Error("the SMS errors cell clips its codes or counts, or is wider than its column")
	}
	// Opened (a keyboard's Enter on its summary), the cell lists them all,
	// and the 5 s refresh keeps it open and the keyboard on it.
	p.b.Do("open the errors", chromedp.Focus(cell+" summary"), chromedp.KeyEvent(kb.Enter))
	p.until("the errors listed", `document.querySelector(`+jsString(cell+" details")+`).open`)
	if got, want := p.text(cell+" ul"), "tyntec::sim::sms_undeliverable (110)(none) (5)tyntec::sim::sms_timeout (2)"; got != want {
		t.Errorf("SMS errors opened = %q; want %q", got, want)
	}
	loaded := p.attr("#page-overview", "data-loaded")
	p.until("the next refresh drawn", `document.querySelector('#page-overview').dataset.loaded !== `+jsString(loaded))
	if !p.is("still open", `document.querySelector(`+jsString(cell+" details")+`).open && document.activeElement === document.querySelector(`+jsString(cell+" summary")+`)`) {
		t.Error("after a refresh the errors are closed, or the keyboard left their summary")
	}
	// Latencies over a second in seconds, as the alerts give them.
	if got := p.text(`#channels tr[data-channel="SMS"] [data-field="latency_p95"]`); got != "3.0 s" {
		t.Errorf("SMS latency p95 cell = %q; want 3.0 s", got)
	}
	title := browsertest.Run(p.b, "errors tooltip", chromedp.Evaluate[string](`(document.querySelector(`+jsString(cell)+`) || { title: '(missing)' }).title`))
	if got, want := title, "tyntec::sim::sms_undeliverable (110)\n(none) (5)\ntyntec::sim::sms_timeout (2)"; got != want {
		t.Errorf("SMS errors tooltip = %q; want %q", got, want)
	}
	p.b.NoErrors("errors")
}

// A filter is read once applied (Enter, or leaving the field), not while it
// is typed: the 5 s refresh read "SM" of "SMS" and drew a window of nothing.
func TestConsoleReadsAFilterOnceApplied(t *testing.T) {
	p := newPage(t)
	p.open("overview")
	p.until("the overview drawn", overviewDrawn)
	p.b.Do("type SM", chromedp.SendKeys("#channel", "SM"))
	loaded := p.attr("#page-overview", "data-loaded")
	p.until("the next refresh drawn", `document.querySelector('#page-overview').dataset.loaded !== `+jsString(loaded))
	if strings.Contains(p.js2("the hash", `location.hash`), "channel=") {
		t.Errorf("a refresh read the channel being typed: %s", p.js2("the hash", `location.hash`))
	}
	p.b.Do("apply SMS", chromedp.SendKeys("#channel", "S\r"))
	p.until("the filter applied", `location.hash.includes('channel=SMS')`)
}

// A chart that did not load says so in its table too, opened after.
func TestConsoleChartTableSaysItDidNotLoad(t *testing.T) {
	p := newPage(t)
	p.api.set(func(f *fakeAPI) { f.fail["/api/v1/timeseries"] = http.StatusServiceUnavailable })
	p.open("overview")
	p.until("the overview drawn", overviewDrawn)
	p.b.Do("show the rate as a table", chromedp.Click(`#chart-rate + button.chart-data-toggle`))
	if got := p.text("#chart-rate-data"); !strings.HasPrefix(got, "not loaded: ") {
		t.Errorf("the rate's table of a chart that did not load says %q; want not loaded: …", got)
	}
	p.b.NoErrorsBut("chart table", "status of 503")
}

// The Events page's status is one of the statuses stored, picked, not
// typed: a typo cannot silently match nothing.
func TestConsoleEventsStatusIsPicked(t *testing.T) {
	p := newPage(t)
	p.open("events")
	p.until("events drawn", `!!document.querySelector('#page-events').dataset.loaded`)
	choices := browsertest.Run(p.b, "status choices", chromedp.Evaluate[string](`(() => { const s = document.querySelector('#ev-status');
		return s.tagName + ': ' + Array.from(s.options || [], (o) => o.text + '=' + o.value).join(','); })()`))
	if got := choices; got != "SELECT: any=,DISPATCHED=DISPATCHED,DELIVERED=DELIVERED,UNDELIVERABLE=UNDELIVERABLE,TIMED_OUT=TIMED_OUT,RECEIVED=RECEIVED" {
		t.Errorf("status choices = %q; want any and the statuses stored", got)
	}
	if q := p.api.lastEventQuery(); strings.Contains(q, "status=") {
		t.Errorf("with any status, /events was asked %q", q)
	}
	p.choose("pick UNDELIVERABLE", "#ev-status", "UNDELIVERABLE")
	polltest.Until(t, 30*time.Second, "/events asked for UNDELIVERABLE", func() bool { return strings.Contains(p.api.lastEventQuery(), "status=UNDELIVERABLE") })
	p.b.NoErrors("events status")
}

// The Events page's filters ride in the URL's hash beside the window: a
// reload keeps them (it went back to "any" and listed other statuses,
// saying nothing), a link carries them, and a page size of 50, the
// default, is left out.
func TestConsoleEventsFiltersInTheURL(t *testing.T) {
	p := newPage(t)
	const otp = "a4762c77-94cb-43d6-bbab-9f37e088ad11"
	p.open("events?range=24h&status=UNDELIVERABLE&source=poll&otp=" + otp + "&limit=100")
	polltest.Until(t, 30*time.Second, "/events asked with the link's filters", func() bool {
		q := p.api.lastEventQuery()
		return strings.Contains(q, "status=UNDELIVERABLE") && strings.Contains(q, "source=poll") && strings.Contains(q, "otp="+otp) && strings.Contains(q, "limit=100")
	})
	filters := func() string {
		return p.js2("the filters", `['#range', '#ev-status', '#ev-source', '#ev-otp', '#ev-limit'].map((s) => document.querySelector(s).value).join(' ')`)
	}
	if got, want := filters(), "24h UNDELIVERABLE poll "+otp+" 100"; got != want {
		t.Errorf("filters from the link = %q; want %q", got, want)
	}
	p.choose("pick DELIVERED", "#ev-status", "DELIVERED")
	p.choose("50 a page", "#ev-limit", "50")
	p.until("the hash follows", `location.hash === '#events?range=24h&status=DELIVERED&source=poll&otp=`+otp+`'`)
	p.b.Do("reload", chromedp.Reload())
	p.until("reloaded", `!!document.querySelector('#page-events').dataset.loaded`)
	if got, want := filters(), "24h DELIVERED poll "+otp+" 50"; got != want {
		t.Errorf("after a reload, filters = %q; want %q", got, want)
	}
	// Another page's hash does not take them; the Events page's own link,
	// with a query, sets the ones it lacks to their defaults.
	p.open("overview")
	p.until("the overview drawn", overviewDrawn)
	if h := p.js2("the hash", `location.hash`); strings.Contains(h, "status=") {
		t.Errorf("the overview's hash %q carries the Events page's filters", h)
	}
	p.js("a link to events", `location.hash = '#events?range=1h'`)
	p.until("the link followed", `document.querySelector('#range').value === '1h' && document.querySelector('#ev-status').value === ''`)
	if got, want := filters(), "1h    50"; got != want {
		t.Errorf("after a link without filters, filters = %q; want the defaults %q", got, want)
	}
	p.b.NoErrors("events filters in the URL")
}

// An OTP id in the URL is read as typed: %20 is a space, said as such.
func TestConsoleOTPIdInTheURLDecoded(t *testing.T) {
	p := newPage(t)
	p.open("otp/not%20an%20id")
	p.until("the id in the field", `document.querySelector('#otp-id').value === 'not an id'`)
	p.b.NoErrorsBut("otp id", "status of 400")
}

// The attempts chart says its bucket size, and draws apart (dashed) a
// bucket only partly counted: the one the answer's as_of falls in (read
// with max_lag, minutes behind the clock, it may be long over: not said to
// be "still filling"), or one cut by the window's edge. A whole bucket is
// drawn as it is.
func TestConsoleAttemptsChartMarksPartialBuckets(t *testing.T) {
	p := newPage(t)
	// The answer read at 10:59:30: the bucket of 10:59 is still filling.
	p.api.set(func(f *fakeAPI) { f.tsAsOf = "2026-06-01T10:59:30Z" })
	p.open("overview")
	p.until("the overview drawn", overviewDrawn)
	// From 10:00:30: the bucket of 10:00 is cut by the window.
	p.js("a custom hour", `(() => { document.querySelector('#from').value = '2026-06-01T10:00:30'; document.querySelector('#to').value = '2026-06-01T11:00:00';
		const r = document.querySelector('#range'); r.value = 'custom'; r.dispatchEvent(new Event('change')); })()`)
	p.until("the custom hour drawn", `document.querySelector('#page-overview').dataset.loaded === '2026-06-01T10:00:30Z/2026-06-01T11:00:00Z'`)
	if got := p.text("#attempts-caption"); got != "Attempts per minute" {
		t.Errorf("caption = %q; want %q", got, "Attempts per minute")
	}
	if got := p.attr("#chart-attempts", "data-partial"); got != "2026-06-01T10:00:00Z,2026-06-01T10:59:00Z" {
		t.Errorf("partial buckets = %q; want those of 10:00 and 10:59", got)
	}
	if got := p.text("#attempts-partial"); got != "Dashed: the first minute, only partly in the window; the last minute, counted only up to 2026-06-01 10:59:30Z (the figures' as of)." {
		t.Errorf("note = %q", got)
	}
	// The partial buckets are a line of their own (dashed), and the hour
	// before's attempts another (faint), under the channel's one legend
	// row: it shows their figures at the cursor, and hides and shows the
	// three lines.
	const legend = `[...document.querySelectorAll('#chart-attempts .u-legend .u-series')]`
	if got := p.js2("legend rows", legend+`.filter((r) => !r.hidden).map((r) => r.querySelector('th').textContent).join(',')`); got != "UTC,SMS / before" {
		t.Errorf("legend rows shown = %q; want UTC,SMS / before", got)
	}
	if !p.is("continuation", legend+`.some((r) => r.hidden && r.dataset.continues && r.textContent.includes('SMS (partial)'))`) {
		t.Error("the partial buckets are not a line of their own")
	}
	// The cursor at the first bucket (partial): SMS's row reads its 3,
	// and the hour before's.
	p.js("cursor at the first bucket", `(() => { const o = document.querySelector('#chart-attempts .u-over'), r = o.getBoundingClientRect();
		o.dispatchEvent(new MouseEvent('mousemove', { clientX: r.left + 1, clientY: r.top + r.height / 2, bubbles: true })); })()`)
	if got := p.js2("SMS at the first bucket", legend+`[1].querySelector('td').textContent`); got != "3 / 3" {
		t.Errorf("SMS's legend at the partial first bucket = %q; want 3 / 3", got)
	}
	p.js("SMS hidden", legend+`[1].querySelector('th').click()`)
	if got := p.js2("lines off", legend+`.map((r) => r.classList.contains('u-off')).join(',')`); got != "false,true,true,true" {
		t.Errorf("lines off after a click on SMS = %s; want SMS, its partial buckets and the hour before's", got)
	}
	p.js("SMS shown", legend+`[1].querySelector('th').click()`)
	if got := p.js2("lines off", legend+`.map((r) => r.classList.contains('u-off')).join(',')`); got != "false,false,false,false" {
		t.Errorf("lines off after a second click on SMS = %s; want none", got)
	}
	// The latency's p95 line goes with its p50 one: one legend row, both
	// figures at the cursor.
	const latency = `[...document.querySelectorAll('#chart-latency .u-legend .u-series')]`
	if got := p.js2("latency legend rows", latency+`.filter((r) => !r.hidden).map((r) => r.querySelector('th').textContent).join(',')`); got != "UTC,SMS p50 / p95" {
		t.Errorf("latency legend rows shown = %q; want UTC,SMS p50 / p95", got)
	}
	p.js("cursor on the latency", `(() => { const o = document.querySelector('#chart-latency .u-over'), r = o.getBoundingClientRect();
		o.dispatchEvent(new MouseEvent('mousemove', { clientX: r.left + r.width / 2, clientY: r.top + r.height / 2, bubbles: true })); })()`)
	if got := p.js2("SMS's latencies", latency+`[1].querySelector('td').textContent`); got != "2.0 s / 3.0 s" {
		t.Errorf("SMS's latency legend at the cursor = %q; want 2.0 s / 3.0 s", got)
	}
	p.b.Screenshot("console-partial-buckets")
	// Whole minutes, read after the window's end: every bucket whole.
	p.api.set(func(f *fakeAPI) { f.tsAsOf = "" })
	p.choose("whole minutes", "#from", "2026-06-01T10:00:00")
	p.until("every bucket whole", `document.querySelector('#chart-attempts').dataset.partial === ''`)
	if !p.is("no note", `document.querySelector('#attempts-partial').hidden && !document.querySelector('#chart-attempts .u-legend').textContent.includes('partial')`) {
		t.Errorf("whole buckets still said partial: %q", p.text("#attempts-partial"))
	}
	// The last 7 days, in hours: the first cut by the window, the last filling.
	p.choose("last 7 days", "#range", "7d")
	p.until("hours drawn", `document.querySelector('#attempts-caption').textContent === 'Attempts per hour'`)
	if got := p.text("#attempts-partial"); !strings.Contains(got, "the last hour, counted only up to ") {
		t.Errorf("7-day note = %q", got)
	}
	p.b.NoErrors("partial buckets")
}

// The window and filters ride in the URL's hash: a link with a custom
// window and channel opens on them, a change of window is written back,
// a reload keeps it, and another hash's query is followed.
func TestConsoleWindowInTheURL(t *testing.T) {
	p := newPage(t)
	p.open("overview?range=custom&from=2026-06-01T00:00:00Z&to=2026-06-02T00:00:00Z&channel=SMS")
	p.until("the linked window drawn", `document.querySelector('#page-overview').dataset.loaded === '2026-06-01T00:00:00Z/2026-06-02T00:00:00Z'`)
	form := func() string {
		return browsertest.Run(p.b, "the form", chromedp.Evaluate[string](`['#range', '#from', '#to', '#channel', '#profile'].map((s) => document.querySelector(s).value).join(' ') +
			(document.querySelector('#custom').hidden ? '' : ' (custom shown)')`))
	}
	// The input shows 00:00:00 as 00:00.
	if got, want := form(), "custom 2026-06-01T00:00 2026-06-02T00:00 SMS  (custom shown)"; got != want {
		t.Errorf("form = %q; want %q", got, want)
	}
	if got := p.attr("#page-overview", "data-shown"); !strings.HasSuffix(got, ", channel SMS") {
		t.Errorf("drawn for %q; want channel SMS", got)
	}
	p.choose("another end", "#to", "2026-06-03T00:00:00")
	const moved = "#overview?range=custom&from=2026-06-01T00:00:00Z&to=2026-06-03T00:00:00Z&channel=SMS"
	p.until("the hash follows", `location.hash === '`+moved+`'`)
	p.b.Do("reload", chromedp.Reload())
	p.until("the moved window drawn again", `document.querySelector('#page-overview').dataset.loaded === '2026-06-01T00:00:00Z/2026-06-03T00:00:00Z'`)
	if got, want := form(), "custom 2026-06-01T00:00 2026-06-03T00:00 SMS  (custom shown)"; got != want {
		t.Errorf("after a reload, form = %q; want %q", got, want)
	}
	// Another page's link with its own window: the form follows it.
	p.js("a link to journeys", `location.hash = '#journeys?range=7d&profile=profile-1'`)
	p.until("journeys drawn for it", `!!document.querySelector('#page-journeys').dataset.shown && document.querySelector('#page-journeys').dataset.shown.endsWith(', profile profile-1')`)
	if got, want := form(), "7d 2026-06-01T00:00 2026-06-03T00:00  profile-1"; got != want {
		t.Errorf("form = %q; want %q", got, want)
	}
	// A nav link (no query) keeps the window, and the hash says it.
	p.js("the overview's nav link", `document.querySelector('header nav a[href="#overview"]').click()`)
	p.until("the hash says the window", `location.hash === '#overview?range=7d&profile=profile-1'`)
	p.b.NoErrors("window in the URL")
}

// The reads a page repeats every 5 s (the Overview's and the Journeys'
// figures) take config.json's max_lag, the hours as the rollup job left
// them; the others, and every read without one, are exact.
func TestConsoleReadsWithTheConfiguredLag(t *testing.T) {
	p := newPage(t) // config.json: maxLag 2m
	p.open("overview")
	p.until("the overview drawn", overviewDrawn)
	p.open("journeys")
	p.until("journeys drawn", `!!document.querySelector('#page-journeys').dataset.loaded`)
	p.open("resends")
	p.until("resends drawn", `!!document.querySelector('#page-resends').dataset.loaded`)
	p.open("events")
	p.until("events drawn", `!!document.querySelector('#page-events').dataset.loaded`)
	want := map[string]string{"/api/v1/channels": "2m0s", "/api/v1/fallback": "2m0s", "/api/v1/timeseries": "2m0s", "/api/v1/resends": "2m0s",
		"/api/v1/alerts/episodes": "", "/api/v1/events": ""}
	for path, lag := range want {
		if got := p.api.lagsOf(path); !maps.Equal(got, map[string]bool{lag: true}) {
			t.Errorf("%s asked with max_lag %q; want only %q", path, slices.Sorted(maps.Keys(got)), lag)
		}
	}
	p.b.NoErrors("lagged reads")

	q := newPageConfigured(t, console.Config{}, "", nil)
	exact := q.api
	q.open("overview")
	q.until("the overview drawn", overviewDrawn)
	for _, path := range []string{"/api/v1/channels", "/api/v1/fallback", "/api/v1/timeseries"} {
		if got := exact.lagsOf(path); !maps.Equal(got, map[string]bool{"": true}) {
			t.Errorf("without a maxLag, %s asked with max_lag %q; want none", path, slices.Sorted(maps.Keys(got)))
		}
	}
	q.b.NoErrors("exact reads")
}

// Resends and Events say when they were read, as the other windowed pages
// do.
func TestConsoleResendsAndEventsSayWhenRead(t *testing.T) {
	p := newPage(t)
	for _, name := range []string{"resends", "events"} {
		p.open(name)
		p.until(name+" drawn", `!!document.querySelector('#page-`+name+`').dataset.loaded`)
		if got := p.text("#read-at"); got != "as of 09:12:44Z" {
			t.Errorf("%s: read-at = %q; want %q", name, got, "as of 09:12:44Z")
		}
	}
	p.b.NoErrors("read at")
}

// A refused token is dropped and another asked for: the page offers no
// "Forget token" for a token the API refused, nor sends it again after a
// reload; a token the API takes brings it back.
func TestConsoleRefusedTokenAsksForAnother(t *testing.T) {
	const token = "right-token-0123456789"
	p := newPageWithToken(t, token)
	p.open("overview")
	p.b.Do("asked for a token", chromedp.WaitVisible("#token"))
	p.b.Do("a wrong token", chromedp.SendKeys("#token", "wrong-token"), chromedp.Click("#sign-in"))
	p.until("refused", `!document.querySelector('#login').hidden && document.querySelector('#login-msg').textContent === 'The token was refused.'`)
	if !p.is("no forget", `document.querySelector('#logout').hidden`) {
		t.Error(`after the token was refused, "Forget token" is offered; want only the form asking for another`)
	}
	if p.is("kept", `sessionStorage.getItem('otpscope.apiToken') !== null`) {
		t.Error("the refused token is still kept in sessionStorage")
	}
	p.b.Do("the right token", chromedp.SendKeys("#token", token), chromedp.Click("#sign-in"))
	p.until("the overview drawn", overviewDrawn)
	if p.is("forget hidden", `document.querySelector('#logout').hidden`) {
		t.Error(`signed in, "Forget token" is not offered`)
	}
	p.b.NoErrorsBut("refused token", "status of 401")
}

// Dead letters never replayed are said on the Overview, with a link to
// the Dead letters page listing only those; with none, nothing is said.
func TestConsoleOverviewSaysDeadLetters(t *testing.T) {
	p := newPage(t)
	p.open("overview")
	p.until("the overview drawn", overviewDrawn)
	if !p.is("nothing said", `document.querySelector('#dead-letters').hidden`) {
		t.Errorf("without dead letters the overview says %q", p.text("#dead-letters"))
	}
	p.api.set(func(f *fakeAPI) {
		f.deadLetters = map[string]any{"pending": 3, "newest_pending": "2026-06-02T08:00:00Z"}
	})
	p.b.Do("refresh", chromedp.Click("#refresh"))
	p.until("said", `document.querySelector('#dead-letters').dataset.pending === '3' && !document.querySelector('#dead-letters').hidden`)
	if got := p.text("#dead-letters"); !strings.HasPrefix(got, "3 dead letters never replayed, the newest 2026-06-02 08:00:00Z") ||
		!strings.Contains(got, "otpscope deadletters list --pending") {
		t.Errorf("overview says %q; want the count, the newest and where to look", got)
	}
	p.b.Screenshot("console-dead-letters-warning")
	p.js("follow the link", `document.querySelector('#dead-letters a[href="#deadletters"]').click()`)
	p.until("the dead letters page", `location.hash === '#deadletters?pending=true' && !!document.querySelector('#page-deadletters').dataset.loaded`)
	if !p.is("only pending", `document.querySelector('#dl-pending').checked`) {
		t.Error("the link opens the Dead letters page listing every one; want only those never replayed")
	}
	// The hash carries it: a reload keeps it, unticked it goes.
	p.b.Do("reload", chromedp.Reload())
	p.until("reloaded, only pending", `!!document.querySelector('#page-deadletters').dataset.loaded && document.querySelector('#dl-pending').checked`)
	p.js("untick", `(() => { const c = document.querySelector('#dl-pending'); c.checked = false; c.dispatchEvent(new Event('change')); })()`)
	p.until("the hash without it", `location.hash === '#deadletters'`)
	p.b.NoErrors("dead letters")
}

// On a phone (390 px wide) the Overview fits the screen: neither the page
// nor the channels' table scrolls sideways, and every figure of a channel
// is still shown.
func TestConsoleOverviewFitsAPhone(t *testing.T) {
	p := newPage(t)
	p.b.Do("a phone's width", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	p.api.set(func(f *fakeAPI) {
		f.errors = []any{map[string]any{"code": "tyntec::sim::sms_undeliverable", "count": 110}, map[string]any{"code": "", "count": 5}}
		f.deadLetters = map[string]any{"pending": 3, "newest_pending": "2026-06-02T08:00:00Z"}
	})
	p.open("overview")
	p.until("the overview drawn", overviewDrawn)
	p.b.Screenshot("console-overview-390")
	// The channel filter offers the known channels and those shown.
	offered := browsertest.Run(p.b, "channels offered", chromedp.Evaluate[string](`[...document.querySelectorAll('#channels-seen option')].map((o) => o.value).join(',')`))
	if offered != "SMS,VOICE,VIBER,WHATSAPP,SILENT,PUSH" {
		t.Errorf("the channel filter offers %s; want the known channels (those shown among them)", offered)
	}
	// What scrolls sideways, the document or a table of the Overview's,
	// by how much.
	over := browsertest.Run(p.b, "overflow", chromedp.Evaluate[string](`[document.documentElement, document.querySelector('#channels'), document.querySelector('#alerts')]
		.filter((e) => e.scrollWidth > e.clientWidth).map((e) => (e.id || e.tagName) + ' by ' + (e.scrollWidth - e.clientWidth) + ' px').join(', ')`))
	if over != "" {
		t.Errorf("at 390 px %s scrolls sideways; want everything to fit", over)
	}
	// Every figure of SMS is on the screen, named by its column.
	cells := browsertest.Run(p.b, "SMS's cells", chromedp.Evaluate[string](`[...document.querySelectorAll('#channels tr[data-channel="SMS"] td')].map((td) => {
		const r = td.getBoundingClientRect(), label = getComputedStyle(td, '::before').content;
		return (r.width > 0 && r.right <= innerWidth ? '' : 'off screen: ') + label + '=' + td.textContent; }).join('; ')`))
	want := `"channel"=SMS; "attempts"=3; "delivered"=2; "failed"=0; "pending"=1; "unrecoverable"=0; "delivery rate"=100.0%; "the hour before"=100.0%; "latency p50"=2.0 s; "latency p95"=3.0 s; "errors"=tyntec::sim::sms_undeliverable (110), (none) (5)`
	if cells != want {
		t.Errorf("at 390 px SMS's cells: %s\nwant %s", cells, want)
	}
	// The other pages' tables are cards too: nothing scrolls sideways, and
	// each cell is named by its column.
	for _, pg := range []string{"journeys", "events", "deadletters", "resends"} {
		p.open(pg)
		p.until(pg+" drawn", `!!document.querySelector('#page-`+pg+`').dataset.loaded`)
		over := browsertest.Run(p.b, pg+"'s overflow", chromedp.Evaluate[string](`[document.documentElement, ...document.querySelectorAll('#page-`+pg+` table')]
			.filter((e) => e.scrollWidth > e.clientWidth).map((e) => (e.id || e.tagName) + ' by ' + (e.scrollWidth - e.clientWidth) + ' px').join(', ')`))
		unnamed := browsertest.Run(p.b, pg+"'s unnamed cells", chromedp.Evaluate[int](`[...document.querySelectorAll('#page-`+pg+` tbody td:not([colspan])')].filter((td) => !td.hasAttribute('data-label')).length`))
		if over != "" || unnamed != 0 {
			t.Errorf("at 390 px %s: %q scrolls sideways, %d cells unnamed; want cards that fit", pg, over, unnamed)
		}
		p.b.Screenshot("console-" + pg + "-390")
	}
	p.b.NoErrors("390 px")
}

// At a laptop's 1024 px the overview's channels table fits the page: its
// headings wrap, its errors column too. Its width was max-content, and
// the errors column, the last, was cut off behind a sideways scroll.
func TestConsoleOverviewFitsALaptop(t *testing.T) {
	p := newPage(t)
	p.b.Do("a laptop's width", chromedp.EmulateViewport(1024, 768))
	p.api.set(func(f *fakeAPI) {
		f.errors = []any{map[string]any{"code": "tyntec::sim::sms_undeliverable", "count": 110}, map[string]any{"code": "tyntec::sim::sms_timeout", "count": 12}}
	})
	p.open("overview")
	p.until("the overview drawn", overviewDrawn)
	p.b.Screenshot("console-overview-1024")
	over := browsertest.Run(p.b, "overflow", chromedp.Evaluate[string](`[document.documentElement, document.querySelector('#channels')]
		.filter((e) => e.scrollWidth > e.clientWidth).map((e) => (e.id || e.tagName) + ' by ' + (e.scrollWidth - e.clientWidth) + ' px').join(', ')`))
	if over != "" {
		t.Errorf("at 1024 px %s scrolls sideways; want the channels table to fit", over)
	}
	off := browsertest.Run(p.b, "errors on screen", chromedp.Evaluate[bool](`(() => { const r = document.querySelector('#channels tr[data-channel="SMS"] [data-field="errors"]').getBoundingClientRect();
		return r.width > 0 && r.right <= innerWidth; })()`))
	if !off {
		t.Error("at 1024 px SMS's errors cell is not wholly on the screen")
	}
	p.b.NoErrors("1024 px")
}

// An alert's value and threshold read in the console as in its summary,
// the reports and the webhook's text (reporter.AlertFigures): seconds to
// a tenth, whole ms under a second, and a value that is not its threshold
// taking digits until it no longer reads as it. The console once said
// "10.0 s" above "10.0 s" for 10,040 ms, and "0.9 s" for 850 ms.
func TestConsoleAlertFiguresReadAsTheSummary(t *testing.T) {
	slow, low := reporter.RuleDeliverySlow, reporter.RuleDeliveryRateLow
	cases := []struct {
		rule             string
		value, threshold float64
	}{
		{slow, 10_040, 10_000}, {slow, 16_620, 10_000}, {slow, 16_250, 10_000}, {slow, 60_400, 60_000}, {slow, 60_000.5, 60_000},
		{slow, 60_000, 60_000}, {slow, 125_000, 120_000}, {slow, 850, 800}, {slow, 850.4, 850}, {slow, 850.25, 850}, {slow, 500.5, 501},
		{slow, 999.5, 900}, {slow, 1000, 999.6}, {slow, 75_000, 60_000},
		{low, 0.7996, 0.8}, {low, 0.71, 0.8}, {low, 0.8125, 0.9}, {low, 0.79995, 0.8}, {low, 0, 0.8}, {low, 0.8, 0.8},
		{reporter.RuleFallbackRateHigh, 0.2004, 0.2}, {reporter.RuleFallbackRateHigh, 0.3333, 0.2},
		{reporter.RuleErrorBudgetBurn, 14.42, 14.4}, {reporter.RuleErrorBudgetBurn, 20.25, 14.4}, {reporter.RuleErrorBudgetBurn, 6, 6}, {reporter.RuleErrorBudgetBurn, 100, 6},
	}
	var episodes []any
	for i, c := range cases {
		episodes = append(episodes, map[string]any{"id": strconv.Itoa(i), "rule": c.rule, "channel": "SMS", "state": "firing", "since": asOf, "from": asOf, "to": asOf,
			"value": c.value, "threshold": c.threshold, "volume": 10, "evaluations": 1, "summary": "…"})
	}
	episodes[0].(map[string]any)["silenced_by"] = "3f0c2a1e-9d2a-4f60-8c1b-2e7d5a9f1c33"
	p := newPage(t)
	p.api.set(func(f *fakeAPI) {
		f.episodes = episodes
		f.silences = []any{
			map[string]any{"id": "3f0c2a1e-9d2a-4f60-8c1b-2e7d5a9f1c33", "starts_at": "2026-06-02T09:12:44Z", "ends_at": "2026-06-02T11:12:44Z", "comment": "carrier outage", "created_by": "alice", "created_at": "2026-06-02T09:12:44Z", "state": "active"},
			map[string]any{"id": "7a1b2c3d-0000-4000-8000-000000000002", "starts_at": "2026-06-03T02:00:00Z", "ends_at": "2026-06-03T04:00:00Z", "comment": "maintenance", "created_at": "2026-06-02T09:12:44Z", "state": "pending"},
			map[string]any{"id": "7a1b2c3d-0000-4000-8000-000000000003", "starts_at": "2026-06-01T02:00:00Z", "ends_at": "2026-06-01T04:00:00Z", "comment": "old", "created_at": "2026-06-01T01:00:00Z", "state": "expired"}}
		f.firing = []any{map[string]any{"rule": slow, "channel": "SMS", "state": "firing", "since": asOf, "from": asOf, "to": asOf,
			"value": 10_040, "threshold": 10_000, "volume": 10, "summary": "…", "silenced_by": "3f0c2a1e-9d2a-4f60-8c1b-2e7d5a9f1c33", "silenced_until": "2026-06-02T11:12:44Z"},
			map[string]any{"rule": low, "channel": "SMS", "state": "firing", "since": asOf, "from": asOf, "to": asOf,
				"value": 0.7996, "threshold": 0.8, "volume": 10, "summary": "…",
				"before": map[string]any{"from": "2026-06-02T07:12:44Z", "to": "2026-06-02T08:12:44Z", "value": 0.947, "volume": 638}},
			map[string]any{"rule": reporter.RuleFallbackRateHigh, "state": "firing", "since": asOf, "from": asOf, "to": asOf,
				"value": 0.3, "threshold": 0.2, "volume": 10, "summary": "…", "kept": true,
				"before": map[string]any{"from": "2026-06-02T08:02:44Z", "to": "2026-06-02T08:12:44Z", "value": nil, "volume": 0}}}
	})
	p.open("overview")
	p.until("the overview drawn", overviewDrawn)
	for i, c := range cases {
		row := `#alerts tr[data-alert="` + strconv.Itoa(i) + `"] `
		v, th := reporter.AlertFigures(c.rule, c.value, c.threshold)
		if got, gotTh := p.text(row+`[data-field="value"]`), p.text(row+`[data-field="threshold"]`); got != v || gotTh != th {
			t.Errorf("%s %v above/below %v reads %q, %q; want %q, %q as reporter.AlertFigures", c.rule, c.value, c.threshold, got, gotTh, v, th)
		}
	}
	// The silences active and pending are counted beside the closed
	// list's heading, read with the overview.
	p.until("the silences counted", `document.querySelector('#silences-count').textContent === ' (1 active, 1 pending)'`)
	if p.attr("#silences", "open") != "" || p.attr("#silences-count", "class") != "silences-active" {
		t.Errorf("the silences' heading: open %q, class %q; want closed, marked active", p.attr("#silences", "open"), p.attr("#silences-count", "class"))
	}
	// A firing a silence covered says so in its state; the others do not.
	for id, want := range map[string]string{"0": "firing · silenced", "1": "firing"} {
		if got := p.text(`#alerts tr[data-alert="` + id + `"] [data-field="state"]`); got != want {
			t.Errorf("episode %s's state reads %q; want %q", id, got, want)
		}
	}
	if got := p.attr(`#alerts tr[data-alert="0"] [data-field="state"]`, "title"); got != "silence 3f0c2a1e-9d2a-4f60-8c1b-2e7d5a9f1c33 held the webhook's posts of it" {
		t.Errorf("the silenced episode's state is titled %q", got)
	}
	// Beside a firing's figure, its figure the window before, named as the
	// summary names it (an older reporter's firing has none); a rule kept
	// firing says when it last held, one a silence holds until when.
	for rule, want := range map[string]string{
		slow:                          "delivery_slow on SMS since 2026-06-02 09:12:44Z (10.04 s; silenced until 2026-06-02 11:12:44Z)",
		low:                           "; delivery_rate_low on SMS since 2026-06-02 09:12:44Z (79.96%; the hour before 94.7%)",
		reporter.RuleFallbackRateHigh: "; fallback_rate_high on all channels since 2026-06-02 09:12:44Z (30.0%; the 10 min before none to judge; kept firing: it held last at 2026-06-02 09:12:44Z)",
	} {
		if got := p.text(`#firing [data-rule="` + rule + `"]`); got != want {
			t.Errorf("firing now = %q; want %q", got, want)
		}
	}
	// Each firing, and each row's window, links to the overview of the
	// window its rule judged, on its channel, as the webhook's link does.
	for sel, want := range map[string]string{
		`#firing [data-rule="delivery_rate_low"] a`:        "#overview?range=custom&from=2026-06-02T09:12:44Z&to=2026-06-02T09:12:45Z&channel=SMS",
		`#firing [data-rule="fallback_rate_high"] a`:       "#overview?range=custom&from=2026-06-02T09:12:44Z&to=2026-06-02T09:12:45Z",
		`#alerts tr[data-alert="0"] [data-field="over"] a`: "#overview?range=custom&from=2026-06-02T09:12:44Z&to=2026-06-02T09:12:45Z&channel=SMS",
	} {
		if got := p.attr(sel, "href"); got != want {
			t.Errorf("%s links to %q; want %q", sel, got, want)
		}
	}
	p.b.Do("follow the firing's link", chromedp.Click(`#firing [data-rule="delivery_rate_low"] a`))
	p.until("the window it judged shown", `document.querySelector('#page-overview').dataset.loaded === '2026-06-02T09:12:44Z/2026-06-02T09:12:45Z' && document.querySelector('#channel').value === 'SMS'`)
	p.b.NoErrors("alert figures")
}

// The silences are counted beside the closed list's heading at every
// refresh: one added elsewhere (the CLI), or pending and begun since,
// shows without a reload. One added from the form, for the rule and
// channel chosen, and one ended with "End now" are drawn at once, and a
// refresh asked before the change does not draw the older list over them.
func TestConsoleSilencesFollowTheirChanges(t *testing.T) {
	const aliceID = "3f0c2a1e-9d2a-4f60-8c1b-2e7d5a9f1c33"
	alice := map[string]any{"id": aliceID, "rule": "delivery_rate_low", "channel": "SMS", "starts_at": "2026-06-02T09:12:44Z", "ends_at": "2099-06-02T11:12:44Z",
		"comment": "carrier outage", "created_by": "alice", "created_at": "2026-06-02T09:12:44Z", "state": "active"}
	pending := map[string]any{"id": "7a1b2c3d-0000-4000-8000-000000000002", "starts_at": "2099-06-03T02:00:00Z", "ends_at": "2099-06-03T04:00:00Z",
		"comment": "maintenance", "created_at": "2026-06-02T09:12:44Z", "state": "pending"}
	begun := maps.Clone(pending)
	begun["state"] = "active"
	counted := func(want string) string {
		return `document.querySelector('#silences-count').textContent === ` + jsString(want)
	}
	p := newPage(t)
	p.api.set(func(f *fakeAPI) { f.silences = []any{alice} })
	p.open("overview")
	p.until("the silence counted", counted(" (1 active)"))
	p.api.set(func(f *fakeAPI) { f.silences = []any{alice, pending} })
	p.until("the silence added elsewhere counted at a refresh", counted(" (1 active, 1 pending)"))
	p.api.set(func(f *fakeAPI) { f.silences = []any{alice, begun} })
	p.until("the pending silence counted active once begun", counted(" (2 active)"))

	p.b.Do("open the silences", chromedp.Click(`#silences summary`))
	p.until("both listed", `document.querySelectorAll('#silences-list li[data-state="active"]').length === 2`)
	p.js("fill the form", `(() => { const f = document.querySelector('#silence-form'); f.rule.value = 'delivery_slow'; f.channel.value = 'VOICE'; f.duration.value = '4h'; f.comment.value = ' tyntec maintenance '; f.by.value = ' carol '; })()`)
	p.b.Do("silence", chromedp.Click(`#silence-form button[type="submit"]`))
	p.until("the silence added said", `document.querySelector('#silence-result').textContent.startsWith('silenced delivery_slow on VOICE until ')`)
	p.until("the silence added counted and listed", counted(" (3 active)")+` && document.querySelectorAll('#silences-list li[data-state="active"]').length === 3`)

	p.b.Do("end alice's", chromedp.Click(`#silences-list li[data-silence="`+aliceID+`"] button`))
	p.until("the end said", `document.querySelector('#silence-result').textContent === 'ended the silence of delivery_rate_low on SMS.'`)
	p.until("the silence ended counted and listed", counted(" (2 active)")+` && document.querySelector('#silences-list li[data-silence="`+aliceID+`"]').dataset.state === 'expired'`)
	var changes []string
	p.api.set(func(f *fakeAPI) { changes = slices.Clone(f.silenceChanges) })
	if len(changes) != 2 || !strings.HasPrefix(changes[0], "POST ") || changes[1] != "DELETE "+aliceID {
		t.Fatalf("the API was asked %q; want one POST, then DELETE %s", changes, aliceID)
	}
	var req map[string]any
	if err := json.Unmarshal([]byte(strings.TrimPrefix(changes[0], "POST ")), &req); err != nil {
		t.Fatal(err)
	}
	if want := map[string]any{"rule": "delivery_slow", "channel": "VOICE", "duration": "4h", "comment": "tyntec maintenance", "created_by": "carol"}; !maps.Equal(req, want) {
		t.Errorf("the silence POSTed %v; want %v", req, want)
	}
	if got := p.text(`#silences-list li[data-silence="` + aliceID + `"]`); !strings.Contains(got, "(carrier outage, by alice)") {
		t.Errorf("alice's silence is listed as %q; want whose it is", got)
	}
	// A refresh later the list is the same: nothing older was drawn over it.
	time.Sleep(6 * time.Second)
	if got := p.text("#silences-count"); got != " (2 active)" {
		t.Errorf("after a refresh the silences count %q; want \" (2 active)\"", got)
	}
	// Who silenced is kept in the browser for the next silence.
	p.b.Do("reload", chromedp.Reload())
	p.until("the form asks for a name, carol's given", `document.querySelector('#silence-form').by.required && document.querySelector('#silence-form').by.value === 'carol'`)
	// Not read: said in the list's place, and among what did not load.
	p.api.set(func(f *fakeAPI) { f.fail["/api/v1/alerts/silences"] = http.StatusServiceUnavailable })
	p.until("the failed read said", `document.querySelector('#silences-list').textContent.startsWith('not loaded: ')`)
	p.until("the page says what did not load", `document.querySelector('#error').textContent.includes('the silences (')`)
	p.b.NoErrorsBut("silences", "status of 503")
}

// A firing a silence holds offers its silence, not another: "its
// silence…" opens the list with that silence marked and its "End now"
// focused, the form set to add a longer one; the mark stays over a
// refresh. The ended silences wait under a closed "N ended", which stays
// as the reader left it over a refresh.
func TestConsoleShowsTheSilenceHoldingAFiring(t *testing.T) {
	const aliceID, oldID = "3f0c2a1e-9d2a-4f60-8c1b-2e7d5a9f1c33", "7a1b2c3d-0000-4000-8000-000000000003"
	slow, low := reporter.RuleDeliverySlow, reporter.RuleDeliveryRateLow
	p := newPage(t)
	p.api.set(func(f *fakeAPI) {
		f.silences = []any{
			map[string]any{"id": aliceID, "rule": slow, "channel": "SMS", "starts_at": "2026-06-02T09:12:44Z", "ends_at": "2099-06-02T11:12:44Z", "comment": "carrier outage", "created_by": "alice", "created_at": "2026-06-02T09:12:44Z", "state": "active"},
			map[string]any{"id": "7a1b2c3d-0000-4000-8000-000000000002", "starts_at": "2099-06-03T02:00:00Z", "ends_at": "2099-06-03T04:00:00Z", "comment": "maintenance", "created_at": "2026-06-02T09:12:44Z", "state": "pending"},
			map[string]any{"id": oldID, "starts_at": "2026-06-01T02:00:00Z", "ends_at": "2026-06-01T04:00:00Z", "comment": "old", "created_at": "2026-06-01T01:00:00Z", "state": "expired"}}
		f.firing = []any{
			map[string]any{"rule": slow, "channel": "SMS", "state": "firing", "since": asOf, "from": asOf, "to": asOf, "value": 10_040, "threshold": 10_000, "volume": 10, "summary": "…",
				"silenced_by": aliceID, "silenced_until": "2099-06-02T11:12:44Z"},
			map[string]any{"rule": low, "channel": "VOICE", "state": "firing", "since": asOf, "from": asOf, "to": asOf, "value": 0.7, "threshold": 0.8, "volume": 10, "summary": "…"}}
	})
	p.open("overview")
	p.until("the overview drawn", overviewDrawn)
	p.until("the silences drawn", `document.querySelectorAll('#silences-list li[data-silence]').length === 3`)
	for rule, want := range map[string]string{slow: "its silence…", low: "silence…"} {
		if got := p.text(`#firing span[data-rule="` + rule + `"] + button.silence`); got != want {
			t.Errorf("%s's button reads %q; want %q", rule, got, want)
		}
	}
	// Those that hold or will are listed first; the ended one under a
	// closed "1 ended".
	if got := p.text(`#silences-ended summary`); got != "1 ended" {
		t.Errorf("the ended silences are headed %q; want \"1 ended\"", got)
	}
	if !p.is("the ended one under it, closed", `document.querySelector('#silences-ended li[data-silence="`+oldID+`"]') !== null && !document.querySelector('#silences-ended').open`) {
		t.Error("the ended silence is not under a closed \"1 ended\"")
	}
	if !p.is("the others not", `document.querySelectorAll('#silences-ended li[data-silence]').length === 1`) {
		t.Error("a silence that holds or will is listed among the ended")
	}

	p.b.Do("show the firing's silence", chromedp.Click(`#firing span[data-rule="`+slow+`"] + button.silence`))
	shown := `document.querySelector('#silences').open && [...document.querySelectorAll('#silences-list li.shown')].map((li) => li.dataset.silence).join() === '` + aliceID + `'`
	p.until("alice's silence shown", shown)
	if !p.is("its End now focused", `document.activeElement === document.querySelector('#silences-list li[data-silence="`+aliceID+`"] button')`) {
		t.Error("showing the silence did not focus its End now")
	}
	if got := p.js2("the form", `(() => { const f = document.querySelector('#silence-form'); return f.rule.value + ' ' + f.channel.value; })()`); got != slow+" SMS" {
		t.Errorf("the form is set to %q; want the firing's rule and channel", got)
	}
	p.b.Do("open the ended", chromedp.Click(`#silences-ended summary`))
	time.Sleep(6 * time.Second) // a refresh
	if !p.is("still shown", shown) || !p.is("the ended still open", `document.querySelector('#silences-ended').open`) {
		t.Error("a refresh unmarked the silence shown, or closed the ended ones")
	}
	// A firing no silence holds: the form, nothing marked.
	p.b.Do("silence the other", chromedp.Click(`#firing span[data-rule="`+low+`"] + button.silence`))
	p.until("the form focused, nothing marked", `document.activeElement === document.querySelector('#silence-form').comment && !document.querySelector('#silences-list li.shown')`)
	p.b.NoErrors("its silence")
}

// The overview lists the alert rules in force under the alerts, in the
// reporter's words, those off greyed: read once, as they are the
// reporter's flags, and again after a failed read, which says so.
func TestConsoleListsTheAlertRulesInForce(t *testing.T) {
	// A reporter without a webhook or an Alertmanager: nowhere to send a
	// test alert, which the button says.
	nowhere := newPage(t)
	nowhere.open("overview")
	nowhere.until("the rules listed", `document.querySelectorAll('#alert-rules-list li').length === 5`)
	if !nowhere.is("no test alert", `document.querySelector('#alert-test').disabled`) || !strings.Contains(nowhere.attr("#alert-test", "title"), "no --alert-webhook-url") {
		t.Errorf("without a destination the test alert's button is enabled, or does not say why not (%q)", nowhere.attr("#alert-test", "title"))
	}

	withDestinations := rulesInForce
	withDestinations.Webhook, withDestinations.Alertmanagers = true, 2
	p := newPage(t)
	p.api.set(func(f *fakeAPI) {
		f.fail["/api/v1/alerts/rules"], f.rules = http.StatusServiceUnavailable, withDestinations
	})
	p.open("overview")
	p.until("the overview drawn", overviewDrawn)
	p.until("the failed read said", `document.querySelector('#alert-rules-says').textContent.startsWith('The rules in force: not loaded: ')`)
	p.until("the page says what did not load", `document.querySelector('#error').textContent.includes('the alert rules in force (')`)
	p.api.set(func(f *fakeAPI) { delete(f.fail, "/api/v1/alerts/rules") })
	p.until("the rules listed", `document.querySelectorAll('#alert-rules-list li').length === 5`)
	p.b.Do("open the rules", chromedp.Click(`#alert-rules summary`))
	if got := p.text("#alert-rules-says"); got != rulesInForce.Says {
		t.Errorf("the rules' schedule = %q; want %q", got, rulesInForce.Says)
	}
	for _, r := range rulesInForce.Rules {
		li := `#alert-rules-list li[data-rule="` + r.Rule + `"]`
		if got, want := p.text(li), r.Rule+": "+r.Says; got != want {
			t.Errorf("the rule listed %q; want %q", got, want)
		}
		if off := p.is(r.Rule+" greyed", `document.querySelector(`+jsString(li)+`).classList.contains('hint')`); off == r.On {
			t.Errorf("%s on %v, greyed %v; want those off greyed", r.Rule, r.On, off)
		}
	}
	if got := p.text(`#alert-rules-list li[data-rule="delivery_rate_low"]`); got != "delivery_rate_low: a channel's delivery rate below 80.0% (PUSH off), with at least 50 settled attempts in the window" {
		t.Errorf("delivery_rate_low listed as %q", got)
	}
	var reads int
	p.api.set(func(f *fakeAPI) { reads = f.rulesReads })
	time.Sleep(6 * time.Second) // a refresh
	p.api.set(func(f *fakeAPI) {
		if f.rulesReads != reads || reads != 2 {
			t.Errorf("the rules read %d times, %d over a refresh; want twice (the failed read and one), none more", reads, f.rulesReads-reads)
		}
	})
	// "Send a test alert" says what each destination did with it.
	p.b.Do("send a test alert", chromedp.Click(`#alert-test`))
	p.until("the test's outcome said", `document.querySelector('#alert-test-result').dataset.sent === 'false'`)
	if got, want := p.text("#alert-test-result"), "the webhook: sent; Alertmanager 1 of 2: not sent (alertmanager http://am-0:9093/api/v2/alerts answered 404 Not Found: no such route); Alertmanager 2 of 2: sent."; got != want {
		t.Errorf("the test alert's outcome = %q; want %q", got, want)
	}
	p.b.Screenshot("console-alert-rules")
	// Refused (a read token's): said beside the button.
	p.api.set(func(f *fakeAPI) { f.fail["/api/v1/alerts/test"] = http.StatusForbidden })
	p.b.Do("send a test alert again", chromedp.Click(`#alert-test`))
	p.until("the refusal said", `document.querySelector('#alert-test-result').textContent.startsWith('not sent: ')`)
	p.b.NoErrorsBut("rules", "status of 503", "status of 403")
}

// The objective's line says how the logins stand against it, in the
// reporter's words, marked as a firing alert when the budget is spent or
// burns as fast as a page; it is read once a minute, not at every refresh,
// and says so when it did not load. Without an objective there is none.
func TestConsoleSaysTheErrorBudget(t *testing.T) {
	none := newPage(t)
	none.open("overview")
	none.until("the overview drawn", overviewDrawn)
	none.api.set(func(f *fakeAPI) {
		if f.sloReads == 0 {
			t.Error("the overview drawn without reading /api/v1/slo")
		}
	})
	if !none.is("no objective line", `document.querySelector('#slo').hidden`) {
		t.Errorf("without an objective the overview says %q", none.text("#slo"))
	}

	rate := func(v float64) *float64 { return &v }
	slo := reporter.SLOResponse{Objective: rate(0.99), WindowSeconds: reporter.DefaultSLOWindow.Seconds(),
		SLOFigures: reporter.SLOFigures{Journeys: 12371, Delivered: 12260, Failed: 85, Pending: 26, DeliveryRate: rate(12260.0 / 12345)},
		Budget:     &reporter.SLOBudget{FailuresAllowed: 123.45, Spent: 85 / 123.45, Remaining: 1 - 85/123.45},
		Burn:       []reporter.SLOBurn{{SLOWindow: reporter.SLOWindow{WindowSeconds: 3600}, Rate: rate(0)}, {SLOWindow: reporter.SLOWindow{WindowSeconds: 21600}, Rate: rate(0.85)}, {SLOWindow: reporter.SLOWindow{WindowSeconds: 259200}, Rate: rate(0.91)}},
		Says:       "99.31% of 12345 settled journeys delivered over the last 28 d (objective 99.00%): 31% of the error budget left (85 of 123.5 failures allowed); burn rate 0.0× over the last 1 h, 0.9× over the last 6 h, 0.9× over the last 3 d"}
	p := newPage(t)
	p.api.set(func(f *fakeAPI) { f.slo = slo })
	p.open("overview")
	p.until("the objective said", `!document.querySelector('#slo').hidden`)
	if got, want := p.text("#slo"), "Objective: "+slo.Says+"."; got != want {
		t.Errorf("the objective's line = %q; want %q", got, want)
	}
	if p.is("marked", `document.querySelector('#slo').classList.contains('state-firing')`) {
		t.Error("a budget with 31% left, burning under 1×, is marked as firing")
	}
	var reads int
	p.api.set(func(f *fakeAPI) { reads = f.sloReads })
	time.Sleep(6 * time.Second) // a refresh
	p.api.set(func(f *fakeAPI) {
		if f.sloReads != reads {
			t.Errorf("the objective read %d times more over a refresh; want none within a minute", f.sloReads-reads)
		}
	})

	// Burning 20× over the last hour: a page's pace, marked.
	fast := slo
	fast.Burn = []reporter.SLOBurn{{SLOWindow: reporter.SLOWindow{WindowSeconds: 3600}, Rate: rate(20)}, {SLOWindow: reporter.SLOWindow{WindowSeconds: 21600}, Rate: rate(3)}, {SLOWindow: reporter.SLOWindow{WindowSeconds: 259200}, Rate: rate(1.2)}}
	fast.Says = "burning"
	q := newPage(t)
	q.api.set(func(f *fakeAPI) { f.slo = fast })
	q.open("overview")
	q.until("marked as paging", `document.querySelector('#slo').dataset.paging === '3600' && document.querySelector('#slo').classList.contains('state-firing')`)

	// Not loaded: said in its place, and among what did not load.
	r := newPage(t)
	r.api.set(func(f *fakeAPI) { f.fail["/api/v1/slo"] = http.StatusServiceUnavailable })
	r.open("overview")
	r.until("the failed read said", `document.querySelector('#slo').textContent.startsWith('Objective: not loaded: ')`)
	r.until("the page says what did not load", `document.querySelector('#error').textContent.includes('the objective (')`)
	r.b.NoErrorsBut("slo", "status of 503")
}

// A second operator's Overview, while another client holds every place
// for analytics queries (--api-queries) past the limit's wait, is answered
// 429: the console says it waits, asks again after Retry-After and draws
// the figures, where it once drew "not loaded: Too many analytics queries
// at once".
func TestConsoleWaitsOutTooManyQueries(t *testing.T) {
	p := newPageBehind(t, "", reporter.NewLimit(1).Middleware)
	release := make(chan struct{})
	p.api.set(func(f *fakeAPI) { f.hold = release })
	held := make(chan error, 1)
	go func() {
		resp, err := http.Get(p.base + "/api/v1/channels?from=held")
		if err == nil {
			err = resp.Body.Close()
		}
		held <- err
	}()
	polltest.Until(t, 30*time.Second, "the one place taken", func() bool { return p.api.readsFrom("held") == 1 })
	p.open("overview")
	p.until("the wait said", `!document.querySelector('#busy').hidden || !!document.querySelector('#page-overview').dataset.loaded || !document.querySelector('#error').hidden`)
	if got := p.text("#busy"); !strings.HasPrefix(got, "otpscope is busy (too many analytics queries at once): asking again in 1 s") {
		t.Errorf("while it waits the page says %q; want that otpscope is busy and when it asks again", got)
	}
	p.api.set(func(f *fakeAPI) { f.hold = nil })
	close(release)
	if err := <-held; err != nil {
		t.Fatalf("the held request: %v", err)
	}
	p.until("the overview drawn", overviewDrawn+` || !document.querySelector('#error').hidden`)
	if got := p.text(`#channels tr[data-channel="SMS"] [data-field="attempts"]`); got != "3" {
		t.Errorf("SMS attempts = %q; want 3", got)
	}
	if !p.is("no error", `document.querySelector('#error').hidden`) {
		t.Errorf("the page says %q; want the overview drawn once otpscope had a place", p.text("#error"))
	}
	if !p.is("no longer waiting", `document.querySelector('#busy').hidden`) {
		t.Errorf("drawn, the page still says %q", p.text("#busy"))
	}
	p.b.NoErrorsBut("too many queries", "status of 429")
}

// A console whose first request fails (otpscope stopping, or not yet up
// behind its proxy) says since when and asks again every 5 s: its pages
// start once otpscope answers, without a reload.
func TestConsoleStartsOnceOtpscopeAnswers(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	api := newFakeAPI("")
	r := chi.NewRouter()
	r.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if down.Load() && req.URL.Path == console.Path+"config.json" {
				http.Error(w, "502 Bad Gateway", http.StatusBadGateway) // a proxy's page
				return
			}
			next.ServeHTTP(w, req)
		})
	})
	console.Mount(r, console.Config{})
	r.Handle("/api/v1/*", api)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	p := &page{t: t, b: browsertest.New(t, 3*time.Minute), api: api, base: srv.URL}
	p.open("overview")
	p.until("the console says otpscope does not answer", `!document.querySelector('#error').hidden && document.querySelector('#error').textContent.includes('otpscope is not answering since') && document.querySelector('#error').textContent.includes('HTTP 502')`)
	down.Store(false)
	p.until("the overview drawn once otpscope answers", overviewDrawn)
	if !p.is("the error gone", `document.querySelector('#error').hidden`) {
		t.Errorf("the console still says %q after otpscope answered", p.b.Text("#error"))
	}
	p.b.NoErrorsBut("a first request refused", "status of 502")
}

// The console for a keyboard and a screen reader. A nav link followed
// leaves the keyboard at the page's heading, its controls next (no element
// is named as a page's link is, so the browser's jump to the fragment goes
// nowhere else: Events' link went to its table, past the filters). Every
// chart's figures are a table on demand, the canvas left out of what is
// read. A refresh that changes nothing writes no live region again (the
// rules firing were announced every 5 s), and refreshing can be paused.
func TestConsoleForKeyboardAndScreenReader(t *testing.T) {
	p := newPage(t)
	p.open("overview")
	p.until("the overview drawn", overviewDrawn)
	if !p.is("no element named as a page", `[...document.querySelectorAll('header nav a')].every((a) => !document.getElementById(a.hash.slice(1)))`) {
		t.Error("an element has a page's name as its id: following that page's link jumps to it")
	}

	p.b.Do("Events by the keyboard", chromedp.Focus(`header nav a[href="#events"]`), chromedp.KeyEvent(kb.Enter))
	p.until("the keyboard at Events' heading", `document.activeElement === document.querySelector('#page-events h2')`)
	p.b.Do("Tab", chromedp.KeyEvent(kb.Tab))
	if got := browsertest.Run(p.b, "focused", chromedp.Evaluate[string](`document.activeElement.id`)); got != "ev-status" {
		t.Errorf("Tab from Events' heading went to %q; want its first filter, ev-status", got)
	}

	p.js("back to the overview", `location.hash = '#overview'`)
	p.until("the overview shown", `!document.querySelector('#page-overview').hidden`)
	toggle := `#chart-attempts + button.chart-data-toggle`
	p.b.Do("show the attempts as a table", chromedp.Click(toggle))
	p.until("the attempts' table", `!!document.querySelector('#chart-attempts-data table')`)
	if got := p.attr(toggle, "aria-expanded"); got != "true" {
		t.Errorf("the toggle's aria-expanded = %q; want true", got)
	}
	heads := browsertest.Run(p.b, "columns", chromedp.Evaluate[string](`[...document.querySelectorAll('#chart-attempts-data thead th')].map((th) => th.textContent).join('|')`))
	if heads != "bucket (UTC)|SMS|SMS the hour before" {
		t.Errorf("the attempts' table columns = %q; want bucket (UTC)|SMS|SMS the hour before", heads)
	}
	// The fake's last hour: a bucket a minute, 3 attempts each (as in the
	// hour before), the first only partly in the window: the window starts
	// on a second, which is a minute's first once in sixty (CI saw it).
	// The window read with the rows, in one go: a refresh between would
	// move it on.
	shown := browsertest.Run(p.b, "rows", chromedp.Evaluate[[]string](`[document.querySelector('#page-overview').dataset.loaded,
		...[...document.querySelectorAll('#chart-attempts-data tbody tr')].map((tr) => tr.textContent)]`))
	rows := shown[1:]
	first := "(partial)33"
	if strings.HasSuffix(strings.SplitN(shown[0], "/", 2)[0], ":00Z") {
		first = ":00Z33" // the window starts on a minute: its first bucket is whole
	}
	if len(rows) < 60 || !strings.HasSuffix(rows[0], first) || !strings.HasSuffix(rows[1], "Z33") {
		t.Errorf("the attempts' table rows = %q…; want 60 or more buckets of 3 beside the hour before's 3, the first ending %q", rows[:min(len(rows), 2)], first)
	}
	if !p.is("canvas left out", `[...document.querySelectorAll('.charts .uplot')].every((u) => u.getAttribute('aria-hidden') === 'true') && document.querySelectorAll('.charts .uplot').length === 4`) {
		t.Error("a chart's canvas is read by screen readers, or not every chart was drawn")
	}
	p.b.Do("show the latency as a table", chromedp.Click(`#chart-latency + button.chart-data-toggle`))
	p.until("the latency's table", `!!document.querySelector('#chart-latency-data td')`)
	if got := p.text(`#chart-latency-data tbody td`); got != "2.0 s" {
		t.Errorf("the latency table's first figure = %q; want 2.0 s, as the tables write it", got)
	}

	p.js("count the writes to the rules firing", `window.firingWrites = 0; new MutationObserver(() => window.firingWrites++).observe(document.querySelector('#firing-live'), { childList: true, subtree: true, characterData: true })`)
	loaded := p.attr("#page-overview", "data-loaded")
	p.until("the next refresh drawn", `document.querySelector('#page-overview').dataset.loaded !== `+jsString(loaded))
	if n := browsertest.Run(p.b, "writes", chromedp.Evaluate[int](`window.firingWrites`)); n != 0 {
		t.Errorf("a refresh with the same rules firing wrote the live region %d times; want 0 (each write is announced)", n)
	}
	if !p.is("one live region", `[...document.querySelectorAll('[aria-live]')].map((e) => e.id).join() === 'firing-live'`) {
		t.Error("#firing is live again: its values, moving at each evaluation, would be announced")
	}

	p.b.Do("pause refreshing", chromedp.Click("#auto-pause"))
	before := p.api.channelReads()
	time.Sleep(6 * time.Second) // more than the 5 s between refreshes
	if after := p.api.channelReads(); after != before {
		t.Errorf("paused, the overview was read %d times in 6 s; want none", after-before)
	}
	p.b.NoErrors("keyboard")
}

// A reader may read times on the browser's clock instead of UTC's: the
// window's label, the pickers (the window itself, and the link, stay the
// same instants) and the series' buckets (asked with tz) follow it, and
// the choice outlives a reload.
func TestConsoleTimesInTheBrowsersZone(t *testing.T) {
	p := newPage(t)
	p.b.Do("the browser in Kolkata", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "Asia/Kolkata"})
		return err
	}))
	const day = "2026-06-01T00:00:00Z/2026-06-02T00:00:00Z"
	p.open("overview?range=custom&from=2026-06-01T00:00:00Z&to=2026-06-02T00:00:00Z")
	p.until("the linked window drawn", `document.querySelector('#page-overview').dataset.loaded === '`+day+`'`)
	if got := p.text("#shown"); got != "2026-06-01 00:00:00Z … 2026-06-02 00:00:00Z" {
		t.Errorf("in UTC the window reads %q", got)
	}
	// Chromium names Kolkata's zone by its older name, Asia/Calcutta.
	browserTZ := p.js2("the browser's zone", `Intl.DateTimeFormat().resolvedOptions().timeZone`)
	if browserTZ != "Asia/Kolkata" && browserTZ != "Asia/Calcutta" {
		t.Fatalf("the browser's zone is %q, not Kolkata's", browserTZ)
	}
	if got := p.js2("the zones offered", `[...document.querySelectorAll('#tz option')].map((o) => o.value).join(' ')`); got != "UTC "+browserTZ {
		t.Errorf("zones offered: %q; want UTC and the browser's", got)
	}
	p.choose("Kolkata's clock", "#tz", browserTZ)
	p.until("the window read on Kolkata's clock", `document.querySelector('#shown').textContent === '2026-06-01 05:30:00+05:30 … 2026-06-02 05:30:00+05:30'`)
	if got := p.text("#utc"); got != browserTZ {
		t.Errorf("the pickers say they read %q; want %s", got, browserTZ)
	}
	p.until("the series asked on Kolkata's clock", `document.querySelector('#page-overview').dataset.loaded === '`+day+`'`)
	p.api.mu.Lock()
	tz := p.api.tsZone
	p.api.mu.Unlock()
	if tz != browserTZ {
		t.Errorf("/timeseries asked with tz %q; want %s", tz, browserTZ)
	}
	if got := p.js2("the pickers", `document.querySelector('#from').value + ' ' + document.querySelector('#to').value`); got != "2026-06-01T05:30 2026-06-02T05:30" {
		t.Errorf("pickers %q; want the same instants on Kolkata's clock", got)
	}
	if !strings.Contains(p.js2("the hash", `location.hash`), "from=2026-06-01T00:00:00Z") {
		t.Errorf("the link's window moved: %s", p.js2("the hash", `location.hash`))
	}
	// A time picked is read on Kolkata's clock.
	p.choose("from 06:00 in Kolkata", "#from", "2026-06-01T06:00:00")
	p.until("the link says 00:30 UTC", `location.hash.includes('from=2026-06-01T00:30:00Z')`)
	p.b.Do("reload", chromedp.Reload())
	p.until("drawn again on Kolkata's clock", `document.querySelector('#tz').value === '`+browserTZ+`' && document.querySelector('#shown').textContent.startsWith('2026-06-01 06:00:00+05:30')`)
	p.choose("back to UTC", "#tz", "UTC")
	p.until("the window read in UTC again", `document.querySelector('#shown').textContent === '2026-06-01 00:30:00Z … 2026-06-02 00:00:00Z'`)
	p.b.NoErrors("times in the browser's zone")
}

// The Overview saves the report of the window shown (/api/v1/report), in
// the form asked, on the zone times are read in, under the name the answer
// gives: a file, fetched with the token a plain link would not send.
func TestConsoleSavesTheWindowsReport(t *testing.T) {
	const token = "console-token-0123456789"
	p := newPageWithToken(t, token)
	dir := t.TempDir()
	p.b.Do("downloads into "+dir, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir})
		return err
	}), chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "Asia/Kolkata"})
		return err
	}))
	p.open("overview?range=custom&from=2026-06-01T00:00:00Z&to=2026-06-02T00:00:00Z&channel=sms")
	p.b.Do("sign in", chromedp.WaitVisible("#token"), chromedp.SendKeys("#token", token), chromedp.Click("#sign-in"))
	p.until("the linked window drawn", `document.querySelector('#page-overview').dataset.loaded === '2026-06-01T00:00:00Z/2026-06-02T00:00:00Z'`)
	p.b.Do("save the HTML report", chromedp.Click(`#report button[data-format="html"]`))
	const file = "otpscope-adhoc-20260601T0000Z.html"
	p.until("saved", `document.querySelector('#report-status').textContent === 'saved `+file+`'`)
	var body []byte
	polltest.Until(t, 10*time.Second, "the file written", func() bool {
		b, err := os.ReadFile(filepath.Join(dir, file))
		body = b
		return err == nil && len(b) > 0
	})
	want := "from=2026-06-01T00%3A00%3A00Z&to=2026-06-02T00%3A00%3A00Z&channel=sms&format=html"
	if !strings.Contains(string(body), want) {
		t.Errorf("the saved report = %q; want the answer to %s", body, want)
	}
	// On the browser's clock, the report is asked on its zone.
	p.js("the browser's zone", `(() => { const s = document.querySelector('#tz'); s.value = s.options[s.options.length - 1].value; s.dispatchEvent(new Event('change')); })()`)
	// Clicked once the page is drawn on that zone: a click while it redraws
	// (the charts, their notes) can land where the button was.
	p.until("drawn on the browser's zone", `document.querySelector('#shown').textContent.includes('+05:30') && !document.querySelector('main').classList.contains('loading')`)
	p.b.Do("save the CSV", chromedp.Click(`#report button[data-format="csv"]`))
	polltest.Until(t, 10*time.Second, "a second report asked", func() bool {
		p.api.mu.Lock()
		defer p.api.mu.Unlock()
		return len(p.api.reportQueries) == 2
	})
	p.api.mu.Lock()
	second := p.api.reportQueries[1]
	p.api.mu.Unlock()
	// Chromium names Kolkata's zone by its older name, Asia/Calcutta.
	if q, _ := url.ParseQuery(second); q.Get("format") != "csv" || (q.Get("tz") != "Asia/Kolkata" && q.Get("tz") != "Asia/Calcutta") {
		t.Errorf("the second report asked %s; want format=csv on the browser's zone, Kolkata's", second)
	}
	p.b.NoErrors("report")
}

// A window from the first hour of 2000, the API's earliest: its window
// before starts in 1999, which the API refuses, so the overview does not
// ask for it (each refusal would be logged by the browser as a failed
// request) and draws it as a window before with nothing to judge.
func TestConsoleDoesNotAskForAWindowBefore2000(t *testing.T) {
	p := newPage(t)
	p.open("overview?range=custom&from=2000-01-01T00:00:00Z&to=2000-01-01T01:00:00Z")
	p.until("the overview drawn", `document.querySelector('#page-overview').dataset.loaded === '2000-01-01T00:00:00Z/2000-01-01T01:00:00Z'`)
	p.api.mu.Lock()
	refused := p.api.refusedEarly
	p.api.mu.Unlock()
	if refused != 0 {
		t.Errorf("%d reads of a window starting in 1999; want none", refused)
	}
	if got := p.text("#rate-before"); got != "the 1 h before" {
		t.Errorf("the window before is named %q", got)
	}
	p.b.NoErrors("a window from 2000")
}
