package reporter

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/otpscope/otpscope/internal/broker"
	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/ops"
	"github.com/otpscope/otpscope/internal/problem"
	"github.com/otpscope/otpscope/internal/store"
)

// Silences hold the webhook's posts of a rule (on a channel, or every rule
// on every channel) for a while: a carrier outage the team already works
// on, a maintenance window, without changing a flag or restarting. The
// rules are evaluated, published on NATS and stored as always, and
// Alertmanager hears every alert as before (it has silences of its own);
// only the webhook, otpscope's own pager, is held. They live in a KV
// bucket, so every replica applies and lists the same.
const (
	BucketSilences = "otpscope_alert_silences"
	// MaxSilence is how far ahead a silence may end: a silence is for a
	// known incident, not for turning a rule off (its flag does that).
	MaxSilence = 30 * 24 * time.Hour
	// silenceKept is how long the bucket keeps a silence after its last
	// write: one ends at most MaxSilence after it is written, so it is
	// listed for at least a week after it ends, and never forgotten
	// before.
	silenceKept = MaxSilence + 7*24*time.Hour
	// maxSilenceComment and maxSilenceBy bound the words a silence keeps.
	maxSilenceComment = 500
	maxSilenceBy      = 100
	// maxSilenceBody bounds POST /api/v1/alerts/silences' body.
	maxSilenceBody = 64 << 10
)

// A silence's state at a time.
const (
	SilencePending = "pending" // it starts later
	SilenceActive  = "active"
	SilenceExpired = "expired"
)

