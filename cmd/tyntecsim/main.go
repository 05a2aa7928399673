// Command tyntecsim runs the tyntec 2FA simulator on its own, so that a
// staging otpscope (or anything else that speaks tyntec's 2FA API) can be
// pointed at it instead of api.tyntec.com.
//
// It serves tyntec's v4 and v1 2FA endpoints, Silent Authentication and push
// approvals, sends DeliveryStatus webhooks to the registered callbacks and
// push callbacks to --push-callback-url, optionally generates logins (an
// OTP, or silent auth or a push first), and exposes what it did at GET
// /_sim/truth and GET /_sim/calls.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/otpscope/otpscope/internal/cli"
	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/ops"
	"github.com/otpscope/otpscope/internal/tyntec"
	"github.com/otpscope/otpscope/internal/tyntecsim"
)

func main() { os.Exit(cli.Main(command(), os.Args[1:], os.Environ(), os.Stdout, os.Stderr)) }

// command is tyntecsim as a cli.Command, like every otpscope binary: its
// flags read OTPSCOPE_<FLAG> too, and it takes --log-level. It does not
// warn of OTPSCOPE_* variables it does not read (no OtherEnv): it shares
// the environment with otpscope without knowing otpscope's variables.
func command() cli.Command {
	return cli.Command{
		Name:    "tyntecsim",
		Summary: "a simulated tyntec 2FA API with webhooks, faults and ground truth",
		// `tyntecsim config` checks the flags as a start would: exit 2 on
		// what the start refuses.
		Checkable: true,
		Flags: func(fs *flag.FlagSet) func(context.Context, *slog.Logger) error {
			o := registerFlags(fs)
			return func(ctx context.Context, logger *slog.Logger) error {
				if err := o.complete(); err != nil {
					return cli.Usage(err)
				}
				if cli.CheckOnly(ctx) {
					return nil
				}
				return o.serve(ctx, logger, nil)
			}
		},
	}
}

