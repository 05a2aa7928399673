package broker_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/otpscope/otpscope/internal/broker"
	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/flagenv"
	"github.com/otpscope/otpscope/internal/polltest"
)

func TestCredentialsGeneratedOnceAndKept(t *testing.T) {
	cfg := brokertest.Config(t)
	first, err := broker.ServerCredentials(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if first.User != broker.DefaultUser || first.ReaderUser != broker.DefaultReaderUser ||
		len(first.Password) < 40 || len(first.ReaderPassword) < 40 || first.Password == first.ReaderPassword {
		t.Fatalf("generated credentials = %+v; want the default users with distinct long passwords", first)
	}
	fi, err := os.Stat(cfg.CredentialsFile())
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("%s has mode %v; want 0600", cfg.CredentialsFile(), mode)
	}
	again, err := broker.ServerCredentials(cfg)
	if err != nil || again != first {
		t.Fatalf("second start = %+v, %v; want the first start's %+v", again, err, first)
	}
	// Flags override the file, and the file follows, for the services that
	// read it.
	cfg.Password = "given-password"
	given, err := broker.ServerCredentials(cfg)
	if err != nil || given.Password != "given-password" || given.ReaderPassword != first.ReaderPassword {
		t.Fatalf("with --nats-password = %+v, %v", given, err)
	}
	var file broker.Credentials
	data, _ := os.ReadFile(cfg.CredentialsFile())
	if err := json.Unmarshal(data, &file); err != nil || file != given {
		t.Fatalf("file holds %+v (%v); want %+v", file, err, given)
	}
}

// TestServerRequiresCredentials: no client without a password; the reader
// subscribes to the stream's subjects but can neither publish events nor
// purge, delete or change the stream, nor touch KV.
func TestServerRequiresCredentials(t *testing.T) {
	srv := brokertest.NewServer(t)
	b := srv.Broker(t)
	for _, url := range []string{srv.AnonymousURL(), strings.Replace(srv.ReaderURL(), "@", "x@", 1)} {
		if nc, err := nats.Connect(url, nats.NoReconnect()); err == nil {
			nc.Close()
			t.Fatalf("connected to the embedded server as %s", url)
		}
	}

	reader := connectReader(t, srv)
	got := make(chan string, 10)
	if _, err := reader.Subscribe("tyntec.2fa.>", func(m *nats.Msg) { got <- m.Subject }); err != nil {
		t.Fatal(err)
	}
	if err := reader.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(t.Context(), message(1)); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		if s != message(1).Subject {
			t.Errorf("reader got %s; want %s", s, message(1).Subject)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the reader received nothing")
	}
	// Reading the stream is allowed.
	if _, err := reader.Request("$JS.API.STREAM.INFO."+b.StreamName(), nil, 2*time.Second); err != nil {
		t.Errorf("reader stream info: %v", err)
	}

	reader.refused(t, "{}",
		"tyntec.2fa.delivery.SMS.DELIVERED", // a forged event
		"$JS.API.STREAM.PURGE."+b.StreamName(),
		"$JS.API.STREAM.DELETE."+b.StreamName(),
		"$JS.API.STREAM.UPDATE."+b.StreamName(),
		"$JS.API.CONSUMER.CREATE."+b.StreamName(),
		"$KV.otpscope_poller_otps.x",
	)
	if n := brokertest.StreamMsgs(t, b); n != 1 {
		t.Errorf("the stream holds %d messages; want the 1 the service published", n)
	}
}

// readerConn is a connection as the reader, noting the permission
// violations the server reports on it.
type readerConn struct {
	*nats.Conn
	mu         sync.Mutex
	violations []string
}

func connectReader(t *testing.T, srv *brokertest.Server) *readerConn {
	t.Helper()
	r := &readerConn{}
	nc, err := nats.Connect(srv.ReaderURL(), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		r.mu.Lock()
		r.violations = append(r.violations, err.Error())
		r.mu.Unlock()
	}))
	if err != nil {
		t.Fatalf("reader: %v", err)
	}
	t.Cleanup(nc.Close)
	r.Conn = nc
	return r
}

