package broker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpscope/otpscope/internal/backoff"
	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/flagenv"
	"github.com/otpscope/otpscope/internal/ops"
)

// ErrUnavailable wraps every failure to get a message durably into the stream:
// no connection, no stream, no acknowledgement in time. Callers answer 503.
var ErrUnavailable = errors.New("nats unavailable")

// ErrNotConnected: a read of the stream's state was not even asked, the
// connection being down (reconnecting, closed); Ready says so too.
var ErrNotConnected = errors.New("not connected to NATS")

// Broker is a connection to NATS and otpscope's stream, and the embedded server
// when it hosts one.
type Broker struct {
	srv     *server.Server  // nil when connected to an external server
	srvOpts *server.Options // the embedded server's, to re-enable JetStream with
	creds   []nats.Option   // what otpscope's clients authenticate with
	credsAt string          // the embedded server's credentials file
	nc      *nats.Conn
	js      jetstream.JetStream
	acks    *pubAcks
	stream  StreamConfig
	logger  *slog.Logger
	health  *health
	group   *groupCommit // nil unless the embedded single node fsyncs every write
	// deadLetters counts the dead letters stored, by source.
	deadLetters *prometheus.CounterVec
	// replicas is the stream's, as EnsureStream left it: KV buckets get it.
	replicas atomic.Int32
	// credsFrom says where the credentials came from, for when the
	// server refuses them (credentialsFrom): asked only then, since it
	// may read the credentials file again.
	credsFrom func() string
}

// Open hosts the embedded server when cfg.URL is empty, connects, and makes sure
// the stream exists with cfg.Stream's settings. name identifies the client to
// the server (nats connz).
func Open(ctx context.Context, cfg Config, name string, logger *slog.Logger) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := &Broker{stream: cfg.Stream, logger: logger, credsFrom: func() string { return credentialsFrom(cfg) }}
	b.deadLetters = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "otpscope_dead_letters_total",
		Help: "Dead letters stored in the stream (tyntec.2fa.deadletter, the console's Dead letters page), by the component that set them aside: ingest, sink, poller.",
	}, []string{"source"})
	for _, s := range DeadLetterSources { // zero series, so increase() sees the first
		b.deadLetters.WithLabelValues(s)
	}
	url := cfg.URL
	if cfg.embeddedGiven != nil && !cfg.Embedded() {
		if names := cfg.embeddedGiven(); len(names) > 0 {
			logger.Warn("settings of the embedded NATS server do nothing beside --nats-url: the external server's own configuration decides", "flags", "--"+strings.Join(names, ", --"))
		}
	}
	if !cfg.Embedded() && len(cfg.ReaderConsumers) > 0 {
		// The external server's own users decide (deploy/nats/auth.conf).
		logger.Warn("--nats-reader-consumers is the embedded server's: with --nats-url the external server's reader gets its consumers' subjects in that server's configuration (deploy/nats/auth.conf)", "consumers", strings.Join(cfg.ReaderConsumers, ","))
	}
	if cfg.Embedded() {
		srv, creds, opts, err := startServer(cfg, logger)
		if err != nil {
			return nil, err
		}
		b.srv, b.srvOpts, b.credsAt, url = srv, opts, cfg.CredentialsFile(), srv.ClientURL()
		b.creds = []nats.Option{nats.UserInfo(creds.User, creds.Password)}
		limit := opts.JetStreamMaxStore
		logger.Info("embedded NATS server started", "url", url, "store", cfg.StoreDir(), "store_limit_mib", limit>>20,
			"credentials", cfg.CredentialsFile(), "user", creds.User, "reader", creds.ReaderUser,
			"sync", cmp.Or(cfg.Sync, DefaultSync), "group_commit", cfg.GroupCommits())
		if limit > 0 && limit < smallStore {
			// Fixed at start from the disk's free space: a small disk is a
			// full store soon, and then every webhook is refused 503.
			logger.Warn("the embedded JetStream store may hold little: its limit, fixed at start, is 75% of the disk's free space then plus what the store holds",
				"store", cfg.StoreDir(), "store_limit_mib", limit>>20, "do", "free disk space or give the data directory a larger disk, then restart")
		}
	} else if user, password, ok := clientCredentials(cfg); ok {
		// Credentials in a server's URL still take precedence over these.
		b.creds = []nats.Option{nats.UserInfo(user, password)}
	}
	opts := b.creds
	if b.srv != nil {
		// The embedded server is in this process: talk to it over an
		// in-memory pipe rather than loopback TCP, which spares two
		// syscalls and the kernel's TCP path per publish and per PubAck.
		opts = append(opts[:len(opts):len(opts)], nats.InProcessServer(b.srv))
	}
	nc, err := Connect(url, name, logger, opts...)
	if err != nil {
		b.Close()
		return nil, err
	}
	b.nc = nc
	if b.js, err = jetstream.New(nc); err != nil {
		b.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	if b.acks, err = newPubAcks(nc); err != nil {
		b.Close()
		return nil, err
	}
	if cfg.GroupCommits() {
		b.group = newGroupCommit(nc, b.acks, cfg.Stream.Name)
	}
	if err := b.ensureStreamRetrying(ctx); err != nil {
		b.Close()
		return nil, err
	}
	b.health = b.watch()
	return b, nil
}

