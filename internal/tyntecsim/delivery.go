package tyntecsim

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/tyntec"
)

// otp is the simulator's state of one OTP. Guarded by Sim.mu.
type otp struct {
	seq               uint64 // creation order, from 1
	id, api, to, code string
	profileID         string
	profileName       string
	priorityName      string
	applicationID     string
	referenceID       string
	channels          []events.Channel
	created, expire   time.Time
	allowed           int
	attemptCount      int
	status            events.OTPState
	generated         bool
	deleted           bool
	userScheduled     bool
	closedAt          time.Time // when a check verified or locked the OTP
	rng               *rand.Rand
	attempts          []*Attempt
	webhooks          []*Webhook
	events            []tyntec.V1Event
	resends           []Resend
	checks            []Check
	journeyID         string    // the generated login's correlation id
	track             *Delivery // the app's POST /otps/track of it, if any
}

// refresh expires an open OTP whose time is up.
func (o *otp) refresh(now time.Time) {
	if o.status.Open() && !now.Before(o.expire) {
		o.status = events.OTPExpired
	}
}

// open reports whether the OTP can still be verified at now.
func (o *otp) open(now time.Time) bool {
	o.refresh(now)
	return o.status.Open()
}

// openAt reports whether the OTP was still open at simulated time at, which
// may lie before the last check when the engine runs late.
func (o *otp) openAt(at time.Time) bool {
	return at.Before(o.expire) && (o.closedAt.IsZero() || at.Before(o.closedAt))
}

// newOTP holds what a send request decided.
type newOTP struct {
	api, to, code string
	profile       tyntec.Profile
	priority      tyntec.Priority
	channels      []events.Channel // the channels to try, in order
	allowed       int
	codeLen       int
	alnum         bool          // generate a lower-case alphanumeric code
	expiry        time.Duration // validity from creation
	appID, refID  string
	generated     bool
}

// createOTP stores an OTP and schedules its first dispatch. Callers hold s.mu.
func (s *Sim) createOTP(n newOTP) *otp {
	s.seq++
	o := &otp{
		seq: s.seq, id: newOTPID(), api: n.api, to: n.to, code: n.code,
		applicationID: n.appID, referenceID: n.refID,
		allowed: n.allowed, status: events.OTPActive, generated: n.generated,
		rng: rand.New(rand.NewPCG(uint64(s.cfg.Seed), 1000+s.seq)),
	}
	if n.api == APIv4 {
		o.profileID, o.profileName, o.priorityName = n.profile.ID, n.profile.Name, n.priority.Name
	}
	o.channels = slices.Clone(n.channels)
	if o.code == "" {
		alpha := codeAlphabet(n.alnum)
		b := make([]byte, max(4, n.codeLen))
		for i := range b {
			b[i] = alpha[o.rng.IntN(len(alpha))]
		}
		o.code = string(b)
	}
	o.created = s.clock.now()
	o.expire = o.created.Add(cmp.Or(s.cfg.OTPExpiry, n.expiry))
	s.otps = append(s.otps, o)
	s.byID[o.id] = o
	if s.cfg.Keep > 0 && o.seq%1024 == 0 {
		s.forget(o.created)
	}
	o.events = append(o.events, v1Event(events.V1EventCreated, "", string(events.OTPActive), o.created))
	s.schedule(o.created.Add(s.cfg.Channels[o.channels[0]].DispatchDelay), func(at time.Time) { s.dispatch(o, 0, false, at) })
	return o
}

// dispatch starts the attempt on channel idx of the OTP's channels (or, for a
// re-send, on the channel appended for it) and schedules its report.
func (s *Sim) dispatch(o *otp, idx int, resend bool, at time.Time) {
	if idx > 0 && !resend && !o.openAt(at) {
		return // verified, locked or expired before the fallback was due
	}
	ch := o.channels[idx]
	beh := s.cfg.Channels[ch]
	a := &Attempt{Channel: ch, Resend: resend, Dispatched: at}
	o.attempts = append(o.attempts, a)
	s.emit(o, a, events.StatusDispatched, at, nil)

	// Draw in a fixed order so the OTP's generator gives the same story.
	deliverable := o.rng.Float64() < beh.DeliveryProbability
	latency := beh.Latency.sample(o.rng.NormFloat64())
	outcome := events.StatusUndeliverable
	if deliverable {
		outcome = events.StatusDelivered
	}
	if latency > beh.Timeout {
		outcome, latency = events.StatusTimedOut, beh.Timeout
	}
	s.schedule(at.Add(latency), func(at time.Time) { s.settle(o, a, idx, outcome, at) })
}

// settle records the report of an attempt and falls back to the next channel on failure.
func (s *Sim) settle(o *otp, a *Attempt, idx int, outcome events.Status, at time.Time) {
	a.Outcome, a.Settled = outcome, at
	var derr *events.DeliveryError
	if outcome != events.StatusDelivered {
		derr = deliveryError(a.Channel, outcome, s.cfg.Channels[a.Channel].Timeout)
		a.ErrorCode = derr.Code
	}
	s.emit(o, a, outcome, at, derr)
	switch {
	case outcome == events.StatusDelivered:
		s.simulateUser(o, at)
	case !a.Resend && idx+1 < len(o.channels):
		next := s.cfg.Channels[o.channels[idx+1]]
		s.schedule(at.Add(next.DispatchDelay), func(at time.Time) { s.dispatch(o, idx+1, false, at) })
	}
}