// options are the command's flags.
type options struct {
	listen    string
	cfg       tyntecsim.Config
	apiKeys   listFlag
	callback  tyntec.NewCallbackConfig
	headers   listFlag
	channels  listFlag
	truthFile string

	silent         tyntecsim.SilentAuth
	silentErrors   string
	silentLatency  time.Duration
	push           tyntecsim.Push
	pushLatency    time.Duration
	pushCallback   string
	pushHeaders    listFlag
	otpscopeHeader listFlag
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// parseFlags parses args alone (no environment), for tests.
func parseFlags(args []string, out io.Writer) (*options, error) {
	fs := flag.NewFlagSet("tyntecsim", flag.ContinueOnError)
	fs.SetOutput(out)
	o := registerFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return o, o.complete()
}

// registerFlags registers the command's flags on fs.
func registerFlags(fs *flag.FlagSet) *options {
	o := &options{}
	c := &o.cfg
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8090", "address to serve the simulated tyntec API on")
	fs.Int64Var(&c.Seed, "seed", 0, "seed of every random choice (0 = a fresh random seed, logged at start)")
	fs.Var(&o.apiKeys, "api-key", "accepted apiKey header value (repeatable; default "+tyntecsim.DefaultAPIKey+")")
	fs.Float64Var(&c.TimeScale, "time-scale", 1, "simulated seconds per wall-clock second")
	fs.IntVar(&c.Keep, "keep", tyntecsim.DefaultKeep, "OTPs kept; past them the oldest settled ones are forgotten (their API answers 404, the truth counts them as forgotten), so a long run's memory stays bounded (0 = keep all)")
	fs.DurationVar(&c.OTPExpiry, "otp-expiry", 0, "OTP validity for every OTP (simulated time; 0 = the template's codeExpirationTime for v4, 300s for v1)")
	fs.BoolVar(&c.SharedVersions, "shared-versions", false, "one OTP store for v1 and v4 (assumed, no seed says tyntec shares them): v1 reads, events, checks and re-sends v4 OTPs")
	fs.Float64Var(&c.Traffic.Rate, "rate", 0, "generated logins per second, each an OTP or a method first (0 = none)")
	fs.Float64Var(&c.Traffic.V1Share, "v1-share", 0, "share of generated OTPs sent through the v1 API")
	fs.Float64Var(&c.Traffic.VerifyShare, "verify-share", 0.8, "share of delivered generated OTPs whose user verifies the code")
	fs.StringVar(&o.callback.URL, "callback-url", "", "pre-register a callback configuration with this URL")
	fs.StringVar(&o.callback.ProfileID, "callback-profile-id", "", "profile ID filter of the pre-registered callback")
	fs.Var(&o.headers, "callback-header", `custom header of the pre-registered callback, "Name: value" (repeatable)`)
	fs.Var(&o.channels, "channel", `channel behaviour "SMS:p=0.92,median=3s,p95=15s,timeout=60s,dispatch=200ms" (repeatable; omitted keys keep defaults)`)
	fs.Float64Var(&c.Faults.WebhookDrop, "drop-webhooks", 0, "share of webhooks never sent")
	fs.Float64Var(&c.Faults.WebhookDuplicate, "duplicate-webhooks", 0, "share of webhooks sent twice")
	fs.Float64Var(&c.Faults.WebhookReorder, "reorder-webhooks", 0, "share of webhooks held back so later ones overtake them")
	fs.DurationVar(&c.Faults.ReorderDelay, "reorder-delay", 10*time.Second, "how long a reordered webhook is held back (simulated time)")
	fs.Float64Var(&c.Faults.APIError, "api-error-share", 0, "share of API calls answered with --api-error-status")
	fs.IntVar(&c.Faults.APIErrorStatus, "api-error-status", http.StatusInternalServerError, "status of injected API errors")
	fs.Float64Var(&c.Faults.APISlow, "api-slow-share", 0, "share of API calls answered slowly")
	fs.DurationVar(&c.Faults.APISlowDelay, "api-slow-delay", 2*time.Second, "delay of a slow API answer (wall clock)")
	fs.IntVar(&c.Faults.RateLimit, "rate-limit", 100, "API calls allowed per --rate-period per API key, then 429 (0 = unlimited)")
	fs.DurationVar(&c.Faults.RatePeriod, "rate-period", 60*time.Second, "API rate-limit window (wall clock)")
	fs.DurationVar(&c.Faults.RetryAfter, "retry-after", 0, "fixed Retry-After of a 429 (0 = until the window frees a call)")
	fs.IntVar(&c.Webhook.MaxAttempts, "webhook-max-attempts", 5, "attempts per webhook before giving up")
	fs.DurationVar(&c.Webhook.InitialBackoff, "webhook-backoff", time.Second, "first webhook retry delay, doubled per retry (simulated time)")
	fs.StringVar(&o.truthFile, "truth-file", "", "write the ground truth (every OTP kept and the summary, snake_case JSON) to this file on exit")

	sa, p := tyntecsim.DefaultSilentAuth(), tyntecsim.DefaultPush()
	fs.Float64Var(&c.Traffic.SilentShare, "silent-share", 0, "share of generated logins that try Silent Authentication first (an OTP follows when it fails)")
	fs.Float64Var(&c.Traffic.PushShare, "push-share", 0, "share of generated logins that try a push approval first (an OTP follows when it is denied or expires)")
	fs.Float64Var(&o.silent.VerifiedShare, "silent-verified-share", sa.VerifiedShare, "share of silent-auth attempts that verify the number")
	fs.Float64Var(&o.silent.ErrorShare, "silent-error-share", sa.ErrorShare, "share of silent-auth attempts that end with an error (the rest: not verified)")
	fs.StringVar(&o.silentErrors, "silent-errors", "", `weights of the silent-auth errors, "no_data_session=0.6,server_error=0.2,token_internal_server_error=0.1,userinfo_internal_server_error=0.1" (empty = these)`)
	fs.DurationVar(&o.silentLatency, "silent-latency", sa.Latency.Median, "median time of authorize's network lookup (simulated; p95 3x)")
	fs.Float64Var(&o.push.ApprovedShare, "push-approved-share", p.ApprovedShare, "share of approval requests the user approves")
	fs.Float64Var(&o.push.DeniedShare, "push-denied-share", p.DeniedShare, "share of approval requests the user denies (the rest are never answered and expire)")
	fs.DurationVar(&o.pushLatency, "push-latency", p.AnswerLatency.Median, "median time until the user answers an approval request (simulated; p95 3x)")
	fs.IntVar(&c.Traffic.PushSecondsToExpire, "push-seconds-to-expire", 120, "seconds_to_expire of the generated logins' approval requests")
	fs.StringVar(&o.pushCallback, "push-callback-url", "", "post every approval request's status changes to this URL (otpscope: /webhooks/push)")
	fs.Var(&o.pushHeaders, "push-callback-header", `header sent with each push callback, "Name: value" (repeatable)`)
	fs.StringVar(&c.Traffic.OTPScopeURL, "otpscope-url", "", "otpscope's public base URL: the generated logins' app reports silent-auth outcomes and tracks OTPs there (empty = reports nothing)")
	fs.Var(&o.otpscopeHeader, "otpscope-header", `header sent with each report to otpscope, "Name: value" (repeatable)`)
	return o
}

// parseHeaders reads repeated "Name: value" flags.
func parseHeaders(flagName string, hs []string) (map[string]string, error) {
	if len(hs) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, h := range hs {
		name, value, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(name) == "" {
			return nil, fmt.Errorf("--%s %q: want \"Name: value\"", flagName, h)
		}
		out[strings.TrimSpace(name)] = strings.TrimSpace(value)
	}
	return out, nil
}

// completeMethods derives the silent-auth and push configuration.
func (o *options) completeMethods() error {
	c := &o.cfg
	sa := tyntecsim.DefaultSilentAuth()
	sa.VerifiedShare, sa.ErrorShare = o.silent.VerifiedShare, o.silent.ErrorShare
	sa.Latency = tyntecsim.LogNormal{Median: o.silentLatency, P95: 3 * o.silentLatency}
	if o.silentErrors != "" {
		sa.Errors = map[string]float64{}
		for kv := range strings.SplitSeq(o.silentErrors, ",") {
			k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
			w, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return fmt.Errorf("--silent-errors %q: %q: want name=weight", o.silentErrors, kv)
			}
			sa.Errors[k] = w
		}
	}
	c.SilentAuth = &sa
	p := tyntecsim.DefaultPush()
	p.ApprovedShare, p.DeniedShare = o.push.ApprovedShare, o.push.DeniedShare
	p.AnswerLatency = tyntecsim.LogNormal{Median: o.pushLatency, P95: 3 * o.pushLatency}
	c.Push = &p
	hs, err := parseHeaders("push-callback-header", o.pushHeaders)
	if err != nil {
		return err
	}
	if o.pushCallback != "" {
		c.PushCallbacks = []tyntecsim.PushCallback{{URL: o.pushCallback, Headers: hs}}
	} else if len(hs) > 0 {
		return errors.New("--push-callback-header needs --push-callback-url")
	}
	if c.Traffic.OTPScopeHeaders, err = parseHeaders("otpscope-header", o.otpscopeHeader); err != nil {
		return err
	}
	return nil
}