// Silence holds the webhook's posts of Rule on Channel from StartsAt to
// EndsAt. An empty Rule is every rule; an empty Channel every channel and
// the rules over every channel (fallback_rate_high, error_budget_burn),
// which a Channel never matches. State is said at the moment it is read.
type Silence struct {
	ID        string    `json:"id"`
	Rule      string    `json:"rule,omitempty"`
	Channel   string    `json:"channel,omitempty"`
	StartsAt  time.Time `json:"starts_at"`
	EndsAt    time.Time `json:"ends_at"`
	Comment   string    `json:"comment"`
	CreatedBy string    `json:"created_by,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	State     string    `json:"state"`
}

// at is s's state at t.
func (s Silence) at(t time.Time) string {
	switch {
	case t.Before(s.StartsAt):
		return SilencePending
	case t.Before(s.EndsAt):
		return SilenceActive
	default:
		return SilenceExpired
	}
}

// matches reports whether s holds al's posts at t.
func (s Silence) matches(al *Alert, t time.Time) bool {
	return s.at(t) == SilenceActive && (s.Rule == "" || s.Rule == al.Rule) && (s.Channel == "" || s.Channel == al.Channel)
}

// Says is s in words: what it holds, when, and why.
func (s Silence) Says() string {
	what := cmp.Or(s.Rule, "every rule")
	if s.Channel != "" {
		what += " on " + s.Channel
	}
	when := "held until " + s.EndsAt.UTC().Format(time.RFC3339)
	switch s.State {
	case SilencePending:
		when = "to be held from " + s.StartsAt.UTC().Format(time.RFC3339) + " until " + s.EndsAt.UTC().Format(time.RFC3339)
	case SilenceExpired:
		when = "was held until " + s.EndsAt.UTC().Format(time.RFC3339)
	}
	by := ""
	if s.CreatedBy != "" {
		by = ", by " + s.CreatedBy
	}
	return fmt.Sprintf("%s %s (%s%s)", what, when, s.Comment, by)
}

// Line is s as otpscope alerts silences lists it: its state, id and
// what it says.
func (s Silence) Line() string {
	return fmt.Sprintf("%-8s %s  %s", s.State, s.ID, s.Says())
}

// silencing finds the silence that holds al at t: the one that ends last.
func silencing(silences []Silence, al *Alert, t time.Time) (Silence, bool) {
	var found Silence
	for _, s := range silences {
		if s.matches(al, t) && s.EndsAt.After(found.EndsAt) {
			found = s
		}
	}
	return found, found.ID != ""
}

// SilenceRequest is the body of POST /api/v1/alerts/silences: Duration
// (a Go duration, or whole days: 2h, 1d) or EndsAt, not both; StartsAt
// now when not given. Comment is required: why, for whoever reads the
// list.
type SilenceRequest struct {
	Rule      string     `json:"rule,omitempty"`
	Channel   string     `json:"channel,omitempty"`
	StartsAt  *time.Time `json:"starts_at,omitempty"`
	EndsAt    *time.Time `json:"ends_at,omitempty"`
	Duration  string     `json:"duration,omitempty"`
	Comment   string     `json:"comment"`
	CreatedBy string     `json:"created_by,omitempty"`
}

// SilencesResponse is the body of GET /api/v1/alerts/silences: the active
// and pending silences, the one ending first first, then the expired ones,
// the one ended last first.
type SilencesResponse struct {
	Silences []Silence `json:"silences"`
}

// silenceError is a request's mistake, about field.
type silenceError struct {
	field string
	err   error
}

func (e *silenceError) Error() string { return e.err.Error() }

// SilenceRules are the rules a silence may name.
var SilenceRules = []string{RuleDeliveryRateLow, RuleDeliverySlow, RuleDeliveryRateDrop, RuleFallbackRateHigh, RuleErrorBudgetBurn}

// newSilence checks req and makes the silence it asks for at now.
func newSilence(req SilenceRequest, now time.Time) (Silence, error) {
	now = now.UTC().Truncate(time.Millisecond)
	s := Silence{ID: uuid.NewString(), Rule: strings.TrimSpace(req.Rule), Channel: strings.ToUpper(strings.TrimSpace(req.Channel)),
		StartsAt: now, Comment: strings.TrimSpace(req.Comment), CreatedBy: strings.TrimSpace(req.CreatedBy), CreatedAt: now}
	if s.Rule != "" && !slices.Contains(SilenceRules, s.Rule) {
		return s, &silenceError{"rule", fmt.Errorf("%.64q is not a rule: want one of %s, or none for every rule", s.Rule, strings.Join(SilenceRules, ", "))}
	}
	if s.Channel != "" && !events.WellFormed(s.Channel) {
		return s, &silenceError{"channel", fmt.Errorf("%.64q is not a channel name (a word such as SMS or whatsapp)", req.Channel)}
	}
	if s.Channel != "" && (s.Rule == RuleFallbackRateHigh || s.Rule == RuleErrorBudgetBurn) {
		return s, &silenceError{"channel", fmt.Errorf("%s is judged over every channel: silence it without a channel", s.Rule)}
	}
	if s.Comment == "" {
		return s, &silenceError{"comment", errors.New("say why: a comment is required")}
	}
	if n := utf8.RuneCountInString(s.Comment); n > maxSilenceComment {
		return s, &silenceError{"comment", fmt.Errorf("%d characters: at most %d", n, maxSilenceComment)}
	}
	if n := utf8.RuneCountInString(s.CreatedBy); n > maxSilenceBy {
		return s, &silenceError{"created_by", fmt.Errorf("%d characters: at most %d", n, maxSilenceBy)}
	}
	// One line of words: the list, the console and the CLI print them as
	// they are, and a control character (a newline, a terminal escape)
	// would be read as theirs.
	for field, v := range map[string]string{"comment": s.Comment, "created_by": s.CreatedBy} {
		if i := strings.IndexFunc(v, unicode.IsControl); i >= 0 {
			r, _ := utf8.DecodeRuneInString(v[i:])
			return s, &silenceError{field, fmt.Errorf("a control character (%U) at byte %d: one line of words", r, i)}
		}
	}
	if req.StartsAt != nil {
		if req.StartsAt.After(now.Add(MaxSilence)) {
			return s, &silenceError{"starts_at", fmt.Errorf("%s is more than %s ahead", req.StartsAt.Format(time.RFC3339), humanDuration(MaxSilence))}
		}
		if req.StartsAt.After(now) { // a start in the past is now: nothing was held then
			s.StartsAt = req.StartsAt.UTC().Truncate(time.Millisecond)
		}
	}
	switch {
	case (req.EndsAt == nil) == (req.Duration == ""):
		return s, &silenceError{"duration", errors.New("give duration (2h, 1d) or ends_at, one of them")}
	case req.EndsAt != nil:
		s.EndsAt = req.EndsAt.UTC().Truncate(time.Millisecond)
	default:
		d, ok := store.ParseDuration(req.Duration)
		if !ok || d <= 0 {
			return s, &silenceError{"duration", fmt.Errorf("%.64q is not a positive duration such as 2h, 90m or 1d", req.Duration)}
		}
		s.EndsAt = s.StartsAt.Add(d)
	}
	field := "ends_at"
	if req.EndsAt == nil {
		field = "duration"
	}
	if !s.EndsAt.After(s.StartsAt) {
		return s, &silenceError{field, fmt.Errorf("it ends at %s, not after it starts (%s)", s.EndsAt.Format(time.RFC3339), s.StartsAt.Format(time.RFC3339))}
	}
	// Ending within MaxSilence of now, not of its start: the bucket
	// forgets an entry silenceKept after it is written.
	if s.EndsAt.Sub(now) > MaxSilence {
		return s, &silenceError{field, fmt.Errorf("it ends at %s, more than %s from now: a silence ends within %s (turn a rule off with its flag)",
			s.EndsAt.Format(time.RFC3339), humanDuration(MaxSilence), humanDuration(MaxSilence))}
	}
	return s, nil
}

// Silences lists the silences the bucket keeps, their states at now,
// ordered as SilencesResponse says. An entry that does not decode
// (written by hand) is skipped and logged.
func (r *Reports) Silences(ctx context.Context, now time.Time) ([]Silence, error) {
	kv, err := r.silences.open(ctx, r.pub)
	if err != nil {
		return nil, fmt.Errorf("silences: %w", err)
	}
	entries, err := broker.Entries(ctx, kv)
	if err != nil {
		return nil, fmt.Errorf("silences: %w", err)
	}
	out := []Silence{}
	for _, e := range entries {
		k := e.Key()
		var s Silence
		if err := json.Unmarshal(e.Value(), &s); err != nil || s.ID != k || s.EndsAt.IsZero() {
			r.logger.Warn("silences: an entry that is not a silence, skipped", "bucket", BucketSilences, "key", k, "err", err)
			continue
		}
		s.State = s.at(now)
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Silence) int {
		ae, be := a.State == SilenceExpired, b.State == SilenceExpired
		switch {
		case ae != be && ae:
			return 1
		case ae != be:
			return -1
		case ae:
			return cmp.Or(b.EndsAt.Compare(a.EndsAt), cmp.Compare(a.ID, b.ID))
		}
		return cmp.Or(a.EndsAt.Compare(b.EndsAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// AddSilence stores s.
func (r *Reports) AddSilence(ctx context.Context, s Silence) error {
	kv, err := r.silences.open(ctx, r.pub)
	if err != nil {
		return fmt.Errorf("silences: %w", err)
	}
	s.State = ""
	v, err := json.Marshal(s)
	if err == nil {
		_, err = kv.Create(ctx, s.ID, v)
	}
	if err != nil {
		return fmt.Errorf("silence %s: %w", s.ID, err)
	}
	return nil
}

// errNoSilence: no silence has the id.
var errNoSilence = errors.New("no such silence")

// ExpireSilence ends the silence id at now, if it has not ended yet (one
// that had not started never will), and returns it.
func (r *Reports) ExpireSilence(ctx context.Context, id string, now time.Time) (Silence, error) {
	kv, err := r.silences.open(ctx, r.pub)
	if err != nil {
		return Silence{}, fmt.Errorf("silences: %w", err)
	}
	u, err := uuid.Parse(id)
	if err != nil {
		return Silence{}, fmt.Errorf("%w: %.64q is not a silence's id", errNoSilence, id)
	}
	id = u.String() // the key's spelling, whatever the caller's (upper case, braces)
	e, err := kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Silence{}, fmt.Errorf("%w: %s", errNoSilence, id)
	}
	if err != nil {
		return Silence{}, fmt.Errorf("silence %s: %w", id, err)
	}
	var s Silence
	if err := json.Unmarshal(e.Value(), &s); err != nil {
		return Silence{}, fmt.Errorf("silence %s: %w", id, err)
	}
	now = now.UTC().Truncate(time.Millisecond)
	if s.EndsAt.After(now) {
		s.EndsAt = now
		if s.StartsAt.After(now) { // pending: it never will be
			s.StartsAt = now
		}
		s.State = ""
		v, err := json.Marshal(s)
		if err == nil {
			_, err = kv.Put(ctx, id, v)
		}
		if err != nil {
			return Silence{}, fmt.Errorf("silence %s: %w", id, err)
		}
	}
	s.State = s.at(now)
	return s, nil
}

// activeSilences are the silences that apply at t (/alerts/firing).
func (r *Reports) activeSilences(ctx context.Context, t time.Time) []Silence {
	all, _ := r.readSilences(ctx, t)
	return onlyActive(all)
}

// evaluationSilences are the silences an evaluation at t applies, read
// at every evaluation so that otpscope_alert_silences says how many are
// active and pending (a silence of every rule for weeks pages nobody, and
// the Operations dashboard shows it). When they cannot be read the
// gauges keep what they said.
func (r *Reports) evaluationSilences(ctx context.Context, t time.Time) []Silence {
	all, ok := r.readSilences(ctx, t)
	if ok {
		active, pending := CountSilences(all)
		r.silencesNow.WithLabelValues(SilenceActive).Set(float64(active))
		r.silencesNow.WithLabelValues(SilencePending).Set(float64(pending))
	}
	return onlyActive(all)
}

// CountSilences counts the active and the pending silences of list.
func CountSilences(list []Silence) (active, pending int) {
	for _, s := range list {
		switch s.State {
		case SilenceActive:
			active++
		case SilencePending:
			pending++
		}
	}
	return active, pending
}

// readSilences lists the silences as of t. When they cannot be read,
// none (not ok): the webhook pages rather than staying quiet.
func (r *Reports) readSilences(ctx context.Context, t time.Time) (_ []Silence, ok bool) {
	all, err := r.Silences(ctx, t)
	if err != nil {
		r.logger.Warn("alerts: the silences were not read; none applied", "err", err)
		return nil, false
	}
	return all, true
}

// onlyActive keeps the active silences of all.
func onlyActive(all []Silence) []Silence {
	return slices.DeleteFunc(all, func(s Silence) bool { return s.State != SilenceActive })
}

// MountSilences adds GET, POST /api/v1/alerts/silences and DELETE
// /api/v1/alerts/silences/{id} to router (the last two actions: the API
// token's alone).
func (r *Reports) MountSilences(router chi.Router) {
	re := responder{logger: r.logger, failure: "silences", title: "Silences unavailable", detail: "NATS did not answer for the silences"}
	none := QueryParams(nil)
	router.With(none).Get("/api/v1/alerts/silences", func(w http.ResponseWriter, req *http.Request) {
		list, err := r.Silences(req.Context(), r.now())
		re.reply(w, req, SilencesResponse{Silences: list}, err)
	})
	router.With(none).Post("/api/v1/alerts/silences", func(w http.ResponseWriter, req *http.Request) {
		var body SilenceRequest
		dec := json.NewDecoder(http.MaxBytesReader(w, req.Body, maxSilenceBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			if tooLarge := new(http.MaxBytesError); errors.As(err, &tooLarge) {
				problem.Write(w, problem.Details{Status: http.StatusRequestEntityTooLarge, Title: "Invalid silence", Detail: fmt.Sprintf("a body over %d bytes", tooLarge.Limit), Instance: req.URL.Path})
				return
			}
			badRequest(w, req, "Invalid silence", "", err.Error())
			return
		}
		s, err := newSilence(body, r.now())
		if se := new(silenceError); errors.As(err, &se) {
			badRequest(w, req, "Invalid silence", se.field, se.Error())
			return
		}
		if err := r.AddSilence(req.Context(), s); err != nil {
			re.reply(w, req, nil, err)
			return
		}
		s.State = s.at(r.now())
		r.logger.Info("alert silence added", "id", s.ID, "rule", cmp.Or(s.Rule, "every rule"), "channel", s.Channel, "starts_at", s.StartsAt, "ends_at", s.EndsAt, "created_by", s.CreatedBy, "comment", s.Comment)
		ops.WriteJSONStatus(w, http.StatusCreated, s)
	})
	router.With(none).Delete("/api/v1/alerts/silences/{id}", func(w http.ResponseWriter, req *http.Request) {
		s, err := r.ExpireSilence(req.Context(), chi.URLParam(req, "id"), r.now())
		if errors.Is(err, errNoSilence) {
			problem.Write(w, problem.Details{Status: http.StatusNotFound, Title: "No such silence", Detail: err.Error(), Instance: req.URL.Path})
			return
		}
		if err == nil {
			r.logger.Info("alert silence expired", "id", s.ID, "rule", cmp.Or(s.Rule, "every rule"), "channel", s.Channel, "ended_at", s.EndsAt)
		}
		re.reply(w, req, s, err)
	})
}
