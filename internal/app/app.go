// Package app builds every otpscope process from the same modules, the way
// Grafana Tempo's single binary is a list of the modules its microservices
// run: ingest, the poller and the reporter each take the shared pieces (the
// broker, the store, one router, one metrics registry, the logger), and a
// binary is a list of modules (Binaries). cmd/ingest, cmd/poller and
// cmd/reporter run one each; cmd/otpscope, the all-in-one, runs all three on
// embedded defaults and, with --simulate, the tyntec simulator — the command
// a newcomer runs first.
package app

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/valyala/fasthttp"
	"golang.org/x/sync/errgroup"

	apidoc "github.com/otpscope/otpscope/docs/api"
	"github.com/otpscope/otpscope/internal/broker"
	"github.com/otpscope/otpscope/internal/cli"
	"github.com/otpscope/otpscope/internal/console"
	"github.com/otpscope/otpscope/internal/flagenv"
	"github.com/otpscope/otpscope/internal/httpurl"
	"github.com/otpscope/otpscope/internal/ingest"
	"github.com/otpscope/otpscope/internal/ops"
	"github.com/otpscope/otpscope/internal/poller"
	"github.com/otpscope/otpscope/internal/problem"
	"github.com/otpscope/otpscope/internal/reporter"
	"github.com/otpscope/otpscope/internal/sink"
	"github.com/otpscope/otpscope/internal/store"
	"github.com/otpscope/otpscope/internal/tyntecsim"
)

// App is one process, built and bound, ready to Serve.
type App struct {
	cfg     Config
	logger  *slog.Logger
	broker  *broker.Broker
	db      *store.DB // nil without the reporter
	ln      net.Listener
	public  chi.Router       // the listener's routes (fast serves the webhooks')
	srv     *http.Server     // the listener's server, or fast
	fast    *fasthttp.Server // when ingest has the listener to itself
	adminLn net.Listener     // nil when the API and /metrics are on ln
	admin   *http.Server
	runs    []func(context.Context) error // the modules' loops
	faults  *faults                       // the process's major page faults, for the status
	poller  *poller.Poller                // nil when the poller is off
	reg     *ops.Registry                 // the process's metrics
	sim     *simulator                    // nil without --simulate
	ingest  *ingest.Handler               // nil without the ingest module
	sink    *sink.Consumer                // nil without the reporter module
	// embeddedSink runs the sink alone on the stream when it writes the
	// embedded engine (nil otherwise).
	embeddedSink *reporter.EmbeddedSink
	// starting answers on ln and adminLn while New opens NATS and the
	// engine; New hands the listeners over when it is done.
	starting, adminStarting *ops.Starting
	// onShutdown run when the admin server shuts down (open live streams).
	onShutdown []func()
	// checks are /readyz's; a failing one is a warning of the status too.
	checks []ops.Check
	// stopping is set when Serve's context ends: /readyz fails through
	// --shutdown-delay before the listeners close.
	stopping atomic.Bool
	cleanup  []func()
}

// New completes and validates cfg, opens what the modules share (NATS,
// hosting the embedded server without --nats-url; with the reporter,
// ClickHouse, hosting the embedded engine without --clickhouse-dsn), binds the
// listener and builds each module on them.
func New(ctx context.Context, cfg Config, logger *slog.Logger) (*App, error) {
	cfg.Complete()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &App{cfg: cfg, logger: logger}
	if err := a.build(ctx); err != nil {
		a.close()
		return nil, err
	}
	return a, nil
}

