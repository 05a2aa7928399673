package tyntecsim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/otpscope/otpscope/internal/tyntec"
)

// Traffic describes generated OTP traffic, for the demo and benchmarks.
type Traffic struct {
	// Rate is logins per wall-clock second; 0 generates nothing. A login
	// sends one OTP, or tries a method first (SilentShare, PushShare) and
	// sends its OTP only when the method fails.
	Rate float64
	// Count stops the generator after that many logins; 0 runs until the context ends.
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

	// SilentShare of logins try Silent Authentication first, PushShare a
	// push approval first (default 0 each); an OTP follows when it fails.
	SilentShare, PushShare float64
	// PushSecondsToExpire is the seconds_to_expire of the app's approval
	// requests, default 120: an unanswered push falls back to an OTP then.
	PushSecondsToExpire int
	// SimURL is the simulator's base URL as the simulated app reaches it;
	// empty: the app's HTTP requests are served in process by the
	// simulator's handler (same endpoints, no network).
	SimURL string
	// OTPScopeURL is the base URL of otpscope's public listener: the app
	// reports silent-auth outcomes to POST /silent-auth/outcomes and tracks
	// the OTPs that follow a method with their correlationId at POST
	// /otps/track; OTPScopeHeaders go with each (X-Webhook-Token). Empty:
	// the app reports nothing.
	OTPScopeURL     string
	OTPScopeHeaders map[string]string
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
	if t.PushSecondsToExpire == 0 {
		t.PushSecondsToExpire = 120
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
	c := s.cfg
	c.Traffic = t
	if err := c.validateMethods(); err != nil {
		return err
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
	// Methods are drawn from their own generator, so that a run without
	// them tells the same OTP story as before they existed.
	methods := rand.New(rand.NewPCG(uint64(s.cfg.Seed), 5))
	a := s.newApp(t)
	var logins sync.WaitGroup
	defer logins.Wait()
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
		m, tfa := methods.Float64(), methods.IntN(10_000_000)
		l := &login{to: to, v1: v1, voice: voice, prof: prof, prio: prio, tfaID: strconv.Itoa(1_000_000 + tfa)}
		switch {
		case m < t.SilentShare:
			l.method = MethodSilent
		case m < t.SilentShare+t.PushShare:
			l.method = MethodPush
		}
		s.mu.Lock()
		s.startLogin(l)
		if l.method != "" {
			s.inflight++
		}
		s.mu.Unlock()
		switch l.method {
		case MethodSilent:
			logins.Go(func() { a.silentLogin(ctx, l) })
		case MethodPush:
			logins.Go(func() { a.pushLogin(ctx, l) })
		default:
			s.mu.Lock()
			a.sendOTP(l)
			s.mu.Unlock()
		}
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
