package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/cli"
	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/polltest"
	"github.com/otpscope/otpscope/internal/tyntec"
	"github.com/otpscope/otpscope/internal/tyntecsim"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		ok    bool
		check func(t *testing.T, o *options)
	}{
		{"defaults", nil, true, func(t *testing.T, o *options) {
			if o.listen != "127.0.0.1:8090" || o.cfg.Faults.RateLimit != 100 || o.cfg.Faults.RatePeriod != time.Minute || o.cfg.Traffic.Rate != 0 || len(o.cfg.Callbacks) != 0 {
				t.Errorf("defaults = listen %q, rate limit %d/%s, rate %v, callbacks %v", o.listen, o.cfg.Faults.RateLimit, o.cfg.Faults.RatePeriod, o.cfg.Traffic.Rate, o.cfg.Callbacks)
			}
		}},
		{"callback with headers", []string{"--callback-url", "http://127.0.0.1:8080/webhooks/tyntec", "--callback-header", "X-Webhook-Token: abc", "--callback-header", "X-Other:1"}, true, func(t *testing.T, o *options) {
			cb := o.cfg.Callbacks
			if len(cb) != 1 || cb[0].URL != "http://127.0.0.1:8080/webhooks/tyntec" || cb[0].Headers["X-Webhook-Token"] != "abc" || cb[0].Headers["X-Other"] != "1" {
				t.Errorf("callbacks = %+v", cb)
			}
		}},
		{"channel override", []string{"--channel", "sms:p=0,timeout=5s", "--channel", "VIBER:median=1s,p95=2s"}, true, func(t *testing.T, o *options) {
			sms, viber := o.cfg.Channels[events.ChannelSMS], o.cfg.Channels[events.ChannelViber]
			def := tyntecsim.DefaultChannels()[events.ChannelSMS]
			if sms.DeliveryProbability != 0 || sms.Timeout != 5*time.Second || sms.Latency != def.Latency || viber.Latency.Median != time.Second || viber.Latency.P95 != 2*time.Second {
				t.Errorf("channels = SMS %+v, VIBER %+v", sms, viber)
			}
		}},
		{"faults", []string{"--drop-webhooks", "0.1", "--api-error-share", "0.2", "--rate-limit", "0", "--api-key", "a", "--api-key", "b"}, true, func(t *testing.T, o *options) {
			f := o.cfg.Faults
			if f.WebhookDrop != 0.1 || f.APIError != 0.2 || f.RateLimit != 0 || len(o.cfg.APIKeys) != 2 {
				t.Errorf("faults %+v keys %v", f, o.cfg.APIKeys)
			}
		}},
		{"methods", []string{"--silent-share", "0.2", "--push-share", "0.1", "--silent-errors", "server_error=1", "--silent-latency", "2s",
			"--push-callback-url", "http://127.0.0.1:8080/webhooks/push", "--push-callback-header", "X-Webhook-Token: abc", "--otpscope-url", "http://127.0.0.1:8080"}, true, func(t *testing.T, o *options) {
			c := o.cfg
			if c.Traffic.SilentShare != 0.2 || c.Traffic.PushShare != 0.1 || c.SilentAuth.Errors["server_error"] != 1 || len(c.SilentAuth.Errors) != 1 ||
				c.SilentAuth.Latency.Median != 2*time.Second || c.SilentAuth.VerifiedShare != 0.8 || len(c.PushCallbacks) != 1 ||
				c.PushCallbacks[0].Headers["X-Webhook-Token"] != "abc" || c.Traffic.OTPScopeURL != "http://127.0.0.1:8080" || c.Push.ApprovedShare != 0.75 {
				t.Errorf("config %+v, silent %+v, push %+v", c.Traffic, c.SilentAuth, c.Push)
			}
		}},
		{"unknown silent error", []string{"--silent-errors", "oops=1"}, false, nil},
		{"shares above 1", []string{"--silent-share", "0.7", "--push-share", "0.7"}, false, nil},
		{"push header without url", []string{"--push-callback-header", "X: y"}, false, nil},
		{"header without url", []string{"--callback-header", "X: y"}, false, nil},
		{"malformed header", []string{"--callback-url", "http://127.0.0.1:1/", "--callback-header", "novalue"}, false, nil},
		{"unknown channel", []string{"--channel", "FAX:p=1"}, false, nil},
		{"bad share", []string{"--drop-webhooks", "2"}, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseFlags(tt.args, io.Discard)
			if (err == nil) != tt.ok {
				t.Fatalf("parseFlags(%q) error = %v; want ok=%v", tt.args, err, tt.ok)
			}
			if tt.check != nil {
				tt.check(t, o)
			}
		})
	}
}

