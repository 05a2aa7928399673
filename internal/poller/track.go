package poller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/otpscope/otpscope/internal/backoff"
	"github.com/otpscope/otpscope/internal/broker"
	"github.com/otpscope/otpscope/internal/events"
)

// Durable consumer names, shared by every replica.
const (
	DurableTrack  = "otpscope-poller-track"
	DurableResend = "otpscope-poller-resend"
)

// trackSubjects feed the tracker: every delivery fact and every registration.
var trackSubjects = []string{events.SubjectDeliveryAll, events.SubjectTrack}

// deadLetterSource names the poller in the dead letters it publishes.
const deadLetterSource = "poller"

// retryPolicy delays a message whose handling failed: a second after the
// first delivery, doubling up to 30s.
var retryPolicy = backoff.Policy{First: time.Second, Max: 30 * time.Second}

// consumerSpec is the spec of one of the poller's durable consumers. A new
// consumer starts at startAt, so a first start does not replay a week of
// history; an existing one keeps its position.
func consumerSpec(name, desc string, subjects []string, startAt time.Time) broker.ConsumerSpec {
	return broker.ConsumerSpec{
		Durable: name, Description: desc, Subjects: subjects,
		AckWait: 30 * time.Second, MaxAckPending: 4096, StartAt: startAt,
		Source: deadLetterSource, Retry: retryPolicy,
	}
}

// settle maps a handler's answer to a decision: an error is logged and the
// message retried; a positive delay retries after it; otherwise ack.
func (p *Poller) settle(name, subject string, delay time.Duration, err error) broker.Decision {
	switch {
	case errors.Is(err, context.Canceled):
		// The poller is stopping, or (the resend consumer) lost the
		// leader lease: nothing is wrong with the message.
		p.logger.Debug("message interrupted (stopping, or the leader lease lost); will be redelivered", "consumer", name, "subject", subject)
		return broker.Retry(0)
	case err != nil:
		// Sparse: while NATS cannot store (its disk full) every message
		// fails alike, thousands a minute.
		p.unhandled.WarnOf(name, "consumer", name, "subject", subject, "err", err)
		return broker.Retry(0)
	case delay > 0:
		return broker.Retry(delay)
	}
	return broker.Ack()
}

// handleTrack updates the OTP's record from a delivery fact or a registration.
// A message that cannot be decoded is dead-lettered: it will never decode.
func (p *Poller) handleTrack(ctx context.Context, m *broker.Msg) broker.Decision {
	if m.Subject() == events.SubjectTrack {
		var tr events.Track
		if err := json.Unmarshal(m.Data(), &tr); err != nil || tr.OTPID == "" {
			p.logger.Warn("undecodable tracking message dropped", "err", err)
			return broker.DeadLetter(undecodable(err))
		}
		return p.settle(DurableTrack, m.Subject(), 0, p.Track(ctx, tr))
	}
	var ev events.DeliveryStatus
	if err := json.Unmarshal(m.Data(), &ev); err != nil || ev.OTPID == "" {
		p.logger.Warn("undecodable delivery message dropped", "subject", m.Subject(), "err", err)
		return broker.DeadLetter(undecodable(err))
	}
	if ev.Source == "" || ev.Source == events.SourceWebhook {
		p.sawWebhook(m.Stored())
	}
	return p.settle(DurableTrack, m.Subject(), 0, p.Observe(ctx, &ev))
}

// sawWebhook notes that a webhook's fact stored at was read.
func (p *Poller) sawWebhook(at time.Time) { p.sawWebhookAt(at.UnixNano()) }

// sawWebhookAt keeps the newest of ns and LastWebhook.
func (p *Poller) sawWebhookAt(ns int64) {
	for {
		last := p.lastWebhookNs.Load()
		if ns <= last || p.lastWebhookNs.CompareAndSwap(last, ns) {
			return
		}
	}
}

