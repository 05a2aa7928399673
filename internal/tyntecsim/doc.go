// Package tyntecsim is an in-memory simulator of tyntec's 2FA API (v4 OTP,
// callback configuration, priorities and profiles; v1 OTP status, events,
// check and re-send) together with the sending side: channels that deliver
// or fail with configurable probability, latency and timeout, fallback along
// the priority's channels, DeliveryStatus webhooks to every registered
// callback, and faults on demand (dropped, duplicated and reordered webhooks,
// 5xx and slow answers, 429 with Retry-After). It also speaks Silent
// Authentication (seed 004: authorize, token, userinfo) and push approvals
// (seed 003: create, get, status callbacks), and its traffic generator plays
// an app that tries one of them before an OTP and reports to otpscope.
//
// It assumes only what tyntec documents, by default: v1 and v4 keep separate
// OTPs (Config.SharedVersions joins them), validity comes from the profile's
// template, and every other choice is listed as "assumed" in the README.
//
// A Sim is an http.Handler (use it behind httptest.NewServer); Start runs its
// delivery engine and Close stops it. Everything random is drawn from
// generators seeded by Config.Seed, one per OTP, so the same seed and the same
// requests give the same channels, outcomes and delays. Silent-auth attempts
// and approval requests draw theirs in the order they arrive: generated
// logins that run concurrently may swap stories between runs. Time inside the
// simulator runs Config.TimeScale times faster than the wall clock; event
// timestamps are simulated time. Truth exports what the simulator did, with
// the same timestamps as its webhooks, so tests can compare otpscope's
// numbers with reality.
package tyntecsim
