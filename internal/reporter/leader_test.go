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
	var running, most atomic.Int32
	var ran [2]atomic.Bool
	sink := func(i int) func(context.Context) error {
		return func(ctx context.Context) error {
			ran[i].Store(true)
			n := running.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			<-ctx.Done()
			running.Add(-1)
			return nil
		}
	}
	var second logs
	loggers := []*slog.Logger{brokertest.Logger(t), slog.New(slog.NewTextHandler(&second, nil))}
	stops := make([]context.CancelFunc, 2)
	var wg sync.WaitGroup
	for i := range 2 {
		ctx, cancel := context.WithCancel(t.Context())
		stops[i] = cancel
		b := srv.Broker(t)
		wg.Go(func() {
			if err := reporter.RunEmbeddedSink(ctx, b, sink(i), loggers[i]); err != nil {
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
	stops[0]()
	brokertest.WaitFor(t, 10*time.Second, "the second sink taking over", ran[1].Load)
	stops[1]()
	wg.Wait()
	if m := most.Load(); m != 1 {
		t.Errorf("%d sinks ran at once; want 1", m)
	}
}
