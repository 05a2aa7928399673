// Command reconcile measures the poller's reconciliation efficiency: it sends
// -otps OTPs through the tyntec simulator at once, loses the final delivery
// webhooks of -lost of them (the stand-in for ingest answers 200 and drops
// them), runs the poller at the default budget (100 calls per 60 s) and
// reports API calls per reconciled OTP, OTPs reconciled per minute, the time
// until every lost final state is back, and the most calls in any 60 s window.
//
//	go run ./bench/reconcile                     # 10,000 OTPs, 10% lost, 20x time
//	go run ./bench/reconcile -speed 1            # in real time (about 15 minutes)
//
// Time runs -speed times faster than the wall clock for the simulator and the
// poller's budget alike (100 calls per 60/speed s), so the figures, reported
// in simulated time, are those of the default budget. Everything runs in this
// process on 127.0.0.1.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"golang.org/x/sync/errgroup"

	"github.com/otpscope/otpscope/internal/broker"
	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/poller"
	"github.com/otpscope/otpscope/internal/tyntec"
	"github.com/otpscope/otpscope/internal/tyntecsim"
)

func main() { os.Exit(run()) }

type options struct {
	otps     int
	lost     float64
	speed    float64
	limit    int
	period   time.Duration
	schedule time.Duration
	timeout  time.Duration
	prios    string
	verbose  bool
}

func run() int {
	var o options
	flag.IntVar(&o.otps, "otps", 10000, "open OTPs")
	flag.Float64Var(&o.lost, "lost", 0.10, "share of OTPs whose final delivery webhooks are lost")
	flag.Float64Var(&o.speed, "speed", 20, "simulated seconds per wall-clock second (budget period and schedule scale with it)")
	flag.IntVar(&o.limit, "budget", tyntec.DefaultRateLimit, "API calls per -period")
	flag.DurationVar(&o.period, "period", tyntec.DefaultRatePeriod, "budget period (simulated)")
	flag.DurationVar(&o.schedule, "every", 30*time.Second, "reconciliation interval (simulated)")
	flag.DurationVar(&o.timeout, "timeout", 30*time.Minute, "give up after this much simulated time")
	flag.StringVar(&o.prios, "priorities", "", "comma-separated priority names to spread OTPs over (default: all four built-in)")
	flag.BoolVar(&o.verbose, "v", false, "log the poller")
	flag.Parse()
	if err := bench(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "reconcile:", err)
		return 1
	}
	return 0
}

// lostOTP reports whether the OTP is one of those whose final webhooks are lost.
func lostOTP(id string, share float64) bool {
	h := fnv.New64a()
	h.Write([]byte(id))
	return float64(h.Sum64()%10000)/10000 < share
}

