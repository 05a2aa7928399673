package tyntec

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors for the classes of API failure callers branch on. An
// *APIError matches the one of its status with errors.Is.
var (
	ErrBadRequest   = errors.New("tyntec: bad request")              // 400
	ErrUnauthorized = errors.New("tyntec: unauthorized")             // 401, 403
	ErrNotFound     = errors.New("tyntec: not found")                // 404
	ErrGone         = errors.New("tyntec: gone")                     // 410
	ErrRateLimited  = errors.New("tyntec: rate limited")             // 429
	ErrServer       = errors.New("tyntec: server error")             // 5xx
	errUnexpected   = errors.New("tyntec: unexpected response code") // anything else
)

// APIError is a non-2xx answer from tyntec. It carries the body in whichever
// of tyntec's two error shapes it came: v1 ErrorResponse (Code, ID, Message,
// Timestamp) or v4 problem (Status, Title, Detail, Violations).
type APIError struct {
	Method     string
	Path       string
	StatusCode int
	// RetryAfter is the parsed Retry-After header, zero when absent.
	RetryAfter time.Duration

	// v1 ErrorResponse.
	Code      string
	ID        string
	Message   string
	Timestamp int64

	// v4 problem.
	Status     int
	Title      string
	Detail     string
	Violations []Violation

	// Body is the raw response body (at most 64 KiB).
	Body []byte
}

// Error describes the call and the answer.
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "tyntec %s %s: %d %s", e.Method, e.Path, e.StatusCode, http.StatusText(e.StatusCode))
	for _, s := range []string{e.Code, e.Title, e.Message, e.Detail} {
		if s != "" {
			b.WriteString(": ")
			b.WriteString(s)
		}
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	return b.String()
}

// Is reports whether target is the sentinel of e's status class.
func (e *APIError) Is(target error) bool {
	return target == classOf(e.StatusCode)
}

// Temporary reports whether the same request may succeed later (429 or 5xx).
func (e *APIError) Temporary() bool {
	return e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500
}

// Decode unmarshals the raw body into v; some answers (a failed v1 check)
// carry a resource rather than an error shape.
func (e *APIError) Decode(v any) error {
	if err := json.Unmarshal(e.Body, v); err != nil {
		return fmt.Errorf("decode %d body: %w", e.StatusCode, err)
	}
	return nil
}

func classOf(status int) error {
	switch {
	case status == http.StatusBadRequest:
		return ErrBadRequest
	case status == http.StatusUnauthorized, status == http.StatusForbidden:
		return ErrUnauthorized
	case status == http.StatusNotFound:
		return ErrNotFound
	case status == http.StatusGone:
		return ErrGone
	case status == http.StatusTooManyRequests:
		return ErrRateLimited
	case status >= 500:
		return ErrServer
	default:
		return errUnexpected
	}
}

// IsNotFound reports whether err is a 404 from tyntec.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// newAPIError builds the error of one response.
func newAPIError(method, path string, status int, h http.Header, body []byte, now time.Time) *APIError {
	e := &APIError{
		Method:     method,
		Path:       path,
		StatusCode: status,
		RetryAfter: ParseRetryAfter(h.Get("Retry-After"), now),
		Body:       body,
	}
	if status == http.StatusTooManyRequests && e.RetryAfter == 0 {
		// No seed or OpenAPI file documents tyntec's 429: without its
		// header the client and the poller wait this long, not the
		// milliseconds of a backoff that would spend the window's budget
		// again at once.
		e.RetryAfter = DefaultRetryAfter
	}
	// Both shapes are flat objects with disjoint fields except none, so one
	// lenient decode reads either; a body that is not JSON stays in Body.
	var shape struct {
		Code       json.RawMessage `json:"code"`
		ID         string          `json:"id"`
		Message    string          `json:"message"`
		Timestamp  int64           `json:"timestamp"`
		Status     int             `json:"status"`
		Title      string          `json:"title"`
		Detail     string          `json:"detail"`
		Violations []Violation     `json:"violations"`
	}
	if json.Unmarshal(body, &shape) == nil {
		e.Code = rawString(shape.Code)
		e.ID, e.Message, e.Timestamp = shape.ID, shape.Message, shape.Timestamp
		e.Status, e.Title, e.Detail, e.Violations = shape.Status, shape.Title, shape.Detail, shape.Violations
	}
	return e
}

// rawString reads a JSON string or number as text (tyntec's v1 code is
// documented as a string but examples show numbers in quotes and without).
func rawString(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return strings.TrimSpace(string(raw))
}

// Outcome names a failed call's err as the calls' metric counts it: the
// answer's class (unauthorized, server_error, not_found…), or timeout or
// network_error for a call tyntec did not answer.
func Outcome(err error) string {
	var apiErr *APIError
	switch {
	case errors.As(err, &apiErr):
		return outcomeOf(apiErr.StatusCode)
	case errors.Is(err, ErrBadAnswer):
		return "bad_answer"
	case isTimeout(err):
		return "timeout"
	default:
		return "network_error"
	}
}

// DefaultRetryAfter is the Retry-After a 429 without one is taken to
// carry: a sixth of tyntec's budget period (100 calls a minute).
const DefaultRetryAfter = 10 * time.Second

// MaxRetryAfter is the longest Retry-After honoured. tyntec's budget is
// counted per minute; a longer wait is taken as a broken header rather than
// a reason to stop calling for days (one 429 would hold the poller's leader,
// and with it every reconciliation and resend, as long as it said): past
// it, a call is tried again and a second 429 pauses again.
const MaxRetryAfter = 5 * time.Minute

// ParseRetryAfter reads a Retry-After header value: delay seconds or an HTTP
// date, at most MaxRetryAfter. It returns zero for an empty or unreadable
// value.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseFloat(v, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		if math.IsNaN(n) || n <= 0 {
			return 0
		}
		if n >= MaxRetryAfter.Seconds() { // before the conversion, which overflows
			return MaxRetryAfter
		}
		return time.Duration(n * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return min(d, MaxRetryAfter)
		}
	}
	return 0
}
