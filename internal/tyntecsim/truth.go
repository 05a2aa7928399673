package tyntecsim

import (
	"encoding/json"
	"slices"
	"strings"
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
	At   time.Time  `json:"at"`
	OTPs []OTPTruth `json:"otps"` // in creation order
	// Silent are the generated logins' silent-auth attempts, in start
	// order; Push every approval request, in creation order.
	Silent []SilentTruth `json:"silent"`
	Push   []PushTruth   `json:"push"`
	// Next, NextSilent and NextPush are the cursors of the following page
	// of each list (TruthCursor), 0 when this page holds the list's newest.
	Next       uint64 `json:"next,omitempty"`
	NextSilent uint64 `json:"next_silent,omitempty"`
	NextPush   uint64 `json:"next_push,omitempty"`
	// Logins counts the generated logins started, LoginsDone those that
	// ended: verified, approved, or their OTP sent (not: delivered).
	Logins     int `json:"logins"`
	LoginsDone int `json:"logins_done"`
	// Forgotten counts what the simulator no longer keeps (Config.Keep):
	// the oldest OTPs, attempts, requests and calls.
	Forgotten Forgotten `json:"forgotten,omitzero"`
}

// Forgotten counts the items of each list a long run forgot, oldest first:
// a page's seqs start after them.
type Forgotten struct {
	OTPs   uint64 `json:"otps,omitempty"`
	Silent uint64 `json:"silent,omitempty"`
	Push   uint64 `json:"push,omitempty"`
	Calls  uint64 `json:"calls,omitempty"`
}

// TruthCursor says where a page of the truth starts in each list: after the
// OTP, silent-auth attempt and approval request with these seqs.
type TruthCursor struct {
	OTPs, Silent, Push uint64
}

// Next is the cursor of the page after t, and whether there is one.
func (t Truth) NextCursor(c TruthCursor) (TruthCursor, bool) {
	more := t.Next != 0 || t.NextSilent != 0 || t.NextPush != 0
	if t.Next != 0 {
		c.OTPs = t.Next
	} else if len(t.OTPs) > 0 {
		c.OTPs = t.OTPs[len(t.OTPs)-1].Seq
	}
	if t.NextSilent != 0 {
		c.Silent = t.NextSilent
	} else if len(t.Silent) > 0 {
		c.Silent = t.Silent[len(t.Silent)-1].Seq
	}
	if t.NextPush != 0 {
		c.Push = t.NextPush
	} else if len(t.Push) > 0 {
		c.Push = t.Push[len(t.Push)-1].Seq
	}
	return c, more
}

// OTPTruth is the ground truth of one OTP.
type OTPTruth struct {
	// Seq is the OTP's place in creation order, from 1 (the cursor of TruthPage).
	Seq       uint64 `json:"seq"`
	ID        string `json:"id"`
	API       string `json:"api"` // APIv1 or APIv4
	To        string `json:"to"`
	Code      string `json:"code"`
	ProfileID string `json:"profile_id,omitempty"` // v4 only
	Profile   string `json:"profile,omitempty"`
	Priority  string `json:"priority,omitempty"`
	Generated bool   `json:"generated"` // sent by the traffic generator
	// JourneyID is the correlation id of the generated login the OTP belongs
	// to; empty for OTPs sent through the API (their journey is the OTP).
	JourneyID string `json:"journey_id,omitempty"`
	// Track is the app's POST /otps/track with the correlation id, for the
	// OTPs that follow a method (nil otherwise).
	Track   *Delivery `json:"track,omitempty"`
	Created time.Time `json:"created"`
	Expire  time.Time `json:"expire"`
	// Attempts are the channels tried, in dispatch order.
	Attempts []Attempt `json:"attempts"`
	// Final is the OTP status at Truth.At (ACTIVE, VERIFIED, EXPIRED, WRONG_CODE, TOO_MANY_ATTEMPTS).
	Final        events.OTPState `json:"final"`
	AttemptCount int             `json:"attempt_count"`
	// Webhooks are the DeliveryStatus webhooks, one per event and callback, in emission order.
	Webhooks []Webhook `json:"webhooks,omitempty"`
	// Events are the v1 events of the OTP, as GET /2fa/v1/otp/{id}/events
	// answers them (for a v4 OTP only with Config.SharedVersions).
	Events  V1Events `json:"events"`
	Resends []Resend `json:"resends,omitempty"`
	Checks  []Check  `json:"checks,omitempty"`
}

// V1Events are v1 events; their JSON has snake_case keys like the rest of
// the truth, not the wire's camelCase.
type V1Events []tyntec.V1Event

// truthEvent is a v1 event in the truth's JSON.
type truthEvent struct {
	Created          int64  `json:"created"`
	Status           string `json:"status,omitempty"`
	StatusText       string `json:"status_text,omitempty"`
	TimestampCreated string `json:"timestamp_created"`
	Type             string `json:"type"`
}

