package poller

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/otpscope/otpscope/internal/broker"
	"github.com/otpscope/otpscope/internal/cronspec"
	"github.com/otpscope/otpscope/internal/flagenv"
	"github.com/otpscope/otpscope/internal/httpurl"
	"github.com/otpscope/otpscope/internal/tyntec"
)

// Resend modes.
const (
	ModeDryRun = "dry-run" // decide and audit, call nothing
	ModeLive   = "live"    // call tyntec's v1 re-send
)

// Defaults of Config.
const (
	DefaultSchedule          = "@every 30s"
	DefaultSettle            = 90 * time.Second
	DefaultRecheck           = 2 * time.Minute
	DefaultGrace             = 30 * time.Minute
	DefaultOTPExpiry         = 5 * time.Minute
	DefaultDiscoveryInterval = 5 * time.Minute
	DefaultLeaderTTL         = 15 * time.Second
	DefaultStateTTL          = 48 * time.Hour
)

// Config configures the poller.
type Config struct {
	Tyntec tyntec.Config
	// TyntecAPIKeyFile is the file Tyntec.APIKey was read from
	// (OTPSCOPE_TYNTEC_API_KEY_FILE), read again when it changes.
	TyntecAPIKeyFile string

	// Schedule is the robfig/cron spec of reconciliation cycles.
	Schedule string
	// Settle is how long after an OTP's last delivery fact the poller waits
	// for webhooks before it reads the OTP's events itself.
	Settle time.Duration
	// Recheck is the least time between two reads of one OTP's events.
	Recheck time.Duration
	// Grace is how long after its expiry an OTP stays tracked.
	Grace time.Duration
	// OTPExpiry estimates the validity of OTPs whose expiry tyntec has not told
	// us yet (learned from a webhook); discovery replaces it with the real one.
	OTPExpiry time.Duration
	// DiscoveryInterval is how often GET /2fa/v4/otp lists OTPs to find those
	// no webhook announced and read their OTP statuses; 0 disables it.
	DiscoveryInterval time.Duration
	// VerifySample is the share (0..1] of delivered OTPs whose final status is
	// read and published; 0 reads none.
	VerifySample float64

	// ResendPolicy is the path of the JSON resend policy; empty disables resends.
	ResendPolicy string
	// ResendMode is ModeDryRun (default) or ModeLive.
	ResendMode string

	// RegisterCallbackURL, when set, makes the poller point tyntec's callback
	// configuration at it on start; RegisterCallbackHeaders go with it.
	RegisterCallbackURL     string
	RegisterCallbackHeaders Headers
	// DeploymentID names this deployment in the callback configuration it
	// registers (MarkerHeader), so it never re-points another deployment's;
	// empty takes the id of the configuration delivering to the URL
	// already, else DeploymentFallback (RegisterOptions).
	DeploymentID string
	// DeploymentFallback is the id of a first registration without
	// DeploymentID; empty is DefaultDeploymentID of the current directory
	// (package app derives it from --data-dir).
	DeploymentFallback string

	// LeaderTTL is the lease of the replica that calls tyntec.
	LeaderTTL time.Duration
	// StateTTL bounds how long an OTP's record stays in the KV bucket after its
	// last change (finished records stay as tombstones so late events do not
	// revive them).
	StateTTL time.Duration
	// Replica names this process in the leader key and resend decisions;
	// default hostname-pid-random.
	Replica string

	// Push reads push approval requests whose settling callback is
	// missing; off without its URL and key.
	Push PushConfig

	// Now is the clock against which OTP times (webhook timestamps, expiries)
	// are compared; nil is time.Now. Tests set the simulator's clock.
	Now func() time.Time
}

// RegisterFlags registers what the poller does — tyntec, schedule, resends,
// callback — on fs; the listener and NATS are the process's (package app).
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.Tyntec.RegisterFlags(fs)
	flagenv.RecordFile(fs, "tyntec-api-key", &c.TyntecAPIKeyFile)
	fs.StringVar(&c.Schedule, "reconcile-schedule", DefaultSchedule, "cron spec of reconciliation cycles (robfig/cron: '@every 30s', '*/1 * * * *')")
	fs.DurationVar(&c.Settle, "settle", DefaultSettle, "wait after an OTP's last delivery fact before reading its events")
	fs.DurationVar(&c.Recheck, "recheck", DefaultRecheck, "least time between two reads of one OTP")
	fs.DurationVar(&c.Grace, "grace", DefaultGrace, "how long an OTP stays tracked after it expired")
	fs.DurationVar(&c.OTPExpiry, "otp-expiry", DefaultOTPExpiry, "assumed OTP validity until tyntec reports the real expiry")
	fs.DurationVar(&c.DiscoveryInterval, "discovery-interval", DefaultDiscoveryInterval, "how often GET /2fa/v4/otp discovers OTPs and their statuses (0 = never)")
	fs.Float64Var(&c.VerifySample, "verify-sample", 1, "share (0..1) of delivered OTPs whose final verification status is polled")
	fs.StringVar(&c.ResendPolicy, "resend-policy", "", "JSON resend policy file (empty = no resends)")
	fs.StringVar(&c.ResendMode, "resend-mode", ModeDryRun, "dry-run (decide and audit only) or live (call tyntec's re-send)")
	fs.StringVar(&c.RegisterCallbackURL, "register-callback-url", "", "on start, point tyntec's v4 callback at this ingest webhook URL")
	fs.Var(&c.RegisterCallbackHeaders, "register-callback-header", `header tyntec sends with each webhook, "Name: value" (repeatable)`)
	fs.StringVar(&c.DeploymentID, "deployment-id", "", "this deployment's id in the callback it registers (default: the id of the configuration delivering to the URL already, else derived from the host and --data-dir)")
	fs.DurationVar(&c.LeaderTTL, "leader-ttl", DefaultLeaderTTL, "lease of the replica that calls tyntec")
	fs.DurationVar(&c.StateTTL, "state-ttl", DefaultStateTTL, "how long OTP records stay in the KV bucket after their last change")
	fs.StringVar(&c.Replica, "replica", "", "name of this replica (default hostname-pid-random)")
	c.Push.registerFlags(fs)
}

