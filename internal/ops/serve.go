package ops

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/net/netutil"
)

// Timeouts of every otpscope listener. A request has ReadHeaderTimeout to
// send its headers (an idle connection that sends nothing is closed then) and
// ReadTimeout for headers and body: a webhook is at most --max-body-bytes.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 15 * time.Second
	WriteTimeout      = 60 * time.Second
	IdleTimeout       = 2 * time.Minute
	// DefaultMaxConnections caps the connections a listener holds open at
	// once; further clients wait in the kernel's backlog rather than taking
	// the process's file descriptors (the engine and NATS need them too).
	DefaultMaxConnections = 1024
)

// Listen binds addr with at most maxConns connections open at once (0: no
// cap). A taken port fails here, at once.
func Listen(addr string, maxConns int) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	if maxConns > 0 {
		ln = netutil.LimitListener(ln, maxConns)
	}
	return ln, nil
}

// Serve answers on ln until ctx ends, then stops taking new connections and
// lets requests in flight finish within shutdownTimeout.
func Serve(ctx context.Context, srv *http.Server, ln net.Listener, shutdownTimeout time.Duration) error {
	return serveUntil(ctx, ln, shutdownTimeout, srv.Serve, srv.Shutdown, http.ErrServerClosed)
}

// ServeFast is Serve for a fasthttp server (the public listener's when it
// serves webhooks, internal/ingest.NewServer).
func ServeFast(ctx context.Context, srv *fasthttp.Server, ln net.Listener, shutdownTimeout time.Duration) error {
	return serveUntil(ctx, ln, shutdownTimeout, srv.Serve, srv.ShutdownWithContext, nil)
}

// serveUntil runs serve on ln until ctx ends, then shutdown; serve's closed
// error (nil: none) is how it says it was shut down.
func serveUntil(ctx context.Context, ln net.Listener, shutdownTimeout time.Duration,
	serve func(net.Listener) error, shutdown func(context.Context) error, closed error) error {
	errc := make(chan error, 1)
	go func() { errc <- serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve http on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	err := shutdown(shutdownCtx)
	if serveErr := <-errc; err == nil && !errors.Is(serveErr, closed) {
		err = serveErr
	}
	if err != nil {
		return fmt.Errorf("shut down http on %s: %w", ln.Addr(), err)
	}
	return nil
}

// NewServer is an http.Server with the timeouts every otpscope listener
// uses; the server's own complaints (TLS handshakes, header floods) go to
// the logger at debug level instead of stderr.
func NewServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(slog.Default().Handler(), slog.LevelDebug),
	}
}
