package poller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"
	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	"github.com/otpscope/otpscope/internal/backoff"
	"github.com/otpscope/otpscope/internal/broker"
	"github.com/otpscope/otpscope/internal/cronspec"
	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/flagenv"
	"github.com/otpscope/otpscope/internal/ops"
	"github.com/otpscope/otpscope/internal/reload"
	"github.com/otpscope/otpscope/internal/tyntec"
)

// BucketLeader holds the lease of the replica that calls tyntec.
const BucketLeader = "otpscope_poller_leader"

const leaderKey = "reconciler"

// publisher publishes events durably (the broker).
type publisher interface {
	Publish(ctx context.Context, msgs ...events.Message) error
}

// Poller is the poller service on an open broker: tracking on every replica;
// reconciliation, resends and callback registration on the leader.
type Poller struct {
	cfg       Config
	ready     func(context.Context) error // NATS and the stream answer
	pub       publisher
	api       *tyntec.Client
	limiter   *rate.Limiter
	policy    *Policy
	store     *store
	decisions jetstream.KeyValue
	worldKV   jetstream.KeyValue
	lease     *broker.Lease
	schedule  cron.Schedule
	interval  time.Duration
	track     *broker.Consumer
	resend    *broker.Consumer
	push      *pushWatch // nil without a push API
	logger    *slog.Logger
	metrics   *metrics
	// registerRetry spaces the callback's registration attempts:
	// registerBackoff (tests shorten it).
	registerRetry backoff.Policy
	// failedCalls logs failed tyntec calls sparsely, by outcome;
	// unhandled the messages left to be redelivered, by consumer.
	failedCalls, unhandled *ops.Sparse

	// tracked, dueDelivery and oldestNs are the last cycle's backlog, for
	// Backlog; zeroed when the lease is lost (holding). counted: a cycle
	// has set them since this replica took the lease.
	tracked, dueDelivery, oldestNs atomic.Int64
	counted                        atomic.Bool
	// lastWebhookNs is LastWebhook, Unix nanoseconds.
	lastWebhookNs atomic.Int64
	// leading is whether this replica holds the lease (Leading).
	leading atomic.Bool
	// registering is the callback registration failing now, nil when it
	// is not (RegistrationFailing).
	registering atomic.Pointer[RegistrationFailure]

	mu            sync.Mutex
	paused        time.Time // no tyntec calls before (wall clock)
	lastDiscovery time.Time // wall clock
	// discoveryMisses counts the discoveries in a row that did not list.
	discoveryMisses int
	priorities      [][]events.Channel // the account's priorities, channels in order; nil = unknown
	prioritiesAt    time.Time          // last attempt to read them
	world           World              // whether tyntec's v1 API serves v4 OTPs
}

