package ops

import (
	"log/slog"
	"sync"
	"time"
)

// Sparse logs one kind of warning at most once every SparseEvery per kind,
// counting under countKey how many times it happened since the line
// before: a fault every request meets (a bad token, a full disk refusing
// each webhook) is told without flooding the log. A burst's count is
// written when the next line is due even if nothing follows it, and each
// kind (a refusal's path and token) is counted apart, so a line never
// counts another kind's under its own attributes.
type Sparse struct {
	logger   *slog.Logger
	msg      string
	countKey string
	every    time.Duration

	mu    sync.Mutex
	kinds map[string]*sparseKind
}

type sparseKind struct {
	n     int64       // occurrences since the last line
	attrs []any       // the last occurrence's
	next  time.Time   // before which no line is written
	flush *time.Timer // writes n when next comes, if set
}

// SparseEvery is the least time between two lines of one Sparse's kind.
const SparseEvery = 10 * time.Second

// maxSparseKinds bounds the kinds counted apart (a refusal's path is the
// client's to choose); past it they are counted together.
const maxSparseKinds = 64

// NewSparse logs msg sparsely, its count under countKey.
func NewSparse(logger *slog.Logger, msg, countKey string) *Sparse {
	return &Sparse{logger: logger, msg: msg, countKey: countKey, every: SparseEvery, kinds: map[string]*sparseKind{}}
}

// Warn counts one occurrence and logs it, with attrs, when a line is due.
func (s *Sparse) Warn(attrs ...any) { s.WarnOf("", attrs...) }

// WarnOf is Warn for one kind of occurrence, counted apart from the others.
func (s *Sparse) WarnOf(kind string, attrs ...any) {
	s.mu.Lock()
	k := s.kinds[kind]
	if k == nil {
		if len(s.kinds) >= maxSparseKinds {
			kind = "\x00others"
			k = s.kinds[kind]
		}
		if k == nil {
			k = &sparseKind{}
			s.kinds[kind] = k
		}
	}
	k.n++
	k.attrs = attrs
	now := time.Now()
	if now.Before(k.next) {
		if k.flush == nil {
			k.flush = time.AfterFunc(k.next.Sub(now), func() { s.flush(k) })
		}
		s.mu.Unlock()
		return
	}
	s.write(k, now) // unlocks
}

// flush writes what k counted since its last line, once its line is due.
func (s *Sparse) flush(k *sparseKind) {
	s.mu.Lock()
	k.flush = nil
	if k.n == 0 {
		s.mu.Unlock()
		return
	}
	s.write(k, time.Now())
}

// write logs k's count and last attributes; s.mu is held, and released.
func (s *Sparse) write(k *sparseKind, now time.Time) {
	n, attrs := k.n, k.attrs
	k.n, k.next = 0, now.Add(s.every)
	s.mu.Unlock()
	s.logger.Warn(s.msg, append([]any{s.countKey, n}, attrs...)...)
}

// Refusals logs requests refused for their token sparsely (Sparse), each
// path and missing or wrong token apart: an operator woken by
// OtpscopeWebhooksUnauthorized learns from where, and whether the token
// was missing or wrong, and a caller sending bad tokens cannot flood the
// log. The token itself is never logged (a near miss may be a secret).
type Refusals struct{ *Sparse }

// NewRefusals logs refusals under msg ("webhook refused for its token").
func NewRefusals(logger *slog.Logger, msg string) *Refusals {
	return &Refusals{NewSparse(logger, msg, "refused")}
}

// Note counts one refusal of a request to path from remote (the peer's
// address; forwardedFor is its X-Forwarded-For as sent, unverified), which
// presented a token or none, and logs when a line is due: the line names
// the last such request's remote.
func (r *Refusals) Note(path, remote, forwardedFor string, presented bool) {
	token := "missing"
	if presented {
		token = "wrong"
	}
	attrs := []any{"path", path, "token", token, "remote", remote}
	if forwardedFor != "" {
		attrs = append(attrs, "forwarded_for", forwardedFor)
	}
	r.WarnOf(path+" "+token, attrs...)
}
