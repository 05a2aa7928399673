package broker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpscope/otpscope/internal/backoff"
)

// ErrJetStreamDown is what Ready wraps when the embedded server's JetStream
// cannot store: disabled, a stream with a write error, or its store full.
var ErrJetStreamDown = errors.New("jetstream cannot store")

// How often the watcher looks, and how long it leaves JetStream to settle
// after restarting it before trying again; tests change them.
var (
	watchEvery         = time.Second
	watchEveryExternal = 5 * time.Second
	reenableAfter      = 5 * time.Second
	// While restarts do not clear a fault, the wait between them doubles
	// from reenableAfter up to this: a stream the server cannot read back
	// (a corrupt otpscope stream) stays a fault through every restart, and
	// each restart interrupts every JetStream client (consumers, KV
	// watches). A disk that was full heals with the first.
	reenableAtMost = 5 * time.Minute
)

// probeBytes is what the watcher writes to the store directory to learn
// whether the disk takes writes again: more than a few webhooks' worth.
const probeBytes = 1 << 20

// jsFault is why JetStream cannot store, when the embedded server says so.
type jsFault struct {
	reason string
	// rebuild: only disabling and enabling JetStream clears it (JetStream
	// shut itself down, or a stream keeps its write error until reloaded);
	// otherwise it clears by itself (the store falls below its limit as
	// messages age out).
	rebuild bool
}

func (f *jsFault) Error() string { return f.reason }

// jetStreamFault is nil when the embedded server's JetStream can store (and
// always with an external server, which Ready only asks about the stream).
func (b *Broker) jetStreamFault() *jsFault {
	f, _ := b.jetStreamHealth()
	return f
}

// jetStreamHealth is jetStreamFault, and the other streams the embedded
// server has a directory for but could not recover (a corrupt KV bucket):
// they are no fault of the stream's — webhooks are still stored — and
// restarting JetStream does not recover them, so the watcher only logs them.
func (b *Broker) jetStreamHealth() (fault *jsFault, unrecovered []string) {
	if b.srv == nil {
		return nil, nil
	}
	if !b.srv.JetStreamEnabled() {
		return &jsFault{reason: "JetStream is disabled on the embedded server (out of disk space, or the store is not writable)", rebuild: true}, nil
	}
	// Alone, the server checks every stream for a write error (the disk was
	// full once: the stream refuses writes until reloaded). In a cluster it
	// would also report elections in progress, which are no fault of ours.
	h := b.srv.Healthz(&server.HealthzOptions{JSEnabledOnly: b.srvOpts.Cluster.Name != "", Details: true})
	var reasons []string
	for _, e := range h.Errors {
		if e.Type == server.HealthzErrorStream && e.Stream != b.stream.Name && strings.HasSuffix(e.Error, "could not be recovered") {
			unrecovered = append(unrecovered, e.Stream)
			continue
		}
		reasons = append(reasons, e.Error)
	}
	if len(h.Errors) == 0 && h.Error != "" {
		reasons = append(reasons, h.Error)
	}
	if len(reasons) > 0 {
		return &jsFault{reason: "embedded JetStream: " + strings.Join(reasons, "; "), rebuild: true}, unrecovered
	}
	if jsz, err := b.srv.Jsz(nil); err == nil && jsz.Config.MaxStore > 0 {
		if free := jsz.Config.MaxStore - int64(jsz.Store); free < 64<<10 {
			return &jsFault{reason: fmt.Sprintf("embedded JetStream store full: %d of %d bytes used", jsz.Store, jsz.Config.MaxStore)}, unrecovered
		}
	}
	return nil, unrecovered
}

// health is the watcher of JetStream's state: it logs each change, keeps the
// gauge, and on the embedded server re-enables JetStream once the disk takes
// writes again, so a full disk heals without a restart.
type health struct {
	ok atomic.Bool
	// fault is the embedded server's last known fault: Publish fails at once
	// while there is one, rather than waiting for an acknowledgement that a
	// stream with a write error never sends.
	fault  atomic.Pointer[jsFault]
	cancel context.CancelFunc
	wg     sync.WaitGroup
	gauge  prometheus.GaugeFunc

	// The watcher's own: the fault its last look saw (confirmed or not),
	// when it last restarted JetStream, how many times since the last look
	// without a fault, and how many in all.
	seen         *jsFault
	seenStreams  []string // the other streams the last look saw unrecovered
	unrecovered  string   // the other streams last logged as unrecoverable
	lastReenable time.Time
	inRow        int
	restarts     prometheus.Counter
	now          func() time.Time // time.Now; tests move it by hand
}

func (b *Broker) watch() *health {
	h := &health{now: time.Now}
	h.ok.Store(true)
	h.restarts = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "otpscope_nats_jetstream_restarts_total",
		Help: "Times the watcher restarted the embedded server's JetStream to clear a fault (a full disk that takes writes again; again and again, less often each time, while a stream cannot be loaded).",
	})
	h.gauge = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "otpscope_nats_jetstream_ok",
		Help: "1 while NATS JetStream takes writes into the stream (the embedded server's JetStream enabled, no write error, store not full), else 0.",
	}, func() float64 {
		if h.ok.Load() {
			return 1
		}
		return 0
	})
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		b.watchLoop(ctx, h)
	}()
	return h
}

func (h *health) stop() {
	h.cancel()
	h.wg.Wait()
}

