package poller

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/otpscope/otpscope/internal/broker"
	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/tyntec"
)

// BucketResends holds one key per resend decision. Creating the key is the
// claim: of two replicas deciding the same failure, the one whose create
// succeeds acts, the other sees the key and does nothing. The key's value ends
// as the audit record, so a redelivered failure republishes the audit (same
// message id) instead of deciding again.
const BucketResends = "otpscope_poller_resends"

// resendSubjects are the failures the resend consumer decides on.
var resendSubjects = []string{
	events.SubjectRoot + ".delivery.*." + string(events.StatusUndeliverable),
	events.SubjectRoot + ".delivery.*." + string(events.StatusTimedOut),
}

// reasonSeparate is the reason a resend of a v4 OTP is skipped where tyntec's
// v1 API does not serve v4 OTPs.
const reasonSeparate = "tyntec's v1 API does not serve v4 OTPs, so v1's re-send cannot re-send it"

// decisionState is the value of a decision key.
type decisionState struct {
	Replica string    `json:"replica"`
	Claimed time.Time `json:"claimed"`
	// Term is the revision of the leader lease the claimer held
	// (broker.LeaseTerm; 0 when it held none).
	Term uint64 `json:"term,omitempty"`
	// DryRun says the claimer sends nothing (--resend-mode dry-run).
	DryRun bool           `json:"dryRun,omitempty"`
	Audit  *events.Resend `json:"audit,omitempty"`
}

// Decision is what DecideResend did with one failure.
type Decision struct {
	// Result is events.ResendSent, ResendSkipped, ResendFailed or ResendDryRun
	// when an audit record was published; empty when the failure needed no
	// decision (no rule) or another replica made it.
	Result string
	Reason string
	Via    string
	// Retry, when positive, asks to look at the failure again after it (the
	// minimum delay has not passed, or tyntec asked us to wait).
	Retry time.Duration
}

// DecisionID names the decision a failure calls for: one per failure fact, so
// a webhook retry and a poll of the same failure make one decision.
func DecisionID(ev *events.DeliveryStatus) string {
	return ev.OTPID + "." + string(ev.Channel) + "." + string(ev.Status) + "." + strconv.FormatInt(ev.Timestamp.UnixMilli(), 10)
}

func (p *Poller) handleResend(ctx context.Context, m *broker.Msg) broker.Decision {
	var ev events.DeliveryStatus
	if err := json.Unmarshal(m.Data(), &ev); err != nil || ev.OTPID == "" {
		return broker.DeadLetter(undecodable(err))
	}
	d, err := p.DecideResend(ctx, &ev)
	return p.settle(DurableResend, m.Subject(), d.Retry, err)
}

