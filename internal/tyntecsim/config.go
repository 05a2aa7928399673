package tyntecsim

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"time"

	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/httpurl"
	"github.com/otpscope/otpscope/internal/tyntec"
)

// DefaultAPIKey is the API key the simulator accepts when Config.APIKeys is empty.
const DefaultAPIKey = "sim-api-key"

// DefaultWhatsAppAccountID is the WhatsApp configuration the simulated
// account starts with, so that the built-in profiles' WhatsApp templates are
// allowed.
const DefaultWhatsAppAccountID = "289a1c20-06c5-4964-b32d-24d214a78ae5"

// DefaultCodeExpiration is the codeExpirationTime of the built-in templates:
// 5 minutes, the 300 s of tyntec's v1 default application.
const DefaultCodeExpiration = 5 * time.Minute

// DefaultKeep is the binaries' --keep and --simulate-keep: at ~3 KB an OTP
// with its attempts, webhooks and events, about 300 MB, some 5.5 hours of
// the all-in-one's default 5 logins a second.
const DefaultKeep = 100_000

// ShutdownGrace is how long the simulator's API lets requests in flight
// finish once it stops. It must exceed the 5 s for which net/http counts
// a client's connection that has not sent a request yet (an HTTP client
// may keep one unused) as busy: a shutdown of 5 s failed on one.
const ShutdownGrace = 10 * time.Second

// Config configures a Sim. Zero fields take the defaults documented on them.
type Config struct {
	// Seed makes every random choice reproducible.
	Seed int64
	// APIKeys accepted in the apiKey header, default [DefaultAPIKey].
	// Any other key is answered 401.
	APIKeys []string
	// TimeScale is simulated seconds per wall-clock second, default 1. At 1000
	// a 3 s SMS latency takes 3 ms and a 300 s OTP expiry 0.3 s. It applies to
	// delivery, expiry, simulated users and webhook retry backoff; API faults
	// (slow answers) and the API rate limit run on the wall clock.
	TimeScale float64
	// Start is the simulated time at Sim creation, default the wall clock.
	Start time.Time
	// Keep bounds what a long run holds: past Keep OTPs the oldest are
	// forgotten once settled and an hour (simulated) old, with the
	// silent-auth attempts and approval requests older than the oldest OTP
	// kept, and past Keep API calls the oldest calls. A forgotten OTP is
	// unknown to the API (404), as is a forgotten request; the truth and its
	// summary cover what is kept and count what went (Forgotten). 0 (the
	// default) keeps everything, as tests comparing a whole run need.
	Keep int

	// Channels overrides the behaviour of each channel (keys SMS, VOICE,
	// VIBER, WHATSAPP); missing channels use DefaultChannels.
	Channels map[events.Channel]Channel
	// Priorities and Profiles replace the built-in ones (DefaultPriorities,
	// DefaultProfiles) when not empty. The first of each is the default of an
	// OTP that names none.
	Priorities []tyntec.Priority
	Profiles   []tyntec.Profile
	// Templates replace the built-in ones (DefaultTemplates) when not empty.
	// A v4 OTP expires after the codeExpirationTime of the template its
	// profile names for its first channel and language.
	Templates []Template
	// Callbacks are registered at start, as if created through the API.
	Callbacks []tyntec.NewCallbackConfig
	// OTPExpiry, when set, overrides every OTP's validity (simulated): the
	// template's codeExpirationTime for v4, the default application's expire
	// (300 s, as tyntec's v1 example shows) for v1.
	OTPExpiry time.Duration
	// SharedVersions makes v1 and v4 one OTP store: v1 reads, events, checks
	// and re-sends v4 OTPs and v4 reads v1 OTPs. No seed says tyntec does
	// this; by default each version answers 404 for the other's OTPs.
	SharedVersions bool
	// WebhookSeconds sends the webhooks' timestamps in whole seconds, as
	// every example of seed 001 is written ("2023-11-15T03:00:00Z"), while
	// the v1 events keep milliseconds: a reader must match the two. By
	// default both are in milliseconds.
	WebhookSeconds bool
	// WhatsAppAccountID is the account's WhatsApp configuration, default
	// DefaultWhatsAppAccountID; NoWhatsApp starts without one, so profiles
	// with a WHATSAPP channel are refused (403) and WhatsApp is skipped.
	WhatsAppAccountID string
	NoWhatsApp        bool

	// SilentAuth and Push are how Silent Authentication and push approvals
	// answer; nil = DefaultSilentAuth() / DefaultPush().
	SilentAuth *SilentAuth
	Push       *Push
	// PushCallbacks receive every approval request's status changes.
	PushCallbacks []PushCallback

	Faults  Faults
	Webhook WebhookPolicy
	// Traffic, when Rate > 0, is generated from Start until Close.
	Traffic Traffic

	// HTTPClient sends webhooks, default a client with Webhook.Timeout.
	HTTPClient *http.Client
	// Logger, default discards.
	Logger *slog.Logger
}

