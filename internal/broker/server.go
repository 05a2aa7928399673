package broker

import (
	"cmp"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/otpscope/otpscope/internal/httpurl"
	"github.com/otpscope/otpscope/internal/ops"
)

// EmbeddedMaxPayload is the embedded server's max_payload, the largest
// message it takes: 8 MiB, NATS's recommended most, for the dead letters of
// large webhook bodies (ingest's --max-body-bytes).
const EmbeddedMaxPayload = 8 << 20

// StartServer starts the embedded NATS server with JetStream on disk under
// cfg.StoreDir(), requiring the credentials of ServerCredentials(cfg), and
// waits until it accepts clients. It holds the store (ErrStoreInUse to any
// other) until it has shut down.
func StartServer(cfg Config, logger *slog.Logger) (*server.Server, error) {
	srv, _, _, err := startServer(cfg, logger)
	return srv, err
}

// startServer is StartServer, also returning the credentials and the options
// (to re-enable JetStream with).
func startServer(cfg Config, logger *slog.Logger) (*server.Server, Credentials, *server.Options, error) {
	hold, err := lockStore(cfg.StoreDir()) // before anything there is read
	if err != nil {
		return nil, Credentials{}, nil, err
	}
	creds, err := ServerCredentials(cfg)
	if err != nil {
		hold(nil)
		return nil, Credentials{}, nil, err
	}
	opts, err := serverOptions(cfg, creds)
	if err != nil {
		hold(nil)
		return nil, Credentials{}, nil, err
	}
	opts.JetStreamMaxStore = cmp.Or(opts.JetStreamMaxStore, storeLimit(opts.StoreDir))
	srv, err := server.NewServer(opts.Clone())
	if err != nil {
		hold(nil)
		return nil, Credentials{}, nil, fmt.Errorf("embedded nats: %w", err)
	}
	hold(srv) // released once it has shut down
	sl := logger.With("component", "nats-server")
	nl := &natsLogger{l: sl, fatal: make(chan string, 1), clients: ops.NewSparse(sl, "a client refused by the embedded NATS server", "refused")}
	srv.SetLoggerV2(nl, false, false, false)
	srv.Start()
	// A listener that cannot bind (the port taken) is a "fatal" log line
	// of the server, which then waits for ever: fail at once with it.
	for deadline := time.Now().Add(30 * time.Second); !srv.ReadyForConnections(100 * time.Millisecond); {
		select {
		case msg := <-nl.fatal:
			srv.Shutdown()
			return nil, Credentials{}, nil, fmt.Errorf("embedded nats on %s: %s", cfg.Listen, msg)
		default:
		}
		if time.Now().After(deadline) {
			srv.Shutdown()
			return nil, Credentials{}, nil, fmt.Errorf("embedded nats on %s: not ready after 30s", cfg.Listen)
		}
	}
	if warn := openListenWarning(cfg.Listen); warn != "" {
		logger.Warn(warn, "nats_listen", cfg.Listen)
	}
	if warn := openListenWarning(cfg.ClusterListen); cfg.ClusterListen != "" && warn != "" {
		logger.Warn("the embedded NATS server's cluster routes are beyond loopback without TLS: keep the nodes on a private network", "nats_cluster_listen", cfg.ClusterListen)
	}
	if js := srv.JetStreamConfig(); js != nil {
		// The store's limit is storeLimit's, the memory's the server's
		// own, worked out when JetStream starts. JetStream restarted after a
		// full disk (reenableJetStream) would compute them on a disk still
		// nearly full, and stay "store full" until messages aged out
		// (chaos review: every webhook refused after recovery). Keep the
		// limits of the start.
		opts.JetStreamMaxStore = cmp.Or(opts.JetStreamMaxStore, js.MaxStore)
		opts.JetStreamMaxMemory = cmp.Or(opts.JetStreamMaxMemory, js.MaxMemory)
	}
	return srv, creds, opts, nil
}

// storeLimit is the embedded JetStream store's limit: 75 % of the disk's
// free space, as the server works it out itself, plus what the store
// holds already. The server's own left the store's contents out, so a
// restart on a disk the stream had filled got a limit under what the
// stream held: its update refused (the start retrying for ever, 503 to
// every webhook), or its bound, StoreShare of the limit, cut to a few
// megabytes, trimming the oldest messages at the next publish. 0 (the
// server's own) when the disk cannot be read.
func storeLimit(storeDir string) int64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(storeDir, &st); err != nil {
		return 0
	}
	var held int64
	_ = filepath.WalkDir(storeDir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				held += fi.Size()
			}
		}
		return nil
	})
	return int64(st.Bavail)*st.Bsize/4*3 + held
}

