// Package brokertest runs the real NATS server in-process for tests: JetStream on
// a temporary directory, a random loopback port, stopped at the end of the test.
package brokertest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/otpscope/otpscope/internal/broker"
	"github.com/otpscope/otpscope/internal/polltest"
)

// Server is an embedded NATS server that a test can stop and start again on the
// same port and data directory.
type Server struct {
	t     testing.TB
	cfg   broker.Config
	srv   *server.Server
	creds broker.Credentials
}

// NewServer starts a NATS server with JetStream on 127.0.0.1 (random port) under
// t.TempDir(), its configuration changed by each of with; t.Cleanup shuts it
// down.
func NewServer(t testing.TB, with ...func(*broker.Config)) *Server {
	t.Helper()
	cfg := Config(t)
	for _, w := range with {
		w(&cfg)
	}
	cfg.Listen = "127.0.0.1:-1" // -1: the server picks a free port
	s := &Server{t: t, cfg: cfg}
	s.Start()
	// Later starts reuse the port, so clients reconnect to the same URL.
	_, port, err := net.SplitHostPort(s.srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s.cfg.Listen = net.JoinHostPort("127.0.0.1", port)
	t.Cleanup(s.Stop)
	return s
}

// Config is a broker configuration for tests: embedded server under t.TempDir().
func Config(t testing.TB) broker.Config {
	return broker.Config{
		Listen:  "127.0.0.1:-1",
		DataDir: t.TempDir(),
		Stream: broker.StreamConfig{
			Name:            broker.DefaultStreamName,
			DuplicateWindow: broker.DefaultDuplicateWindow,
			Replicas:        1,
			MaxAge:          broker.DefaultMaxAge,
		},
	}
}

// Start starts the server (again) on its port and data directory.
func (s *Server) Start() {
	s.t.Helper()
	srv, err := broker.StartServer(s.cfg, Logger(s.t))
	if err != nil {
		s.t.Fatalf("start nats: %v", err)
	}
	s.srv = srv
	// The server generated them at its first start, and reuses them.
	if s.creds, err = broker.ServerCredentials(s.cfg); err != nil {
		s.t.Fatal(err)
	}
}

// Stop shuts the server down and waits until it is gone.
func (s *Server) Stop() {
	if s.srv == nil {
		return
	}
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
	s.srv = nil
}

// Restart stops and starts the server on the same port and data directory.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.Start()
}

// URL is the client URL with the service user's credentials, stable across
// restarts.
func (s *Server) URL() string {
	return (&url.URL{Scheme: "nats", User: url.UserPassword(s.creds.User, s.creds.Password), Host: s.cfg.Listen}).String()
}

// ReaderURL is the client URL with the read-only user's credentials.
func (s *Server) ReaderURL() string {
	return (&url.URL{Scheme: "nats", User: url.UserPassword(s.creds.ReaderUser, s.creds.ReaderPassword), Host: s.cfg.Listen}).String()
}

// AnonymousURL is the client URL without credentials.
func (s *Server) AnonymousURL() string { return fmt.Sprintf("nats://%s", s.cfg.Listen) }

// Config is the server's configuration (its data directory, listener).
func (s *Server) Config() broker.Config { return s.cfg }

// Broker connects to the server as a client and ensures the stream; t.Cleanup
// closes it.
func (s *Server) Broker(t testing.TB) *broker.Broker {
	t.Helper()
	cfg := s.cfg
	cfg.URL = s.URL()
	b, err := broker.Open(t.Context(), cfg, "brokertest", Logger(t))
	if err != nil {
		t.Fatalf("open broker: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

// Logger discards logs, or writes them to stderr when OTPSCOPE_TEST_LOG is set
// (the test log cannot take lines from server goroutines that outlive a test).
func Logger(testing.TB) *slog.Logger {
	if os.Getenv("OTPSCOPE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// WaitFor polls cond every 20 ms until it holds or timeout passes.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	polltest.Until(t, timeout, what, cond)
}

// StreamMsgs is how many messages b's stream holds.
func StreamMsgs(t testing.TB, b *broker.Broker) uint64 {
	t.Helper()
	n, err := b.StreamMsgs(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// JetStreamAt connects a plain client to the NATS server at url, as a
// downstream service would, and closes it when the test ends.
func JetStreamAt(t testing.TB, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream on %s: %v", url, err)
	}
	return js
}

// Overlap counts how many holders of a lease run at once, and the most
// that ever did.
type Overlap struct{ now, most atomic.Int32 }

// Run counts one holder in until ctx ends.
func (o *Overlap) Run(ctx context.Context) {
	n := o.now.Add(1)
	for m := o.most.Load(); n > m && !o.most.CompareAndSwap(m, n); m = o.most.Load() {
	}
	<-ctx.Done()
	o.now.Add(-1)
}

// Most is the most that ever ran at once.
func (o *Overlap) Most() int32 { return o.most.Load() }
