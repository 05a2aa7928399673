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

// NoWait in Settle, Recheck, Grace or PushConfig.Grace waits not at all:
// their 0 is the default, as a struct literal leaves them. The flags' 0 is
// NoWait.
const NoWait time.Duration = -1

// Config configures the poller.
type Config struct {
	Tyntec tyntec.Config
	// TyntecAPIKeyFile is the file Tyntec.APIKey was read from
	// (OTPSCOPE_TYNTEC_API_KEY_FILE), read again when it changes.
	TyntecAPIKeyFile string

	// Schedule is the robfig/cron spec of reconciliation cycles.
	Schedule string
	// Settle is how long after an OTP's last delivery fact the poller waits
	// for webhooks before it reads the OTP's events itself (NoWait: none).
	Settle time.Duration
	// Recheck is the least time between two reads of one OTP's events
	// (NoWait: none, every cycle may read it).
	Recheck time.Duration
	// Grace is how long after its expiry an OTP stays tracked (NoWait:
	// none, tracking ends at the expiry).
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
	fs.Var(waitVar(&c.Settle, DefaultSettle), "settle", "`duration` to wait after an OTP's last delivery fact before reading its events (0 = none)")
	fs.Var(waitVar(&c.Recheck, DefaultRecheck), "recheck", "least `duration` between two reads of one OTP (0 = none: every cycle may read it)")
	fs.Var(waitVar(&c.Grace, DefaultGrace), "grace", "`duration` an OTP stays tracked after it expired (0 = none)")
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
	// Config's 0 is the default; given, 0 is refused rather than run as it.
	flagenv.Positive(fs, "otp-expiry", "leader-ttl", "state-ttl")
}

// wait is a duration flag whose 0 is NoWait, and which refuses less.
type wait struct{ d *time.Duration }

// waitVar sets *d to def and returns it as a wait flag.
func waitVar(d *time.Duration, def time.Duration) wait {
	*d = def
	return wait{d}
}

func (w wait) String() string {
	if w.d == nil { // flag's zero-value probe
		return "0s"
	}
	return max(*w.d, 0).String()
}

func (w wait) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return errors.New("want 0 (none) or a positive duration such as 90s, 5m or 1h")
	}
	if d == 0 {
		d = NoWait
	}
	*w.d = d
	return nil
}

// Get is the duration, for cli's hints.
func (w wait) Get() any { return max(*w.d, 0) }

// orNoWait is d with 0 as def and NoWait (any negative) as 0.
func orNoWait(d, def time.Duration) time.Duration {
	if d < 0 {
		return 0
	}
	return cmp.Or(d, def)
}

// withDefaults fills zero values (for callers that do not parse flags).
func (c Config) withDefaults() Config {
	c.Schedule = cmp.Or(c.Schedule, DefaultSchedule)
	c.Settle = orNoWait(c.Settle, DefaultSettle)
	c.Recheck = orNoWait(c.Recheck, DefaultRecheck)
	c.Grace = orNoWait(c.Grace, DefaultGrace)
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
	c.Push.Grace = orNoWait(c.Push.Grace, DefaultPushGrace)
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
	if d.OTPExpiry < 0 {
		return fmt.Errorf("otp-expiry %v: want a positive duration", d.OTPExpiry)
	}
	if d.DiscoveryInterval < 0 {
		return fmt.Errorf("discovery-interval %v: must not be negative (0 = never)", d.DiscoveryInterval)
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
