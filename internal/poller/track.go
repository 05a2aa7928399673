package poller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/otpscope/otpscope/internal/events"
)

// Durable consumer names, shared by every replica.
const (
	DurableTrack  = "otpscope-poller-track"
	DurableResend = "otpscope-poller-resend"
)

// trackSubjects feed the tracker: every delivery fact and every registration.
var trackSubjects = []string{events.SubjectDeliveryAll, events.SubjectTrack}

// consumer returns the durable consumer name, creating it when missing. A new
// consumer starts at startAt, so a first start does not replay a week of
// history; an existing one keeps its position (its start cannot be updated).
func consumer(ctx context.Context, js jetstream.JetStream, stream, name, desc string, subjects []string, startAt time.Time) (jetstream.Consumer, error) {
	c, err := js.Consumer(ctx, stream, name)
	if err == nil {
		return c, nil
	}
	if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("look up consumer %s: %w", name, err)
	}
	c, err = js.CreateConsumer(ctx, stream, jetstream.ConsumerConfig{
		Durable:        name,
		Description:    desc,
		FilterSubjects: subjects,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        30 * time.Second,
		MaxAckPending:  4096,
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
		OptStartTime:   &startAt,
	})
	if errors.Is(err, jetstream.ErrConsumerExists) {
		// Another replica created it meanwhile.
		return js.Consumer(ctx, stream, name)
	}
	if err != nil {
		return nil, fmt.Errorf("create consumer %s: %w", name, err)
	}
	return c, nil
}

// consume fetches from c and hands each message to handle until ctx ends.
// handle returns nil to ack, a delay to nak with, or an error (logged, nak'ed
// after a second).
func (p *Poller) consume(ctx context.Context, c jetstream.Consumer, name string, handle func(context.Context, jetstream.Msg) (time.Duration, error)) error {
	for ctx.Err() == nil {
		batch, err := c.Fetch(256, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			if ctx.Err() == nil {
				p.logger.Warn("fetch failed", "consumer", name, "err", err)
				sleep(ctx, time.Second)
			}
			continue
		}
		for m := range batch.Messages() {
			delay, err := handle(ctx, m)
			switch {
			case err != nil:
				p.logger.Warn("message not handled; will be redelivered", "consumer", name, "subject", m.Subject(), "err", err)
				_ = m.NakWithDelay(time.Second)
			case delay > 0:
				_ = m.NakWithDelay(delay)
			default:
				_ = m.Ack()
			}
		}
	}
	return nil
}

// handleTrack updates the OTP's record from a delivery fact or a registration.
// A message that cannot be decoded is terminated: it will never decode.
func (p *Poller) handleTrack(ctx context.Context, m jetstream.Msg) (time.Duration, error) {
	if m.Subject() == events.SubjectTrack {
		var tr events.Track
		if err := json.Unmarshal(m.Data(), &tr); err != nil || tr.OTPID == "" {
			p.logger.Warn("undecodable tracking message dropped", "err", err)
			_ = m.Term()
			return 0, nil
		}
		return 0, p.Track(ctx, tr)
	}
	var ev events.DeliveryStatus
	if err := json.Unmarshal(m.Data(), &ev); err != nil || ev.OTPID == "" {
		p.logger.Warn("undecodable delivery message dropped", "subject", m.Subject(), "err", err)
		_ = m.Term()
		return 0, nil
	}
	return 0, p.Observe(ctx, &ev)
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

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
