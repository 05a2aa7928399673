package tyntec_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/tyntec"
	"github.com/otpscope/otpscope/internal/tyntecsim"
)

// tyntec's OpenAPI files are third-party text and are not in this
// repository. The contract tests read them from the directory in
// OTPSCOPE_TYNTEC_REFERENCE, or from ../shared/reference/tyntec beside the
// checkout (where CI has them).
const referenceEnv = "OTPSCOPE_TYNTEC_REFERENCE"

// The API files the client and the simulator must agree with.
var apiFiles = []string{
	"2fa_v1_openapi.yaml",
	"2fa_v4_tfa-otp-management_open-api-docs.yaml",
	"2fa_v4_tfa-configuration-management_open-api-docs.yaml",
	"2fa_v4_tfa-priority-management_open-api-docs.yaml",
	"2fa_v4_tfa-profile-management_open-api-docs.yaml",
}

const webhookFile = "2fa_v4_tfa-webhooks_open-api-docs.yaml"

// referenceDir returns the directory of tyntec's OpenAPI files, or skips
// the test loudly (fails it when CI is set, since CI always has them).
func referenceDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv(referenceEnv)
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			t.Fatal(err)
		}
		for d := wd; ; d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				dir = filepath.Join(d, "..", "shared", "reference", "tyntec")
				break
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, webhookFile)); err != nil {
		msg := fmt.Sprintf("\n\n*** CONTRACT TEST NOT RUN: tyntec's OpenAPI files not found in %q (%v).\n"+
			"*** Put tyntec's api-collection 2FA files (%s, ...) in ../shared/reference/tyntec\n"+
			"*** beside the checkout, or set %s to their directory.\n", dir, err, webhookFile, referenceEnv)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return dir
}

// defineFormats makes "format: uuid" checked; kin-openapi knows it but
// leaves it undefined by default.
var defineFormats = sync.OnceFunc(func() {
	openapi3.DefineStringFormatValidator("uuid", openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringForUUIDOfRFC9562))
})

func loadSpec(t *testing.T, path string) *openapi3.T {
	t.Helper()
	defineFormats()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(path)
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	return doc
}

// contract validates requests and responses against tyntec's files.
type contract struct {
	routers []routers.Router
	mu      sync.Mutex
	errs    []string
	checked map[string]int // "METHOD path-template status" → count
}

func newContract(t *testing.T, dir string) *contract {
	c := &contract{checked: map[string]int{}}
	for _, f := range apiFiles {
		doc := loadSpec(t, filepath.Join(dir, f))
		doc.Servers = nil // match paths on any host
		// tyntec's files carry examples that do not match their own schemas
		// (an array example on an object); they say nothing about the wire.
		r, err := legacy.NewRouter(doc, openapi3.DisableExamplesValidation())
		if err != nil {
			t.Fatalf("router for %s: %v", f, err)
		}
		c.routers = append(c.routers, r)
	}
	return c
}

func (c *contract) fail(format string, args ...any) {
	c.mu.Lock()
	c.errs = append(c.errs, fmt.Sprintf(format, args...))
	c.mu.Unlock()
}

// requireAPIKey checks the apiKey security scheme the files declare.
func requireAPIKey(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	if in.SecurityScheme.Type == "apiKey" && in.RequestValidationInput.Request.Header.Get(in.SecurityScheme.Name) == "" {
		return fmt.Errorf("missing %s header", in.SecurityScheme.Name)
	}
	return nil
}

