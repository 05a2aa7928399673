package app

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	"github.com/otpscope/otpscope/internal/ingest"
	"github.com/otpscope/otpscope/internal/ops"
	"github.com/otpscope/otpscope/internal/poller"
	"github.com/otpscope/otpscope/internal/tyntec"
	"github.com/otpscope/otpscope/internal/tyntecsim"
)

// PushWebhookPath is where the simulator posts push-approval callbacks:
// otpscope's push webhook (issue 14's contract).
const PushWebhookPath = "/webhooks/push"

// simulator is the tyntec simulator on its own listener.
type simulator struct {
	*tyntecsim.Sim
	ln     net.Listener
	logger *slog.Logger
}

func newSimulator(s SimulateConfig, logger *slog.Logger) (*simulator, error) {
	ln, err := net.Listen("tcp", s.Listen)
	if err != nil {
		return nil, fmt.Errorf("simulate-listen %s: %w", s.Listen, err)
	}
	cfg := s.simConfig()
	cfg.Logger = logger
	sim, err := tyntecsim.New(cfg)
	if err != nil {
		ln.Close()
		return nil, err
	}
	return &simulator{Sim: sim, ln: ln, logger: logger}, nil
}

// simConfig is the simulator's configuration (without traffic, which
// serve starts once otpscope's listener is known).
func (s SimulateConfig) simConfig() tyntecsim.Config {
	return tyntecsim.Config{
		Seed:      s.Seed,
		TimeScale: s.TimeScale,
		Channels:  s.Channels,
		OTPExpiry: s.OTPExpiry,
		Keep:      s.Keep,
		// Push callbacks are dropped like webhooks.
		Faults: tyntecsim.Faults{WebhookDrop: s.DropWebhooks},
		// Separate by default; the poller learns which at run time (without
		// it, dropped v4 webhooks are counted unrecoverable).
		SharedVersions: s.SharedVersions,
		SilentAuth:     s.silentAuth(),
		Push:           s.push(),
		Traffic:        tyntecsim.Traffic{V1Share: s.V1Share, SilentShare: s.SilentShare, PushShare: s.PushShare}, // for Validate
	}
}

// URL is the simulated tyntec API's base URL.
func (s *simulator) URL() string { return "http://" + s.ln.Addr().String() }

// serve starts the simulator in g: its API, its webhooks, the callback
// registration (through the API, as `poller register-callback` does against
// tyntec), the push callback pointed at otpscope, and the generated traffic,
// whose app reports silent-auth outcomes and tracks OTPs at base (otpscope's
// public listener).
func (s *simulator) serve(ctx context.Context, g *errgroup.Group, base string, ing ingest.Config, deployment poller.RegisterOptions, cfg SimulateConfig) error {
	if err := s.AddPushCallback(tyntecsim.PushCallback{URL: base + PushWebhookPath, Headers: tokenHeader(ing.PushTokens, ing.Tokens)}); err != nil {
		return err
	}
	srv := ops.NewServer(s.InspectHandler())
	g.Go(func() error { return ops.Serve(ctx, srv, s.ln, tyntecsim.ShutdownGrace) })
	if err := s.Start(ctx); err != nil {
		return err
	}
	g.Go(func() error { <-ctx.Done(); return s.Close() })
	g.Go(func() error {
		if err := s.registerCallback(ctx, base+ingest.WebhookPath, ing.Tokens, deployment); err != nil {
			return err
		}
		if cfg.Rate == 0 {
			// No generated traffic, as the standalone's --rate 0: the
			// simulated API serves what a client sends it.
			return nil
		}
		err := s.RunTraffic(ctx, tyntecsim.Traffic{
			Rate: cfg.Rate, Count: cfg.Count, V1Share: cfg.V1Share,
			SilentShare: cfg.SilentShare, PushShare: cfg.PushShare, PushSecondsToExpire: int(cfg.PushExpiry / time.Second),
			SimURL: s.URL(), OTPScopeURL: base, OTPScopeHeaders: tokenHeader(ing.AppTokens, ing.Tokens),
		})
		if ctx.Err() != nil {
			return nil
		}
		return err
	})
	return nil
}

// tokenHeader is the header a sender sends its token in: the first of the
// first token set given (an endpoint's own tokens, else the webhook
// tokens: ingest.Config.AppTokens); none under --insecure-no-auth.
func tokenHeader(sets ...[]string) map[string]string {
	for _, tokens := range sets {
		if len(tokens) > 0 {
			return map[string]string{"X-Webhook-Token": tokens[0]}
		}
	}
	return map[string]string{}
}

func (s *simulator) registerCallback(ctx context.Context, url string, tokens []string, deployment poller.RegisterOptions) error {
	client, err := tyntec.New(tyntec.Config{BaseURL: s.URL(), APIKey: tyntecsim.DefaultAPIKey, Limiter: rate.NewLimiter(rate.Inf, 1)})
	if err != nil {
		return err
	}
	res, err := poller.RegisterCallback(ctx, client, url, tokenHeader(tokens), deployment)
	if err != nil {
		return fmt.Errorf("register the callback at the simulator: %w", err)
	}
	s.logger.Info("callback registered at the simulator", "id", res.ID, "action", res.Action)
	return nil
}
