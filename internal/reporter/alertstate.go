package reporter

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/otpscope/otpscope/internal/broker"
	"github.com/otpscope/otpscope/internal/events"
)

// The alerts' state: which rules are firing, since when, and when the
// webhook last heard of each. It lives in a KV bucket of its own, so that a
// restart, or the replica that takes over the reports lease, carries on
// where the last evaluation left off rather than announcing every firing
// rule again.
const (
	BucketAlerts = "otpscope_alerts"
	// DefaultAlertRepeat is how often the webhook hears again of a rule that
	// stays firing: Alertmanager's default repeat_interval.
	DefaultAlertRepeat = 4 * time.Hour
)

// firing is what the bucket keeps of a rule holding on a channel (or on
// every channel: the fallback rate), firing or pending while it has held
// for less than --alert-for: the alert of the last evaluation that found
// it holding, which GET /api/v1/alerts/firing lists.
type firing struct {
	Alert
	// Pending: the rule holds, but has not held for --alert-for yet;
	// nothing was published or posted of it.
	Pending bool `json:"pending,omitempty"`
	// Notified is the evaluation whose POST to the webhook last succeeded;
	// zero until one has, so that a failed POST is tried again at the next
	// evaluation.
	Notified time.Time `json:"notified,omitzero"`
	// Unheard: the rule resolved (Alert is the resolution, already on
	// NATS) and the webhook's POST of it failed. It is posted again at each
	// evaluation until the webhook takes it or the rule holds again.
	Unheard bool `json:"unheard,omitempty"`
	// HeldBy is the silence that held the webhook's post of the firing
	// due at the last evaluation, if one did: the evaluations after
	// that the same silence holds the same post are not counted or
	// logged again.
	HeldBy string `json:"held_by,omitempty"`
	// Kept: the rule holds no longer, kept firing under
	// --alert-keep-firing-for (Alert is its last firing): its transition
	// is quiet, and still firing to Alertmanager, which would end it by
	// itself.
	Kept bool `json:"kept,omitempty"`
}

// firingKey is the bucket's key of rule on channel: rule.CHANNEL, or
// rule._ for a rule over every channel. KV keys take [-_=.A-Za-z0-9]; any
// other byte becomes '='.
func firingKey(rule, channel string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return '='
	}, rule+"."+cmp.Or(channel, "_"))
}

// kvBucket opens a KV bucket of cfg on first use, once: the alerts'
// state and the silences are in buckets of their own.
type kvBucket struct {
	cfg jetstream.KeyValueConfig
	mu  sync.Mutex
	kv  jetstream.KeyValue
}

func (b *kvBucket) open(ctx context.Context, pub Publisher) (jetstream.KeyValue, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.kv == nil {
		kv, err := pub.KeyValue(ctx, b.cfg)
		if err != nil {
			return nil, err
		}
		b.kv = kv
	}
	return b.kv, nil
}

// loadFiring reads every rule firing, by key. An entry that does not decode
// (written by hand, or by a release that kept something else) is logged and
// deleted, rather than stopping every evaluation after it: its rule, if it
// still holds, fires anew.
func (r *Reports) loadFiring(ctx context.Context, kv jetstream.KeyValue) (map[string]firing, error) {
	entries, err := broker.Entries(ctx, kv)
	if err != nil {
		return nil, fmt.Errorf("alert state: %w", err)
	}
	out := map[string]firing{}
	for _, e := range entries {
		k := e.Key()
		var f firing
		if err := json.Unmarshal(e.Value(), &f); err != nil || f.Rule == "" {
			r.logger.Error("alert state: an entry that is not a firing rule, deleted", "bucket", BucketAlerts, "key", k, "value", string(e.Value()), "err", err)
			if err := kv.Delete(ctx, k); err != nil {
				return nil, fmt.Errorf("alert state %s: %w", k, err)
			}
			continue
		}
		out[k] = f
	}
	return out, nil
}

// transition is what an evaluation does about one rule on one channel:
// publish a firing or a resolved alert (and keep or drop its state), post
// again a resolution the webhook did not take, or, for a rule pending or no
// longer pending, only keep or drop the state.
type transition struct {
	alert  Alert  // published unless quiet or repost
	quiet  bool   // nothing published or posted: a rule pending, or one that stopped before it fired
	repost bool   // only posted: a resolution published before
	state  firing // what to keep of a rule that holds
	keep   bool   // keep state; else drop it
	notify bool   // whether the webhook hears of the alert
}

// heard records the webhook's answer to a transition that notifies: ok
// when the POST succeeded, or there is no webhook to post to. A firing
// notes when the webhook heard of it; a resolution the webhook did not
// take is kept, unheard, to be posted again.
func (tr *transition) heard(ok bool, at time.Time) {
	switch {
	case !tr.notify:
	case ok && tr.alert.State == events.AlertFiring:
		tr.state.Notified, tr.state.HeldBy = at, ""
	case !ok && tr.alert.State == events.AlertResolved:
		tr.state, tr.keep = firing{Alert: tr.alert, Unheard: true}, true
	}
}

// alertTiming is how long a rule must hold before it fires (--alert-for,
// Prometheus' for:), how often the webhook hears again of a rule that
// keeps firing (--alert-repeat, never when 0), and how long a firing rule
// that holds no longer is kept firing before it resolves
// (--alert-keep-firing-for, Prometheus' keep_firing_for: a figure
// that wavers about its threshold fires once, not at every other
// evaluation).
type alertTiming struct{ hold, repeat, keepFiring time.Duration }

