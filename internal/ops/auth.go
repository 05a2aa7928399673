package ops

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/otpscope/otpscope/internal/problem"
)

// Tokens are accepted bearer tokens, kept as SHA-256 digests and compared in
// constant time: the same work whatever a caller sends, so not even a token's
// length leaks. Several allow rotation.
type Tokens [][sha256.Size]byte

// NewTokens digests tokens.
func NewTokens(tokens []string) Tokens {
	var ts Tokens
	for _, t := range tokens {
		ts = append(ts, sha256.Sum256([]byte(t)))
	}
	return ts
}

// Match reports whether presented is one of the tokens.
func (ts Tokens) Match(presented string) bool {
	if presented == "" {
		return false
	}
	sum := sha256.Sum256([]byte(presented))
	ok := 0
	for _, t := range ts {
		ok |= subtle.ConstantTimeCompare(sum[:], t[:])
	}
	return ok == 1
}

// Presented is the token a request carries: header (e.g. X-Webhook-Token)
// when given and set, else Authorization: Bearer.
func Presented(r *http.Request, header string) string {
	return PresentedIn(r.Header.Get, header)
}

// PresentedIn is Presented for a request whose headers get reads, whichever
// server parsed them.
func PresentedIn(get func(name string) string, header string) string {
	if header != "" {
		if v := get(header); v != "" {
			return v
		}
	}
	if a := get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		return strings.TrimSpace(a[7:])
	}
	return ""
}

// RequireBearer answers 401 to requests without one of tokens as
// Authorization: Bearer; with no tokens it lets everything through.
func RequireBearer(tokens Tokens) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if len(tokens) == 0 {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !tokens.Match(Presented(r, "")) {
				Unauthorized(w, "missing or wrong token: send Authorization: Bearer <api token>")
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// BearerChallenge is the WWW-Authenticate header of every 401.
const BearerChallenge = `Bearer realm="otpscope"`

// Unauthorized answers 401 at once. The body is left unread and the
// connection closed: net/http would otherwise read (up to 256 KiB of) it
// before answering, so a caller that never sends it would wait for the read
// timeout.
func Unauthorized(w http.ResponseWriter, detail string) {
	w.Header().Set("WWW-Authenticate", BearerChallenge)
	w.Header().Set("Connection", "close")
	problem.Error(w, http.StatusUnauthorized, detail)
}