func TestServe(t *testing.T) {
	var mu sync.Mutex
	tokens, paths := map[string]int{}, map[string]int{}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		tokens[r.Header.Get("X-Webhook-Token")]++
		paths[r.URL.Path]++
		mu.Unlock()
	}))
	defer hook.Close()

	truthFile := filepath.Join(t.TempDir(), "truth.json")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, []string{
			"--listen", "127.0.0.1:0", "--seed", "3", "--time-scale", "1000", "--rate", "200",
			"--callback-url", hook.URL, "--callback-header", "X-Webhook-Token: tok", "--truth-file", truthFile,
			"--silent-share", "0.3", "--push-share", "0.3", "--silent-latency", "100ms", "--push-latency", "1s",
			"--push-callback-url", hook.URL + "/webhooks/push", "--push-callback-header", "X-Webhook-Token: tok",
			"--otpscope-url", hook.URL, "--otpscope-header", "X-Webhook-Token: tok",
		}, slog.New(slog.DiscardHandler), ready)
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("serve ended early: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("simulator did not start")
	}

	polltest.Until(t, 10*time.Second, "webhooks, push callbacks and the app's reports, with the configured header", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return tokens["tok"] > 0 && paths["/webhooks/push"] > 0 && paths["/silent-auth/outcomes"] > 0 && paths["/otps/track"] > 0
	})
	mu.Lock()
	if tokens[""] != 0 {
		t.Errorf("%d requests without the configured header", tokens[""])
	}
	mu.Unlock()

	client, err := tyntec.New(tyntec.Config{BaseURL: "http://" + addr, APIKey: tyntecsim.DefaultAPIKey})
	if err != nil {
		t.Fatal(err)
	}
	cbs, err := client.ListCallbacks(t.Context())
	if err != nil || len(cbs) != 1 || cbs[0].URL != hook.URL {
		t.Errorf("ListCallbacks = %+v, %v; want the pre-registered one", cbs, err)
	}
	resp, err := http.Get("http://" + addr + "/_sim/truth")
	if err != nil {
		t.Fatal(err)
	}
	var truth tyntecsim.Truth
	err = json.NewDecoder(resp.Body).Decode(&truth)
	resp.Body.Close()
	if err != nil || len(truth.OTPs) == 0 {
		t.Errorf("/_sim/truth = %d OTPs, %v; want generated OTPs", len(truth.OTPs), err)
	}

	// A client's connection that has not sent a request (an HTTP client may
	// keep one unused) must not fail the shutdown: net/http counts it busy
	// for 5 s.
	unused, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer unused.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve = %v; want nil after cancel", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop")
	}
	raw, err := os.ReadFile(truthFile)
	if err != nil || json.Unmarshal(raw, &truth) != nil || len(truth.OTPs) == 0 {
		t.Errorf("truth file: %v, %d OTPs", err, len(truth.OTPs))
	}
}

// TestCommandIsACLICommand: tyntecsim takes --log-level and OTPSCOPE_*
// like every binary (checked on a configuration it refuses, so nothing runs).
func TestCommandIsACLICommand(t *testing.T) {
	env := []string{"OTPSCOPE_DROP_WEBHOOKS=2"}
	var out bytes.Buffer
	if code := cli.Main(command(), []string{"--log-level", "debug"}, env, &out, &out); code != 2 || !strings.Contains(out.String(), "tyntecsim:") {
		t.Errorf("tyntecsim --log-level debug with OTPSCOPE_DROP_WEBHOOKS=2 = %d, %q; want 2 refusing the share", code, out.String())
	}
	out.Reset()
	if code := cli.Main(command(), []string{"help"}, env, &out, &out); code != 0 || !strings.Contains(out.String(), "$OTPSCOPE_CALLBACK_URL") {
		t.Errorf("tyntecsim help = %d, %q; want 0 and the flags with their environment", code, out.String())
	}
	// config checks as the start does: what it refuses is exit 2.
	for args, want := range map[string]int{"--rate -5": 2, "--rate 5": 0} {
		out.Reset()
		if code := cli.Main(command(), append([]string{"config"}, strings.Fields(args)...), nil, &out, &out); code != want {
			t.Errorf("tyntecsim config %s = %d; want %d\n%s", args, code, want, out.String())
		}
	}
}
