package ops

import (
	"log/slog"
	"sync/atomic"
	"time"
)

// Refusals logs requests refused for their token, at most one line every
// RefusalLogEvery with how many were refused since the line before: an
// operator woken by OtpscopeWebhooksUnauthorized learns from where, and
// whether the token was missing or wrong, and a caller sending bad tokens
// cannot flood the log. The token itself is never logged (a near miss may
// be a secret).
type Refusals struct {
	logger *slog.Logger
	msg    string
	every  time.Duration
	n      atomic.Int64
	next   atomic.Int64 // Unix nanoseconds before which no line is written
}

// RefusalLogEvery is the least time between two lines of one Refusals.
const RefusalLogEvery = 10 * time.Second

// NewRefusals logs refusals under msg ("webhook refused for its token").
func NewRefusals(logger *slog.Logger, msg string) *Refusals {
	return &Refusals{logger: logger, msg: msg, every: RefusalLogEvery}
}

// Note counts one refusal of a request to path from remote (the peer's
// address; forwardedFor is its X-Forwarded-For as sent, unverified), which
// presented a token or none, and logs when a line is due.
func (r *Refusals) Note(path, remote, forwardedFor string, presented bool) {
	r.n.Add(1)
	now := time.Now().UnixNano()
	next := r.next.Load()
	if now < next || !r.next.CompareAndSwap(next, now+int64(r.every)) {
		return
	}
	token := "missing"
	if presented {
		token = "wrong"
	}
	attrs := []any{"refused", r.n.Swap(0), "path", path, "token", token, "remote", remote}
	if forwardedFor != "" {
		attrs = append(attrs, "forwarded_for", forwardedFor)
	}
	r.logger.Warn(r.msg, attrs...)
}