// complete derives the simulator's Config from the parsed flags and
// validates it.
func (o *options) complete() error {
	c := &o.cfg
	c.APIKeys = o.apiKeys
	if o.callback.URL != "" {
		for _, h := range o.headers {
			name, value, ok := strings.Cut(h, ":")
			if !ok || strings.TrimSpace(name) == "" {
				return fmt.Errorf("--callback-header %q: want \"Name: value\"", h)
			}
			if o.callback.Headers == nil {
				o.callback.Headers = map[string]string{}
			}
			o.callback.Headers[strings.TrimSpace(name)] = strings.TrimSpace(value)
		}
		c.Callbacks = []tyntec.NewCallbackConfig{o.callback}
	} else if len(o.headers) > 0 {
		return errors.New("--callback-header needs --callback-url")
	}
	if err := o.completeMethods(); err != nil {
		return err
	}
	if len(o.channels) > 0 {
		c.Channels = tyntecsim.DefaultChannels()
		for _, spec := range o.channels {
			if err := parseChannel(c.Channels, spec); err != nil {
				return err
			}
		}
	}
	return c.Validate()
}

// parseChannel applies "NAME:key=value,..." to chs.
func parseChannel(chs map[events.Channel]tyntecsim.Channel, spec string) error {
	name, kvs, _ := strings.Cut(spec, ":")
	name = strings.ToUpper(strings.TrimSpace(name))
	ch, ok := chs[events.Channel(name)]
	if !ok {
		return fmt.Errorf("--channel %q: unknown channel %q", spec, name)
	}
	for kv := range strings.SplitSeq(kvs, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		var err error
		switch k {
		case "p":
			ch.DeliveryProbability, err = strconv.ParseFloat(v, 64)
		case "median":
			ch.Latency.Median, err = time.ParseDuration(v)
		case "p95":
			ch.Latency.P95, err = time.ParseDuration(v)
		case "timeout":
			ch.Timeout, err = time.ParseDuration(v)
		case "dispatch":
			ch.DispatchDelay, err = time.ParseDuration(v)
		default:
			err = fmt.Errorf("unknown key %q (want p, median, p95, timeout, dispatch)", k)
		}
		if err != nil {
			return fmt.Errorf("--channel %q: %w", spec, err)
		}
	}
	chs[events.Channel(name)] = ch
	return nil
}

