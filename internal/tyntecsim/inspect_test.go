package tyntecsim_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/otpscope/otpscope/internal/tyntecsim"
	"github.com/otpscope/otpscope/internal/tyntecsim/simtest"
)

// TestCallsJSON checks GET /_sim/calls: [] before any call, then each call
// with the snake_case keys README promises for every /_sim/ answer.
func TestCallsJSON(t *testing.T) {
	sim, _ := simtest.Start(t, tyntecsim.Config{Seed: 1})
	hs := httptest.NewServer(sim.InspectHandler())
	t.Cleanup(hs.Close)

	st, _, raw := call(t, http.MethodGet, hs.URL+"/_sim/calls", "", nil)
	if st != http.StatusOK || strings.TrimSpace(string(raw)) != "[]" {
		t.Fatalf("calls before any = %d %s; want 200 []", st, raw)
	}

	apiStatus, _, _ := call(t, http.MethodGet, hs.URL+"/2fa/v4/priorities", "sim-api-key", nil)
	st, _, raw = call(t, http.MethodGet, hs.URL+"/_sim/calls", "", nil)
	var calls []map[string]any
	if st != http.StatusOK || json.Unmarshal(raw, &calls) != nil || len(calls) != 1 {
		t.Fatalf("calls = %d %s; want one call", st, raw)
	}
	want := map[string]any{"method": "GET", "path": "/2fa/v4/priorities", "api_key": "sim-api-key", "status": float64(apiStatus)}
	for k, v := range want {
		if calls[0][k] != v {
			t.Errorf("call[%q] = %v; want %v (call %s)", k, calls[0][k], v, raw)
		}
	}
	if at, _ := calls[0]["at"].(string); at == "" {
		t.Errorf("call lacks at: %s", raw)
	}
	if len(calls[0]) != 5 {
		t.Errorf("call keys %v; want exactly at, method, path, api_key, status", calls[0])
	}
}
