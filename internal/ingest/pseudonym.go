package ingest

import (
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
// the first replica to start creates (random, as PseudonymKey makes one)
// and every later one, and every restart, reads. So replicas agree on
// every phone number's pseudonym with nothing to configure, where each
// replica's own data directory (an emptyDir, a container's file system)
// would give each its own key, and a new one at each rollout. created says
// whether this call made the key.
func SharedPseudonymKey(ctx context.Context, kv jetstream.KeyValue) (key []byte, created bool, err error) {
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
		k := newPseudonymKey()
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
