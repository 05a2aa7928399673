// Package events is otpscope's event model and the one vocabulary for what
// tyntec says: channels, delivery statuses, OTP statuses, the v1 event words and
// the DeliveryStatus webhook (package tyntec reuses them on the wire), and
// the verification methods in front of the OTP: silent-auth outcomes and
// push approval statuses (methods.go), channels SILENT and PUSH. It holds
// the records otpscope derives from those facts, their validation, the NATS
// subjects they travel on (built and parsed here), the CloudEvents attributes
// that describe them and the content-derived message ids that let JetStream and
// ClickHouse drop duplicates. It does no I/O and imports nothing internal.
package events
