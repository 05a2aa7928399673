package poller

import (
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/flagenv"
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

// TestFlagZeros: Config reads 0 as the default, so a 0 given on the
// command line or in the environment must not run as it: a wait's 0 is
// none, and 0 where none means nothing is refused naming the flag.
func TestFlagZeros(t *testing.T) {
	for _, name := range []string{"settle", "recheck", "grace", "push-grace"} {
		for _, env := range []bool{false, true} {
			var c Config
			fs := flag.NewFlagSet("poller", flag.ContinueOnError)
			c.RegisterFlags(fs)
			args, environ := []string{"--" + name, "0"}, map[string]string{}
			if env {
				args, environ = nil, map[string]string{flagenv.Name(name): "0"}
			}
			if err := flagenv.Parse(fs, args, func(k string) (string, bool) { v, ok := environ[k]; return v, ok }); err != nil {
				t.Fatalf("%s 0 (environment %v): %v; want accepted", name, env, err)
			}
			if s := fs.Lookup(name).Value.String(); s != "0s" {
				t.Errorf("%s 0 shows %q; want 0s", name, s)
			}
			d := c.withDefaults()
			got := map[string]time.Duration{"settle": d.Settle, "recheck": d.Recheck, "grace": d.Grace, "push-grace": d.Push.Grace}[name]
			if got != 0 {
				t.Errorf("%s 0 runs as %v; want 0 (none)", name, got)
			}
		}
	}
	for _, name := range []string{"settle", "recheck", "grace", "push-grace"} {
		var c Config
		fs := flag.NewFlagSet("poller", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		c.RegisterFlags(fs)
		if err := flagenv.Parse(fs, []string{"--" + name, "-1s"}, flagenv.Lookup(nil)); err == nil || !strings.Contains(err.Error(), "-"+name+": want 0 (none) or a positive duration") {
			t.Errorf("%s -1s: %v; want refused, naming the flag and what it takes", name, err)
		}
	}
	for _, tt := range []struct{ name, want string }{
		{"otp-expiry", "want a positive duration"},
		{"leader-ttl", "want a positive duration"},
		{"state-ttl", "want a positive duration"},
		{"push-rate-limit", "want a whole number of 1 or more"},
		{"push-rate-period", "want a positive duration"},
		{"push-recheck", "want a positive duration"},
		{"push-max-polls", "want a whole number of 1 or more"},
		{"push-timeout", "want a positive duration"},
		{"tyntec-rate-limit", "want a whole number of 1 or more"},
		{"tyntec-rate-period", "want a positive duration"},
		{"tyntec-timeout", "want a positive duration"},
	} {
		for _, env := range []bool{false, true} {
			var c Config
			fs := flag.NewFlagSet("poller", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			c.RegisterFlags(fs)
			before := fs.Lookup(tt.name).Value.String()
			args, lookup := []string{"--" + tt.name, "0"}, func(string) (string, bool) { return "", false }
			named := "-" + tt.name
			if env {
				args, lookup = nil, func(k string) (string, bool) { return "0", k == flagenv.Name(tt.name) }
				named = flagenv.Name(tt.name)
			}
			err := flagenv.Parse(fs, args, lookup)
			if err == nil || !strings.Contains(err.Error(), named) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%s 0 (environment %v): %v; want refused naming %s: %s", tt.name, env, err, named, tt.want)
			}
			if after := fs.Lookup(tt.name).Value.String(); after != before {
				t.Errorf("%s after a refused 0 = %s; want %s as before", tt.name, after, before)
			}
		}
	}
}
