package poller

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"time"

	"golang.org/x/time/rate"

	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/tyntec"
)

// CycleStats says what one reconciliation cycle did.
type CycleStats struct {
	Budget        int // calls the cycle allowed itself
	Calls         int // calls made
	Discovered    int // OTPs found by discovery that no webhook announced
	DeliveryDue   int // OTPs whose delivery needed reconciling
	DeliveryPolls int // of those, read this cycle
	VerifyDue     int // delivered OTPs whose final status is due
	VerifyPolls   int // of those, read this cycle
	Published     int // messages published
	Missed        int // delivery facts no webhook reported, recovered
	Unrecoverable int // attempts whose lost webhooks could not be recovered
	Finished      int // OTPs no longer tracked
	Paused        bool
}

// errStopCycle ends a cycle early: the budget or the time is spent, or tyntec
// asked us to wait.
var errStopCycle = errors.New("cycle stopped")

// ReconcileOnce runs one reconciliation cycle: discovery when due, then the
// OTPs whose delivery needs reconciling (nearest to expiry first), then, with
// the budget left, the final status of delivered OTPs, and it stops tracking
// OTPs that are settled or past expiry plus grace. It spends at most the calls
// the rate budget allows in one schedule interval. Reconcile cycles run on the
// leader only, but calling it on any replica is safe: every write is a
// compare-and-set and every message id is content-derived.
func (p *Poller) ReconcileOnce(ctx context.Context) (CycleStats, error) {
	start := time.Now()
	defer func() { p.metrics.cycleSeconds.Observe(time.Since(start).Seconds()) }()
	var st CycleStats
	if until := p.pausedUntil(); time.Now().Before(until) {
		st.Paused = true
		p.logger.Debug("cycle skipped: tyntec asked us to wait", "until", until)
		return st, nil
	}
	st.Budget = p.cycleBudget()
	b := &budget{ctx: ctx, limiter: p.limiter, left: st.Budget}
	now := p.cfg.Now()

	p.loadPriorities(ctx, b)
	var err error
	if p.discoveryDue(start) {
		err = p.discover(ctx, b, &st, now)
	}
	delivery, verify := p.due(ctx, now, &st)
	st.DeliveryDue, st.VerifyDue = len(delivery), len(verify)
	p.metrics.due.WithLabelValues("delivery").Set(float64(len(delivery)))
	p.metrics.due.WithLabelValues("verify").Set(float64(len(verify)))

	if err == nil {
		err = b.pollEach(delivery, &st.DeliveryPolls, func(r Record) error { return p.pollDelivery(ctx, b, r, &st) })
	}
	if err == nil {
		err = b.pollEach(verify, &st.VerifyPolls, func(r Record) error { return p.pollStatus(ctx, r, &st) })
	}
	st.Calls = st.Budget - b.left
	p.metrics.cycles.Inc()
	if errors.Is(err, errStopCycle) || (err != nil && ctx.Err() != nil) {
		err = nil
	}
	if until := p.pausedUntil(); time.Now().Before(until) {
		st.Paused = true
	}
	return st, err
}

// budget counts the calls a cycle may still make, and stops the cycle before
// a call whose turn in the rate limiter would come after the cycle's deadline.
type budget struct {
	ctx     context.Context
	limiter *rate.Limiter
	left    int
}

func (b *budget) spend() error {
	if b.left <= 0 {
		return errStopCycle
	}
	if dl, ok := b.ctx.Deadline(); ok && b.limiter != nil {
		r := b.limiter.Reserve()
		late := !r.OK() || time.Now().Add(r.Delay()).After(dl)
		r.Cancel()
		if late {
			return errStopCycle
		}
	}
	b.left--
	return nil
}

// pollEach spends a call on each record and polls it, until the first error;
// polls counts the records polled.
func (b *budget) pollEach(due []Record, polls *int, poll func(Record) error) error {
	for _, r := range due {
		if err := b.spend(); err != nil {
			return err
		}
		err := poll(r)
		*polls++
		if err != nil {
			return err
		}
	}
	return nil
}

// cycleBudget is the number of calls the limiter allows from now until the
// next cycle: the tokens in the bucket plus the refill over one interval.
func (p *Poller) cycleBudget() int {
	n := p.limiter.Tokens() + float64(p.limiter.Limit())*p.interval.Seconds()
	return max(0, int(n))
}

