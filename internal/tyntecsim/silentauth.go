package tyntecsim

import (
	crand "crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/otpscope/otpscope/internal/httpurl"
)

// SilentAuthPath is the base of the Silent Authentication endpoints.
const SilentAuthPath = "/silent-auth/v1/oauth2"

// Scopes of Silent Authentication (seed 004, YAML).
const (
	ScopeOpenID      = "openid"
	ScopePhoneVerify = "tt:phone_verify"
	ScopeMobileID    = "tt:mobile_id"
)

// silentTokenLifetime is expires_in of the seed's token answer.
const silentTokenLifetime = 86399 * time.Second

// The authorize errors and their descriptions: seed 004, table B.1, plus
// the YAML's no_data_session and invalid_request (malformed login_hint).
var authorizeErrors = map[string]string{
	"invalid_client_id_request": "A required OAuth 2.0 parameter is missing or invalid.",
	"missing_scope":             "A required OAuth 2.0 scope parameter is missing",
	"insufficient_scope":        "Only openid scope requested, while custom scope is also required",
	"unsupported_scope":         "The requested scope is unknown, malformed, or exceeds permitted scope.",
	"missing_login_hint":        "Scope requires login_hint but not provided",
	"server_error":              "Unexpected server error",
	SilentNoDataSession:         "No network session could be resolved for the request", // assumed text
	"invalid_request":           "Invalid login_hint format",                            // the YAML's invalid_login_hint example
}

// The token and userinfo errors: seed 004, tables B.2 and B.3.
var oauthErrors = map[int][2]string{
	http.StatusBadRequest:          {"invalid_request", "Client specified an invalid argument, request body or query param."},
	http.StatusUnauthorized:        {"invalid_client", "Request not authenticated due to missing, invalid, or expired credentials. A new authentication is required."},
	http.StatusForbidden:           {"permission_denied", "Client does not have sufficient permissions to perform this action."},
	http.StatusInternalServerError: {"internal_server_error", "Request could not be processed."},
}

// loginHintPattern is the YAML's login_hint: an international number with
// or without a leading "+" or "00".
var loginHintPattern = regexp.MustCompile(`^(\+|00)?[1-9][0-9]{6,14}$`)

// silentSession is one authorize that issued a code. Guarded by Sim.mu.
type silentSession struct {
	clientID, scope, redirectURI, loginHint string
	code, accessToken                       string
	codeUsed                                bool
	tokenExpires                            time.Time
	verified                                bool
	failure                                 string // a planned token_… or userinfo_… failure
	sub, mobileID                           string
}

// silentOutcome is what one attempt is drawn to end with.
type silentOutcome struct {
	verified bool
	failure  string // "" or one of silentErrors
	latency  time.Duration
}

// drawSilent draws the outcome of the attempt number seq from its own
// generator, so the story does not depend on the order requests arrive in.
func (s *Sim) drawSilent(seq uint64) silentOutcome {
	sa := s.cfg.silentAuth()
	rng := rand.New(rand.NewPCG(uint64(s.cfg.Seed), 2000+seq))
	u, pick, z := rng.Float64(), rng.Float64(), rng.NormFloat64()
	out := silentOutcome{latency: sa.Latency.sample(z)}
	switch {
	case u < sa.ErrorShare:
		out.failure = weighted(sa.Errors, pick)
	case u < sa.ErrorShare+sa.VerifiedShare:
		out.verified = true
	}
	return out
}

// weighted picks a key of w with probability proportional to its weight,
// u in [0, 1); keys in sorted order so the draw is reproducible.
func weighted(w map[string]float64, u float64) string {
	keys := make([]string, 0, len(w))
	total := 0.0
	for k, v := range w {
		keys = append(keys, k)
		total += v
	}
	slices.Sort(keys)
	acc := 0.0
	for _, k := range keys {
		acc += w[k] / total
		if u < acc {
			return k
		}
	}
	return keys[len(keys)-1]
}