// Channel is how one delivery channel behaves.
type Channel struct {
	// DeliveryProbability is the share of attempts the channel can deliver;
	// the others end UNDELIVERABLE (or TIMED_OUT when slower than Timeout).
	DeliveryProbability float64
	// Latency from DISPATCHED to the delivery report (either outcome).
	Latency LogNormal
	// Timeout after which an attempt without report ends TIMED_OUT.
	Timeout time.Duration
	// DispatchDelay from the request (or the previous channel's failure) to DISPATCHED.
	DispatchDelay time.Duration
}

// LogNormal is a latency distribution given by its median and 95th percentile.
type LogNormal struct {
	Median time.Duration
	P95    time.Duration
}

// sample draws from the distribution with the standard normal variate z.
func (d LogNormal) sample(z float64) time.Duration {
	if d.Median <= 0 {
		return 0
	}
	sigma := 0.0
	if d.P95 > d.Median {
		sigma = math.Log(float64(d.P95)/float64(d.Median)) / 1.6449
	}
	return time.Duration(float64(d.Median) * math.Exp(sigma*z))
}

// Faults are the misbehaviours the simulator shows on demand. Shares are
// probabilities in [0, 1].
type Faults struct {
	// WebhookDrop is the share of webhooks never sent (DeliveryStatus
	// webhooks and push callbacks alike; duplicate and reorder too).
	WebhookDrop float64
	// WebhookDuplicate is the share of webhooks sent twice.
	WebhookDuplicate float64
	// WebhookReorder is the share of webhooks held back by ReorderDelay
	// (simulated), so that later events of the same OTP overtake them.
	WebhookReorder float64
	ReorderDelay   time.Duration // default 10 s

	// APIError is the share of API calls answered with APIErrorStatus (default 500).
	APIError       float64
	APIErrorStatus int
	// APISlow is the share of API calls answered after APISlowDelay (wall clock, default 2 s).
	APISlow      float64
	APISlowDelay time.Duration

	// RateLimit calls per RatePeriod (wall clock) per API key; more are
	// answered 429 with Retry-After. 0 disables the limit.
	RateLimit  int
	RatePeriod time.Duration // default 60 s
	// RetryAfter, when set, is sent instead of the time until the window frees a call.
	RetryAfter time.Duration
}

// WebhookPolicy is how webhooks are sent and retried. Retry delays are simulated time.
type WebhookPolicy struct {
	// MaxAttempts per webhook, default 5.
	MaxAttempts int
	// InitialBackoff doubles after each non-2xx answer up to MaxBackoff
	// (defaults 1 s and 60 s); a Retry-After answer (in seconds) is honoured
	// up to MaxBackoff.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// Timeout of one webhook request (wall clock), default 5 s.
	Timeout time.Duration
	// Workers sending webhooks, default 8. Webhooks of one OTP go through one
	// worker in order, so only the reorder fault reorders them.
	Workers int
}

// DefaultChannels returns the default behaviour of each channel: plausible
// figures, not tyntec's, chosen so that fallbacks happen in a few percent of
// OTPs and timeouts are rare.
func DefaultChannels() map[events.Channel]Channel {
	return map[events.Channel]Channel{
		events.ChannelSMS:      {DeliveryProbability: 0.92, Latency: LogNormal{3 * time.Second, 15 * time.Second}, Timeout: 60 * time.Second, DispatchDelay: 200 * time.Millisecond},
		events.ChannelViber:    {DeliveryProbability: 0.85, Latency: LogNormal{2 * time.Second, 8 * time.Second}, Timeout: 30 * time.Second, DispatchDelay: 200 * time.Millisecond},
		events.ChannelWhatsApp: {DeliveryProbability: 0.88, Latency: LogNormal{1500 * time.Millisecond, 6 * time.Second}, Timeout: 30 * time.Second, DispatchDelay: 200 * time.Millisecond},
		events.ChannelVoice:    {DeliveryProbability: 0.90, Latency: LogNormal{10 * time.Second, 25 * time.Second}, Timeout: 60 * time.Second, DispatchDelay: 500 * time.Millisecond},
	}
}