// deliveryError is the error object of a failed attempt. The codes are
// assumed: they follow the tyntec::<area>::<detail> form of the seed's one
// example (tyntec::internal::500), with the area "sim" so that nobody takes
// them for tyntec's.
func deliveryError(channel events.Channel, outcome events.Status, timeout time.Duration) *events.DeliveryError {
	ch := strings.ToLower(string(channel))
	if outcome == events.StatusTimedOut {
		return &events.DeliveryError{Code: "tyntec::sim::" + ch + "_timeout", Message: fmt.Sprintf("no delivery report within %s", timeout)}
	}
	return &events.DeliveryError{Code: "tyntec::sim::" + ch + "_undeliverable", Message: "the message could not be delivered to the recipient"}
}

// emit records a delivery event: a v1 event on every OTP, and a webhook to
// every matching callback for v4 OTPs.
func (s *Sim) emit(o *otp, a *Attempt, status events.Status, at time.Time, derr *events.DeliveryError) {
	o.events = append(o.events, v1Event(string(a.Channel), events.V1EventStatus(status), string(status), at))
	if o.api != APIv4 {
		return
	}
	if s.cfg.WebhookSeconds {
		at = at.Truncate(time.Second)
	}
	body, err := json.Marshal(events.DeliveryStatus{
		Channel: a.Channel, OTPID: o.id, ProfileID: o.profileID, Status: status, Timestamp: at, Error: derr,
	})
	if err != nil {
		s.log.Error("encode webhook", "err", err)
		return
	}
	for _, cb := range s.callbacks {
		if cb.ProfileID != "" && cb.ProfileID != o.profileID {
			continue
		}
		// Always three draws, so enabling one fault does not change the others.
		drop, dup, reorder := s.faults.Float64(), s.faults.Float64(), s.faults.Float64()
		w := &Webhook{CallbackID: cb.ID, URL: cb.URL, Channel: a.Channel, Status: status, Timestamp: at}
		o.webhooks = append(o.webhooks, w)
		f := s.cfg.Faults
		if drop < f.WebhookDrop {
			w.Dropped = true
			continue
		}
		job := hookJob{key: o.id, record: w.record, url: cb.URL, headers: copyHeaders(cb.Headers), body: body}
		w.Duplicated, w.Reordered = s.sendFaulty(job, at, dup, reorder)
	}
}

// record notes one request's answer.
func (w *Webhook) record(status int, ok bool) {
	w.Requests++
	w.LastStatus = status
	if ok {
		w.Delivered++
	}
}

// sendFaulty queues job once, or twice (duplicate fault), now or after the
// reorder delay (reorder fault), by the draws dup and reorder. Callers hold
// s.mu and have drawn (and applied) the drop fault.
func (s *Sim) sendFaulty(job hookJob, at time.Time, dup, reorder float64) (duplicated, reordered bool) {
	f := s.cfg.Faults
	job.copies = 1
	if dup < f.WebhookDuplicate {
		duplicated, job.copies = true, 2
	}
	if reorder < f.WebhookReorder {
		s.schedule(at.Add(f.ReorderDelay), func(time.Time) { s.hooks.enqueue(job) })
		return duplicated, true
	}
	s.hooks.enqueue(job)
	return duplicated, false
}

// v1Event builds one v1 event.
func v1Event(typ, status, text string, at time.Time) tyntec.V1Event {
	return tyntec.V1Event{Created: at.UnixMilli(), Status: status, StatusText: text, TimestampCreated: formatV1Time(at), Type: typ}
}

func formatV1Time(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// check validates a code and returns the v4 answer. Callers hold s.mu.
func (s *Sim) check(o *otp, code, api string, at time.Time) events.OTPState {
	o.refresh(at)
	result := o.status
	switch o.status {
	case events.OTPVerified:
		result = events.OTPAlreadyReported
	case events.OTPExpired, events.OTPTooManyAttempts:
	default:
		o.attemptCount++
		switch {
		case code == o.code:
			o.status, o.closedAt = events.OTPVerified, at
		case o.attemptCount >= o.allowed:
			o.status, o.closedAt = events.OTPTooManyAttempts, at
		default:
			o.status = events.OTPWrongCode
		}
		result = o.status
	}
	o.checks = append(o.checks, Check{At: at, API: api, Right: code == o.code, Result: result})
	st := events.V1StatusFailed
	if result == events.OTPVerified {
		st = events.V1StatusSuccess
	}
	o.events = append(o.events, v1Event(events.V1EventCheck, st, string(result), at))
	return result
}

// resend starts an extra attempt on channel ch at now. Callers hold s.mu.
func (s *Sim) resend(o *otp, via string, ch events.Channel, now time.Time) {
	o.resends = append(o.resends, Resend{At: now, Via: via, Channel: ch})
	o.events = append(o.events, v1Event(events.V1EventResend, "", via, now))
	o.channels = append(o.channels, ch)
	idx := len(o.channels) - 1
	s.schedule(now.Add(s.cfg.Channels[ch].DispatchDelay), func(at time.Time) { s.dispatch(o, idx, true, at) })
}

// simulateUser makes the user of a generated OTP type the code after it
// arrived: most type it right, some first type a wrong one, some never.
func (s *Sim) simulateUser(o *otp, at time.Time) {
	if !o.generated || o.userScheduled {
		return
	}
	o.userScheduled = true
	t := s.cfg.Traffic
	verify := o.rng.Float64() < t.VerifyShare
	wrong := o.rng.Float64() < t.WrongCodeShare
	think := t.ThinkTime.sample(o.rng.NormFloat64())
	if !verify {
		return
	}
	at = at.Add(think)
	if wrong {
		s.schedule(at, func(at time.Time) { s.check(o, wrongCode(o.code), o.api, at) })
		at = at.Add(t.ThinkTime.Median)
	}
	s.schedule(at, func(at time.Time) { s.check(o, o.code, o.api, at) })
}