// wrap validates every request to next and every response from it.
func (c *contract) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))

		var route *routers.Route
		var params map[string]string
		for _, rt := range c.routers {
			if rr, p, err := rt.FindRoute(r); err == nil {
				route, params = rr, p
				break
			}
		}
		if route == nil {
			c.fail("%s %s: not in tyntec's API files", r.Method, r.URL.Path)
			next.ServeHTTP(w, r)
			return
		}
		opts := &openapi3filter.Options{AuthenticationFunc: requireAPIKey, MultiError: true}
		reqIn := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route, Options: opts}
		if err := openapi3filter.ValidateRequest(r.Context(), reqIn); err != nil {
			c.fail("request %s %s: %v", r.Method, r.URL, err)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))

		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		res := rec.Result()
		respBody := rec.Body.Bytes()
		// 204 has no body by definition (RFC 9110); the v1 file nevertheless
		// gives it a schema, so only its status is checked.
		if res.StatusCode != http.StatusNoContent {
			resIn := &openapi3filter.ResponseValidationInput{RequestValidationInput: reqIn, Status: res.StatusCode, Header: res.Header, Options: opts}
			resIn.SetBodyBytes(respBody)
			if err := openapi3filter.ValidateResponse(r.Context(), resIn); err != nil {
				c.fail("response %d to %s %s: %v\nbody: %s", res.StatusCode, r.Method, r.URL, err, respBody)
			}
		}
		c.mu.Lock()
		c.checked[fmt.Sprintf("%s %s %d", r.Method, route.Path, res.StatusCode)]++
		c.mu.Unlock()

		for k, vs := range res.Header {
			w.Header()[k] = vs
		}
		w.WriteHeader(res.StatusCode)
		_, _ = w.Write(respBody)
	})
}

func (c *contract) report(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.errs {
		t.Error(e)
	}
	if len(c.checked) == 0 {
		t.Error("no exchange was validated")
	}
	t.Logf("validated %d distinct exchanges: %v", len(c.checked), c.checked)
}

// TestContractClientAndSimulator runs every client call against the
// simulator through a proxy that validates both sides against tyntec's files.
func TestContractClientAndSimulator(t *testing.T) {
	dir := referenceDir(t)
	c := newContract(t, dir)
	hookURL, _ := hookSink(t, nil)
	e := newEnv(t, tyntecsim.Config{Seed: 1, TimeScale: 1000, OTPExpiry: time.Hour}, tyntec.Config{MaxRetries: -1}, c.wrap)
	exerciseAll(t, e, hookURL)

	// Error answers are part of the contract too.
	ctx := t.Context()
	if _, err := e.client.GetOTP(ctx, "3fa85f64-5717-4562-b3fc-2c963f66afa6"); !tyntec.IsNotFound(err) {
		t.Errorf("GetOTP(unknown) = %v", err)
	}
	if _, err := e.client.GetPriority(ctx, "3fa85f64-5717-4562-b3fc-2c963f66afa6"); !tyntec.IsNotFound(err) {
		t.Errorf("GetPriority(unknown) = %v", err)
	}
	if _, err := e.client.GetProfile(ctx, "3fa85f64-5717-4562-b3fc-2c963f66afa6"); !tyntec.IsNotFound(err) {
		t.Errorf("GetProfile(unknown) = %v", err)
	}
	if _, err := e.client.PatchCallback(ctx, "3fa85f64-5717-4562-b3fc-2c963f66afa6", tyntec.NewCallbackConfig{URL: hookURL}); !tyntec.IsNotFound(err) {
		t.Errorf("PatchCallback(unknown) = %v", err)
	}
	if _, err := e.client.SendOTP(ctx, tyntec.NewOTPRequest{ProfileName: "x"}); !errors.Is(err, tyntec.ErrBadRequest) {
		t.Errorf("SendOTP(no to) = %v", err)
	}
	if _, err := e.client.CreateCallback(ctx, tyntec.NewCallbackConfig{}); !errors.Is(err, tyntec.ErrBadRequest) {
		t.Errorf("CreateCallback(no url) = %v", err)
	}
	if _, err := e.client.V1OTP(ctx, "unknown"); !tyntec.IsNotFound(err) {
		t.Errorf("V1OTP(unknown) = %v", err)
	}
	if _, err := e.client.V1Send(ctx, tyntec.V1SendRequest{Number: "not-a-number"}); !errors.Is(err, tyntec.ErrBadRequest) {
		t.Errorf("V1Send(bad number) = %v", err)
	}
	v1, err := e.client.V1Send(ctx, tyntec.V1SendRequest{Number: "+491707778899", OTPCode: "4711"})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		_, _ = e.client.V1Check(ctx, v1.OTPID, "0000") // 401, 401, 403
	}
	if _, err := e.client.V1Check(ctx, v1.OTPID, "0000"); !errors.Is(err, tyntec.ErrGone) {
		t.Errorf("V1Check after too many attempts = %v; want 410", err)
	}
	if _, err := e.client.V1Resend(ctx, v1.OTPID, tyntec.ResendRequest{}); !errors.Is(err, tyntec.ErrUnauthorized) {
		t.Errorf("V1Resend of a closed OTP = %v; want 401", err)
	}
	c.report(t)
}