// New builds the poller on an open broker: the KV buckets, the durable
// consumers and the tyntec client with one rate limiter for all its calls.
// reg receives the poller's and the client's metrics; nil registers nothing.
func New(ctx context.Context, cfg Config, b *broker.Broker, logger *slog.Logger, reg prometheus.Registerer) (*Poller, error) {
	pol, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	sched, err := cronspec.Parse(cfg.Schedule)
	if err != nil {
		return nil, fmt.Errorf("reconcile-schedule %q: %w", cfg.Schedule, err)
	}
	now := time.Now()
	first := sched.Next(now)
	interval := sched.Next(first).Sub(first)

	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("register poller metrics: %w", err)
	}
	tc := cfg.Tyntec
	if tc.Limiter == nil {
		limit, period, burst := tc.RateLimit, tc.RatePeriod, tc.RateBurst
		if limit == 0 {
			limit = tyntec.DefaultRateLimit
		}
		if period == 0 {
			period = tyntec.DefaultRatePeriod
		}
		if burst == 0 {
			burst = min(10, limit)
		}
		tc.Limiter = tyntec.NewLimiter(limit, period, burst)
	}
	tc.Registerer, tc.Logger = reg, logger
	tc.CurrentAPIKey = reload.Text("tyntec API key", tc.APIKey, cfg.TyntecAPIKeyFile, logger).Get
	api, err := tyntec.New(tc)
	if err != nil {
		return nil, fmt.Errorf("tyntec client: %w", err)
	}
	st, err := openStore(ctx, b, cfg.StateTTL, cfg.Grace)
	if err != nil {
		return nil, err
	}
	decisions, err := b.KeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: BucketResends, Description: "otpscope poller: resend decisions (create = claim)",
		History: 1, TTL: cfg.StateTTL, Storage: jetstream.FileStorage,
	})
	if err != nil {
		return nil, err
	}
	worldKV, err := b.KeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: BucketWorld, Description: "otpscope poller: what it learned about tyntec (does v1 serve v4 OTPs)",
		History: 1, TTL: cfg.StateTTL, Storage: jetstream.FileStorage,
	})
	if err != nil {
		return nil, err
	}
	lease, err := b.NewLease(ctx, BucketLeader, "otpscope poller: lease of the replica that calls tyntec", leaderKey, cfg.Replica, cfg.LeaderTTL, logger)
	if err != nil {
		return nil, err
	}
	// A new consumer starts far enough back to see every OTP still open.
	startAt := now.Add(-(cfg.OTPExpiry + cfg.Grace))
	track, err := b.Consumer(ctx, consumerSpec(DurableTrack, "otpscope poller: delivery facts and registrations into the OTP records", trackSubjects, startAt))
	if err != nil {
		return nil, err
	}
	p := &Poller{
		cfg: cfg, ready: b.Ready, pub: b, api: api, limiter: tc.Limiter, policy: pol,
		store: st, decisions: decisions, worldKV: worldKV, lease: lease, schedule: sched, interval: interval,
		track: track, logger: logger, metrics: m, registerRetry: registerBackoff,
		failedCalls: ops.NewSparse(logger, "tyntec calls failed", "failed"),
		unhandled:   ops.NewSparse(logger, "messages not handled; will be redelivered", "messages"),
	}
	lease.Holding = p.holding
	if err := p.loadWorld(ctx); err != nil {
		return nil, err
	}
	if cfg.Push.Enabled() {
		if p.push, err = newPushWatch(ctx, cfg, b, b, logger, reg, startAt); err != nil {
			return nil, err
		}
	}
	if pol != nil {
		if p.resend, err = b.Consumer(ctx, consumerSpec(DurableResend, "otpscope poller: failed deliveries for the resend policy", resendSubjects, now)); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Run tracks OTPs until ctx ends and, while this replica holds the lease,
// reconciles on the schedule, decides resends and registers the callback.
func (p *Poller) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return p.runTracker(ctx) })
	g.Go(func() error { return p.lease.Run(ctx, p.runLeader) })
	p.logger.Info("poller running", "replica", p.cfg.Replica, "schedule", p.cfg.Schedule, "resend_mode", p.cfg.ResendMode, "resends", p.policy != nil, "tyntec_v1_sees_v4", p.World().String())
	return g.Wait()
}

// runTracker keeps the OTP records current: the local view of the bucket and
// the shared durable consumer of delivery facts and registrations.
func (p *Poller) runTracker(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { p.store.watch(ctx, p.logger); return nil })
	g.Go(func() error { p.watchWorld(ctx); return nil })
	g.Go(func() error { p.shareLastWebhook(ctx); return nil })
	g.Go(func() error { return p.track.Consume(ctx, p.handleTrack) })
	if p.push != nil {
		g.Go(func() error { return p.push.cons.Consume(ctx, p.push.handle) })
	}
	return g.Wait()
}

// Ready reports whether NATS answers and the local view of the OTP records
// has loaded.
func (p *Poller) Ready(ctx context.Context) error {
	select {
	case <-p.store.ready:
	default:
		return errors.New("loading tracked OTPs")
	}
	return p.ready(ctx)
}