func (a *App) build(ctx context.Context) (err error) {
	cfg, logger := a.cfg, a.logger
	var ingestRoutes []ingest.Route
	// Bind first: a taken port is a mistake to report at once, before NATS
	// or the engine start.
	if a.ln, err = ops.Listen(cfg.Listen, cfg.Connections, logger); err != nil {
		return err
	}
	a.cleanup = append(a.cleanup, func() { a.ln.Close() })
	var tlsConfig *tls.Config
	if cfg.TLSCertFile != "" {
		cert, err := ops.LoadCertificate(cfg.TLSCertFile, cfg.TLSKeyFile, logger)
		if err != nil {
			return err
		}
		tlsConfig = cert.Config()
		a.ln = tls.NewListener(a.ln, tlsConfig)
	}
	reg := ops.NewRegistry()
	a.reg = reg
	httpMetrics := ops.NewHTTPMetrics(reg)
	public := ops.NewRouter()
	public.Use(httpMetrics.Middleware("public"))
	a.public = public
	admin := public
	if cfg.AdminListen != "" {
		if a.adminLn, err = ops.Listen(cfg.AdminListen, cfg.Connections, logger); err != nil {
			return fmt.Errorf("admin-listen: %w", err)
		}
		a.cleanup = append(a.cleanup, func() { a.adminLn.Close() })
		if tlsConfig != nil {
			a.adminLn = tls.NewListener(a.adminLn, tlsConfig)
		}
		admin = ops.NewRouter()
		admin.Use(httpMetrics.Middleware("admin"))
		// What the admin listener serves, asked of the public one: say
		// where it is (otpscope status or curl pointed at :8080).
		public.NotFound(func(w http.ResponseWriter, r *http.Request) {
			detail := "no such endpoint"
			if onAdminListener(r.URL.Path) {
				detail = "no such endpoint on the public listener: the API, /metrics and the console are on the admin listener (--admin-listen " + cfg.AdminListen + ")"
			}
			problem.Error(w, http.StatusNotFound, detail)
		})
	}
	// The admin server serves this router, not the guarded ones made from
	// it below: those share its routes but not its middleware, so served
	// themselves they would answer HEAD 405, count no requests and let a
	// panic through.
	adminRoot := admin
	// The API and /metrics require an API token when one is configured, or
	// an API read token to read; /metrics also takes a metrics token, which
	// opens nothing else.
	// Without one, they refuse what a web page could send them
	// (ops.BrowserGuard).
	refused := ops.NewRefusals(logger, "request refused for its API token")
	apiTokens := ops.WatchTokens("API token", cfg.APITokens, cfg.APITokensFile, logger)
	if len(cfg.APITokens) == 0 {
		admin = admin.With(ops.BrowserGuard(httpurl.Loopback(a.AdminAddr()), cfg.browserNames()))
	}
	// A read token passes where an API token does, until it acts: 403,
	// logged as an action by Audit.
	readTokens := ops.WatchTokens("API read token", cfg.APIReadTokens, cfg.APIReadTokensFile, logger)
	guarded := admin.With(ops.RequireBearer(refused, apiTokens, readTokens), ops.Audit(logger), ops.ReadOnly(apiTokens))
	scraped := admin.With(ops.RequireBearer(refused, apiTokens, readTokens, ops.WatchTokens("metrics token", cfg.MetricsTokens, cfg.MetricsTokensFile, logger)))
	// Answered at once from here until New returns (/healthz 200, the rest
	// 503 with Retry-After), rather than clients left in the backlog:
	// opening NATS and the engine can take minutes on a recovering or full
	// disk. Between New and Serve connections wait in the backlog as before.
	a.starting = ops.ServeStarting(a.ln)
	a.cleanup = append(a.cleanup, func() { a.starting.Close() })
	if a.adminLn != nil {
		a.adminStarting = ops.ServeStarting(a.adminLn)
		a.cleanup = append(a.cleanup, func() { a.adminStarting.Close() })
	}
	if a.broker, err = broker.Open(ctx, cfg.NATS, "otpscope-"+strings.Join(cfg.Modules, "-"), logger); err != nil {
		return err
	}
	a.cleanup = append(a.cleanup, a.broker.Close)
	reg.MustRegister(a.broker.Collectors()...)
	checks := []ops.Check{{Name: "serving", Ready: a.serving}, {Name: "nats", Ready: a.broker.Ready}}

	if cfg.runs(ModuleReporter) {
		chCfg := cfg.ClickHouse
		chCfg.ObserveQuery = ops.NewQueryMetrics(reg).Observe
		chCfg.ListenTCP = func(addr string) (net.Listener, error) { return ops.Listen(addr, cfg.Connections, logger) }
		if a.db, err = store.Open(ctx, chCfg, logger); err != nil {
			return err
		}
		a.cleanup = append(a.cleanup, func() { a.db.Close() })
		consumer := sink.NewConsumer(cfg.Sink, a.broker, a.db, logger, reg)
		a.sink = consumer
		// Not ready while ClickHouse does not answer or the sink's inserts fail.
		checks = append(checks, ops.Check{Name: "clickhouse", Ready: func(ctx context.Context) error {
			if err := a.db.Ready(ctx); err != nil {
				return err
			}
			return consumer.Ready(ctx)
		}})
		backups := reporter.NewBackups(a.db, consumer.Inserted, logger, reg)
		if cfg.Reports.BackupSchedule != "" {
			if err := backups.Watch(ctx); err != nil {
				return fmt.Errorf("backups: %w", err)
			}
		}
		// The requests that read ClickHouse are bounded, and their queries
		// kept on a pool of their own: a burst from one client waits or gets
		// 429, and never takes the sink's, /readyz's or the scheduled jobs'
		// connections.
		bounded := guarded.With(reporter.NewLimit(cfg.APIQueries).Middleware)
		backups.Mount(guarded, bounded)
		reports := reporter.NewReports(cfg.Reports, a.db, a.broker, logger, reg).WithBackups(backups)
		reporter.NewAPI(a.db, cfg.Reports.Rules, logger).Mount(bounded)
		reports.MountFiring(guarded)
		reports.MountRules(guarded)
		reports.MountSilences(guarded)
		reporter.NewDeadLetters(a.db, a.broker, logger).Mount(bounded)
		// The console's pages are code, not data: served unguarded (a
		// browser's navigation cannot carry a bearer token); they call the
		// guarded API with the token the operator types in.
		console.Mount(admin, console.Config{NeedToken: len(cfg.APITokens) > 0, MaxLag: cfg.Reports.FollowingLag(a.db)})
		// So is the API's description (docs/api), served beside them.
		admin.Get(apidoc.Path, serveAPIDoc)
		live := reporter.NewLive(a.broker, logger)
		live.Mount(guarded)
		a.onShutdown = append(a.onShutdown, live.Close)
		runSink := consumer.Run
		if e := a.db.Embedded(); e != nil {
			a.embeddedSink = &reporter.EmbeddedSink{}
			runSink = func(ctx context.Context) error {
				return a.embeddedSink.Run(ctx, a.broker, e.Dir(), consumer.Run, logger)
			}
		}
		a.runs = append(a.runs, runSink, func(ctx context.Context) error {
			return reporter.RunReportsLeased(ctx, a.broker, reports, logger)
		})
	}
	if cfg.runs(ModuleIngest) {
		if err := cfg.Ingest.CheckMaxPayload(a.broker.MaxPayload()); err != nil {
			return cli.Usage(err)
		}
		a.ingest = ingest.NewHandler(cfg.Ingest, a.broker, logger, reg)
		key, err := a.pseudonymKey(ctx)
		if err != nil {
			return err
		}
		ingestRoutes = append(a.ingest.Routes(), ingest.NewMethods(a.ingest, key, reg).Routes()...)
		ingest.Mount(public, ingestRoutes...)
	}
	if cfg.Simulate.Enabled {
		if a.sim, err = newSimulator(cfg.Simulate, logger.With("component", "tyntecsim")); err != nil {
			return err
		}
		a.cleanup = append(a.cleanup, func() { a.sim.ln.Close() })
		a.cfg.Poller.Tyntec.BaseURL = a.sim.URL()
		if push := &a.cfg.Poller.Push; !push.Enabled() { // the simulator serves the push API too
			push.BaseURL, push.APIKey = a.sim.URL(), a.cfg.Poller.Tyntec.APIKey
		}
	}
	if a.cfg.pollerOn() {
		if a.poller, err = poller.New(ctx, a.cfg.Poller, a.broker, logger.With("component", "poller"), reg); err != nil {
			return err
		}
		checks = append(checks, a.poller.Checks()...)
		a.runs = append(a.runs, a.poller.Run)
	} else if cfg.runs(ModulePoller) {
		logger.Warn("no --tyntec-api-key: the poller is off (no reconciliation of lost webhooks, no resends)")
	}
	a.faults = newFaults()
	a.runs = append(a.runs, a.faults.watch)
	if cfg.StatusInterval > 0 {
		a.runs = append(a.runs, a.reportStatus)
	}
	a.checks = checks
	// Without an admin listener the public one is the operators'.
	ops.MountHealth(public, a.adminLn == nil, checks...)
	ops.MountMetrics(scraped, reg)
	ops.MountProfiling(guarded)
	guarded.With(reporter.QueryParams(nil)).Get("/api/v1/status", a.serveStatus)
	if a.adminLn != nil && len(ingestRoutes) > 0 {
		// The webhooks have the listener to themselves: fasthttp serves
		// them (ingest.NewServer says why), the router the rest.
		a.fast = a.ingest.NewServer(public, httpMetrics.Recorder("public"), ingestRoutes...)
	} else {
		a.srv = ops.NewServer(public)
	}
	if a.adminLn != nil {
		ops.MountHealth(admin, true, checks...)
		a.admin = ops.NewServer(adminRoot)
	}
	for _, f := range a.onShutdown {
		if a.admin != nil {
			a.admin.RegisterOnShutdown(f)
		} else {
			a.srv.RegisterOnShutdown(f)
		}
	}
	if len(cfg.APITokens) == 0 && !httpurl.Loopback(a.AdminAddr()) {
		logger.Warn("--insecure-open-api: the API and /metrics answer anyone who can reach "+a.AdminAddr()+" (a browser only at its IP address, localhost or --console-url's host): set --api-token", "browser_names", cfg.browserNames())
	}
	a.ln = a.starting.Handoff(ctx)
	if a.adminStarting != nil {
		a.adminLn = a.adminStarting.Handoff(ctx)
	}
	return nil
}