// DefaultPriorities returns the built-in priorities (IDs are fixed so tests
// and demos can refer to them).
func DefaultPriorities() []tyntec.Priority {
	p := func(id, name string, chs ...events.Channel) tyntec.Priority {
		pr := tyntec.Priority{ID: id, Name: name}
		for i, ch := range chs {
			pr.ChannelPriority = append(pr.ChannelPriority, tyntec.ChannelPriority{Channel: ch, Priority: i + 1})
		}
		return pr
	}
	return []tyntec.Priority{
		p("3fa85f64-5717-4562-b3fc-2c963f66af01", "tyntec_priority_sms-viber", events.ChannelSMS, events.ChannelViber),
		p("3fa85f64-5717-4562-b3fc-2c963f66af02", "tyntec_priority_sms-voice", events.ChannelSMS, events.ChannelVoice),
		p("3fa85f64-5717-4562-b3fc-2c963f66af03", "tyntec_priority_whatsapp-sms", events.ChannelWhatsApp, events.ChannelSMS),
		p("3fa85f64-5717-4562-b3fc-2c963f66af04", "tyntec_priority_sms", events.ChannelSMS),
	}
}

// defaultChannels are the channels every built-in profile has a template for.
var defaultChannels = []events.Channel{events.ChannelSMS, events.ChannelVoice, events.ChannelViber, events.ChannelWhatsApp}

// DefaultProfiles returns the built-in profiles: one en_US template per
// channel each (see DefaultTemplates); payment is alphanumeric.
func DefaultProfiles() []tyntec.Profile {
	p := func(id, name string, attempts, length int, alnum bool) tyntec.Profile {
		pr := tyntec.Profile{ID: id, Name: name, Alphanumeric: alnum, Attempts: attempts, OTPCodeLength: length}
		for _, ch := range defaultChannels {
			pr.Channels = append(pr.Channels, tyntec.ProfileChannel{Type: ch, Templates: []tyntec.Template{{Name: templateName(name, ch), LanguageCode: "en_US"}}})
		}
		return pr
	}
	return []tyntec.Profile{
		p("adbe6521-f5bd-4295-9fd9-776debdf7d01", "tyntec_profile_register", 3, 6, false),
		p("adbe6521-f5bd-4295-9fd9-776debdf7d02", "tyntec_profile_login", 3, 6, false),
		p("adbe6521-f5bd-4295-9fd9-776debdf7d03", "tyntec_profile_payment", 5, 8, true),
	}
}

func templateName(profile string, ch events.Channel) string { return profile + "_" + string(ch) }