// randomToken is an opaque credential from crypto/rand (the seed's tokens
// look like JWTs; nobody should parse them, so these are not).
func randomToken() string {
	var b [24]byte
	_, _ = crand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// mobileID is a stable network identifier of a number for a client: 128
// hex characters, the length of the seed's example.
func mobileID(clientID, msisdn string) string {
	h := sha512.Sum512([]byte("tyntecsim mobile id\x00" + clientID + "\x00" + strings.TrimLeft(msisdn, "+0")))
	return hex.EncodeToString(h[:])
}

// silentAuthorize is GET /oauth2/authorize: a 302 to redirect_uri with a
// code, or with error and error_description; the state always comes back.
// Without a usable redirect_uri there is nowhere to redirect to: 400 with
// the token endpoint's error shape (assumed; OAuth 2.0 forbids redirecting
// to an unchecked URI).
func (s *Sim) silentAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirect, err := httpurl.Parse(q.Get("redirect_uri"))
	if err != nil {
		writeOAuthError(w, http.StatusBadRequest)
		return
	}
	state := q.Get("state")
	fail := func(code string) {
		v := redirect.Query()
		v.Set("error", code)
		v.Set("error_description", authorizeErrors[code])
		v.Set("state", state)
		redirectTo(w, redirect, v)
	}
	sa := s.cfg.silentAuth()
	clientID := q.Get("client_id")
	if _, ok := sa.Clients[clientID]; !ok || q.Get("response_type") != "code" || state == "" {
		fail("invalid_client_id_request")
		return
	}
	scopes := strings.Fields(q.Get("scope"))
	switch {
	case !slices.Contains(scopes, ScopeOpenID):
		fail("missing_scope") // the YAML: "'openid' scope is required"
		return
	case slices.ContainsFunc(scopes, func(sc string) bool { return sc != ScopeOpenID && sc != ScopePhoneVerify && sc != ScopeMobileID }):
		fail("unsupported_scope")
		return
	case len(slices.DeleteFunc(slices.Clone(scopes), func(sc string) bool { return sc == ScopeOpenID })) == 0:
		fail("insufficient_scope")
		return
	}
	hint := q.Get("login_hint")
	if hint == "" && slices.Contains(scopes, ScopePhoneVerify) {
		fail("missing_login_hint") // assumed: phone_verify has nothing to compare without a number
		return
	}
	if hint != "" && !loginHintPattern.MatchString(hint) {
		fail("invalid_request")
		return
	}

	s.mu.Lock()
	s.silentSeq++
	out := s.drawSilent(s.silentSeq)
	s.mu.Unlock()
	// The network-session lookup takes its (simulated) time.
	t := time.NewTimer(s.clock.wall(out.latency))
	select {
	case <-r.Context().Done():
		t.Stop()
		return
	case <-t.C:
	}
	if out.failure == SilentNoDataSession || out.failure == SilentServerError {
		fail(out.failure)
		return
	}
	sess := &silentSession{
		clientID: clientID, scope: strings.Join(scopes, " "), redirectURI: redirect.String(), loginHint: hint,
		code: randomToken(), verified: out.verified, failure: out.failure,
		sub: "anonymous", mobileID: mobileID(clientID, hint),
	}
	if sess.verified {
		sess.sub = uuid.NewString()
	}
	s.mu.Lock()
	s.silentCodes[sess.code] = sess
	s.mu.Unlock()
	v := redirect.Query()
	v.Set("code", sess.code)
	v.Set("state", state)
	redirectTo(w, redirect, v)
}

func redirectTo(w http.ResponseWriter, u *url.URL, q url.Values) {
	to := *u
	to.RawQuery = q.Encode()
	w.Header().Set("Location", to.String())
	w.WriteHeader(http.StatusFound)
}

// writeOAuthError answers status with the seed's error body.
func writeOAuthError(w http.ResponseWriter, status int) {
	e := oauthErrors[status]
	writeJSON(w, status, map[string]string{"error": e[0], "error_description": e[1]})
}

// plannedError answers a drawn token or userinfo failure of step ("token_"
// or "userinfo_"); false when none is planned for that step.
func plannedError(w http.ResponseWriter, failure, step string) bool {
	switch failure {
	case step + "internal_server_error":
		writeOAuthError(w, http.StatusInternalServerError)
	case step + "permission_denied":
		writeOAuthError(w, http.StatusForbidden)
	default:
		return false
	}
	return true
}

// silentToken is POST /oauth2/token: the code for tokens, once.
func (s *Sim) silentToken(w http.ResponseWriter, r *http.Request) {
	if !slices.Contains(s.cfg.APIKeys, r.Header.Get("apiKey")) {
		writeOAuthError(w, http.StatusUnauthorized)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<16)
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, http.StatusBadRequest)
		return
	}
	f := r.PostForm
	for _, k := range []string{"grant_type", "code", "redirect_uri", "client_id", "client_secret"} {
		if f.Get(k) == "" {
			writeOAuthError(w, http.StatusBadRequest)
			return
		}
	}
	if f.Get("grant_type") != "authorization_code" {
		writeOAuthError(w, http.StatusBadRequest)
		return
	}
	if secret, ok := s.cfg.silentAuth().Clients[f.Get("client_id")]; !ok || secret != f.Get("client_secret") {
		writeOAuthError(w, http.StatusUnauthorized)
		return
	}
	s.mu.Lock()
	sess, ok := s.silentCodes[f.Get("code")]
	// A used, unknown or someone else's code, or another redirect_uri: 400
	// (OAuth 2.0 says invalid_grant; the seed lists invalid_request for 400).
	if !ok || sess.codeUsed || sess.clientID != f.Get("client_id") || sess.redirectURI != f.Get("redirect_uri") {
		s.mu.Unlock()
		writeOAuthError(w, http.StatusBadRequest)
		return
	}
	sess.codeUsed = true
	delete(s.silentCodes, sess.code)
	if plannedError(w, sess.failure, "token_") {
		s.mu.Unlock()
		return
	}
	sess.accessToken = randomToken()
	sess.tokenExpires = s.clock.now().Add(silentTokenLifetime)
	s.silentTokens[sess.accessToken] = sess
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": sess.accessToken, "refresh_token": randomToken(), "id_token": randomToken(),
		"scope": sess.scope, "token_type": "Bearer", "expires_in": int(silentTokenLifetime / time.Second),
	})
}

// silentUserinfo is GET /oauth2/userinfo with the access token.
func (s *Sim) silentUserinfo(w http.ResponseWriter, r *http.Request) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	sess, known := s.silentTokens[strings.TrimSpace(token)]
	if !ok || !known || !s.clock.now().Before(sess.tokenExpires) {
		s.mu.Unlock()
		writeOAuthError(w, http.StatusUnauthorized)
		return
	}
	failed := plannedError(w, sess.failure, "userinfo_")
	s.mu.Unlock()
	if failed {
		return
	}
	verified := "false"
	if sess.verified {
		verified = "true"
	}
	writeJSON(w, http.StatusOK, map[string]string{
		"sub": sess.sub, "mobile_id": sess.mobileID, "login_hint": sess.loginHint, "phone_number_verified": verified,
	})
}
