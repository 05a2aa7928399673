package tyntecsim_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/tyntecsim"
	"github.com/otpscope/otpscope/internal/tyntecsim/simtest"
)

// noRedirect is a client that reads redirects instead of following them,
// as the app reads the authorize redirect.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// form posts a form with headers and returns status and body.
func form(t *testing.T, url string, body url.Values, h map[string]string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(body.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

// get makes a GET with headers and returns status, headers and body.
func get(t *testing.T, u string, h map[string]string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, raw
}

// seedAuthorize is seed 004's A.1 request, with the query changed by edit.
func seedAuthorize(base string, edit func(url.Values)) string {
	q := url.Values{
		"response_type": {"code"}, "client_id": {"client"}, "state": {"xyz12345"},
		"scope": {"openid tt:phone_verify"}, "redirect_uri": {"https://client.example.com/callback"}, "login_hint": {"301234567890"},
	}
	if edit != nil {
		edit(q)
	}
	return base + "/silent-auth/v1/oauth2/authorize?" + q.Encode()
}

// authorize runs the request and returns the redirect's query.
func authorize(t *testing.T, u string) url.Values {
	t.Helper()
	st, h, raw := get(t, u, nil)
	loc, err := url.Parse(h.Get("Location"))
	if st != http.StatusFound || err != nil || loc.Scheme+"://"+loc.Host+loc.Path != "https://client.example.com/callback" {
		t.Fatalf("authorize = %d Location %q %s; want 302 to https://client.example.com/callback", st, h.Get("Location"), raw)
	}
	return loc.Query()
}

// seedToken is seed 004's A.2 form for code.
func seedToken(code string) url.Values {
	return url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"https://client.example.com/callback"},
		"client_id": {"client"}, "client_secret": {"12345"},
	}
}

// silentSim serves a simulator whose silent auth answers as sa (latency 0).
func silentSim(t *testing.T, sa tyntecsim.SilentAuth) string {
	t.Helper()
	sa.Clients = map[string]string{"client": "12345"}
	_, base := simtest.Start(t, tyntecsim.Config{Seed: 1, SilentAuth: &sa})
	return base
}

