// Package allinone runs ingest, the poller, the sink (reporter) and, with
// --simulate, the tyntec simulator in one process on embedded defaults: the embedded NATS
// server, the embedded ClickHouse engine and its endpoint, and one HTTP
// listener for the webhooks, the API, /metrics, /healthz and /readyz. It is
// the command a newcomer runs first.
package allinone

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	"github.com/otpscope/otpscope/internal/broker"
	"github.com/otpscope/otpscope/internal/ingest"
	"github.com/otpscope/otpscope/internal/ops"
	"github.com/otpscope/otpscope/internal/poller"
	"github.com/otpscope/otpscope/internal/reporter"
	"github.com/otpscope/otpscope/internal/sink"
	"github.com/otpscope/otpscope/internal/store"
	"github.com/otpscope/otpscope/internal/tyntec"
	"github.com/otpscope/otpscope/internal/tyntecsim"
)

// Config configures the all-in-one.
type Config struct {
	DataDir    string
	Ingest     ingest.Config // its Listen is the one HTTP listener
	ClickHouse store.Config
	Sink       sink.Config
	Reports    reporter.ReportsConfig
	Poller     poller.Config // its Listen and NATS are unused: the all-in-one shares its own
	Simulate   SimulateConfig
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
	// Channels overrides the simulated channels (tests use fast ones).
	Channels map[string]tyntecsim.Channel
}

// RegisterFlags registers every flag of the all-in-one.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.Ingest.RegisterFlags(fs)
	c.Ingest.NATS.RegisterFlags(fs, "")
	c.ClickHouse.RegisterFlags(fs)
	c.Sink.RegisterFlags(fs)
	c.Reports.RegisterFlags(fs)
	c.Poller.RegisterWorkFlags(fs)
	fs.StringVar(&c.DataDir, "data-dir", "./data", "where the embedded NATS server and ClickHouse engine keep data")
	fs.BoolVar(&c.Simulate.Enabled, "simulate", false, "run the tyntec simulator with generated traffic, its webhooks pointed at this process")
	fs.StringVar(&c.Simulate.Listen, "simulate-listen", "127.0.0.1:8090", "address of the simulated tyntec API (and GET /_sim/truth)")
	fs.Float64Var(&c.Simulate.Rate, "simulate-rate", 5, "generated OTPs per second")
	fs.IntVar(&c.Simulate.Count, "simulate-count", 0, "stop generating after this many OTPs (0 = never)")
	fs.Int64Var(&c.Simulate.Seed, "simulate-seed", 1, "seed of the simulator's random choices")
	fs.Float64Var(&c.Simulate.TimeScale, "simulate-time-scale", 1, "simulated seconds per wall-clock second")
	fs.Float64Var(&c.Simulate.V1Share, "simulate-v1-share", 0, "share of generated OTPs sent through tyntec's v1 API")
	fs.Float64Var(&c.Simulate.DropWebhooks, "simulate-drop-webhooks", 0, "share of webhooks the simulator never sends (the poller recovers them)")
}

// Validate completes the configuration (the data directory, a token for the
// simulator's webhooks) and reports the first error.
func (c *Config) Validate() error {
	c.Ingest.NATS.DataDir, c.ClickHouse.DataDir = c.DataDir, c.DataDir
	if c.Simulate.Enabled && len(c.Ingest.Tokens) == 0 && !c.Ingest.InsecureNoAuth {
		// The simulator is the only sender: a fresh random token keeps the
		// webhook endpoint closed to everyone else.
		c.Ingest.Tokens = append(c.Ingest.Tokens, randomToken())
	}
	if c.ClickHouse.DSN == "" && c.DataDir == "" {
		return errors.New("data-dir is required for the embedded ClickHouse engine")
	}
	if err := c.Ingest.Validate(); err != nil {
		return err
	}
	if err := c.ClickHouse.Validate(); err != nil {
		return err
	}
	if c.Simulate.Enabled && (c.Simulate.Rate < 0 || c.Simulate.TimeScale <= 0) {
		return errors.New("simulate-rate must be >= 0 and simulate-time-scale > 0")
	}
	if c.Simulate.Enabled {
		// The poller calls the simulator; its address is known once bound.
		c.Poller.Tyntec.APIKey = tyntecsim.DefaultAPIKey
	}
	if c.pollerEnabled() {
		c.Poller.Listen, c.Poller.NATS = "", c.Ingest.NATS
		if err := c.Poller.Validate(); err != nil {
			return err
		}
	}
	if err := c.Reports.Validate(); err != nil {
		return err
	}
	return c.Sink.Validate()
}

