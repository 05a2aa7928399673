package poller

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/tyntec"
)

// Policy is the resend policy: the first rule that matches a failure decides.
// Its file is JSON:
//
//	{"rules": [{
//	  "profiles": ["adbe6521-f5bd-4295-9fd9-776debdf7d01"], // profileIds; empty = any (v1 OTPs have none)
//	  "channels": ["SMS"],                       // failing channel; empty = any
//	  "statuses": ["UNDELIVERABLE", "TIMED_OUT"], // default both
//	  "via": ["VOICE", "SMS"],                   // resend n uses via[n-1] (the last one repeats)
//	  "maxResends": 1,                           // per OTP, default 1; 0 = never (a rule that excludes)
//	  "minDelay": "30s"                          // after the failure and after the previous resend
//	}]}
type Policy struct {
	Rules []Rule `json:"rules"`
}

// Rule is one entry of a Policy.
type Rule struct {
	Profiles   []string         `json:"profiles,omitempty"`
	Channels   []events.Channel `json:"channels,omitempty"`
	Statuses   []events.Status  `json:"statuses,omitempty"`
	Via        []string         `json:"via"`
	MaxResends int              `json:"maxResends"`
	MinDelay   Duration         `json:"minDelay,omitempty"`
}

// UnmarshalJSON reads a rule, maxResends 1 when it is left out (an
// explicit 0 re-sends nothing: a rule that keeps a profile or channel from
// the rules after it).
func (r *Rule) UnmarshalJSON(b []byte) error {
	type plain Rule // without this method
	w := struct {
		plain
		MaxResends *int `json:"maxResends"`
	}{}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return err
	}
	*r = Rule(w.plain)
	r.MaxResends = 1
	if w.MaxResends != nil {
		r.MaxResends = *w.MaxResends
	}
	return nil
}

// Duration is a time.Duration written as text ("30s") in JSON.
type Duration time.Duration

// UnmarshalJSON reads "30s" (or a number of seconds).
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var secs float64
		if err := json.Unmarshal(b, &secs); err != nil {
			return fmt.Errorf("duration %s: want \"30s\" or seconds", b)
		}
		*d = Duration(secs * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the duration as text.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// LoadPolicy reads and validates a policy file.
func LoadPolicy(path string) (*Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read resend policy: %w", err)
	}
	pol, err := ParsePolicy(b)
	if err != nil {
		return nil, fmt.Errorf("resend policy %s: %w", path, err)
	}
	return pol, nil
}

// ParsePolicy decodes and validates a policy; unknown fields are errors, so a
// typo cannot silently widen or narrow it.
func ParsePolicy(b []byte) (*Policy, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var pol Policy
	if err := dec.Decode(&pol); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if err := dec.Decode(&json.RawMessage{}); err != io.EOF {
		return nil, fmt.Errorf("decode: more after the policy's object (one JSON object, {\"rules\": [...]})")
	}
	if len(pol.Rules) == 0 {
		return nil, fmt.Errorf("no rules: a policy without rules re-sends nothing; leave out --resend-policy for that")
	}
	for i := range pol.Rules {
		r := &pol.Rules[i]
		if len(r.Via) == 0 {
			return nil, fmt.Errorf("rule %d: via is required (AUTO, SMS or VOICE)", i)
		}
		for j, v := range r.Via {
			v = strings.ToUpper(v)
			if v != tyntec.ViaAuto && v != tyntec.ViaSMS && v != tyntec.ViaVoice {
				return nil, fmt.Errorf("rule %d: via %q: want AUTO, SMS or VOICE", i, r.Via[j])
			}
			r.Via[j] = v
		}
		for j, c := range r.Channels {
			r.Channels[j] = events.Channel(strings.ToUpper(strings.TrimSpace(string(c))))
			if !r.Channels[j].Known() {
				// A misspelt channel would leave the rule dead, or let the
				// failures it meant fall to a wider rule after it.
				return nil, fmt.Errorf("rule %d: channel %q: want SMS, VOICE, VIBER or WHATSAPP (a tyntec channel whose failures can be re-sent)", i, c)
			}
		}
		if len(r.Statuses) == 0 {
			r.Statuses = []events.Status{events.StatusUndeliverable, events.StatusTimedOut}
		}
		for j, s := range r.Statuses {
			r.Statuses[j] = events.Status(strings.ToUpper(string(s)))
			if !r.Statuses[j].Failed() {
				return nil, fmt.Errorf("rule %d: status %q: want UNDELIVERABLE or TIMED_OUT", i, s)
			}
		}
		if r.MaxResends < 0 || r.MinDelay < 0 {
			return nil, fmt.Errorf("rule %d: maxResends and minDelay must not be negative", i)
		}
	}
	return &pol, nil
}

// Match returns the first rule for a failure of ev, or nil.
func (pol *Policy) Match(ev *events.DeliveryStatus) *Rule {
	if pol == nil {
		return nil
	}
	for i := range pol.Rules {
		r := &pol.Rules[i]
		if len(r.Profiles) > 0 && !slices.Contains(r.Profiles, ev.ProfileID) {
			continue
		}
		if len(r.Channels) > 0 && !slices.Contains(r.Channels, ev.Channel) {
			continue
		}
		if !slices.Contains(r.Statuses, ev.Status) {
			continue
		}
		return r
	}
	return nil
}

// via returns the channel of resend number n (1-based).
func (r *Rule) via(n int) string {
	return r.Via[min(n, len(r.Via))-1]
}
