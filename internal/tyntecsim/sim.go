package tyntecsim

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/tyntec"
)

// Sim is the simulator. It is safe for concurrent use.
type Sim struct {
	cfg     Config
	log     *slog.Logger
	handler http.Handler
	clock   clock

	mu         sync.Mutex
	seq        uint64     // OTPs created, seeds each OTP's generator
	ids        *rand.Rand // IDs of OTPs, callbacks and priorities
	faults     *rand.Rand // fault decisions on webhooks
	apiFaults  *rand.Rand // fault decisions on API calls
	otps       []*otp     // in creation order, after the forgotten
	byID       map[string]*otp
	callbacks  []*tyntec.CallbackConfig
	priorities []tyntec.Priority
	profiles   []tyntec.Profile
	templates  []Template
	whatsApp   string // WhatsApp account ID, "" without a WhatsApp configuration
	queue      itemHeap
	itemSeq    uint64
	wake       chan struct{}
	calls      []Call
	forgotten  Forgotten              // what Keep had the simulator forget, a count per list
	accepted   map[string][]time.Time // API key → accepted call times, for the rate limit

	// Silent Authentication (server side) and push approvals.
	silentSeq    uint64 // authorize requests that passed validation
	silentCodes  map[string]*silentSession
	silentTokens map[string]*silentSession
	pushSeq      uint64
	pushes       []*pushRequest // in creation order
	pushByID     map[string]*pushRequest
	pushFaults   *rand.Rand // fault decisions on push callbacks
	pushHooks    []PushCallback

	// The simulated app's logins (traffic generator).
	silent     []*SilentTruth // its silent-auth attempts, in start order, after the forgotten
	logins     int            // logins started
	loginsDone int            // logins that ended: verified, approved, or their OTP sent
	inflight   int            // logins between HTTP calls, outside the engine's queue

	hooks   *dispatcher
	stop    context.CancelFunc
	wg      sync.WaitGroup
	started bool
}

// New returns a simulator for cfg. Its delivery engine runs after Start.
func New(cfg Config) (*Sim, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("tyntecsim config: %w", err)
	}
	cfg = cfg.withDefaults()
	start := cfg.Start
	if start.IsZero() {
		start = time.Now()
	}
	s := &Sim{
		cfg:        cfg,
		log:        cfg.Logger,
		clock:      clock{real: time.Now(), sim: start.UTC().Truncate(time.Millisecond), scale: cfg.TimeScale},
		ids:        rand.New(rand.NewPCG(uint64(cfg.Seed), 1)),
		faults:     rand.New(rand.NewPCG(uint64(cfg.Seed), 2)),
		apiFaults:  rand.New(rand.NewPCG(uint64(cfg.Seed), 3)),
		byID:       map[string]*otp{},
		priorities: append([]tyntec.Priority(nil), cfg.Priorities...),
		profiles:   append([]tyntec.Profile(nil), cfg.Profiles...),
		templates:  append([]Template(nil), cfg.Templates...),
		whatsApp:   cfg.WhatsAppAccountID,
		wake:       make(chan struct{}, 1),
		accepted:   map[string][]time.Time{},

		silentCodes:  map[string]*silentSession{},
		silentTokens: map[string]*silentSession{},
		pushByID:     map[string]*pushRequest{},
		pushFaults:   rand.New(rand.NewPCG(uint64(cfg.Seed), 7)),
		pushHooks:    slices.Clone(cfg.PushCallbacks),
	}
	for i := range s.priorities {
		if s.priorities[i].ID == "" {
			s.priorities[i].ID = s.newID()
		}
	}
	for i := range s.profiles {
		if s.profiles[i].ID == "" {
			s.profiles[i].ID = s.newID()
		}
	}
	for i := range s.templates {
		if s.templates[i].ID == "" {
			s.templates[i].ID = s.newID()
		}
	}
	for _, cb := range cfg.Callbacks {
		s.addCallback(cb)
	}
	s.hooks = newDispatcher(s)
	s.handler = s.routes()
	return s, nil
}

