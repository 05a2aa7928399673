package broker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"

	"github.com/nats-io/nats.go/jetstream"
)

// KeyValue creates the KV bucket of cfg, or updates it to cfg, retrying like
// the stream (untilAnswered). A bucket without Replicas gets the stream's
// as it is (not this process's --stream-replicas, which an existing stream
// may not have taken: EnsureStream), so state is as durable as the events;
// without Storage it is kept on file.
func (b *Broker) KeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	if cfg.Replicas == 0 {
		cfg.Replicas = max(1, int(b.replicas.Load()))
	}
	var kv jetstream.KeyValue
	err := b.untilAnswered(ctx, "KV bucket "+cfg.Bucket, func(ctx context.Context) (err error) {
		kv, err = b.js.CreateOrUpdateKeyValue(ctx, cfg)
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

// Keys returns every key of kv. It reads nats.go's key lister to its end:
// a lister left unread blocks its goroutine for good once more than its
// buffer's 256 keys wait (the send does not watch the context), so a caller
// that stops early leaks it.
func Keys(ctx context.Context, kv jetstream.KeyValue) ([]string, error) {
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	return keys, ctx.Err()
}
