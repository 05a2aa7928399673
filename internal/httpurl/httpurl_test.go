package httpurl

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for s, ok := range map[string]bool{
		"https://api.tyntec.com":         true,
		"http://127.0.0.1:8080/webhooks": true,
		"HTTPS://example.com/x?y=1":      true,
		"":                               false,
		"api.tyntec.com":                 false,
		"localhost:8080":                 false,
		"ftp://example.com":              false,
		"file:///etc/passwd":             false,
		"https://":                       false,
		"/relative/path":                 false,
		"http://[::1":                    false,
		"javascript:alert(1)":            false,
	} {
		u, err := Parse(s)
		if ok != (err == nil) {
			t.Errorf("Parse(%q) = %v, %v; want ok=%v", s, u, err, ok)
		}
	}
}

// An operator's error message must not carry a password into the logs.
func TestErrorsHideThePassword(t *testing.T) {
	for _, s := range []string{"ftp://user:s3cret@example.com", "http://user:s3cret@[::1", "user:s3cret@host"} {
		_, err := Parse(s)
		if err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Parse(%q): %v", s, err)
		}
	}
}

func TestLoopback(t *testing.T) {
	for addr, want := range map[string]bool{"127.0.0.1:8123": true, "[::1]:8123": true, "localhost:8123": true, "127.0.0.2:1": true,
		"0.0.0.0:8123": false, ":8123": false, "[::]:8123": false, "10.0.0.1:8123": false, "example.com:8123": false, "8123": false,
		// Host headers, with or without a port.
		"127.0.0.1": true, "[::1]": true, "LOCALHOST": true, "rebound.evil.example:8081": false, "10.0.0.5": false, "": false} {
		if got := Loopback(addr); got != want {
			t.Errorf("Loopback(%q) = %v; want %v", addr, got, want)
		}
	}
}

// A page of another site is told by its Origin (another host, "null", an
// unparsable one) or by Sec-Fetch-Site; no header is no browser's page.
func TestForeignOriginAndCrossSite(t *testing.T) {
	for _, c := range []struct {
		origin, site   string
		foreign, cross bool
	}{
		{"", "", false, false},                                 // curl, Grafana's server
		{"http://127.0.0.1:8081", "same-origin", false, false}, // the console
		{"https://evil.example", "", true, false},
		{"http://127.0.0.1:3000", "same-site", true, true}, // another port
		{"null", "cross-site", true, true},                 // a sandboxed page
		{"", "cross-site", false, true},                    // an <img>
		{"", "none", false, false},                         // typed into the address bar
	} {
		r := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:8081/", nil)
		if c.origin != "" {
			r.Header.Set("Origin", c.origin)
		}
		if c.site != "" {
			r.Header.Set("Sec-Fetch-Site", c.site)
		}
		if got, cross := ForeignOrigin(r), CrossSite(r); got != c.foreign || cross != c.cross {
			t.Errorf("Origin %q Sec-Fetch-Site %q: foreign %v, cross-site %v; want %v, %v", c.origin, c.site, got, cross, c.foreign, c.cross)
		}
	}
}
