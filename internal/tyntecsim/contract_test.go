package tyntecsim_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/otpscope/otpscope/internal/tyntecsim"
)

// silentAuthFile is tyntec's Silent Authentication OpenAPI file, read like
// internal/tyntec's contract tests read the 2FA files: from
// OTPSCOPE_TYNTEC_REFERENCE or ../shared/reference/tyntec beside the checkout.
const silentAuthFile = "silent-authentication_v1_silent-authentication.yaml"

func silentAuthSpec(t *testing.T) *openapi3.T {
	t.Helper()
	dir := os.Getenv("OTPSCOPE_TYNTEC_REFERENCE")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared", "reference", "tyntec")
	}
	path := filepath.Join(dir, silentAuthFile)
	if _, err := os.Stat(path); err != nil {
		msg := fmt.Sprintf("\n\n*** CONTRACT TEST NOT RUN: %s not found (%v); see the README's simulator section.\n", path, err)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	doc, err := openapi3.NewLoader().LoadFromFile(path)
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	doc.Servers = nil // paths without /silent-auth/v1, matched on any host
	// The file's error schemas require a "message" that their own
	// properties (error, error_description) and the seed's bodies lack:
	// their fields are checked, that requirement is not.
	for _, name := range []string{"BadRequestError", "UnauthorizedError", "PermissionDeniedError", "InternalServerError"} {
		doc.Components.Schemas[name].Value.Required = nil
	}
	return doc
}

// TestSilentAuthContract validates the simulator's Silent Authentication
// exchanges (requests as the seed's examples make them, and every answer)
// against tyntec's OpenAPI file.
func TestSilentAuthContract(t *testing.T) {
	doc := silentAuthSpec(t)
	router, err := legacy.NewRouter(doc, openapi3.DisableExamplesValidation())
	if err != nil {
		t.Fatal(err)
	}
	var failures []string
	checked := map[string]int{}
	opts := &openapi3filter.Options{
		MultiError: true,
		// The file declares HTTP basic for apiKey; the seed sends an apiKey
		// header, which the simulator checks (TestSilentAuthSeed).
		AuthenticationFunc: func(context.Context, *openapi3filter.AuthenticationInput) error { return nil },
	}
	validate := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			spec := r.Clone(r.Context())
			spec.URL.Path = strings.TrimPrefix(r.URL.Path, "/silent-auth/v1")
			spec.Body = io.NopCloser(bytes.NewReader(body))
			route, params, err := router.FindRoute(spec)
			if err != nil {
				failures = append(failures, fmt.Sprintf("%s %s: not in the file: %v", r.Method, r.URL.Path, err))
				return
			}
			in := &openapi3filter.RequestValidationInput{Request: spec, PathParams: params, Route: route, Options: opts}
			if err := openapi3filter.ValidateRequest(r.Context(), in); err != nil {
				failures = append(failures, fmt.Sprintf("request %s %s: %v", r.Method, r.URL, err))
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			res := rec.Result()
			out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: res.StatusCode, Header: res.Header, Options: opts}
			out.SetBodyBytes(rec.Body.Bytes())
			if err := openapi3filter.ValidateResponse(r.Context(), out); err != nil {
				failures = append(failures, fmt.Sprintf("response %d to %s %s: %v\nbody: %s", res.StatusCode, r.Method, r.URL, err, rec.Body.Bytes()))
			}
			checked[fmt.Sprintf("%s %s %d", r.Method, route.Path, res.StatusCode)]++
			for k, v := range res.Header {
				w.Header()[k] = v
			}
			w.WriteHeader(res.StatusCode)
			_, _ = w.Write(rec.Body.Bytes())
		})
	}

	key := map[string]string{"apiKey": tyntecsim.DefaultAPIKey}
	for _, sa := range []tyntecsim.SilentAuth{
		{VerifiedShare: 1}, {}, // verified, not verified
		{ErrorShare: 1, Errors: map[string]float64{tyntecsim.SilentTokenInternal: 1}},
		{ErrorShare: 1, Errors: map[string]float64{tyntecsim.SilentTokenDenied: 1}},
		{ErrorShare: 1, Errors: map[string]float64{tyntecsim.SilentUserinfoInternal: 1}},
		{ErrorShare: 1, Errors: map[string]float64{tyntecsim.SilentUserinfoDenied: 1}},
		{ErrorShare: 1, Errors: map[string]float64{tyntecsim.SilentNoDataSession: 1}},
	} {
		sa.Clients = map[string]string{"client": "12345"}
		sim, err := tyntecsim.New(tyntecsim.Config{Seed: 1, SilentAuth: &sa})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(validate(sim))
		t.Cleanup(srv.Close)
		base := srv.URL
		q := authorize(t, seedAuthorize(base, nil))
		if q.Get("code") == "" {
			continue
		}
		form(t, base+"/silent-auth/v1/oauth2/token", seedToken(q.Get("code")), map[string]string{"apiKey": "wrong"})
		_, raw := form(t, base+"/silent-auth/v1/oauth2/token", seedToken(q.Get("code")), key)
		token := tokenOf(raw)
		if token == "" {
			continue
		}
		get(t, base+"/silent-auth/v1/oauth2/userinfo", map[string]string{"Authorization": "Bearer " + token})
		get(t, base+"/silent-auth/v1/oauth2/userinfo", map[string]string{"Authorization": "Bearer nope"})
	}
	// Authorize errors are redirects like its codes.
	sa := tyntecsim.SilentAuth{Clients: map[string]string{"client": "12345"}}
	sim, err := tyntecsim.New(tyntecsim.Config{Seed: 1, SilentAuth: &sa})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(validate(sim))
	t.Cleanup(srv.Close)
	authorize(t, seedAuthorize(srv.URL, func(q url.Values) { q.Set("client_id", "nobody") }))
	form(t, srv.URL+"/silent-auth/v1/oauth2/token", url.Values{"grant_type": {"password"}, "code": {"x"}, "redirect_uri": {"https://a.example/"}, "client_id": {"client"}, "client_secret": {"12345"}}, key)

	for _, f := range failures {
		t.Error(f)
	}
	for _, want := range []string{
		"GET /oauth2/authorize 302", "POST /oauth2/token 200", "POST /oauth2/token 400", "POST /oauth2/token 401", "POST /oauth2/token 403", "POST /oauth2/token 500",
		"GET /oauth2/userinfo 200", "GET /oauth2/userinfo 401", "GET /oauth2/userinfo 403", "GET /oauth2/userinfo 500",
	} {
		if checked[want] == 0 {
			t.Errorf("no %s exchange was validated (validated: %v)", want, checked)
		}
	}
}

func tokenOf(raw []byte) string {
	const k = `"access_token":"`
	i := bytes.Index(raw, []byte(k))
	if i < 0 {
		return ""
	}
	rest := raw[i+len(k):]
	return string(rest[:bytes.IndexByte(rest, '"')])
}
