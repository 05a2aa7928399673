package tyntecsim

import (
	"slices"
	"strings"
	"time"

	"github.com/otpscope/otpscope/internal/events"
)

// Attempt outcomes of a JourneyAttempt, as /api/v1/channels counts them.
const (
	OutcomeDelivered = "delivered" // OTP delivered, number verified, push approved
	OutcomeFailed    = "failed"
	OutcomePending   = "pending"
)

// Journey outcomes, as /api/v1/fallback counts them.
const (
	JourneyDeliveredPrimary  = "delivered_primary"
	JourneyDeliveredFallback = "delivered_fallback"
	JourneyFailed            = "failed"
	JourneyPending           = "pending"
)

// JourneyAttempt is one attempt of a journey on one channel: an OTP's
// dispatch on SMS, VOICE, VIBER or WHATSAPP, a SILENT attempt or a PUSH
// approval request.
type JourneyAttempt struct {
	Channel string `json:"channel"`
	// Start is the OTP attempt's dispatch, the silent attempt's start, the
	// approval request's creation; End its settling (zero while pending):
	// latency = End − Start.
	Start   time.Time `json:"start"`
	End     time.Time `json:"end,omitzero"`
	Outcome string    `json:"outcome"` // OutcomeDelivered, OutcomeFailed, OutcomePending
	// Reason of a failure: UNDELIVERABLE or TIMED_OUT (OTP), not_verified
	// or the error code (SILENT), denied or expired (PUSH).
	Reason string `json:"reason,omitempty"`
	// ErrorCode of a failed OTP attempt, or of a SILENT error.
	ErrorCode string `json:"error_code,omitempty"`
	Resend    bool   `json:"resend,omitempty"`
	// ID is the OTP's id, the silent attempt's id or the request's uuid.
	ID string `json:"id"`
}

// Journey is one login, joined by its correlation id: the generated
// login's method attempt and its OTP's attempts. An OTP sent through the
// API, or an approval request without hiddenDetails[correlationId], is a
// journey of its own (keyed by its id).
type Journey struct {
	ID       string           `json:"id"`
	Attempts []JourneyAttempt `json:"attempts"` // by Start
}

// Path returns the distinct channels in order of first attempt, like
// SILENT>SMS>VIBER.
func (j Journey) Path() string {
	var seen []string
	for _, a := range j.Attempts {
		if !slices.Contains(seen, a.Channel) {
			seen = append(seen, a.Channel)
		}
	}
	return strings.Join(seen, ">")
}

// Fallback reports whether the journey tried more than one channel.
func (j Journey) Fallback() bool { return strings.Contains(j.Path(), ">") }

// Outcome is JourneyDeliveredPrimary when the first delivery (by End) is on
// the first channel, JourneyDeliveredFallback when on another, else
// JourneyPending while an attempt is pending, else JourneyFailed.
func (j Journey) Outcome() string {
	var first *JourneyAttempt
	pending := len(j.Attempts) == 0
	for i := range j.Attempts {
		a := &j.Attempts[i]
		switch a.Outcome {
		case OutcomeDelivered:
			if first == nil || a.End.Before(first.End) {
				first = a
			}
		case OutcomePending:
			pending = true
		}
	}
	switch {
	case first != nil && first.Channel == j.Attempts[0].Channel:
		return JourneyDeliveredPrimary
	case first != nil:
		return JourneyDeliveredFallback
	case pending:
		return JourneyPending
	}
	return JourneyFailed
}

// Journeys groups every attempt of the truth by journey, in order of each
// journey's first attempt. (A page of the truth gives the journeys of that
// page: merge the pages first, see simtest.FetchTruth.)
func (t Truth) Journeys() []Journey {
	byID := map[string]*Journey{}
	var order []string
	add := func(id string, a JourneyAttempt) {
		j, ok := byID[id]
		if !ok {
			j = &Journey{ID: id}
			byID[id] = j
			order = append(order, id)
		}
		j.Attempts = append(j.Attempts, a)
	}
	for _, o := range t.OTPs {
		id := o.JourneyID
		if id == "" {
			id = o.ID
		}
		for _, a := range o.Attempts {
			add(id, otpAttempt(o, a))
		}
	}
	for _, a := range t.Silent {
		add(a.CorrelationID, a.attempt())
	}
	for _, p := range t.Push {
		id := p.CorrelationID
		if id == "" {
			id = p.UUID
		}
		add(id, p.attempt())
	}
	out := make([]Journey, 0, len(order))
	for _, id := range order {
		j := byID[id]
		slices.SortStableFunc(j.Attempts, func(a, b JourneyAttempt) int { return a.Start.Compare(b.Start) })
		out = append(out, *j)
	}
	slices.SortStableFunc(out, func(a, b Journey) int { return a.Attempts[0].Start.Compare(b.Attempts[0].Start) })
	return out
}