// TestContractSimulatorErrorShapes checks the simulator's 5xx and 429
// answers, which the client only meets under faults.
func TestContractSimulatorErrorShapes(t *testing.T) {
	dir := referenceDir(t)
	c := newContract(t, dir)
	e := newEnv(t, tyntecsim.Config{Seed: 1, Faults: tyntecsim.Faults{APIError: 1}}, tyntec.Config{MaxRetries: -1}, c.wrap)
	for _, call := range []func() error{
		func() error { _, err := e.client.ListOTPs(t.Context(), tyntec.OTPFilter{}); return err },
		func() error { _, err := e.client.ListCallbacks(t.Context()); return err },
		func() error { _, err := e.client.ListPriorities(t.Context(), ""); return err },
		func() error { _, err := e.client.V1Events(t.Context(), "x"); return err },
		func() error { _, err := e.client.V1OTP(t.Context(), "x"); return err },
	} {
		if err := call(); !errors.Is(err, tyntec.ErrServer) {
			t.Errorf("call under 5xx fault = %v; want ErrServer", err)
		}
	}
	c.report(t)
}

// TestContractWebhookBodies validates every DeliveryStatus the simulator
// sends, failures and fallbacks included, against tyntec's webhook schemas.
func TestContractWebhookBodies(t *testing.T) {
	dir := referenceDir(t)
	doc := loadSpec(t, filepath.Join(dir, webhookFile))
	schemas := map[bool]*openapi3.Schema{}
	for withErr, name := range map[bool]string{false: "DeliveryStatus", true: "DeliveryStatusWithError"} {
		ref, ok := doc.Components.Schemas[name]
		if !ok || ref.Value == nil {
			t.Fatalf("%s has no schema %s", webhookFile, name)
		}
		schemas[withErr] = ref.Value
	}
	var mu sync.Mutex
	seen := map[string]int{}
	hookURL, count := hookSink(t, func(t *testing.T, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("webhook Content-Type %q", ct)
		}
		var v map[string]any
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Errorf("webhook body %s: %v", raw, err)
			return
		}
		// The operation's body is oneOf the two schemas, but neither forbids
		// the other's fields, so every body matches both and a oneOf check
		// cannot pass; each body is checked against the schema of its kind.
		_, withErr := v["error"]
		if err := schemas[withErr].VisitJSON(v, openapi3.EnableFormatValidation(), openapi3.MultiErrors()); err != nil {
			t.Errorf("webhook body %s does not match tyntec's schema: %v", raw, err)
		}
		mu.Lock()
		seen[fmt.Sprintf("%v/%v", v["channel"], v["status"])]++
		mu.Unlock()
	})
	chs := tyntecsim.DefaultChannels()
	for _, name := range []events.Channel{events.ChannelSMS, events.ChannelWhatsApp} {
		ch := chs[name]
		ch.DeliveryProbability = 0.5
		chs[name] = ch
	}
	sim, err := tyntecsim.New(tyntecsim.Config{Seed: 2, TimeScale: 1000, OTPExpiry: time.Hour, Channels: chs,
		Callbacks: []tyntec.NewCallbackConfig{{URL: hookURL, Headers: map[string]string{"X-Webhook-Token": "t"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	for i := range 40 {
		prio := []string{"tyntec_priority_sms-viber", "tyntec_priority_whatsapp-sms", "tyntec_priority_sms-voice"}[i%3]
		if _, err := sim.Send(tyntec.NewOTPRequest{To: "+491700000010", PriorityName: prio}); err != nil {
			t.Fatal(err)
		}
	}
	if err := sim.WaitIdle(t.Context()); err != nil {
		t.Fatal(err)
	}
	if count() == 0 {
		t.Fatal("no webhook received")
	}
	for _, want := range []string{"SMS/DISPATCHED", "SMS/DELIVERED", "SMS/UNDELIVERABLE", "VIBER/DISPATCHED", "WHATSAPP/DELIVERED"} {
		if seen[want] == 0 {
			t.Errorf("no %s webhook among %v; the test would not cover it", want, seen)
		}
	}
}
