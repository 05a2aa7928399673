package poller

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/otpscope/otpscope/internal/broker"
	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/flagenv"
	"github.com/otpscope/otpscope/internal/ops"
	"github.com/otpscope/otpscope/internal/pushapi"
	"github.com/otpscope/otpscope/internal/reload"
)

// Push approvals: the provider calls back when a request is created and
// when it settles; a settling callback that never came (dropped, or
// otpscope was down past the provider's retries) leaves the request pending
// forever. The poller remembers every pending request it heard of and, once
// it is past its secondsToExpire plus PushConfig.Grace, reads it by uuid
// from the push API within its own rate budget, and publishes what it finds
// (source poll), as it recovers lost OTP webhooks.

// BucketPush is the KV bucket of push approval requests not known to be
// settled, one key per request.
const BucketPush = "otpscope_poller_push"

// DurablePush is the durable consumer of push approval statuses.
const DurablePush = "otpscope-poller-push"

// PushConfig is the push API the poller reads lost settling callbacks from;
// off without BaseURL and APIKey.
type PushConfig struct {
	BaseURL string
	APIKey  string
	// APIKeyFile is the file APIKey was read from
	// (OTPSCOPE_PUSH_API_KEY_FILE), read again when it changes.
	APIKeyFile string
	// RateLimit calls per RatePeriod: the push API's own budget, apart
	// from tyntec's.
	RateLimit  int
	RatePeriod time.Duration
	// Grace after a request's expiry before its settling callback counts as
	// lost (NoWait: none); Recheck between two reads of one request that was still
	// pending; MaxPolls reads before the poller gives up on it.
	Grace    time.Duration
	Recheck  time.Duration
	MaxPolls int
	Timeout  time.Duration
}

// Defaults of PushConfig.
const (
	DefaultPushRateLimit  = 60
	DefaultPushRatePeriod = time.Minute
	DefaultPushGrace      = time.Minute
	DefaultPushRecheck    = 5 * time.Minute
	DefaultPushMaxPolls   = 5
	// defaultPushExpiry is the validity of a request that did not say
	// (the simulator's default, the seed's example ttl).
	defaultPushExpiry = 300 * time.Second
)

// Enabled reports whether the push API is configured.
func (c *PushConfig) Enabled() bool { return c.BaseURL != "" && c.APIKey != "" }

func (c *PushConfig) registerFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.BaseURL, "push-url", "", "push-approval API base URL, for reading requests whose settling callback is missing (empty = off)")
	fs.StringVar(&c.APIKey, "push-api-key", "", "push-approval API key (X-TFA-API-Key; from $OTPSCOPE_PUSH_API_KEY_FILE read again when it changes)")
	flagenv.RecordFile(fs, "push-api-key", &c.APIKeyFile)
	fs.IntVar(&c.RateLimit, "push-rate-limit", DefaultPushRateLimit, "push API calls allowed per --push-rate-period")
	fs.DurationVar(&c.RatePeriod, "push-rate-period", DefaultPushRatePeriod, "push API rate-limit period")
	fs.Var(waitVar(&c.Grace, DefaultPushGrace), "push-grace", "`duration` to wait after a push request's expiry before reading it by uuid (0 = none)")
	fs.DurationVar(&c.Recheck, "push-recheck", DefaultPushRecheck, "least time between two reads of a push request still pending")
	fs.IntVar(&c.MaxPolls, "push-max-polls", DefaultPushMaxPolls, "reads of one push request before giving up on it")
	fs.DurationVar(&c.Timeout, "push-timeout", 10*time.Second, "timeout of one push API request")
	// PushConfig's 0 is the default; given, 0 is refused rather than run as it.
	flagenv.Positive(fs, "push-rate-limit", "push-rate-period", "push-recheck", "push-max-polls", "push-timeout")
}

func (c *PushConfig) validate() error {
	if (c.BaseURL == "") != (c.APIKey == "") {
		return errors.New("push-url and push-api-key go together: set both, or neither (off)")
	}
	if !c.Enabled() {
		return nil
	}
	if err := checkURL(c.BaseURL); err != nil {
		return fmt.Errorf("push-url: %w", err)
	}
	if c.RateLimit < 1 || c.RatePeriod <= 0 || c.Grace < 0 || c.Recheck <= 0 || c.MaxPolls < 1 || c.Timeout <= 0 {
		return errors.New("push-rate-limit, push-rate-period, push-recheck, push-max-polls and push-timeout must be positive, push-grace not negative")
	}
	return nil
}

