package tyntec

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/otpscope/otpscope/internal/flagenv"
	"github.com/otpscope/otpscope/internal/httpurl"
	"github.com/otpscope/otpscope/internal/ops"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// DefaultBaseURL is tyntec's production API.
const DefaultBaseURL = "https://api.tyntec.com"

// Defaults of Config. DefaultRateLimit calls per DefaultRatePeriod is the
// throttling limit tyntec documents for its 2FA connector.
const (
	DefaultRateLimit  = 100
	DefaultRatePeriod = 60 * time.Second
	DefaultMaxRetries = 3
	DefaultTimeout    = 10 * time.Second
	DefaultMinBackoff = 250 * time.Millisecond
	DefaultMaxBackoff = 15 * time.Second
)

// The bounds of an answer (variables for the tests). maxBody bounds an
// answer read whole: single objects and short lists. maxListBody bounds a
// list read element by element (call.each): GET /2fa/v4/otp lists every
// OTP tyntec keeps, about 230 bytes each, so a busy account's list passes
// maxBody (an hour at 150 OTPs a second is ~120 MB); its bytes are never
// held, only the elements the caller keeps.
var (
	maxBody     int64 = 64 << 20
	maxListBody int64 = 1 << 30
)

// ErrTooLarge marks an answer past its bound. It is not retried: the same
// answer would come again.
var ErrTooLarge = errors.New("tyntec: answer too large")

// ErrBadAnswer marks a 2xx answer whose body does not read as tyntec's
// (outcome bad_answer).
var ErrBadAnswer = errors.New("tyntec: answer does not read")

// Config configures a Client. The zero value of each field means its default.
type Config struct {
	// BaseURL of the API, default DefaultBaseURL.
	BaseURL string
	// APIKey is sent in the apiKey header. Required.
	APIKey string
	// CurrentAPIKey, when set, gives the key of each request in place of
	// APIKey: the poller's key, read again from its file after a rotation.
	CurrentAPIKey func() string
	// RateLimit calls per RatePeriod are allowed for the API key, default 100 per 60 s.
	RateLimit  int
	RatePeriod time.Duration
	// RateBurst is the token bucket's size, default min(10, RateLimit). The
	// bucket refills at (RateLimit-RateBurst)/RatePeriod, so no window of
	// RatePeriod ever holds more than RateLimit calls.
	RateBurst int
	// Limiter, when set, replaces the bucket built from RateLimit: use it to
	// share one budget between clients with different base URLs.
	Limiter *rate.Limiter
	// MaxRetries after the first attempt, default 3; negative disables retries.
	MaxRetries int
	// Timeout of one HTTP attempt, default 10 s.
	Timeout time.Duration
	// MinBackoff and MaxBackoff bound the exponential backoff between retries.
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// HTTPClient, default a client with no overall timeout (Timeout applies per attempt).
	HTTPClient *http.Client
	// Registerer receives the client's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// UserAgent, default "otpscope".
	UserAgent string
	// Logger, when set, is told (sparsely) the words of tyntec's answers
	// otpscope does not know; nil logs nothing (they are counted anyway).
	Logger *slog.Logger
}

