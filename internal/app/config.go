package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/otpscope/otpscope/internal/broker"
	"github.com/otpscope/otpscope/internal/chdb"
	"github.com/otpscope/otpscope/internal/cli"
	"github.com/otpscope/otpscope/internal/cronspec"
	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/flagenv"
	"github.com/otpscope/otpscope/internal/httpurl"
	"github.com/otpscope/otpscope/internal/ingest"
	"github.com/otpscope/otpscope/internal/ops"
	"github.com/otpscope/otpscope/internal/poller"
	"github.com/otpscope/otpscope/internal/reporter"
	"github.com/otpscope/otpscope/internal/sink"
	"github.com/otpscope/otpscope/internal/store"
	"github.com/otpscope/otpscope/internal/tyntecsim"
)

// Modules a process can run. Each binary is a list of them (Binaries).
const (
	ModuleIngest   = "ingest"   // the webhook and tracking endpoints
	ModulePoller   = "poller"   // reconciliation, resends, callback registration
	ModuleReporter = "reporter" // the sink, the analytics API, reports and alerts
)

// Binary is what one command runs and the defaults it differs in.
type Binary struct {
	Name    string
	Modules []string
	// Summary and Subcommands are for help.
	Summary     string
	Subcommands []cli.Subcommand
	// Listen is the default HTTP address; AdminListen the default of the
	// operators' listener (API, /metrics), empty when Listen is already one;
	// NATSURL the default --nats-url (empty hosts the embedded server).
	Listen      string
	AdminListen string
	NATSURL     string
}

// Binaries: the three services and the all-in-one, which runs the same
// modules in one process (the poller only with a tyntec API key).
var Binaries = map[string]Binary{
	"ingest": {Name: "ingest", Modules: []string{ModuleIngest}, Listen: "127.0.0.1:8080", AdminListen: "127.0.0.1:8083",
		Summary: "receive tyntec's DeliveryStatus webhooks and publish them to NATS JetStream"},
	"poller": {Name: "poller", Modules: []string{ModulePoller}, Listen: "127.0.0.1:8082", NATSURL: "nats://127.0.0.1:4222",
		Summary:     "reconcile lost webhooks and OTP statuses through tyntec's API, resend by policy",
		Subcommands: []cli.Subcommand{{Usage: "poller register-callback [flags]", Summary: "point tyntec's v4 callback at ingest, then exit"}}},
	"reporter": {Name: "reporter", Modules: []string{ModuleReporter}, Listen: "127.0.0.1:8081", NATSURL: "nats://127.0.0.1:4222",
		Summary:     "move events from NATS into ClickHouse; serve the analytics API, reports and alerts",
		Subcommands: []cli.Subcommand{{Usage: "reporter report [flags]", Summary: "print an ad-hoc report read from ClickHouse"}}},
	"otpscope": {Name: "otpscope", Modules: []string{ModuleIngest, ModulePoller, ModuleReporter}, Listen: "127.0.0.1:8080", AdminListen: "127.0.0.1:8081",
		Summary: "the whole pipeline in one process (ingest, poller, reporter; --simulate adds the tyntec simulator)",
		Subcommands: []cli.Subcommand{
			{Usage: "otpscope deadletters list [flags]", Summary: "list dead letters (through a running otpscope's API)"},
			{Usage: "otpscope deadletters replay [flags]", Summary: "put dead letters back through the normal path"},
			{Usage: "otpscope deadletters delete [flags]", Summary: "delete dead letters for good (through a running otpscope's API)"},
			{Usage: "otpscope backup create|list|delete [flags]", Summary: "back the database up, list the backups, or remove one (through a running otpscope's API)"},
			{Usage: "otpscope restore --name NAME [flags]", Summary: "put a backup back, with otpscope stopped"},
			{Usage: "otpscope alerts rules|test|silences|silence|unsilence [flags]", Summary: "say the alert rules in force, send a test alert, or list, add and end silences of the webhook (through a running otpscope's API)"},
			{Usage: "otpscope status [flags]", Summary: "what a running process (any binary) says of itself, through its API; exits 1 on warnings"},
		}},
}