// DecideResend applies the resend policy to a failed delivery: it claims the
// decision in BucketResends, checks the conditions (the OTP is ACTIVE and not
// expired, and not DELIVERED on any channel — through the API in live mode,
// from the tracked state in dry-run, which calls nothing), re-sends through
// v1 in live mode, and publishes the audit record tyntec.2fa.resend.<RESULT>.
// A v4 OTP is re-sent only where tyntec's v1 API serves v4 OTPs: where it is
// known not to, the decision is skipped; in live mode an unknown world is
// learned by the check before anything is sent.
func (p *Poller) DecideResend(ctx context.Context, ev *events.DeliveryStatus) (Decision, error) {
	rule := p.policy.Match(ev)
	if rule == nil {
		p.metrics.resends.WithLabelValues(resendIgnored).Inc()
		return Decision{Reason: "no policy rule matches"}, nil
	}
	live := p.cfg.ResendMode == ModeLive
	now := p.cfg.Now()
	// Whole, from the bucket if the OTP is finished: its resends so far and
	// its status decide as much as a tracked one's.
	rec, ok, err := p.store.current(ctx, ev.OTPID)
	if err != nil {
		return Decision{}, err
	}
	if !ok {
		rec = Record{OTPID: ev.OTPID, API: "v4", ProfileID: ev.ProfileID, Expires: ev.Timestamp.Add(p.cfg.OTPExpiry)}
	}
	// The failure decided may not be in the record yet (the tracker reads
	// the same stream apart): without it, its own attempt would look in
	// flight. This copy of the record is not stored.
	rec.Facts = slices.Clone(rec.Facts)
	rec.addFact(Fact{Channel: ev.Channel, Status: ev.Status, Timestamp: ev.Timestamp, Source: ev.Source})
	// A dry run counts the resends it would have made as live mode
	// counts those it made.
	made, lastMade := rec.Resends, rec.LastResend
	if !live {
		made, lastMade = rec.Resends+rec.DryResends, later(rec.LastResend, rec.LastDryResend)
	}
	// Wait out the minimum delay before claiming, so the decision is made once,
	// when it is due.
	due := ev.Timestamp.Add(time.Duration(rule.MinDelay))
	if !lastMade.IsZero() {
		due = later(due, lastMade.Add(time.Duration(rule.MinDelay)))
	}
	if wait := due.Sub(now); wait > 0 {
		return Decision{Reason: "minimum delay", Retry: wait}, nil
	}
	// tyntec's own fallback (or an earlier resend) is on its way: a resend
	// now would reach the user twice. This failure is decided once that
	// attempt settled — skipped if it delivered — or the OTP expired.
	if ch := rec.inFlight(); ch != "" && now.Before(rec.Expires) && rec.deliveredOn() == "" {
		return Decision{Reason: "an attempt on " + string(ch) + " is still in flight", Retry: inFlightWait}, nil
	}
	if wait := time.Until(p.pausedUntil()); live && wait > 0 {
		return Decision{Reason: "rate limited", Retry: wait}, nil
	}

	id := DecisionID(ev)
	term := broker.TermOf(ctx)
	claim := decisionState{Replica: p.cfg.Replica, Claimed: time.Now().UTC(), DryRun: !live}
	if term != nil {
		claim.Term = term.Revision
	}
	value, _ := json.Marshal(claim)
	claimRev, err := p.decisions.Create(ctx, id, value)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return p.decided(ctx, ev, id, term)
		}
		return Decision{}, fmt.Errorf("claim resend decision %s: %w", id, err)
	}
	// release gives the decision back when nothing was sent: it is made
	// again later, by whichever replica leads then. Only this claim is
	// released, never an outcome another replica recorded meanwhile.
	release := func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = p.decisions.Delete(rctx, id, jetstream.LastRevision(claimRev))
	}

	attempt := made + 1
	audit := events.Resend{
		OTPID: ev.OTPID, ProfileID: firstNonEmpty(ev.ProfileID, rec.ProfileID), DecisionID: id,
		Via: rule.via(attempt), TriggerChannel: ev.Channel, TriggerStatus: ev.Status,
		Attempt: attempt, DecidedAt: now, DryRun: !live,
	}
	reason := p.resendBlocked(&rec, rule, attempt, now)
	if reason == "" && rec.API == "v4" && p.World() == WorldSeparate {
		// The only re-send tyntec documents is v1's, and v1 does not know this OTP.
		reason = reasonSeparate
	}
	if reason == "" && live {
		var err error
		if reason, err = p.checkLive(ctx, &rec, now); err != nil {
			if errors.Is(err, tyntec.ErrRateLimited) {
				p.pause(err)
				release() // nothing was sent; decide again later
				return Decision{Reason: "rate limited", Retry: max(time.Second, time.Until(p.pausedUntil()))}, nil
			}
			if ctx.Err() != nil {
				release() // stopping, or the lease lost: nothing was sent
				return Decision{}, ctx.Err()
			}
			audit.Result, audit.Reason = events.ResendFailed, "check the OTP: "+err.Error()
		}
	}
	switch {
	case audit.Result != "":
	case reason != "":
		audit.Result, audit.Reason = events.ResendSkipped, reason
	case !live && rec.API == "v4" && p.World() == WorldUnknown:
		audit.Result, audit.Reason = events.ResendDryRun, "dry-run: would re-send via "+audit.Via+" if tyntec's v1 API serves v4 OTPs (not learned yet)"
	case !live:
		audit.Result, audit.Reason = events.ResendDryRun, "dry-run: would re-send via "+audit.Via
	case term != nil && !term.Held():
		// The lease ran out while this replica decided (it was paused, or
		// cut off from NATS): another replica may lead and decide this
		// failure with fresh checks, so this one sends nothing.
		release()
		p.logger.Warn("resend not sent: the leader lease ran out while deciding (was the process paused?)", "otp_id", ev.OTPID, "decision", id)
		return Decision{Reason: "lease lost", Retry: time.Second}, nil
	default:
		if _, err := p.api.V1Resend(ctx, ev.OTPID, tyntec.ResendRequest{Via: audit.Via}); err != nil {
			if errors.Is(err, tyntec.ErrRateLimited) {
				p.pause(err) // tyntec refused before acting: nothing was sent
				release()
				return Decision{Reason: "rate limited", Retry: max(time.Second, time.Until(p.pausedUntil()))}, nil
			}
			// A timeout may have sent it: never try this decision again.
			audit.Result, audit.Reason = events.ResendFailed, err.Error()
			if ctx.Err() != nil {
				audit.Reason = "the re-send was in flight when this replica stopped or lost its lease, so it may have been sent: " + audit.Reason
			}
		} else {
			audit.Result = events.ResendSent
		}
	}
	if audit.Result == events.ResendSent || audit.Result == events.ResendDryRun {
		p.countResend(ctx, ev, rec.API, now, audit.Result == events.ResendDryRun)
	}
	p.metrics.resends.WithLabelValues(audit.Result).Inc()
	p.logger.Info("resend decision", "otp_id", ev.OTPID, "decision", id, "result", audit.Result, "reason", audit.Reason, "via", audit.Via, "attempt", attempt)

	// Recorded whatever came of it, on a context that neither a stop nor
	// the lease's loss cuts short: an outcome lost here would leave the
	// claim for the next leader to settle as "may have re-sent".
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	claim.Audit = &audit
	done, _ := json.Marshal(claim)
	if _, err := p.decisions.Put(rctx, id, done); err != nil {
		p.logger.Warn("store resend decision", "decision", id, "err", err)
	}
	if err := p.publishAudit(rctx, &audit); err != nil {
		return Decision{Result: audit.Result, Reason: audit.Reason, Via: audit.Via}, err
	}
	return Decision{Result: audit.Result, Reason: audit.Reason, Via: audit.Via}, nil
}