// MarshalJSON writes the events with snake_case keys.
func (es V1Events) MarshalJSON() ([]byte, error) {
	out := make([]truthEvent, len(es))
	for i, e := range es {
		out[i] = truthEvent{Created: e.Created, Status: e.Status, StatusText: e.StatusText, TimestampCreated: e.TimestampCreated, Type: e.Type}
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (es *V1Events) UnmarshalJSON(data []byte) error {
	var in []truthEvent
	if err := json.Unmarshal(data, &in); err != nil {
		return err
	}
	*es = make(V1Events, len(in))
	for i, e := range in {
		(*es)[i] = tyntec.V1Event{Created: e.Created, Status: e.Status, StatusText: e.StatusText, TimestampCreated: e.TimestampCreated, Type: e.Type}
	}
	return nil
}

// Attempt is one OTP on one channel.
type Attempt struct {
	Channel    events.Channel `json:"channel"`
	Resend     bool           `json:"resend,omitempty"` // started by a v1 re-send rather than the priority
	Dispatched time.Time      `json:"dispatched"`
	// Outcome is DELIVERED, UNDELIVERABLE or TIMED_OUT; empty while pending.
	Outcome   events.Status `json:"outcome,omitempty"`
	Settled   time.Time     `json:"settled"`
	ErrorCode string        `json:"error_code,omitempty"`
}

// Webhook is one DeliveryStatus webhook to one callback.
type Webhook struct {
	CallbackID string         `json:"callback_id"`
	URL        string         `json:"url"`
	Channel    events.Channel `json:"channel"`
	Status     events.Status  `json:"status"`
	Timestamp  time.Time      `json:"timestamp"`            // the body's timestamp
	Dropped    bool           `json:"dropped,omitempty"`    // never sent (fault)
	Duplicated bool           `json:"duplicated,omitempty"` // sent twice (fault)
	Reordered  bool           `json:"reordered,omitempty"`  // held back (fault)
	Requests   int            `json:"requests"`             // HTTP requests made, retries and duplicates included
	Delivered  int            `json:"delivered"`            // requests answered 2xx
	LastStatus int            `json:"last_status"`          // HTTP status of the last request, 0 for a transport error
}

// Resend is one v1 re-send.
type Resend struct {
	At      time.Time      `json:"at"`
	Via     string         `json:"via"`
	Channel events.Channel `json:"channel"`
}

// Check is one code validation (v4 validate or v1 check).
type Check struct {
	At     time.Time       `json:"at"`
	API    string          `json:"api"`
	Right  bool            `json:"right"`
	Result events.OTPState `json:"result"` // VERIFIED, WRONG_CODE, TOO_MANY_ATTEMPTS, EXPIRED, ALREADY_REPORTED
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

// Truth exports the ground truth so far, everything. Its size grows with
// the OTPs sent: long runs page through it with TruthPage.
func (s *Sim) Truth() Truth {
	return s.TruthPage(TruthCursor{}, 0)
}

// TruthPage exports the ground truth of at most limit (0: all) OTPs,
// silent-auth attempts and approval requests each, after those of cursor
// c, in creation order. Next, NextSilent and NextPush are the cursor of the
// page that follows, 0 where a list has no more.
func (s *Sim) TruthPage(c TruthCursor, limit int) Truth {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.now()
	t := Truth{At: now, Logins: s.logins, LoginsDone: s.loginsDone, Forgotten: s.forgotten}
	// Each list holds its items in creation order, item n at index n-1
	// less the forgotten.
	var otps []*otp
	otps, t.Next = pageOf(s.otps, s.forgotten.OTPs, c.OTPs, limit)
	t.OTPs = make([]OTPTruth, 0, len(otps))
	for _, o := range otps {
		t.OTPs = append(t.OTPs, s.otpTruth(o, now))
	}
	var silent []*SilentTruth
	silent, t.NextSilent = pageOf(s.silent, s.forgotten.Silent, c.Silent, limit)
	t.Silent = make([]SilentTruth, 0, len(silent))
	for _, a := range silent {
		at := *a
		if a.Report != nil {
			r := *a.Report
			at.Report = &r
		}
		t.Silent = append(t.Silent, at)
	}
	var pushes []*pushRequest
	pushes, t.NextPush = pageOf(s.pushes, s.forgotten.Push, c.Push, limit)
	t.Push = make([]PushTruth, 0, len(pushes))
	for _, p := range pushes {
		t.Push = append(t.Push, p.truth())
	}
	return t
}

// pageOf returns at most limit (0: all) items with seqs after after, of the
// items all holds after the first gone were forgotten, and the seq of the
// last one returned when more follow (else 0).
func pageOf[T any](all []T, gone, after uint64, limit int) ([]T, uint64) {
	from := min(max(after, gone)-gone, uint64(len(all)))
	page := all[from:]
	if limit > 0 && len(page) > limit {
		return page[:limit], gone + from + uint64(limit)
	}
	return page, 0
}

// TruthSummary is Truth().Summary(), with At set.
func (s *Sim) TruthSummary() Summary {
	t := s.Truth()
	sum := t.Summary()
	sum.At, sum.Forgotten = t.At, t.Forgotten
	return sum
}

// otpTruth is the truth of o at now. Callers hold s.mu.
func (s *Sim) otpTruth(o *otp, now time.Time) OTPTruth {
	o.refresh(now)
	ot := OTPTruth{
		Seq: o.seq, ID: o.id, API: o.api, To: o.to, Code: o.code, ProfileID: o.profileID, Profile: o.profileName,
		Priority: o.priorityName, Generated: o.generated, Created: o.created, Expire: o.expire,
		Final: o.status, AttemptCount: o.attemptCount,
		Events:    slices.Clone(o.events),
		Resends:   slices.Clone(o.resends),
		Checks:    slices.Clone(o.checks),
		JourneyID: o.journeyID,
	}
	if o.track != nil {
		tr := *o.track
		ot.Track = &tr
	}
	for _, a := range o.attempts {
		ot.Attempts = append(ot.Attempts, *a)
	}
	for _, w := range o.webhooks {
		ot.Webhooks = append(ot.Webhooks, *w)
	}
	return ot
}

// Call is one API request the simulator received (GET /_sim/calls answers
// them snake_case, as every /_sim/ answer).
type Call struct {
	At     time.Time `json:"at"` // wall clock
	Method string    `json:"method"`
	Path   string    `json:"path"`
	APIKey string    `json:"api_key"`
	Status int       `json:"status"`
}

// Calls returns every API request received so far, in arrival order.
func (s *Sim) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// MaxCallsInWindow returns the largest number of 2FA API requests (/2fa/…,
// any key, any answer: the budget otpscope's poller keeps) that arrived
// within any window [t, t+window). Silent-auth and push requests are not
// counted: they are other products with budgets of their own.
func (s *Sim) MaxCallsInWindow(window time.Duration) int {
	calls := slices.DeleteFunc(s.Calls(), func(c Call) bool { return !strings.HasPrefix(c.Path, "/2fa/") })
	return MaxInWindow(calls, window)
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
	// At is the simulated time the summary was taken (by Sim.TruthSummary).
	At               time.Time `json:"at,omitzero"`
	OTPs             int       `json:"otps"`
	Fallback         int       `json:"fallback"`
	DeliveredPrimary int       `json:"delivered_primary"`
	DeliveredLater   int       `json:"delivered_later"`
	Failed           int       `json:"failed"`
	Pending          int       `json:"pending"`
	// Resends are the attempts beyond the first on the same channel.
	Resends int `json:"resends"`
	// Channels counts attempts per channel: all, delivered, failed
	// (undeliverable + timed out), pending. SILENT and PUSH appear as
	// channels too: an attempt is a silent-auth attempt (delivered =
	// verified) or an approval request (delivered = approved).
	Channels map[string]ChannelSummary `json:"channels"`
	// Journeys counts logins joined by correlation id (each OTP sent
	// through the API, or request without one, a journey of its own): what
	// /api/v1/fallback should say across methods. Without methods it equals
	// the OTP figures above.
	Journeys JourneySummary `json:"journeys"`
	// Logins and LoginsDone are Truth's.
	Logins     int `json:"logins"`
	LoginsDone int `json:"logins_done"`
	// Forgotten counts what a long run no longer keeps (Config.Keep), so
	// is not in the counts above (set by Sim.TruthSummary).
	Forgotten Forgotten `json:"forgotten,omitzero"`
}

// ChannelSummary counts one channel's attempts.
type ChannelSummary struct {
	Attempts      int `json:"attempts"`
	Delivered     int `json:"delivered"`
	Failed        int `json:"failed"`
	Undeliverable int `json:"undeliverable"`
	TimedOut      int `json:"timed_out"`
	Pending       int `json:"pending"`
	// Failures counts the failed attempts of SILENT by not_verified or
	// error code, of PUSH by denied or expired.
	Failures map[string]int `json:"failures,omitempty"`
}

// Summary counts journeys by outcome and attempts by channel, as
// docs/analytics.md defines them: each dispatch is an attempt; a journey
// falls back when it tries a second channel (a resend on the same channel
// is not a fallback); it is delivered on the primary when its first
// DELIVERED is on its first channel, later when on another, failed when
// every attempt failed, else pending.
func (t Truth) Summary() Summary {
	s := Summary{Channels: map[string]ChannelSummary{}, Logins: t.Logins, LoginsDone: t.LoginsDone}
	for _, o := range t.OTPs {
		s.add(o)
	}
	method := func(a JourneyAttempt) {
		c := s.Channels[a.Channel]
		c.Attempts++
		switch a.Outcome {
		case OutcomeDelivered:
			c.Delivered++
		case OutcomePending:
			c.Pending++
		default:
			c.Failed++
			if c.Failures == nil {
				c.Failures = map[string]int{}
			}
			c.Failures[a.Reason]++
		}
		s.Channels[a.Channel] = c
	}
	for _, a := range t.Silent {
		method(a.attempt())
	}
	for _, p := range t.Push {
		method(p.attempt())
	}
	s.Journeys = SummarizeJourneys(t.Journeys())
	return s
}

// add counts one OTP.
func (s *Summary) add(o OTPTruth) {
	if s.Channels == nil {
		s.Channels = map[string]ChannelSummary{}
	}
	s.OTPs++
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
			c.Pending++
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
