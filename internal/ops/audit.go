package ops

import (
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"
	"time"
)

// Audit logs each request that acts rather than reads — any method but
// GET, HEAD and OPTIONS: a dead-letter replay, a backup — once answered:
// what was asked, the answer, and who asked: the peer, its X-Forwarded-For
// as sent (unverified), its User-Agent, and which token by its
// Fingerprint, never the token. Requests refused for their token never
// reach it (Refusals logs those); reads are counted by the HTTP metrics
// and not logged.
func Audit(logger *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.Method {
			case http.MethodGet, http.MethodHead, http.MethodOptions:
				next.ServeHTTP(w, r)
				return
			}
			start := time.Now()
			sw := &statusWriter{ResponseWriter: w}
			next.ServeHTTP(sw, r)
			token := "none"
			if presented := Presented(r, ""); presented != "" {
				token = Fingerprint(presented)
			}
			attrs := []any{"method", r.Method, "path", r.URL.Path, "status", sw.status, "took", time.Since(start).Round(time.Millisecond),
				"token", token, "remote", r.RemoteAddr}
			if f := r.Header.Get("X-Forwarded-For"); f != "" {
				attrs = append(attrs, "forwarded_for", f)
			}
			if ua := r.UserAgent(); ua != "" {
				attrs = append(attrs, "user_agent", ua)
			}
			logger.Info("api action", attrs...)
		})
	}
}

// Fingerprint names a token in logs without giving it away: "sha256:" and
// the first 12 hex digits of its SHA-256, which an operator computes from
// the tokens handed out (printf %s "$TOKEN" | sha256sum | cut -c1-12) to
// tell who acted. Only for tokens that were accepted: a near miss of a
// refused one may be a secret.
func Fingerprint(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "sha256:" + hex.EncodeToString(sum[:6])
}