// smallStore is the embedded store's limit under which the start warns:
// about two million webhooks' events.
const smallStore = 1 << 30

// ServiceInbox is the prefix of the service user's reply subjects. Not
// NATS' default _INBOX: the read-only user may subscribe to _INBOX.> (its
// own requests' replies arrive there), and would otherwise receive the
// replies to otpscope's own requests too — KV values such as the shared
// pseudonym key, consumer state.
const ServiceInbox = "_INBOX_otpscope"

// Connect dials NATS with the reconnect behaviour every otpscope service wants:
// reconnect forever, quickly, and keep trying when the first dial fails (a NATS
// cluster restarting under us is routine), replies under ServiceInbox. opts
// add to these (credentials).
func Connect(url, name string, logger *slog.Logger, opts ...nats.Option) (*nats.Conn, error) {
	// Each kind at most every 10 s: a pull consumer's "consumer not
	// active" comes twice every 10 s for as long as NATS is away.
	asyncErrs := ops.NewSparse(logger, "nats error", "times")
	nc, err := nats.Connect(url, append([]nats.Option{
		nats.Name(name),
		nats.CustomInboxPrefix(ServiceInbox),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil: we closed it
				logger.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			logger.Info("nats reconnected", "url", c.ConnectedUrlRedacted())
		}),
		// Without these the log never says why: a refused password shows
		// only as requests failing on a closed connection.
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			asyncErrs.WarnOf(err.Error(), "err", err)
		}),
		// Only refused credentials: after a close of our own the last
		// error is whatever the connection met before.
		nats.ClosedHandler(func(c *nats.Conn) {
			if err := c.LastError(); authError(err) != nil {
				logger.Error("NATS refused the credentials; connection closed for good", "err", err)
			}
		}),
	}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats %s: %w", flagenv.Shown("nats-url", url), err)
	}
	return nc, nil
}

// ensureStreamRetrying creates or updates the stream, retrying (see
// untilAnswered): a cluster may still be electing a meta leader when a
// service starts.
func (b *Broker) ensureStreamRetrying(ctx context.Context) error {
	err := b.untilAnswered(ctx, "stream "+b.stream.Name, func(ctx context.Context) error {
		err := b.EnsureStream(ctx)
		if b.srv != nil && storeTooSmall(err) {
			b.reworkStoreLimit()
		}
		return err
	})
	if errors.Is(err, ErrCredentialsRefused) {
		return err // says all; the stream is beside the point
	}
	if err != nil {
		return fmt.Errorf("ensure stream %s: %w", b.stream.Name, err)
	}
	return nil
}

// untilAnswered runs try, which makes what (the stream, a KV bucket) through
// the JetStream API, until it succeeds or ctx ends. JetStream may be
// restarting, electing a leader, short of peers, or slow to answer. The
// first try gets 1 s, each next one twice the last, up to 10 s (a loaded
// disk has taken more than the API's default 5 s): a fresh cluster drops
// the requests it gets before it has a meta leader, and a first try of 10 s
// made every first start wait that long for an answer that never came.
// Only a configuration the server finds invalid (err_code 10052) and a
// closed connection (refused credentials) are not tried again: no wait
// makes them right.
func (b *Broker) untilAnswered(ctx context.Context, what string, try func(context.Context) error) error {
	timeout := time.Second
	return backoff.Retry(ctx, backoff.Policy{First: 100 * time.Millisecond, Max: 5 * time.Second}, func() error {
		tctx, cancel := context.WithTimeout(ctx, timeout)
		timeout = min(2*timeout, 10*time.Second)
		defer cancel()
		err := b.withCause(try(tctx))
		var api *jetstream.APIError
		switch {
		case err == nil:
		case errors.As(err, &api) && api.ErrorCode == errInvalidConfig:
			return backoff.Permanent(err)
		case b.closed():
			return backoff.Permanent(b.closedError(err))
		default:
			b.logger.Warn("JetStream not ready; retrying", "what", what, "err", err)
		}
		return err
	})
}

