package tyntecsim

import (
	"time"
)

// SilentTruth is one Silent Authentication attempt of a generated login, as
// the simulated app saw it and reported it to otpscope. (Silent auth has no
// callback and no status endpoint: the attempt id and correlation id exist
// only in the app, so attempts by other clients of the endpoints are not in
// the truth; /_sim/calls lists their requests.)
type SilentTruth struct {
	// Seq is the attempt's place in start order, from 1 (the cursor of its page).
	Seq           uint64 `json:"seq"`
	AttemptID     string `json:"attempt_id"`
	CorrelationID string `json:"correlation_id"`
	ClientID      string `json:"client_id"`
	Scope         string `json:"scope"`
	LoginHint     string `json:"login_hint"`
	// ProfileID is the profile of the OTP the login falls back to, which
	// the app reports with the outcome, so that a journey's profile does
	// not depend on whether the method succeeded.
	ProfileID string `json:"profile_id,omitempty"`
	// Started is before the authorize request, Finished after the last
	// answer (simulated time): the startedAt and finishedAt of the report.
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
	// Result is verified, not_verified or error; empty while under way.
	Result string `json:"result,omitempty"`
	// Error is the authorize error, or token_<error> / userinfo_<error>.
	Error    string `json:"error,omitempty"`
	MobileID string `json:"mobile_id,omitempty"`
	// Report is the POST of the outcome to otpscope (nil: no otpscope configured).
	Report *Delivery `json:"report,omitempty"`
}

// Silent-auth results, as the app reports them.
const (
	SilentVerified    = "verified"
	SilentNotVerified = "not_verified"
	SilentError       = "error"
)

// PushTruth is one approval request, whoever created it.
type PushTruth struct {
	// Seq is the request's place in creation order, from 1 (the cursor of its page).
	Seq     uint64            `json:"seq"`
	UUID    string            `json:"uuid"`
	TFAID   string            `json:"tfa_id"`
	Message string            `json:"message"`
	Details map[string]string `json:"details,omitempty"`
	// CorrelationID is hidden_details[correlationId], where the app puts its login id.
	CorrelationID   string    `json:"correlation_id,omitempty"`
	SecondsToExpire int       `json:"seconds_to_expire"`
	Created         time.Time `json:"created"`
	// Updated is when the status last changed (= Created while pending).
	Updated time.Time `json:"updated"`
	// Status is pending, approved, denied or expired.
	Status    string `json:"status"`
	Generated bool   `json:"generated"` // created by the traffic generator
	// Callbacks are the status callbacks, one per status change and push
	// callback URL, in emission order.
	Callbacks []PushCallbackTruth `json:"callbacks,omitempty"`
}

// PushCallbackTruth is one status callback to one URL.
type PushCallbackTruth struct {
	URL        string    `json:"url"`
	Status     string    `json:"status"`
	At         time.Time `json:"at"` // the body's updatedAt
	Dropped    bool      `json:"dropped,omitempty"`
	Duplicated bool      `json:"duplicated,omitempty"`
	Reordered  bool      `json:"reordered,omitempty"`
	Requests   int       `json:"requests"`
	Delivered  int       `json:"delivered"`
	LastStatus int       `json:"last_status"`
}

// Delivery is how one request of the simulated app to otpscope went:
// requests made (retries included), those answered 2xx, the last status (0
// for a transport error).
type Delivery struct {
	URL        string `json:"url"`
	Requests   int    `json:"requests"`
	Delivered  int    `json:"delivered"`
	LastStatus int    `json:"last_status"`
}

func (d *Delivery) record(status int, ok bool) {
	d.Requests++
	d.LastStatus = status
	if ok {
		d.Delivered++
	}
}

// Reached reports whether otpscope acknowledged the request at least once
// (false for nil: nothing was sent).
func (d *Delivery) Reached() bool { return d != nil && d.Delivered > 0 }

func (cb *PushCallbackTruth) record(status int, ok bool) {
	cb.Requests++
	cb.LastStatus = status
	if ok {
		cb.Delivered++
	}
}

// Pending reports whether the attempt is still under way.
func (a SilentTruth) Pending() bool { return a.Result == "" }

// Seen reports whether otpscope can know the approval request: a callback
// of it was acknowledged.
func (p PushTruth) Seen() bool {
	for _, cb := range p.Callbacks {
		if cb.Delivered > 0 {
			return true
		}
	}
	return false
}