func (p *Poller) discoveryDue(now time.Time) bool {
	if p.cfg.DiscoveryInterval <= 0 {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.lastDiscovery.IsZero() && now.Sub(p.lastDiscovery) < discoveryWait(p.discoveryMisses, p.cfg.DiscoveryInterval) {
		return false
	}
	p.lastDiscovery = now
	return true
}

// discoveryWait is the least time between discoveries after misses
// discoveries in a row did not list: the next cycle after one (a refused
// key since mended, tyntec down a moment, no budget left), then a minute,
// doubling to interval. A list that fails every time (tyntec down, an
// answer it cannot read) is a call, and maybe a long answer, not worth
// making every cycle.
func discoveryWait(misses int, interval time.Duration) time.Duration {
	if misses == 0 {
		return interval
	}
	if misses == 1 {
		return 0
	}
	return min(time.Minute<<min(misses-2, 16), interval)
}

// discoveryMissed counts a discovery that did not list.
func (p *Poller) discoveryMissed() {
	p.mu.Lock()
	p.discoveryMisses++
	p.mu.Unlock()
}

// discovered counts a discovery that listed.
func (p *Poller) discovered() {
	p.mu.Lock()
	p.discoveryMisses = 0
	p.mu.Unlock()
}

// due splits the tracked OTPs into those whose delivery needs reconciling and
// those whose final status is due, each nearest to expiry first, and finishes
// the ones that need nothing more.
func (p *Poller) due(ctx context.Context, now time.Time, st *CycleStats) (delivery, verify []Record) {
	var oldest time.Duration
	recs := p.store.snapshot()
	world := p.World()
	for _, r := range recs {
		settled := r.deliverySettled(p.fallbackAfter, p.explained, world != WorldSeparate)
		// Finished next cycle if this one ended (a stop, the lease lost): a
		// NATS that does not answer would hold each for 5 s.
		reason := p.finished(&r, settled, now)
		if reason != "" && ctx.Err() == nil && p.finish(ctx, r.OTPID, reason) == nil {
			st.Finished++
			continue // not waiting: an OTP tracked long after its expiry (an old at) is given up, not behind
		}
		if !settled {
			oldest = max(oldest, now.Sub(r.FirstSeen))
		}
		if reason != "" {
			continue
		}
		switch {
		case !settled:
			if now.Sub(later(r.LastFact, r.LastSeen)) >= p.cfg.Settle && (r.LastPolled.IsZero() || now.Sub(r.LastPolled) >= p.cfg.Recheck) {
				delivery = append(delivery, r)
			}
		case p.verifyDue(&r, now):
			verify = append(verify, r)
		}
	}
	byExpiry := func(a, b Record) int { return a.Expires.Compare(b.Expires) }
	slices.SortFunc(delivery, byExpiry)
	slices.SortFunc(verify, byExpiry)
	p.metrics.tracked.Set(float64(len(recs)))
	p.metrics.oldest.Set(oldest.Seconds())
	p.tracked.Store(int64(len(recs)))
	p.dueDelivery.Store(int64(len(delivery)))
	p.oldestNs.Store(int64(oldest))
	p.counted.Store(true)
	return delivery, verify
}

// Why tracking of an OTP ended: Record.DoneReason, and the reason label of
// otpscope_poller_finished_total.
const (
	doneUnrecoverable = "unrecoverable"
	doneFinal         = "final"
	doneUndelivered   = "undelivered"
	doneNotSampled    = "not_sampled"
	doneExpired       = "expired"
	doneUnreconciled  = "unreconciled" // given up unsettled: OtpscopePollerGaveUp
	doneNotFound      = "not_found"    // tyntec no longer knows it
)

// doneReasons are every reason, counted from zero (newMetrics).
var doneReasons = []string{doneUnrecoverable, doneFinal, doneUndelivered, doneNotSampled, doneExpired, doneUnreconciled, doneNotFound}

// finished returns why a record needs no more work, or "".
func (p *Poller) finished(r *Record, settled bool, now time.Time) string {
	delivered := r.deliveredOn() != ""
	switch {
	case r.Unrecoverable && (events.OTPStatusFinal(r.OTPStatus) || now.After(r.Expires)):
		return doneUnrecoverable
	case settled && events.OTPStatusFinal(r.OTPStatus):
		return doneFinal
	case settled && !delivered && now.After(r.Expires):
		return doneUndelivered
	case settled && delivered && now.After(r.Expires) && !p.inSample(r.OTPID):
		return doneNotSampled
	case now.After(r.Expires.Add(p.cfg.Grace)):
		if settled {
			return doneExpired
		}
		return doneUnreconciled
	}
	return ""
}

// verifyDue reports whether the final status of a delivered OTP should be read
// now: it is in the sample, it can no longer change (expired), and discovery
// will not report it before tracking ends.
func (p *Poller) verifyDue(r *Record, now time.Time) bool {
	if r.deliveredOn() == "" || events.OTPStatusFinal(r.OTPStatus) || !p.inSample(r.OTPID) || !now.After(r.Expires) {
		return false
	}
	if r.StatusPolled {
		return false // read once after expiry; a status still open then stays as read
	}
	if r.API == "v4" && p.cfg.DiscoveryInterval > 0 && r.Expires.Add(p.cfg.Grace).Sub(now) > p.cfg.DiscoveryInterval {
		return false // the next discovery lists it for free
	}
	return true
}

// inSample reports whether the OTP's final status is part of the verification
// sample. The choice hashes the otpId, so every replica and every cycle agree.
func (p *Poller) inSample(id string) bool {
	if p.cfg.VerifySample >= 1 {
		return true
	}
	h := fnv.New64a()
	h.Write([]byte(id))
	return float64(h.Sum64()%1_000_000)/1_000_000 < p.cfg.VerifySample
}

// finish stops tracking an OTP; the record stays until the bucket's TTL so that
// late events do not start tracking it again.
func (p *Poller) finish(ctx context.Context, id, reason string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := p.store.update(ctx, id, func(r *Record, exists bool) error {
		if !exists || r.Done {
			return errNoChange
		}
		r.Done, r.DoneReason = true, reason
		return nil
	})
	if err != nil {
		p.logger.Warn("finish record", "otp_id", id, "err", err)
		return err
	}
	p.metrics.finished.WithLabelValues(reason).Inc()
	return nil
}

// forgotten ends the tracking of an OTP tyntec no longer knows (404, 410).
// Its attempts dispatched without an outcome can no longer be read: each
// is published as unrecoverable, as a closed OTP's are where v1 does not
// serve v4 (pollV4Delivery), so the figures count them pending for good
// rather than pending, awaiting a poller that has stopped looking.
func (p *Poller) forgotten(ctx context.Context, id string, cause error) error {
	var gaps []events.Reconcile
	var published int
	_, err := p.store.update(ctx, id, func(rec *Record, exists bool) error {
		if !exists || rec.Done {
			return errNoChange
		}
		gaps, published = nil, 0
		var msgs []events.Message
		// Only the attempts seen dispatched: of an OTP tyntec forgot,
		// none may be guessed missing (gaps' other kind).
		for _, g := range rec.gaps(&tyntec.OTP{OTPID: id}, p.cfg.Now(), p.fallbackAfter, p.explained) {
			if g.Channel == "" {
				continue
			}
			g.Reason = "tyntec no longer knows the OTP (" + cause.Error() + "): its outcome cannot be read"
			m, err := events.NewReconcileMessage(&g)
			if err != nil {
				return err
			}
			gaps, msgs = append(gaps, g), append(msgs, m)
		}
		if len(gaps) > 0 {
			rec.Unrecoverable = true
		}
		rec.Done, rec.DoneReason = true, doneNotFound
		return p.publish(ctx, id, msgs, &published)
	})
	if err != nil {
		p.logger.Warn("finish record", "otp_id", id, "err", err)
		return err
	}
	p.countUnrecoverable(gaps)
	p.metrics.finished.WithLabelValues(doneNotFound).Inc()
	return nil
}

// pollDelivery reconciles the delivery of one OTP from what tyntec offers in
// the world the poller is in: v1 events for v1 OTPs, and for v4 OTPs where
// v1 serves them (or it is not known yet); otherwise the v4 status
// (pollV4Delivery). A v1 404 for a v4 OTP that v4 knows teaches the poller
// that v1 does not serve v4 OTPs, unless it learned that it does (a v1
// answer): then that OTP alone is reconciled from v4.
func (p *Poller) pollDelivery(ctx context.Context, b *budget, r Record, st *CycleStats) error {
	if r.API != "v4" {
		return p.pollEvents(ctx, r, st)
	}
	if p.World() == WorldSeparate {
		return p.pollV4Delivery(ctx, r, nil, st)
	}
	evs, err := p.api.V1Events(ctx, r.OTPID)
	if errors.Is(err, tyntec.ErrNotFound) {
		// Deleted, or v1 does not serve v4 OTPs: v4 tells which.
		if err := b.spend(); err != nil {
			return err
		}
		o, gerr := p.api.GetOTP(ctx, r.OTPID)
		if gerr != nil {
			return p.callFailed(ctx, r.OTPID, "v4 status", gerr)
		}
		p.learnWorld(ctx, WorldSeparate, r.OTPID)
		return p.pollV4Delivery(ctx, r, o, st)
	}
	if err != nil {
		return p.callFailed(ctx, r.OTPID, "v1 events", err)
	}
	p.learnWorld(ctx, WorldShared, r.OTPID)
	return p.applyEvents(ctx, r, evs, st)
}

// pollV4Delivery reconciles a v4 OTP where tyntec's v1 API does not serve it:
// v4 shows the OTP's status, attempt count and expiry, but no delivery facts.
// While the OTP is open the poller waits (a webhook may still come); once it
// is closed (final status or expired) every attempt whose outcome is missing
// is published as unrecoverable on tyntec.2fa.reconcile.unrecoverable, never
// as an invented delivery fact. o is the v4 view when the caller read it.
func (p *Poller) pollV4Delivery(ctx context.Context, r Record, o *tyntec.OTP, st *CycleStats) error {
	if o == nil {
		var err error
		if o, err = p.api.GetOTP(ctx, r.OTPID); err != nil {
			return p.callFailed(ctx, r.OTPID, "v4 status", err)
		}
	}
	now := p.cfg.Now()
	var gaps []events.Reconcile
	var published int
	_, err := p.store.update(ctx, r.OTPID, func(rec *Record, exists bool) error {
		if !exists || rec.Done {
			return errNoChange
		}
		gaps, published = nil, 0
		var msgs []events.Message
		if !o.OTPExpire.IsZero() {
			rec.Created, rec.Expires, rec.ExpiryKnown = o.OTPCreated, o.OTPExpire, true
		}
		if m, err := p.takeV4Status(rec, o, now); err != nil {
			return err
		} else if m != nil {
			msgs = append(msgs, *m)
		}
		rec.Polled++
		rec.LastPolled = now
		if !o.OTPStatus.Final() && now.Before(rec.Expires) {
			// Still open: a webhook may yet come, a fallback may yet start.
			return p.publish(ctx, rec.OTPID, msgs, &published)
		}
		gaps = rec.gaps(o, now, p.fallbackAfter, p.explained)
		for i := range gaps {
			m, err := events.NewReconcileMessage(&gaps[i])
			if err != nil {
				return err
			}
			msgs = append(msgs, m)
		}
		rec.Unrecoverable = true
		return p.publish(ctx, rec.OTPID, msgs, &published)
	})
	if err != nil {
		return err
	}
	st.Published += published
	st.Unrecoverable += p.countUnrecoverable(gaps)
	p.metrics.reconciled.WithLabelValues("delivery").Inc()
	return nil
}

// countUnrecoverable counts the attempts published unrecoverable, by
// channel, and returns how many.
func (p *Poller) countUnrecoverable(gaps []events.Reconcile) int {
	for _, g := range gaps {
		ch := string(g.Channel)
		if !g.Channel.Known() {
			ch = "OTHER" // as ingest counts it: undocumented values share one series
		}
		p.metrics.unrecoverable.WithLabelValues(ch).Inc()
	}
	return len(gaps)
}

// publish publishes msgs before the record that says so is stored (see
// applyEvents) and counts them in n.
func (p *Poller) publish(ctx context.Context, id string, msgs []events.Message, n *int) error {
	if len(msgs) == 0 {
		return nil
	}
	if err := p.pub.Publish(ctx, msgs...); err != nil {
		return fmt.Errorf("publish %d messages of %s: %w", len(msgs), id, err)
	}
	*n = len(msgs)
	return nil
}

// pollEvents reads an OTP's v1 events and applies them (applyEvents).
func (p *Poller) pollEvents(ctx context.Context, r Record, st *CycleStats) error {
	evs, err := p.api.V1Events(ctx, r.OTPID)
	if err != nil {
		return p.callFailed(ctx, r.OTPID, "v1 events", err)
	}
	return p.applyEvents(ctx, r, evs, st)
}

// applyEvents takes an OTP's v1 events (tyntec records them for v4 OTPs
// too, where v1 serves v4 OTPs), publishes the new ones, a DeliveryStatus
// with source poll for every delivery fact the record lacks, and the OTP
// status a CHECK event reports.
//
// Mapping (events.PolledDelivery): an event whose type is a channel (SMS,
// VOICE, VIBER, WHATSAPP) is a delivery fact on that channel; its statusText
// is the delivery status (DISPATCHED, DELIVERED, UNDELIVERABLE, TIMED_OUT),
// or, when unknown, status success → DELIVERED and failed → UNDELIVERABLE; its
// created time is the fact's timestamp, equal to the webhook's, so both have
// the same message id. CREATED gives the creation time, CHECK the OTP status
// after a check, RESEND nothing.
func (p *Poller) applyEvents(ctx context.Context, r Record, evs []tyntec.V1Event, st *CycleStats) error {
	now := p.cfg.Now()
	// polled holds the facts this call published, across compare-and-set
	// retries: the tracking consumer may add them to the record (from our own
	// messages) between a publish and the store that follows.
	polled := map[string]events.DeliveryStatus{}
	var published int
	_, err := p.store.update(ctx, r.OTPID, func(rec *Record, exists bool) error {
		if !exists {
			return errNoChange
		}
		published = 0
		var msgs []events.Message
		for i, e := range evs {
			created, known := e.CreatedAt(now)
			if !known {
				created = now
			}
			ev := events.V1Event{
				OTPID: rec.OTPID, Type: e.Type, Status: e.Status, StatusText: e.StatusText,
				Created: created, CreatedFromReceipt: !known, ObservedAt: now,
			}
			if i >= rec.V1Seen {
				m, err := events.NewV1EventMessage(&ev)
				if err != nil {
					return err
				}
				msgs = append(msgs, m)
			}
			switch events.V1Word(e.Type) {
			case events.V1EventCreated:
				if !rec.ExpiryKnown {
					rec.Created = created
					rec.Expires = rec.Created.Add(p.cfg.OTPExpiry)
				}
				continue
			case events.V1EventCheck:
				if st := events.V1Word(e.StatusText); events.OTPStatusFinal(st) && rec.OTPStatus != st {
					rec.OTPStatus, rec.StatusSource = st, events.SourcePoll
					if p.inSample(rec.OTPID) {
						m, err := p.statusMessage(rec, st, 0, created)
						if err != nil {
							return err
						}
						msgs = append(msgs, m)
					}
				}
				continue
			}
			ds, ok := events.PolledDelivery(ev, rec.ProfileID, time.Now())
			if !ok || rec.knows(ds) {
				continue
			}
			ds.MissedWebhook = rec.API == "v4" // v1 OTPs have no webhooks to miss.
			rec.addFact(Fact{Channel: ds.Channel, Status: ds.Status, Timestamp: ds.Timestamp, Source: ds.Source})
			m, err := events.NewDeliveryMessage(&ds)
			if err != nil {
				return err
			}
			msgs = append(msgs, m)
			polled[m.ID] = ds
		}
		rec.V1Seen = max(rec.V1Seen, len(evs))
		rec.Polled++
		rec.LastPolled = now
		// Publish before storing: a retry republishes the same ids, which
		// JetStream drops, whereas a stored record without its messages would
		// never publish them.
		if len(msgs) > 0 {
			if err := p.pub.Publish(ctx, msgs...); err != nil {
				return fmt.Errorf("publish %d polled events of %s: %w", len(msgs), rec.OTPID, err)
			}
		}
		published = len(msgs)
		return nil
	})
	if err != nil {
		return err
	}
	st.Published += published
	for _, ds := range polled {
		if ds.MissedWebhook {
			p.metrics.missed.WithLabelValues(string(ds.Channel), string(ds.Status)).Inc()
			st.Missed++
		}
	}
	p.metrics.reconciled.WithLabelValues("delivery").Inc()
	return nil
}

// pollStatus reads the OTP status of a delivered OTP that can no longer change
// and publishes it with the sample rate.
func (p *Poller) pollStatus(ctx context.Context, r Record, st *CycleStats) error {
	var (
		status          string
		attempts        int
		created, expire time.Time
	)
	if r.API == "v1" {
		o, err := p.api.V1OTP(ctx, r.OTPID)
		if err != nil {
			return p.callFailed(ctx, r.OTPID, "v1 status", err)
		}
		status, attempts, created, expire = string(o.OTPStatus), o.AttemptCount, o.CreatedAt(), o.ExpiresAt()
	} else {
		o, err := p.api.GetOTP(ctx, r.OTPID)
		if err != nil {
			return p.callFailed(ctx, r.OTPID, "v4 status", err)
		}
		status, attempts, created, expire = string(o.OTPStatus), o.AttemptCount, o.OTPCreated, o.OTPExpire
	}
	now := p.cfg.Now()
	var published bool
	_, err := p.store.update(ctx, r.OTPID, func(rec *Record, exists bool) error {
		if !exists {
			return errNoChange
		}
		published = false
		rec.StatusPolled = true
		if !expire.IsZero() {
			rec.Created, rec.Expires, rec.ExpiryKnown = created, expire, true
			if now.Before(expire) {
				rec.StatusPolled = false // the estimate was early; read again after the real expiry
			}
		}
		if status != "" && status != rec.OTPStatus {
			rec.OTPStatus, rec.StatusSource = status, events.SourcePoll
			m, err := p.statusMessage(rec, status, attempts, now)
			if err != nil {
				return err
			}
			if err := p.pub.Publish(ctx, m); err != nil {
				return err
			}
			published = true
		}
		return nil
	})
	if err != nil {
		return err
	}
	if published {
		st.Published++
	}
	p.metrics.reconciled.WithLabelValues("verify").Inc()
	return nil
}

func (p *Poller) statusMessage(r *Record, status string, attempts int, at time.Time) (events.Message, error) {
	st := events.OTPStatus{
		OTPID: r.OTPID, API: r.API, Status: events.OTPState(status), ProfileID: r.ProfileID, AttemptCount: attempts,
		Created: r.Created, ObservedAt: at, Source: events.SourcePoll,
		SampleRate: p.cfg.VerifySample,
	}
	if r.ExpiryKnown { // else r.Expires is the poller's guess, not tyntec's
		st.Expires = r.Expires
	}
	return events.NewOTPStatusMessage(&st)
}

// takeV4Status records o's v4 status on r unless r has it already or has a
// status from tyntec's webhooks, which the poller never overrides; where the
// status is final and r is in the verification sample it returns the message
// to publish.
func (p *Poller) takeV4Status(r *Record, o *tyntec.OTP, now time.Time) (*events.Message, error) {
	status := string(o.OTPStatus)
	if status == "" || status == r.OTPStatus || r.StatusSource == events.SourceUpstream {
		return nil, nil
	}
	r.OTPStatus, r.StatusSource = status, events.SourcePoll
	if !o.OTPStatus.Final() || !p.inSample(r.OTPID) {
		return nil, nil
	}
	m, err := p.statusMessage(r, status, o.AttemptCount, now)
	if err != nil {
		return nil, err
	}
	return &m, nil
}

// discover lists tyntec's v4 OTPs: it starts tracking those no webhook
// announced, learns real expiries, and reads final statuses for free.
func (p *Poller) discover(ctx context.Context, b *budget, st *CycleStats, now time.Time) error {
	if err := b.spend(); err != nil {
		p.discoveryMissed()
		return err
	}
	// The list holds every OTP tyntec keeps, most of them finished or too
	// old to matter: only the others are kept as it is read.
	var news []tyntec.OTP
	err := p.api.EachOTP(ctx, tyntec.OTPFilter{}, func() { news = news[:0] }, func(o tyntec.OTP) {
		if o.OTPID == "" {
			return
		}
		status := string(o.OTPStatus) // the poller's record keeps it as text
		cur, known := p.store.cached(o.OTPID)
		if known && (cur.Done || (cur.ExpiryKnown && cur.OTPStatus == status)) {
			return
		}
		if !known && now.After(o.OTPExpire.Add(p.cfg.Grace)) {
			return // too old to matter
		}
		news = append(news, o)
	})
	if err != nil {
		p.discoveryMissed()
		return p.callFailed(ctx, "", "v4 list", err)
	}
	p.discovered()
	for _, o := range news {
		_, known := p.store.cached(o.OTPID)
		var msg *events.Message
		_, err := p.store.update(ctx, o.OTPID, func(r *Record, exists bool) error {
			msg = nil
			if !exists {
				p.newRecord(r, o.OTPID, "v4", o.OTPCreated, now)
			} else if r.Done {
				return errNoChange
			}
			if !o.OTPExpire.IsZero() { // zero: tyntec's time could not be read
				r.Created, r.Expires, r.ExpiryKnown = o.OTPCreated, o.OTPExpire, true
			}
			m, err := p.takeV4Status(r, &o, now)
			if err != nil {
				return err
			}
			if msg = m; msg != nil {
				return p.pub.Publish(ctx, *msg)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("discovery of %s: %w", o.OTPID, err)
		}
		if !known {
			st.Discovered++
			p.metrics.discovered.Inc()
		}
		if msg != nil {
			st.Published++
		}
	}
	return nil
}

// callFailed handles a failed tyntec call: a 429 pauses the poller for its
// Retry-After and stops the cycle; a 404 or 410 stops tracking the OTP; other
// errors are logged and the OTP is tried again after Recheck.
func (p *Poller) callFailed(ctx context.Context, id, what string, err error) error {
	switch {
	case errors.Is(err, tyntec.ErrRateLimited):
		p.pause(err)
		return errStopCycle
	case ctx.Err() != nil:
		return errStopCycle
	case id != "" && (errors.Is(err, tyntec.ErrNotFound) || errors.Is(err, tyntec.ErrGone)):
		// Counted (otpscope_poller_finished_total{reason="not_found"}): a
		// line each would be one per OTP after tyntec forgets a batch.
		p.logger.Debug("tyntec no longer knows the OTP; tracking ends", "otp_id", id, "err", err)
		_ = p.forgotten(ctx, id, err) // not stored, it is tried again
		return nil
	}
	// Sparsely, by outcome: with a wrong key or tyntec away every call
	// fails, up to the whole budget a minute.
	p.failedCalls.WarnOf(tyntec.Outcome(err), "call", what, "otp_id", id, "err", err)
	if id != "" {
		now := p.cfg.Now()
		_, _ = p.store.update(ctx, id, func(r *Record, exists bool) error {
			if !exists {
				return errNoChange
			}
			r.LastPolled = now
			return nil
		})
	}
	return nil
}

// pause stops every call to tyntec until the Retry-After of a 429 has passed
// (a second when tyntec sent none).
func (p *Poller) pause(err error) {
	d := time.Second
	var apiErr *tyntec.APIError
	if errors.As(err, &apiErr) && apiErr.RetryAfter > 0 {
		d = apiErr.RetryAfter
	}
	until := time.Now().Add(d)
	p.mu.Lock()
	if until.After(p.paused) {
		p.paused = until
	}
	p.mu.Unlock()
	p.metrics.rateLimited.Inc()
	p.logger.Warn("tyntec rate limit hit; pausing", "for", d)
}

func (p *Poller) pausedUntil() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.paused
}

// explained reports whether the channels tried so far are the start of one of
// the account's priorities (true while the priorities are unknown).
func (p *Poller) explained(tried []events.Channel) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.priorities == nil {
		return true
	}
	for _, chs := range p.priorities {
		if len(chs) >= len(tried) && slices.Equal(chs[:len(tried)], tried) {
			return true
		}
	}
	return false
}

// fallbackAfter reports whether tyntec may still try another channel after
// the channels tried so far: true unless the account's priorities (read at
// start) include that exact sequence and none extends it. Until the priorities
// are known, any failure may be followed by a fallback.
func (p *Poller) fallbackAfter(tried []events.Channel) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.priorities == nil {
		return true
	}
	exact := false
	for _, chs := range p.priorities {
		if len(chs) < len(tried) || !slices.Equal(chs[:len(tried)], tried) {
			continue
		}
		if len(chs) > len(tried) {
			return true
		}
		exact = true
	}
	return !exact // a sequence no priority explains: ask tyntec
}

// Backlog is what the last reconciliation cycle found: OTPs tracked, those
// whose delivery was due for reconciling, and the age of the oldest whose
// delivery is not settled — for the status log; all zero on a replica not
// leading, whose cycles do not run. counted is false until a cycle has run
// since this replica took the lease (the zeros are then no count: a
// restarted poller reads its whole bucket first).
func (p *Poller) Backlog() (tracked, due int, oldest time.Duration, counted bool) {
	return int(p.tracked.Load()), int(p.dueDelivery.Load()), time.Duration(p.oldestNs.Load()), p.counted.Load()
}
