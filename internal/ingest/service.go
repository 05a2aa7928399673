package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"github.com/otpscope/otpscope/internal/broker"
	"github.com/otpscope/otpscope/internal/ops"
)

// Service is the ingest service on its own listener: the webhook route plus
// /healthz, /readyz and /metrics.
type Service struct {
	cfg    Config
	broker *broker.Broker
	ln     net.Listener
	srv    *http.Server
	logger *slog.Logger
}

// New opens NATS (hosting the embedded server when cfg.NATS.URL is empty) and
// binds the listener; Serve starts answering.
func New(ctx context.Context, cfg Config, logger *slog.Logger) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b, err := broker.Open(ctx, cfg.NATS, "otpscope-ingest", logger)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	reg := ops.NewRegistry()
	r := ops.NewRouter()
	NewHandler(cfg, b, logger, reg).Mount(r)
	ops.Mount(r, reg, ops.Check{Name: "nats", Ready: b.Ready})
	return &Service{
		cfg:    cfg,
		broker: b,
		ln:     ln,
		srv:    ops.NewServer(r),
		logger: logger,
	}, nil
}

// Addr is the address the service listens on.
func (s *Service) Addr() string { return s.ln.Addr().String() }

// Broker is the service's NATS broker.
func (s *Service) Broker() *broker.Broker { return s.broker }

// Serve answers requests until ctx ends, then stops taking new ones, lets those in
// flight finish (bounded by ShutdownTimeout), and closes NATS.
func (s *Service) Serve(ctx context.Context) error {
	defer s.broker.Close()
	s.logger.Info("ingest listening", "addr", s.Addr(), "webhook", "http://"+s.Addr()+WebhookPath, "nats", s.broker.ClientURL())
	if err := ops.Serve(ctx, s.srv, s.ln, s.cfg.ShutdownTimeout); err != nil {
		return err
	}
	s.logger.Info("ingest stopped")
	return nil
}

// Run is New followed by Serve.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	s, err := New(ctx, cfg, logger)
	if err != nil {
		return err
	}
	return s.Serve(ctx)
}