// Addr is the HTTP address.
func (a *App) Addr() string { return a.ln.Addr().String() }

// AdminAddr is the address of the API and /metrics (Addr when they share it).
func (a *App) AdminAddr() string {
	if a.adminLn == nil {
		return a.Addr()
	}
	return a.adminLn.Addr().String()
}

// MetricNames are the names of the metrics the process registered.
func (a *App) MetricNames() []string { return a.reg.Names() }

// Broker is the process's NATS broker.
func (a *App) Broker() *broker.Broker { return a.broker }

// Poller is the poller module, or nil when it is off.
func (a *App) Poller() *poller.Poller { return a.poller }

// Simulator is the tyntec simulator, or nil without --simulate.
func (a *App) Simulator() *tyntecsim.Sim {
	if a.sim == nil {
		return nil
	}
	return a.sim.Sim
}

// Banner says what runs where.
func (a *App) Banner(w io.Writer) {
	scheme := "http://"
	if a.cfg.TLSCertFile != "" {
		scheme = "https://"
	}
	base, adminBase := scheme+reachable(a.Addr()), scheme+reachable(a.AdminAddr())
	lines := []string{"otpscope is running (" + strings.Join(a.running(), ", ") + ")"}
	if a.cfg.runs(ModuleIngest) {
		lines = append(lines,
			"  webhooks     "+base+ingest.WebhookPath,
			"  tracking     "+base+ingest.TrackPath,
			"  silent auth  "+base+ingest.SilentPath+"  (outcomes reported by the app's backend)",
			"  push         "+base+ingest.PushPath+"  (the push-approval provider's callback)")
	}
	if a.cfg.runs(ModuleReporter) {
		lines = append(lines,
			"  console      "+adminBase+console.Path,
			"  API          "+adminBase+"/api/v1/channels  /api/v1/fallback  /api/v1/otps/{otpId}")
	}
	lines = append(lines, "  health       "+base+"/healthz  /readyz", "  metrics      "+adminBase+"/metrics")
	nats := "external"
	if a.broker.Embedded() {
		nats = "embedded"
	}
	lines = append(lines, fmt.Sprintf("  NATS         %s (%s), stream %s", reachableURL(a.broker.ClientURL()), nats, a.broker.StreamName()))
	if f := a.broker.CredentialsFile(); f != "" {
		lines = append(lines, "  NATS users   "+f+" (service and read-only users; a password is required)")
	}
	if a.db != nil {
		if e := a.db.Embedded(); e != nil {
			lines = append(lines, fmt.Sprintf("  ClickHouse   http://%s (embedded engine, read-only for other clients; Grafana connects here)", reachable(e.Addr())))
		} else {
			lines = append(lines, "  ClickHouse   "+flagenv.Shown("clickhouse-dsn", a.cfg.ClickHouse.DSN)+" (external)")
		}
	}
	lines = append(lines, "  data dir     "+a.cfg.DataDir)
	if a.poller != nil {
		lines = append(lines, "  poller       reconciling through "+a.cfg.Poller.Tyntec.BaseURL+" (resends: "+a.cfg.Poller.ResendMode+"; deployment id "+cmp.Or(a.cfg.Poller.DeploymentID, "that of the callback delivering here already, else "+a.cfg.Poller.DeploymentFallback)+"; /readyz says whether tyntec's v1 API serves v4 OTPs)")
	} else if a.cfg.runs(ModulePoller) {
		lines = append(lines, "  poller       off (no --tyntec-api-key)")
	}
	if a.sim != nil {
		traffic := fmt.Sprintf("%.3g logins/s (%.0f%% silent auth first, %.0f%% push first, then an OTP on failure)", a.cfg.Simulate.Rate, 100*a.cfg.Simulate.SilentShare, 100*a.cfg.Simulate.PushShare)
		if a.cfg.Simulate.Rate == 0 {
			traffic = "no generated traffic (--simulate-rate 0: it serves the OTPs sent to its API)"
		}
		lines = append(lines, fmt.Sprintf("  simulator    %s (tyntec API; ground truth at /_sim/truth), %s, seed %d, drops %.0f%% of its webhooks",
			reachableURL(a.sim.URL()), traffic, a.cfg.Simulate.Seed, 100*a.cfg.Simulate.DropWebhooks))
		if a.cfg.generatedToken != "" {
			lines = append(lines, "  token        "+a.cfg.generatedToken+" (the webhook token, generated for this run: send it as X-Webhook-Token)")
		}
	}
	if everywhere := a.everyInterface(); len(everywhere) > 0 {
		lines = append(lines, "  (listening on every interface: "+strings.Join(everywhere, ", ")+"; from another machine, use this one's name or address)")
	}
	fmt.Fprintln(w, strings.Join(lines, "\n"))
}

