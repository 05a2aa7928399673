// Package simtest serves the tyntec simulator to tests.
package simtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/polltest"
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

// FetchTruth reads every page of GET /_sim/truth from the simulator's
// inspect handler at base (the all-in-one's --simulate-listen, the tyntecsim
// binary's --listen) and merges them: every OTP, silent-auth attempt and
// approval request. Logins, LoginsDone and At are the last page's.
func FetchTruth(t testing.TB, base string) tyntecsim.Truth {
	t.Helper()
	tr, err := ReadTruth(t.Context(), http.DefaultClient, base)
	if err != nil {
		t.Fatalf("read the simulator's truth: %v", err)
	}
	return tr
}

// ReadTruth is FetchTruth for code without a testing.TB.
func ReadTruth(ctx context.Context, client *http.Client, base string) (tyntecsim.Truth, error) {
	var all tyntecsim.Truth
	var c tyntecsim.TruthCursor
	for {
		q := url.Values{"limit": {strconv.Itoa(tyntecsim.MaxTruthPage)}, "after": {strconv.FormatUint(c.OTPs, 10)},
			"silent_after": {strconv.FormatUint(c.Silent, 10)}, "push_after": {strconv.FormatUint(c.Push, 10)}}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/_sim/truth?"+q.Encode(), nil)
		if err != nil {
			return all, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return all, err
		}
		var page tyntecsim.Truth
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("GET /_sim/truth: %s", resp.Status)
		}
		if err != nil {
			return all, err
		}
		all.At, all.Logins, all.LoginsDone = page.At, page.Logins, page.LoginsDone
		all.OTPs = append(all.OTPs, page.OTPs...)
		all.Silent = append(all.Silent, page.Silent...)
		all.Push = append(all.Push, page.Push...)
		next, more := page.NextCursor(c)
		if !more {
			return all, nil
		}
		c = next
	}
}

// WaitLogins waits until sim has ended at least n generated logins and
// every attempt of every kind has an outcome (Truth.LoginsSettled), and
// returns that truth; when that takes longer than 60 s, the test fails.
func WaitLogins(t testing.TB, sim *tyntecsim.Sim, n int) tyntecsim.Truth {
	t.Helper()
	var tr tyntecsim.Truth
	polltest.Until(t, 60*time.Second, fmt.Sprintf("the simulator to settle %d logins", n), func() bool {
		tr = sim.Truth()
		return tr.LoginsSettled(n)
	})
	return tr
}