// countResend records on ev's OTP a resend made at now, or one a dry run
// would have made.
func (p *Poller) countResend(ctx context.Context, ev *events.DeliveryStatus, api string, now time.Time, dry bool) {
	if _, err := p.store.update(ctx, ev.OTPID, func(r *Record, exists bool) error {
		if !exists {
			p.newRecord(r, ev.OTPID, api, ev.Timestamp, now)
		}
		if dry {
			r.DryResends, r.LastDryResend = r.DryResends+1, now
		} else {
			r.Resends, r.LastResend = r.Resends+1, now
		}
		return nil
	}); err != nil {
		p.logger.Warn("count resend", "otp_id", ev.OTPID, "dry_run", dry, "err", err)
	}
}

// resendBlocked checks the conditions the tracked state can answer.
func (p *Poller) resendBlocked(r *Record, rule *Rule, attempt int, now time.Time) string {
	switch {
	case attempt > rule.MaxResends: // 0: the rule re-sends nothing
		return fmt.Sprintf("max resends (%d) reached", rule.MaxResends)
	case r.OTPStatus != "" && r.OTPStatus != string(events.OTPActive):
		return "otp " + r.OTPStatus
	case !now.Before(r.Expires):
		return "otp expired"
	case r.deliveredOn() != "":
		return "delivered on " + string(r.deliveredOn())
	}
	return ""
}

// inFlightWait is how long a failure waits before it is looked at again
// while another attempt of its OTP is in flight.
const inFlightWait = 5 * time.Second

// checkLive asks tyntec: the OTP's status and expiry, and its events for a
// delivery on any channel.
func (p *Poller) checkLive(ctx context.Context, r *Record, now time.Time) (string, error) {
	var status string
	var expire time.Time
	if r.API == "v1" {
		o, err := p.api.V1OTP(ctx, r.OTPID)
		if err != nil {
			return "", err
		}
		status, expire = string(o.OTPStatus), o.ExpiresAt()
	} else {
		o, err := p.api.GetOTP(ctx, r.OTPID)
		if err != nil {
			return "", err
		}
		status, expire = string(o.OTPStatus), o.OTPExpire
	}
	if status != string(events.OTPActive) {
		return "otp " + status, nil
	}
	if !expire.IsZero() && !now.Before(expire) {
		return "otp expired", nil
	}
	evs, err := p.api.V1Events(ctx, r.OTPID)
	if r.API == "v4" && errors.Is(err, tyntec.ErrNotFound) {
		// v4 knows the OTP (read above), v1 does not: nor would v1 re-send it.
		p.learnWorld(ctx, WorldSeparate, r.OTPID)
		return reasonSeparate, nil
	}
	if err != nil {
		return "", err
	}
	if r.API == "v4" {
		p.learnWorld(ctx, WorldShared, r.OTPID)
	}
	for _, e := range evs {
		if ch, st, ok := e.Delivery(); ok && st == events.StatusDelivered {
			return "delivered on " + string(ch), nil
		}
	}
	return "", nil
}