// reachable is addr (host:port) as a client on this machine dials it: a
// listener on every address (wildcard) is localhost; a URL of [::] is no
// address to give anyone.
func reachable(addr string) string {
	if host, port, err := net.SplitHostPort(addr); err == nil && wildcard(host) {
		return net.JoinHostPort("localhost", port)
	}
	return addr
}

// reachableURL is u with its host reachable.
func reachableURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	p.Host = reachable(p.Host)
	return p.String()
}

// everyInterface names the listeners the banner shows on localhost that
// listen on every interface.
func (a *App) everyInterface() []string {
	var out []string
	add := func(name, addr string) {
		if reachable(addr) != addr {
			out = append(out, name)
		}
	}
	add("--listen", a.Addr())
	if a.adminLn != nil {
		add("--admin-listen", a.AdminAddr())
	}
	if a.broker.Embedded() {
		if p, err := url.Parse(a.broker.ClientURL()); err == nil {
			add("--nats-listen", p.Host)
		}
	}
	if a.db != nil && a.db.Embedded() != nil {
		add("--clickhouse-listen", a.db.Embedded().Addr())
	}
	if a.sim != nil {
		add("--simulate-listen", a.sim.ln.Addr().String())
	}
	return out
}

// Serve runs every module until ctx ends, then stops in order: the
// simulator, HTTP, the modules (the sink inserting what it holds), ClickHouse,
// NATS.
func (a *App) Serve(ctx context.Context) error {
	defer a.close()
	serving, stopServing := a.drained(ctx)
	defer stopServing()
	g, gctx := errgroup.WithContext(serving)
	if a.fast != nil {
		g.Go(func() error { return ops.ServeFast(gctx, a.fast, a.ln, a.cfg.ShutdownTimeout) })
	} else {
		g.Go(func() error { return ops.Serve(gctx, a.srv, a.ln, a.cfg.ShutdownTimeout) })
	}
	if a.admin != nil {
		g.Go(func() error { return ops.Serve(gctx, a.admin, a.adminLn, a.cfg.ShutdownTimeout) })
	}
	for _, run := range a.runs {
		g.Go(func() error {
			err := run(gctx)
			if ctx.Err() != nil && errors.Is(err, context.Canceled) {
				// Stopped by the caller, perhaps while still setting up
				// (creating a KV bucket, a consumer): a clean stop.
				return nil
			}
			return err
		})
	}
	if a.sim != nil {
		if err := a.sim.serve(gctx, g, "http://"+reachable(a.Addr()), a.cfg.Ingest, poller.RegisterOptions{Deployment: a.cfg.Poller.DeploymentID, Fallback: a.cfg.Poller.DeploymentFallback}, a.cfg.Simulate); err != nil {
			return err
		}
	}
	a.logger.Info("otpscope running", "version", cli.ModuleVersion(), "modules", strings.Join(a.running(), ","), "addr", a.Addr(), "admin", a.AdminAddr(), "nats", a.broker.ClientURL())
	err := g.Wait()
	a.logger.Info("otpscope stopped")
	return err
}