func otpAttempt(o OTPTruth, a Attempt) JourneyAttempt {
	ja := JourneyAttempt{Channel: string(a.Channel), Start: a.Dispatched, ID: o.ID, Resend: a.Resend, ErrorCode: a.ErrorCode}
	switch a.Outcome {
	case "":
		ja.Outcome = OutcomePending
	case events.StatusDelivered:
		ja.Outcome, ja.End = OutcomeDelivered, a.Settled
	default:
		ja.Outcome, ja.End, ja.Reason = OutcomeFailed, a.Settled, string(a.Outcome)
	}
	return ja
}

func (a SilentTruth) attempt() JourneyAttempt {
	ja := JourneyAttempt{Channel: MethodSilent, Start: a.Started, End: a.Finished, ID: a.AttemptID}
	switch a.Result {
	case "":
		ja.Outcome = OutcomePending
	case SilentVerified:
		ja.Outcome = OutcomeDelivered
	case SilentError:
		ja.Outcome, ja.Reason, ja.ErrorCode = OutcomeFailed, a.Error, a.Error
	default:
		ja.Outcome, ja.Reason = OutcomeFailed, a.Result
	}
	return ja
}

func (p PushTruth) attempt() JourneyAttempt {
	ja := JourneyAttempt{Channel: MethodPush, Start: p.Created, ID: p.UUID}
	switch p.Status {
	case PushPending:
		ja.Outcome = OutcomePending
	case PushApproved:
		ja.Outcome, ja.End = OutcomeDelivered, p.Updated
	default:
		ja.Outcome, ja.End, ja.Reason = OutcomeFailed, p.Updated, p.Status
	}
	return ja
}

// JourneySummary counts journeys (logins, by correlation id) as
// /api/v1/fallback should: by outcome and by path.
type JourneySummary struct {
	Journeys          int                    `json:"journeys"`
	Fallback          int                    `json:"fallback"`
	DeliveredPrimary  int                    `json:"delivered_primary"`
	DeliveredFallback int                    `json:"delivered_fallback"`
	Failed            int                    `json:"failed"`
	Pending           int                    `json:"pending"`
	Paths             map[string]PathSummary `json:"paths"`
}

// PathSummary counts the journeys of one path, and those delivered (on any channel).
type PathSummary struct {
	Journeys  int `json:"journeys"`
	Delivered int `json:"delivered"`
}

// SummarizeJourneys counts js.
func SummarizeJourneys(js []Journey) JourneySummary {
	s := JourneySummary{Paths: map[string]PathSummary{}}
	for _, j := range js {
		s.Journeys++
		if j.Fallback() {
			s.Fallback++
		}
		p := s.Paths[j.Path()]
		p.Journeys++
		switch j.Outcome() {
		case JourneyDeliveredPrimary:
			s.DeliveredPrimary++
			p.Delivered++
		case JourneyDeliveredFallback:
			s.DeliveredFallback++
			p.Delivered++
		case JourneyPending:
			s.Pending++
		default:
			s.Failed++
		}
		s.Paths[j.Path()] = p
	}
	return s
}

// LoginsSettled reports whether at least n generated logins ended, and
// every attempt of every kind has an outcome: the point where otpscope's
// figures can equal the truth's. (Between a failure and the next channel's
// dispatch a journey looks settled: compare with a fresh truth until both
// sides agree.)
func (t Truth) LoginsSettled(n int) bool {
	if t.LoginsDone < n || t.LoginsDone < t.Logins || !t.Settled(0) {
		return false
	}
	for _, a := range t.Silent {
		if a.Pending() {
			return false
		}
	}
	for _, p := range t.Push {
		if p.Status == PushPending {
			return false
		}
	}
	return true
}

// Reported returns the truth as otpscope can know it from what reached it:
// silent attempts whose outcome report was acknowledged, approval requests
// of which a callback was acknowledged, and OTPs in their login's journey
// only when their /otps/track was acknowledged (else each is its own
// journey, as otpscope sees it). Use it when reports or callbacks may have
// failed; with everything acknowledged it equals t.
func (t Truth) Reported() Truth {
	out := t
	out.OTPs = make([]OTPTruth, len(t.OTPs))
	for i, o := range t.OTPs {
		if o.JourneyID != "" && !o.Track.Reached() && o.Track != nil {
			o.JourneyID = ""
		}
		out.OTPs[i] = o
	}
	out.Silent = slices.DeleteFunc(slices.Clone(t.Silent), func(a SilentTruth) bool { return !a.Report.Reached() })
	out.Push = slices.DeleteFunc(slices.Clone(t.Push), func(p PushTruth) bool { return !p.Seen() })
	return out
}

// Latencies returns, per channel, End − Start of every delivered attempt
// (OTP delivered, number verified, push approved), in journey order: what
// /api/v1/channels' latency percentiles are computed from.
func (t Truth) Latencies() map[string][]time.Duration {
	out := map[string][]time.Duration{}
	for _, j := range t.Journeys() {
		for _, a := range j.Attempts {
			if a.Outcome == OutcomeDelivered {
				out[a.Channel] = append(out[a.Channel], a.End.Sub(a.Start))
			}
		}
	}
	return out
}