func bench(ctx context.Context, o options) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	logger := slog.New(slog.DiscardHandler)
	if o.verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	wall := func(d time.Duration) time.Duration { return time.Duration(float64(d) / o.speed) }

	dir, err := os.MkdirTemp("", "otpscope-bench-reconcile-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bcfg := broker.Config{Listen: "127.0.0.1:-1", DataDir: dir, Stream: broker.StreamConfig{
		Name: broker.DefaultStreamName, DuplicateWindow: broker.DefaultDuplicateWindow, Replicas: 1, MaxAge: broker.DefaultMaxAge,
	}}
	b, err := broker.Open(ctx, bcfg, "bench-reconcile", logger)
	if err != nil {
		return err
	}
	defer b.Close()

	// The stand-in for ingest: publishes webhooks, except the final ones of the lost OTPs.
	var lostFinal sync.Map
	hookLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hookSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		evs, err := events.DecodeDeliveryStatuses(body, time.Now())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var msgs []events.Message
		for i := range evs {
			ev := &evs[i]
			if ev.Status.Final() && lostOTP(ev.OTPID, o.lost) {
				lostFinal.Store(events.DeliveryID(ev), ev.OTPID)
				continue
			}
			m, _ := events.NewDeliveryMessage(ev)
			msgs = append(msgs, m)
		}
		if err := b.Publish(r.Context(), msgs...); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
	})}
	go func() { _ = hookSrv.Serve(hookLn) }()
	defer hookSrv.Close()

	sim, err := tyntecsim.New(tyntecsim.Config{
		Seed: 42, TimeScale: o.speed,
		// The poller reconciles v4 OTPs through v1 /events, which assumes
		// one OTP store for both versions.
		SharedVersions: true,
		Callbacks:      []tyntec.NewCallbackConfig{{URL: "http://" + hookLn.Addr().String() + "/webhooks/tyntec"}},
		Webhook:        tyntecsim.WebhookPolicy{Workers: 32},
		// tyntec's budget, enforced by the simulator too: a 429 would show.
		Faults: tyntecsim.Faults{RateLimit: o.limit, RatePeriod: wall(o.period)},
	})
	if err != nil {
		return err
	}
	simLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	simSrv := &http.Server{Handler: sim}
	go func() { _ = simSrv.Serve(simLn) }()
	defer simSrv.Close()
	if err := sim.Start(ctx); err != nil {
		return err
	}
	defer sim.Close()

	cfg := poller.Config{
		Tyntec: tyntec.Config{
			BaseURL: "http://" + simLn.Addr().String(), APIKey: tyntecsim.DefaultAPIKey,
			RateLimit: o.limit, RatePeriod: wall(o.period),
		},
		Schedule:     "@every " + wall(o.schedule).String(),
		VerifySample: 1,
		// Every OTP is announced by its DISPATCHED webhook here; a list of
		// 10,000 OTPs is larger than the client reads (1 MiB).
		DiscoveryInterval: 0,
		Now:               sim.Now,
	}
	p, err := poller.New(ctx, cfg, b, logger, nil)
	if err != nil {
		return err
	}

	// Count the lost final states that come back: the first publish of each
	// message id (a repeat is a duplicate the stream drops).
	var (
		mu        sync.Mutex
		recovered = map[string]time.Time{} // message id → sim time recovered
	)
	// A plain subscription, made before the poller starts, sees every
	// message it publishes.
	unsubscribe, err := b.Subscribe(events.SubjectDeliveryAll, func(m *nats.Msg) {
		var ds events.DeliveryStatus
		if json.Unmarshal(m.Data, &ds) != nil || ds.Source != events.SourcePoll || !ds.Status.Final() {
			return
		}
		id := m.Header.Get(events.HeaderMsgID)
		mu.Lock()
		if _, seen := recovered[id]; !seen {
			recovered[id] = sim.Now()
		}
		mu.Unlock()
	})
	if err != nil {
		return err
	}
	defer unsubscribe()

	g, gctx := errgroup.WithContext(ctx)
	pctx, stopPoller := context.WithCancel(gctx)
	defer stopPoller()
	g.Go(func() error { return p.Run(pctx) })

	prios := []string{"tyntec_priority_sms-viber", "tyntec_priority_sms-voice", "tyntec_priority_whatsapp-sms", "tyntec_priority_sms"}
	if o.prios != "" {
		prios = strings.Split(o.prios, ",")
	}
	start := sim.Now()
	wallStart := time.Now()
	for i := range o.otps {
		if _, err := sim.Send(tyntec.NewOTPRequest{To: fmt.Sprintf("+4915%09d", i), PriorityName: prios[i%len(prios)]}); err != nil {
			return err
		}
	}
	fmt.Printf("sent %d OTPs; losing the final webhooks of ~%.0f%%; budget %d calls per %v, cycle every %v (simulated; %gx)\n",
		o.otps, 100*o.lost, o.limit, o.period, o.schedule, o.speed)

	// Wait until every lost final state is back, reporting progress.
	var done time.Time
	tick := time.NewTicker(wall(30 * time.Second))
	defer tick.Stop()
	for done.IsZero() {
		select {
		case <-gctx.Done():
			return fmt.Errorf("poller stopped: %w", g.Wait())
		case <-tick.C:
		}
		if !sim.Idle() {
			continue
		}
		want := 0
		var last time.Time
		mu.Lock()
		lostFinal.Range(func(k, _ any) bool {
			want++
			if at, ok := recovered[k.(string)]; ok && at.After(last) {
				last = at
			}
			return true
		})
		got := 0
		lostFinal.Range(func(k, _ any) bool {
			if _, ok := recovered[k.(string)]; ok {
				got++
			}
			return true
		})
		mu.Unlock()
		elapsed := sim.Now().Sub(start)
		fmt.Printf("  t=%6.1f min  recovered %d/%d lost final states  (%d API calls)\n", elapsed.Minutes(), got, want, len(sim.Calls()))
		if want > 0 && got == want {
			done = last
		}
		if elapsed > o.timeout {
			stopPoller()
			_ = g.Wait()
			return errors.New("timed out before every lost state was recovered")
		}
	}
	stopPoller()
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	report(o, sim, start, done, time.Since(wallStart), &lostFinal, wall)
	return nil
}

