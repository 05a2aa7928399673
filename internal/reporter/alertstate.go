package reporter

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go/jetstream"

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

// firing is what the bucket keeps of a rule firing on a channel (or on
// every channel: the fallback rate).
type firing struct {
	Rule    string    `json:"rule"`
	Channel string    `json:"channel,omitempty"`
	Since   time.Time `json:"since"`
	// Notified is the evaluation whose POST to the webhook last succeeded;
	// zero until one has, so that a failed POST is tried again at the next
	// evaluation.
	Notified time.Time `json:"notified,omitzero"`
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

// alertState opens the bucket, once.
type alertState struct {
	mu sync.Mutex
	kv jetstream.KeyValue
}

func (s *alertState) open(ctx context.Context, pub Publisher) (jetstream.KeyValue, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kv == nil {
		kv, err := pub.KeyValue(ctx, jetstream.KeyValueConfig{Bucket: BucketAlerts, Description: "otpscope reporter: the alert rules firing, since when, and when the webhook last heard"})
		if err != nil {
			return nil, err
		}
		s.kv = kv
	}
	return s.kv, nil
}

// loadFiring reads every rule firing, by key. An entry that does not decode
// (written by hand, or by a release that kept something else) is logged and
// deleted, rather than stopping every evaluation after it: its rule, if it
// still holds, fires anew.
func (r *Reports) loadFiring(ctx context.Context, kv jetstream.KeyValue) (map[string]firing, error) {
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("alert state: %w", err)
	}
	out := map[string]firing{}
	for k := range keys.Keys() {
		e, err := kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // deleted since the listing
		}
		if err != nil {
			return nil, fmt.Errorf("alert state %s: %w", k, err)
		}
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

// transition is one alert of an evaluation and what becomes of its state.
type transition struct {
	alert  Alert
	state  firing // for a firing alert, what to keep
	notify bool   // whether the webhook hears of it
}

// transitions pairs the alerts that hold in this evaluation with the state
// the last one left: a rule that fires anew is announced, one that keeps
// firing only every repeat (never when 0) or until the webhook took it, and
// a rule that fired and holds no longer resolves, which is announced. The
// resolutions come last, in key order.
func transitions(holding []Alert, prev map[string]firing, resolve func(firing) Alert, repeat time.Duration) []transition {
	prev = maps.Clone(prev) // the resolutions are what is left in it
	var out []transition
	for _, al := range holding {
		k := firingKey(al.Rule, al.Channel)
		p, was := prev[k]
		delete(prev, k)
		tr := transition{alert: al, state: firing{Rule: al.Rule, Channel: al.Channel, Since: al.To}, notify: true}
		if was {
			tr.alert.Since, tr.state.Since, tr.state.Notified = p.Since, p.Since, p.Notified
			tr.notify = p.Notified.IsZero() || repeat > 0 && !al.To.Before(p.Notified.Add(repeat))
		}
		tr.alert.State = events.AlertFiring
		out = append(out, tr)
	}
	for _, k := range slices.Sorted(maps.Keys(prev)) {
		out = append(out, transition{alert: resolve(prev[k]), notify: true})
	}
	return out
}

// FiringRule is a rule firing as of the reporter's last evaluation.
type FiringRule struct {
	Rule    string    `json:"rule"`
	Channel string    `json:"channel,omitempty"`
	Since   time.Time `json:"since"`
}

// FiringResponse is the body of GET /api/v1/alerts/firing.
type FiringResponse struct {
	Firing []FiringRule `json:"firing"`
}

// Firing lists the rules firing as of the last evaluation, the longest
// firing first. Any replica can answer: the state is in NATS.
func (r *Reports) Firing(ctx context.Context) ([]FiringRule, error) {
	kv, err := r.firing.open(ctx, r.pub)
	if err != nil {
		return nil, fmt.Errorf("alert state: %w", err)
	}
	state, err := r.loadFiring(ctx, kv)
	if err != nil {
		return nil, err
	}
	out := []FiringRule{}
	for _, f := range state {
		out = append(out, FiringRule{Rule: f.Rule, Channel: f.Channel, Since: f.Since.UTC()})
	}
	slices.SortFunc(out, func(a, b FiringRule) int {
		return cmp.Or(a.Since.Compare(b.Since), cmp.Compare(a.Rule, b.Rule), cmp.Compare(a.Channel, b.Channel))
	})
	return out, nil
}

// MountFiring adds GET /api/v1/alerts/firing to router: the rules firing
// now, which the console shows above the window's alerts.
func (r *Reports) MountFiring(router chi.Router) {
	re := responder{logger: r.logger, failure: "alert state", title: "Alert state unavailable", detail: "NATS did not answer for the alerts' state"}
	router.Get("/api/v1/alerts/firing", func(w http.ResponseWriter, req *http.Request) {
		firing, err := r.Firing(req.Context())
		re.reply(w, req, FiringResponse{Firing: firing}, err)
	})
}
