package ops

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestBrowserGuard(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	known := []string{"otpscope.example.com"} // --console-url's host
	for _, c := range []struct {
		loopback             bool
		method, host, origin string
		want                 int
		fetchSite            string // Sec-Fetch-Site
	}{
		{true, "GET", "127.0.0.1:8081", "", 204, ""},
		{true, "GET", "localhost:8081", "", 204, ""},
		{true, "GET", "[::1]:8081", "", 204, ""},
		{true, "GET", "LOCALHOST", "", 204, ""},
		{true, "GET", "rebound.evil.example:8081", "", 403, ""}, // DNS rebinding
		{true, "GET", "10.0.0.5:8081", "", 403, ""},
		{true, "POST", "127.0.0.1:8081", "", 204, ""},                        // curl, the CLIs
		{true, "POST", "127.0.0.1:8081", "http://127.0.0.1:8081", 204, ""},   // the console
		{true, "POST", "127.0.0.1:8081", "https://evil.example", 403, ""},    // a form on a page
		{true, "POST", "127.0.0.1:8081", "null", 403, ""},                    // a sandboxed page
		{true, "DELETE", "127.0.0.1:8081", "http://localhost:8081", 403, ""}, // another origin
		// Beyond loopback: curl and Prometheus by name, or a browser at an
		// IP address, localhost or a name the operators gave, pass.
		{false, "GET", "otpscope.internal:8081", "", 204, ""},
		{false, "POST", "otpscope.internal:8081", "", 204, ""},
		{false, "GET", "10.0.0.5:8081", "", 204, "same-origin"},
		{false, "POST", "10.0.0.5:8081", "http://10.0.0.5:8081", 204, "same-origin"},
		{false, "POST", "[fd00::5]:8081", "http://[fd00::5]:8081", 204, "same-origin"},
		{false, "GET", "localhost:8081", "", 204, "none"}, // an SSH tunnel
		{false, "POST", "OTPSCOPE.example.com", "https://otpscope.example.com", 204, "same-origin"},
		{false, "GET", "10.0.0.5:8081", "https://evil.example", 403, "cross-site"}, // a fetch starting the heaviest reads (below)
		// A page that rebound its own name to the API's address: Origin
		// and Host agree, and name it.
		{false, "POST", "rebound.evil.example:8081", "http://rebound.evil.example:8081", 403, "same-origin"},
		{false, "GET", "rebound.evil.example:8081", "", 403, "same-origin"},
		{false, "GET", "rebound.evil.example:8081", "http://rebound.evil.example:8081", 403, ""},
		{false, "GET", "otpscope.internal:8081", "", 403, "none"}, // a name nobody gave: the operator is told which
		// Another site's form, whatever the Host.
		{false, "POST", "10.0.0.5:8081", "https://evil.example", 403, "cross-site"},
		{false, "POST", "otpscope.example.com", "https://evil.example", 403, "cross-site"},
	} {
		req := httptest.NewRequest(c.method, "/api/v1/backups", nil)
		req.Host = c.host
		if c.origin != "" {
			req.Header.Set("Origin", c.origin)
		}
		if c.fetchSite != "" {
			req.Header.Set("Sec-Fetch-Site", c.fetchSite)
		}
		rec := httptest.NewRecorder()
		BrowserGuard(c.loopback, known)(ok).ServeHTTP(rec, req)
		if rec.Code != c.want {
			t.Errorf("loopback %v, %s Host %s Origin %q Sec-Fetch-Site %q: %d; want %d (%s)", c.loopback, c.method, c.host, c.origin, c.fetchSite, rec.Code, c.want, rec.Body)
		}
	}
}

// A page of another site reaches the open API only by a link followed (a
// navigation): an <img>, a script or a no-cors fetch, which read nothing
// but would start the heaviest reads and fill the API's places, and a
// form posted without Origin are refused.
func TestBrowserGuardFetchMetadata(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	for _, c := range []struct {
		method, site, mode string
		want               int
	}{
		{"GET", "cross-site", "navigate", 204}, // a link on a wiki to the console
		{"GET", "same-site", "navigate", 204},  // Grafana's link on the same host
		{"GET", "cross-site", "no-cors", 403},  // <img src=…/api/v1/events?…>
		{"GET", "same-site", "cors", 403},
		{"HEAD", "cross-site", "no-cors", 403},
		{"POST", "cross-site", "navigate", 403}, // a form, even with no Origin
		{"POST", "cross-site", "no-cors", 403},
		{"GET", "same-origin", "cors", 204}, // the console's own calls
		{"POST", "same-origin", "cors", 204},
		{"GET", "none", "navigate", 204}, // typed into the address bar
		{"GET", "", "", 204},             // curl, the CLIs, Prometheus
	} {
		req := httptest.NewRequest(c.method, "/api/v1/events", nil)
		req.Host = "127.0.0.1:8081"
		if c.site != "" {
			req.Header.Set("Sec-Fetch-Site", c.site)
			req.Header.Set("Sec-Fetch-Mode", c.mode)
		}
		rec := httptest.NewRecorder()
		BrowserGuard(true, nil)(ok).ServeHTTP(rec, req)
		if rec.Code != c.want {
			t.Errorf("%s Sec-Fetch-Site %q Sec-Fetch-Mode %q: %d; want %d (%s)", c.method, c.site, c.mode, rec.Code, c.want, rec.Body)
		}
	}
}