// errInvalidConfig is JetStream's JSStreamInvalidConfigF.
const errInvalidConfig jetstream.ErrorCode = 10052

// JetStream's answers to a stream its store's limit cannot hold:
// JSInsufficientResourcesErr and JSStorageResourcesExceededErr.
const (
	errInsufficientResources jetstream.ErrorCode = 10023
	errStorageExceeded       jetstream.ErrorCode = 10047
)

func storeTooSmall(err error) bool {
	var api *jetstream.APIError
	return errors.As(err, &api) && (api.ErrorCode == errInsufficientResources || api.ErrorCode == errStorageExceeded)
}

// reworkStoreLimit works the embedded store's limit out again from the
// disk's free space now, restarting JetStream with it. Fixed at a start on
// a full disk, the limit was under what the stream held, the stream's
// update refused, and the start retried for ever with it — 503 to every
// webhook — long after the disk was freed.
func (b *Broker) reworkStoreLimit() {
	was := b.srvOpts.JetStreamMaxStore
	b.srvOpts.JetStreamMaxStore = storeLimit(b.srvOpts.StoreDir)
	err := b.reenableJetStream()
	js := b.srv.JetStreamConfig()
	if err != nil || js == nil || js.MaxStore <= 0 {
		b.srvOpts.JetStreamMaxStore = was
		b.logger.Warn("the embedded JetStream store's limit could not be worked out again", "err", err)
		return
	}
	b.srvOpts.JetStreamMaxStore = js.MaxStore
	if js.MaxStore != was {
		b.logger.Info("the embedded JetStream store's limit worked out again from the disk's free space", "store_limit_mib", js.MaxStore>>20, "was_mib", was>>20)
	}
}

// EnsureStream creates otpscope's stream with the configured settings —
// file storage, the duplicate window, replicas and maximum age — or, when
// it exists, updates only the settings that are not this process's
// defaults (StreamConfig.Defaulted) and keeps the rest as they are, along
// with whatever else an operator set on it (placement, limits,
// compression).
func (b *Broker) EnsureStream(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := b.js.Stream(ctx, b.stream.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		cfg := jetstream.StreamConfig{
			Name:        b.stream.Name,
			Description: streamDescription,
			Subjects:    []string{events.SubjectAll},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			Duplicates:  b.stream.DuplicateWindow,
			Replicas:    b.stream.Replicas,
			MaxAge:      b.stream.MaxAge,
			MaxBytes:    -1,
			Discard:     jetstream.DiscardOld,
			// Group commit publishes atomic batches (groupcommit.go).
			AllowAtomicPublish: b.group != nil,
		}
		if n, ok := b.streamMaxBytes(); ok {
			cfg.MaxBytes = n
		}
		// Another process creating it at the same moment with other
		// settings fails this; the retry finds it.
		if _, err := b.js.CreateStream(ctx, cfg); err != nil {
			return fmt.Errorf("create stream %s: %w", b.stream.Name, err)
		}
		b.replicas.Store(int32(cfg.Replicas))
		return nil
	}
	if err != nil {
		return fmt.Errorf("stream %s: %w", b.stream.Name, err)
	}
	have := s.CachedInfo().Config
	cfg := have
	cfg.Description, cfg.Subjects = streamDescription, []string{events.SubjectAll}
	cfg.AllowAtomicPublish = b.group != nil
	defaulted := b.stream.Defaulted
	if !defaulted.DuplicateWindow {
		cfg.Duplicates = b.stream.DuplicateWindow
	}
	if !defaulted.Replicas {
		cfg.Replicas = b.stream.Replicas
		if cfg.Replicas < have.Replicas {
			b.logger.Warn("lowering the stream's replicas, as --stream-replicas says", "stream", cfg.Name, "from", have.Replicas, "to", cfg.Replicas)
		}
	}
	if !defaulted.MaxAge {
		cfg.MaxAge = b.stream.MaxAge
	}
	n, bounded := b.streamMaxBytes()
	held := s.CachedInfo().State.Bytes
	if bounded && b.stream.Defaulted.MaxBytes && n > 0 && held > uint64(n) {
		// A default bound worked out at start never trims what the stream
		// holds: the sink may not have read it yet. An operator's
		// --stream-max-bytes does (warned below).
		n = int64(held)
	}
	if bounded {
		cfg.MaxBytes, cfg.Discard = n, jetstream.DiscardOld
	}
	if kept := keptSettings(b.stream, cfg); len(kept) > 0 {
		b.logger.Info("the existing stream keeps settings this process has other defaults for (set them to change it)", append([]any{"stream", cfg.Name}, kept...)...)
	}
	if _, err := b.js.UpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("update stream %s: %w", b.stream.Name, err)
	}
	// Said once the bound took: a refused update trims nothing, and the
	// start's retries said it every 5 s.
	if bounded && n > 0 && held > uint64(n) {
		b.logger.Warn("the stream holds more than it may keep now: its oldest messages go", "stream", cfg.Name,
			"bytes", held, "stream_max_bytes", n, "first", s.CachedInfo().State.FirstTime.UTC().Format(time.RFC3339))
	}
	b.replicas.Store(int32(cfg.Replicas))
	return nil
}