// drained is a context that ends --shutdown-delay after ctx does: through
// the delay everything goes on serving but /readyz, which fails, so a load
// balancer polling it (or Kubernetes removing the pod from its Service)
// stops sending before the listeners close rather than meeting refused
// connections.
func (a *App) drained(ctx context.Context) (context.Context, context.CancelFunc) {
	serving, stop := context.WithCancel(context.WithoutCancel(ctx))
	go func() {
		select {
		case <-serving.Done(): // stopped otherwise (a module failed)
			return
		case <-ctx.Done():
		}
		a.stopping.Store(true)
		if d := a.cfg.ShutdownDelay; d > 0 {
			a.logger.Info("stopping: /readyz answers 503 while the listeners serve for --shutdown-delay", "delay", d)
			select {
			case <-time.After(d):
			case <-serving.Done():
			}
		}
		stop()
	}()
	return serving, stop
}

// serving is the readiness check that fails once the process is stopping.
func (a *App) serving(context.Context) error {
	if a.stopping.Load() {
		return fmt.Errorf("stopping: the listeners close within --shutdown-delay (%v)", a.cfg.ShutdownDelay)
	}
	return nil
}

func (a *App) close() {
	for i := len(a.cleanup) - 1; i >= 0; i-- {
		a.cleanup[i]()
	}
	a.cleanup = nil
}

