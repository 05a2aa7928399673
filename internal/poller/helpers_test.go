package poller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"golang.org/x/time/rate"

	"github.com/otpscope/otpscope/internal/broker"
	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/tyntec"
	"github.com/otpscope/otpscope/internal/tyntecsim"
)

// webhookReceiver stands in for ingest: it decodes tyntec's webhooks and
// publishes them, answering 200 after the PubAck.
func webhookReceiver(t *testing.T, b *broker.Broker) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		evs, err := events.DecodeDeliveryStatuses(body, time.Now())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		msgs := make([]events.Message, 0, len(evs))
		for i := range evs {
			m, err := events.NewDeliveryMessage(&evs[i])
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			msgs = append(msgs, m)
		}
		if err := b.Publish(r.Context(), msgs...); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/webhooks/tyntec"
}

// testConfig is a poller configuration against the simulator, on its clock,
// with a budget that does not bind unless a test says so.
func testConfig(sim *tyntecsim.Sim, simURL string) Config {
	return Config{
		Tyntec: tyntec.Config{
			BaseURL: simURL, APIKey: tyntecsim.DefaultAPIKey,
			Limiter:    rate.NewLimiter(1000, 100),
			MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond,
		},
		Schedule:          "@every 1s",
		DiscoveryInterval: time.Minute,
		VerifySample:      1,
		Now:               sim.Now,
	}
}

// newPoller builds a poller on b; the test owns running it.
func newPoller(t *testing.T, b *broker.Broker, cfg Config) *Poller {
	t.Helper()
	p, err := New(t.Context(), cfg, b, brokertest.Logger(t), nil)
	if err != nil {
		t.Fatalf("poller.New: %v", err)
	}
	return p
}

// goRun runs fn until the test ends (or the returned stop is called) and
// waits for it.
func goRun(t *testing.T, fn func(ctx context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := fn(ctx); err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("run: %v", err)
		}
	})
	stop = func() { cancel(); wg.Wait() }
	t.Cleanup(stop)
	return stop
}

// waitTracked waits until the tracking consumer has handled every message.
func waitTracked(t *testing.T, b *broker.Broker) {
	t.Helper()
	// Its lag alone would not do: the server counts a message as pending a
	// moment after the publish returns, so right after one the lag can
	// read 0 (seen under load: TestUpstreamOutcome found no status). The
	// consumer must also have acknowledged the last message on its
	// subjects that the stream holds now.
	js := brokertest.JetStream(t, b)
	s, err := js.Stream(t.Context(), b.StreamName())
	if err != nil {
		t.Fatal(err)
	}
	var last uint64
	for _, subject := range trackSubjects {
		m, err := s.GetLastMsgForSubject(t.Context(), subject)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("last message on %s: %v", subject, err)
		}
		last = max(last, m.Sequence)
	}
	c, err := js.Consumer(t.Context(), b.StreamName(), DurableTrack)
	if err != nil {
		t.Fatal(err)
	}
	brokertest.WaitFor(t, 20*time.Second, fmt.Sprintf("tracking consumer to acknowledge through stream sequence %d", last), func() bool {
		info, err := c.Info(t.Context())
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.AckFloor.Stream >= last
	})
}

// waitSim waits until the simulator's clock has passed at.
func waitSim(t *testing.T, sim *tyntecsim.Sim, at time.Time) {
	t.Helper()
	brokertest.WaitFor(t, 30*time.Second, "simulated time "+at.String(), func() bool { return sim.Now().After(at) })
}

// stored is one message of the stream.
type stored struct {
	subject string
	id      string
	data    []byte
}

// streamMessages reads every message of the stream on subject (a filter).
func streamMessages(t *testing.T, b *broker.Broker, subject string) []stored {
	t.Helper()
	c, err := brokertest.JetStream(t, b).OrderedConsumer(t.Context(), b.StreamName(), jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		t.Fatalf("ordered consumer: %v", err)
	}
	info, err := c.Info(t.Context())
	if err != nil {
		t.Fatalf("consumer info: %v", err)
	}
	want := int(info.NumPending)
	var out []stored
	for len(out) < want {
		batch, err := c.Fetch(want-len(out), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatalf("fetch: %v", err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			out = append(out, stored{subject: m.Subject(), id: m.Headers().Get(events.HeaderMsgID), data: m.Data()})
		}
		if n == 0 {
			t.Fatalf("read %d of %d messages on %s", len(out), want, subject)
		}
	}
	return out
}

// deliveries indexes the stream's delivery facts by message id.
func deliveries(t *testing.T, b *broker.Broker) map[string]events.DeliveryStatus {
	t.Helper()
	out := map[string]events.DeliveryStatus{}
	for _, m := range streamMessages(t, b, events.SubjectDeliveryAll) {
		var ds events.DeliveryStatus
		if err := json.Unmarshal(m.data, &ds); err != nil {
			t.Fatalf("delivery %s: %v", m.data, err)
		}
		out[m.id] = ds
	}
	return out
}

// factID is the message id of a fact as the simulator knows it.
func factID(otpID, channel, status string, ts time.Time) string {
	return events.DeliveryID(&events.DeliveryStatus{OTPID: otpID, Channel: events.Channel(channel), Status: events.Status(status), Timestamp: ts})
}

// simClient is a tyntec client for the test's own calls (sending, validating),
// with a budget of its own.
func simClient(t *testing.T, url string) *tyntec.Client {
	t.Helper()
	c, err := tyntec.New(tyntec.Config{BaseURL: url, APIKey: tyntecsim.DefaultAPIKey, Limiter: rate.NewLimiter(rate.Inf, 1)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// countCalls counts the simulator's calls whose path matches.
func countCalls(sim *tyntecsim.Sim, match func(tyntecsim.Call) bool) int {
	n := 0
	for _, c := range sim.Calls() {
		if match(c) {
			n++
		}
	}
	return n
}

// metricValue sums the values of everything c collects (counters and gauges).
func metricValue(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 64)
	go func() { c.Collect(ch); close(ch) }()
	var sum float64
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err != nil {
			t.Fatal(err)
		}
		switch {
		case d.Counter != nil:
			sum += d.Counter.GetValue()
		case d.Gauge != nil:
			sum += d.Gauge.GetValue()
		}
	}
	return sum
}

// seed is def, or OTPSCOPE_TEST_SEED when set (to try other stories).
func seed(def int64) int64 {
	if n, err := strconv.ParseInt(os.Getenv("OTPSCOPE_TEST_SEED"), 10, 64); err == nil {
		return n
	}
	return def
}

// forEachWorld runs test against a simulator whose v1 API serves v4 OTPs
// (shared) and one whose versions are separate (tyntec's documented
// behaviour is silent; the poller must work in both).
func forEachWorld(t *testing.T, test func(t *testing.T, shared bool)) {
	for _, shared := range []bool{true, false} {
		name := "separate"
		if shared {
			name = "shared"
		}
		t.Run(name, func(t *testing.T) { test(t, shared) })
	}
}

// faultFront is a proxy to the simulator at simURL that lets answer take a
// call first (true: it answered it): tyntec's faults the simulator does not
// play, on the paths a test chooses.
func faultFront(t *testing.T, simURL string, answer func(w http.ResponseWriter, r *http.Request) bool) string {
	t.Helper()
	target, err := url.Parse(simURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if answer(w, r) {
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	return front.URL
}

// problem answers a call with status as tyntec's problem+json.
func problem(w http.ResponseWriter, status int) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"status":%d,"title":%q}`, status, http.StatusText(status))
}
