// Package poller is the only part of otpscope that calls tyntec. It tracks the
// open OTPs in a JetStream KV bucket (from delivery events, registrations on
// tyntec.2fa.track and a periodic GET /2fa/v4/otp), reconciles on a cron
// schedule what webhooks lost by reading the OTPs' v1 events and statuses
// within one rate budget, decides resends by a policy (dry-run unless told
// otherwise) and points tyntec's callback configuration at ingest.
//
// Replicas share the state: every record change is a compare-and-set on the
// key's revision, the tracking consumer is one durable shared by all, and the
// replica holding the lease in BucketLeader is the only one that calls tyntec,
// so one process's limiter is the whole API budget. Resend decisions are
// claimed by creating a key in BucketResends, so a decision is acted on once
// even when two replicas see the same failure.
//
// An OTP's delivery needs reconciling, after a settle time, when the webhooks
// leave its story incomplete: an attempt DISPATCHED without an outcome, the
// channels seen are not the start of one of the account's priorities (an
// earlier attempt went unreported), or the last attempt failed where a
// priority could fall back further. One read of its v1 events then recovers
// every fact. What no reading of webhooks can tell apart is an attempt whose
// every webhook was lost when the channels left look like another priority
// (WHATSAPP>SMS with the WHATSAPP webhooks lost looks like SMS first).
package poller
