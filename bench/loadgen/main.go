// Command loadgen measures ingest throughput against two baselines measured in
// the same run on the same machine: a bare net/http handler answering 200, and
// raw synchronous JetStream publishes. It POSTs realistic DeliveryStatus
// webhooks (a new otpId per request) at a fixed concurrency for a fixed time and
// prints requests/s, p50/p99 latency, errors, and the ratios.
//
//	go run ./bench/loadgen -concurrency 64 -duration 10s
//	go run ./bench/loadgen -nats-sync 2m          # flush every 2 minutes, not every write
//	go run ./bench/loadgen -url http://127.0.0.1:8080 -token T -only ingest
//
// Everything runs in this process on loopback unless -url names an external
// ingest; load is bounded by -duration.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/otpscope/otpscope/bench/cpuprofile"
	"github.com/otpscope/otpscope/internal/app"
	"github.com/otpscope/otpscope/internal/broker"
	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/ingest"
)

func main() { os.Exit(run()) }

type options struct {
	concurrency int
	duration    time.Duration
	warmup      time.Duration
	sync        string
	url, token  string
	only        string
}

func run() int {
	var o options
	flag.IntVar(&o.concurrency, "concurrency", 64, "concurrent clients (and publishing goroutines)")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "measured time per target")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured load before each target")
	flag.StringVar(&o.sync, "nats-sync", broker.DefaultSync, `embedded JetStream sync policy for ingest and the publish baseline ("always" or an interval)`)
	flag.StringVar(&o.url, "url", "", "external ingest base URL (default: start ingest in this process)")
	flag.StringVar(&o.token, "token", "loadgen-token-0123456789", "webhook token")
	flag.StringVar(&o.only, "only", "http,publish,ingest", "targets to measure, comma-separated")
	profile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	stopProfile, err := cpuprofile.Start(*profile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		return 1
	}
	defer stopProfile()
	if o.duration <= 0 || o.duration > 10*time.Minute || o.concurrency < 1 || o.concurrency > 4096 {
		fmt.Fprintln(os.Stderr, "loadgen: duration must be in (0, 10m] and concurrency in [1, 4096]")
		return 2
	}
	ctx := context.Background()
	results := map[string]result{}
	for _, target := range strings.Split(o.only, ",") {
		var (
			r   result
			err error
		)
		switch target {
		case "http":
			r, err = benchBareHTTP(ctx, o)
		case "publish":
			r, err = benchRawPublish(ctx, o)
		case "ingest":
			r, err = benchIngest(ctx, o)
		default:
			err = fmt.Errorf("unknown target %q", target)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", target+":", err)
			return 1
		}
		results[target] = r
		fmt.Printf("%-8s %s\n", target, r)
	}
	if ing, ok := results["ingest"]; ok {
		for _, base := range []string{"http", "publish"} {
			if b, ok := results[base]; ok && b.rate() > 0 {
				fmt.Printf("ingest / %-8s = %.2f\n", base, ing.rate()/b.rate())
			}
		}
	}
	return 0
}

// result is one target's measurement.
type result struct {
	ok, errors int
	warmOK     int // successes during the warm-up, not in the rate
	elapsed    time.Duration
	latencies  []time.Duration
	note       string
}

func (r result) rate() float64 { return float64(r.ok) / r.elapsed.Seconds() }

func (r result) String() string {
	slices.Sort(r.latencies)
	q := func(p float64) time.Duration {
		if len(r.latencies) == 0 {
			return 0
		}
		return r.latencies[int(p*float64(len(r.latencies)-1))]
	}
	s := fmt.Sprintf("%8.0f ok/s  p50 %-9v p99 %-9v ok %d  errors %d", r.rate(), q(0.50).Round(time.Microsecond), q(0.99).Round(time.Microsecond), r.ok, r.errors)
	if r.note != "" {
		s += "  " + r.note
	}
	return s
}

// load runs op from o.concurrency goroutines, first for the warm-up (counted in
// warmOK only), then for the measured duration.
func load(o options, op func() error) result {
	run := func(d time.Duration) result {
		var mu sync.Mutex
		var total result
		deadline := time.Now().Add(d)
		var wg sync.WaitGroup
		start := time.Now()
		for range o.concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var local result
				for time.Now().Before(deadline) {
					t0 := time.Now()
					if err := op(); err != nil {
						local.errors++
						continue
					}
					local.ok++
					local.latencies = append(local.latencies, time.Since(t0))
				}
				mu.Lock()
				total.ok += local.ok
				total.errors += local.errors
				total.latencies = append(total.latencies, local.latencies...)
				mu.Unlock()
			}()
		}
		wg.Wait()
		total.elapsed = time.Since(start)
		return total
	}
	warm := run(o.warmup)
	r := run(o.duration)
	r.warmOK, r.errors = warm.ok, r.errors+warm.errors
	return r
}