// TyntecHealth says what this replica's calls to tyntec have said lately
// (zero on a replica without the lease, which makes none).
func (p *Poller) TyntecHealth() tyntec.Health { return p.api.Health() }

// Leading says whether this replica holds the lease: the one that calls
// tyntec, whose backlog Backlog tells (zero on the others).
func (p *Poller) Leading() bool { return p.leading.Load() }

// Checks are the poller's readiness checks for /readyz.
func (p *Poller) Checks() []ops.Check {
	return []ops.Check{{Name: "poller", Ready: p.Ready, Info: p.worldInfo}}
}

// holding is told when this replica gains or loses the lease. A replica
// that lost it forgets its last cycle's backlog (metrics and Backlog), as
// the leader's cycles alone keep it current; the lease calls this only
// after the leader's work has returned, so no cycle sets it again.
func (p *Poller) holding(held bool) {
	p.leading.Store(held)
	if held {
		p.metrics.leader.Set(1)
		return
	}
	p.metrics.notLeading()
	p.api.ForgetHealth()
	p.counted.Store(false)
	p.registering.Store(nil)
	p.tracked.Store(0)
	p.dueDelivery.Store(0)
	p.oldestNs.Store(0)
}

// runLeader is what the leader does until it loses the lease.
func (p *Poller) runLeader(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	if p.cfg.RegisterCallbackURL != "" {
		// Beside the rest, not before it: a registration that waits out
		// tyntec's 429s or timeouts must not hold reconciliation and resends.
		g.Go(func() error { p.registerCallback(ctx); return nil })
	}
	if p.resend != nil {
		g.Go(func() error { return p.resend.Consume(ctx, p.handleResend) })
	}
	if p.push != nil {
		g.Go(func() error { return p.runPush(ctx) })
	}
	g.Go(func() error {
		onSchedule(ctx, p.schedule, func(cctx context.Context) {
			st, err := p.ReconcileOnce(cctx)
			if err != nil && ctx.Err() == nil {
				p.logger.Warn("reconciliation cycle failed", "err", err)
			}
			p.logger.Debug("reconciliation cycle", "stats", fmt.Sprintf("%+v", st))
		})
		return nil
	})
	return g.Wait()
}

// registerTimeout bounds one attempt at the callback's registration: a
// few calls, each retried on 429s and timeouts as the client allows —
// longer than a Retry-After may be (tyntec.MaxRetryAfter), or the first
// 429 would end it.
const registerTimeout = 15 * time.Minute

// registerBackoff spaces the attempts after one failed (tyntec refusing the
// registration, failing or away): the leader tries again for as long as
// it leads, since a callback not registered may mean no webhooks at all.
var registerBackoff = backoff.Policy{First: 30 * time.Second, Max: 10 * time.Minute}

// registerCallback registers the callback (RegisterCallback), trying again
// after each failure until it succeeds or the lease ends.
func (p *Poller) registerCallback(leading context.Context) {
	for n := 1; ; n++ {
		ctx, cancel := context.WithTimeout(leading, registerTimeout)
		res, err := RegisterCallback(ctx, p.api, p.cfg.RegisterCallbackURL, p.cfg.RegisterCallbackHeaders,
			RegisterOptions{Deployment: p.cfg.DeploymentID, Fallback: p.cfg.DeploymentFallback})
		cancel()
		if err == nil {
			p.registering.Store(nil)
			p.logger.Info("callback registered", "url", flagenv.Shown("register-callback-url", p.cfg.RegisterCallbackURL), "deployment", res.Deployment, "deployment_from", res.From, "id", res.ID, "action", res.Action,
				"duplicates_removed", res.Removed, "others_left_alone", res.Left, "attempt", n)
			return
		}
		if leading.Err() != nil {
			return // the lease ended; the next leader registers
		}
		wait := p.registerRetry.Delay(n)
		since := time.Now()
		if prev := p.registering.Load(); prev != nil {
			since = prev.Since
		}
		p.registering.Store(&RegistrationFailure{Since: since, Attempts: n, Err: err.Error()})
		p.logger.Error("callback registration failed", "url", p.cfg.RegisterCallbackURL, "attempt", n, "retry_in", wait.String(), "err", err)
		if !backoff.Sleep(leading, wait) {
			return
		}
	}
}

