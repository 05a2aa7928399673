package poller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/otpscope/otpscope/internal/backoff"
	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/tyntec"
)

// BucketOTPs is the KV bucket of tracked OTPs, one key per otpId.
const BucketOTPs = "otpscope_poller_otps"

// Record is what the poller knows about one OTP: the value of its key in
// BucketOTPs. Every change is a compare-and-set on the key's revision, so the
// tracking consumer and the reconciler of any replica never overwrite each
// other.
type Record struct {
	OTPID     string    `json:"otpId"`
	API       string    `json:"api"` // "v4" or "v1"
	ProfileID string    `json:"profileId,omitempty"`
	FirstSeen time.Time `json:"firstSeen"`
	// Created and Expires come from tyntec when known (ExpiryKnown), else
	// Expires is FirstSeen + Config.OTPExpiry.
	Created     time.Time `json:"created,omitzero"`
	Expires     time.Time `json:"expires"`
	ExpiryKnown bool      `json:"expiryKnown,omitempty"`
	// Facts are the delivery facts seen, by webhook or poll.
	Facts []Fact `json:"facts,omitempty"`
	// LastFact is the time of the newest fact (or FirstSeen); LastSeen is
	// when the newest was observed. Settle counts from the later of the two,
	// so a backlog in the webhook pipeline does not look like a lost webhook.
	LastFact time.Time `json:"lastFact"`
	LastSeen time.Time `json:"lastSeen,omitzero"`
	// Polled counts reads of the OTP's events; LastPolled is the last one.
	Polled     int       `json:"polled,omitempty"`
	LastPolled time.Time `json:"lastPolled,omitzero"`
	// V1Seen is how many of the OTP's v1 events were published already.
	V1Seen int `json:"v1Seen,omitempty"`
	// OTPStatus is the last known verification status; StatusSource says who
	// reported it (poll or upstream).
	OTPStatus    string `json:"otpStatus,omitempty"`
	StatusSource string `json:"statusSource,omitempty"`
	StatusPolled bool   `json:"statusPolled,omitempty"`
	// Resends made by this poller, and when the last one was.
	Resends    int       `json:"resends,omitempty"`
	LastResend time.Time `json:"lastResend,omitzero"`
	// DryResends are those a dry run would have made, and LastDryResend
	// when: a dry run counts them against maxResends and minDelay as live
	// mode counts its own, so it shows what live mode would send.
	DryResends    int       `json:"dryResends,omitempty"`
	LastDryResend time.Time `json:"lastDryResend,omitzero"`
	// Unrecoverable says the poller gave up on the facts no webhook reported:
	// tyntec's v1 API does not serve this v4 OTP, and v4 shows no delivery
	// facts. What is missing was published on tyntec.2fa.reconcile.unrecoverable.
	Unrecoverable bool `json:"unrecoverable,omitempty"`
	// Done ends tracking; DoneReason says why (doneReasons).
	Done       bool   `json:"done,omitempty"`
	DoneReason string `json:"doneReason,omitempty"`
}

// Fact is one delivery fact of an OTP.
type Fact struct {
	Channel   events.Channel `json:"channel"`
	Status    events.Status  `json:"status"`
	Timestamp time.Time      `json:"ts"`
	Source    string         `json:"source"`
}

// knows reports whether the record holds the fact ds reports: the same
// channel and status at the same instant (sameInstant), or at any time
// when ds's time is only when it was read (TimestampFromReceipt), which a
// later read of the same fact would give otherwise.
func (r *Record) knows(ds events.DeliveryStatus) bool {
	return slices.ContainsFunc(r.Facts, func(f Fact) bool {
		return f.Channel == ds.Channel && f.Status == ds.Status && (ds.TimestampFromReceipt || sameInstant(f.Timestamp, ds.Timestamp))
	})
}