func (b *Broker) watchLoop(ctx context.Context, h *health) {
	every := watchEveryExternal
	if b.srv != nil {
		every = watchEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		b.look(ctx, h)
	}
}

// look is one look of the watcher: it takes the fault it confirms, logs a
// change of state and restarts JetStream when only that clears the fault.
// Only the watcher's goroutine (or a test driving it) calls it.
func (b *Broker) look(ctx context.Context, h *health) {
	f, unrecovered := b.jetStreamHealth()
	f = h.confirm(f)
	if u := strings.Join(h.confirmStreams(unrecovered), ", "); u != h.unrecovered {
		h.unrecovered = u
		if u != "" {
			b.logger.Error("nats: streams of the embedded server could not be recovered from the store; their users fail until they are repaired or removed", "streams", u, "store", b.srvOpts.StoreDir)
		}
	}
	h.fault.Store(f)
	err := b.ready(ctx, f)
	if ctx.Err() != nil {
		return
	}
	if ok := err == nil; ok != h.ok.Load() {
		h.ok.Store(ok)
		switch {
		case ok:
			b.logger.Info("nats: JetStream takes writes again", "stream", b.stream.Name)
		case errors.Is(err, ErrJetStreamDown):
			b.logger.Error("nats: JetStream cannot store; webhooks get 503 until it recovers", "stream", b.stream.Name, "err", err)
		default:
			b.logger.Warn("nats: not ready", "stream", b.stream.Name, "err", err)
		}
	}
	if f == nil {
		h.inRow = 0
	}
	if f == nil || !f.rebuild || h.now().Sub(h.lastReenable) < h.restartWait() {
		return
	}
	if perr := probeWrite(b.srvOpts.StoreDir); perr != nil {
		b.logger.Debug("nats: the store still refuses writes", "err", perr)
		return
	}
	h.lastReenable = h.now()
	h.inRow++
	h.restarts.Inc()
	if h.inRow == 1 {
		b.logger.Warn("nats: the store takes writes again; restarting JetStream", "reason", f.reason)
	} else {
		b.logger.Error("nats: the fault outlasted the restarts of JetStream; restarting it again, less often each time (is a stream's store damaged?)",
			"reason", f.reason, "restarts_in_a_row", h.inRow, "next_after", h.restartWait())
	}
	if err := b.reenableJetStream(); err != nil {
		b.logger.Error("nats: restart JetStream", "err", err)
	}
}

// restartWait is how long after the last restart of JetStream the watcher
// may restart it again: reenableAfter, doubled for each further restart the
// fault outlasted, up to reenableAtMost.
func (h *health) restartWait() time.Duration {
	return backoff.Policy{First: reenableAfter, Max: max(reenableAfter, reenableAtMost)}.Delay(max(h.inRow, 1))
}

// confirm returns the fault f when the look before saw one too, else nil:
// the watcher acts on faults that last, not on what the server's health
// check sees in passing while JetStream changes under it (its stream
// directories are listed, then looked up: one being created "could not be
// recovered" for an instant). Restarting JetStream then would break the
// very calls that changed it.
func (h *health) confirm(f *jsFault) *jsFault {
	seen := h.seen
	h.seen = f
	if seen == nil {
		return nil
	}
	return f
}

// confirmStreams returns the unrecovered streams the look before saw too,
// for the same reason as confirm: a KV bucket being created at start is
// "unrecovered" to one look, and logging it as an error then sent a user of a
// fresh data directory looking for damage that was not there.
func (h *health) confirmStreams(unrecovered []string) []string {
	seen := h.seenStreams
	h.seenStreams = unrecovered
	var lasting []string
	for _, s := range unrecovered {
		if slices.Contains(seen, s) {
			lasting = append(lasting, s)
		}
	}
	return lasting
}

// reenableJetStream shuts the embedded server's JetStream down, if it is not
// already, and starts it again from the store on disk, the way the server's
// configuration reload does; clients stay connected.
func (b *Broker) reenableJetStream() error {
	if b.srv.JetStreamEnabled() {
		if err := b.srv.ShutdownJetStream(); err != nil {
			return fmt.Errorf("shut JetStream down: %w", err)
		}
	}
	// The same options: the reload sees JetStream configured but not running
	// and restarts it.
	if err := b.srv.ReloadOptions(b.srvOpts.Clone()); err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	if !b.srv.JetStreamEnabled() {
		return errors.New("JetStream did not start")
	}
	return nil
}

// probeWrite writes and syncs probeBytes in dir, then removes them: whether
// the disk takes writes again.
func probeWrite(dir string) error {
	f, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = f.Write(make([]byte, probeBytes))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("probe %s: %w", filepath.Base(f.Name()), err)
	}
	return nil
}

// knownFault is the embedded server's fault the watcher saw last, or nil.
func (b *Broker) knownFault() *jsFault {
	if b.health == nil {
		return nil
	}
	return b.health.fault.Load()
}

// Collectors are the broker's metrics, for the process's registry: the gauge
// otpscope_nats_jetstream_ok, the watcher's restarts, the dead letters
// stored, group commit's counters and the store's fill.
func (b *Broker) Collectors() []prometheus.Collector {
	return append(append([]prometheus.Collector{b.health.gauge, b.health.restarts, b.deadLetters}, b.batchCounters()...), storeCollector{b})
}