// TestSilentAuthSeed checks the Silent Authentication endpoints against
// seed 004's examples and error tables and the YAML's.
func TestSilentAuthSeed(t *testing.T) {
	key := map[string]string{"apiKey": tyntecsim.DefaultAPIKey}
	verified := silentSim(t, tyntecsim.SilentAuth{VerifiedShare: 1})
	notVerified := silentSim(t, tyntecsim.SilentAuth{})

	// A.1 → A.2 → A.3, verified and not.
	for _, tt := range []struct {
		base, want, sub string
	}{{verified, "true", ""}, {notVerified, "false", "anonymous"}} {
		q := authorize(t, seedAuthorize(tt.base, nil))
		if q.Get("state") != "xyz12345" || q.Get("code") == "" || q.Get("error") != "" {
			t.Fatalf("authorize redirect query %v; want code and state xyz12345", q)
		}
		st, raw := form(t, tt.base+"/silent-auth/v1/oauth2/token", seedToken(q.Get("code")), key)
		var tok map[string]any
		if st != http.StatusOK || json.Unmarshal(raw, &tok) != nil || tok["token_type"] != "Bearer" || tok["expires_in"] != float64(86399) ||
			tok["access_token"] == "" || tok["refresh_token"] == nil || tok["id_token"] == nil || tok["scope"] != "openid tt:phone_verify" {
			t.Fatalf("token = %d %s; want 200 with the seed's fields", st, raw)
		}
		if st, raw := form(t, tt.base+"/silent-auth/v1/oauth2/token", seedToken(q.Get("code")), key); st != http.StatusBadRequest || !strings.Contains(string(raw), `"invalid_request"`) {
			t.Errorf("token with a used code = %d %s; want 400 invalid_request", st, raw)
		}
		st, _, raw = get(t, tt.base+"/silent-auth/v1/oauth2/userinfo", map[string]string{"Authorization": "Bearer " + tok["access_token"].(string)})
		var info map[string]string
		if st != http.StatusOK || json.Unmarshal(raw, &info) != nil {
			t.Fatalf("userinfo = %d %s", st, raw)
		}
		if info["phone_number_verified"] != tt.want || info["login_hint"] != "301234567890" || !regexp.MustCompile(`^[0-9a-f]{128}$`).MatchString(info["mobile_id"]) ||
			(tt.sub != "" && info["sub"] != tt.sub) || (tt.sub == "" && (info["sub"] == "anonymous" || info["sub"] == "")) {
			t.Errorf("userinfo = %s; want phone_number_verified %q, sub %q (a UUID when verified), the login_hint, a 128-hex mobile_id", raw, tt.want, tt.sub)
		}
	}

	// B.1: each authorize error, with the seed's description and the state.
	for _, tt := range []struct {
		name, err string
		edit      func(url.Values)
	}{
		{"unknown client", "invalid_client_id_request", func(q url.Values) { q.Set("client_id", "nobody") }},
		{"no client", "invalid_client_id_request", func(q url.Values) { q.Del("client_id") }},
		{"response_type token", "invalid_client_id_request", func(q url.Values) { q.Set("response_type", "token") }},
		{"no scope", "missing_scope", func(q url.Values) { q.Del("scope") }},
		{"no openid", "missing_scope", func(q url.Values) { q.Set("scope", "tt:phone_verify") }},
		{"openid only", "insufficient_scope", func(q url.Values) { q.Set("scope", "openid") }},
		{"unknown scope", "unsupported_scope", func(q url.Values) { q.Set("scope", "openid tt:phone_verify tt:everything") }},
		{"no login_hint", "missing_login_hint", func(q url.Values) { q.Del("login_hint") }},
		{"malformed login_hint", "invalid_request", func(q url.Values) { q.Set("login_hint", "call me") }},
	} {
		q := authorize(t, seedAuthorize(verified, tt.edit))
		if q.Get("error") != tt.err || q.Get("error_description") == "" || q.Get("state") != "xyz12345" || q.Get("code") != "" {
			t.Errorf("%s: redirect query %v; want error %s with a description and the state", tt.name, q, tt.err)
		}
	}
	if q := authorize(t, seedAuthorize(verified, func(q url.Values) { q.Del("login_hint"); q.Set("scope", "openid tt:mobile_id") })); q.Get("code") == "" {
		t.Errorf("tt:mobile_id without login_hint: %v; want a code (only phone_verify needs the number)", q)
	}
	q := authorize(t, seedAuthorize(verified, func(q url.Values) { q.Set("client_id", "nobody") }))
	if q.Get("error_description") != "A required OAuth 2.0 parameter is missing or invalid." {
		t.Errorf("invalid_client_id_request description %q; want the seed's", q.Get("error_description"))
	}
	if st, _, raw := get(t, seedAuthorize(verified, func(q url.Values) { q.Del("redirect_uri") }), nil); st != http.StatusBadRequest || !strings.Contains(string(raw), `"invalid_request"`) {
		t.Errorf("authorize without redirect_uri = %d %s; want 400 invalid_request (nowhere to redirect)", st, raw)
	}

	// The drawn errors: authorize's by redirect, token's and userinfo's by status.
	for _, tt := range []struct {
		err              string
		authorize, token string
		tokenStatus      int
		userinfoStatus   int
		userinfoErr      string
	}{
		{err: tyntecsim.SilentServerError, authorize: "server_error"},
		{err: tyntecsim.SilentNoDataSession, authorize: "no_data_session"},
		{err: tyntecsim.SilentTokenInternal, tokenStatus: 500, token: "internal_server_error"},
		{err: tyntecsim.SilentTokenDenied, tokenStatus: 403, token: "permission_denied"},
		{err: tyntecsim.SilentUserinfoInternal, userinfoStatus: 500, userinfoErr: "internal_server_error"},
		{err: tyntecsim.SilentUserinfoDenied, userinfoStatus: 403, userinfoErr: "permission_denied"},
	} {
		base := silentSim(t, tyntecsim.SilentAuth{ErrorShare: 1, Errors: map[string]float64{tt.err: 1}})
		q := authorize(t, seedAuthorize(base, nil))
		if tt.authorize != "" {
			if q.Get("error") != tt.authorize || q.Get("state") != "xyz12345" {
				t.Errorf("%s: redirect query %v; want error %s", tt.err, q, tt.authorize)
			}
			continue
		}
		st, raw := form(t, base+"/silent-auth/v1/oauth2/token", seedToken(q.Get("code")), key)
		if tt.token != "" {
			if st != tt.tokenStatus || !strings.Contains(string(raw), `"error":"`+tt.token+`"`) || !strings.Contains(string(raw), `"error_description"`) {
				t.Errorf("%s: token = %d %s; want %d %s", tt.err, st, raw, tt.tokenStatus, tt.token)
			}
			continue
		}
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		_ = json.Unmarshal(raw, &tok)
		st, _, raw = get(t, base+"/silent-auth/v1/oauth2/userinfo", map[string]string{"Authorization": "Bearer " + tok.AccessToken})
		if st != tt.userinfoStatus || !strings.Contains(string(raw), `"error":"`+tt.userinfoErr+`"`) {
			t.Errorf("%s: userinfo = %d %s; want %d %s", tt.err, st, raw, tt.userinfoStatus, tt.userinfoErr)
		}
	}

	// B.2 and B.3: credentials.
	code := authorize(t, seedAuthorize(verified, nil)).Get("code")
	for _, tt := range []struct {
		name string
		body url.Values
		h    map[string]string
		want int
		err  string
	}{
		{"wrong apiKey", seedToken(code), map[string]string{"apiKey": "wrong"}, 401, `"error":"invalid_client","error_description":"Request not authenticated due to missing, invalid, or expired credentials. A new authentication is required."`},
		{"no apiKey", seedToken(code), nil, 401, `"invalid_client"`},
		{"wrong secret", func() url.Values { v := seedToken(code); v.Set("client_secret", "x"); return v }(), key, 401, `"invalid_client"`},
		{"wrong grant", func() url.Values { v := seedToken(code); v.Set("grant_type", "password"); return v }(), key, 400, `"error":"invalid_request","error_description":"Client specified an invalid argument, request body or query param."`},
		{"other redirect_uri", func() url.Values { v := seedToken(code); v.Set("redirect_uri", "https://evil.example/"); return v }(), key, 400, `"invalid_request"`},
		{"no code", func() url.Values { v := seedToken(code); v.Del("code"); return v }(), key, 400, `"invalid_request"`},
	} {
		if st, raw := form(t, verified+"/silent-auth/v1/oauth2/token", tt.body, tt.h); st != tt.want || !strings.Contains(string(raw), tt.err) {
			t.Errorf("token, %s = %d %s; want %d with %s", tt.name, st, raw, tt.want, tt.err)
		}
	}
	for _, h := range []map[string]string{nil, {"Authorization": "Bearer nope"}} {
		if st, _, raw := get(t, verified+"/silent-auth/v1/oauth2/userinfo", h); st != 401 || !strings.Contains(string(raw), `"invalid_client"`) {
			t.Errorf("userinfo with %v = %d %s; want 401 invalid_client", h, st, raw)
		}
	}
}