// sameInstant reports whether two reports of a fact's time name the same
// instant as far as the coarser of them can tell. tyntec's webhook and its
// v1 events need not give a fact's time with the same precision: the v1
// events in milliseconds, a webhook in whole seconds (tyntec's examples),
// milliseconds or finer. So times are compared in milliseconds, as
// ClickHouse stores them, and a time in whole seconds names any time in
// its second.
func sameInstant(a, b time.Time) bool {
	a, b = a.Truncate(time.Millisecond), b.Truncate(time.Millisecond)
	if a.Equal(b) {
		return true
	}
	if a.Nanosecond() == 0 || b.Nanosecond() == 0 {
		return a.Truncate(time.Second).Equal(b.Truncate(time.Second))
	}
	return false
}

// addFact records a fact and reports whether it was new. A fact seen by both
// a webhook and a poll keeps the webhook as its source.
func (r *Record) addFact(f Fact) bool {
	for i := range r.Facts {
		g := &r.Facts[i]
		if g.Channel == f.Channel && g.Status == f.Status && sameInstant(g.Timestamp, f.Timestamp) {
			if f.Source == events.SourceWebhook && g.Source != events.SourceWebhook {
				g.Source = f.Source
				return true
			}
			return false
		}
	}
	r.Facts = append(r.Facts, f)
	if f.Timestamp.After(r.LastFact) {
		r.LastFact = f.Timestamp
	}
	return true
}

// deliveredOn returns the first channel with a DELIVERED fact, or "".
func (r *Record) deliveredOn() events.Channel {
	for _, f := range r.Facts {
		if f.Status == events.StatusDelivered {
			return f.Channel
		}
	}
	return ""
}

// openAttempts counts, per channel, the DISPATCHED facts less the final
// ones: above 0, an attempt's outcome is still to come; below, an outcome
// came without its DISPATCHED.
func (r *Record) openAttempts() map[events.Channel]int {
	open := map[events.Channel]int{}
	for _, f := range r.Facts {
		switch {
		case f.Status == events.StatusDispatched:
			open[f.Channel]++
		case f.Status.Final():
			open[f.Channel]--
		}
	}
	return open
}

// inFlight returns a channel with an attempt dispatched and not settled
// (the first in name order), or "".
func (r *Record) inFlight() events.Channel {
	var chs []events.Channel
	for ch, n := range r.openAttempts() {
		if n > 0 {
			chs = append(chs, ch)
		}
	}
	if len(chs) == 0 {
		return ""
	}
	return slices.Min(chs)
}

// deliverySettled reports whether the OTP's delivery story is complete as far
// as the poller can tell without asking: a poll after the last fact saw it
// whole; or every attempt the webhooks reported settled, the channels tried
// are the start of one of the account's priorities (explained), and one
// delivered or the last failed where tyntec cannot fall back further
// (fallbackAfter). With v1Events (tyntec's v1 events serve v4 OTPs, or the
// poller does not know yet; a v1 OTP waits for a poll anyway) an outcome
// whose DISPATCHED webhook was lost
// is worth a poll too: without its dispatch the attempt has no latency,
// its journey no time to deliver, and it is placed in time by its outcome.
func (r *Record) deliverySettled(fallbackAfter func(tried []events.Channel) bool, explained func(tried []events.Channel) bool, v1Events bool) bool {
	if r.Unrecoverable {
		return true // as settled as it will get
	}
	open := r.openAttempts()
	var last *Fact
	for i := range r.Facts {
		f := &r.Facts[i]
		if f.Status.Failed() && (last == nil || f.Timestamp.After(last.Timestamp)) {
			last = f
		}
	}
	lostDispatch := false
	for _, n := range open {
		if n > 0 {
			return false // an attempt's outcome is missing
		}
		lostDispatch = lostDispatch || n < 0 // an outcome without its DISPATCHED
	}
	// A poll after the last fact saw the whole story.
	if r.Polled > 0 && !r.LastPolled.Before(r.LastFact) {
		return r.deliveredOn() != "" || last != nil
	}
	if lostDispatch && v1Events {
		return false
	}
	if r.API != "v4" || r.Resends > 0 {
		return false // no webhooks to trust, or our resend added an attempt
	}
	tried := r.tried()
	if !explained(tried) {
		return false // the channels seen start mid-priority: an attempt went unreported
	}
	if r.deliveredOn() != "" {
		return true
	}
	return last != nil && !fallbackAfter(tried)
}

