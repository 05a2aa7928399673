package tyntecsim

import (
	"slices"
	"time"

	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/tyntec"
)

// API versions an OTP was sent through.
const (
	APIv1 = "v1"
	APIv4 = "v4"
)

// Truth is what the simulator did, for comparison with what otpscope measured.
type Truth struct {
	// At is the simulated time of the export; Final statuses are as of At.
	At   time.Time
	OTPs []OTPTruth // in creation order
}

// OTPTruth is the ground truth of one OTP.
type OTPTruth struct {
	ID        string
	API       string // APIv1 or APIv4
	To        string
	Code      string
	ProfileID string // v4 only
	Profile   string
	Priority  string
	Generated bool // sent by the traffic generator
	Created   time.Time
	Expire    time.Time
	// Attempts are the channels tried, in dispatch order.
	Attempts []Attempt
	// Final is the OTP status at Truth.At (ACTIVE, VERIFIED, EXPIRED, WRONG_CODE, TOO_MANY_ATTEMPTS).
	Final        events.OTPState
	AttemptCount int
	// Webhooks are the DeliveryStatus webhooks, one per event and callback, in emission order.
	Webhooks []Webhook
	// Events are the v1 events, as GET /2fa/v1/otp/{id}/events answers them.
	Events  []tyntec.V1Event
	Resends []Resend
	Checks  []Check
}

// Attempt is one OTP on one channel.
type Attempt struct {
	Channel    events.Channel
	Resend     bool // started by a v1 re-send rather than the priority
	Dispatched time.Time
	// Outcome is DELIVERED, UNDELIVERABLE or TIMED_OUT; empty while pending.
	Outcome   events.Status
	Settled   time.Time
	ErrorCode string
}

// Webhook is one DeliveryStatus webhook to one callback.
type Webhook struct {
	CallbackID string
	URL        string
	Channel    events.Channel
	Status     events.Status
	Timestamp  time.Time // the body's timestamp
	Dropped    bool      // never sent (fault)
	Duplicated bool      // sent twice (fault)
	Reordered  bool      // held back (fault)
	Requests   int       // HTTP requests made, retries and duplicates included
	Delivered  int       // requests answered 2xx
	LastStatus int       // HTTP status of the last request, 0 for a transport error
}

// Resend is one v1 re-send.
type Resend struct {
	At      time.Time
	Via     string
	Channel events.Channel
}

// Check is one code validation (v4 validate or v1 check).
type Check struct {
	At     time.Time
	API    string
	Right  bool
	Result events.OTPState // VERIFIED, WRONG_CODE, TOO_MANY_ATTEMPTS, EXPIRED, ALREADY_REPORTED
}

// Path returns the channels attempted by the priority, joined like SMS>VIBER.
func (o OTPTruth) Path() string {
	var p string
	for _, a := range o.Attempts {
		if a.Resend {
			continue
		}
		if p != "" {
			p += ">"
		}
		p += string(a.Channel)
	}
	return p
}

// DeliveredOn returns the channel of the first DELIVERED attempt, or "".
func (o OTPTruth) DeliveredOn() events.Channel {
	var first *Attempt
	for i := range o.Attempts {
		a := &o.Attempts[i]
		if a.Outcome == events.StatusDelivered && (first == nil || a.Settled.Before(first.Settled)) {
			first = a
		}
	}
	if first == nil {
		return ""
	}
	return first.Channel
}

// OTP returns the truth of one OTP.
func (t Truth) OTP(id string) (OTPTruth, bool) {
	for _, o := range t.OTPs {
		if o.ID == id {
			return o, true
		}
	}
	return OTPTruth{}, false
}