// Config configures one process: its listener, data directory, NATS and
// ClickHouse, shared by the modules it runs, and each module's own settings.
type Config struct {
	// Modules to run; set by RegisterFlags from the binary.
	Modules []string
	// Listen is the public listener: tyntec's webhooks and the tracking
	// endpoint (the ingest module), /healthz and /readyz.
	Listen string
	// AdminListen is the operators' listener: the analytics API, /metrics,
	// /healthz and /readyz; empty serves them on Listen. APITokens, when
	// set, are required (Authorization: Bearer) for the API and /metrics.
	AdminListen string
	APITokens   flagenv.List
	// APITokensFile is the file APITokens were read from
	// (OTPSCOPE_API_TOKEN_FILE), read again when it changes.
	APITokensFile string
	// InsecureOpenAPI lets the API and /metrics listen beyond loopback
	// without APITokens, answering anyone who reaches them (Validate
	// refuses that otherwise: without a token the API is for loopback only).
	InsecureOpenAPI bool
	// APIReadTokens may read what APITokens do (the API, the live stream,
	// /metrics, the profiler) and act on nothing: those who only look at
	// the console cannot replay dead letters or take or delete backups.
	// Only beside APITokens. APIReadTokensFile as APITokensFile.
	APIReadTokens     flagenv.List
	APIReadTokensFile string
	// MetricsTokens may read /metrics and nothing else: Prometheus' own
	// credential, which cannot replay dead letters, take backups or read
	// an OTP. Only beside APITokens (an open API with guarded metrics
	// would protect the lesser thing). MetricsTokensFile as APITokensFile.
	MetricsTokens     flagenv.List
	MetricsTokensFile string
	// Connections caps the connections each listener holds open, in all
	// and from one client address.
	Connections     ops.ConnLimits
	ShutdownTimeout time.Duration
	// ShutdownDelay is how long the process goes on serving after SIGTERM,
	// /readyz answering 503, before its listeners close: a load balancer
	// (or Kubernetes' endpoints) stops sending first.
	ShutdownDelay time.Duration
	// StatusInterval is how often the process logs its one-line status
	// (0: never).
	StatusInterval time.Duration
	// TLSCertFile and TLSKeyFile, when set, make the HTTP listeners (public
	// and admin) serve HTTPS with that certificate, read again when the
	// files change.
	TLSCertFile, TLSKeyFile string
	// DataDir is the one data directory: the embedded NATS server keeps
	// JetStream under nats/, the embedded engine its tables under clickhouse/.
	DataDir    string
	NATS       broker.Config
	ClickHouse store.Config
	// APIQueries is how many API requests that read ClickHouse the
	// reporter answers at once (reporter.Limit); more wait, then get 429.
	APIQueries int

	Ingest   ingest.Config
	Poller   poller.Config
	Sink     sink.Config
	Reports  reporter.ReportsConfig
	Simulate SimulateConfig // the all-in-one only

	// generatedToken is the webhook token Complete made up for --simulate,
	// which the banner shows so that a newcomer can send webhooks too.
	generatedToken string
}

// SimulateConfig starts the tyntec simulator with generated traffic, its
// callback pointing at this process.
type SimulateConfig struct {
	Enabled   bool
	Listen    string
	Rate      float64
	Count     int
	Seed      int64
	TimeScale float64
	V1Share   float64
	// DropWebhooks is the share of webhooks the simulator never sends, for the
	// poller to recover.
	DropWebhooks float64
	// Keep bounds the simulator's memory on a long run
	// (tyntecsim.Config.Keep).
	Keep int
	// SharedVersions makes the simulator's v1 and v4 APIs one OTP store, an
	// assumption about tyntec no seed makes (tyntecsim.Config.SharedVersions).
	// Without it the poller counts lost v4 webhooks unrecoverable; with it
	// the poller recovers them through v1.
	SharedVersions bool
	// Channels overrides the simulated channels (tests use fast ones).
	Channels map[events.Channel]tyntecsim.Channel
	// OTPExpiry overrides every simulated OTP's validity (tests use short ones).
	OTPExpiry time.Duration
	// PushExpiry overrides the seconds_to_expire of the app's approval
	// requests (whole seconds; tests use short ones).
	PushExpiry time.Duration

	// SilentShare and PushShare of generated logins try Silent
	// Authentication or a push approval before their OTP (flags: 0.2, 0.1;
	// a struct literal, as tests write it, leaves them off).
	SilentShare, PushShare float64
	// SilentVerified and SilentError split the silent attempts (the rest
	// are not verified); SilentLatency is authorize's median (p95 3×).
	SilentVerified, SilentError float64
	SilentLatency               time.Duration
	// PushApproved and PushDenied split the approval requests (the rest
	// are never answered and expire); PushLatency is the users' median
	// answer time (p95 3×).
	PushApproved, PushDenied float64
	PushLatency              time.Duration
}

