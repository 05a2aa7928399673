package tyntecsim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/tyntec"
)

// Traffic describes generated OTP traffic, for the demo and benchmarks.
type Traffic struct {
	// Rate is OTPs per wall-clock second; 0 generates nothing.
	Rate float64
	// Count stops the generator after that many OTPs; 0 runs until the context ends.
	Count int
	// Profiles and Priorities to spread OTPs over, uniformly; empty means all.
	Profiles   []string
	Priorities []string
	// V1Share is the share of OTPs sent through the v1 API (SMS or VOICE, no webhooks).
	V1Share float64
	// VerifyShare is the share of delivered OTPs whose user types the code, default 0.8.
	VerifyShare float64
	// WrongCodeShare is the share of those users who first type a wrong code, default 0.1.
	WrongCodeShare float64
	// ThinkTime from delivery to typing the code (simulated), default median 8 s, p95 25 s.
	ThinkTime LogNormal
}

func (t Traffic) withDefaults() Traffic {
	if t.VerifyShare == 0 {
		t.VerifyShare = 0.8
	}
	if t.WrongCodeShare == 0 {
		t.WrongCodeShare = 0.1
	}
	if t.ThinkTime.Median == 0 {
		t.ThinkTime = LogNormal{8 * time.Second, 25 * time.Second}
	}
	return t
}

// RunTraffic sends OTPs at t.Rate per second until ctx ends or t.Count OTPs
// were sent. The generated users verify their codes after delivery. Choices
// are drawn from the simulator's seed, so a run is reproducible.
func (s *Sim) RunTraffic(ctx context.Context, t Traffic) error {
	t = t.withDefaults()
	if t.Rate <= 0 {
		return fmt.Errorf("traffic rate %v: want > 0", t.Rate)
	}
	s.mu.Lock()
	profiles, err1 := pick(s.profiles, t.Profiles, func(p tyntec.Profile) string { return p.Name })
	prios, err2 := pick(s.priorities, t.Priorities, func(p tyntec.Priority) string { return p.Name })
	s.mu.Unlock()
	if err1 != nil {
		return err1
	}
	if err2 != nil {
		return err2
	}
	return s.generate(ctx, t, profiles, prios)
}

func (s *Sim) generate(ctx context.Context, t Traffic, profiles []tyntec.Profile, prios []tyntec.Priority) error {
	rng := rand.New(rand.NewPCG(uint64(s.cfg.Seed), 4))
	interval := time.Duration(float64(time.Second) / t.Rate)
	tick := time.NewTicker(max(interval, time.Microsecond))
	defer tick.Stop()
	for sent := 0; t.Count == 0 || sent < t.Count; sent++ {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		to := fmt.Sprintf("+4915%09d", rng.IntN(1_000_000_000))
		v1 := rng.Float64() < t.V1Share
		prof := profiles[rng.IntN(len(profiles))]
		prio := prios[rng.IntN(len(prios))]
		voice := rng.IntN(5) == 0
		s.mu.Lock()
		if v1 {
			ch := events.ChannelSMS
			if voice {
				ch = events.ChannelVoice
			}
			s.createOTP(newOTP{api: APIv1, to: to, channels: []events.Channel{ch}, allowed: v1Attempts, codeLen: v1PinLength, expiry: v1Expire, generated: true})
		} else if n, ok := s.v4OTP(to, "", "", prof, prio); ok {
			n.generated = true
			s.createOTP(n)
		}
		s.mu.Unlock()
	}
	return nil
}

// pick returns the items named in names, or all items when names is empty.
func pick[T any](all []T, names []string, name func(T) string) ([]T, error) {
	if len(names) == 0 {
		return slices.Clone(all), nil
	}
	var out []T
	for _, n := range names {
		i := slices.IndexFunc(all, func(x T) bool { return name(x) == n })
		if i < 0 {
			return nil, fmt.Errorf("traffic: unknown profile or priority %q", n)
		}
		out = append(out, all[i])
	}
	return out, nil
}
