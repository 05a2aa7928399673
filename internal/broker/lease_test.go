package broker_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/otpscope/otpscope/internal/broker"
	"github.com/otpscope/otpscope/internal/broker/brokertest"
)

// Two replicas compete for one lease: never both hold it, and when the holder
// stops the other takes over.
func TestLeaseOneHolderAndHandover(t *testing.T) {
	srv := brokertest.NewServer(t)
	var holders, maxHolders atomic.Int32
	var acquired [2]atomic.Bool
	cancels := make([]context.CancelFunc, 2)
	var wg sync.WaitGroup
	for i := range 2 {
		b := srv.Broker(t)
		l, err := b.NewLease(t.Context(), "test_leases", "test", "leader", []string{"a", "b"}[i], 3*time.Second, brokertest.Logger(t))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		cancels[i] = cancel
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = l.Run(ctx, func(ctx context.Context) error {
				acquired[i].Store(true)
				n := holders.Add(1)
				for {
					if m := maxHolders.Load(); n <= m || maxHolders.CompareAndSwap(m, n) {
						break
					}
				}
				<-ctx.Done()
				holders.Add(-1)
				return nil
			})
		}()
	}
	brokertest.WaitFor(t, 10*time.Second, "a holder", func() bool { return holders.Load() == 1 })
	// Several refreshes of the lease (each a new revision of its key): the
	// other must not get in meanwhile.
	kv, err := srv.Broker(t).JetStream().KeyValue(t.Context(), "test_leases")
	if err != nil {
		t.Fatal(err)
	}
	revision := func() uint64 {
		e, err := kv.Get(t.Context(), "leader")
		if err != nil {
			return 0
		}
		return e.Revision()
	}
	taken := revision()
	brokertest.WaitFor(t, 10*time.Second, "two refreshes of the lease", func() bool { return revision() >= taken+2 })
	first := 0
	if acquired[1].Load() {
		first = 1
	}
	cancels[first]()
	brokertest.WaitFor(t, 10*time.Second, "the handover", func() bool { return acquired[1-first].Load() })
	cancels[1-first]()
	wg.Wait()
	if m := maxHolders.Load(); m != 1 {
		t.Fatalf("%d replicas held the lease at once", m)
	}
}

// TestLeaseTermNotHeldPastItsTTL: a holder whose refreshes stall (a paused
// process) finds its term no longer held once the TTL has passed, although
// its context has not ended yet; when the refresher runs again it finds the
// lease gone and ends the context.
func TestLeaseTermNotHeldPastItsTTL(t *testing.T) {
	if broker.TermOf(t.Context()) != nil {
		t.Fatal("a context outside Lease.Run has a term")
	}
	srv := brokertest.NewServer(t)
	const ttl = 1500 * time.Millisecond
	l, err := srv.Broker(t).NewLease(t.Context(), "test_leases", "test", "leader", "a", ttl, brokertest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	broker.StallLeaseRefresh(t, release)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- l.Run(ctx, func(ctx context.Context) error {
			term := broker.TermOf(ctx)
			if term == nil || term.Revision == 0 || !term.Held() {
				t.Errorf("term at the start = %+v; want held, with a revision", term)
				return nil
			}
			begun := time.Now()
			for term.Held() {
				if time.Since(begun) > ttl+time.Second {
					t.Errorf("the term is still held %v into a %v lease whose refreshes stall", time.Since(begun), ttl)
					return nil
				}
				time.Sleep(10 * time.Millisecond)
			}
			if since := time.Since(term.Since); since < ttl {
				t.Errorf("the term ended %v after it began; want at least the %v TTL", since, ttl)
			}
			time.Sleep(ttl) // the bucket's copy expires too
			close(release)
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Second):
				t.Error("the holder's context did not end after its lease expired")
			}
			if term.Held() {
				t.Error("the term is held again after the lease was lost")
			}
			cancel()
			return nil
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return")
	}
}

