package reporter_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/reporter"
)

// logs is a log every goroutine may write and the test read.
type logs struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logs) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *logs) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// TestEmbeddedSinkAlone: two reporters with embedded engines on one
// stream. The second one's sink does not run beside the first's (the
// events would be split between two databases): it warns, naming the
// holder, and takes over once the first stops.
func TestEmbeddedSinkAlone(t *testing.T) {
	srv := brokertest.NewServer(t)
	var running brokertest.Overlap
	var ran [2]atomic.Bool
	sink := func(i int) func(context.Context) error {
		return func(ctx context.Context) error {
			ran[i].Store(true)
			running.Run(ctx)
			return nil
		}
	}
	var second logs
	loggers := []*slog.Logger{brokertest.Logger(t), slog.New(slog.NewTextHandler(&second, nil))}
	dirs := []string{t.TempDir(), t.TempDir()}
	sinks := []*reporter.EmbeddedSink{{}, {}}
	stops := make([]context.CancelFunc, 2)
	var wg sync.WaitGroup
	for i := range 2 {
		ctx, cancel := context.WithCancel(t.Context())
		stops[i] = cancel
		b := srv.Broker(t)
		wg.Go(func() {
			if err := sinks[i].Run(ctx, b, dirs[i], sink(i), loggers[i]); err != nil {
				t.Errorf("reporter %d: %v", i, err)
			}
		})
		if i == 0 {
			brokertest.WaitFor(t, 10*time.Second, "the first sink running", ran[0].Load)
		}
	}
	brokertest.WaitFor(t, 10*time.Second, "the second reporter's warning", func() bool {
		return strings.Contains(second.String(), "another reporter with an embedded ClickHouse engine reads the stream")
	})
	if line := second.String(); !strings.Contains(line, "holder=") || ran[1].Load() {
		t.Fatalf("the second reporter: ran %v, logged %q; want it waiting, naming the holder", ran[1].Load(), line)
	}
	if w := sinks[1].Waiting(); !strings.Contains(w, dirs[0]) || sinks[0].Waiting() != "" {
		t.Errorf("Waiting: the second %q, the first %q; want the second naming the first's engine, the first none", w, sinks[0].Waiting())
	}
	stops[0]()
	brokertest.WaitFor(t, 10*time.Second, "the second sink taking over", ran[1].Load)
	if w := sinks[1].Waiting(); w != "" {
		t.Errorf("Waiting once it runs: %q; want none", w)
	}
	stops[1]()
	wg.Wait()
	if m := running.Most(); m != 1 {
		t.Errorf("%d sinks ran at once; want 1", m)
	}
}

// TestEmbeddedSinkTakenBackAfterACrash: the lease is the engine's (host
// and data directory), so a reporter restarted on the directory after a
// crash, which left the key, runs its sink at once, not after the TTL.
func TestEmbeddedSinkTakenBackAfterACrash(t *testing.T) {
	srv := brokertest.NewServer(t)
	b := srv.Broker(t)
	dir := t.TempDir()
	kv, err := brokertest.JetStream(t, b).CreateOrUpdateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: reporter.BucketLeader, TTL: 15 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// The crashed process's run: its lease's key left behind.
	first, stop := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = new(reporter.EmbeddedSink).Run(first, b, dir, func(ctx context.Context) error { <-ctx.Done(); return nil }, brokertest.Logger(t))
	}()
	var left jetstream.KeyValueEntry
	brokertest.WaitFor(t, 10*time.Second, "the first run's lease", func() bool {
		left, err = kv.Get(t.Context(), "embedded-engine")
		return err == nil
	})
	stop()
	<-done
	// It released the key as it stopped; a crash would not: put it back.
	if _, err := kv.Put(t.Context(), "embedded-engine", left.Value()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	var ran atomic.Bool
	_ = new(reporter.EmbeddedSink).Run(ctx, b, dir, func(context.Context) error { ran.Store(true); cancel(); return nil }, brokertest.Logger(t))
	if !ran.Load() {
		t.Fatal("the sink did not run within 5 s: the crashed process's key held it off (its TTL is 15 s)")
	}
}