// pushRecord is the value of a request's key in BucketPush.
type pushRecord struct {
	UUID      string    `json:"uuid"`
	ExpiresAt time.Time `json:"expiresAt"`
	Polls     int       `json:"polls,omitempty"`
	LastPoll  time.Time `json:"lastPoll,omitzero"`
	// Settled marks a request whose settling status arrived; the key stays
	// a while so that a pending callback arriving after it (reordered)
	// cannot open it again.
	Settled   bool      `json:"settled,omitempty"`
	SettledAt time.Time `json:"settledAt,omitzero"`
}

// pushWatch tracks push requests (every replica) and reads the lost ones
// (the leader).
type pushWatch struct {
	cfg     PushConfig
	api     *pushapi.Client
	limiter *rate.Limiter
	kv      jetstream.KeyValue
	cons    *broker.Consumer
	pub     publisher
	now     func() time.Time
	logger  *slog.Logger
	polls   *prometheus.CounterVec
	// unknown logs requests the push API does not know sparsely: after
	// its restart, or with a wrong base URL, every one is.
	unknown *ops.Sparse
}

// Results of reading a request, the label of otpscope_poller_push_polls_total.
const (
	pushRecovered = "recovered" // settled: published
	pushPending   = "pending"   // still pending: read again later
	pushNotFound  = "not_found" // the API does not know it: forgotten
	pushError     = "error"
	pushGaveUp    = "gave_up" // read MaxPolls times, still pending
)

func newPushWatch(ctx context.Context, cfg Config, b *broker.Broker, pub publisher, logger *slog.Logger, reg prometheus.Registerer, startAt time.Time) (*pushWatch, error) {
	pc := cfg.Push
	api, err := pushapi.New(pc.BaseURL, reload.Text("push API key", pc.APIKey, pc.APIKeyFile, logger).Get, pc.Timeout, cfg.Now)
	if err != nil {
		return nil, err
	}
	kv, err := b.KeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: BucketPush, Description: "otpscope poller: push approval requests not known to be settled",
		History: 1, TTL: cfg.StateTTL, Storage: jetstream.FileStorage,
	})
	if err != nil {
		return nil, err
	}
	cons, err := b.Consumer(ctx, consumerSpec(DurablePush, "otpscope poller: push approval statuses into the push requests it may read", []string{events.SubjectPushAll}, startAt))
	if err != nil {
		return nil, err
	}
	polls := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "otpscope_poller_push_polls_total",
		Help: "Push approval requests read by uuid because their settling callback was missing, by result (recovered, pending, not_found, error, gave_up).",
	}, []string{"result"})
	if reg != nil {
		if err := reg.Register(polls); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, err
			}
			polls = are.ExistingCollector.(*prometheus.CounterVec)
		}
	}
	for _, r := range []string{pushRecovered, pushPending, pushNotFound, pushError, pushGaveUp} {
		polls.WithLabelValues(r)
	}
	return &pushWatch{
		cfg: pc, api: api, kv: kv, cons: cons, pub: pub, now: cfg.Now, logger: logger, polls: polls,
		unknown: ops.NewSparse(logger, "push requests unknown to the push API; forgotten", "forgotten"),
		limiter: rate.NewLimiter(rate.Every(pc.RatePeriod/time.Duration(pc.RateLimit)), min(10, pc.RateLimit)),
	}, nil
}

// pushKey is a request's key: KV keys allow few characters, a uuid from
// the provider may hold others.
func pushKey(uuid string) string { return "r" + events.Digest(16, uuid) }

// handle records one push status: a pending request is remembered, a
// settled one marked so.
func (w *pushWatch) handle(ctx context.Context, m *broker.Msg) broker.Decision {
	var p events.PushEvent
	if err := json.Unmarshal(m.Data(), &p); err != nil || p.UUID == "" {
		return broker.DeadLetter(undecodable(err))
	}
	key := pushKey(p.UUID)
	if p.Settled() {
		data, _ := json.Marshal(pushRecord{UUID: p.UUID, Settled: true, SettledAt: w.now()})
		if _, err := w.kv.Put(ctx, key, data); err != nil {
			return broker.Retry(0)
		}
		return broker.Ack()
	}
	expiry := time.Duration(p.SecondsToExpire) * time.Second
	if expiry == 0 {
		expiry = defaultPushExpiry
	}
	data, _ := json.Marshal(pushRecord{UUID: p.UUID, ExpiresAt: p.CreatedAt.Add(expiry)})
	if _, err := w.kv.Create(ctx, key, data); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return broker.Retry(0)
	}
	return broker.Ack()
}

