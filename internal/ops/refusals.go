package ops

import (
	"log/slog"
	"sync/atomic"
	"time"
)

// Sparse logs one kind of warning at most once every SparseEvery,
// counting under countKey how many times it happened since the line
// before: a fault every request meets (a bad token, a full disk refusing
// each webhook) is told without flooding the log.
type Sparse struct {
	logger   *slog.Logger
	msg      string
	countKey string
	every    time.Duration
	n        atomic.Int64
	next     atomic.Int64 // Unix nanoseconds before which no line is written
}

// SparseEvery is the least time between two lines of one Sparse.
const SparseEvery = 10 * time.Second

// NewSparse logs msg sparsely, its count under countKey.
func NewSparse(logger *slog.Logger, msg, countKey string) *Sparse {
	return &Sparse{logger: logger, msg: msg, countKey: countKey, every: SparseEvery}
}

// Warn counts one occurrence and logs it, with attrs, when a line is due.
func (s *Sparse) Warn(attrs ...any) {
	s.n.Add(1)
	now := time.Now().UnixNano()
	next := s.next.Load()
	if now < next || !s.next.CompareAndSwap(next, now+int64(s.every)) {
		return
	}
	s.logger.Warn(s.msg, append([]any{s.countKey, s.n.Swap(0)}, attrs...)...)
}

// Refusals logs requests refused for their token sparsely (Sparse): an
// operator woken by OtpscopeWebhooksUnauthorized learns from where, and
// whether the token was missing or wrong, and a caller sending bad tokens
// cannot flood the log. The token itself is never logged (a near miss may
// be a secret).
type Refusals struct{ *Sparse }

// NewRefusals logs refusals under msg ("webhook refused for its token").
func NewRefusals(logger *slog.Logger, msg string) *Refusals {
	return &Refusals{NewSparse(logger, msg, "refused")}
}

// Note counts one refusal of a request to path from remote (the peer's
// address; forwardedFor is its X-Forwarded-For as sent, unverified), which
// presented a token or none, and logs when a line is due.
func (r *Refusals) Note(path, remote, forwardedFor string, presented bool) {
	token := "missing"
	if presented {
		token = "wrong"
	}
	attrs := []any{"path", path, "token", token, "remote", remote}
	if forwardedFor != "" {
		attrs = append(attrs, "forwarded_for", forwardedFor)
	}
	r.Warn(attrs...)
}