// withDefaults fills zero values (for callers that do not parse flags).
func (c Config) withDefaults() Config {
	c.Schedule = cmp.Or(c.Schedule, DefaultSchedule)
	c.Settle = cmp.Or(c.Settle, DefaultSettle)
	c.Recheck = cmp.Or(c.Recheck, DefaultRecheck)
	c.Grace = cmp.Or(c.Grace, DefaultGrace)
	c.OTPExpiry = cmp.Or(c.OTPExpiry, DefaultOTPExpiry)
	c.ResendMode = cmp.Or(c.ResendMode, ModeDryRun)
	c.LeaderTTL = cmp.Or(c.LeaderTTL, DefaultLeaderTTL)
	c.StateTTL = cmp.Or(c.StateTTL, DefaultStateTTL)
	if c.Replica == "" {
		c.Replica = broker.ReplicaName()
	}
	if c.DeploymentFallback == "" {
		c.DeploymentFallback = DefaultDeploymentID(".")
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.Push.RateLimit = cmp.Or(c.Push.RateLimit, DefaultPushRateLimit)
	c.Push.RatePeriod = cmp.Or(c.Push.RatePeriod, DefaultPushRatePeriod)
	c.Push.Grace = cmp.Or(c.Push.Grace, DefaultPushGrace)
	c.Push.Recheck = cmp.Or(c.Push.Recheck, DefaultPushRecheck)
	c.Push.MaxPolls = cmp.Or(c.Push.MaxPolls, DefaultPushMaxPolls)
	c.Push.Timeout = cmp.Or(c.Push.Timeout, 10*time.Second)
	return c
}

// Validate reports the first configuration error. It reads the resend
// policy as New does, so that `otpscope config` refuses a policy a start
// would; it opens nothing remote.
func (c *Config) Validate() error {
	_, err := c.validate()
	return err
}

// validate is Validate, returning for New the resend policy it read (nil
// without one).
func (c *Config) validate() (*Policy, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	if c.ResendPolicy == "" {
		return nil, nil
	}
	return LoadPolicy(c.ResendPolicy)
}

// check reports the first error of the flags themselves.
func (c *Config) check() error {
	d := c.withDefaults()
	if _, err := cronspec.Parse(d.Schedule); err != nil {
		return fmt.Errorf("reconcile-schedule %q: %w", d.Schedule, err)
	}
	if d.Settle < 0 || d.Recheck < 0 || d.Grace < 0 || d.OTPExpiry < 0 || d.DiscoveryInterval < 0 {
		return errors.New("settle, recheck, grace, otp-expiry and discovery-interval must not be negative")
	}
	if d.VerifySample < 0 || d.VerifySample > 1 {
		return fmt.Errorf("verify-sample %v: want 0..1", d.VerifySample)
	}
	if d.ResendMode != ModeDryRun && d.ResendMode != ModeLive {
		return fmt.Errorf("resend-mode %q: want %s or %s", d.ResendMode, ModeDryRun, ModeLive)
	}
	if d.RegisterCallbackURL != "" {
		if err := checkURL(d.RegisterCallbackURL); err != nil {
			return fmt.Errorf("register-callback-url: %w", err)
		}
		// Refused at start rather than at every registration attempt.
		if err := checkCallbackURL(d.RegisterCallbackURL); err != nil {
			return err
		}
	}
	if d.LeaderTTL < time.Second {
		return fmt.Errorf("leader-ttl %v: want at least 1s", d.LeaderTTL)
	}
	if d.StateTTL < d.OTPExpiry+d.Grace {
		return fmt.Errorf("state-ttl %v: want at least otp-expiry + grace (%v)", d.StateTTL, d.OTPExpiry+d.Grace)
	}
	if err := d.Push.validate(); err != nil {
		return err
	}
	return d.Tyntec.Validate()
}

func checkURL(s string) error {
	_, err := httpurl.Parse(s)
	return err
}

// Headers are HTTP headers; as a flag.Value, a repeatable "Name: value".
type Headers map[string]string

func (h *Headers) String() string {
	if h == nil {
		return ""
	}
	var parts []string
	for k := range *h {
		parts = append(parts, k+": ***")
	}
	return strings.Join(parts, ", ")
}

// Set adds one "Name: value" header.
func (h *Headers) Set(v string) error {
	name, value, ok := strings.Cut(v, ":")
	name, value = strings.TrimSpace(name), strings.TrimSpace(value)
	if !ok || name == "" || value == "" {
		return fmt.Errorf("header %q: want \"Name: value\"", v)
	}
	if *h == nil {
		*h = Headers{}
	}
	(*h)[name] = value
	return nil
}
