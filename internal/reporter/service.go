package reporter

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"golang.org/x/sync/errgroup"

	"github.com/otpscope/otpscope/internal/broker"
	"github.com/otpscope/otpscope/internal/ops"
	"github.com/otpscope/otpscope/internal/sink"
	"github.com/otpscope/otpscope/internal/store"
)

// Service is the reporter on its own listener: the sink consumer, the
// analytics API (/api/v1), the scheduled reports and alerts, health and
// metrics, and the embedded ClickHouse engine when no DSN is given.
type Service struct {
	cfg      Config
	broker   *broker.Broker
	db       *store.DB
	consumer *sink.Consumer
	reports  *Reports
	ln       net.Listener
	srv      *http.Server
	logger   *slog.Logger
}

// New connects to NATS and ClickHouse (hosting the embedded engine when
// cfg.ClickHouse.DSN is empty), applies the schema, and binds the listener.
func New(ctx context.Context, cfg Config, logger *slog.Logger) (s *Service, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s = &Service{cfg: cfg, logger: logger}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	if s.broker, err = broker.Open(ctx, cfg.NATS, "otpscope-reporter", logger); err != nil {
		return nil, err
	}
	reg := ops.NewRegistry()
	if s.db, err = store.Open(ctx, cfg.ClickHouse, logger); err != nil {
		return nil, err
	}
	s.consumer = sink.NewConsumer(cfg.Sink, s.broker, s.db, logger, reg)
	if s.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	s.reports = NewReports(cfg.Reports, s.db, s.broker, logger, reg)
	r := ops.NewRouter()
	ops.Mount(r, reg, ops.Check{Name: "nats", Ready: s.broker.Ready}, ops.Check{Name: "clickhouse", Ready: s.db.Ready})
	NewAPI(s.db, logger).Mount(r)
	s.srv = ops.NewServer(r)
	return s, nil
}

// Addr is the HTTP address.
func (s *Service) Addr() string { return s.ln.Addr().String() }

// Broker is the service's NATS broker.
func (s *Service) Broker() *broker.Broker { return s.broker }

// DB is the ClickHouse connection.
func (s *Service) DB() *store.DB { return s.db }

// Serve runs the sink consumer, the report schedule and the HTTP listener
// until ctx ends, then stops in order: HTTP, the consumer (inserting what it
// holds) and a running report, ClickHouse, NATS.
func (s *Service) Serve(ctx context.Context) error {
	defer s.close()
	if e := s.db.Embedded(); e != nil {
		s.logger.Info("embedded ClickHouse serving", "endpoint", "http://"+e.Addr(), "dir", e.Dir())
	}
	s.logger.Info("reporter listening", "addr", s.Addr(), "nats", s.broker.ClientURL())
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return ops.Serve(gctx, s.srv, s.ln, s.cfg.ShutdownTimeout) })
	g.Go(func() error { return s.consumer.Run(gctx) })
	g.Go(func() error { return RunReportsLeased(gctx, s.broker, s.reports, s.logger) })
	return g.Wait()
}

func (s *Service) close() {
	if s.db != nil {
		s.db.Close()
	}
	if s.broker != nil {
		s.broker.Close()
	}
}

// Run is New followed by Serve.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	s, err := New(ctx, cfg, logger)
	if err != nil {
		return err
	}
	return s.Serve(ctx)
}