// onAdminListener reports whether path is one the admin listener serves
// (or would, with the modules that serve it), asked of the public one.
func onAdminListener(path string) bool {
	for _, p := range []string{"/api/", "/metrics", "/console", "/debug/"} {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// serveAPIDoc answers the API's OpenAPI description.
func serveAPIDoc(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-cache")
	_, _ = w.Write(apidoc.Raw())
}

// Run is New, the banner on w (nil: none), and Serve.
func Run(ctx context.Context, cfg Config, logger *slog.Logger, w io.Writer) error {
	a, err := New(ctx, cfg, logger)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return cli.StoppedStarting(err) // stopped while it waited for NATS, say
		}
		return err
	}
	if w != nil {
		a.Banner(w)
	}
	return a.Serve(ctx)
}

// pseudonymKey is ingest's pseudonym key: --pseudonym-key when set;
// otherwise, so that every ingest publishing to one NATS agrees, the one
// shared through a KV bucket there. On a single embedded NATS server that
// is the key in the data directory (made at first start, kept beside the
// server's own state), which this process puts in the bucket for replicas
// publishing to its server. On an external NATS server or an embedded
// cluster, where replicas do not share a data directory, it is the
// bucket's, which the first replica seeds with its data directory's key
// when it has one (an upgrade from a build that kept the key only there)
// or a new one (ingest.SharedPseudonymKey).
func (a *App) pseudonymKey(ctx context.Context) ([]byte, error) {
	cfg := a.cfg
	if cfg.Ingest.PseudonymKey != "" {
		return []byte(cfg.Ingest.PseudonymKey), nil
	}
	single := cfg.NATS.URL == "" && cfg.NATS.ClusterName == ""
	var fileKey []byte
	var err error
	if single {
		fileKey, err = ingest.PseudonymKey(cfg.Ingest, cfg.DataDir)
	} else {
		fileKey, err = ingest.FilePseudonymKey(cfg.DataDir)
	}
	if err != nil {
		return nil, err
	}
	kv, err := a.broker.KeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: ingest.PseudonymBucket, Description: "ingest's pseudonym key, shared by its replicas", History: 1,
	})
	if err != nil {
		return nil, err
	}
	file := filepath.Join(cfg.DataDir, ingest.PseudonymKeyFile)
	if single {
		replaced, err := ingest.PublishPseudonymKey(ctx, kv, fileKey)
		if err != nil {
			return nil, err
		}
		if replaced != nil {
			a.logger.Warn("the pseudonym key shared through NATS differed from this data directory's; it is now the data directory's (a replica publishing here reads it at its next start)", "file", file, "bucket", ingest.PseudonymBucket)
		}
		return fileKey, nil
	}
	key, created, err := ingest.SharedPseudonymKey(ctx, kv, fileKey)
	switch {
	case err != nil:
		return nil, err
	case created && fileKey != nil:
		a.logger.Info("pseudonym key shared through NATS, from this data directory's", "bucket", ingest.PseudonymBucket, "file", file)
	case fileKey != nil && !bytes.Equal(key, fileKey):
		a.logger.Warn("this data directory's pseudonym key differs from the one shared through NATS, which is used: phone numbers pseudonymized with the file's key before do not join with later ones", "file", file, "bucket", ingest.PseudonymBucket)
	default:
		a.logger.Info("pseudonym key shared through NATS", "bucket", ingest.PseudonymBucket, "created", created)
	}
	return key, nil
}
