package poller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// BucketWorld holds what the poller learned about the tyntec it talks to,
// so every replica (and the next leader) agrees without asking again; and
// when the newest webhook any replica read was stored (webhookKey).
const BucketWorld = "otpscope_poller_world"

// worldKey is the one key of BucketWorld: whether tyntec's v1 API knows v4 OTPs.
const worldKey = "v1-sees-v4"

// World says whether tyntec's v1 API (events, re-send) serves OTPs sent
// through v4. No seed says it does; the poller learns it at run time: a v1
// answer about a v4 OTP means yes, a v1 404 for an OTP v4 knows means no.
type World int

// The worlds.
const (
	WorldUnknown  World = iota // not learned yet
	WorldShared                // v1 serves v4 OTPs: lost v4 webhooks are recovered from v1 events, v4 OTPs re-sent through v1
	WorldSeparate              // v1 answers 404 for v4 OTPs: lost v4 webhooks are unrecoverable, v4 OTPs are not re-sent
)

func (w World) String() string {
	switch w {
	case WorldShared:
		return "shared"
	case WorldSeparate:
		return "separate"
	}
	return "unknown"
}

// gauge is the value of otpscope_poller_v1_sees_v4: 1, 0, or -1 unknown.
func (w World) gauge() float64 {
	switch w {
	case WorldShared:
		return 1
	case WorldSeparate:
		return 0
	}
	return -1
}

// worldState is the value of worldKey.
type worldState struct {
	V1SeesV4  bool      `json:"v1SeesV4"`
	OTPID     string    `json:"otpId"` // the v4 OTP that told
	LearnedAt time.Time `json:"learnedAt"`
	Replica   string    `json:"replica"`
}

// World returns what the poller knows about tyntec's versions.
func (p *Poller) World() World {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.world
}

// setWorld records w locally, with its metric; it reports whether it changed.
func (p *Poller) setWorld(w World) bool {
	p.mu.Lock()
	changed := p.world != w
	p.world = w
	p.mu.Unlock()
	p.metrics.v1SeesV4.Set(w.gauge())
	return changed
}

// learnWorld records what a call about the v4 OTP id showed, in BucketWorld
// for every replica, and logs it when it is news. A v1 answer about a v4
// OTP proves the shared world; a v1 404 only suggests the separate one
// (that OTP may be gone from v1 alone, or a gateway answered): it never
// overturns what an answer proved, or one 404 would stop the recovery of
// every lost webhook for good.
func (p *Poller) learnWorld(ctx context.Context, w World, id string) {
	if w == WorldSeparate && p.World() == WorldShared {
		return
	}
	if !p.setWorld(w) {
		return
	}
	p.logger.Info("learned whether tyntec's v1 API serves v4 OTPs", "world", w.String(), "v1_sees_v4", w == WorldShared, "otp_id", id,
		"effect", map[World]string{
			WorldShared:   "lost v4 webhooks are recovered from v1 events; v4 OTPs may be re-sent through v1",
			WorldSeparate: "lost v4 webhooks are counted unrecoverable; v4 OTPs are not re-sent",
		}[w])
	data, _ := json.Marshal(worldState{V1SeesV4: w == WorldShared, OTPID: id, LearnedAt: time.Now().UTC(), Replica: p.cfg.Replica})
	if _, err := p.worldKV.Put(ctx, worldKey, data); err != nil {
		p.logger.Warn("store what was learned about tyntec", "err", err)
	}
}

// watchWorld keeps the local World current with BucketWorld until ctx ends.
func (p *Poller) watchWorld(ctx context.Context) {
	watchKV(ctx, p.logger, BucketWorld, func(ctx context.Context) (jetstream.KeyWatcher, error) {
		return p.worldKV.Watch(ctx, worldKey)
	}, func(e jetstream.KeyValueEntry) {
		if e == nil || e.Operation() != jetstream.KeyValuePut {
			return
		}
		var ws worldState
		if json.Unmarshal(e.Value(), &ws) != nil {
			return
		}
		if ws.V1SeesV4 {
			p.setWorld(WorldShared)
		} else {
			p.setWorld(WorldSeparate)
		}
	})
}

// loadWorld reads what an earlier run or another replica learned.
func (p *Poller) loadWorld(ctx context.Context) error {
	e, err := p.worldKV.Get(ctx, worldKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		p.setWorld(WorldUnknown)
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", worldKey, err)
	}
	var ws worldState
	if err := json.Unmarshal(e.Value(), &ws); err != nil {
		p.setWorld(WorldUnknown)
		return nil
	}
	if ws.V1SeesV4 {
		p.setWorld(WorldShared)
	} else {
		p.setWorld(WorldSeparate)
	}
	return nil
}

// worldInfo is the line /readyz shows beside the poller's check.
func (p *Poller) worldInfo() string {
	return "tyntec v1 sees v4 OTPs: " + map[World]string{WorldUnknown: "unknown", WorldShared: "yes", WorldSeparate: "no"}[p.World()]
}
