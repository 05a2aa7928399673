package tyntecsim

import (
	"fmt"
	"slices"
	"time"

	"github.com/otpscope/otpscope/internal/httpurl"
)

// The silent-auth client of the seed's examples (client_id "client",
// client_secret "12345"), which the simulator accepts by default.
const (
	DefaultSilentClientID     = "client"
	DefaultSilentClientSecret = "12345"
)

// Silent-auth failures the simulator draws (SilentAuth.Errors keys), named as
// the app reports them to otpscope: an authorize error as the redirect names
// it, a token or userinfo error as token_<error> / userinfo_<error>.
const (
	SilentNoDataSession      = "no_data_session" // the YAML's: no network session for the client's IP
	SilentServerError        = "server_error"
	SilentTokenInternal      = "token_internal_server_error"
	SilentTokenDenied        = "token_permission_denied"
	SilentUserinfoInternal   = "userinfo_internal_server_error"
	SilentUserinfoDenied     = "userinfo_permission_denied"
	defaultSilentAuthLatency = time.Second
)

// silentErrors are the failures SilentAuth.Errors may name.
var silentErrors = []string{SilentNoDataSession, SilentServerError, SilentTokenInternal, SilentTokenDenied, SilentUserinfoInternal, SilentUserinfoDenied}

// SilentAuth is how the simulated Silent Authentication answers. A nil
// Config.SilentAuth means DefaultSilentAuth(); a non-nil one is used as is.
type SilentAuth struct {
	// Clients maps client_id to client_secret; authorize refuses other
	// client_ids (invalid_client_id_request), token other pairs (401).
	Clients map[string]string
	// VerifiedShare of well-formed attempts end phone_number_verified
	// "true", ErrorShare end with one of Errors; the rest "false".
	VerifiedShare float64
	ErrorShare    float64
	// Errors weighs the failures an erroring attempt ends with (keys:
	// SilentNoDataSession, SilentServerError, SilentToken…, SilentUserinfo…).
	Errors map[string]float64
	// Latency of authorize: the network-session lookup before the redirect
	// (simulated time). Token and userinfo answer at once.
	Latency LogNormal
}

// DefaultSilentAuth returns the default silent-auth behaviour: plausible
// figures, not tyntec's (assumed).
func DefaultSilentAuth() SilentAuth {
	return SilentAuth{
		Clients:       map[string]string{DefaultSilentClientID: DefaultSilentClientSecret},
		VerifiedShare: 0.8,
		ErrorShare:    0.05,
		Errors: map[string]float64{
			SilentNoDataSession: 0.6, SilentServerError: 0.2,
			SilentTokenInternal: 0.1, SilentUserinfoInternal: 0.1,
		},
		Latency: LogNormal{defaultSilentAuthLatency, 3 * time.Second},
	}
}

// Push approval statuses (assumed: the seed shows none).
const (
	PushPending  = "pending"
	PushApproved = "approved"
	PushDenied   = "denied"
	PushExpired  = "expired"
)

// DefaultSecondsToExpire is the validity of an approval request created
// without seconds_to_expire: the seed's example ttl (assumed as default).
const DefaultSecondsToExpire = 300

// Push is how the simulated push-approval users answer. A nil Config.Push
// means DefaultPush(); a non-nil one is used as is.
type Push struct {
	// ApprovedShare of approval requests are approved, DeniedShare denied,
	// the rest never answered (they expire after seconds_to_expire).
	ApprovedShare float64
	DeniedShare   float64
	// AnswerLatency from creation to the user's answer (simulated); an
	// answer later than seconds_to_expire never comes: the request expires.
	AnswerLatency LogNormal
}

// DefaultPush returns the default push behaviour (assumed figures).
func DefaultPush() Push {
	return Push{ApprovedShare: 0.75, DeniedShare: 0.05, AnswerLatency: LogNormal{6 * time.Second, 20 * time.Second}}
}

// PushCallback is where the simulator posts approval-request status changes
// (the seed says a callback can be set; how is not documented, so it is
// configuration here, not an API).
type PushCallback struct {
	URL     string
	Headers map[string]string
}

func (c Config) silentAuth() SilentAuth {
	if c.SilentAuth == nil {
		return DefaultSilentAuth()
	}
	return *c.SilentAuth
}

func (c Config) push() Push {
	if c.Push == nil {
		return DefaultPush()
	}
	return *c.Push
}

// validateMethods checks the silent-auth and push configuration and the
// traffic's method shares.
func (c Config) validateMethods() error {
	sa := c.silentAuth()
	for _, s := range []struct {
		name string
		v    float64
	}{
		{"silent verified", sa.VerifiedShare}, {"silent error", sa.ErrorShare},
		{"push approved", c.push().ApprovedShare}, {"push denied", c.push().DeniedShare},
		{"traffic silent", c.Traffic.SilentShare}, {"traffic push", c.Traffic.PushShare},
	} {
		if s.v < 0 || s.v > 1 {
			return fmt.Errorf("%s share %v: want 0..1", s.name, s.v)
		}
	}
	if sa.VerifiedShare+sa.ErrorShare > 1 {
		return fmt.Errorf("silent verified share %v + error share %v: want <= 1", sa.VerifiedShare, sa.ErrorShare)
	}
	if p := c.push(); p.ApprovedShare+p.DeniedShare > 1 {
		return fmt.Errorf("push approved share %v + denied share %v: want <= 1", p.ApprovedShare, p.DeniedShare)
	}
	if c.Traffic.SilentShare+c.Traffic.PushShare > 1 {
		return fmt.Errorf("traffic silent share %v + push share %v: want <= 1", c.Traffic.SilentShare, c.Traffic.PushShare)
	}
	total := 0.0
	for k, w := range sa.Errors {
		if !slices.Contains(silentErrors, k) {
			return fmt.Errorf("silent error %q: want one of %v", k, silentErrors)
		}
		if w < 0 {
			return fmt.Errorf("silent error %q weight %v: want >= 0", k, w)
		}
		total += w
	}
	if sa.ErrorShare > 0 && total == 0 {
		return fmt.Errorf("silent error share %v without errors to draw", sa.ErrorShare)
	}
	if len(sa.Clients) == 0 && c.Traffic.SilentShare > 0 {
		return fmt.Errorf("traffic silent share %v without a silent-auth client", c.Traffic.SilentShare)
	}
	for _, cb := range c.PushCallbacks {
		if _, err := httpurl.Parse(cb.URL); err != nil {
			return fmt.Errorf("push callback URL %w", err)
		}
	}
	for _, u := range []string{c.Traffic.SimURL, c.Traffic.OTPScopeURL} {
		if u == "" {
			continue
		}
		if _, err := httpurl.Parse(u); err != nil {
			return fmt.Errorf("traffic URL %w", err)
		}
	}
	return nil
}