func httpClient(o options) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		MaxIdleConns: o.concurrency, MaxIdleConnsPerHost: o.concurrency, MaxConnsPerHost: o.concurrency,
	}}
}

func benchBareHTTP(_ context.Context, o options) (result, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return result{}, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	client := httpClient(o)
	url := "http://" + ln.Addr().String() + ingest.WebhookPath
	return load(o, func() error { return post(client, url, o.token) }), nil
}

func benchRawPublish(ctx context.Context, o options) (result, error) {
	dir, err := os.MkdirTemp("", "loadgen-nats-")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	cfg := natsConfig(dir, o.sync)
	b, err := broker.Open(ctx, cfg, "loadgen", quiet())
	if err != nil {
		return result{}, err
	}
	defer b.Close()
	// The raw client: a connection and JetStream context of its own, next to
	// the broker's, so nothing of the broker's publish path is measured.
	nc, err := b.Connect("loadgen-raw")
	if err != nil {
		return result{}, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return result{}, err
	}
	r := load(o, func() error {
		m := deliveryMessage()
		_, err := js.PublishMsg(ctx, broker.NATSMsg(m))
		return err
	})
	r.note = "(raw JetStream PublishMsg, sync " + syncName(o.sync) + ")"
	return r, nil
}

func benchIngest(ctx context.Context, o options) (result, error) {
	client := httpClient(o)
	if o.url != "" {
		r := load(o, func() error { return post(client, o.url+ingest.WebhookPath, o.token) })
		r.note = "(external " + o.url + ")"
		return r, nil
	}
	dir, err := os.MkdirTemp("", "loadgen-ingest-")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	cfg := app.Config{
		// The API on a listener of its own, as by default: fasthttp serves the webhooks.
		Modules: []string{app.ModuleIngest}, Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:0", ShutdownTimeout: 5 * time.Second, DataDir: dir,
		NATS: natsConfig(dir, o.sync),
		Ingest: ingest.Config{Tokens: []string{o.token}, MaxBodyBytes: ingest.DefaultMaxBodyBytes,
			PublishTimeout: 5 * time.Second, RetryAfter: time.Second},
	}
	svc, err := app.New(ctx, cfg, quiet())
	if err != nil {
		return result{}, err
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- svc.Serve(sctx) }()
	url := "http://" + svc.Addr() + ingest.WebhookPath
	r := load(o, func() error { return post(client, url, o.token) })

	// Every 200 (warm-up included) must be a message in the stream.
	msgs, err := svc.Broker().StreamMsgs(ctx)
	if err == nil {
		r.note = fmt.Sprintf("(200s incl. warm-up %d, stream holds %d messages; sync %s)", r.ok+r.warmOK, msgs, syncName(o.sync))
		if bs := svc.Broker().Batches(); bs.Batches > 0 {
			r.note += fmt.Sprintf(" %d of them in %d atomic batches (%d failed)", bs.Messages, bs.Batches, bs.Failures)
		}
	}
	cancel()
	if serr := <-done; serr != nil && err == nil {
		err = serr
	}
	return r, err
}

func natsConfig(dir, sync string) broker.Config {
	return broker.Config{
		Listen: "127.0.0.1:-1", DataDir: dir, Sync: sync,
		Stream: broker.StreamConfig{Name: broker.DefaultStreamName, DuplicateWindow: broker.DefaultDuplicateWindow, Replicas: 1, MaxAge: broker.DefaultMaxAge},
	}
}

var channels = []events.Channel{events.ChannelSMS, events.ChannelSMS, events.ChannelSMS, events.ChannelViber, events.ChannelVoice, events.ChannelWhatsApp}
var statuses = []events.Status{events.StatusDispatched, events.StatusDelivered, events.StatusDelivered, events.StatusUndeliverable, events.StatusTimedOut}
var counter atomic.Uint64

// webhookBody is a realistic DeliveryStatus with a fresh otpId.
func webhookBody() []byte {
	n := counter.Add(1)
	ch, st := channels[n%uint64(len(channels))], statuses[n%uint64(len(statuses))]
	errPart := ""
	if st.Failed() {
		errPart = `,"error":{"code":"tyntec::delivery::1001","message":"Subscriber unreachable"}`
	}
	return fmt.Appendf(nil, `{"channel":%q,"otpId":%q,"profileId":"adbe6521-f5bd-4295-9fd9-776debdf7dc2","status":%q,"timestamp":%q%s}`,
		ch, uuid.NewString(), st, time.Now().UTC().Format(time.RFC3339Nano), errPart)
}

func deliveryMessage() events.Message {
	evs, err := events.DecodeDeliveryStatuses(webhookBody(), time.Now())
	if err != nil {
		panic(err)
	}
	m, err := events.NewDeliveryMessage(&evs[0])
	if err != nil {
		panic(err)
	}
	return m
}

func post(client *http.Client, url, token string) error {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(webhookBody()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Webhook-Token", token)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

func syncName(s string) string {
	if s == "" {
		return broker.DefaultSync
	}
	return s
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