// silentAuth and push are the simulator's method behaviour; zero shares and
// latencies (a struct literal) take the simulator's defaults.
func (s SimulateConfig) silentAuth() *tyntecsim.SilentAuth {
	sa := tyntecsim.DefaultSilentAuth()
	if s.SilentVerified != 0 || s.SilentError != 0 {
		sa.VerifiedShare, sa.ErrorShare = s.SilentVerified, s.SilentError
	}
	if s.SilentLatency > 0 {
		sa.Latency = tyntecsim.LogNormal{Median: s.SilentLatency, P95: 3 * s.SilentLatency}
	}
	return &sa
}

func (s SimulateConfig) push() *tyntecsim.Push {
	p := tyntecsim.DefaultPush()
	if s.PushApproved != 0 || s.PushDenied != 0 {
		p.ApprovedShare, p.DeniedShare = s.PushApproved, s.PushDenied
	}
	if s.PushLatency > 0 {
		p.AnswerLatency = tyntecsim.LogNormal{Median: s.PushLatency, P95: 3 * s.PushLatency}
	}
	return &p
}

func (c *Config) runs(module string) bool { return slices.Contains(c.Modules, module) }

// RegisterFlags registers the flags of binary b: each module's Config
// registers its own, the process registers what its modules share (listener,
// --data-dir, NATS, ClickHouse) once. Flag defaults are the defaults. It
// returns the flags by group, the README's configuration groups, for help.
func (c *Config) RegisterFlags(fs *flag.FlagSet, b Binary) flagenv.Groups {
	c.Modules = slices.Clone(b.Modules)
	var g flagenv.Groups
	g.Add(fs, "Process", func() {
		fs.StringVar(&c.Listen, "listen", b.Listen, "HTTP address (public: webhooks, tracking, health)")
		fs.StringVar(&c.AdminListen, "admin-listen", b.AdminListen, "HTTP address of the API and /metrics (empty: on --listen)")
		fs.Var(&c.APITokens, "api-token", "bearer token required for the API and /metrics (repeat or comma-separate to rotate; none: open, on loopback only unless --insecure-open-api; from $OTPSCOPE_API_TOKEN_FILE read again when it changes)")
		flagenv.RecordFile(fs, "api-token", &c.APITokensFile)
		fs.BoolVar(&c.InsecureOpenAPI, "insecure-open-api", false, "let the API and /metrics listen beyond loopback without --api-token, answering anyone who reaches them (development, or a network that is itself the guard)")
		fs.Var(&c.APIReadTokens, "api-read-token", "bearer token that may read the API, /metrics and the profiler (GET, HEAD) and act on nothing: 403 to a replay, a backup (needs --api-token; repeat or comma-separate to rotate; from $OTPSCOPE_API_READ_TOKEN_FILE read again when it changes)")
		flagenv.RecordFile(fs, "api-read-token", &c.APIReadTokensFile)
		fs.Var(&c.MetricsTokens, "metrics-token", "bearer token that may read /metrics and nothing else, for Prometheus (needs --api-token, whose tokens read it too; repeat or comma-separate to rotate; from $OTPSCOPE_METRICS_TOKEN_FILE read again when it changes)")
		flagenv.RecordFile(fs, "metrics-token", &c.MetricsTokensFile)
		fs.IntVar(&c.Connections.Max, "max-connections", ops.DefaultMaxConnections, "connections each listener holds open at most (0 = no cap)")
		fs.IntVar(&c.Connections.PerIP, "max-connections-per-ip", ops.DefaultMaxConnectionsPerIP, "connections each listener holds open from one client address, an IPv6 one by its /64 (0 = no cap; behind a proxy its address counts, so raise it or cap at the proxy)")
		fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 15*time.Second, "how long in-flight requests may finish on stop")
		fs.DurationVar(&c.ShutdownDelay, "shutdown-delay", 0, "how long to go on serving after SIGTERM, /readyz answering 503, before the listeners close (so a load balancer stops sending first)")
		fs.StringVar(&c.DataDir, "data-dir", "./data", "where the embedded NATS server and ClickHouse engine keep data")
		fs.DurationVar(&c.StatusInterval, "status-interval", time.Minute, "how often to log a one-line status (webhooks/s, lags, backlog; 0 = never)")
		fs.StringVar(&c.TLSCertFile, "tls-cert-file", "", "PEM certificate (chain) to serve the public and admin listeners over HTTPS, with --tls-key-file; read again when it changes")
		fs.StringVar(&c.TLSKeyFile, "tls-key-file", "", "PEM private key of --tls-cert-file")
	})
	g.Add(fs, "NATS", func() { c.NATS.RegisterFlags(fs, b.NATSURL) })
	if c.runs(ModuleIngest) {
		g.Add(fs, "Ingest", func() { c.Ingest.RegisterFlags(fs) })
	}
	if c.runs(ModuleReporter) {
		g.Add(fs, "ClickHouse and the sink", func() {
			c.ClickHouse.RegisterFlags(fs)
			fs.IntVar(&c.APIQueries, "api-queries", reporter.DefaultAPIQueries, fmt.Sprintf("API requests that read ClickHouse answered at once; another waits up to %v for a place, then gets 429 with Retry-After", reporter.LimitWait))
			c.Sink.RegisterFlags(fs)
		})
		g.Add(fs, "Reports and alerts", func() { c.Reports.RegisterFlags(fs) })
	}
	if c.runs(ModulePoller) {
		g.Add(fs, "Poller", func() { c.Poller.RegisterFlags(fs) })
	}
	if b.Name == "otpscope" {
		g.Add(fs, "Simulator", func() { c.Simulate.RegisterFlags(fs) })
	}
	return g
}

