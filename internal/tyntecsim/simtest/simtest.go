// Package simtest serves the tyntec simulator to tests.
package simtest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/tyntecsim"
)

// Start creates a simulator from cfg, serves it on 127.0.0.1 and starts it;
// both stop when the test ends. It returns the simulator and its base URL.
func Start(t testing.TB, cfg tyntecsim.Config) (*tyntecsim.Sim, string) {
	t.Helper()
	return StartWrapped(t, cfg, nil)
}

// StartWrapped is Start with the simulator's handler wrapped by wrap (when
// not nil), for a test that stands between the client and the simulator.
func StartWrapped(t testing.TB, cfg tyntecsim.Config, wrap func(http.Handler) http.Handler) (*tyntecsim.Sim, string) {
	t.Helper()
	sim, err := tyntecsim.New(cfg)
	if err != nil {
		t.Fatalf("tyntecsim.New: %v", err)
	}
	var h http.Handler = sim
	if wrap != nil {
		h = wrap(sim)
	}
	srv := httptest.NewServer(h)
	if err := sim.Start(t.Context()); err != nil {
		srv.Close()
		t.Fatalf("start the simulator: %v", err)
	}
	t.Cleanup(func() {
		srv.Close()
		_ = sim.Close()
	})
	return sim, srv.URL
}

// WaitIdle waits until sim has nothing scheduled or unsent; when that takes
// longer than 30 s, the test fails.
func WaitIdle(t testing.TB, sim *tyntecsim.Sim) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := sim.WaitIdle(ctx); err != nil {
		t.Fatalf("wait for the simulator to be idle: %v", err)
	}
}