// RegisterFlags registers the operator-facing flags (--tyntec-url,
// --tyntec-api-key, ...) with the current values, else the defaults, as
// defaults: --help and the config command show what applies. On the
// command line 0 retries is none, as an operator means it (in Config 0 is
// the default, -1 none).
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.BaseURL = cmp.Or(c.BaseURL, DefaultBaseURL)
	c.RateLimit = cmp.Or(c.RateLimit, DefaultRateLimit)
	c.RatePeriod = cmp.Or(c.RatePeriod, DefaultRatePeriod)
	c.MaxRetries = cmp.Or(c.MaxRetries, DefaultMaxRetries)
	c.Timeout = cmp.Or(c.Timeout, DefaultTimeout)
	fs.StringVar(&c.BaseURL, "tyntec-url", c.BaseURL, "tyntec API base URL")
	fs.StringVar(&c.APIKey, "tyntec-api-key", c.APIKey, "tyntec API key")
	fs.IntVar(&c.RateLimit, "tyntec-rate-limit", c.RateLimit, "tyntec API calls allowed per --tyntec-rate-period")
	fs.DurationVar(&c.RatePeriod, "tyntec-rate-period", c.RatePeriod, "tyntec API rate-limit period")
	fs.Var((*retries)(&c.MaxRetries), "tyntec-max-retries", "`count` of retries of an idempotent tyntec call after the first (0 = none)")
	fs.DurationVar(&c.Timeout, "tyntec-timeout", c.Timeout, "timeout of one tyntec API request")
	// Config's 0 is the default; given, 0 is refused rather than run as it.
	flagenv.Positive(fs, "tyntec-rate-limit", "tyntec-rate-period", "tyntec-timeout")
}

// retries is --tyntec-max-retries: Config.MaxRetries with 0 meaning none.
type retries int

func (r *retries) String() string {
	if r == nil {
		return "0"
	}
	return strconv.Itoa(max(int(*r), 0))
}

func (r *retries) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return errors.New("want a whole number")
	}
	if n <= 0 {
		n = -1 // Config's none
	}
	*r = retries(n)
	return nil
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	c.BaseURL = strings.TrimRight(cmp.Or(c.BaseURL, DefaultBaseURL), "/")
	c.RateLimit = cmp.Or(c.RateLimit, DefaultRateLimit)
	c.RatePeriod = cmp.Or(c.RatePeriod, DefaultRatePeriod)
	c.RateBurst = cmp.Or(c.RateBurst, min(10, c.RateLimit))
	if c.MaxRetries == 0 {
		c.MaxRetries = DefaultMaxRetries
	} else if c.MaxRetries < 0 {
		c.MaxRetries = 0
	}
	c.Timeout = cmp.Or(c.Timeout, DefaultTimeout)
	c.MinBackoff = cmp.Or(c.MinBackoff, DefaultMinBackoff)
	c.MaxBackoff = cmp.Or(c.MaxBackoff, DefaultMaxBackoff)
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{}
	}
	c.UserAgent = cmp.Or(c.UserAgent, "otpscope")
	return c
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	d := c.withDefaults()
	if _, err := httpurl.Parse(d.BaseURL); err != nil {
		return fmt.Errorf("tyntec base URL %w", err)
	}
	if c.APIKey == "" {
		return errors.New("tyntec API key is required")
	}
	switch {
	case d.RateLimit < 1:
		return fmt.Errorf("tyntec rate limit %d: want at least 1", c.RateLimit)
	case d.RatePeriod < 0:
		return fmt.Errorf("tyntec rate period %s: want positive", c.RatePeriod)
	case d.RateBurst < 1 || d.RateBurst > d.RateLimit:
		return fmt.Errorf("tyntec rate burst %d: want 1..%d", d.RateBurst, d.RateLimit)
	case d.Timeout < 0:
		return fmt.Errorf("tyntec timeout %s: want positive", c.Timeout)
	case d.MinBackoff < 0 || d.MaxBackoff < d.MinBackoff:
		return fmt.Errorf("tyntec backoff %s..%s: want 0 < min <= max", d.MinBackoff, d.MaxBackoff)
	}
	return nil
}

// Client calls tyntec's 2FA API. It is safe for concurrent use.
type Client struct {
	cfg     Config
	limiter *rate.Limiter
	m       *metrics
	unknown *ops.Sparse // words of answers otpscope does not know; nil: not logged

	mu     sync.Mutex
	health Health
}

// Health is what the calls to tyntec have said lately: while the last
// ones failed — refused the API key, answered 5xx, or did not answer —
// since when, how many in a row and the last one's error. The streak ends
// when a call is answered (any other answer, a 404 or a 429 included:
// tyntec is there and takes the key), and is then told as recovered.
type Health struct {
	FailingSince, LastFailedAt time.Time
	Failed                     int
	// Outcome is the last failure's, as the calls' metric counts it:
	// unauthorized, server_error, timeout or network_error.
	Outcome   string
	LastError string
	// RecoveredAt is when the last streak of failures ended, Recovered
	// how many calls it had failed, and RecoveredFrom when it began.
	RecoveredAt, RecoveredFrom time.Time
	Recovered                  int
}

