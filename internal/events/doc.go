// Package events is otpscope's event model: tyntec's DeliveryStatus webhook and the
// records otpscope derives from it, their validation, the NATS subjects they travel
// on, the CloudEvents attributes that describe them and the content-derived message
// ids that let JetStream and ClickHouse drop duplicates. It does no I/O.
package events