// cycle reads the requests whose settling callback is overdue, as far as
// the push budget allows before ctx ends; it returns how many it read.
func (w *pushWatch) cycle(ctx context.Context) (int, error) {
	entries, err := broker.Entries(ctx, w.kv)
	if err != nil {
		return 0, fmt.Errorf("list push requests: %w", err)
	}
	read := 0
	for _, e := range entries {
		if _, due := w.due(ctx, e, w.now()); !due {
			continue
		}
		if err := w.limiter.Wait(ctx); err != nil {
			return read, nil // the cycle's time is up; the rest next cycle
		}
		// The bucket was read as the cycle began, maybe a budget's wait
		// ago: a callback may have settled the request since.
		if e, err = w.kv.Get(ctx, e.Key()); err != nil {
			continue // deleted meanwhile
		}
		now := w.now()
		r, due := w.due(ctx, e, now)
		if !due {
			continue
		}
		read++
		w.read(ctx, e.Key(), e.Revision(), r, now)
	}
	return read, ctx.Err()
}

// due decodes a request's record and says whether its settling callback
// is overdue at now. A record that does not decode is deleted, and so is
// a settled one past any reordering of its callbacks.
func (w *pushWatch) due(ctx context.Context, e jetstream.KeyValueEntry, now time.Time) (pushRecord, bool) {
	var r pushRecord
	if json.Unmarshal(e.Value(), &r) != nil {
		_ = w.kv.Delete(ctx, e.Key())
		return r, false
	}
	if r.Settled {
		if now.Sub(r.SettledAt) > w.cfg.Grace+w.cfg.Recheck {
			_ = w.kv.Delete(ctx, e.Key(), jetstream.LastRevision(e.Revision()))
		}
		return r, false
	}
	due := r.ExpiresAt.Add(w.cfg.Grace)
	if !r.LastPoll.IsZero() && r.LastPoll.Add(w.cfg.Recheck).After(due) {
		due = r.LastPoll.Add(w.cfg.Recheck)
	}
	return r, !now.Before(due)
}

// read GETs one request and acts on the answer.
func (w *pushWatch) read(ctx context.Context, key string, rev uint64, r pushRecord, now time.Time) {
	p, err := w.api.Get(ctx, r.UUID)
	switch {
	case errors.Is(err, pushapi.ErrNotFound):
		w.polls.WithLabelValues(pushNotFound).Inc()
		w.unknown.Warn("uuid", r.UUID) // the last one's
		_ = w.kv.Delete(ctx, key, jetstream.LastRevision(rev))
		return
	case err == nil && p.Settled():
		msg, err := events.NewPushMessage(&p)
		if err == nil {
			err = w.pub.Publish(ctx, msg)
		}
		if err != nil {
			w.polls.WithLabelValues(pushError).Inc()
			w.logger.Warn("publishing a polled push status failed; read again later", "uuid", r.UUID, "err", err)
			break
		}
		w.polls.WithLabelValues(pushRecovered).Inc()
		r.Settled, r.SettledAt = true, now
		data, _ := json.Marshal(r)
		_, _ = w.kv.Update(ctx, key, data, rev)
		return
	case err == nil:
		w.polls.WithLabelValues(pushPending).Inc()
	default:
		w.polls.WithLabelValues(pushError).Inc()
		w.logger.Warn("reading a push request failed", "uuid", r.UUID, "err", err)
	}
	r.Polls++
	r.LastPoll = now
	if r.Polls >= w.cfg.MaxPolls {
		w.polls.WithLabelValues(pushGaveUp).Inc()
		w.logger.Warn("push request still not settled after reading it repeatedly; given up", "uuid", r.UUID, "polls", r.Polls)
		_ = w.kv.Delete(ctx, key, jetstream.LastRevision(rev))
		return
	}
	data, _ := json.Marshal(r)
	_, _ = w.kv.Update(ctx, key, data, rev)
}
