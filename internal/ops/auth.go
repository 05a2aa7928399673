package ops

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/otpscope/otpscope/internal/flagenv"
	"github.com/otpscope/otpscope/internal/problem"
	"github.com/otpscope/otpscope/internal/reload"
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

// MinTokenLength is the fewest characters a token may have: 16 random ones
// cannot be guessed over HTTP.
const MinTokenLength = 16

// CheckTokens refuses a token shorter than MinTokenLength; what names it
// ("webhook token").
func CheckTokens(what string, tokens []string) error {
	for _, tok := range tokens {
		if len(tok) < MinTokenLength {
			return fmt.Errorf("%s of %d characters: use at least %d", what, len(tok), MinTokenLength)
		}
	}
	return nil
}

// WatchTokens are tokens read again from file when it changes, for a
// rotation without restart (package reload); with no file, tokens fixed. A
// file is read as flagenv reads a list's file at start (a token a line or
// comma-separated) and held to CheckTokens; what names the tokens in logs
// ("webhook token").
func WatchTokens(what string, tokens []string, file string, logger *slog.Logger) *reload.Value[Tokens] {
	if file == "" {
		return reload.Fixed(NewTokens(tokens))
	}
	return reload.New(what+"s", NewTokens(tokens), func() (Tokens, error) {
		s, err := flagenv.ReadFile(file)
		if err != nil {
			return nil, err
		}
		var l flagenv.List
		_ = l.Set(s)
		if err := CheckTokens(what, l); err != nil {
			return nil, err
		}
		return NewTokens(l), nil
	}, logger, file)
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

// RequireBearer answers 401 to requests without one of the tokens of any
// of sets as Authorization: Bearer, and notes them in refused; with no
// tokens at start it lets everything through (a rotation cannot open it:
// an empty file does not load). Several sets serve a path that more than
// one kind of credential may read (/metrics: API and metrics tokens).
func RequireBearer(refused *Refusals, sets ...*reload.Value[Tokens]) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		open := true
		for _, tokens := range sets {
			open = open && len(tokens.Get()) == 0
		}
		if open {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			presented := Presented(r, "")
			for _, tokens := range sets {
				if tokens.Get().Match(presented) {
					next.ServeHTTP(w, r)
					return
				}
			}
			refused.Note(r.URL.Path, r.RemoteAddr, r.Header.Get("X-Forwarded-For"), presented != "")
			Unauthorized(w, "missing or wrong token: send Authorization: Bearer <token>")
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

// ReadOnly answers 403 to a request that acts (any method but GET and HEAD:
// a dead-letter replay, a backup) unless it carries one of full: behind
// RequireBearer of full and read tokens, the read tokens may look and not
// touch. With no full tokens at start it lets everything through, as
// RequireBearer does.
func ReadOnly(full *reload.Value[Tokens]) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if len(full.Get()) == 0 {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet || r.Method == http.MethodHead || full.Get().Match(Presented(r, "")) {
				next.ServeHTTP(w, r)
				return
			}
			problem.Write(w, problem.Details{Status: http.StatusForbidden, Title: "Read-only token",
				Detail: "this token may only read: " + r.Method + " acts, and needs one of the --api-token tokens", Instance: r.URL.Path})
		})
	}
}
