// Package httpurl checks the one kind of URL otpscope calls or points others
// at: absolute http or https with a host. Callbacks, tyntec's base URL, the
// push API and the simulator's redirects all take nothing else (no file:,
// no relative paths, no "host:port" that url.Parse reads as a scheme).
// And it says whether an address or a Host header names this machine only
// (Loopback), for what is open to it alone, and whether a browser sent a
// request for a page of another site (ForeignOrigin, CrossSite), which
// what is open to this machine must still keep out.
package httpurl

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// Parse returns s parsed, or an error saying what was wanted. The error
// quotes s without its password (an Alertmanager or webhook URL may carry
// one), and does not quote what does not parse at all, since url.Parse's
// own error would.
func Parse(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, errors.New("does not parse (not quoted: it may hold a password); want an http(s)://host URL")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		shown := u.Redacted()
		if u.Opaque != "" { // "user:password@host" reads as scheme "user"
			shown = u.Scheme + ":…"
		}
		return nil, fmt.Errorf("%q: want an http(s)://host URL", shown)
	}
	return u, nil
}

// ParseBase is Parse for a base URL, to which paths are added: a query
// or a fragment would take them in (http://h?x/api/v1/status).
func ParseBase(s string) (*url.URL, error) {
	u, err := Parse(s)
	if err != nil {
		return nil, err
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return nil, fmt.Errorf("%q: want a base URL, without a query or fragment (paths are added to it)", u.Redacted())
	}
	return u, nil
}

// Loopback reports whether host — a listen address or a Host header, with
// or without a port — names this machine only: an IP address in
// 127.0.0.0/8 or ::1, or "localhost". An empty host, 0.0.0.0, :: and other
// names bind (or may resolve) beyond it.
func Loopback(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// ForeignOrigin reports whether r's Origin names a site other than the
// host r was sent to. Browsers send Origin with every request but a
// same-origin GET; curl, the CLIs, Prometheus and Grafana's server none.
func ForeignOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	u, err := url.Parse(origin)
	return err != nil || u.Host == "" || !strings.EqualFold(u.Host, r.Host)
}

// CrossSite reports whether a browser says it sent r for a page of another
// site (Sec-Fetch-Site: cross-site or same-site, sent by browsers since
// 2020–23), whatever the request's Origin.
func CrossSite(r *http.Request) bool {
	site := r.Header.Get("Sec-Fetch-Site")
	return site == "cross-site" || site == "same-site"
}