const streamDescription = "otpscope: tyntec 2FA delivery events and everything derived from them"

// streamMaxBytes is the stream's bound in bytes (-1 for none) and whether
// this process sets it: given (--stream-max-bytes), or by default on the
// embedded server StoreShare of its store, worked out again at each start
// (the store's limit is the disk's at start). An external server's stream
// keeps its own bound by default, as it keeps its other settings.
func (b *Broker) streamMaxBytes() (int64, bool) {
	if !b.stream.Defaulted.MaxBytes {
		if b.stream.MaxBytes == 0 {
			return -1, true
		}
		return b.stream.MaxBytes, true
	}
	if b.srv == nil || b.srvOpts.JetStreamMaxStore <= 0 {
		return 0, false
	}
	return int64(float64(b.srvOpts.JetStreamMaxStore) * StoreShare), true
}

// keptSettings names, as log attributes, the settings of the stream cfg
// that differ from want's defaults (so kept).
func keptSettings(want StreamConfig, cfg jetstream.StreamConfig) []any {
	var kept []any
	if want.Defaulted.DuplicateWindow && cfg.Duplicates != want.DuplicateWindow {
		kept = append(kept, "stream_duplicate_window", cfg.Duplicates.String())
	}
	if want.Defaulted.Replicas && cfg.Replicas != want.Replicas {
		kept = append(kept, "stream_replicas", cfg.Replicas)
	}
	if want.Defaulted.MaxAge && cfg.MaxAge != want.MaxAge {
		kept = append(kept, "stream_max_age", cfg.MaxAge.String())
	}
	return kept
}

// Publish sends msgs to the stream and returns once JetStream acknowledged every
// one of them, i.e. they are stored (and replicated, on a cluster). Any failure,
// including ctx ending first, wraps ErrUnavailable. Messages published before a
// failure are not rolled back; their ids make a retry harmless.
func (b *Broker) Publish(ctx context.Context, msgs ...events.Message) error {
	_, err := b.PublishNew(ctx, 0, msgs...)
	return err
}