// claimGrace is how long a new leader waits before it takes a claim made
// under an earlier lease term, and never settled, for abandoned: the
// claimer sends nothing once its term is no longer held, so by then a send
// it began is over (one tyntec attempt, not retried: a POST).
func (p *Poller) claimGrace() time.Duration {
	return cmp.Or(p.cfg.Tyntec.Timeout, tyntec.DefaultTimeout) + 5*time.Second
}

// decided handles a failure whose decision key exists. With an outcome it
// publishes the audit again (same message id), so an audit lost to a crash
// between decision and publish is not lost. A claim without one is being
// decided, and is looked at again later; one made under an earlier lease
// term was abandoned by a claimer that stopped or lost its lease, and once
// that claimer can no longer be sending it is settled as failed: it may
// have re-sent before it stopped, and a decision that may have sent is
// never made twice.
func (p *Poller) decided(ctx context.Context, ev *events.DeliveryStatus, id string, term *broker.LeaseTerm) (Decision, error) {
	e, err := p.decisions.Get(ctx, id)
	if err != nil {
		// Released meanwhile (nothing was sent): decide it again soon.
		return Decision{Reason: "decided already", Retry: time.Second}, nil
	}
	var ds decisionState
	if json.Unmarshal(e.Value(), &ds) == nil && ds.Audit != nil {
		return Decision{Reason: "decided already"}, p.publishAudit(ctx, ds.Audit)
	}
	grace := p.claimGrace()
	if term == nil || ds.Term >= term.Revision {
		return Decision{Reason: "being decided", Retry: grace}, nil
	}
	if wait := grace - time.Since(term.Since); wait > 0 {
		return Decision{Reason: "claimed under an earlier lease", Retry: wait}, nil
	}
	if ds.DryRun {
		// Its claimer sent nothing: decide it again.
		_ = p.decisions.Delete(ctx, id, jetstream.LastRevision(e.Revision()))
		return Decision{Reason: "claimed under an earlier lease, in dry-run", Retry: time.Second}, nil
	}
	audit := events.Resend{
		OTPID: ev.OTPID, ProfileID: ev.ProfileID, DecisionID: id,
		TriggerChannel: ev.Channel, TriggerStatus: ev.Status,
		DecidedAt: p.cfg.Now(), DryRun: p.cfg.ResendMode != ModeLive,
		Result: events.ResendFailed,
		Reason: fmt.Sprintf("claimed by replica %s at %s, which stopped or lost its lease before recording an outcome: it may have re-sent, so this is not decided again", ds.Replica, ds.Claimed.Format(time.RFC3339)),
	}
	ds.Audit = &audit
	done, _ := json.Marshal(ds)
	if _, err := p.decisions.Update(ctx, id, done, e.Revision()); err != nil {
		return Decision{Reason: "decided already", Retry: time.Second}, nil // changed meanwhile: look again
	}
	p.metrics.resends.WithLabelValues(audit.Result).Inc()
	p.logger.Warn("resend decision abandoned by its claimer", "otp_id", ev.OTPID, "decision", id, "claimed_by", ds.Replica, "claimed_at", ds.Claimed)
	return Decision{Result: audit.Result, Reason: audit.Reason}, p.publishAudit(ctx, &audit)
}

func (p *Poller) publishAudit(ctx context.Context, a *events.Resend) error {
	m, err := events.NewResendMessage(a)
	if err != nil {
		return err
	}
	if err := p.pub.Publish(ctx, m); err != nil {
		return fmt.Errorf("publish resend audit %s: %w", a.DecisionID, err)
	}
	return nil
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
