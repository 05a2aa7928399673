// Package broker is otpscope's NATS side: the embedded NATS server with JetStream
// on disk, the connection to it or to an external server, the one stream over
// tyntec.2fa.>, and publishing that waits for JetStream's acknowledgement.
package broker
