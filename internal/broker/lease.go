package broker

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/otpscope/otpscope/internal/backoff"
)

// Lease elects one holder among replicas through a JetStream KV key: created
// with compare-and-set, refreshed every third of its TTL, and expired by the
// bucket's TTL when its holder dies without handing it over.
type Lease struct {
	kv     jetstream.KeyValue
	key    string
	holder string
	ttl    time.Duration
	logger *slog.Logger
	// Holding, when set, is told when this replica gains or loses the lease.
	Holding func(bool)
}

// NewLease creates (or opens) bucket with the given TTL and returns the lease
// of key for holder, a name unique to this replica.
func (b *Broker) NewLease(ctx context.Context, bucket, description, key, holder string, ttl time.Duration, logger *slog.Logger) (*Lease, error) {
	kv, err := b.KeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: bucket, Description: description, History: 1, TTL: ttl,
		Storage: jetstream.FileStorage,
	})
	if err != nil {
		return nil, err
	}
	return &Lease{kv: kv, key: key, holder: holder, ttl: ttl, logger: logger}, nil
}

// Run runs fn whenever this replica holds the lease, until ctx ends; fn's
// context ends when the lease is lost. On return the lease is handed over at
// once rather than after the TTL.
func (l *Lease) Run(ctx context.Context, fn func(context.Context) error) error {
	for ctx.Err() == nil {
		rev, err := l.kv.Create(ctx, l.key, []byte(l.holder))
		if err != nil {
			if !errors.Is(err, jetstream.ErrKeyExists) && ctx.Err() == nil {
				l.logger.Warn("lease election", "key", l.key, "err", err)
			}
			backoff.Sleep(ctx, l.ttl/3)
			continue
		}
		l.logger.Info("lease acquired", "key", l.key, "holder", l.holder)
		l.holding(true)
		lctx, cancel := context.WithCancel(ctx)
		g, gctx := errgroup.WithContext(lctx)
		g.Go(func() error { return fn(gctx) })
		g.Go(func() error {
			t := time.NewTicker(l.ttl / 3)
			defer t.Stop()
			for {
				select {
				case <-gctx.Done():
					return nil
				case <-t.C:
				}
				r, err := l.kv.Update(gctx, l.key, []byte(l.holder), rev)
				if err != nil {
					if gctx.Err() == nil {
						l.logger.Warn("lease lost", "key", l.key, "err", err)
						cancel()
					}
					return nil
				}
				rev = r
			}
		})
		err = g.Wait()
		cancel()
		l.holding(false)
		if ctx.Err() != nil {
			rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			_ = l.kv.Delete(rctx, l.key, jetstream.LastRevision(rev))
			rcancel()
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (l *Lease) holding(b bool) {
	if l.Holding != nil {
		l.Holding(b)
	}
}