// refused asserts that the reader's request on each subject, with body, is
// not answered and that the server reports it a permissions violation.
func (r *readerConn) refused(t *testing.T, body string, subjects ...string) {
	t.Helper()
	for _, subj := range subjects {
		if _, err := r.Request(subj, []byte(body), 300*time.Millisecond); err == nil {
			t.Errorf("the reader's request on %s was answered", subj)
		}
	}
	brokertest.WaitFor(t, 5*time.Second, "a permissions violation for every forbidden subject", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		all := strings.Join(r.violations, "\n")
		for _, subj := range subjects {
			if !strings.Contains(all, `Publish to "`+subj+`"`) {
				return false
			}
		}
		return true
	})
}

// TestExternalCredentials: a service without --nats-url credentials reads
// them from the credentials file under its --data-dir, or takes them from
// the URL.
func TestExternalCredentials(t *testing.T) {
	srv := brokertest.NewServer(t)
	srv.Broker(t) // creates the stream
	cfg := brokertest.Config(t)
	cfg.URL = srv.AnonymousURL()
	cfg.DataDir = srv.Config().DataDir
	b, err := broker.Open(t.Context(), cfg, "same-data-dir", brokertest.Logger(t))
	if err != nil {
		t.Fatalf("Open with the data directory's credentials: %v", err)
	}
	b.Close()
	cfg = brokertest.Config(t)
	cfg.URL = srv.URL() // user:password@
	if b, err = broker.Open(t.Context(), cfg, "url", brokertest.Logger(t)); err != nil {
		t.Fatalf("Open with credentials in the URL: %v", err)
	}
	b.Close()
}

// TestServerHoldsNoPlaintextPassword: the embedded server keeps its users'
// passwords as bcrypt hashes — it says nothing at start of plaintext
// passwords — and the passwords from the credentials file still connect.
func TestServerHoldsNoPlaintextPassword(t *testing.T) {
	var log polltest.Buffer
	cfg := brokertest.Config(t)
	b, err := broker.Open(t.Context(), cfg, "hashed", slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	if got := log.String(); !strings.Contains(got, "embedded NATS server started") || strings.Contains(got, "Plaintext password") {
		t.Errorf("the start's log warns of plaintext passwords, or is not the server's:\n%s", got)
	}
	creds, err := broker.ServerCredentials(cfg)
	if err != nil {
		t.Fatal(err)
	}
	url := b.Server().ClientURL()
	for _, user := range []struct{ name, password string }{{creds.User, creds.Password}, {creds.ReaderUser, creds.ReaderPassword}} {
		nc, err := nats.Connect(url, nats.UserInfo(user.name, user.password), nats.NoReconnect())
		if err != nil {
			t.Errorf("connect as %s with the file's password: %v", user.name, err)
			continue
		}
		nc.Close()
		if nc, err := nats.Connect(url, nats.UserInfo(user.name, user.password+"x"), nats.NoReconnect()); err == nil {
			nc.Close()
			t.Errorf("connected as %s with a wrong password", user.name)
		}
	}
}

// TestRefusedCredentialsStopOpen: credentials the server refuses end Open
// at once, saying so and where they came from; they were retried forever,
// logged only as "connection closed".
func TestRefusedCredentialsStopOpen(t *testing.T) {
	srv := brokertest.NewServer(t)
	srv.Broker(t) // creates the stream
	wrongFile := brokertest.Config(t)
	writeCredentials(t, wrongFile, broker.Credentials{User: broker.DefaultUser, Password: "not-the-servers"})
	tests := []struct {
		name   string
		mutate func(*broker.Config)
		names  string // where to correct them
	}{
		{"wrong --nats-password", func(c *broker.Config) { c.Password = "wrongwrongwrong" }, "--nats-password"},
		{"wrong password in the URL", func(c *broker.Config) {
			c.URL = strings.Replace(srv.URL(), "@", "x@", 1)
		}, "--nats-url"},
		{"none", func(*broker.Config) {}, "--data-dir"},
		{"another data directory's file", func(c *broker.Config) { c.DataDir = wrongFile.DataDir }, wrongFile.CredentialsFile()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := brokertest.Config(t)
			cfg.URL = srv.AnonymousURL()
			tt.mutate(&cfg)
			var log polltest.Buffer
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			b, err := broker.Open(ctx, cfg, "refused", slog.New(slog.NewTextHandler(&log, nil)))
			if err == nil {
				b.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, broker.ErrCredentialsRefused) || !errors.Is(err, nats.ErrAuthorization) || ctx.Err() != nil {
				t.Fatalf("Open = %v; want refused credentials, before its context ended", err)
			}
			if !strings.Contains(err.Error(), tt.names) {
				t.Errorf("Open = %v; want it to name %s", err, tt.names)
			}
			// nats.go calls the handlers that log it on a goroutine of its
			// own, which may run after Open returned.
			deadline := time.Now().Add(5 * time.Second)
			for !strings.Contains(strings.ToLower(log.String()), "authorization violation") && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if !strings.Contains(strings.ToLower(log.String()), "authorization violation") {
				t.Errorf("the log does not say the server refused the credentials:\n%s", log.String())
			}
		})
	}
}