// RegisterFlags registers the all-in-one's simulator flags.
func (s *SimulateConfig) RegisterFlags(fs *flag.FlagSet) {
	fs.BoolVar(&s.Enabled, "simulate", false, "run the tyntec simulator with generated traffic, its webhooks pointed at this process")
	fs.StringVar(&s.Listen, "simulate-listen", "127.0.0.1:8090", "address of the simulated tyntec API (and GET /_sim/truth)")
	fs.Float64Var(&s.Rate, "simulate-rate", 5, "generated logins per second (each an OTP, or a method first and an OTP when it fails; 0 = none: the simulated API serves what is sent to it)")
	fs.IntVar(&s.Count, "simulate-count", 0, "stop generating after this many logins (0 = never)")
	fs.IntVar(&s.Keep, "simulate-keep", tyntecsim.DefaultKeep, "OTPs the simulator keeps; past them it forgets the oldest settled ones (their API answers 404, the truth counts them as forgotten), so a long run's memory stays bounded (0 = keep all)")
	fs.Int64Var(&s.Seed, "simulate-seed", 0, "seed of the simulator's random choices (0 = a fresh random seed per run, printed at start)")
	fs.Float64Var(&s.TimeScale, "simulate-time-scale", 1, "simulated seconds per wall-clock second")
	fs.Float64Var(&s.V1Share, "simulate-v1-share", 0, "share of generated OTPs sent through tyntec's v1 API")
	fs.Float64Var(&s.DropWebhooks, "simulate-drop-webhooks", 0, "share of webhooks the simulator never sends (the poller recovers them with --simulate-shared-versions, else counts them unrecoverable)")
	fs.BoolVar(&s.SharedVersions, "simulate-shared-versions", false, "the simulator's v1 API also serves v4 OTPs and v4 also v1 OTPs (an assumption about tyntec no seed makes)")
	sa, p := tyntecsim.DefaultSilentAuth(), tyntecsim.DefaultPush()
	fs.Float64Var(&s.SilentShare, "simulate-silent-share", 0.2, "share of generated logins that try Silent Authentication first (an OTP follows when it fails; 0 = off)")
	fs.Float64Var(&s.PushShare, "simulate-push-share", 0.1, "share of generated logins that try a push approval first (an OTP follows when it is denied or expires; 0 = off)")
	fs.Float64Var(&s.SilentVerified, "simulate-silent-verified", sa.VerifiedShare, "share of silent-auth attempts that verify the number")
	fs.Float64Var(&s.SilentError, "simulate-silent-error", sa.ErrorShare, "share of silent-auth attempts that end with an error (the rest: not verified)")
	fs.DurationVar(&s.SilentLatency, "simulate-silent-latency", sa.Latency.Median, "median time of a silent-auth attempt's network lookup (simulated; p95 3x)")
	fs.Float64Var(&s.PushApproved, "simulate-push-approved", p.ApprovedShare, "share of approval requests the user approves")
	fs.Float64Var(&s.PushDenied, "simulate-push-denied", p.DeniedShare, "share of approval requests the user denies (the rest are never answered and expire)")
	fs.DurationVar(&s.PushLatency, "simulate-push-latency", p.AnswerLatency.Median, "median time until the user answers an approval request (simulated; p95 3x)")
}