// Health says what the calls to tyntec have said lately.
func (cl *Client) Health() Health {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.health
}

// ForgetHealth forgets what the calls said (a replica that lost the lease
// makes none to tell otherwise).
func (cl *Client) ForgetHealth() {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	cl.health = Health{}
}

// noted records one call's outcome in the client's Health.
func (cl *Client) noted(outcome string, err error) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	now := time.Now()
	switch outcome {
	case "unauthorized", "server_error", "timeout", "network_error", "bad_answer":
	default:
		if cl.health.Failed > 0 {
			cl.health = Health{RecoveredAt: now, RecoveredFrom: cl.health.FailingSince, Recovered: cl.health.Failed}
		}
		return
	}
	if cl.health.Failed == 0 {
		cl.health.FailingSince = now
	}
	cl.health.LastFailedAt = now
	cl.health.Failed++
	cl.health.Outcome, cl.health.LastError = outcome, err.Error()
}

// New returns a Client for cfg.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("register tyntec metrics: %w", err)
	}
	lim := cfg.Limiter
	if lim == nil {
		lim = sharedLimiter(cfg)
	}
	cl := &Client{cfg: cfg, limiter: lim, m: m}
	if cfg.Logger != nil {
		cl.unknown = ops.NewSparse(cfg.Logger, "tyntec answered words otpscope does not know; taken as they came", "words")
	}
	return cl, nil
}

// wordy is an answer that carries tyntec's enumerated words (statuses,
// event types, channels): unknownWords hands each one otpscope does not
// know to note, with its field.
type wordy interface {
	unknownWords(note func(field, word string))
}

// countUnknownWords counts, and logs sparsely, the words of an answer
// otpscope does not know. The answer is taken as it came — an unknown OTP
// status is not final, an unknown event type is no delivery fact, both
// still published — so a word tyntec starts to send shows here
// (otpscope_tyntec_unknown_words_total) rather than nowhere.
func (cl *Client) countUnknownWords(op string, answer any) {
	w, ok := answer.(wordy)
	if !ok {
		return
	}
	w.unknownWords(func(field, word string) {
		cl.m.unknownWords.WithLabelValues(op, field).Inc()
		if cl.unknown != nil {
			cl.unknown.WarnOf(op+" "+field, "op", op, "field", field, "word", word)
		}
	})
}

// NewLimiter returns the token bucket that allows at most limit calls in any
// window of period: it holds burst tokens and refills at (limit-burst)/period.
func NewLimiter(limit int, period time.Duration, burst int) *rate.Limiter {
	if limit <= 1 {
		return rate.NewLimiter(rate.Every(period), 1)
	}
	// At least one token must come from refilling, or the rate would be zero.
	burst = max(1, min(burst, limit-1))
	return rate.NewLimiter(rate.Limit(float64(limit-burst)/period.Seconds()), burst)
}

// limiters holds one budget per (base URL, API key): tyntec counts calls per
// key, so every client of the process with the same key spends the same budget.
// The first client's rate settings win.
var limiters sync.Map // string → *rate.Limiter

func sharedLimiter(cfg Config) *rate.Limiter {
	key := cfg.BaseURL + "\x00" + cfg.APIKey
	l, _ := limiters.LoadOrStore(key, NewLimiter(cfg.RateLimit, cfg.RatePeriod, cfg.RateBurst))
	return l.(*rate.Limiter)
}

