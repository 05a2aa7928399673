package broker_test

import (
	"errors"
	"flag"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/otpscope/otpscope/internal/broker"
	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/events"
)

// openGrouping opens an embedded broker that fsyncs every write, the one
// that groups publishes into atomic batches.
func openGrouping(t *testing.T) *broker.Broker {
	t.Helper()
	cfg := brokertest.Config(t)
	cfg.Sync = "always"
	if !cfg.GroupCommits() {
		t.Fatal("an embedded single node with sync always does not group commits")
	}
	b, err := broker.Open(t.Context(), cfg, "test", brokertest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// counter is the value of b's counter name.
func counter(t *testing.T, b *broker.Broker, name string) float64 {
	t.Helper()
	for _, c := range b.Collectors() {
		m, ok := c.(prometheus.Metric)
		if !ok || !strings.Contains(m.Desc().String(), `"`+name+`"`) {
			continue
		}
		var out dto.Metric
		if err := m.Write(&out); err != nil {
			t.Fatal(err)
		}
		return out.GetCounter().GetValue()
	}
	t.Fatalf("no counter %s", name)
	return 0
}

// publishTogether publishes each message from a goroutine of its own, as
// concurrent webhooks do, and returns what each PublishNew returned.
func publishTogether(t *testing.T, b *broker.Broker, msgs []events.Message) ([]bool, []error) {
	t.Helper()
	stored, errs := make([]bool, len(msgs)), make([]error, len(msgs))
	var wg sync.WaitGroup
	for i, m := range msgs {
		wg.Go(func() {
			got, err := b.PublishNew(t.Context(), 10*time.Second, m)
			if err == nil {
				stored[i] = got[0]
			}
			errs[i] = err
		})
	}
	wg.Wait()
	return stored, errs
}

// With the stream held busy, concurrent publishes wait and go out as one
// atomic batch: each acknowledged as stored, each in the stream once, with
// its own headers and body, and its Nats-Msg-Id known to the duplicate
// window afterwards.
func TestGroupCommitBatchesWaitingPublishes(t *testing.T) {
	const n = 40
	broker.SetGroupCommit(t, 0, n, time.Minute) // always busy; a batch at n
	b := openGrouping(t)
	msgs := make([]events.Message, n)
	for i := range msgs {
		msgs[i] = message(i)
	}
	stored, errs := publishTogether(t, b, msgs)
	for i := range msgs {
		if errs[i] != nil || !stored[i] {
			t.Fatalf("message %d: stored %v, err %v; want stored", i, stored[i], errs[i])
		}
	}
	if got := b.Batches(); got != (broker.BatchStats{Batches: 1, Messages: n}) {
		t.Fatalf("group commit did %+v; want one batch of %d", got, n)
	}
	if got := counter(t, b, "otpscope_nats_batched_messages_total"); got != n {
		t.Errorf("otpscope_nats_batched_messages_total = %v; want %d", got, n)
	}
	if got := brokertest.StreamMsgs(t, b); got != n {
		t.Fatalf("stream holds %d messages; want %d", got, n)
	}
	want := map[string]events.Message{}
	for _, m := range msgs {
		want[m.ID] = m
	}
	s, err := b.JetStream().Stream(t.Context(), b.StreamName())
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= n; seq++ {
		got, err := s.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		id := got.Header.Get(events.HeaderMsgID)
		m, ok := want[id]
		if !ok {
			t.Fatalf("message %d: id %q not published, or stored twice", seq, id)
		}
		delete(want, id)
		if string(got.Data) != string(m.Data) || got.Subject != m.Subject || got.Header.Get("Nats-Batch-Id") == "" {
			t.Fatalf("message %d = %s %q %v; want %s %q with its batch's headers", seq, got.Subject, got.Data, got.Header, m.Subject, m.Data)
		}
	}
	// A retry of a batched webhook is a duplicate.
	broker.SetGroupCommit(t, 16, 16, time.Minute)
	again, err := b.PublishNew(t.Context(), 10*time.Second, msgs[3])
	if err != nil || again[0] {
		t.Fatalf("publishing a batched message again: stored %v, %v; want a duplicate", again, err)
	}
}

// A duplicate fails an atomic batch whole; its messages then go out one by
// one, and every caller learns the truth: the duplicate not stored again,
// the others stored.
func TestGroupCommitBatchWithDuplicateFallsBack(t *testing.T) {
	const n = 20
	b := openGrouping(t)
	if _, err := b.PublishNew(t.Context(), 10*time.Second, message(5)); err != nil {
		t.Fatal(err)
	}
	broker.SetGroupCommit(t, 0, n, time.Minute)
	msgs := make([]events.Message, n)
	for i := range msgs {
		msgs[i] = message(i) // message(5) again among them
	}
	stored, errs := publishTogether(t, b, msgs)
	for i := range msgs {
		if errs[i] != nil || stored[i] != (i != 5) {
			t.Fatalf("message %d: stored %v, err %v; want stored %v", i, stored[i], errs[i], i != 5)
		}
	}
	if got := b.Batches(); got.Batches != 0 || got.Failures != 1 {
		t.Fatalf("group commit did %+v; want one failed batch", got)
	}
	if got := counter(t, b, "otpscope_nats_batch_failures_total"); got != 1 {
		t.Errorf("otpscope_nats_batch_failures_total = %v; want 1", got)
	}
	if got := brokertest.StreamMsgs(t, b); got != n {
		t.Fatalf("stream holds %d messages; want %d", got, n)
	}
}

// Too few waiting publishes for a batch still go out: on their own, once
// they have waited groupMaxHold.
func TestGroupCommitSendsAStragglerAlone(t *testing.T) {
	broker.SetGroupCommit(t, 0, 1000, 100*time.Millisecond)
	b := openGrouping(t)
	start := time.Now()
	stored, err := b.PublishNew(t.Context(), 10*time.Second, message(1))
	if err != nil || !stored[0] {
		t.Fatalf("PublishNew = %v, %v; want stored", stored, err)
	}
	if took := time.Since(start); took < 100*time.Millisecond {
		t.Errorf("published after %v, before the stream stopped being busy or the hold ran out", took)
	}
	if got := b.Batches(); got != (broker.BatchStats{}) {
		t.Errorf("group commit did %+v; want nothing", got)
	}
}

// A publish of more messages than a batch may hold goes out message by
// message, not as a batch the server would refuse.
func TestGroupCommitSendsABulkPublishAlone(t *testing.T) {
	broker.SetGroupCommit(t, 0, 2, time.Minute)
	b := openGrouping(t)
	msgs := make([]events.Message, 1001)
	for i := range msgs {
		msgs[i] = message(i)
	}
	stored, err := b.PublishNew(t.Context(), 10*time.Second, msgs...)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range stored {
		if !s {
			t.Fatalf("message %d not stored", i)
		}
	}
	if got := b.Batches(); got != (broker.BatchStats{}) {
		t.Errorf("group commit did %+v; want no batch", got)
	}
	if got := brokertest.StreamMsgs(t, b); got != uint64(len(msgs)) {
		t.Fatalf("stream holds %d messages; want %d", got, len(msgs))
	}
}

// Publishes still waiting when the broker closes fail at once.
func TestGroupCommitCloseFailsWaiting(t *testing.T) {
	broker.SetGroupCommit(t, 0, 1000, time.Hour)
	b := openGrouping(t)
	done := make(chan error, 1)
	go func() {
		_, err := b.PublishNew(t.Context(), 0, message(1))
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	b.Close()
	select {
	case err := <-done:
		if !errors.Is(err, broker.ErrUnavailable) {
			t.Fatalf("PublishNew after Close = %v; want ErrUnavailable", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("PublishNew still waiting 10 s after Close")
	}
}

func TestGroupCommitsOnlyWhereAnFsyncIsShared(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*broker.Config)
		want   bool
	}{
		{"embedded, sync always", func(c *broker.Config) { c.Sync = "always" }, true},
		{"embedded, default sync", func(c *broker.Config) { c.Sync = "" }, true},
		{"embedded, sync 2m", func(c *broker.Config) { c.Sync = "2m" }, false},
		{"external server", func(c *broker.Config) { c.URL = "nats://127.0.0.1:4222" }, false},
		{"embedded cluster node", func(c *broker.Config) { c.ClusterName = "c" }, false},
		{"three replicas", func(c *broker.Config) { c.Stream.Replicas = 3 }, false},
		{"turned off", func(c *broker.Config) { c.NoGroupCommit = true }, false},
	}
	for _, tt := range tests {
		cfg := brokertest.Config(t)
		tt.mutate(&cfg)
		if got := cfg.GroupCommits(); got != tt.want {
			t.Errorf("%s: groups commits %v; want %v", tt.name, got, tt.want)
		}
	}
	// The flag's default is on; =false turns it off.
	for args, want := range map[string]bool{"": true, "--nats-group-commit": true, "--nats-group-commit=false": false} {
		var cfg broker.Config
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		cfg.RegisterFlags(fs, "")
		if err := fs.Parse(strings.Fields(args)); err != nil {
			t.Fatal(err)
		}
		cfg.DataDir, cfg.Sync = t.TempDir(), "always"
		if got := cfg.GroupCommits(); got != want {
			t.Errorf("flags %q: groups commits %v; want %v", args, got, want)
		}
	}
	// The stream allows atomic batches exactly when they are used.
	for _, sync := range []string{"always", "2m"} {
		cfg := brokertest.Config(t)
		cfg.Sync = sync
		b, err := broker.Open(t.Context(), cfg, "test", brokertest.Logger(t))
		if err != nil {
			t.Fatal(err)
		}
		info, err := b.JetStream().Stream(t.Context(), b.StreamName())
		b.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got := info.CachedInfo().Config.AllowAtomicPublish; got != cfg.GroupCommits() {
			t.Errorf("sync %s: stream allows atomic publish %v", sync, got)
		}
	}
}