// TestLeaseTermEndsWhenLost: a lease lost before its TTL ran out (its key
// gone under the holder) ends the term at once, not when the TTL would
// have.
func TestLeaseTermEndsWhenLost(t *testing.T) {
	srv := brokertest.NewServer(t)
	b := srv.Broker(t)
	const ttl = 6 * time.Second
	l, err := b.NewLease(t.Context(), "test_leases", "test", "leader", "a", ttl, brokertest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := b.JetStream().KeyValue(t.Context(), "test_leases")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	_ = l.Run(ctx, func(ctx context.Context) error {
		term := broker.TermOf(ctx)
		if err := kv.Purge(t.Context(), "leader"); err != nil {
			t.Fatal(err)
		}
		<-ctx.Done() // the next refresh, a third of the TTL on, fails
		if term.Held() {
			t.Errorf("the term is held %v after it began, its lease lost (TTL %v)", time.Since(term.Since), ttl)
		}
		cancel()
		return nil
	})
}

// TestLeaseReleasedWhenWorkFails: a holder whose work fails returns the
// error and hands the lease over at once; the other replica need not wait
// out the TTL (a minute here) to lead.
func TestLeaseReleasedWhenWorkFails(t *testing.T) {
	srv := brokertest.NewServer(t)
	lease := func(holder string) *broker.Lease {
		l, err := srv.Broker(t).NewLease(t.Context(), "test_leases", "test", "leader", holder, time.Minute, brokertest.Logger(t))
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	failed := errors.New("the work failed")
	if err := lease("a").Run(t.Context(), func(context.Context) error { return failed }); !errors.Is(err, failed) {
		t.Fatalf("Run = %v; want the work's error", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var led atomic.Bool
	_ = lease("b").Run(ctx, func(context.Context) error { led.Store(true); cancel(); return nil })
	if !led.Load() {
		t.Fatal("the other replica did not lead within 10 s: the failed holder kept the lease for its TTL")
	}
}

// TestStickyLeaseThroughANATSRestart: a sticky lease's work goes on while
// NATS is away (its refreshes fail), the key is taken back, and only
// another holder found at a refresh ends the work. An ordinary lease's
// work would end with the first failed refresh.
func TestStickyLeaseThroughANATSRestart(t *testing.T) {
	srv := brokertest.NewServer(t)
	b := srv.Broker(t)
	const ttl = 1500 * time.Millisecond
	l, err := b.NewLease(t.Context(), "test_leases", "test", "leader", "a", ttl, brokertest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	l.Sticky = true
	running, ended := make(chan struct{}), make(chan struct{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() {
		_ = l.Run(ctx, func(ctx context.Context) error {
			close(running)
			<-ctx.Done()
			close(ended)
			return nil
		})
	}()
	<-running
	kv, err := brokertest.JetStream(t, b).KeyValue(t.Context(), "test_leases")
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	time.Sleep(2 * ttl) // refreshes fail; the key would have expired
	srv.Start()
	brokertest.WaitFor(t, 10*time.Second, "the key taken back", func() bool {
		e, err := kv.Get(t.Context(), "leader")
		return err == nil && strings.HasPrefix(string(e.Value()), "a #")
	})
	select {
	case <-ended:
		t.Fatal("the work ended while NATS was away")
	default:
	}
	// Another holder: the key taken by b under the lease.
	if _, err := kv.Put(t.Context(), "leader", []byte("b #1")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the work went on after another replica took the lease")
	}
}

// TestLeaseNamesShared: two replicas given one name (one --replica for
// both) never hold the lease at once: each takes back only a key holding
// its own token.
func TestLeaseNamesShared(t *testing.T) {
	srv := brokertest.NewServer(t)
	var holders brokertest.Overlap
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for range 2 {
		l, err := srv.Broker(t).NewLease(t.Context(), "test_leases", "test", "leader", "poller-0", time.Second, brokertest.Logger(t))
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { _ = l.Run(ctx, func(ctx context.Context) error { holders.Run(ctx); return nil }) })
	}
	time.Sleep(3 * time.Second) // several of each one's asks and refreshes
	cancel()
	wg.Wait()
	if m := holders.Most(); m != 1 {
		t.Errorf("%d replicas named alike held the lease at once; want 1", m)
	}
}

// TestLeaseEndedWorkIsNoFailure: work that returns its context's error
// because the lease ended it (a refresh found another holder) does not
// make Run fail: the replica waits to lead again.
func TestLeaseEndedWorkIsNoFailure(t *testing.T) {
	srv := brokertest.NewServer(t)
	b := srv.Broker(t)
	l, err := b.NewLease(t.Context(), "test_leases", "test", "leader", "a", 1500*time.Millisecond, brokertest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := brokertest.JetStream(t, b).CreateOrUpdateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: "test_leases", TTL: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var terms atomic.Int32
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- l.Run(ctx, func(ctx context.Context) error {
			if terms.Add(1) == 1 {
				// Another takes the key under this term.
				if _, err := kv.Put(t.Context(), "leader", []byte("b #1")); err != nil {
					t.Error(err)
				}
			} else {
				cancel() // leading again: done
			}
			<-ctx.Done()
			return ctx.Err()
		})
	}()
	if err := <-done; err != nil {
		t.Errorf("Run = %v; want nil: the lease ended the work, and the replica led again", err)
	}
	if n := terms.Load(); n != 2 {
		t.Errorf("%d terms; want 2 (the lost one, then the next once b's key expired)", n)
	}
}