// call describes one API operation.
type call struct {
	op         string // metric label
	method     string
	path       string // with IDs escaped
	query      url.Values
	body       any
	idempotent bool
	// decideAgain returns a 429 at once (ErrRateLimited) rather than wait
	// it out and send again: what the call acts on may change while it
	// waits (an OTP re-sent after tyntec delivered it), so the caller
	// checks again before asking again.
	decideAgain bool
	// refusalOfTheOTP: here a 401 or 403 speaks of the OTP, not the key
	// (v1 re-send: "OTP is not valid anymore"; v1 check: a wrong code, too
	// many attempts): outcome otp_refused, an answer, not a refused key
	// (OtpscopeTyntecUnauthorized, the status's "check --tyntec-api-key").
	refusalOfTheOTP bool
	out             any // decoded on 2xx when non-nil
	// each, when set in place of out, decodes a 2xx answer's body as it
	// arrives (listEach), up to maxListBody.
	each func(*json.Decoder) error
}

// do performs c with budget, per-attempt timeout and retries. It returns the
// final status code, or an error: *APIError for a non-2xx answer (wrapped with
// the operation), or the transport or context error.
func (cl *Client) do(ctx context.Context, c call) (int, error) {
	var payload []byte
	if c.body != nil {
		var err error
		if payload, err = json.Marshal(c.body); err != nil {
			return 0, fmt.Errorf("%s: encode body: %w", c.op, err)
		}
	}
	u := cl.cfg.BaseURL + c.path
	if len(c.query) > 0 {
		u += "?" + c.query.Encode()
	}
	for attempt := 0; ; attempt++ {
		status, retryAfter, reason, err := cl.attempt(ctx, c, u, payload)
		if err == nil {
			return status, nil
		}
		if reason == "" || attempt >= cl.cfg.MaxRetries || (c.decideAgain && reason == "rate_limited") {
			return status, fmt.Errorf("%s: %w", c.op, err)
		}
		wait := retryAfter
		if wait <= 0 {
			wait = cl.backoff(attempt)
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			// Waiting would outlive the caller; report the failure now.
			return status, fmt.Errorf("%s: %w", c.op, err)
		}
		cl.m.retries.WithLabelValues(c.op, reason).Inc()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return status, fmt.Errorf("%s: %w (last error: %w)", c.op, ctx.Err(), err)
		case <-t.C:
		}
	}
}

// attempt performs one HTTP request. reason is non-empty when the failure may
// be retried: "rate_limited" for any call (tyntec refused it before acting),
// "server_error" and "timeout"/"network_error" for idempotent calls only.
func (cl *Client) attempt(ctx context.Context, c call, u string, payload []byte) (status int, retryAfter time.Duration, reason string, err error) {
	waitStart := time.Now()
	if err := cl.limiter.Wait(ctx); err != nil {
		return 0, 0, "", fmt.Errorf("wait for rate budget: %w", err)
	}
	cl.m.wait.Observe(time.Since(waitStart).Seconds())

	// The attempt ends after Timeout; a list read as it arrives, which may
	// take longer in all, once nothing arrived for Timeout.
	var (
		actx   context.Context
		cancel context.CancelFunc
		idle   *time.Timer
	)
	if c.each == nil {
		actx, cancel = context.WithTimeout(ctx, cl.cfg.Timeout)
	} else {
		actx, cancel = context.WithCancel(ctx)
		idle = time.AfterFunc(cl.cfg.Timeout, cancel)
		defer idle.Stop()
	}
	defer cancel()
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(actx, c.method, u, body)
	if err != nil {
		return 0, 0, "", fmt.Errorf("build request: %w", err)
	}
	key := cl.cfg.APIKey
	if cl.cfg.CurrentAPIKey != nil {
		key = cl.cfg.CurrentAPIKey()
	}
	req.Header.Set("apiKey", key)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", cl.cfg.UserAgent)
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}

	start := time.Now()
	resp, err := cl.cfg.HTTPClient.Do(req)
	sent := err == nil
	if sent {
		status, retryAfter, reason, err = cl.read(c, resp, idle)
	}
	cl.m.duration.WithLabelValues(c.op).Observe(time.Since(start).Seconds())
	if sent && !errors.As(err, new(*readError)) {
		return status, retryAfter, reason, err
	}
	// No whole answer: the request or the reading of its body failed.
	outcome := "network_error"
	if actx.Err() != nil || isTimeout(err) {
		outcome = "timeout"
	}
	cl.m.calls.WithLabelValues(c.op, outcome).Inc()
	if ctx.Err() != nil {
		// The caller gave up: never retry past its deadline, and nothing
		// learnt of tyntec (its Health is left as it was).
		return 0, 0, "", fmt.Errorf("%s %s: %w", c.method, c.path, ctx.Err())
	}
	err = fmt.Errorf("%s %s: %w", c.method, c.path, err)
	cl.noted(outcome, err)
	if c.idempotent {
		reason = outcome
	}
	return 0, 0, reason, err
}