// gaps lists what the webhooks left out of a closed OTP's delivery story,
// which nothing can recover: one record per attempt dispatched without an
// outcome, or, when none is open, one for an attempt on an unknown channel
// that may be missing (the channels seen start mid-priority, the last one
// failed where tyntec may fall back, or no webhook arrived at all). o is the
// OTP as v4 shows it.
func (r *Record) gaps(o *tyntec.OTP, now time.Time, fallbackAfter, explained func(tried []events.Channel) bool) []events.Reconcile {
	base := events.Reconcile{
		OTPID: r.OTPID, API: r.API, ProfileID: r.ProfileID, Result: events.ReconcileUnrecoverable,
		OTPStatus: o.OTPStatus, AttemptCount: o.AttemptCount, ObservedAt: now,
	}
	verified := ""
	if o.OTPStatus == events.OTPVerified && r.deliveredOn() == "" {
		verified = "; verified, so delivered on a channel whose webhook was lost"
	}
	// Attempts dispatched without an outcome, oldest dispatch first.
	facts := slices.Clone(r.Facts)
	slices.SortStableFunc(facts, func(a, b Fact) int { return a.Timestamp.Compare(b.Timestamp) })
	open := map[events.Channel][]time.Time{}
	for _, f := range facts {
		switch {
		case f.Status == events.StatusDispatched:
			open[f.Channel] = append(open[f.Channel], f.Timestamp)
		case f.Status.Final() && len(open[f.Channel]) > 0:
			open[f.Channel] = open[f.Channel][1:]
		}
	}
	var out []events.Reconcile
	for _, ch := range r.tried() {
		for _, at := range open[ch] {
			g := base
			g.Channel, g.Since = ch, at
			g.Reason = "outcome webhook lost; tyntec's v1 API does not serve v4 OTPs" + verified
			out = append(out, g)
		}
	}
	if len(out) > 0 {
		return out
	}
	g := base
	g.Since = r.LastFact
	tried := r.tried()
	switch {
	case len(r.Facts) == 0:
		g.Since = later(r.Created, r.FirstSeen)
		if r.Created.IsZero() {
			g.Since = r.FirstSeen
		}
		g.Reason = "no webhook of this OTP arrived"
	case !explained(tried):
		g.Reason = "the channels seen start mid-priority: an attempt's webhooks were lost"
	case r.deliveredOn() == "" && fallbackAfter(tried):
		g.Reason = "the last attempt failed where tyntec may fall back: a fallback attempt's webhooks may be lost"
	default:
		return nil
	}
	g.Reason += verified
	return []events.Reconcile{g}
}

// tried returns the channels of the OTP's facts in the order they were first
// used.
func (r *Record) tried() []events.Channel {
	facts := slices.Clone(r.Facts)
	slices.SortStableFunc(facts, func(a, b Fact) int { return a.Timestamp.Compare(b.Timestamp) })
	var out []events.Channel
	for _, f := range facts {
		if !slices.Contains(out, f.Channel) {
			out = append(out, f.Channel)
		}
	}
	return out
}

// entry is a record with the KV revision it was read at.
type entry struct {
	rec Record
	rev uint64
}

// store is the KV bucket of records plus a local view kept current by a watch,
// so that choosing due OTPs costs no round trip per OTP.
//
// The view holds the records still tracked. A finished record stays in the
// bucket until its TTL (late events must not track it again), but in memory
// only as a mark, and only until its OTP is past expiry plus grace, when
// discovery no longer looks at it: a view of every record would grow with
// every OTP since the process started (the bucket's TTL tells no watcher).
// Whoever needs a finished record whole reads the bucket (update, current).
type store struct {
	kv    jetstream.KeyValue
	grace time.Duration // how long past its expiry a finished OTP keeps its mark

	mu       sync.RWMutex
	view     map[string]entry    // tracked records
	finished map[string]finished // marks of finished ones
	forgot   time.Time           // when marks were last forgotten
	ready    chan struct{}       // closed when the watch delivered the initial values
	once     sync.Once
}

