// Package broker is otpscope's NATS side: the embedded NATS server with JetStream
// on disk, the connection to it or to an external server, the one stream over
// tyntec.2fa.>, publishing that waits for JetStream's acknowledgement, and
// consuming: one rule for provisioning durable consumers, one fetch loop and one
// settlement policy (ack, retry after a delay, or dead-letter and terminate),
// plus the KV buckets and leases the services keep their state in.
package broker
