// Package httpurl checks the one kind of URL otpscope calls or points others
// at: absolute http or https with a host. Callbacks, tyntec's base URL, the
// push API and the simulator's redirects all take nothing else (no file:,
// no relative paths, no "host:port" that url.Parse reads as a scheme).
package httpurl

import (
	"errors"
	"fmt"
	"net/url"
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
