package main

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/otpscope/otpscope/internal/app"
	"github.com/otpscope/otpscope/internal/tyntec"
	"github.com/otpscope/otpscope/internal/tyntecsim"
	"github.com/otpscope/otpscope/internal/tyntecsim/simtest"
)

func TestRegisterCallbackCommand(t *testing.T) {
	_, simURL := simtest.Start(t, tyntecsim.Config{Seed: 1})
	env := []string{
		"OTPSCOPE_TYNTEC_URL=" + simURL,
		"OTPSCOPE_TYNTEC_API_KEY=" + tyntecsim.DefaultAPIKey,
		"OTPSCOPE_WEBHOOK_TOKENS=first-token-0123456789,second-token-0123456789",
	}
	for i := range 2 {
		var stderr bytes.Buffer
		code := run([]string{"register-callback", "--ingest-url", "http://127.0.0.1:8080/"}, env, io.Discard, &stderr)
		if code != 0 {
			t.Fatalf("run #%d = %d; stderr:\n%s", i+1, code, stderr.String())
		}
	}
	client, err := tyntec.New(tyntec.Config{BaseURL: simURL, APIKey: tyntecsim.DefaultAPIKey, RateLimit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	cbs, err := client.ListCallbacks(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(cbs) != 1 || cbs[0].URL != "http://127.0.0.1:8080/webhooks/tyntec" || cbs[0].Headers["X-Webhook-Token"] != "first-token-0123456789" {
		t.Errorf("callbacks after two registrations: %+v; want one at ingest with the first token", cbs)
	}

	// Another deployment: a dry run changes nothing, the registration adds
	// its own and leaves the first deployment's alone.
	staging := []string{"register-callback", "--ingest-url", "http://127.0.0.1:9090", "--deployment-id", "staging"}
	for _, args := range [][]string{append(staging, "--dry-run"), staging} {
		var stderr bytes.Buffer
		if code := run(args, env, io.Discard, &stderr); code != 0 {
			t.Fatalf("run %v = %d; stderr:\n%s", args, code, stderr.String())
		}
		after, err := client.ListCallbacks(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		want := 2
		if strings.Contains(strings.Join(args, " "), "--dry-run") {
			want = 1
		}
		if len(after) != want {
			t.Fatalf("after %v: %d callbacks %+v; want %d", args, len(after), after, want)
		}
		for _, cb := range after {
			if cb.ID == cbs[0].ID && (cb.URL != cbs[0].URL || cb.Headers["X-Otpscope-Callback"] != cbs[0].Headers["X-Otpscope-Callback"]) {
				t.Errorf("the first deployment's callback changed: %+v", cb)
			}
		}
	}
}

func TestUsageErrors(t *testing.T) {
	var none []string
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"register-callback", "--tyntec-api-key", "k", "--webhook-token", "t0123456789abcdef"}, "--ingest-url is required"},
		{[]string{"register-callback", "--tyntec-api-key", "k", "--ingest-url", "http://127.0.0.1:8080"}, "--webhook-token"},
		{[]string{"--tyntec-api-key", "k", "--resend-mode", "yolo"}, "resend-mode"},
		{[]string{"--tyntec-api-key", "k", "--reconcile-schedule", "every now and then"}, "reconcile-schedule"},
		{[]string{"--reconcile-schedule", "@every 30s"}, "API key"},
	}
	for _, tt := range tests {
		var stderr bytes.Buffer
		if code := run(tt.args, none, io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), tt.want) {
			t.Errorf("run(%q) = %d, stderr %q; want 2 and %q", tt.args, code, stderr.String(), tt.want)
		}
	}
}

// One environment file serves every binary: register-callback's
// variables are known to the others, which do not warn of them.
func TestRegisterCallbackEnvIsKnown(t *testing.T) {
	if unknown := app.UnknownEnv(registerCommand()); len(unknown) > 0 {
		t.Errorf("poller register-callback reads %v, which other binaries would warn of (app.cmdEnv)", unknown)
	}
}
