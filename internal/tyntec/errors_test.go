package tyntec_test

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/tyntec"
)

func TestAPIErrorIs(t *testing.T) {
	all := []error{tyntec.ErrBadRequest, tyntec.ErrUnauthorized, tyntec.ErrNotFound, tyntec.ErrGone, tyntec.ErrRateLimited, tyntec.ErrServer}
	tests := []struct {
		status int
		want   error // nil: matches none
	}{
		{400, tyntec.ErrBadRequest},
		{401, tyntec.ErrUnauthorized},
		{403, tyntec.ErrUnauthorized},
		{404, tyntec.ErrNotFound},
		{410, tyntec.ErrGone},
		{429, tyntec.ErrRateLimited},
		{500, tyntec.ErrServer},
		{503, tyntec.ErrServer},
		{409, nil},
	}
	for _, tt := range tests {
		err := fmt.Errorf("op: %w", &tyntec.APIError{StatusCode: tt.status})
		for _, s := range all {
			if got := errors.Is(err, s); got != (s == tt.want) {
				t.Errorf("errors.Is(%d, %v) = %v; want %v", tt.status, s, got, s == tt.want)
			}
		}
		var apiErr *tyntec.APIError
		if !errors.As(err, &apiErr) || apiErr.StatusCode != tt.status {
			t.Errorf("errors.As(%d) = %v", tt.status, apiErr)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"7", 7 * time.Second},
		{"1.5", 1500 * time.Millisecond},
		{"-3", 0},
		{"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		// A day, years, past int64's nanoseconds: tyntec.MaxRetryAfter.
		{"86400", tyntec.MaxRetryAfter},
		{"9000000000", tyntec.MaxRetryAfter},
		{"1e10", tyntec.MaxRetryAfter},
		{"1e400", tyntec.MaxRetryAfter},
		{"Inf", tyntec.MaxRetryAfter},
		{"NaN", 0},
		{now.Add(48 * time.Hour).Format(http.TimeFormat), tyntec.MaxRetryAfter},
	}
	for _, tt := range tests {
		if got := tyntec.ParseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("ParseRetryAfter(%q) = %s; want %s", tt.in, got, tt.want)
		}
	}
}

func TestLimiterNeverExceedsBudget(t *testing.T) {
	tests := []struct {
		limit  int
		period time.Duration
		burst  int
	}{
		{100, 60 * time.Second, 10},
		{100, 60 * time.Second, 100},
		{100, 60 * time.Second, 1},
		{10, time.Second, 3},
		{1, time.Second, 1},
	}
	for _, tt := range tests {
		lim := tyntec.NewLimiter(tt.limit, tt.period, tt.burst)
		// A greedy caller on a synthetic clock: take every token the moment it exists.
		start := time.Unix(0, 0)
		var grants []time.Time
		step := tt.period / 20000
		for now := start; now.Before(start.Add(5 * tt.period)); now = now.Add(step) {
			for lim.AllowN(now, 1) {
				grants = append(grants, now)
			}
		}
		lo, most := 0, 0
		for hi := range grants {
			for grants[hi].Sub(grants[lo]) >= tt.period {
				lo++
			}
			most = max(most, hi-lo+1)
		}
		if most > tt.limit {
			t.Errorf("NewLimiter(%d, %s, %d): %d calls within one period; want <= %d", tt.limit, tt.period, tt.burst, most, tt.limit)
		}
		// Nor stricter than it must be: the burst plus the refill of 5 periods.
		b := min(tt.burst, max(1, tt.limit-1))
		if want := b + (tt.limit-b)*5; tt.limit > 1 && len(grants) < want*95/100 {
			t.Errorf("NewLimiter(%d, %s, %d): %d calls in 5 periods; want about %d", tt.limit, tt.period, tt.burst, len(grants), want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  tyntec.Config
		ok   bool
	}{
		{"defaults with key", tyntec.Config{APIKey: "k"}, true},
		{"no key", tyntec.Config{}, false},
		{"bad URL", tyntec.Config{APIKey: "k", BaseURL: "ftp://x"}, false},
		{"no host", tyntec.Config{APIKey: "k", BaseURL: "http://"}, false},
		{"negative limit", tyntec.Config{APIKey: "k", RateLimit: -1}, false},
		{"burst above limit", tyntec.Config{APIKey: "k", RateLimit: 5, RateBurst: 6}, false},
		{"backoff inverted", tyntec.Config{APIKey: "k", MinBackoff: time.Second, MaxBackoff: time.Millisecond}, false},
	}
	for _, tt := range tests {
		if err := tt.cfg.Validate(); (err == nil) != tt.ok {
			t.Errorf("%s: Validate() = %v; want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func TestV1EventDelivery(t *testing.T) {
	tests := []struct {
		ev      tyntec.V1Event
		channel events.Channel
		status  events.Status
		ok      bool
	}{
		{tyntec.V1Event{Type: "SMS", StatusText: "DISPATCHED"}, "SMS", "DISPATCHED", true},
		{tyntec.V1Event{Type: "VOICE", Status: "success", StatusText: "DELIVERED"}, "VOICE", "DELIVERED", true},
		{tyntec.V1Event{Type: "SMS", Status: "failed", StatusText: "carrier said no"}, "SMS", "UNDELIVERABLE", true},
		{tyntec.V1Event{Type: "VIBER", Status: "failed", StatusText: "TIMED_OUT"}, "VIBER", "TIMED_OUT", true},
		{tyntec.V1Event{Type: "CHECK", Status: "success", StatusText: "VERIFIED"}, "", "", false},
		{tyntec.V1Event{Type: "CREATED"}, "", "", false},
	}
	for _, tt := range tests {
		ch, st, ok := tt.ev.Delivery()
		if ch != tt.channel || st != tt.status || ok != tt.ok {
			t.Errorf("%+v.Delivery() = %q, %q, %v; want %q, %q, %v", tt.ev, ch, st, ok, tt.channel, tt.status, tt.ok)
		}
	}
}