// Complete derives what the modules share from the flags — the one place
// where a value is filled in rather than given: the data directory of NATS
// and ClickHouse; with --simulate, the simulator's API key for the poller and,
// without a webhook token, a fresh random one (the simulator is then the only
// sender); and the all-in-one's poller only with a tyntec API key.
func (c *Config) Complete() {
	c.NATS.DataDir, c.ClickHouse.DataDir = c.DataDir, c.DataDir
	c.Poller.DeploymentFallback = poller.DefaultDeploymentID(c.DataDir)
	if !c.Simulate.Enabled {
		return
	}
	if c.Poller.Tyntec.APIKey == "" {
		c.Poller.Tyntec.APIKey = tyntecsim.DefaultAPIKey // its base URL is known once bound
	}
	if c.Simulate.Seed == 0 {
		// A fresh story per run: the banner prints the seed to repeat it.
		c.Simulate.Seed = mrand.Int64N(math.MaxInt64) + 1
	}
	if len(c.Ingest.Tokens) == 0 && !c.Ingest.InsecureNoAuth {
		var b [24]byte
		_, _ = rand.Read(b[:])
		c.generatedToken = hex.EncodeToString(b[:])
		c.Ingest.Tokens = append(c.Ingest.Tokens, c.generatedToken)
	}
}

// pollerOn: the all-in-one runs the poller only when it can call tyntec.
func (c *Config) pollerOn() bool {
	return c.runs(ModulePoller) && (c.Poller.Tyntec.APIKey != "" || !c.runs(ModuleIngest))
}

// Validate reports the first configuration error; it only checks.
func (c *Config) Validate() error {
	if len(c.Modules) == 0 {
		return errors.New("no module to run")
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("listen %q: %w", c.Listen, err)
	}
	if c.AdminListen != "" {
		if _, _, err := net.SplitHostPort(c.AdminListen); err != nil {
			return fmt.Errorf("admin-listen %q: %w", c.AdminListen, err)
		}
	}
	if err := ops.CheckTokens("API token", c.APITokens); err != nil {
		return err
	}
	if err := ops.CheckTokens("API read token", c.APIReadTokens); err != nil {
		return err
	}
	if err := ops.CheckTokens("metrics token", c.MetricsTokens); err != nil {
		return err
	}
	if len(c.APIReadTokens) > 0 && len(c.APITokens) == 0 {
		return errors.New("api-read-token without api-token: the API would be open to all, and then to read tokens too; set --api-token too")
	}
	if len(c.MetricsTokens) > 0 && len(c.APITokens) == 0 {
		return errors.New("metrics-token without api-token: /metrics would be guarded and the API open; set --api-token too")
	}
	if err := c.checkOpenAPI(); err != nil {
		return err
	}
	if err := c.checkTokenRoles(); err != nil {
		return err
	}
	if c.Connections.Max < 0 {
		return fmt.Errorf("max-connections %d: must not be negative", c.Connections.Max)
	}
	if c.Connections.PerIP < 0 {
		return fmt.Errorf("max-connections-per-ip %d: must not be negative", c.Connections.PerIP)
	}
	if c.StatusInterval < 0 {
		return fmt.Errorf("status-interval %v: must not be negative", c.StatusInterval)
	}
	if c.ShutdownTimeout <= 0 {
		return fmt.Errorf("shutdown-timeout %v: must be positive", c.ShutdownTimeout)
	}
	if c.ShutdownDelay < 0 {
		return fmt.Errorf("shutdown-delay %v: must not be negative", c.ShutdownDelay)
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return errors.New("tls-cert-file and tls-key-file go together: set both, or neither (plain HTTP)")
	}
	if c.TLSCertFile != "" {
		if c.Simulate.Enabled {
			return errors.New("--simulate with --tls-cert-file: the simulator posts its webhooks over plain HTTP; run it without TLS")
		}
		if _, err := ops.LoadCertificate(c.TLSCertFile, c.TLSKeyFile, slog.New(slog.DiscardHandler)); err != nil {
			return err
		}
	}
	if err := c.NATS.Validate(); err != nil {
		return err
	}
	if c.runs(ModuleIngest) {
		if err := c.Ingest.Validate(); err != nil {
			return err
		}
		// The embedded server's max_payload is known now; an external
		// one's is checked once connected (App).
		if c.NATS.Embedded() {
			if err := c.Ingest.CheckMaxPayload(broker.EmbeddedMaxPayload); err != nil {
				return err
			}
		}
	}
	if c.runs(ModuleReporter) {
		if err := c.ClickHouse.Validate(); err != nil {
			return err
		}
		if c.APIQueries < 1 {
			return fmt.Errorf("api-queries %d: must be at least 1", c.APIQueries)
		}
		if err := c.Sink.Validate(); err != nil {
			return err
		}
		if err := c.Reports.Validate(); err != nil {
			return err
		}
	}
	if c.pollerOn() {
		if err := c.Poller.Validate(); err != nil {
			return err
		}
	} else if c.runs(ModulePoller) && c.Poller.ResendPolicy != "" {
		// The poller is off (no --tyntec-api-key), but a policy given is
		// still checked: a missing or malformed file is refused now, not
		// on the first start with a key.
		if _, err := poller.LoadPolicy(c.Poller.ResendPolicy); err != nil {
			return err
		}
	}
	if c.Simulate.Enabled {
		if c.Simulate.Rate < 0 || c.Simulate.TimeScale <= 0 {
			return errors.New("simulate-rate must be >= 0 and simulate-time-scale > 0")
		}
		if err := c.Simulate.simConfig().Validate(); err != nil {
			return fmt.Errorf("simulate: %w", err)
		}
		if _, _, err := net.SplitHostPort(c.Simulate.Listen); err != nil {
			return fmt.Errorf("simulate-listen %q: %w", c.Simulate.Listen, err)
		}
	}
	return c.checkListeners()
}

