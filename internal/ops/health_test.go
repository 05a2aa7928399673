package ops

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The internet-facing /readyz names the failing check and nothing of why:
// the store's error may quote an internal address or its own message.
func TestReadyzDetailOnlyForOperators(t *testing.T) {
	checks := []Check{
		{Name: "nats", Ready: func(context.Context) error { return nil }, Info: func() string { return "stream TYNTEC_2FA" }},
		{Name: "clickhouse", Ready: func(context.Context) error {
			return errors.New("dial tcp 10.1.2.3:9000: connection refused")
		}},
	}
	for _, detail := range []bool{false, true} {
		r := NewRouter()
		MountHealth(r, detail, checks...)
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		body, _ := io.ReadAll(rec.Body)
		text := string(body)
		if rec.Code != http.StatusServiceUnavailable || !strings.Contains(text, "clickhouse: ") || !strings.Contains(text, "nats: ok") {
			t.Errorf("detail %v: /readyz = %d %q; want 503 naming both checks", detail, rec.Code, text)
		}
		if shown := strings.Contains(text, "10.1.2.3") && strings.Contains(text, "stream TYNTEC_2FA"); shown != detail {
			t.Errorf("detail %v: /readyz = %q; the error and the info shown: %v", detail, text, shown)
		}
	}
}
