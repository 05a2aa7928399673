// Package tyntec is otpscope's client for tyntec's 2FA API and the Go shape of
// everything tyntec sends or returns: the v4 OTP, callback configuration,
// priority and profile resources, the v1 OTP status and events. The words
// tyntec uses for channels, delivery and OTP statuses, and the DeliveryStatus
// webhook body, are defined once in package events, which this package reuses.
//
// A Client authenticates with the apiKey header, spends a token-bucket budget
// shared by every client of the same API key (tyntec documents 100 calls per
// 60 s), retries idempotent calls on 429, 5xx and timeouts with exponential
// backoff and jitter while honouring Retry-After, and never retries a
// non-idempotent call (send, re-send, validate, create) unless tyntec refused it
// with 429 before acting on it. Failed calls return *APIError, which matches the
// sentinel errors ErrNotFound, ErrUnauthorized, ErrGone, ErrRateLimited,
// ErrServer and ErrBadRequest with errors.Is.
//
// The package imports nothing from the rest of otpscope but events, and does
// not log.
// The simulator of the same API lives in the subpackage tyntecsim.
package tyntec
