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
)

// Timeouts of every otpscope listener. A request has ReadHeaderTimeout to
// send its headers (an idle connection that sends nothing is closed then) and
// ReadTimeout for headers and body: a webhook is at most --max-body-bytes.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 15 * time.Second
	WriteTimeout      = 60 * time.Second
	IdleTimeout       = 2 * time.Minute
)

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
	// A serve that had not taken ln yet when shutdown came (a process
	// stopped as it starts) would wait on it for good: fasthttp's shutdown
	// closes only the listeners its Serve has registered.
	_ = ln.Close()
	if serveErr := <-errc; err == nil && !errors.Is(serveErr, closed) && !errors.Is(serveErr, net.ErrClosed) {
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
