package ops

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestBrowserGuard(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	for _, c := range []struct {
		loopback             bool
		method, host, origin string
		want                 int
	}{
		{true, "GET", "127.0.0.1:8081", "", 204},
		{true, "GET", "localhost:8081", "", 204},
		{true, "GET", "[::1]:8081", "", 204},
		{true, "GET", "LOCALHOST", "", 204},
		{true, "GET", "rebound.evil.example:8081", "", 403}, // DNS rebinding
		{true, "GET", "10.0.0.5:8081", "", 403},
		{true, "POST", "127.0.0.1:8081", "", 204},                        // curl, the CLIs
		{true, "POST", "127.0.0.1:8081", "http://127.0.0.1:8081", 204},   // the console
		{true, "POST", "127.0.0.1:8081", "https://evil.example", 403},    // a form on a page
		{true, "POST", "127.0.0.1:8081", "null", 403},                    // a sandboxed page
		{true, "DELETE", "127.0.0.1:8081", "http://localhost:8081", 403}, // another origin
		{false, "GET", "otpscope.internal:8081", "", 204},
		{false, "GET", "otpscope.internal:8081", "https://evil.example", 204},
		{false, "POST", "otpscope.internal:8081", "https://evil.example", 403},
		{false, "POST", "otpscope.internal:8081", "http://otpscope.internal:8081", 204},
	} {
		req := httptest.NewRequest(c.method, "/api/v1/backups", nil)
		req.Host = c.host
		if c.origin != "" {
			req.Header.Set("Origin", c.origin)
		}
		rec := httptest.NewRecorder()
		BrowserGuard(c.loopback)(ok).ServeHTTP(rec, req)
		if rec.Code != c.want {
			t.Errorf("loopback %v, %s Host %s Origin %q: %d; want %d (%s)", c.loopback, c.method, c.host, c.origin, rec.Code, c.want, rec.Body)
		}
	}
}
