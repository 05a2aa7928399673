package poller

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otpscope/otpscope/internal/tyntec"
)

func validConfig() Config {
	return Config{Tyntec: tyntec.Config{APIKey: "key"}}
}

// TestValidateSchedule checks the --reconcile-schedule specs robfig/cron
// v3.0.1 mishandles: a time zone alone (its parser panics) and an @every
// under a second (it runs every second).
func TestValidateSchedule(t *testing.T) {
	for _, tc := range []struct {
		spec, want string // want in the error; "" accepts
	}{
		{"TZ=UTC", "a space and a schedule after"},
		{"CRON_TZ=Europe/Berlin", "a space and a schedule after"},
		{"CRON_TZ=Europe/Berlin ", "a space and a schedule after"},
		{"@every 0s", "at least 1s"},
		{"@every -24h", "at least 1s"},
		{"@every 1ms", "at least 1s"},
		{"TZ=UTC @every 500ms", "at least 1s"},
		{"every minute", "expected exactly 5 fields"},
		{"@every 1s", ""},
		{"@every 30s", ""},
		{"*/1 * * * *", ""},
		{"CRON_TZ=Europe/Berlin */5 * * * *", ""},
	} {
		cfg := validConfig()
		cfg.Schedule = tc.spec
		err := cfg.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("--reconcile-schedule %q: %v; want it accepted", tc.spec, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), "reconcile-schedule") || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("--reconcile-schedule %q: %v; want it refused, naming the flag and %q", tc.spec, err, tc.want)
		}
	}
}

// TestValidateResendPolicy checks that Validate, and so `otpscope config`,
// refuses a policy file New would, with New's message, before New opens
// anything (b is nil).
func TestValidateResendPolicy(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte("{bad"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{filepath.Join(t.TempDir(), "missing.json"), bad} {
		cfg := validConfig()
		cfg.ResendPolicy = path
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), "resend policy") {
			t.Errorf("--resend-policy %s: Validate = %v; want it refused", path, err)
			continue
		}
		if _, nerr := New(t.Context(), cfg, nil, slog.New(slog.DiscardHandler), nil); nerr == nil || nerr.Error() != err.Error() {
			t.Errorf("--resend-policy %s: New = %v; want Validate's %v", path, nerr, err)
		}
	}
	cfg := validConfig()
	cfg.ResendPolicy = "testdata/resend-policy.json"
	if err := cfg.Validate(); err != nil {
		t.Errorf("--resend-policy %s: %v; want it accepted", cfg.ResendPolicy, err)
	}
}

// TestValidateRegisterCallbackURL: a callback URL with the webhook path
// twice is refused at start (config, New), not at every attempt of the
// leader's registration, which would try it again for good.
func TestValidateRegisterCallbackURL(t *testing.T) {
	for url, ok := range map[string]bool{
		"https://otpscope.example.com/webhooks/tyntec":                 true,
		"https://otpscope.example.com/webhooks/tyntec/webhooks/tyntec": false,
		"ftp://otpscope.example.com/webhooks/tyntec":                   false,
	} {
		cfg := validConfig()
		cfg.RegisterCallbackURL = url
		if err := cfg.Validate(); (err == nil) != ok {
			t.Errorf("--register-callback-url %s: %v; want accepted %v", url, err, ok)
		}
	}
}