// transitions pairs the alerts that hold in this evaluation with the state
// the last one left. A rule that holds is pending until it has held at
// every evaluation for hold, then fires, its since being the first of
// them; the webhook hears when it begins to fire, then every repeat, or
// until a POST succeeds. A rule that fired and holds no longer resolves,
// which the webhook hears if it heard of the firing; one that was only
// pending is forgotten. A
// resolution the webhook did not take is posted again while the rule
// stays resolved; a rule that holds again starts anew. The rules that
// stopped come last, in key order. A firing rule that stopped less than
// keepFiring after it last held (at the evaluation ending at to) is kept
// firing, quietly: resolved by the first evaluation past that, or at once
// when the rules no longer watch it (watches: turned off, or one this
// release does not have), since nothing would judge it again.
func transitions(holding []Alert, prev map[string]firing, resolve func(firing) Alert, watches func(rule, channel string) bool, t alertTiming, to time.Time) []transition {
	prev = maps.Clone(prev) // the rules that stopped are what is left in it
	var out []transition
	for _, al := range holding {
		k := firingKey(al.Rule, al.Channel)
		p, was := prev[k]
		delete(prev, k)
		was = was && !p.Unheard
		tr := transition{alert: al, keep: true}
		tr.alert.State, tr.alert.Since = events.AlertFiring, al.To
		if was {
			tr.alert.Since = p.Since
		}
		tr.state.Alert = tr.alert
		switch {
		case al.To.Sub(tr.state.Since) < t.hold:
			tr.quiet, tr.state.Pending = true, true
		case !was || p.Pending:
			tr.notify = true
		default:
			tr.state.Notified, tr.state.HeldBy = p.Notified, p.HeldBy
			tr.notify = p.Notified.IsZero() || t.repeat > 0 && !al.To.Before(p.Notified.Add(t.repeat))
		}
		out = append(out, tr)
	}
	for _, k := range slices.Sorted(maps.Keys(prev)) {
		switch p := prev[k]; {
		case p.Unheard:
			out = append(out, transition{alert: p.Alert, repost: true, notify: true})
		case !p.Pending && to.Sub(p.To) < t.keepFiring && watches(p.Rule, p.Channel):
			p.Kept = true
			out = append(out, transition{alert: p.Alert, quiet: true, state: p, keep: true})
		default:
			// The webhook hears of a resolution only when it heard of
			// the firing: not of one a silence held throughout, nor of
			// one whose every POST failed.
			out = append(out, transition{alert: resolve(p), quiet: p.Pending, notify: !p.Pending && !p.Notified.IsZero()})
		}
	}
	return out
}

// FiringResponse is the body of GET /api/v1/alerts/firing.
type FiringResponse struct {
	Firing []FiringAlert `json:"firing"`
}

// FiringAlert is a rule firing now: the alert of the last evaluation that
// found it holding, and Kept when it holds no longer and is kept firing
// under --alert-keep-firing-for (its figures are then those it last held
// with, not the window's now). Its SilencedBy names the silence that
// holds its webhook posts now (the one ending last), until SilencedUntil.
type FiringAlert struct {
	Alert
	Kept          bool       `json:"kept,omitempty"`
	SilencedUntil *time.Time `json:"silenced_until,omitempty"`
}

// Firing lists the rules firing as of the last evaluation, the longest
// firing first, each as the alert of the last evaluation that found it
// holding (a To far behind now is a reporter that stopped evaluating, or
// one kept firing), and the silence that holds it, if any. Any replica can
// answer: the state is in NATS.
func (r *Reports) Firing(ctx context.Context) ([]FiringAlert, error) {
	kv, err := r.firing.open(ctx, r.pub)
	if err != nil {
		return nil, fmt.Errorf("alert state: %w", err)
	}
	state, err := r.loadFiring(ctx, kv)
	if err != nil {
		return nil, err
	}
	out := []FiringAlert{}
	for _, f := range state {
		if !f.Pending && !f.Unheard {
			f.SilencedBy = "" // as of its last evaluation; said below as of now
			out = append(out, FiringAlert{Alert: f.Alert, Kept: f.Kept})
		}
	}
	// The silences only when something fires: the console asks every few
	// seconds, and mostly nothing does.
	if len(out) > 0 {
		now := r.now()
		silences := r.activeSilences(ctx, now)
		for i := range out {
			if s, ok := silencing(silences, &out[i].Alert, now); ok {
				out[i].SilencedBy, out[i].SilencedUntil = s.ID, &s.EndsAt
			}
		}
	}
	slices.SortFunc(out, func(a, b FiringAlert) int {
		return cmp.Or(a.Since.Compare(b.Since), cmp.Compare(a.Rule, b.Rule), cmp.Compare(a.Channel, b.Channel))
	})
	return out, nil
}

// MountFiring adds GET /api/v1/alerts/firing to router: the rules firing
// now, which the console shows above the window's alerts.
func (r *Reports) MountFiring(router chi.Router) {
	re := responder{logger: r.logger, failure: "alert state", title: "Alert state unavailable", detail: "NATS did not answer for the alerts' state"}
	router.With(QueryParams(nil)).Get("/api/v1/alerts/firing", func(w http.ResponseWriter, req *http.Request) {
		firing, err := r.Firing(req.Context())
		re.reply(w, req, FiringResponse{Firing: firing}, err)
	})
}
