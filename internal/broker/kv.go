package broker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/otpscope/otpscope/internal/backoff"
)

// KeyValue creates the KV bucket of cfg, or updates it to cfg. A bucket
// without Replicas gets the stream's, so state is as durable as the events;
// without Storage it is kept on file. Like the stream, it retries while ctx
// lasts: JetStream may be restarting, electing a leader, or slow to answer
// (a loaded disk has taken more than the 5 s each try is given), or
// answers 503. Any other answer of the JetStream API is a refusal (a
// configuration it will not take) and fails at once.
func (b *Broker) KeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	if cfg.Replicas == 0 {
		cfg.Replicas = max(1, b.stream.Replicas)
	}
	var kv jetstream.KeyValue
	err := backoff.Retry(ctx, backoff.Policy{First: 100 * time.Millisecond, Max: 5 * time.Second}, func() (err error) {
		// Each try has its own bound: one without an answer must not use up ctx.
		tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		kv, err = b.js.CreateOrUpdateKeyValue(tctx, cfg)
		var api *jetstream.APIError
		switch {
		case errors.As(err, &api) && api.Code != 503:
			return backoff.Permanent(err) // an answer, not an absence: a refusal
		case err != nil:
			b.logger.Warn("KV bucket not ready; retrying", "bucket", cfg.Bucket, "err", err)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("create KV bucket %s: %w", cfg.Bucket, err)
	}
	return kv, nil
}

// ReplicaName is hostname-pid-random: a name unique to this process among the
// replicas of a service, for leases and claims.
func ReplicaName() string {
	host, _ := os.Hostname()
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}