// ServeHTTP serves tyntec's API.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Start runs the delivery engine, the webhook senders and, when configured,
// the traffic generator in the background until ctx ends or Close is called.
// OTPs accepted before Start are delivered once it runs.
func (s *Sim) Start(ctx context.Context) error {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return errors.New("tyntecsim: already started")
	}
	s.started = true
	ctx, s.stop = context.WithCancel(ctx)
	s.mu.Unlock()

	s.wg.Go(func() { s.runEngine(ctx) })
	s.hooks.start(ctx, &s.wg)
	if s.cfg.Traffic.Rate > 0 {
		s.wg.Go(func() {
			if err := s.RunTraffic(ctx, s.cfg.Traffic); err != nil && !errors.Is(err, context.Canceled) {
				s.log.Error("traffic generator stopped", "err", err)
			}
		})
	}
	return nil
}

// Close stops the background work and waits for it. Webhooks not yet sent
// stay unsent (Truth shows them as not delivered).
func (s *Sim) Close() error {
	s.mu.Lock()
	stop := s.stop
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
	s.wg.Wait()
	return nil
}

// Now returns the simulated time.
func (s *Sim) Now() time.Time { return s.clock.now() }

// Idle reports whether nothing is scheduled: no delivery step, simulated
// user, push answer or held webhook pending, no generated login between
// its HTTP calls, and no webhook queued or being sent.
func (s *Sim) Idle() bool {
	s.mu.Lock()
	pending := len(s.queue) + s.inflight
	s.mu.Unlock()
	return pending == 0 && s.hooks.idle()
}