// pollerEnabled: without a tyntec API key there is nothing to poll.
func (c *Config) pollerEnabled() bool { return c.Poller.Tyntec.APIKey != "" }

func randomToken() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// App is the all-in-one, built and bound, ready to Serve.
type App struct {
	cfg      Config
	logger   *slog.Logger
	broker   *broker.Broker
	db       *store.DB
	consumer *sink.Consumer
	reports  *reporter.Reports
	ln       net.Listener
	srv      *http.Server
	poller   *poller.Poller // nil without a tyntec API key
	sim      *tyntecsim.Sim
	simLn    net.Listener
	cleanup  []func()
}

// New starts the embedded servers (or connects to external ones), applies the
// schema and binds the listeners.
func New(ctx context.Context, cfg Config, logger *slog.Logger) (*App, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &App{cfg: cfg, logger: logger}
	if err := a.start(ctx); err != nil {
		a.close()
		return nil, err
	}
	return a, nil
}

func (a *App) start(ctx context.Context) (err error) {
	cfg, logger := a.cfg, a.logger
	if a.broker, err = broker.Open(ctx, cfg.Ingest.NATS, "otpscope", logger); err != nil {
		return err
	}
	a.cleanup = append(a.cleanup, a.broker.Close)

	if a.db, err = store.Open(ctx, cfg.ClickHouse, logger); err != nil {
		return err
	}
	a.cleanup = append(a.cleanup, func() { a.db.Close() })

	if a.ln, err = net.Listen("tcp", cfg.Ingest.Listen); err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Ingest.Listen, err)
	}
	if cfg.Simulate.Enabled {
		if err := a.newSimulator(); err != nil {
			return err
		}
		a.cfg.Poller.Tyntec.BaseURL = a.SimulatorURL()
	}

	reg := ops.NewRegistry()
	r := ops.NewRouter()
	ingest.NewHandler(cfg.Ingest, a.broker, logger, reg).Mount(r)
	reporter.NewAPI(a.db, logger).Mount(r)
	a.reports = reporter.NewReports(cfg.Reports, a.db, a.broker, logger, reg)
	checks := []ops.Check{{Name: "nats", Ready: a.broker.Ready}, {Name: "clickhouse", Ready: a.db.Ready}}
	a.consumer = sink.NewConsumer(cfg.Sink, a.broker, a.db, logger, reg)
	if cfg.pollerEnabled() {
		if a.poller, err = poller.New(ctx, a.cfg.Poller, a.broker, logger.With("component", "poller"), reg); err != nil {
			return err
		}
		checks = append(checks, a.poller.Checks()...)
	} else {
		logger.Warn("no --tyntec-api-key: the poller is off (no reconciliation of lost webhooks, no resends)")
	}
	ops.Mount(r, reg, checks...)
	a.srv = ops.NewServer(r)
	return nil
}

func (a *App) newSimulator() error {
	s := a.cfg.Simulate
	var err error
	if a.simLn, err = net.Listen("tcp", s.Listen); err != nil {
		return fmt.Errorf("simulate-listen %s: %w", s.Listen, err)
	}
	a.sim, err = tyntecsim.New(tyntecsim.Config{
		Seed:      s.Seed,
		TimeScale: s.TimeScale,
		Channels:  s.Channels,
		Faults:    tyntecsim.Faults{WebhookDrop: s.DropWebhooks},
		Logger:    a.logger.With("component", "tyntecsim"),
	})
	return err
}

// registerCallback points the simulator's v4 callback at this process through
// the API, as `poller register-callback` does against tyntec.
func (a *App) registerCallback(ctx context.Context) error {
	client, err := tyntec.New(tyntec.Config{BaseURL: a.SimulatorURL(), APIKey: tyntecsim.DefaultAPIKey, Limiter: rate.NewLimiter(rate.Inf, 1)})
	if err != nil {
		return err
	}
	headers := map[string]string{}
	if len(a.cfg.Ingest.Tokens) > 0 {
		headers["X-Webhook-Token"] = a.cfg.Ingest.Tokens[0]
	}
	res, err := poller.RegisterCallback(ctx, client, "http://"+a.Addr()+ingest.WebhookPath, headers)
	if err != nil {
		return fmt.Errorf("register the callback at the simulator: %w", err)
	}
	a.logger.Info("callback registered at the simulator", "id", res.ID, "action", res.Action)
	return nil
}

