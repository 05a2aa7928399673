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
		{false, "GET", "10.0.0.5:8081", "https://evil.example", 204, "cross-site"}, // its answer is the browser's to withhold
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