// WaitIdle polls Idle until it holds or ctx ends.
func (s *Sim) WaitIdle(ctx context.Context) error {
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for !s.Idle() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for simulator to be idle: %w", ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// newOTPID returns a random UUID from crypto/rand, not from the seed: two
// runs with the same seed (the demo restarted on the same data directory)
// must not hand out the same otpIds. Behaviour stays reproducible, since each
// OTP's generator is seeded by its sequence number, not its ID.
func newOTPID() string { return uuid.NewString() }

// newID returns a UUID from the seeded generator, for configuration
// objects (callbacks, priorities, profiles, templates). Callers hold s.mu.
func (s *Sim) newID() string {
	var b [16]byte
	for i := 0; i < 16; i += 8 {
		v := s.ids.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return uuid.UUID(b).String()
}

// clock maps the wall clock to simulated time.
type clock struct {
	real  time.Time // wall clock (monotonic) at creation
	sim   time.Time // simulated time at creation
	scale float64
}

func (c clock) now() time.Time {
	return c.sim.Add(time.Duration(float64(time.Since(c.real)) * c.scale)).Truncate(time.Millisecond)
}

// wall converts a simulated duration to wall-clock time.
func (c clock) wall(d time.Duration) time.Duration { return time.Duration(float64(d) / c.scale) }

// item is one scheduled step of the engine, run under s.mu at simulated time at.
type item struct {
	at  time.Time
	seq uint64
	fn  func(at time.Time)
}

type itemHeap []*item

func (h itemHeap) Len() int { return len(h) }
func (h itemHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h itemHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *itemHeap) Push(x any)   { *h = append(*h, x.(*item)) }
func (h *itemHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

// schedule runs fn at simulated time at. Callers hold s.mu.
func (s *Sim) schedule(at time.Time, fn func(at time.Time)) {
	s.itemSeq++
	heap.Push(&s.queue, &item{at: at.Truncate(time.Millisecond), seq: s.itemSeq, fn: fn})
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// runEngine runs scheduled steps when their simulated time comes. Steps use
// their scheduled time, not the time they ran, so timestamps do not depend on
// how busy the machine is.
func (s *Sim) runEngine(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		s.mu.Lock()
		wait := time.Hour
		now := s.clock.now()
		for len(s.queue) > 0 {
			next := s.queue[0]
			if next.at.After(now) {
				wait = s.clock.wall(next.at.Sub(now))
				break
			}
			heap.Pop(&s.queue)
			next.fn(next.at)
		}
		s.mu.Unlock()
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		case <-timer.C:
		}
	}
}

// copyCallbacks returns a deep copy of the callbacks. Callers hold s.mu.
func (s *Sim) copyCallbacks() []tyntec.CallbackConfig {
	out := make([]tyntec.CallbackConfig, 0, len(s.callbacks))
	for _, cb := range s.callbacks {
		c := *cb
		c.Headers = copyHeaders(cb.Headers)
		out = append(out, c)
	}
	return out
}

func copyHeaders(h map[string]string) map[string]string {
	if h == nil {
		return nil
	}
	out := make(map[string]string, len(h))
	for k, v := range h {
		out[k] = v
	}
	return out
}

// addCallback registers a callback configuration; false when one with the
// same URL and profile filter exists (tyntec answers 409 "Callback
// configuration already exists."). Callers hold s.mu (or own s).
func (s *Sim) addCallback(n tyntec.NewCallbackConfig) (tyntec.CallbackConfig, bool) {
	if slices.ContainsFunc(s.callbacks, func(c *tyntec.CallbackConfig) bool { return sameCallback(*c, n) }) {
		return tyntec.CallbackConfig{}, false
	}
	cb := &tyntec.CallbackConfig{ID: s.newID(), URL: n.URL, ProfileID: n.ProfileID, Headers: copyHeaders(n.Headers)}
	s.callbacks = append(s.callbacks, cb)
	return *cb, true
}

// sameCallback reports whether c is the configuration n would create: the
// same URL for the same profile filter. Headers do not count: they are how a
// configuration authenticates, not which one it is (assumed; the seed names
// the conflict, not its key).
func sameCallback(c tyntec.CallbackConfig, n tyntec.NewCallbackConfig) bool {
	return c.URL == n.URL && c.ProfileID == n.ProfileID
}

func sortedChannels(p tyntec.Priority) []events.Channel {
	cps := append([]tyntec.ChannelPriority(nil), p.ChannelPriority...)
	sort.SliceStable(cps, func(i, j int) bool { return cps[i].Priority < cps[j].Priority })
	out := make([]events.Channel, len(cps))
	for i, cp := range cps {
		out[i] = cp.Channel
	}
	return out
}

// forgetAge is how old (simulated) a settled OTP must be before Keep may
// forget it: past its deliveries, webhook retries and checks.
const forgetAge = time.Hour

// forget drops, past Config.Keep, the oldest OTPs that are settled and
// older than forgetAge, the silent-auth attempts and approval requests
// that ended before the oldest OTP kept began, expired access tokens, and
// the oldest API calls. Callers hold s.mu.
func (s *Sim) forget(now time.Time) {
	keep := s.cfg.Keep
	n := 0
	for len(s.otps)-n > keep {
		o := s.otps[n]
		o.refresh(now)
		if o.status.Open() || now.Sub(o.created) < forgetAge {
			break
		}
		delete(s.byID, o.id)
		n++
	}
	if n > 0 {
		oldest := s.otps[n].created
		s.otps = slices.Clone(s.otps[n:]) // frees the array the forgotten held
		s.forgotten.OTPs += uint64(n)
		m := 0
		for m < len(s.silent) && s.silent[m].Started.Before(oldest) && !s.silent[m].Pending() {
			m++
		}
		s.silent = slices.Clone(s.silent[m:])
		s.forgotten.Silent += uint64(m)
		m = 0
		for m < len(s.pushes) && s.pushes[m].created.Before(oldest) && s.pushes[m].status != PushPending {
			delete(s.pushByID, s.pushes[m].uuid)
			m++
		}
		s.pushes = slices.Clone(s.pushes[m:])
		s.forgotten.Push += uint64(m)
	}
	for token, sess := range s.silentTokens {
		if now.After(sess.tokenExpires) {
			delete(s.silentTokens, token)
		}
	}
	if extra := len(s.calls) - keep; extra > 0 {
		s.calls = slices.Clone(s.calls[extra:])
		s.forgotten.Calls += uint64(extra)
	}
}