// checkListeners refuses a port out of range and two listeners on one
// address, which a start would meet only as a bind error after the
// migrations. Port 0 (and NATS' -1) picks a free one: never a clash.
func (c *Config) checkListeners() error {
	type listener struct{ flag, addr string }
	ls := []listener{{"listen", c.Listen}, {"admin-listen", c.AdminListen}}
	if c.NATS.Embedded() {
		ls = append(ls, listener{"nats-listen", c.NATS.Listen})
	}
	if c.runs(ModuleReporter) && c.ClickHouse.Embedded() {
		ls = append(ls, listener{"clickhouse-listen", c.ClickHouse.Listen})
	}
	if c.Simulate.Enabled {
		ls = append(ls, listener{"simulate-listen", c.Simulate.Listen})
	}
	type bound struct{ flag, host string }
	byPort := map[string][]bound{}
	for _, l := range ls {
		host, port, err := net.SplitHostPort(l.addr)
		if err != nil {
			continue // not set, or said above
		}
		if n, err := strconv.Atoi(port); err == nil && (n < -1 || n > 65535) {
			return fmt.Errorf("%s %q: port %d is not within 0..65535", l.flag, l.addr, n)
		}
		if port == "0" || port == "-1" {
			continue
		}
		for _, o := range byPort[port] {
			if o.host == host || wildcard(o.host) || wildcard(host) {
				return fmt.Errorf("%s and %s are both %s: give each listener an address of its own", o.flag, l.flag, l.addr)
			}
		}
		byPort[port] = append(byPort[port], bound{l.flag, host})
	}
	return nil
}

// wildcard reports whether host binds every address: empty, 0.0.0.0 or
// :: in any spelling (Go reports a listener on either as [::]).
func wildcard(host string) bool {
	ip := net.ParseIP(host)
	return host == "" || ip != nil && ip.IsUnspecified()
}

