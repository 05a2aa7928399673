package ops

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/polltest"
)

// One client address may hold at most PerIP connections: the one over it
// is closed at once, another address is still served, and a closed
// connection frees its place. Loopback clients count here as a remote
// client would (the listener's own rule leaves them out, tested below).
func TestListenCapsConnectionsPerIP(t *testing.T) {
	var logs polltest.Buffer
	ln, err := Listen("127.0.0.1:0", ConnLimits{PerIP: 2}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ln.(*perIPListener).counts = func(netip.Addr) bool { return true }
	accepted := acceptAll(ln)

	dial := func(ip string) (net.Conn, error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 2 * time.Second}
		c, err := d.Dial("tcp", ln.Addr().String())
		if err == nil {
			t.Cleanup(func() { c.Close() })
		}
		return c, err
	}
	from := func(ip string) net.Conn {
		t.Helper()
		c, err := dial(ip)
		if err != nil {
			t.Fatalf("dial from %s: %v", ip, err)
		}
		return c
	}
	first := from("127.0.0.1")
	from("127.0.0.1")
	served := []net.Conn{<-accepted, <-accepted}

	// The reset may reach the third connection while it is being dialled.
	if over, err := dial("127.0.0.1"); err == nil {
		over.SetReadDeadline(time.Now().Add(5 * time.Second))
		var netErr net.Error
		if _, err := over.Read(make([]byte, 1)); err == nil || errors.As(err, &netErr) && netErr.Timeout() {
			t.Fatalf("the third connection from 127.0.0.1: read %v; want it closed by the listener", err)
		}
	}
	other := from("127.0.0.2")
	if c := <-accepted; c.RemoteAddr().(*net.TCPAddr).IP.String() != "127.0.0.2" {
		t.Fatalf("accepted %v; want the connection from 127.0.0.2", c.RemoteAddr())
	}
	_ = other

	first.Close()
	for _, c := range served {
		if c.RemoteAddr().String() == first.LocalAddr().String() {
			c.Close() // the server's side, as a server closes a finished connection
		}
	}
	from("127.0.0.1")
	select {
	case <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("a connection from 127.0.0.1 was not accepted after one of its two closed")
	}
	if got := logs.String(); !strings.Contains(got, "too many open from one client address") || !strings.Contains(got, "client=127.0.0.1/32") {
		t.Errorf("log = %q; want the refused connection's client named", got)
	}
}

// The listener's own rule: loopback clients are not counted.
func TestListenDoesNotCountLoopback(t *testing.T) {
	ln, err := Listen("127.0.0.1:0", ConnLimits{PerIP: 1}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := acceptAll(ln)
	for i := range 3 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		select {
		case <-accepted:
		case <-time.After(5 * time.Second):
			t.Fatalf("loopback connection %d of 3 not accepted under a per-IP cap of 1", i+1)
		}
	}
}

func TestClientPrefix(t *testing.T) {
	for addr, want := range map[string]string{
		"192.0.2.7:443":              "192.0.2.7/32",
		"[::ffff:192.0.2.7]:443":     "192.0.2.7/32",
		"[2001:db8:1:2:3:4:5:6]:443": "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::9]:1":   "2001:db8:1:2::/64",
		"[fe80::1%eth0]:443":         "fe80::/64",
	} {
		ap := netip.MustParseAddrPort(addr)
		got, ok := clientPrefix(net.TCPAddrFromAddrPort(ap))
		if !ok || got.String() != want {
			t.Errorf("clientPrefix(%s) = %v, %v; want %s", addr, got, ok, want)
		}
	}
	if _, ok := clientPrefix(&net.UnixAddr{Name: "/tmp/s", Net: "unix"}); ok {
		t.Error("a unix socket's address was counted")
	}
}

func acceptAll(ln net.Listener) <-chan net.Conn {
	accepted := make(chan net.Conn, 8)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	return accepted
}

// A listener holds at most its cap of connections; the next waits in the
// backlog until one closes.
func TestListenCapsConnections(t *testing.T) {
	ln, err := Listen("127.0.0.1:0", ConnLimits{Max: 2}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := acceptAll(ln)
	for range 3 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	first, second := <-accepted, <-accepted
	select {
	case <-accepted:
		t.Fatal("a third connection was accepted over the cap of 2")
	case <-time.After(200 * time.Millisecond): // without the cap it is accepted at once
	}
	first.Close()
	third := <-accepted // released by the close
	third.Close()
	second.Close()
	if _, err := Listen(ln.Addr().String(), ConnLimits{}, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("a second Listen on a taken port succeeded")
	}
}