// PublishNew is Publish that also tells which messages the stream stored for
// the first time: stored[i] is false when JetStream dropped msgs[i] as a
// duplicate of one within the duplicate window (acknowledged all the same).
// It waits at most timeout for the acknowledgements (0: for as long as ctx
// lasts): a timer rather than a context with a deadline, whose timer and
// registration with its parent cost a webhook 2.6 % of ingest's CPU.
func (b *Broker) PublishNew(ctx context.Context, timeout time.Duration, msgs ...events.Message) (stored []bool, err error) {
	if st := b.nc.Status(); st != nats.CONNECTED {
		return nil, fmt.Errorf("%w: connection %s", ErrUnavailable, st)
	}
	// While the watcher knows of a fault, fail at once — after a fresh look,
	// so the first publish after recovery does not wait for its next tick.
	if b.knownFault() != nil {
		if f := b.jetStreamFault(); f != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, f)
		}
	}
	// No Nats-Expected-Stream header: the stream would store it with every
	// message, and every consumer would parse a ninth header (nats.go's
	// header map outgrows its small form at nine; 5 % of the sink's CPU).
	// The PubAck names the stream that stored the message instead, and one
	// not ours is an error: JetStream forbids overlapping subjects within an
	// account, so that happens only when ours is gone and another caught them.
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	nms := make([]*nats.Msg, len(msgs))
	for i, m := range msgs {
		nms[i] = NATSMsg(m)
	}
	var out sent
	if g := b.group; g != nil && g.busy() {
		queued := g.enqueue(nms)
		select {
		case out = <-queued:
		case <-ctx.Done():
			b.acks.forgetWhenSent(queued)
			return nil, fmt.Errorf("%w: waiting to publish: %v", ErrUnavailable, ctx.Err())
		case <-expired:
			b.acks.forgetWhenSent(queued)
			return nil, fmt.Errorf("%w: waiting to publish: not sent within %v", ErrUnavailable, timeout)
		}
	} else {
		out = publishEach(b.acks, nms)
	}
	stored = make([]bool, len(msgs))
	switch {
	case out.err != nil:
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, out.err)
	case out.batched:
		// Stored in one atomic batch, which a duplicate would have failed.
		for i := range stored {
			stored[i] = true
		}
		b.countDeadLetters(msgs, stored)
		return stored, nil
	}
	for i, w := range out.waits {
		select {
		case r := <-w.result:
			switch {
			case r.err != nil:
				b.acks.forgetAll(out.waits[i+1:])
				return nil, fmt.Errorf("%w: publish %s: %v", ErrUnavailable, nms[i].Subject, r.err)
			case r.ack.Stream != b.stream.Name:
				b.acks.forgetAll(out.waits[i+1:])
				return nil, fmt.Errorf("%w: publish %s: stored by stream %q, not %q", ErrUnavailable, nms[i].Subject, r.ack.Stream, b.stream.Name)
			}
			stored[i] = !r.ack.Duplicate
		case <-ctx.Done():
			b.acks.forgetAll(out.waits[i:])
			return nil, fmt.Errorf("%w: waiting for acknowledgement: %v", ErrUnavailable, ctx.Err())
		case <-expired:
			b.acks.forgetAll(out.waits[i:])
			return nil, fmt.Errorf("%w: waiting for acknowledgement: no answer within %v", ErrUnavailable, timeout)
		}
	}
	b.countDeadLetters(msgs, stored)
	return stored, nil
}

// DeadLetterSources are the components that publish dead letters, as
// their ce-source names them: ingest (a request it refused), sink (an event
// ClickHouse cannot take), poller (a message it cannot read).
var DeadLetterSources = []string{"ingest", "sink", "poller"}

// countDeadLetters counts the dead letters among msgs that the stream
// stored (a duplicate is one counted already). Every dead letter is
// published through here, so otpscope_dead_letters_total is what the
// Dead letters page lists.
func (b *Broker) countDeadLetters(msgs []events.Message, stored []bool) {
	for i, m := range msgs {
		if m.Subject != events.SubjectDeadLetter || !stored[i] || b.deadLetters == nil {
			continue
		}
		source := ""
		if v := m.Header[events.HeaderSource]; len(v) > 0 {
			source = strings.TrimPrefix(v[0], "/otpscope/")
		}
		b.deadLetters.WithLabelValues(source).Inc()
	}
}

// NATSMsg turns an event message into a NATS message: its headers are
// sent as they are when they hold its Nats-Msg-Id (events.NewMessage's
// do), else a copy with it added.
func NATSMsg(m events.Message) *nats.Msg {
	h := nats.Header(m.Header)
	if h.Get(events.HeaderMsgID) != m.ID {
		h = make(nats.Header, len(m.Header)+1)
		maps.Copy(h, m.Header)
		h[events.HeaderMsgID] = []string{m.ID}
	}
	return &nats.Msg{Subject: m.Subject, Header: h, Data: m.Data}
}

// Ready reports whether the connection is up, the stream is present and
// JetStream can store into it: on the embedded server, JetStream is enabled,
// the stream has no write error (a full disk) and the store is below its
// limit. The error says which.
func (b *Broker) Ready(ctx context.Context) error {
	return b.ready(ctx, b.jetStreamFault())
}