// serve parses args alone and runs the simulator until ctx ends, for tests.
// ready, when not nil, receives the listening address.
func serve(ctx context.Context, args []string, log *slog.Logger, ready chan<- string) error {
	o, err := parseFlags(args, os.Stderr)
	if err != nil {
		return err
	}
	return o.serve(ctx, log, ready)
}

// serve runs the simulator until ctx ends. ready, when not nil, receives
// the listening address.
func (o *options) serve(ctx context.Context, log *slog.Logger, ready chan<- string) error {
	o.cfg.Logger = log
	if o.cfg.Seed == 0 {
		// A fresh seed per run unless asked: a restarted demo must not tell
		// the same story again. Logged below so a run can be repeated.
		o.cfg.Seed = rand.Int64N(math.MaxInt64) + 1
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.listen, err)
	}
	// The generated logins' app calls the simulator where it listens.
	o.cfg.Traffic.SimURL = "http://" + ln.Addr().String()
	sim, err := tyntecsim.New(o.cfg)
	if err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{Handler: sim.InspectHandler(), ReadHeaderTimeout: 10 * time.Second}

	if err := sim.Start(ctx); err != nil {
		return err
	}
	log.Info("tyntec simulator listening", "addr", ln.Addr().String(), "seed", o.cfg.Seed, "time_scale", o.cfg.TimeScale, "rate", o.cfg.Traffic.Rate, "silent_share", o.cfg.Traffic.SilentShare, "push_share", o.cfg.Traffic.PushShare, "shared_versions", o.cfg.SharedVersions)
	if ready != nil {
		ready <- ln.Addr().String()
	}
	err = ops.Serve(ctx, srv, ln, tyntecsim.ShutdownGrace)
	_ = sim.Close()
	if o.truthFile != "" {
		if werr := writeTruth(o.truthFile, sim); werr != nil && err == nil {
			err = werr
		}
	}
	return err
}

// truthFile is what --truth-file holds: GET /_sim/truth with every OTP on
// one page, plus GET /_sim/truth/summary.
type truthFile struct {
	tyntecsim.Truth
	Summary tyntecsim.Summary `json:"summary"`
}

// writeTruth writes the whole truth as compact JSON (indenting doubled the
// size of a long run's file).
func writeTruth(path string, sim *tyntecsim.Sim) error {
	t := sim.Truth()
	b, err := json.Marshal(truthFile{Truth: t, Summary: t.Summary()})
	if err != nil {
		return fmt.Errorf("encode truth: %w", err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("write truth: %w", err)
	}
	return nil
}