// LastWebhook is when the newest of tyntec's webhooks the poller replicas
// have read was stored (zero if none yet): in a process without ingest,
// the sign that tyntec's callback still points at otpscope, which the
// stream's newest message is not (the poller's own reads land there too).
// Each replica reads a share of the tracking consumer's messages, so they
// share the newest through BucketWorld (shareLastWebhook).
func (p *Poller) LastWebhook() time.Time {
	if ns := p.lastWebhookNs.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// undecodable is the dead-letter reason of a message the poller cannot read.
func undecodable(err error) error {
	if err == nil {
		return errors.New("decode: no otpId")
	}
	return fmt.Errorf("decode: %w", err)
}

// Observe records a delivery fact (from a webhook or a poll) in the OTP's
// record, starting to track the OTP when it is new.
func (p *Poller) Observe(ctx context.Context, ev *events.DeliveryStatus) error {
	now := p.cfg.Now()
	_, err := p.store.update(ctx, ev.OTPID, func(r *Record, exists bool) error {
		if !exists {
			p.newRecord(r, ev.OTPID, "v4", ev.Timestamp, now)
		}
		if ev.ProfileID != "" && r.ProfileID == "" {
			r.ProfileID = ev.ProfileID
		}
		source := ev.Source
		if source == "" {
			source = events.SourceWebhook
		}
		if !r.addFact(Fact{Channel: ev.Channel, Status: ev.Status, Timestamp: ev.Timestamp, Source: source}) && exists {
			return errNoChange
		}
		if source == events.SourceWebhook {
			r.LastSeen = now
		}
		return nil
	})
	return err
}

// Track registers an OTP announced by an upstream service, or records the
// verification outcome it reports. A reported final status is published as
// an OTP status with source upstream: it is exact and costs no call.
func (p *Poller) Track(ctx context.Context, tr events.Track) error {
	now := p.cfg.Now()
	api := tr.API
	if api == "" {
		api = "v4"
	}
	at := tr.At
	if at.IsZero() {
		at = now
	}
	var publish bool
	_, err := p.store.update(ctx, tr.OTPID, func(r *Record, exists bool) error {
		publish = false
		if !exists {
			p.newRecord(r, tr.OTPID, api, at, now)
		} else if r.API != api && tr.Status == "" {
			r.API = api // a registration knows the API better than a webhook's guess
		}
		if tr.ProfileID != "" {
			r.ProfileID = tr.ProfileID
		}
		if tr.Status != "" && r.OTPStatus != tr.Status && !events.OTPStatusFinal(r.OTPStatus) {
			r.OTPStatus, r.StatusSource = tr.Status, events.SourceUpstream
			publish = true
		}
		if !publish && exists && r.API == api {
			return errNoChange
		}
		return nil
	})
	if err != nil || !publish {
		return err
	}
	msg, err := events.NewOTPStatusMessage(&events.OTPStatus{
		OTPID: tr.OTPID, API: api, Status: events.OTPState(tr.Status), ProfileID: tr.ProfileID,
		ObservedAt: at, Source: events.SourceUpstream, SampleRate: 1,
	})
	if err != nil {
		return err
	}
	return p.pub.Publish(ctx, msg)
}

// newRecord starts a record first seen at seen (an event's time) and now.
func (p *Poller) newRecord(r *Record, id, api string, seen, now time.Time) {
	if seen.IsZero() || seen.After(now) {
		seen = now
	}
	*r = Record{OTPID: id, API: api, FirstSeen: seen, LastFact: seen, Expires: seen.Add(p.cfg.OTPExpiry)}
}

// webhookKey is the key of BucketWorld holding LastWebhook (Unix
// nanoseconds), the newest any replica read.
const webhookKey = "last-webhook"

// lastWebhookShare is how often a replica reads the shared LastWebhook and
// writes its own when newer.
var lastWebhookShare = 10 * time.Second

// shareLastWebhook shares LastWebhook with the other replicas until ctx
// ends: a replica's own is written when newer than the shared one, and
// the shared one read into it, at start too (a restart knows it).
func (p *Poller) shareLastWebhook(ctx context.Context) {
	t := time.NewTicker(lastWebhookShare)
	defer t.Stop()
	for {
		var shared int64
		if e, err := p.worldKV.Get(ctx, webhookKey); err == nil {
			shared, _ = strconv.ParseInt(string(e.Value()), 10, 64)
			p.sawWebhookAt(shared)
		}
		if own := p.lastWebhookNs.Load(); own > shared {
			if _, err := p.worldKV.Put(ctx, webhookKey, []byte(strconv.FormatInt(own, 10))); err != nil && ctx.Err() == nil {
				p.logger.Debug("last webhook not shared", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