// ready is Ready with the embedded server's fault f already known.
func (b *Broker) ready(ctx context.Context, f *jsFault) error {
	if st := b.nc.Status(); st != nats.CONNECTED {
		if last := b.nc.LastError(); last != nil { // why: refused credentials
			return fmt.Errorf("nats connection %s: %w", st, last)
		}
		return fmt.Errorf("nats connection %s", st)
	}
	if f != nil {
		return fmt.Errorf("%w: %w", ErrJetStreamDown, f)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s, err := b.js.Stream(ctx, b.stream.Name)
	if err != nil {
		return fmt.Errorf("stream %s: %w", b.stream.Name, err)
	}
	// On a cluster a replica still answers for a stream that has lost
	// its quorum, which can store nothing until a leader is elected.
	if info := s.CachedInfo(); info.Config.Replicas > 1 && info.Cluster != nil && info.Cluster.Leader == "" {
		return fmt.Errorf("stream %s has no leader (a majority of its %d replicas down?): nothing can be stored", b.stream.Name, info.Config.Replicas)
	}
	return nil
}

// StreamName is the name of otpscope's stream.
func (b *Broker) StreamName() string { return b.stream.Name }

// StreamMsgs is how many messages the stream holds.
func (b *Broker) StreamMsgs(ctx context.Context) (uint64, error) {
	s, err := b.js.Stream(ctx, b.stream.Name)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", b.stream.Name, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("stream %s info: %w", b.stream.Name, err)
	}
	return info.State.Msgs, nil
}

// StreamState is what the stream holds: how many messages, and when the
// newest was stored (zero when empty).
func (b *Broker) StreamState(ctx context.Context) (msgs uint64, last time.Time, err error) {
	info, err := b.streamInfo(ctx)
	if err != nil {
		return 0, time.Time{}, err
	}
	return info.State.Msgs, info.State.LastTime, nil
}

// StreamIdentity is the stream's name and when JetStream created it, which
// tells it from one of the same name created anew (a rebuilt machine's).
func (b *Broker) StreamIdentity(ctx context.Context) (string, time.Time, error) {
	info, err := b.streamInfo(ctx)
	if err != nil {
		return "", time.Time{}, err
	}
	return b.stream.Name, info.Created, nil
}

// streamInfo asks the server for the stream's info now: Stream asks for
// it, and keeps it.
func (b *Broker) streamInfo(ctx context.Context) (*jetstream.StreamInfo, error) {
	// Said at once, not as the request's deadline exceeded.
	if st := b.nc.Status(); st != nats.CONNECTED {
		return nil, fmt.Errorf("stream %s: %w (connection %s)", b.stream.Name, ErrNotConnected, st)
	}
	s, err := b.js.Stream(ctx, b.stream.Name)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", b.stream.Name, err)
	}
	return s.CachedInfo(), nil
}

// CredentialsFile is where the embedded server's users and passwords are
// kept, or "" with an external server.
func (b *Broker) CredentialsFile() string { return b.credsAt }

// Embedded reports whether this broker hosts the NATS server itself.
func (b *Broker) Embedded() bool { return b.srv != nil }

// Subscribe delivers the messages published on subject to fn, from now until
// the returned function is called: a plain NATS subscription, for watching
// (tests, benchmarks), not for consuming the stream.
func (b *Broker) Subscribe(subject string, fn func(*nats.Msg)) (unsubscribe func(), err error) {
	sub, err := b.nc.Subscribe(subject, fn)
	if err != nil {
		return nil, fmt.Errorf("subscribe to %s: %w", subject, err)
	}
	if err := b.nc.Flush(); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("subscribe to %s: %w", subject, err)
	}
	return func() { _ = sub.Unsubscribe() }, nil
}

// Connect dials a connection of its own to this broker's NATS, with its
// credentials (see the package function Connect).
func (b *Broker) Connect(name string) (*nats.Conn, error) {
	url := b.nc.ConnectedUrl()
	if b.srv != nil {
		url = b.srv.ClientURL()
	}
	return Connect(url, name, b.logger, b.creds...)
}

// MaxPayload is the largest message the server takes (its max_payload).
func (b *Broker) MaxPayload() int64 { return b.nc.MaxPayload() }

// ClientURL is the URL other processes use to reach this broker's NATS,
// without credentials.
func (b *Broker) ClientURL() string {
	if b.srv != nil {
		return b.srv.ClientURL()
	}
	return b.nc.ConnectedUrlRedacted()
}

// Close stops the JetStream watcher, flushes and closes the connection, then
// shuts the embedded server down.
func (b *Broker) Close() {
	if b.health != nil {
		b.health.stop()
	}
	if b.group != nil {
		b.group.close()
	}
	if b.nc != nil {
		if err := b.nc.Drain(); err != nil {
			b.nc.Close()
		}
		for i := 0; i < 50 && !b.nc.IsClosed(); i++ {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if b.srv != nil {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
	}
}
