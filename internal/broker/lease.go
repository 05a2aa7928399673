package broker

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
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
	// cause adds why NATS failed a request (Broker.withCause): an
	// election that times out says the connection is down.
	cause func(error) error
	// Holding, when set, is told when this replica gains or loses the lease.
	Holding func(bool)
	// Waiting, when set, is told the holder's name when this replica finds
	// the lease held by another, once until it holds it; unset, that is an
	// INFO line naming the holder.
	Waiting func(holder string)
	// Token tells this replica's terms from another's of the same name
	// (an operator may give two replicas one --replica): the key holds the
	// name and the token, and only a key holding both is taken back
	// (take). Random per process unless set: the embedded sink's is its
	// engine's, so a restart after a crash takes its lease back.
	Token string
	// Sticky keeps a term through refreshes NATS fails (away, or its disk
	// full): fn goes on and the key is taken back once NATS answers; only
	// another holder found at a refresh ends it. For work whose pause
	// costs more than a short overlap with another holder's, which does
	// not ask LeaseTerm.Held.
	Sticky bool
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
	var nonce [6]byte
	_, _ = rand.Read(nonce[:])
	return &Lease{kv: kv, key: key, holder: holder, ttl: ttl, logger: logger, cause: b.withCause, Token: hex.EncodeToString(nonce[:])}, nil
}

// tokenSep parts a key's value into the holder's name and its token.
const tokenSep = " #"

// value is what the key holds while this replica holds the lease.
func (l *Lease) value() []byte { return []byte(l.holder + tokenSep + l.Token) }

// holderOf is the holder's name in a key's value.
func holderOf(value []byte) string {
	v := string(value)
	if i := strings.LastIndex(v, tokenSep); i >= 0 {
		return v[:i]
	}
	return v
}

// LeaseTerm is one hold of a lease, which Lease.Run hands fn in its context
// (TermOf). Its context ends when the lease is lost, but a process paused
// past the TTL (a stopped container, a long GC, a VM migration) resumes
// with its work and its refresher racing: work that must not outlive the
// lease, such as a live resend, asks Held right before it acts.
type LeaseTerm struct {
	// Revision is the key's revision when the term began: unique, and
	// greater for a later term, on any replica.
	Revision uint64
	// Since is when this replica acquired the lease.
	Since time.Time
	until atomic.Pointer[time.Time]
}

// NewLeaseTerm is a term begun at revision, held until until (Lease.Run
// extends it at each refresh; tests make their own).
func NewLeaseTerm(revision uint64, since, until time.Time) *LeaseTerm {
	t := &LeaseTerm{Revision: revision, Since: since}
	t.until.Store(&until)
	return t
}

// Held reports whether the lease is still certainly this replica's: less
// than its TTL has passed since the last create or refresh was sent (by the
// monotonic clock, which runs on while the process is paused; the bucket
// counts the TTL from when the server stored it, later).
func (t *LeaseTerm) Held() bool { return time.Now().Before(*t.until.Load()) }

// end marks the term over: the lease was lost or handed over, whatever
// time its last refresh left.
func (t *LeaseTerm) end() { t.until.Store(&time.Time{}) }

type termKey struct{}

// ContextWithLeaseTerm is ctx carrying term, as Lease.Run gives fn.
func ContextWithLeaseTerm(ctx context.Context, term *LeaseTerm) context.Context {
	return context.WithValue(ctx, termKey{}, term)
}

// TermOf is the lease term ctx runs under, or nil outside Lease.Run.
func TermOf(ctx context.Context) *LeaseTerm {
	t, _ := ctx.Value(termKey{}).(*LeaseTerm)
	return t
}

