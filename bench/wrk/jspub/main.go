// Command jspub is the second baseline of bench/wrk/run.sh, in the manner of
// nats bench's JetStream publisher: -concurrency goroutines on one connection,
// each publishing synchronously (PublishMsg, waiting for the PubAck) in a loop.
// Every message is what ingest publishes for a webhook — its subject,
// CloudEvents headers and JSON body, built once — with a fresh Nats-Msg-Id, so
// the server does the same work (storage, fsync, the duplicate window) and
// the client next to nothing.
//
//	go run ./bench/wrk/jspub -url nats://127.0.0.1:14222 -user otpscope -password P
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/otpscope/otpscope/internal/broker"
	"github.com/otpscope/otpscope/internal/events"
)

func main() {
	url := flag.String("url", "nats://127.0.0.1:4222", "NATS URL")
	user := flag.String("user", broker.DefaultUser, "NATS user")
	password := flag.String("password", "", "NATS password")
	concurrency := flag.Int("concurrency", 64, "publishing goroutines")
	warmup := flag.Duration("warmup", 2*time.Second, "unmeasured publishing first")
	duration := flag.Duration("duration", 8*time.Second, "measured time")
	flag.Parse()
	if err := run(*url, *user, *password, *concurrency, *warmup, *duration); err != nil {
		fmt.Fprintln(os.Stderr, "jspub:", err)
		os.Exit(1)
	}
}

func run(url, user, password string, concurrency int, warmup, duration time.Duration) error {
	nc, err := nats.Connect(url, nats.UserInfo(user, password))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	now := time.Now()
	evs, err := events.DecodeDeliveryStatuses([]byte(`{"channel":"SMS","otpId":"6c1bb8a6-4d5e-4b1a-9f35-0a7e2f3c9b11","profileId":"adbe6521-f5bd-4295-9fd9-776debdf7dc2","status":"DELIVERED","timestamp":"`+now.UTC().Format(time.RFC3339Nano)+`"}`), now)
	if err != nil {
		return err
	}
	tmpl, err := events.NewDeliveryMessage(&evs[0])
	if err != nil {
		return err
	}
	prefix := "jspub-" + strconv.FormatInt(now.UnixNano(), 36) + "-"
	var seq atomic.Uint64
	var measuring atomic.Bool
	var ok, failed atomic.Uint64
	ctx := context.Background()
	end := now.Add(warmup + duration)
	var wg sync.WaitGroup
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				m := tmpl
				m.ID = prefix + strconv.FormatUint(seq.Add(1), 10)
				_, err := js.PublishMsg(ctx, broker.NATSMsg(m))
				if !measuring.Load() {
					continue
				}
				if err != nil {
					failed.Add(1)
				} else {
					ok.Add(1)
				}
			}
		}()
	}
	time.Sleep(warmup)
	measuring.Store(true)
	start, cpu0 := time.Now(), cpuTime()
	wg.Wait()
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	n := max(ok.Load(), 1)
	fmt.Printf("RESULT rps=%.0f p99_ms=- non2xx=%d errors=%d client_cpu_us=%.1f\n",
		float64(ok.Load())/elapsed.Seconds(), failed.Load(), failed.Load(), float64(cpu.Microseconds())/float64(n))
	return nil
}

// cpuTime is the CPU time (user and system) this process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