// readError is the body's own read failing (the connection, the attempt's
// timeout), as opposed to what was read being wrong.
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// bodyReader reads a streamed answer up to its bound, telling a failed
// read (readError, retried like any transport failure) from an answer
// past the bound (ErrTooLarge). Each read that brings bytes puts idle off
// by timeout again.
type bodyReader struct {
	r       io.Reader
	left    int64
	idle    *time.Timer
	timeout time.Duration
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, fmt.Errorf("%w: larger than %d bytes", ErrTooLarge, maxListBody)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if n > 0 && b.idle != nil {
		b.idle.Reset(b.timeout)
	}
	if err != nil && err != io.EOF {
		err = &readError{err}
	}
	return n, err
}

// read reads a response and classifies it. A failure to read its body is
// a readError, for attempt to classify as it does a failed request.
func (cl *Client) read(c call, resp *http.Response, idle *time.Timer) (int, time.Duration, string, error) {
	defer resp.Body.Close()
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	if ok && c.each != nil {
		return resp.StatusCode, 0, "", cl.stream(c, &bodyReader{r: resp.Body, left: maxListBody, idle: idle, timeout: cl.cfg.Timeout})
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return 0, 0, "", &readError{err}
	}
	if ok && int64(len(raw)) > maxBody {
		cl.m.calls.WithLabelValues(c.op, "ok").Inc()
		cl.noted("ok", nil)
		return resp.StatusCode, 0, "", fmt.Errorf("%s %s: %w: larger than %d bytes", c.method, c.path, ErrTooLarge, maxBody)
	}
	return cl.answer(c, resp, raw) // an error's body is cut to 64 KiB there
}

// stream decodes a 2xx answer with c.each as it arrives. A failed read
// is returned as a readError; anything else wrong with the answer (not
// JSON, past maxListBody) counts the call as answered, as answer does.
func (cl *Client) stream(c call, body *bodyReader) error {
	err := c.each(json.NewDecoder(body))
	if errors.As(err, new(*readError)) {
		return err
	}
	if err != nil && !errors.Is(err, ErrTooLarge) {
		return cl.badAnswer(c, err)
	}
	cl.m.calls.WithLabelValues(c.op, "ok").Inc()
	cl.noted("ok", nil)
	if err != nil {
		return fmt.Errorf("decode %s %s answer: %w", c.method, c.path, err)
	}
	return nil
}

// badAnswer counts a 2xx whose body does not read as tyntec's (not JSON,
// another shape: a proxy's or a captive portal's page) as a failed call,
// outcome bad_answer: the poller learns nothing from it, and it must
// show in the status and OtpscopeTyntecErrors, not pass for tyntec
// answering.
func (cl *Client) badAnswer(c call, err error) error {
	err = fmt.Errorf("%s %s: %w: %w", c.method, c.path, ErrBadAnswer, err)
	cl.m.calls.WithLabelValues(c.op, "bad_answer").Inc()
	cl.noted("bad_answer", err)
	return err
}