// Run runs fn whenever this replica holds the lease, until ctx ends; fn's
// context ends when the lease is lost and carries the term (TermOf). It
// returns when ctx ends or fn fails (fn's error); either way the lease is
// handed over at once rather than after the TTL.
func (l *Lease) Run(ctx context.Context, fn func(context.Context) error) error {
	told := false // that another holds it
	for ctx.Err() == nil {
		sent := time.Now()
		rev, other, err := l.take(ctx)
		if err != nil {
			switch {
			case other != "":
				if !told {
					l.tellWaiting(other)
					told = true
				}
			case errors.Is(err, jetstream.ErrKeyExists):
			case ctx.Err() == nil:
				l.logger.Warn("lease election", "key", l.key, "err", l.cause(err))
			}
			backoff.Sleep(ctx, l.ttl/3)
			continue
		}
		told = false
		l.logger.Info("lease acquired", "key", l.key, "holder", l.holder)
		l.holding(true)
		term := NewLeaseTerm(rev, sent, sent.Add(l.ttl))
		lctx, cancel := context.WithCancel(ContextWithLeaseTerm(ctx, term))
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
				if !term.Held() && !l.Sticky {
					l.logger.Warn("lease expired before its refresh (was the process paused?)", "key", l.key, "ttl", l.ttl)
					cancel()
					return nil
				}
				sent := time.Now()
				r, err := refresh(gctx, l, rev)
				if err != nil && l.Sticky && gctx.Err() == nil {
					if r, _, err = l.take(gctx); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
						continue // NATS does not answer: go on, ask again at the next refresh
					}
				}
				if err != nil {
					term.end()
					if gctx.Err() == nil {
						l.logger.Warn("lease lost", "key", l.key, "err", l.cause(err))
						cancel()
					}
					return nil
				}
				rev = r
				until := sent.Add(l.ttl)
				term.until.Store(&until)
			}
		})
		err = g.Wait()
		ended := lctx.Err() != nil // the lease ended the work, or ctx did
		term.end()
		cancel()
		l.holding(false)
		l.release(ctx, rev)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil && !(ended && errors.Is(err, context.Canceled)) {
			return err
		}
		// The term is over (lost, or the work returned): ask again after
		// a pause, not in a loop against NATS.
		backoff.Sleep(ctx, l.ttl/3)
	}
	return nil
}

// take creates the lease's key, or takes it back where it still names
// this replica: a term lost while NATS was away (its refresh failed) left
// the key, which would otherwise hold every replica off until its TTL.
// Held by another, the error is jetstream.ErrKeyExists and other names
// the holder.
func (l *Lease) take(ctx context.Context) (rev uint64, other string, err error) {
	rev, err = l.kv.Create(ctx, l.key, l.value())
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return rev, "", err
	}
	e, gerr := l.kv.Get(ctx, l.key)
	switch {
	case errors.Is(gerr, jetstream.ErrKeyNotFound):
		return 0, "", err // expired meanwhile: ask again
	case gerr != nil:
		return 0, "", gerr
	case !bytes.Equal(e.Value(), l.value()):
		return 0, holderOf(e.Value()), err
	}
	rev, err = l.kv.Update(ctx, l.key, l.value(), e.Revision())
	return rev, "", err
}

// tellWaiting says who holds the lease: Waiting, else an INFO line.
func (l *Lease) tellWaiting(holder string) {
	if l.Waiting != nil {
		l.Waiting(holder)
		return
	}
	l.logger.Info("lease held by another replica; waiting", "key", l.key, "holder", holder)
}

// release deletes the lease's key if it is still at rev, ours: another
// replica takes over at once rather than after the TTL, whether this one
// stops or its work failed. A lease lost meanwhile is left to its holder.
func (l *Lease) release(ctx context.Context, rev uint64) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	_ = l.kv.Delete(rctx, l.key, jetstream.LastRevision(rev))
}

func (l *Lease) holding(b bool) {
	if l.Holding != nil {
		l.Holding(b)
	}
}

// refresh renews the lease at revision rev; tests replace it to stall it.
var refresh = func(ctx context.Context, l *Lease, rev uint64) (uint64, error) {
	return l.kv.Update(ctx, l.key, l.value(), rev)
}
