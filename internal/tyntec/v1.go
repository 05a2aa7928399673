package tyntec

import (
	"context"
	"errors"
	"net/http"
	"net/url"
)

// V1OTP reads the v1 status of one OTP (GET /2fa/v1/otp/{otpId}).
func (cl *Client) V1OTP(ctx context.Context, id string) (*V1OTP, error) {
	return getOne[V1OTP](ctx, cl, "v1_get_otp", "/2fa/v1/otp/"+escape(id))
}

// V1Events lists the events of one OTP (GET /2fa/v1/otp/{otpId}/events).
// V1Event.Delivery maps them to channel and delivery status.
func (cl *Client) V1Events(ctx context.Context, id string) ([]V1Event, error) {
	return getList[V1Event](ctx, cl, "v1_list_events", "/2fa/v1/otp/"+escape(id)+"/events", nil)
}

// V1ListOTPs lists the OTPs sent to a number (GET /2fa/v1/otp?number=).
// tyntec answers 204 for none, which is an empty list here.
func (cl *Client) V1ListOTPs(ctx context.Context, number string) ([]V1OTP, error) {
	return getList[V1OTP](ctx, cl, "v1_list_otps", "/2fa/v1/otp", url.Values{"number": {number}})
}

// V1Resend re-sends the same code (POST /2fa/v1/otp/{otpId}). A re-send
// reaches the user again, so it is never retried here: a timeout or 5xx
// is returned and the caller decides, after reading the OTP's events,
// whether to send again; a 429, which tyntec answers before acting, is
// returned at once (ErrRateLimited) too, as the OTP may be delivered while
// the client would wait out Retry-After.
func (cl *Client) V1Resend(ctx context.Context, id string, r ResendRequest) (*V1OTP, error) {
	q := url.Values{}
	setIf(q, "via", r.Via)
	setIf(q, "sender", r.Sender)
	setIf(q, "caller", r.Caller)
	var out V1OTP
	if _, err := cl.do(ctx, call{op: "v1_resend", method: http.MethodPost, path: "/2fa/v1/otp/" + escape(id), query: q, decideAgain: true, refusalOfTheOTP: true, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// V1Send sends an OTP through v1 (POST /2fa/v1/otp). Not retried except on 429.
func (cl *Client) V1Send(ctx context.Context, r V1SendRequest) (*V1OTP, error) {
	q := url.Values{"number": {r.Number}}
	setIf(q, "applicationId", r.ApplicationID)
	setIf(q, "via", r.Via)
	setIf(q, "otpCode", r.OTPCode)
	setIf(q, "referenceId", r.ReferenceID)
	setIf(q, "sender", r.Sender)
	setIf(q, "caller", r.Caller)
	setIf(q, "language", r.Language)
	var out V1OTP
	if _, err := cl.do(ctx, call{op: "v1_send", method: http.MethodPost, path: "/2fa/v1/otp", query: q, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// V1Check checks a code (POST /2fa/v1/otp/{otpId}/check). tyntec answers a
// wrong code with 401, too many attempts with 403 and an inactive OTP with
// 410, each with the OTP's status in the body: V1Check then returns that
// status and the *APIError (ErrUnauthorized or ErrGone).
func (cl *Client) V1Check(ctx context.Context, id, code string) (*V1OTP, error) {
	var out V1OTP
	_, err := cl.do(ctx, call{op: "v1_check", method: http.MethodPost, path: "/2fa/v1/otp/" + escape(id) + "/check", query: url.Values{"otpCode": {code}}, refusalOfTheOTP: true, out: &out})
	if err != nil {
		var apiErr *APIError
		if errors.As(err, &apiErr) && (errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrGone)) && apiErr.Decode(&out) == nil && out.OTPID != "" {
			return &out, err
		}
		return nil, err
	}
	return &out, nil
}

func setIf(q url.Values, k, v string) {
	if v != "" {
		q.Set(k, v)
	}
}