// forgetEvery is how often a replica forgets finished marks past due, as
// it adds them: every replica's view follows the bucket, leader or not.
var forgetEvery = time.Minute

// finished marks a finished record: its revision, so that an older update
// the watch delivers late does not track it again, and when to forget it.
type finished struct {
	rev    uint64
	forget time.Time
}

// kvOpener creates or opens KV buckets (the broker).
type kvOpener interface {
	KeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error)
}

func openStore(ctx context.Context, b kvOpener, ttl, grace time.Duration) (*store, error) {
	kv, err := b.KeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      BucketOTPs,
		Description: "otpscope poller: tracked OTPs",
		History:     1,
		TTL:         ttl,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, err
	}
	return &store{kv: kv, grace: grace, view: map[string]entry{}, finished: map[string]finished{}, ready: make(chan struct{})}, nil
}

// watch keeps the local view current until ctx ends.
func (s *store) watch(ctx context.Context, logger *slog.Logger) {
	watchKV(ctx, logger, BucketOTPs, func(ctx context.Context) (jetstream.KeyWatcher, error) {
		return s.kv.WatchAll(ctx)
	}, func(e jetstream.KeyValueEntry) {
		if e == nil {
			s.once.Do(func() { close(s.ready) })
			return
		}
		s.apply(e)
	})
}

// watchKV opens a watch of bucket with open and hands its updates to apply
// until ctx ends. Opening is retried, and a watch that closes is opened
// again: JetStream may be restarting (the broker restarts it once a full
// disk takes writes again), and a view that stopped following its bucket
// would go stale without a word.
func watchKV(ctx context.Context, logger *slog.Logger, bucket string, open func(context.Context) (jetstream.KeyWatcher, error), apply func(jetstream.KeyValueEntry)) {
	for ctx.Err() == nil {
		var w jetstream.KeyWatcher
		err := backoff.Retry(ctx, backoff.Policy{First: 100 * time.Millisecond, Max: 5 * time.Second}, func() error {
			var err error
			if w, err = open(ctx); err != nil && ctx.Err() == nil {
				logger.Warn("watch of KV bucket not ready; retrying", "bucket", bucket, "err", err)
			}
			return err
		})
		if err != nil {
			return // ctx ended
		}
		follow(ctx, w, apply)
		backoff.Sleep(ctx, time.Second) // a watch that keeps closing is not reopened in a tight loop
	}
}

// follow hands each update of w to apply until ctx ends or w closes, then
// stops w. A nil entry marks the end of the values the bucket held at the start.
func follow(ctx context.Context, w jetstream.KeyWatcher, apply func(jetstream.KeyValueEntry)) {
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			apply(e)
		}
	}
}

func (s *store) apply(e jetstream.KeyValueEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rev(e.Key()) >= e.Revision() {
		return
	}
	if e.Operation() != jetstream.KeyValuePut {
		delete(s.view, e.Key())
		delete(s.finished, e.Key())
		return
	}
	var r Record
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return // not ours; never written by this version
	}
	s.set(e.Key(), r, e.Revision())
}

func (s *store) remember(id string, r Record, rev uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rev(id) < rev {
		s.set(id, r, rev)
	}
}

// rev is the revision the view knows of id, 0 for none. Callers hold s.mu.
func (s *store) rev(id string) uint64 {
	if e, ok := s.view[id]; ok {
		return e.rev
	}
	return s.finished[id].rev
}

