package poller

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/tyntecsim"
	"github.com/otpscope/otpscope/internal/tyntecsim/simtest"
)

// TestPushLostCallbacksRecovered: the push provider's pending callbacks
// reach otpscope, every settling one is lost; once each request is past
// its secondsToExpire plus the grace, the poller reads it by uuid and
// publishes its final status (source poll), once per request.
func TestPushLostCallbacksRecovered(t *testing.T) {
	srv := brokertest.NewServer(t)
	b := srv.Broker(t)

	// The receiver stands in for ingest and loses every settling callback.
	var mu sync.Mutex
	lost := map[string]string{}
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ps, err := events.DecodePushEvents(body, time.Now())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for i := range ps {
			if ps[i].Settled() {
				mu.Lock()
				lost[ps[i].UUID] = ps[i].Status
				mu.Unlock()
				continue
			}
			m, _ := events.NewPushMessage(&ps[i])
			if err := b.Publish(r.Context(), m); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
	}))
	t.Cleanup(rcv.Close)

	sim, simURL := simtest.Start(t, tyntecsim.Config{Seed: 14, TimeScale: 200,
		PushCallbacks: []tyntecsim.PushCallback{{URL: rcv.URL}}})
	const n = 6
	for i := range n {
		form := url.Values{"message": {"Log in?"}, "seconds_to_expire": {"30"}, "hidden_details[correlationId]": {"login-" + string(rune('a'+i))}}
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, simURL+"/onetouch/json/users/5661166/approval_requests", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-TFA-API-Key", tyntecsim.DefaultAPIKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("create approval request: %s", resp.Status)
		}
	}
	brokertest.WaitFor(t, 30*time.Second, "every request settled and its callback lost", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(lost) == n
	})

	cfg := testConfig(sim, simURL)
	cfg.Push = PushConfig{BaseURL: simURL, APIKey: tyntecsim.DefaultAPIKey, Grace: 10 * time.Second, Recheck: time.Hour}
	p := newPoller(t, b, cfg)
	goRun(t, func(ctx context.Context) error { return p.push.cons.Consume(ctx, p.push.handle) })
	brokertest.WaitFor(t, 20*time.Second, "push consumer to drain", func() bool {
		lag, err := p.push.cons.Lag(t.Context())
		return err == nil && lag.Pending == 0 && lag.AckPending == 0
	})
	// Every request expires within 30 s (simulated) of its creation.
	waitSim(t, sim, sim.Now().Add(45*time.Second))
	for range 2 { // the second cycle finds nothing left to read
		if _, err := p.PushCycle(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]string{}
	for _, m := range streamMessages(t, b, events.SubjectPushAll) {
		var pe events.PushEvent
		if err := json.Unmarshal(m.data, &pe); err != nil {
			t.Fatal(err)
		}
		if pe.Settled() {
			if pe.Source != events.SourcePoll || got[pe.UUID] != "" {
				t.Errorf("settled push %s: source %s, seen before: %q", pe.UUID, pe.Source, got[pe.UUID])
			}
			got[pe.UUID] = pe.Status
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != n {
		t.Fatalf("recovered %d settled statuses; want %d: %v", len(got), n, got)
	}
	for uuid, st := range lost {
		if got[uuid] != st {
			t.Errorf("request %s: recovered %q; the lost callback said %q", uuid, got[uuid], st)
		}
	}
}

// A request due as the cycle began, whose settling callback arrives while
// the cycle waits for the push API's budget, is not read: the cycle reads
// the bucket once, at its start, so it reads a due request's record again
// after the wait.
func TestPushCycleSkipsWhatSettledWhileItWaited(t *testing.T) {
	b := brokertest.NewServer(t).Broker(t)
	sim, simURL := simtest.Start(t, tyntecsim.Config{Seed: 15})
	const first, second = "request-first", "request-second"
	var p *Poller
	var mu sync.Mutex
	var asked []string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		uuid := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
		mu.Lock()
		asked = append(asked, uuid)
		mu.Unlock()
		if uuid == first {
			// The second's callback, settling it, as the first is read.
			data, _ := json.Marshal(pushRecord{UUID: second, Settled: true, SettledAt: sim.Now()})
			if _, err := p.push.kv.Put(r.Context(), pushKey(second), data); err != nil {
				t.Error(err)
			}
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(api.Close)

	cfg := testConfig(sim, simURL)
	// One call a second, no burst beyond it: the second request waits.
	cfg.Push = PushConfig{BaseURL: api.URL, APIKey: tyntecsim.DefaultAPIKey, Grace: time.Minute, Recheck: time.Hour, RateLimit: 1, RatePeriod: time.Second}
	p = newPoller(t, b, cfg)
	for _, uuid := range []string{first, second} {
		data, _ := json.Marshal(pushRecord{UUID: uuid, ExpiresAt: sim.Now().Add(-time.Hour)})
		if _, err := p.push.kv.Put(t.Context(), pushKey(uuid), data); err != nil {
			t.Fatal(err)
		}
	}
	read, err := p.PushCycle(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if read != 1 || len(asked) != 1 || asked[0] != first {
		t.Errorf("the cycle read %d requests, asked the push API for %q; want the first alone, the second settled meanwhile", read, asked)
	}
}