// DefaultTemplates returns the templates of the built-in profiles, each
// valid DefaultCodeExpiration.
func DefaultTemplates() []Template {
	var out []Template
	for _, p := range []string{"tyntec_profile_register", "tyntec_profile_login", "tyntec_profile_payment"} {
		for _, ch := range defaultChannels {
			out = append(out, Template{
				Name: templateName(p, ch), Channel: ch, Language: "en_US",
				CodeExpirationTime: int(DefaultCodeExpiration / time.Minute),
				Message:            "tyntec: {{otp_code}} is your security code. Your code will expire in {{expiration_time}} minutes. Don't share this code.",
			})
		}
	}
	return out
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if len(c.APIKeys) == 0 {
		c.APIKeys = []string{DefaultAPIKey}
	}
	if c.TimeScale == 0 {
		c.TimeScale = 1
	}
	chs := DefaultChannels()
	for k, v := range c.Channels {
		chs[k] = v
	}
	c.Channels = chs
	if len(c.Priorities) == 0 {
		c.Priorities = DefaultPriorities()
	}
	if len(c.Profiles) == 0 {
		c.Profiles = DefaultProfiles()
	}
	if len(c.Templates) == 0 {
		c.Templates = DefaultTemplates()
	}
	if c.NoWhatsApp {
		c.WhatsAppAccountID = ""
	} else {
		c.WhatsAppAccountID = cmp.Or(c.WhatsAppAccountID, DefaultWhatsAppAccountID)
	}
	f := &c.Faults
	f.ReorderDelay = cmp.Or(f.ReorderDelay, 10*time.Second)
	f.APIErrorStatus = cmp.Or(f.APIErrorStatus, http.StatusInternalServerError)
	f.APISlowDelay = cmp.Or(f.APISlowDelay, 2*time.Second)
	f.RatePeriod = cmp.Or(f.RatePeriod, 60*time.Second)
	w := &c.Webhook
	w.MaxAttempts = cmp.Or(w.MaxAttempts, 5)
	w.InitialBackoff = cmp.Or(w.InitialBackoff, time.Second)
	w.MaxBackoff = cmp.Or(w.MaxBackoff, 60*time.Second)
	w.Timeout = cmp.Or(w.Timeout, 5*time.Second)
	w.Workers = cmp.Or(w.Workers, 8)
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: w.Timeout}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.Traffic = c.Traffic.withDefaults()
	return c
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	d := c.withDefaults()
	if d.TimeScale <= 0 {
		return fmt.Errorf("time scale %v: want > 0", c.TimeScale)
	}
	if c.Keep < 0 {
		return fmt.Errorf("keep %d: want >= 0 (0 keeps all)", c.Keep)
	}
	if d.Traffic.Rate < 0 {
		return fmt.Errorf("traffic rate %v: want >= 0 logins a second", d.Traffic.Rate)
	}
	for _, cb := range d.Callbacks {
		if _, err := httpurl.Parse(cb.URL); err != nil {
			return fmt.Errorf("callback URL: %w", err)
		}
	}
	for name, ch := range d.Channels {
		if ch.DeliveryProbability < 0 || ch.DeliveryProbability > 1 {
			return fmt.Errorf("channel %s delivery probability %v: want 0..1", name, ch.DeliveryProbability)
		}
		if ch.Timeout <= 0 {
			return fmt.Errorf("channel %s timeout %s: want > 0", name, ch.Timeout)
		}
	}
	for _, s := range []struct {
		name string
		v    float64
	}{
		{"webhook drop", d.Faults.WebhookDrop}, {"webhook duplicate", d.Faults.WebhookDuplicate},
		{"webhook reorder", d.Faults.WebhookReorder}, {"API error", d.Faults.APIError}, {"API slow", d.Faults.APISlow},
		{"traffic v1", d.Traffic.V1Share}, {"traffic verify", d.Traffic.VerifyShare},
	} {
		if s.v < 0 || s.v > 1 {
			return fmt.Errorf("%s share %v: want 0..1", s.name, s.v)
		}
	}
	if d.Faults.RateLimit < 0 {
		return fmt.Errorf("rate limit %d: want >= 0", d.Faults.RateLimit)
	}
	if d.Webhook.MaxAttempts < 1 {
		return errors.New("webhook max attempts: want >= 1")
	}
	if d.OTPExpiry < 0 {
		return fmt.Errorf("OTP expiry %s: want >= 0", d.OTPExpiry)
	}
	if err := d.validateMethods(); err != nil {
		return err
	}
	for _, tp := range d.Templates {
		if tp.CodeExpirationTime <= 0 {
			return fmt.Errorf("template %q codeExpirationTime %d: want > 0 minutes", tp.Name, tp.CodeExpirationTime)
		}
	}
	for _, p := range d.Profiles {
		if d.WhatsAppAccountID == "" && hasChannel(p, events.ChannelWhatsApp) {
			return fmt.Errorf("profile %q has a WHATSAPP channel but there is no WhatsApp configuration", p.Name)
		}
	}
	for _, p := range d.Priorities {
		if len(p.ChannelPriority) == 0 {
			return fmt.Errorf("priority %q has no channels", p.Name)
		}
		for _, cp := range p.ChannelPriority {
			if _, ok := d.Channels[cp.Channel]; !ok {
				return fmt.Errorf("priority %q: unknown channel %q", p.Name, cp.Channel)
			}
		}
	}
	return nil
}