// Truth exports the ground truth so far.
func (s *Sim) Truth() Truth {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.now()
	t := Truth{At: now, OTPs: make([]OTPTruth, 0, len(s.otps))}
	for _, o := range s.otps {
		o.refresh(now)
		ot := OTPTruth{
			ID: o.id, API: o.api, To: o.to, Code: o.code, ProfileID: o.profileID, Profile: o.profileName,
			Priority: o.priorityName, Generated: o.generated, Created: o.created, Expire: o.expire,
			Final: o.status, AttemptCount: o.attemptCount,
			Events:  slices.Clone(o.events),
			Resends: slices.Clone(o.resends),
			Checks:  slices.Clone(o.checks),
		}
		for _, a := range o.attempts {
			ot.Attempts = append(ot.Attempts, *a)
		}
		for _, w := range o.webhooks {
			ot.Webhooks = append(ot.Webhooks, *w)
		}
		t.OTPs = append(t.OTPs, ot)
	}
	return t
}

// Call is one API request the simulator received.
type Call struct {
	At     time.Time // wall clock
	Method string
	Path   string
	APIKey string
	Status int
}

// Calls returns every API request received so far, in arrival order.
func (s *Sim) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// MaxCallsInWindow returns the largest number of API requests (any key, any
// answer) that arrived within any window [t, t+window).
func (s *Sim) MaxCallsInWindow(window time.Duration) int {
	return MaxInWindow(s.Calls(), window)
}

// MaxInWindow returns the largest number of calls within any window [t, t+window).
func MaxInWindow(calls []Call, window time.Duration) int {
	best, lo := 0, 0
	for hi := range calls {
		for calls[hi].At.Sub(calls[lo].At) >= window {
			lo++
		}
		best = max(best, hi-lo+1)
	}
	return best
}

// Settled reports whether at least n OTPs exist, each has been dispatched, and
// every attempt has an outcome. (An OTP between a failure and its fallback's
// dispatch looks settled: compare with a fresh Truth until both sides agree.)
func (t Truth) Settled(n int) bool {
	if len(t.OTPs) < n {
		return false
	}
	for _, o := range t.OTPs {
		if len(o.Attempts) == 0 {
			return false
		}
		for _, a := range o.Attempts {
			if a.Outcome == "" {
				return false
			}
		}
	}
	return true
}

// Summary counts what otpscope's analytics should report for these OTPs.
type Summary struct {
	OTPs, Fallback                   int
	DeliveredPrimary, DeliveredLater int
	Failed, Pending                  int
	// Resends are the attempts beyond the first on the same channel.
	Resends int
	// Channels counts attempts (dispatches) per channel: all, delivered,
	// failed (undeliverable + timed out).
	Channels map[string]ChannelSummary
}

// ChannelSummary counts one channel's attempts.
type ChannelSummary struct{ Attempts, Delivered, Failed, Undeliverable, TimedOut int }

// Summary counts journeys by outcome and attempts by channel, as
// docs/analytics.md defines them: each dispatch is an attempt; a journey
// falls back when it tries a second channel (a resend on the same channel
// is not a fallback); it is delivered on the primary when its first
// DELIVERED is on its first channel, later when on another, failed when
// every attempt failed, else pending.
func (t Truth) Summary() Summary {
	s := Summary{OTPs: len(t.OTPs), Channels: map[string]ChannelSummary{}}
	for _, o := range t.OTPs {
		seen := map[events.Channel]bool{}
		for _, a := range o.Attempts {
			if seen[a.Channel] {
				s.Resends++
			}
			seen[a.Channel] = true
		}
		if len(seen) > 1 {
			s.Fallback++
		}
		pending := false
		for _, a := range o.Attempts {
			c := s.Channels[string(a.Channel)]
			c.Attempts++
			switch a.Outcome {
			case events.StatusDelivered:
				c.Delivered++
			case "":
				pending = true
			case events.StatusTimedOut:
				c.Failed++
				c.TimedOut++
			default:
				c.Failed++
				c.Undeliverable++
			}
			s.Channels[string(a.Channel)] = c
		}
		on := o.DeliveredOn()
		switch {
		case on != "" && on == o.Attempts[0].Channel:
			s.DeliveredPrimary++
		case on != "":
			s.DeliveredLater++
		case pending || len(o.Attempts) == 0:
			s.Pending++
		default:
			s.Failed++
		}
	}
	return s
}