// answer classifies a complete response.
func (cl *Client) answer(c call, resp *http.Response, raw []byte) (int, time.Duration, string, error) {
	status := resp.StatusCode
	if status >= 200 && status < 300 {
		if c.out != nil && status != http.StatusNoContent && len(bytes.TrimSpace(raw)) > 0 {
			if err := json.Unmarshal(raw, c.out); err != nil {
				return status, 0, "", cl.badAnswer(c, err)
			}
			cl.countUnknownWords(c.op, c.out)
		}
		cl.m.calls.WithLabelValues(c.op, "ok").Inc()
		cl.noted("ok", nil)
		return status, 0, "", nil
	}
	if len(raw) > 64<<10 {
		raw = raw[:64<<10]
	}
	apiErr := newAPIError(c.method, c.path, status, resp.Header, raw, time.Now())
	outcome := outcomeOf(status)
	if c.refusalOfTheOTP && outcome == "unauthorized" {
		outcome = "otp_refused"
	}
	cl.m.calls.WithLabelValues(c.op, outcome).Inc()
	cl.noted(outcome, apiErr)
	reason := ""
	switch {
	case status == http.StatusTooManyRequests:
		reason = "rate_limited"
	case status >= 500 && c.idempotent:
		reason = "server_error"
	}
	return status, apiErr.RetryAfter, reason, apiErr
}

func outcomeOf(status int) string {
	switch classOf(status) {
	case ErrBadRequest:
		return "bad_request"
	case ErrUnauthorized:
		return "unauthorized"
	case ErrNotFound:
		return "not_found"
	case ErrGone:
		return "gone"
	case ErrRateLimited:
		return "rate_limited"
	case ErrServer:
		return "server_error"
	default:
		return "other_status"
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// backoff returns the jittered delay before retry number attempt+1: a random
// duration in [d/2, d] where d = MinBackoff·2^attempt, capped at MaxBackoff.
func (cl *Client) backoff(attempt int) time.Duration {
	d := cl.cfg.MinBackoff << min(attempt, 30)
	if d <= 0 || d > cl.cfg.MaxBackoff {
		d = cl.cfg.MaxBackoff
	}
	half := d / 2
	return half + rand.N(half+1)
}

// escape escapes one path segment (an ID).
func escape(id string) string { return url.PathEscape(id) }

// getOne reads one resource (an idempotent GET).
func getOne[T any](ctx context.Context, cl *Client, op, path string) (*T, error) {
	var out T
	if _, err := cl.do(ctx, call{op: op, method: http.MethodGet, path: path, idempotent: true, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// getList reads a list of resources (an idempotent GET) filtered by q.
func getList[T any](ctx context.Context, cl *Client, op, path string, q url.Values) ([]T, error) {
	var out []T
	_, err := cl.do(ctx, call{op: op, method: http.MethodGet, path: path, query: q, idempotent: true, out: &out})
	for i := range out {
		cl.countUnknownWords(op, &out[i])
	}
	return out, err
}

// listEach reads a list of resources (an idempotent GET) filtered by q
// element by element, handing each to fn as it is decoded: a long list is
// never held whole. An attempt that fails part-way is made again, and fn
// then sees the elements again from the first, after begin (when not nil).
func listEach[T any](ctx context.Context, cl *Client, op, path string, q url.Values, begin func(), fn func(T)) error {
	_, err := cl.do(ctx, call{op: op, method: http.MethodGet, path: path, query: q, idempotent: true, each: func(dec *json.Decoder) error {
		if begin != nil {
			begin()
		}
		if tok, err := dec.Token(); err != nil {
			return err
		} else if tok != json.Delim('[') {
			return fmt.Errorf("want a JSON array, got %v", tok)
		}
		for dec.More() {
			var v T
			if err := dec.Decode(&v); err != nil {
				return err
			}
			cl.countUnknownWords(op, &v)
			fn(v)
		}
		_, err := dec.Token() // the closing ]
		return err
	}})
	return err
}

// nameQuery filters a list by name, or not at all when name is empty.
func nameQuery(name string) url.Values {
	q := url.Values{}
	if name != "" {
		q.Set("name", name)
	}
	return q
}
