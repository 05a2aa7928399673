package ops

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"

	"golang.org/x/net/netutil"
)

// ConnLimits caps the connections a listener holds open (0: no cap).
type ConnLimits struct {
	// Max in all: further clients wait in the kernel's backlog rather
	// than taking the process's file descriptors (the engine and NATS
	// need them too).
	Max int
	// PerIP from one client address, an IPv6 client by its /64 (what one
	// host is usually given): one client holding idle connections cannot
	// take all of Max and leave tyntec waiting in the backlog. A
	// connection over it is closed at once, unanswered (it may be TLS).
	// Loopback clients are not counted: they are this machine — the
	// process's own connections to its ClickHouse endpoint, a local
	// reverse proxy whose clients all share its address, benchmarks.
	PerIP int
}

// Default limits of every otpscope listener (--max-connections,
// --max-connections-per-ip).
const (
	DefaultMaxConnections      = 1024
	DefaultMaxConnectionsPerIP = 256
)

// Listen binds addr under lim; a connection refused by lim.PerIP is logged
// sparsely. A taken port fails here, at once.
func Listen(addr string, lim ConnLimits, logger *slog.Logger) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	if lim.PerIP > 0 {
		ln = &perIPListener{
			Listener: ln,
			max:      lim.PerIP,
			open:     make(map[netip.Prefix]int),
			counts:   func(ip netip.Addr) bool { return !ip.IsLoopback() },
			refused:  NewSparse(logger, "connection closed: too many open from one client address (--max-connections-per-ip)", "refused"),
		}
	}
	// Outside perIPListener: a refused connection frees its slot at once.
	if lim.Max > 0 {
		ln = netutil.LimitListener(ln, lim.Max)
	}
	return ln, nil
}

// perIPListener counts each client address's open connections and closes
// those over max as they are accepted.
type perIPListener struct {
	net.Listener
	max     int
	counts  func(netip.Addr) bool // whether a client's connections count
	refused *Sparse
	mu      sync.Mutex
	open    map[netip.Prefix]int
}

func (l *perIPListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		client, ok := clientPrefix(c.RemoteAddr())
		if !ok || !l.counts(client.Addr()) {
			return c, nil
		}
		l.mu.Lock()
		n := l.open[client]
		if n < l.max {
			l.open[client] = n + 1
		}
		l.mu.Unlock()
		if n >= l.max {
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // a reset: nothing of it lingers here
			}
			c.Close()
			l.refused.Warn("listener", l.Addr().String(), "client", client.String(), "open", n)
			continue
		}
		return &perIPConn{Conn: c, release: func() { l.release(client) }}, nil
	}
}

func (l *perIPListener) release(client netip.Prefix) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[client]--; l.open[client] <= 0 {
		delete(l.open, client)
	}
}

// clientPrefix is the address a client is counted by: an IPv4 address
// (IPv4-mapped ones too) whole, an IPv6 one by its /64; false for an
// address that is not IP (not counted).
func clientPrefix(a net.Addr) (netip.Prefix, bool) {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Prefix{}, false
	}
	ip := ap.Addr().Unmap().WithZone("")
	if ip.Is4() {
		return netip.PrefixFrom(ip, 32), true
	}
	p, err := ip.Prefix(64)
	return p, err == nil
}

type perIPConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *perIPConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