// TestServerNotUpYetIsWaitedFor: a server that is not up yet is retried,
// and Open succeeds once it is.
func TestServerNotUpYetIsWaitedFor(t *testing.T) {
	srv := brokertest.NewServer(t)
	srv.Broker(t) // the stream, and the credentials
	srv.Stop()
	cfg := srv.Config()
	cfg.URL = srv.URL()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	opened := make(chan error, 1)
	var logs polltest.Buffer
	go func() {
		b, err := broker.Open(ctx, cfg, "waits", slog.New(slog.NewTextHandler(&logs, nil)))
		if err == nil {
			b.Close()
		}
		opened <- err
	}()
	time.Sleep(1500 * time.Millisecond) // a few tries against nothing
	srv.Start()
	if err := <-opened; err != nil {
		t.Fatalf("Open while the server starts: %v", err)
	}
	// The wait names the server it waits for, without its password.
	u, _ := url.Parse(cfg.URL)
	password, _ := u.User.Password()
	if logged := logs.String(); !strings.Contains(logged, "JetStream not ready; retrying") || !strings.Contains(logged, "to nats://"+u.Host) ||
		password == "" || strings.Contains(logged, password) {
		t.Errorf("while waiting, the log said:\n%s\nwant the server's address nats://%s, and not its password", logged, u.Host)
	}
}

// writeCredentials writes c as cfg's credentials file.
func writeCredentials(t *testing.T, cfg broker.Config, c broker.Credentials) {
	t.Helper()
	data, _ := json.Marshal(c)
	if err := os.MkdirAll(cfg.StoreDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.CredentialsFile(), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestOpenListenWarning: the embedded server serves no TLS, so a listener
// beyond loopback is warned of at start; one on loopback is not.
func TestOpenListenWarning(t *testing.T) {
	for listen, warned := range map[string]bool{"127.0.0.1:4222": false, "[::1]:4222": false, "localhost:4222": false,
		"0.0.0.0:4222": true, ":4222": true, "10.0.0.5:4222": true} {
		warn := broker.OpenListenWarning(listen)
		if (warn != "") != warned || warned && !strings.Contains(warn, "without TLS") {
			t.Errorf("--nats-listen %s: warning %q; want one %v", listen, warn, warned)
		}
	}
}

// The embedded server's settings beside --nats-url are warned of at start,
// named: they do nothing there (an operator's review set --nats-sync and
// the cluster flags on ingest with an external server, without a word).
func TestEmbeddedSettingsBesideAnExternalServerWarned(t *testing.T) {
	srv := brokertest.NewServer(t)
	srv.Broker(t) // the stream, and the credentials
	var cfg broker.Config
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	cfg.RegisterFlags(fs, "")
	if err := flagenv.Parse(fs, []string{"--nats-url", srv.URL(), "--nats-sync", "1m"}, flagenv.Lookup([]string{"OTPSCOPE_NATS_CLUSTER_NAME=c1"})); err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	var logs polltest.Buffer
	b, err := broker.Open(t.Context(), cfg, "external", slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	l := logs.String()
	if !strings.Contains(l, "settings of the embedded NATS server do nothing beside --nats-url") || !strings.Contains(l, "--nats-sync") || !strings.Contains(l, "--nats-cluster-name") {
		t.Errorf("logs do not name the embedded server's settings beside --nats-url:\n%s", l)
	}
}
