package tyntec

import (
	"context"
	"net/http"
	"net/url"

	"github.com/otpscope/otpscope/internal/events"
)

// SendOTP sends an OTP through 2FA v4 (POST /2fa/v4/otp). It is retried only
// when tyntec answers 429, which it does before acting on the request.
func (cl *Client) SendOTP(ctx context.Context, req NewOTPRequest) (CreatedOTP, error) {
	var out CreatedOTP
	_, err := cl.do(ctx, call{op: "v4_send_otp", method: http.MethodPost, path: "/2fa/v4/otp", body: req, out: &out})
	return out, err
}

// GetOTP reads the v4 status of one OTP (GET /2fa/v4/otp/{otp-id}).
func (cl *Client) GetOTP(ctx context.Context, id string) (*OTP, error) {
	return getOne[OTP](ctx, cl, "v4_get_otp", "/2fa/v4/otp/"+escape(id))
}

// ListOTPs lists OTPs (GET /2fa/v4/otp) filtered by receiver and status.
func (cl *Client) ListOTPs(ctx context.Context, f OTPFilter) ([]OTP, error) {
	var out []OTP
	err := cl.EachOTP(ctx, f, func() { out = out[:0] }, func(o OTP) { out = append(out, o) })
	return out, err
}

// EachOTP lists OTPs as ListOTPs does, handing each to fn as it is read:
// unfiltered, the list holds every OTP tyntec keeps, too many for one
// answer in memory on a busy account. begin (when not nil) runs before
// each attempt's first OTP: after an attempt that failed part-way, fn sees
// the OTPs again.
func (cl *Client) EachOTP(ctx context.Context, f OTPFilter, begin func(), fn func(OTP)) error {
	return listEach(ctx, cl, "v4_list_otps", "/2fa/v4/otp", otpQuery(f), begin, fn)
}

// otpQuery is f as GET /2fa/v4/otp's query.
func otpQuery(f OTPFilter) url.Values {
	q := url.Values{}
	if f.To != "" {
		q.Set("to", f.To)
	}
	if f.Status != "" {
		q.Set("otpStatus", string(f.Status))
	}
	return q
}

// ValidateOTP checks a code (POST /2fa/v4/otp/{otp-id}/validate) and returns
// the resulting status: VERIFIED, WRONG_CODE, TOO_MANY_ATTEMPTS, EXPIRED or
// ALREADY_REPORTED. It counts as an attempt, so it is not retried.
func (cl *Client) ValidateOTP(ctx context.Context, id, code string) (events.OTPState, error) {
	var out ValidateOTPResponse
	_, err := cl.do(ctx, call{op: "v4_validate_otp", method: http.MethodPost, path: "/2fa/v4/otp/" + escape(id) + "/validate", body: ValidateOTPRequest{OTPCode: code}, out: &out})
	return out.OTPStatus, err
}

// ListCallbacks lists the callback configurations (GET /2fa/v4/configurations/callbacks).
func (cl *Client) ListCallbacks(ctx context.Context) ([]CallbackConfig, error) {
	return getList[CallbackConfig](ctx, cl, "v4_list_callbacks", "/2fa/v4/configurations/callbacks", nil)
}

// CreateCallback registers a callback configuration and returns its ID. It is
// not retried (a lost answer would otherwise register it twice), except on 429.
func (cl *Client) CreateCallback(ctx context.Context, cfg NewCallbackConfig) (string, error) {
	var out CreatedID
	_, err := cl.do(ctx, call{op: "v4_create_callback", method: http.MethodPost, path: "/2fa/v4/configurations/callbacks", body: cfg, out: &out})
	return out.ID, err
}

// PatchCallback replaces the URL, profile filter and headers of a callback
// configuration. Setting the same values twice has the same effect, so it is
// retried like a read.
func (cl *Client) PatchCallback(ctx context.Context, id string, cfg NewCallbackConfig) (*CallbackConfig, error) {
	var out CallbackConfig
	if _, err := cl.do(ctx, call{op: "v4_patch_callback", method: http.MethodPatch, path: "/2fa/v4/configurations/callbacks/" + escape(id), body: cfg, idempotent: true, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteCallback removes a callback configuration. A retried delete whose
// first attempt succeeded answers ErrNotFound; callers may treat that as done.
func (cl *Client) DeleteCallback(ctx context.Context, id string) error {
	_, err := cl.do(ctx, call{op: "v4_delete_callback", method: http.MethodDelete, path: "/2fa/v4/configurations/callbacks/" + escape(id), idempotent: true})
	return err
}

// ListPriorities lists priorities (GET /2fa/v4/priorities), filtered by name when not empty.
func (cl *Client) ListPriorities(ctx context.Context, name string) ([]Priority, error) {
	return getList[Priority](ctx, cl, "v4_list_priorities", "/2fa/v4/priorities", nameQuery(name))
}

// GetPriority reads one priority (GET /2fa/v4/priorities/{id}).
func (cl *Client) GetPriority(ctx context.Context, id string) (*Priority, error) {
	return getOne[Priority](ctx, cl, "v4_get_priority", "/2fa/v4/priorities/"+escape(id))
}

// CreatePriority creates a priority (POST /2fa/v4/priorities) and returns its ID.
func (cl *Client) CreatePriority(ctx context.Context, p NewPriority) (string, error) {
	var out CreatedID
	_, err := cl.do(ctx, call{op: "v4_create_priority", method: http.MethodPost, path: "/2fa/v4/priorities", body: p, out: &out})
	return out.ID, err
}

// ListProfiles lists profiles (GET /2fa/v4/profiles), filtered by name when not empty.
func (cl *Client) ListProfiles(ctx context.Context, name string) ([]Profile, error) {
	return getList[Profile](ctx, cl, "v4_list_profiles", "/2fa/v4/profiles", nameQuery(name))
}

// GetProfile reads one profile (GET /2fa/v4/profiles/{id}).
func (cl *Client) GetProfile(ctx context.Context, id string) (*Profile, error) {
	return getOne[Profile](ctx, cl, "v4_get_profile", "/2fa/v4/profiles/"+escape(id))
}