// RegistrationFailure is the callback registration (--register-callback-url)
// failing: since its first failed attempt, how many, the last error.
type RegistrationFailure struct {
	Since    time.Time
	Attempts int
	Err      string
}

// RegistrationFailing is the callback registration failing now, nil when
// it is not (registered, never asked for, or this replica not leading).
func (p *Poller) RegistrationFailing() *RegistrationFailure { return p.registering.Load() }

// onSchedule runs cycle at each tick of sched until ctx ends, each with
// the time until the next tick. A cycle that uses all of it (one spending
// its whole call budget) is followed by the next at once: at the tick it
// ran up to, or, past it, right away. (Taking the next tick from the time
// a cycle ended waited a whole interval after a busy cycle: under a
// backlog the poller spent little more than half its tyntec budget.)
func onSchedule(ctx context.Context, sched cron.Schedule, cycle func(context.Context)) {
	next := sched.Next(time.Now())
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(next)):
		}
		deadline := sched.Next(next)
		cctx, cancel := context.WithDeadline(ctx, deadline)
		cycle(cctx)
		cancel()
		next = deadline
		if now := time.Now(); now.After(next) {
			next = now
		}
	}
}

// runPush reads overdue push requests on the reconciliation schedule, each
// cycle bounded by the next tick.
func (p *Poller) runPush(ctx context.Context) error {
	onSchedule(ctx, p.schedule, func(cctx context.Context) {
		n, err := p.push.cycle(cctx)
		if err != nil && ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
			p.logger.Warn("push reconciliation failed", "err", err)
		}
		if n > 0 {
			p.logger.Debug("push requests read", "n", n)
		}
	})
	return nil
}

// PushCycle reads the overdue push requests once (tests; the leader runs
// it on the schedule); it returns how many it read.
func (p *Poller) PushCycle(ctx context.Context) (int, error) {
	if p.push == nil {
		return 0, errors.New("no push API configured")
	}
	return p.push.cycle(ctx)
}

// loadPriorities reads the account's priorities to learn after which channels
// tyntec may fall back; until it succeeds every failure may be followed by a
// fallback (and the OTP is polled once to be sure).
func (p *Poller) loadPriorities(ctx context.Context, b *budget) {
	p.mu.Lock()
	skip := p.priorities != nil || (!p.prioritiesAt.IsZero() && time.Since(p.prioritiesAt) < 10*time.Minute)
	p.mu.Unlock()
	if skip || b.spend() != nil {
		return
	}
	prios, err := p.api.ListPriorities(ctx, "")
	p.mu.Lock()
	defer p.mu.Unlock()
	p.prioritiesAt = time.Now()
	if err != nil {
		p.logger.Warn("read priorities; assuming any channel may fall back", "err", err)
		return
	}
	all := make([][]events.Channel, 0, len(prios))
	for _, pr := range prios {
		var chs []events.Channel
		for _, ch := range sortedChannels(pr) {
			chs = append(chs, events.Channel(ch))
		}
		all = append(all, chs)
	}
	p.priorities = all
}

func sortedChannels(pr tyntec.Priority) []string {
	cps := append([]tyntec.ChannelPriority(nil), pr.ChannelPriority...)
	for i := 1; i < len(cps); i++ {
		for j := i; j > 0 && cps[j].Priority < cps[j-1].Priority; j-- {
			cps[j], cps[j-1] = cps[j-1], cps[j]
		}
	}
	out := make([]string, len(cps))
	for i, cp := range cps {
		out[i] = string(cp.Channel)
	}
	return out
}