func report(o options, sim *tyntecsim.Sim, start, done time.Time, wallTook time.Duration, lostFinal *sync.Map, wall func(time.Duration) time.Duration) {
	lostOTPs := map[string]bool{}
	lostFinal.Range(func(_, v any) bool { lostOTPs[v.(string)] = true; return true })
	truth := sim.Truth()
	byID := map[string]tyntecsim.OTPTruth{}
	for _, t := range truth.OTPs {
		byID[t.ID] = t
	}
	var (
		eventCalls, eventCallsLost, eventCallsOther, statusCalls, otherCalls, limited int
		otherFailedLast                                                               = map[string]int{}
	)
	polledLost := map[string]bool{}
	for _, c := range sim.Calls() {
		if c.Status == http.StatusTooManyRequests {
			limited++
		}
		switch {
		case strings.HasPrefix(c.Path, "/2fa/v1/otp/") && strings.HasSuffix(c.Path, "/events"):
			eventCalls++
			id := strings.TrimSuffix(strings.TrimPrefix(c.Path, "/2fa/v1/otp/"), "/events")
			if lostOTPs[id] {
				eventCallsLost++
				polledLost[id] = true
			} else {
				eventCallsOther++
				t := byID[id]
				if len(t.Attempts) > 0 {
					last := t.Attempts[len(t.Attempts)-1]
					otherFailedLast[string(last.Channel)+" "+string(last.Outcome)+" ("+t.Priority+")"]++
				}
			}
		case strings.HasPrefix(c.Path, "/2fa/v4/otp/") || (strings.HasPrefix(c.Path, "/2fa/v1/otp/") && c.Method == http.MethodGet):
			statusCalls++
		default:
			otherCalls++
		}
	}
	took := done.Sub(start)
	fmt.Printf("\nOTPs: %d, of which %d lost their final delivery webhook(s)\n", len(truth.OTPs), len(lostOTPs))
	fmt.Printf("time until every lost final state was recovered: %.1f min (simulated; %.1f s wall at %gx)\n", took.Minutes(), wallTook.Seconds(), o.speed)
	fmt.Printf("OTPs reconciled per minute: %.0f\n", float64(len(lostOTPs))/took.Minutes())
	fmt.Printf("delivery-reconciliation calls (v1 events): %d — %.2f per lost OTP (%d lost OTPs read)\n",
		eventCalls, float64(eventCallsLost)/float64(max(1, len(lostOTPs))), len(polledLost))
	fmt.Printf("  on OTPs whose final state arrived by webhook: %d\n", eventCallsOther)
	for k, n := range otherFailedLast {
		fmt.Printf("    last attempt %s: %d\n", k, n)
	}
	fmt.Printf("status reads (verification, with the budget left over): %d; other calls: %d\n", statusCalls, otherCalls)
	fmt.Printf("max calls in any %v window: %d (budget %d); 429 answers: %d\n",
		o.period, tyntecsim.MaxInWindow(sim.Calls(), wall(o.period)), o.limit, limited)
}