// openListenWarning is what to say of an embedded server listening at
// listen beyond loopback: it serves no TLS, so the clients' passwords and
// the events cross the network as they are ("" on loopback).
func openListenWarning(listen string) string {
	if httpurl.Loopback(listen) {
		return ""
	}
	return "the embedded NATS server listens beyond loopback without TLS: its clients' passwords and the events cross the network in clear; keep it on a private network or behind a TLS tunnel, or run an external NATS server with TLS (tls:// in --nats-url)"
}

func serverOptions(cfg Config, creds Credentials) (*server.Options, error) {
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("nats-listen %q: %w", cfg.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("nats-listen %q: %w", cfg.Listen, err)
	}
	sync, err := parseSync(cfg.Sync)
	if err != nil {
		return nil, err
	}
	opts := &server.Options{
		ServerName:   cfg.ServerName,
		Host:         host,
		Port:         port,
		JetStream:    true,
		StoreDir:     cfg.StoreDir(),
		SyncInterval: sync.Interval,
		SyncAlways:   sync.Always,
		NoSigs:       true, // signals belong to cmd/
		MaxPayload:   EmbeddedMaxPayload,
		Users:        users(creds, cfg.Stream.Name, cfg.ReaderConsumers),
	}
	if cfg.ClusterName != "" {
		chost, cport, err := net.SplitHostPort(cfg.ClusterListen)
		if err != nil {
			return nil, fmt.Errorf("nats-cluster-listen %q: %w", cfg.ClusterListen, err)
		}
		opts.Cluster.Name = cfg.ClusterName
		opts.Cluster.Host = chost
		// Routes authenticate as the service user too: a stranger reaching
		// the cluster port must not join as a node.
		opts.Cluster.Username, opts.Cluster.Password = creds.User, creds.Password
		if opts.Cluster.Port, err = strconv.Atoi(cport); err != nil {
			return nil, fmt.Errorf("nats-cluster-listen %q: %w", cfg.ClusterListen, err)
		}
		for _, r := range strings.Split(cfg.Routes, ",") {
			if r = strings.TrimSpace(r); r == "" {
				continue
			}
			u, err := url.Parse(r)
			if err != nil {
				return nil, fmt.Errorf("nats-routes %q: %w", r, err)
			}
			if u.User == nil {
				u.User = url.UserPassword(creds.User, creds.Password)
			}
			opts.Routes = append(opts.Routes, u)
		}
	}
	return opts, nil
}

// natsLogger forwards the server's log lines to slog; the first fatal one
// also goes to fatal, for the start to report.
type natsLogger struct {
	l     *slog.Logger
	fatal chan string
	// clients logs clients' failed logins and forbidden subjects sparsely:
	// a downstream subscriber retrying with a wrong password would
	// otherwise write a line each try.
	clients *ops.Sparse
}

func (n *natsLogger) Noticef(format string, v ...any) { n.l.Debug(fmt.Sprintf(format, v...)) }
func (n *natsLogger) Warnf(format string, v ...any)   { n.l.Warn(fmt.Sprintf(format, v...)) }
func (n *natsLogger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	n.l.Error(msg)
	select {
	case n.fatal <- msg:
	default:
	}
}

// Errorf logs at error level, except a client's failed login or forbidden
// publish or subscribe: a warning, since it is the client's fault, logged
// sparsely (nats-server 2.15 writes `… - authentication error - User "x"`,
// where older releases ended with the error).
func (n *natsLogger) Errorf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	switch {
	case strings.Contains(msg, "authentication error"):
		n.clients.WarnOf("authentication", "error", msg)
	case strings.Contains(msg, "Violation"):
		n.clients.WarnOf("permissions", "error", msg)
	default:
		n.l.Error(msg)
	}
}
func (n *natsLogger) Debugf(format string, v ...any) { n.l.Debug(fmt.Sprintf(format, v...)) }
func (n *natsLogger) Tracef(format string, v ...any) {}
