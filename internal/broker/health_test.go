package broker_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/otpscope/otpscope/internal/broker"
	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/disktest"
	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/ingest"
	"github.com/otpscope/otpscope/internal/ops"
	"github.com/otpscope/otpscope/internal/polltest"
)

// publishWithin publishes message i, giving JetStream d to acknowledge it: a
// stream with a write error does not answer at all.
func publishWithin(b *broker.Broker, i int, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return b.Publish(ctx, message(i))
}

// jetStreamOK is the value of the gauge otpscope_nats_jetstream_ok.
func jetStreamOK(b *broker.Broker) float64 {
	var m dto.Metric
	if err := b.Collectors()[0].(prometheus.Metric).Write(&m); err != nil {
		return -1
	}
	return m.GetGauge().GetValue()
}

// TestRecoversFromFullDisk fills the filesystem under the embedded server's
// store: a tmpfs of its own, mounted for the test (root only; skipped
// elsewhere), filled to the last byte by a file. Publishing fails, the
// stream keeps a write error, readiness says so and the gauge drops; once
// the file is removed the watcher restarts JetStream and publishing works
// again, with no restart of the process and nothing acknowledged lost.
func TestRecoversFromFullDisk(t *testing.T) {
	dir, _, b := openOnTmpfs(t, "full-disk", "; TestRecoversFromJetStreamShutdown covers the recovery")
	t.Cleanup(b.Close)
	const before = 100
	for i := range before {
		if err := publishWithin(b, i, 5*time.Second); err != nil {
			t.Fatalf("publish %d before the disk filled: %v", i, err)
		}
	}

	filler := filepath.Join(dir, "filler")
	disktest.Fill(t, filler)
	failed := false
	for i := before; i < before+2000 && !failed; i++ {
		failed = publishWithin(b, i, time.Second) != nil
	}
	if !failed {
		t.Fatal("2000 publishes onto a full disk all succeeded")
	}
	brokertest.WaitFor(t, 10*time.Second, "readiness to report JetStream down", func() bool {
		return errors.Is(b.Ready(t.Context()), broker.ErrJetStreamDown) && jetStreamOK(b) == 0
	})
	t.Logf("while full: Ready() = %v", b.Ready(t.Context()))
	// Publishing fails at once, and tyntec is told to come back.
	start := time.Now()
	if err := publishWithin(b, 999, 5*time.Second); !errors.Is(err, broker.ErrUnavailable) || time.Since(start) > time.Second {
		t.Errorf("publish onto the full disk = %v after %v; want ErrUnavailable at once", err, time.Since(start))
	}
	webhook := webhookServer(t, b)
	if code, retry := webhook(uuid.NewString()); code != http.StatusServiceUnavailable || retry == "" {
		t.Errorf("webhook onto the full disk: %d, Retry-After %q; want 503 with Retry-After", code, retry)
	}

	// A little room first (a tyntec retry storm's worth): JetStream comes
	// back with the store limit it started with, not one computed from
	// the free space of the moment, which would keep it "store full".
	maxStore := b.Server().JetStreamConfig().MaxStore
	if err := os.Truncate(filler, max(0, fileSize(t, filler)-2<<20)); err != nil {
		t.Fatal(err)
	}
	brokertest.WaitFor(t, 30*time.Second, "readiness back once a little space returns", func() bool {
		return b.Ready(t.Context()) == nil && jetStreamOK(b) == 1
	})
	if js := b.Server().JetStreamConfig(); js == nil || js.MaxStore != maxStore {
		t.Errorf("JetStream's store limit after the recovery = %+v; want the limit it started with, %d", js, maxStore)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	brokertest.WaitFor(t, 30*time.Second, "readiness back once space returns", func() bool {
		return b.Ready(t.Context()) == nil && jetStreamOK(b) == 1
	})
	brokertest.WaitFor(t, 10*time.Second, "publishing to succeed again", func() bool {
		return publishWithin(b, 1_000_000, 2*time.Second) == nil
	})
	if code, _ := webhook(uuid.NewString()); code != http.StatusOK {
		t.Errorf("webhook after the disk has space again: %d; want 200", code)
	}
	if n := brokertest.StreamMsgs(t, b); n < before+1 {
		t.Errorf("the stream holds %d messages; want at least the %d acknowledged", n, before+1)
	}
}

// A restart on a disk the stream filled keeps what the stream holds, and
// takes writes once the disk is freed. The store's limit, worked out at
// start as 75 % of the free space, left the store's own contents out: it
// came out under what the stream held, and the stream's default bound,
// 60 % of it, either was refused (the start retrying for ever, 503 to every
// webhook, after the disk had room again: an operator's soak) or cut the
// stream to a few megabytes at the next publish, unread messages with it.
func TestRestartOnAFullDiskKeepsTheStream(t *testing.T) {
	dir, cfg, b := openOnTmpfs(t, "full-start", "")
	const held = 100 // 6.4 MB
	for i := range held {
		m := events.NewMessage(events.SubjectRoot+".test.bulk", fmt.Sprintf("bulk-%d", i), "test", "test", time.Now(), "", make([]byte, 64<<10))
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		err := b.Publish(ctx, m)
		cancel()
		if err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	b.Close()

	filler := filepath.Join(dir, "filler")
	disktest.Fill(t, filler)
	// The restart waits while the disk takes no write at all (its stream's
	// update cannot be stored), then starts once it is freed.
	var logs polltest.Buffer
	type opened struct {
		b   *broker.Broker
		err error
	}
	done := make(chan opened, 1)
	go func() {
		b, err := broker.Open(t.Context(), cfg, "full-start", slog.New(slog.NewTextHandler(&logs, nil)))
		done <- opened{b, err}
	}()
	time.Sleep(3 * time.Second)
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	var o opened
	select {
	case o = <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("the restart did not finish 30 s after the disk was freed:\n%s", logs.String())
	}
	if o.err != nil {
		t.Fatalf("the restart: %v\n%s", o.err, logs.String())
	}
	b = o.b
	t.Cleanup(b.Close)
	if n := brokertest.StreamMsgs(t, b); n != held {
		t.Errorf("after the restart the stream holds %d messages; want the %d it held", n, held)
	}
	brokertest.WaitFor(t, 30*time.Second, "publishing to succeed once the disk has room", func() bool {
		return publishWithin(b, 1, 2*time.Second) == nil
	})
	if n := brokertest.StreamMsgs(t, b); n != held+1 {
		t.Errorf("after a publish the stream holds %d messages; want %d: nothing trimmed", n, held+1)
	}
	if l := logs.String(); strings.Contains(l, "its oldest messages go") {
		t.Errorf("logs say the oldest messages go:\n%s", l)
	}
}

// openOnTmpfs opens a broker named name whose data directory, dir, is a
// tmpfs of 32 MiB of its own, to fill, with the health watcher looking
// fast; the test is skipped (saying why, and what covers it when
// skipped) where mounting is not allowed.
func openOnTmpfs(t *testing.T, name, covered string) (dir string, cfg broker.Config, b *broker.Broker) {
	t.Helper()
	dir = t.TempDir()
	if !disktest.Tmpfs(t, dir, 32) {
		t.Skip("mounting a small tmpfs needs root on Linux" + covered)
	}
	broker.WatchFast(t)
	cfg = brokertest.Config(t)
	cfg.DataDir = dir
	b, err := broker.Open(t.Context(), cfg, name, brokertest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	return dir, cfg, b
}

// webhookServer serves ingest's webhook on b and returns a function posting
// one delivery event, answering the status and Retry-After.
func webhookServer(t *testing.T, b *broker.Broker) func(otpID string) (int, string) {
	const token = "full-disk-token-0123456789"
	r := ops.NewRouter()
	ingest.NewHandler(ingest.Config{Tokens: []string{token}, MaxBodyBytes: 1 << 16, PublishTimeout: 2 * time.Second, RetryAfter: time.Second},
		b, brokertest.Logger(t), prometheus.NewRegistry()).Mount(r)
	hs := httptest.NewServer(r)
	t.Cleanup(hs.Close)
	return func(otpID string) (int, string) {
		body := fmt.Sprintf(`{"channel":"SMS","otpId":%q,"status":"DELIVERED","timestamp":%q}`, otpID, time.Now().UTC().Format(time.RFC3339Nano))
		req, _ := http.NewRequest(http.MethodPost, hs.URL+ingest.WebhookPath, strings.NewReader(body))
		req.Header.Set("X-Webhook-Token", token)
		resp, err := hs.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
}

// TestRecoversFromJetStreamShutdown shuts JetStream down the way the server
// does itself on a write it cannot make (out of space, a read-only store):
// readiness reports it with the reason, publishing fails, and the watcher
// starts JetStream again with the process and its connection still up.
func TestRecoversFromJetStreamShutdown(t *testing.T) {
	broker.WatchFast(t)
	cfg := brokertest.Config(t)
	b, err := broker.Open(t.Context(), cfg, "shutdown", brokertest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	if err := publishWithin(b, 0, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := b.Server().ShutdownJetStream(); err != nil {
		t.Fatal(err)
	}
	// The watcher may already be restarting it; what must not happen is a
	// ready broker with JetStream down.
	if err := b.Ready(t.Context()); err != nil && !errors.Is(err, broker.ErrJetStreamDown) {
		t.Errorf("Ready() with JetStream down = %v; want ErrJetStreamDown", err)
	} else if err == nil && !b.Server().JetStreamEnabled() {
		t.Error("Ready() = nil with JetStream down")
	}
	brokertest.WaitFor(t, 10*time.Second, "JetStream enabled and ready again", func() bool {
		return b.Server().JetStreamEnabled() && b.Ready(t.Context()) == nil
	})
	if err := publishWithin(b, 1, 5*time.Second); err != nil {
		t.Fatalf("publish after the restart of JetStream: %v", err)
	}
	if n := brokertest.StreamMsgs(t, b); n != 2 {
		t.Errorf("the stream holds %d messages; want 2", n)
	}
}

// TestKeyValueWaitsForJetStream creates a KV bucket while JetStream is
// down: the call retries until the watcher has started JetStream again,
// instead of failing the service's start.
func TestKeyValueWaitsForJetStream(t *testing.T) {
	broker.WatchFast(t)
	b, err := broker.Open(t.Context(), brokertest.Config(t), "kv", brokertest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	if err := b.Server().ShutdownJetStream(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	kv, err := b.KeyValue(ctx, jetstream.KeyValueConfig{Bucket: "test_wait"})
	if err != nil {
		t.Fatalf("KeyValue with JetStream down, then up again: %v", err)
	}
	if _, err := kv.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatalf("put into the bucket: %v", err)
	}
}

// TestKeyValueRefusalIsFinal: a configuration the server finds invalid is
// not retried. (On a JetStream of its own: right after the watcher has
// restarted one, the bucket can be missing for a moment, and nats.go then
// creates it anew instead of updating it.)
func TestKeyValueRefusalIsFinal(t *testing.T) {
	b, err := broker.Open(t.Context(), brokertest.Config(t), "kv", brokertest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := b.KeyValue(ctx, jetstream.KeyValueConfig{Bucket: "test_wait"}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = b.KeyValue(ctx, jetstream.KeyValueConfig{Bucket: "test_wait", Storage: jetstream.MemoryStorage})
	if err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("changing a file bucket to memory = %v after %v; want a refusal at once", err, time.Since(start))
	}
}

// TestFaultActedOnOnceItLasts: the watcher acts on a fault only when the
// next look still sees it — the server's health check sees a stream being
// created (a KV bucket at start) as one that "could not be recovered" for an
// instant, and restarting JetStream then broke the calls creating it.
func TestFaultActedOnOnceItLasts(t *testing.T) {
	broker.WatchByHand(t)
	cfg := brokertest.Config(t)
	b, err := broker.Open(t.Context(), cfg, "lasting", brokertest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	if err := b.Server().ShutdownJetStream(); err != nil {
		t.Fatal(err)
	}
	if err := b.Ready(t.Context()); !errors.Is(err, broker.ErrJetStreamDown) {
		t.Fatalf("Ready() with JetStream down = %v; want ErrJetStreamDown", err)
	}
	// (The gauge may drop at once: the stream is not found with JetStream
	// down.)
	b.Look(t.Context())
	if n := b.JetStreamRestarts(); n != 0 || b.Server().JetStreamEnabled() {
		t.Errorf("after one look: %d restarts of JetStream, enabled %v; want 0, false", n, b.Server().JetStreamEnabled())
	}
	b.Look(t.Context())
	if ok, n := jetStreamOK(b), b.JetStreamRestarts(); ok != 0 || n != 1 {
		t.Errorf("after a second look: otpscope_nats_jetstream_ok = %v, %d restarts of JetStream; want 0 and 1", ok, n)
	}
	b.Look(t.Context())
	if ok := jetStreamOK(b); ok != 1 || !b.Server().JetStreamEnabled() {
		t.Errorf("after the restart: otpscope_nats_jetstream_ok = %v, JetStream enabled %v; want 1, true", ok, b.Server().JetStreamEnabled())
	}
	if err := publishWithin(b, 0, 5*time.Second); err != nil {
		t.Errorf("publish after the restart: %v", err)
	}
}

// TestUnrecoveredStreamIsNoFault: a stream the server has a directory for
// but could not recover (a corrupt KV bucket) is no fault of the webhooks'
// stream: publishing goes on and JetStream is not restarted again and again
// — which would not recover it.
func TestUnrecoveredStreamIsNoFault(t *testing.T) {
	broker.WatchByHand(t)
	cfg := brokertest.Config(t)
	b, err := broker.Open(t.Context(), cfg, "unrecovered", brokertest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	ghost := filepath.Join(cfg.StoreDir(), "jetstream", "$G", "streams", "KV_corrupt")
	if err := os.MkdirAll(ghost, 0o750); err != nil {
		t.Fatal(err)
	}
	if h := b.Server().Healthz(nil); !strings.Contains(h.Error, "KV_corrupt") {
		t.Fatalf("the server's health check = %q; want it to name the stream it could not recover", h.Error)
	}
	for i := range 3 {
		b.Look(t.Context())
		// Logged once a second look still sees it, as faults are acted on.
		if want := map[bool]string{true: "KV_corrupt"}[i > 0]; b.Unrecovered() != want {
			t.Errorf("look %d: the watcher logged %q as unrecovered; want %q", i, b.Unrecovered(), want)
		}
		if err := b.Ready(t.Context()); err != nil {
			t.Errorf("look %d: Ready() = %v", i, err)
		}
		if err := publishWithin(b, i, 5*time.Second); err != nil {
			t.Errorf("look %d: publish: %v", i, err)
		}
	}
	if ok, n := jetStreamOK(b), b.JetStreamRestarts(); ok != 1 || n != 0 {
		t.Errorf("otpscope_nats_jetstream_ok = %v, %d restarts of JetStream; want 1 and 0", ok, n)
	}
	if n := brokertest.StreamMsgs(t, b); n != 3 {
		t.Errorf("the stream holds %d messages; want 3", n)
	}
}

// TestPassingUnrecoveredStreamNotLogged: a stream directory one look sees
// without its stream — as every KV bucket being created at start is, for an
// instant — is not logged as a stream that could not be recovered; on a
// fresh data directory that error sent users looking for damage.
func TestPassingUnrecoveredStreamNotLogged(t *testing.T) {
	broker.WatchByHand(t)
	cfg := brokertest.Config(t)
	b, err := broker.Open(t.Context(), cfg, "passing", brokertest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	ghost := filepath.Join(cfg.StoreDir(), "jetstream", "$G", "streams", "KV_passing")
	if err := os.MkdirAll(ghost, 0o750); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		b.Look(t.Context())
		if u := b.Unrecovered(); u != "" {
			t.Errorf("look %d: the watcher logged %q as unrecovered; want nothing for a stream one look saw", i, u)
		}
		if err := os.RemoveAll(ghost); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRestartsBackOffWhileTheFaultLasts: otpscope's own stream cannot be
// read back from the store (its metadata's checksum is wrong), so restarting
// JetStream does not clear the fault. The watcher restarts it less often each
// time — every restart interrupts all of JetStream's clients — and once the
// store is repaired, the next restart brings the stream back with what it
// held, and the waits start over.
func TestRestartsBackOffWhileTheFaultLasts(t *testing.T) {
	broker.WatchByHand(t)
	broker.SetRestartWaits(t, time.Minute, 4*time.Minute)
	cfg := brokertest.Config(t)
	b, err := broker.Open(t.Context(), cfg, "backoff", brokertest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	b.SetWatchClock(func() time.Time { return now })
	if err := publishWithin(b, 0, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	sum := filepath.Join(cfg.StoreDir(), "jetstream", "$G", "streams", b.StreamName(), "meta.sum")
	good, err := os.ReadFile(sum)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Server().ShutdownJetStream(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sum, []byte("0000000000000000"), 0o640); err != nil {
		t.Fatal(err)
	}

	// at looks once, the watcher's clock d after the start, and checks the
	// restarts counted so far.
	at := func(d time.Duration, want int64) {
		t.Helper()
		now = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).Add(d)
		b.Look(t.Context())
		if n := b.JetStreamRestarts(); n != want {
			t.Fatalf("after the look at +%v: %d restarts of JetStream; want %d", d, n, want)
		}
	}
	at(0, 0) // seen once
	at(time.Second, 1)
	if err := b.Ready(t.Context()); !errors.Is(err, broker.ErrJetStreamDown) || !strings.Contains(err.Error(), "could not be recovered") {
		t.Fatalf("Ready() with the stream unreadable = %v; want ErrJetStreamDown naming the stream", err)
	}
	// Waits of 1, 2 and 4 minutes, then 4 at most.
	at(time.Second+59*time.Second, 1)
	at(time.Second+time.Minute, 2)
	at(time.Second+3*time.Minute-time.Second, 2)
	at(time.Second+3*time.Minute, 3)
	at(time.Second+7*time.Minute-time.Second, 3)
	at(time.Second+7*time.Minute, 4)
	at(time.Second+11*time.Minute-time.Second, 4)

	if err := os.WriteFile(sum, good, 0o640); err != nil {
		t.Fatal(err)
	}
	at(time.Second+11*time.Minute, 5)
	at(time.Second+11*time.Minute+time.Second, 5)
	if err := b.Ready(t.Context()); err != nil {
		t.Fatalf("Ready() after the repair and a restart = %v", err)
	}
	if err := publishWithin(b, 1, 5*time.Second); err != nil {
		t.Fatalf("publish after the repair: %v", err)
	}
	if n := brokertest.StreamMsgs(t, b); n != 2 {
		t.Errorf("the stream holds %d messages; want 2 (the one before the fault kept)", n)
	}
	// A new fault is restarted after the first wait again, not the longest.
	if err := b.Server().ShutdownJetStream(); err != nil {
		t.Fatal(err)
	}
	at(time.Second+11*time.Minute+2*time.Second, 5)
	at(12*time.Minute, 5) // a minute after the last restart, less a second
	at(time.Second+12*time.Minute, 6)
	if !b.Server().JetStreamEnabled() {
		t.Error("JetStream is not enabled after the restart")
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// An embedded store whose limit, fixed at start from the disk's free
// space, is small is warned of at start, with what to do (an operator's
// review: a 20 MB disk gave a 15.7 MB limit without a word, then every
// webhook refused). A large one is not.
func TestSmallStoreWarnedAtStart(t *testing.T) {
	small, large := t.TempDir(), t.TempDir()
	// tmpfs sizes are limits, not memory taken: 2 GiB gives a 1.5 GiB store.
	if !disktest.Tmpfs(t, small, 32) || !disktest.Tmpfs(t, large, 2048) {
		t.Skip("mounting a tmpfs needs root on Linux")
	}
	for _, tt := range []struct {
		dir  string
		warn bool
	}{{small, true}, {large, false}} {
		cfg := brokertest.Config(t)
		cfg.DataDir = tt.dir
		var logs polltest.Buffer
		b, err := broker.Open(t.Context(), cfg, "small-store", slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil {
			t.Fatal(err)
		}
		b.Close()
		warned := strings.Contains(logs.String(), "the embedded JetStream store may hold little")
		if warned != tt.warn || !strings.Contains(logs.String(), "store_limit_mib=") {
			t.Errorf("a store on %s: warned %v; want %v, and the limit in the start's line:\n%s", tt.dir, warned, tt.warn, logs.String())
		}
	}
}