// approvalRequest is the GET answer and callback body.
type approvalRequest struct {
	UUID            string            `json:"uuid"`
	TFAID           string            `json:"tfaId"`
	Status          string            `json:"status"`
	CreatedAt       time.Time         `json:"createdAt"`
	UpdatedAt       time.Time         `json:"updatedAt"`
	SecondsToExpire int               `json:"secondsToExpire"`
	Details         map[string]string `json:"details"`
	HiddenDetails   map[string]string `json:"hiddenDetails"`
}

// TestPushSeed checks the push-approval endpoints with seed 003's requests:
// create (form, X-TFA-API-Key), get by uuid, and the assumed statuses.
func TestPushSeed(t *testing.T) {
	key := map[string]string{"X-tfa-API-Key": tyntecsim.DefaultAPIKey} // the seed's spelling
	_, base := simtest.Start(t, tyntecsim.Config{Seed: 1})
	// The seed's C# example.
	st, raw := form(t, base+"/onetouch/json/users/5661166/approval_requests", url.Values{
		"message": {"Requesting War Room Access"}, "seconds_to_expire": {"300"},
		"details[Location]": {"California, USA"}, "details[Room]": {"VR Room 1"}, "hidden_details[correlationId]": {"login-42"},
	}, key)
	var created struct {
		Success bool `json:"success"`
		Request struct {
			UUID string `json:"uuid"`
		} `json:"approval_request"`
	}
	if st != http.StatusOK || json.Unmarshal(raw, &created) != nil || !created.Success || created.Request.UUID == "" {
		t.Fatalf("create = %d %s; want 200 success with a uuid", st, raw)
	}
	st, _, raw = get(t, base+"/onetouch/json/approval_requests/"+created.Request.UUID, key)
	var got struct {
		Success bool            `json:"success"`
		Request approvalRequest `json:"approval_request"`
	}
	if st != http.StatusOK || json.Unmarshal(raw, &got) != nil || !got.Success {
		t.Fatalf("get = %d %s", st, raw)
	}
	r := got.Request
	if r.UUID != created.Request.UUID || r.TFAID != "5661166" || r.Status != tyntecsim.PushPending || r.SecondsToExpire != 300 ||
		r.Details["Room"] != "VR Room 1" || r.HiddenDetails["correlationId"] != "login-42" || r.CreatedAt.IsZero() || !r.UpdatedAt.Equal(r.CreatedAt) {
		t.Errorf("approval request %+v; want the create's fields, pending", r)
	}
	// The seed's curl example: one details string, the ttl as given.
	if st, raw := form(t, base+"/onetouch/json/users/123456/approval_requests", url.Values{"message": {"m"}, "details": {"a string of details"}, "seconds_to_expire": {"60"}}, key); st != http.StatusOK {
		t.Errorf("create with a details string = %d %s; want 200", st, raw)
	}
	for _, tt := range []struct {
		name, path string
		body       url.Values
		h          map[string]string
		want       int
	}{
		{"wrong key", "/users/1/approval_requests", url.Values{"message": {"m"}}, map[string]string{"X-TFA-API-Key": "wrong"}, 401},
		{"no message", "/users/1/approval_requests", url.Values{"seconds_to_expire": {"60"}}, key, 400},
		{"bad ttl", "/users/1/approval_requests", url.Values{"message": {"m"}, "seconds_to_expire": {"soon"}}, key, 400},
		{"bad tfaId", "/users/abc/approval_requests", url.Values{"message": {"m"}}, key, 400},
	} {
		if st, raw := form(t, base+"/onetouch/json"+tt.path, tt.body, tt.h); st != tt.want || !strings.Contains(string(raw), `"success":false`) {
			t.Errorf("%s: create = %d %s; want %d with success false", tt.name, st, raw, tt.want)
		}
	}
	if st, _, raw := get(t, base+"/onetouch/json/approval_requests/0b5f0000-0000-4000-8000-000000000000", key); st != http.StatusNotFound {
		t.Errorf("get unknown = %d %s; want 404", st, raw)
	}
	if st, _, raw := get(t, base+"/onetouch/json/approval_requests/"+created.Request.UUID, nil); st != http.StatusUnauthorized {
		t.Errorf("get without key = %d %s; want 401", st, raw)
	}
}