// Addr is the HTTP address.
func (a *App) Addr() string { return a.ln.Addr().String() }

// SimulatorURL is the simulated tyntec API's base URL, or "" without --simulate.
func (a *App) SimulatorURL() string {
	if a.simLn == nil {
		return ""
	}
	return "http://" + a.simLn.Addr().String()
}

// Simulator is the tyntec simulator, or nil without --simulate.
func (a *App) Simulator() *tyntecsim.Sim { return a.sim }

// Banner says what runs where.
func (a *App) Banner(w io.Writer) {
	embedded := func(yes bool) string {
		if yes {
			return "embedded"
		}
		return "external"
	}
	lines := []string{
		"otpscope is running",
		fmt.Sprintf("  webhooks     http://%s%s", a.Addr(), ingest.WebhookPath),
		fmt.Sprintf("  tracking     http://%s%s", a.Addr(), ingest.TrackPath),
		fmt.Sprintf("  API          http://%s/api/v1/channels  /api/v1/fallback  /api/v1/otps/{otpId}", a.Addr()),
		fmt.Sprintf("  health       http://%s/healthz  /readyz  /metrics", a.Addr()),
		fmt.Sprintf("  NATS         %s (%s), stream %s", a.broker.ClientURL(), embedded(a.broker.Embedded()), a.broker.StreamName()),
	}
	if e := a.db.Embedded(); e != nil {
		lines = append(lines, fmt.Sprintf("  ClickHouse   http://%s (embedded engine, read-only for other clients; Grafana connects here)", e.Addr()))
	} else {
		lines = append(lines, "  ClickHouse   "+redact(a.cfg.ClickHouse.DSN)+" (external)")
	}
	lines = append(lines, "  data dir     "+a.cfg.DataDir)
	if a.poller != nil {
		lines = append(lines, "  poller       reconciling through "+a.cfg.Poller.Tyntec.BaseURL+" (resends: "+a.cfg.Poller.ResendMode+")")
	} else {
		lines = append(lines, "  poller       off (no --tyntec-api-key)")
	}
	if a.sim != nil {
		lines = append(lines, fmt.Sprintf("  simulator    %s (tyntec API; ground truth at /_sim/truth), %.3g OTPs/s", a.SimulatorURL(), a.cfg.Simulate.Rate))
	}
	fmt.Fprintln(w, strings.Join(lines, "\n"))
}

// redact hides a DSN's password.
func redact(dsn string) string {
	if at := strings.LastIndex(dsn, "@"); at > 0 {
		if scheme := strings.Index(dsn, "://"); scheme > 0 && scheme < at {
			return dsn[:scheme+3] + "…" + dsn[at:]
		}
	}
	return dsn
}

// Serve runs everything until ctx ends, then stops in order: the simulator,
// HTTP, the sink (inserting what it holds), ClickHouse, NATS.
func (a *App) Serve(ctx context.Context) error {
	defer a.close()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return ops.Serve(gctx, a.srv, a.ln, a.cfg.Ingest.ShutdownTimeout) })
	g.Go(func() error { return a.consumer.Run(gctx) })
	g.Go(func() error { return reporter.RunReportsLeased(gctx, a.broker, a.reports, a.logger) })
	if a.poller != nil {
		g.Go(func() error { return a.poller.Run(gctx) })
	}
	if a.sim != nil {
		simSrv := ops.NewServer(a.sim.InspectHandler())
		g.Go(func() error { return ops.Serve(gctx, simSrv, a.simLn, 5*time.Second) })
		if err := a.sim.Start(gctx); err != nil {
			return err
		}
		g.Go(func() error { <-gctx.Done(); return a.sim.Close() })
		g.Go(func() error {
			if err := a.registerCallback(gctx); err != nil {
				return err
			}
			err := a.sim.RunTraffic(gctx, tyntecsim.Traffic{Rate: a.cfg.Simulate.Rate, Count: a.cfg.Simulate.Count, V1Share: a.cfg.Simulate.V1Share})
			if gctx.Err() != nil {
				return nil
			}
			return err
		})
	}
	return g.Wait()
}

func (a *App) close() {
	for i := len(a.cleanup) - 1; i >= 0; i-- {
		a.cleanup[i]()
	}
	a.cleanup = nil
}

// Run is New, the banner on w, and Serve.
func Run(ctx context.Context, cfg Config, logger *slog.Logger, w io.Writer) error {
	a, err := New(ctx, cfg, logger)
	if err != nil {
		return err
	}
	a.Banner(w)
	return a.Serve(ctx)
}