// checkOpenAPI refuses an API and /metrics beyond loopback without an API
// token, unless --insecure-open-api says so: whoever reaches the address
// could replay dead letters, take and delete backups and read OTPs. On
// loopback (the default) the host's users and its reverse proxy alone
// reach it, and the browser guard keeps web pages out (ops.BrowserGuard).
func (c *Config) checkOpenAPI() error {
	if c.InsecureOpenAPI && len(c.APITokens) > 0 {
		return errors.New("--insecure-open-api with --api-token: the tokens guard the API; drop one")
	}
	flag, addr := "admin-listen", c.AdminListen
	if addr == "" {
		flag, addr = "listen", c.Listen
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil || port == "-1" || len(c.APITokens) > 0 || c.InsecureOpenAPI || httpurl.Loopback(addr) {
		return nil
	}
	return fmt.Errorf("%s %s is beyond loopback and there is no --api-token: the API (dead-letter replays, backups, OTP lookups) and /metrics would answer anyone who reaches it; set --api-token (and --metrics-token for Prometheus), or --insecure-open-api to serve it open on purpose", flag, addr)
}

// tokenRoles are the bearer tokens this process takes, a role each, most
// powerful first, with their tokens (several while one rotates; a _FILE
// variable's are read into them by then).
func (c *Config) tokenRoles() []tokenRole {
	roles := []tokenRole{
		{"api-token", "operators", "the API (replays, backups)", c.APITokens},
		{"api-read-token", "console viewers", "the API's reads (OTP lookups, dead letters' bodies)", c.APIReadTokens},
		{"metrics-token", "Prometheus", "/metrics", c.MetricsTokens},
	}
	if c.runs(ModuleIngest) {
		roles = append(roles, tokenRole{"webhook-token", "tyntec", "the webhooks", c.Ingest.Tokens},
			tokenRole{"app-token", "the app backend", "/otps/track and /silent-auth/outcomes", c.Ingest.AppTokens},
			tokenRole{"push-token", "the push provider", "/webhooks/push", c.Ingest.PushTokens})
	}
	return roles
}

// tokenRole is a flag of tokens, who holds them and what they open.
type tokenRole struct {
	flag, holder, opens string
	tokens              []string
}

// checkTokenRoles refuses a token given in two roles: what tyntec or
// Prometheus holds would open what the other flag guards. The message
// names the flags, never the token.
func (c *Config) checkTokenRoles() error {
	roles := c.tokenRoles()
	for i, a := range roles {
		for _, b := range roles[i+1:] {
			if slices.ContainsFunc(a.tokens, func(t string) bool { return slices.Contains(b.tokens, t) }) {
				return fmt.Errorf("%s and %s share a token: give each its own, or the one %s holds opens %s too", a.flag, b.flag, b.holder, a.opens)
			}
		}
	}
	return nil
}

// browserNames are the names besides IP addresses and localhost that a
// browser may send an open admin API beyond loopback (ops.BrowserGuard):
// --console-url's host, where the operators browse to.
func (c *Config) browserNames() []string {
	if !c.runs(ModuleReporter) || c.Reports.ConsoleURL == "" {
		return nil
	}
	u, err := url.Parse(c.Reports.ConsoleURL)
	if err != nil || u.Hostname() == "" {
		return nil
	}
	return []string{u.Hostname()}
}

// LogWarnings logs what the configuration allows but an operator may not
// have meant: Command calls it at start and under `config`.
func (c *Config) LogWarnings(logger *slog.Logger) {
	if c.runs(ModulePoller) && !c.pollerOn() && c.Poller.ResendPolicy != "" {
		// Validate read the policy; say that nothing applies it.
		logger.Warn("--resend-policy without --tyntec-api-key: the policy is checked, but the poller is off and nothing is re-sent", "resend_policy", c.Poller.ResendPolicy)
	}
	// A cycle ends at the next run (onSchedule in internal/poller): a call
	// may not wait for tyntec longer than that.
	if sched, err := cronspec.Parse(c.Poller.Schedule); err == nil && c.pollerOn() {
		if cycle, _ := cronspec.Gaps(sched, time.Now()); c.Poller.Tyntec.Timeout >= cycle {
			logger.Warn("--tyntec-timeout is not shorter than a reconciliation cycle, which ends at the next run of --reconcile-schedule: a tyntec that slow has its calls cut at the cycle's end, and no cycle reads it; shorten the timeout or space the schedule",
				"tyntec_timeout", c.Poller.Tyntec.Timeout, "reconcile_schedule", c.Poller.Schedule, "shortest_cycle", cycle)
		}
	}
	if !c.runs(ModuleReporter) {
		return
	}
	rules := c.Reports.Rules
	for _, f := range []struct {
		flag    string
		unknown []string
	}{
		{"alert-channel-min-delivery-rate", rules.ChannelMinDeliveryRate.Unknown()},
		{"alert-channel-max-latency-p95", rules.ChannelMaxLatencyP95.Unknown()},
		{"alert-channel-max-delivery-rate-drop", rules.ChannelMaxDeliveryRateDrop.Unknown()},
	} {
		if flag, unknown := f.flag, f.unknown; len(unknown) > 0 {
			logger.Warn("a per-channel alert threshold names a channel otpscope does not know (a new tyntec channel, or a typo that leaves the channel meant on the default threshold)",
				"flag", flag, "channels", strings.Join(unknown, ","), "known", strings.Join(reporter.KnownChannels, ","))
		}
	}
}

// nonFlagEnv are the OTPSCOPE_* variables read other than through a flag.
var nonFlagEnv = []string{
	chdb.EnvLibrary, // where the embedded engine's library is
	// deploy/: the image's build argument and compose's image, and the
	// Grafana data sources' provisioning (deploy/grafana), which the same
	// environment often carries.
	"OTPSCOPE_VERSION", "OTPSCOPE_IMAGE",
	"OTPSCOPE_CLICKHOUSE_HOST", "OTPSCOPE_CLICKHOUSE_PORT", "OTPSCOPE_CLICKHOUSE_DATABASE",
	"OTPSCOPE_CLICKHOUSE_SERVER_HOST", "OTPSCOPE_CLICKHOUSE_SERVER_PORT", "OTPSCOPE_CLICKHOUSE_SERVER_USER",
	"OTPSCOPE_CLICKHOUSE_SERVER_PASSWORD", "OTPSCOPE_CLICKHOUSE_SERVER_DATABASE",
	"OTPSCOPE_PROMETHEUS_URL",
	// The tests' (README, "Tests"), which a developer's shell keeps.
	"OTPSCOPE_PROMTOOL", "OTPSCOPE_ALERTMANAGER", "OTPSCOPE_CHROMIUM", "OTPSCOPE_ARTIFACTS",
	"OTPSCOPE_TEST_LOG", "OTPSCOPE_TYNTEC_REFERENCE",
}

// OtherEnv tells whether name is an OTPSCOPE_* variable that some binary's
// flag reads, in either form (flagenv.FileSuffix), or something else does
// (nonFlagEnv): a command does not warn of these when it does not read them
// itself (cli.Command.OtherEnv).
var OtherEnv = sync.OnceValue(func() func(string) bool {
	names := flagEnv()
	for name := range names {
		names[name+flagenv.FileSuffix] = true
	}
	for _, name := range nonFlagEnv {
		names[name] = true
	}
	return func(name string) bool { return names[name] }
})()

// flagEnv are the variables of every binary's flags, cli's own included,
// of the one-shot commands' whose flags internal packages register, and
// cmdEnv.
func flagEnv() map[string]bool {
	names := map[string]bool{}
	add := func(fs *flag.FlagSet) {
		fs.VisitAll(func(f *flag.Flag) {
			if flagenv.FromEnvironment(f) {
				for _, n := range flagenv.Names(f.Name) {
					names[n] = true
				}
			}
		})
	}
	for name, b := range Binaries {
		var cfg Config
		fs := flag.NewFlagSet(name, flag.ContinueOnError)
		cfg.RegisterFlags(fs, b)
		add(fs)
	}
	for _, register := range []func(*flag.FlagSet){
		new(reporter.ReportCLIConfig).RegisterFlags,
		new(reporter.DeadLettersCLIConfig).RegisterFlags,
		new(StatusCLIConfig).RegisterFlags,
	} {
		fs := flag.NewFlagSet("", flag.ContinueOnError)
		register(fs)
		add(fs)
	}
	for _, f := range cli.OwnFlags {
		names[flagenv.Name(f)] = true
	}
	for _, name := range cmdEnv {
		names[name] = true
	}
	return names
}

// cmdEnv are the variables of flags that only commands of cmd/ register
// (poller register-callback), which internal/app cannot list by
// registering them. Each cmd package's tests check with UnknownEnv that
// this list holds its commands' variables. The simulator's (tyntecsim), a
// tool for tests and demos, are its own: an environment of otpscope's
// binaries does not carry them.
var cmdEnv = []string{
	"OTPSCOPE_INGEST_URL", // poller register-callback --ingest-url
}

// UnknownEnv are the variables cmd's flags read that OtherEnv does not
// know: another binary given the same environment would warn of them.
func UnknownEnv(cmd cli.Command) []string {
	fs := flag.NewFlagSet(cmd.Name, flag.ContinueOnError)
	cmd.Flags(fs)
	var out []string
	fs.VisitAll(func(f *flag.Flag) {
		if name := flagenv.Name(f.Name); flagenv.FromEnvironment(f) && !OtherEnv(name) {
			out = append(out, name)
		}
	})
	return out
}

// Command is binary b as a cli.Command: its flags, then New, the banner on
// banner (nil: none) and Serve.
func Command(b Binary, banner io.Writer) cli.Command {
	groups := new(flagenv.Groups)
	return cli.Command{
		Name:        b.Name,
		Summary:     b.Summary,
		Subcommands: b.Subcommands,
		Groups:      groups,
		OtherEnv:    OtherEnv,
		Checkable:   true,
		Flags: func(fs *flag.FlagSet) func(context.Context, *slog.Logger) error {
			var cfg Config
			*groups = cfg.RegisterFlags(fs, b)
			return func(ctx context.Context, logger *slog.Logger) error {
				cfg.Complete()
				if err := cfg.Validate(); err != nil {
					return cli.Usage(err)
				}
				cfg.LogWarnings(logger)
				if cli.CheckOnly(ctx) {
					return nil
				}
				return Run(ctx, cfg, logger, banner)
			}
		},
	}
}
