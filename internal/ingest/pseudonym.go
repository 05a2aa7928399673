package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// PseudonymBucket is the KV bucket that holds the pseudonym key shared by
// ingest replicas on an external NATS server (SharedPseudonymKey), under
// PseudonymKVKey. The read-only NATS user cannot read KV buckets.
const (
	PseudonymBucket = "otpscope_ingest"
	PseudonymKVKey  = "pseudonym-key"
)

// SharedPseudonymKey is the pseudonym key of ingest replicas that publish
// to an external NATS server without --pseudonym-key: the key in kv, which
// the first replica to start puts there and every later one, and every
// restart, reads. So replicas agree on every phone number's pseudonym with
// nothing to configure, where each replica's own data directory (an
// emptyDir, a container's file system) would give each its own key, and a
// new one at each rollout. The first puts seed when it has one — its data
// directory's pseudonym.key, from a build that kept the key there, so that
// an upgrade keeps the pseudonyms — or a new random key. created says
// whether this call put the key.
func SharedPseudonymKey(ctx context.Context, kv jetstream.KeyValue, seed []byte) (key []byte, created bool, err error) {
	for range 3 {
		e, err := kv.Get(ctx, PseudonymKVKey)
		switch {
		case err == nil:
			k := strings.TrimSpace(string(e.Value()))
			if len(k) < minPseudonymKey {
				return nil, false, fmt.Errorf("pseudonym key in KV bucket %s: %d characters; want at least %d", PseudonymBucket, len(k), minPseudonymKey)
			}
			return []byte(k), false, nil
		case !errors.Is(err, jetstream.ErrKeyNotFound):
			return nil, false, fmt.Errorf("pseudonym key in KV bucket %s: %w", PseudonymBucket, err)
		}
		k := string(seed)
		if k == "" {
			k = newPseudonymKey()
		}
		_, err = kv.Create(ctx, PseudonymKVKey, []byte(k))
		if err == nil {
			return []byte(k), true, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, false, fmt.Errorf("pseudonym key in KV bucket %s: %w", PseudonymBucket, err)
		}
		// Another replica created it first: read theirs.
	}
	return nil, false, fmt.Errorf("pseudonym key in KV bucket %s: neither read nor created", PseudonymBucket)
}

// PublishPseudonymKey makes key the one kv shares: the key of an ingest
// hosting a single embedded NATS server, which keeps its own in its data
// directory, so that replicas publishing to that server agree with it.
// replaced is the different key kv held before, if any.
func PublishPseudonymKey(ctx context.Context, kv jetstream.KeyValue, key []byte) (replaced []byte, err error) {
	e, err := kv.Get(ctx, PseudonymKVKey)
	switch {
	case err == nil && bytes.Equal(bytes.TrimSpace(e.Value()), key):
		return nil, nil
	case err == nil:
		replaced = bytes.TrimSpace(e.Value())
	case !errors.Is(err, jetstream.ErrKeyNotFound):
		return nil, fmt.Errorf("pseudonym key in KV bucket %s: %w", PseudonymBucket, err)
	}
	if _, err := kv.Put(ctx, PseudonymKVKey, key); err != nil {
		return nil, fmt.Errorf("pseudonym key in KV bucket %s: %w", PseudonymBucket, err)
	}
	return replaced, nil
}