// set keeps r at rev: whole while tracked, as a mark once finished. Callers
// hold s.mu.
func (s *store) set(id string, r Record, rev uint64) {
	if !r.Done {
		s.view[id] = entry{rec: r, rev: rev}
		delete(s.finished, id)
		return
	}
	delete(s.view, id)
	now := time.Now()
	forget := r.Expires
	if forget.IsZero() {
		forget = now
	}
	s.finished[id] = finished{rev: rev, forget: forget.Add(s.grace)}
	if now.Sub(s.forgot) >= forgetEvery {
		s.forgetMarks(now)
	}
}

// forgetMarks forgets the marks of finished OTPs past expiry plus grace at
// now. A mark forgotten early costs a read of the bucket, never a finished
// OTP tracked again: update reads its record, Done. Callers hold s.mu.
func (s *store) forgetMarks(now time.Time) {
	for id, f := range s.finished {
		if now.After(f.forget) {
			delete(s.finished, id)
		}
	}
	s.forgot = now
}

// snapshot returns the records still tracked.
func (s *store) snapshot() []Record {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Record, 0, len(s.view))
	for _, e := range s.view {
		out = append(out, e.rec)
	}
	return out
}

// cached returns the view's record of a tracked OTP, or for a finished one
// a record that says only that (Done).
func (s *store) cached(id string) (Record, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if e, ok := s.view[id]; ok {
		return e.rec, true
	}
	if _, ok := s.finished[id]; ok {
		return Record{OTPID: id, Done: true}, true
	}
	return Record{}, false
}

// current returns the record of id whole: the view's while tracked, else
// the bucket's (finished records stay there until its TTL). ok is false
// where neither has one.
func (s *store) current(ctx context.Context, id string) (r Record, ok bool, err error) {
	s.mu.RLock()
	e, tracked := s.view[id]
	s.mu.RUnlock()
	if tracked {
		return e.rec, true, nil
	}
	r, _, ok, err = s.read(ctx, id)
	return r, ok, err
}

// read returns the bucket's record of id and its revision; ok is false
// where there is none.
func (s *store) read(ctx context.Context, id string) (r Record, rev uint64, ok bool, err error) {
	e, err := s.kv.Get(ctx, id)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return Record{}, 0, false, nil
	case err != nil:
		return Record{}, 0, false, fmt.Errorf("get record %s: %w", id, err)
	}
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return Record{}, 0, false, fmt.Errorf("decode record %s: %w", id, err)
	}
	return r, e.Revision(), true, nil
}

// errNoChange tells update that fn left the record as it was.
var errNoChange = errors.New("no change")

// update applies fn to the current record of id (exists false and a zero
// record when there is none) and stores the result with compare-and-set,
// retrying on conflicts with fresh values. fn returns errNoChange to store
// nothing. update returns the record as stored (or as found).
func (s *store) update(ctx context.Context, id string, fn func(r *Record, exists bool) error) (Record, error) {
	s.mu.RLock()
	cur, cachedOK := s.view[id]
	s.mu.RUnlock()
	useCache := cachedOK
	for attempt := 0; ; attempt++ {
		var (
			r      Record
			rev    uint64
			exists bool
		)
		if useCache {
			r, rev, exists = cur.rec, cur.rev, true
			r.Facts = slices.Clone(r.Facts)
		} else {
			var err error
			if r, rev, exists, err = s.read(ctx, id); err != nil {
				return Record{}, err
			}
		}
		useCache = false
		if err := fn(&r, exists); err != nil {
			if errors.Is(err, errNoChange) {
				return r, nil
			}
			return r, err
		}
		data, err := json.Marshal(&r)
		if err != nil {
			return r, fmt.Errorf("encode record %s: %w", id, err)
		}
		var newRev uint64
		if exists {
			newRev, err = s.kv.Update(ctx, id, data, rev)
		} else {
			newRev, err = s.kv.Create(ctx, id, data)
		}
		if err == nil {
			s.remember(id, r, newRev)
			return r, nil
		}
		if (errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists)) && attempt < 20 {
			continue
		}
		return r, fmt.Errorf("store record %s: %w", id, err)
	}
}
