package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestHealthcheck: 2xx is 0, anything else 1, over HTTP and over HTTPS to
// a loopback address whose certificate is not trusted.
func TestHealthcheck(t *testing.T) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
		}
	})
	plain := httptest.NewServer(handler)
	defer plain.Close()
	secure := httptest.NewTLSServer(handler)
	defer secure.Close()
	for _, tt := range []struct {
		url  string
		want int
	}{
		{plain.URL + "/readyz", 0},
		{plain.URL + "/other", 1},
		{secure.URL + "/readyz", 0},
		{strings.Replace(secure.URL, "127.0.0.1", "localhost", 1) + "/readyz", 0},
		{secure.URL + "/other", 1},
		{"http://127.0.0.1:1/readyz", 1},
		{"::", 2},
	} {
		if got := run([]string{tt.url}); got != tt.want {
			t.Errorf("healthcheck %s = %d; want %d", tt.url, got, tt.want)
		}
	}
}
