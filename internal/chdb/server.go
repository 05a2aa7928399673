package chdb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/otpscope/otpscope/internal/httpurl"
)

// DefaultAddr is where the endpoint listens when no address is given:
// ClickHouse's HTTP port, on loopback only.
const DefaultAddr = "127.0.0.1:8123"

// ErrExposed is returned by Listen for an address that is not loopback
// when the handler has no reader password: anyone who reaches the port
// could read every table.
var ErrExposed = errors.New("the ClickHouse endpoint listens beyond loopback only with a reader password")

// Server is the engine's HTTP endpoint bound to a listener.
type Server struct {
	handler *Handler
	ln      net.Listener
	srv     *http.Server
	logger  *slog.Logger
}

// Listen binds addr (DefaultAddr when empty) for h. Serve starts answering.
// An address that is not loopback needs a handler with a reader password
// (HandlerConfig.ReaderPassword); otherwise Listen fails with ErrExposed.
func Listen(addr string, h *Handler) (*Server, error) { return listen(addr, h, nil) }

// listen is Listen binding addr with listenTCP (nil: net.Listen).
func listen(addr string, h *Handler, listenTCP func(string) (net.Listener, error)) (*Server, error) {
	if listenTCP == nil {
		listenTCP = func(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }
	}
	if addr == "" {
		addr = DefaultAddr
	}
	if !httpurl.Loopback(addr) && h.readerPassword == "" {
		return nil, fmt.Errorf("listen clickhouse http %s: %w", addr, ErrExposed)
	}
	ln, err := listenTCP(addr)
	if err != nil {
		return nil, fmt.Errorf("listen clickhouse http %s: %w", addr, err)
	}
	return &Server{
		handler: h,
		ln:      ln,
		logger:  h.logger,
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			// A reader's idle connection is closed after this, as on
			// otpscope's own listeners (without it one would stay open
			// for ever, holding a file descriptor the engine needs).
			IdleTimeout: IdleTimeout,
			ErrorLog:    slog.NewLogLogger(h.logger.Handler(), slog.LevelWarn),
		},
	}, nil
}

// IdleTimeout is how long the endpoint keeps an idle connection open.
const IdleTimeout = 2 * time.Minute

// Addr is the address the server listens on, e.g. "127.0.0.1:8123".
func (s *Server) Addr() string { return s.ln.Addr().String() }

// DSN is a clickhouse-go DSN with the owner's credentials, for
// clickhouse.ParseDSN or sql.Open("clickhouse", dsn).
func (s *Server) DSN() string {
	user, password := s.handler.Credentials()
	u := url.URL{Scheme: "http", User: url.UserPassword(user, password), Host: s.Addr()}
	return u.String()
}

// Serve answers requests until ctx ends, then shuts down, giving requests
// in flight up to five seconds.
func (s *Server) Serve(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve clickhouse http: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shut down clickhouse http: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve clickhouse http: %w", err)
	}
	return nil
}
