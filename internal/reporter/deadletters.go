package reporter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/ingest"
	"github.com/otpscope/otpscope/internal/ops"
	"github.com/otpscope/otpscope/internal/problem"
	"github.com/otpscope/otpscope/internal/store"
)

// DeadLetters lists dead letters and puts them back through the normal path,
// each once: GET /api/v1/deadletters and POST /api/v1/deadletters/replay.
type DeadLetters struct {
	db  *store.DB
	pub Publisher
	responder
	mu sync.Mutex // one replay at a time in this process
}

// NewDeadLetters returns the dead-letter API over db, replaying through pub.
func NewDeadLetters(db *store.DB, pub Publisher, logger *slog.Logger) *DeadLetters {
	return &DeadLetters{db: db, pub: pub, responder: responder{
		logger: logger, failure: "dead letters", title: "Dead letters unavailable", detail: "ClickHouse or NATS failed"}}
}

// Mount adds the dead-letter routes to r.
func (d *DeadLetters) Mount(r chi.Router) {
	r.With(QueryParams([]string{"source", "id", "pending", "limit"}, "id")).Get("/api/v1/deadletters", d.list) // ids: one each
	r.With(QueryParams(nil)).Post("/api/v1/deadletters/replay", d.replay)
	r.With(QueryParams([]string{"id"}, "id")).Delete("/api/v1/deadletters", d.delete) // ids: one each
}

// ReplayRequest is the body of POST /api/v1/deadletters/replay: the dead
// letters named by IDs, or with All every one never replayed; Source narrows
// either to one source (ingest, sink, poller…).
type ReplayRequest struct {
	IDs    []string `json:"ids,omitempty"`
	All    bool     `json:"all,omitempty"`
	Source string   `json:"source,omitempty"`
}

// ReplayOutcome is what became of one dead letter.
type ReplayOutcome struct {
	ID       string `json:"id"`
	Source   string `json:"source"`
	Messages int    `json:"messages,omitempty"` // events published
	Skipped  string `json:"skipped,omitempty"`  // why it was not replayed
	// Left are the elements of an array left out of its replay, each
	// with why: still invalid (ReplayMessages).
	Left []string `json:"left,omitempty"`
	// ReplayedAt is when a dead letter skipped for that was replayed before.
	ReplayedAt *time.Time `json:"replayedAt,omitempty"`
}

// ReplayResult is the answer of a replay.
type ReplayResult struct {
	Replayed []ReplayOutcome `json:"replayed"`
	Skipped  []ReplayOutcome `json:"skipped"`
}

// errNothingSelected is a replay request that names nothing.
var errNothingSelected = errors.New("name dead letters by ids, or replay all")

// Replay republishes the dead letters req selects that were never replayed,
// and records each replay. A dead letter from ingest (a refused request's
// body) is decoded again as the endpoint that refused it does, and
// published as the events it would have published, whose ids derive from
// their content; any other (a NATS message that could not be handled) is
// republished on its original subject with an id derived from the dead
// letter's. Either way a replay repeated — even one not recorded because the
// process stopped in between — is dropped as a duplicate.
func (d *DeadLetters) Replay(ctx context.Context, req ReplayRequest) (ReplayResult, error) {
	if len(req.IDs) == 0 && !req.All {
		return ReplayResult{}, errNothingSelected
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	res := ReplayResult{Replayed: []ReplayOutcome{}, Skipped: []ReplayOutcome{}}
	found := make(map[string]bool)
	// A page at a time: each dead letter may hold 64 KiB, and after an
	// incident there may be many.
	f := store.DeadLetterFilter{IDs: req.IDs, Source: req.Source, Pending: req.All && len(req.IDs) == 0, Limit: replayPage}
	for {
		recs, err := d.db.DeadLetters(ctx, f)
		if err != nil {
			return res, err
		}
		if err := d.replayPageOf(ctx, recs, &res, found); err != nil {
			return res, err
		}
		if len(recs) < f.Limit {
			break
		}
		f.After = &recs[len(recs)-1]
	}
	for _, id := range req.IDs {
		if !found[id] {
			res.Skipped = append(res.Skipped, ReplayOutcome{ID: id, Skipped: "no such dead letter"})
		}
	}
	return res, nil
}

// replayPage is how many dead letters Replay reads at once.
var replayPage = 500

// replayPageOf republishes recs, one page of Replay's, noting each in res and
// found.
func (d *DeadLetters) replayPageOf(ctx context.Context, recs []store.DeadLetterRecord, res *ReplayResult, found map[string]bool) error {
	for _, r := range recs {
		found[r.ID] = true
		out := ReplayOutcome{ID: r.ID, Source: r.Source}
		if r.ReplayedAt != nil {
			out.Skipped, out.ReplayedAt = "replayed already at "+r.ReplayedAt.Format(time.RFC3339), r.ReplayedAt
			res.Skipped = append(res.Skipped, out)
			continue
		}
		msgs, left, err := ReplayMessages(r, time.Now())
		if err != nil {
			out.Skipped = err.Error()
			res.Skipped = append(res.Skipped, out)
			continue
		}
		if err := d.pub.Publish(ctx, msgs...); err != nil {
			return fmt.Errorf("replay dead letter %s: %w", r.ID, err)
		}
		if err := d.db.MarkReplayed(ctx, r.Source, r.ID, time.Now(), len(msgs)); err != nil {
			return err
		}
		out.Messages, out.Left = len(msgs), left
		res.Replayed = append(res.Replayed, out)
		d.logger.Info("dead letter replayed", "id", r.ID, "source", r.Source, "messages", len(msgs), "left_out", len(left))
	}
	return nil
}

// ReplayMessages are the events a dead letter is replayed as, and, of an
// array, the elements left out (each with why). An endpoint takes an array
// all or nothing, so one invalid element refused valid ones, which tyntec
// will not send again: replay publishes those, element by element, and
// leaves out only what is still invalid. A body with no valid element is
// an error.
func ReplayMessages(r store.DeadLetterRecord, now time.Time) (msgs []events.Message, left []string, err error) {
	if r.Truncated {
		return nil, nil, errors.New("body truncated: cannot be replayed")
	}
	if r.Source != "ingest" {
		m, err := events.NewReplayMessage(r.Field, r.ID, []byte(r.Body), now)
		if err != nil {
			return nil, nil, fmt.Errorf("no subject to replay on: %w", err)
		}
		// The sink read it as it reads every message: if it still cannot,
		// a replay would only come back as a new dead letter, each time.
		var b store.Batch
		if err := b.Add(m.Subject, m.ID, m.Data, 0); err != nil && !errors.Is(err, store.ErrNoTable) {
			return nil, nil, fmt.Errorf("still not one the sink can read: %w", err)
		}
		return []events.Message{m}, nil, nil
	}
	if r.Body == "" && r.BodyBytes > 0 {
		return nil, nil, errors.New("body withheld: cannot be replayed")
	}
	body := bytes.TrimSpace([]byte(r.Body))
	if r.Path != "" {
		return replayAt(r, body)
	}
	// Recorded without its endpoint: by a build before the path was kept,
	// or by an older sink (during a rolling upgrade, after a rollback),
	// which dropped it. Each endpoint's decoder reads the body; the one
	// that takes the most of it is where it was refused.
	var errs []string
	for _, path := range []string{ingest.WebhookPath, ingest.SilentPath, ingest.PushPath} {
		r.Path = path
		m, l, err := replayAt(r, body)
		if err != nil {
			errs = append(errs, err.Error())
		} else if len(m) > len(msgs) {
			msgs, left = m, l
		}
	}
	if len(msgs) == 0 {
		return nil, nil, fmt.Errorf("recorded without its endpoint, and valid at none: %s", strings.Join(errs, "; "))
	}
	return msgs, left, nil
}

// replayAt is ReplayMessages for body refused at r.Path.
func replayAt(r store.DeadLetterRecord, body []byte) (msgs []events.Message, left []string, err error) {
	msgs, whole := decodeRefused(r, body)
	var items []json.RawMessage
	if whole == nil || len(body) == 0 || body[0] != '[' || json.Unmarshal(body, &items) != nil {
		return msgs, nil, whole
	}
	for i, item := range items {
		m, err := decodeRefused(r, item)
		if err != nil {
			left = append(left, fmt.Sprintf("[%d]: %v", i, err))
			continue
		}
		msgs = append(msgs, m...)
	}
	if len(msgs) == 0 {
		return nil, nil, whole
	}
	return msgs, left, nil
}

// decodeRefused decodes body, refused by the endpoint at r.Path, again as
// that endpoint (ingest's WebhookPath, SilentPath, PushPath) does, into the
// messages it would have published, with the same ids.
func decodeRefused(r store.DeadLetterRecord, body []byte) ([]events.Message, error) {
	switch r.Path {
	case ingest.WebhookPath:
		evs, err := events.DecodeDeliveryStatuses(body, r.ReceivedAt)
		if err != nil {
			return nil, fmt.Errorf("still not a valid webhook: %w", err)
		}
		return eachMessage(evs, events.NewDeliveryMessage)
	case ingest.SilentPath:
		// The body holds pseudonyms in place of loginHint and mobileId
		// (ingest scrubs it), taken as the hashes ingest stores.
		outs, err := events.DecodeScrubbedSilentOutcomes(body, r.ReceivedAt)
		if err != nil {
			return nil, fmt.Errorf("still not a valid silent-auth outcome: %w", err)
		}
		return eachMessage(outs, events.NewSilentOutcomeMessage)
	case ingest.PushPath:
		ps, err := events.DecodePushEvents(body, r.ReceivedAt)
		if err != nil {
			return nil, fmt.Errorf("still not a valid push approval request: %w", err)
		}
		return eachMessage(ps, events.NewPushMessage)
	}
	return nil, fmt.Errorf("refused at %q, an endpoint replay does not know", r.Path)
}

// eachMessage wraps each of vs with wrap.
func eachMessage[T any](vs []T, wrap func(*T) (events.Message, error)) ([]events.Message, error) {
	msgs := make([]events.Message, len(vs))
	for i := range vs {
		var err error
		if msgs[i], err = wrap(&vs[i]); err != nil {
			return nil, err
		}
	}
	return msgs, nil
}

// DeadLettersResponse is the body of GET /api/v1/deadletters.
type DeadLettersResponse struct {
	DeadLetters []store.DeadLetterRecord `json:"deadLetters"`
}

func (d *DeadLetters) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.DeadLetterFilter{Source: q.Get("source"), IDs: q["id"]}
	if s := q.Get("pending"); s != "" {
		var err error
		if f.Pending, err = strconv.ParseBool(s); err != nil {
			badRequest(w, r, "Invalid filter", "pending", fmt.Sprintf("pending %.64q: want true or false", s))
			return
		}
	}
	// Each may hold a body of --max-body-bytes: at most 1,000 an answer,
	// the store's default, as the other lists are bounded.
	if !limitParam(w, r, store.MaxDeadLettersListed, &f.Limit) {
		return
	}
	recs, err := d.db.DeadLetters(r.Context(), f)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	if recs == nil {
		recs = []store.DeadLetterRecord{}
	}
	ops.WriteJSON(w, DeadLettersResponse{DeadLetters: recs})
}

// DeleteDeadLettersResponse is the body of DELETE /api/v1/deadletters.
type DeleteDeadLettersResponse struct {
	Deleted []string `json:"deleted"`
	// Missing are the ids named that no dead letter has: unknown, or
	// deleted before.
	Missing []string `json:"missing"`
}

// delete deletes the dead letters named by id (at least one, at most a
// list's worth): for one that holds what must not be kept, or that no
// replay will make valid, which would otherwise count as never replayed
// until --retention-dead-letters drops it. Naming each is the only way:
// there is no "delete all".
func (d *DeadLetters) delete(w http.ResponseWriter, r *http.Request) {
	ids := r.URL.Query()["id"]
	if len(ids) == 0 || len(ids) > store.MaxDeadLettersListed {
		badRequest(w, r, "Invalid delete request", "id", fmt.Sprintf("%d ids: name 1 … %d dead letters by id", len(ids), store.MaxDeadLettersListed))
		return
	}
	deleted, err := d.db.DeleteDeadLetters(r.Context(), ids)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	res := DeleteDeadLettersResponse{Deleted: []string{}, Missing: []string{}}
	for _, id := range ids {
		if slices.Contains(deleted, id) {
			res.Deleted = append(res.Deleted, id)
		} else {
			res.Missing = append(res.Missing, id)
		}
	}
	ops.WriteJSON(w, res)
}

// replay answers POST /api/v1/deadletters/replay: at most a list's worth
// of ids (as delete), each a key of the query that reads them, so a longer
// list is the client's error (400), not an outage of ClickHouse's (503).
func (d *DeadLetters) replay(w http.ResponseWriter, r *http.Request) {
	var req ReplayRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		if tooLarge := new(http.MaxBytesError); errors.As(err, &tooLarge) {
			problem.Write(w, problem.Details{Status: http.StatusRequestEntityTooLarge, Title: "Invalid replay request", Detail: fmt.Sprintf("a body over %d bytes", tooLarge.Limit), Instance: r.URL.Path})
			return
		}
		badRequest(w, r, "Invalid replay request", "", err.Error())
		return
	}
	if len(req.IDs) > store.MaxDeadLettersListed {
		badRequest(w, r, "Invalid replay request", "ids", fmt.Sprintf("%d ids: name at most %d, or replay them all", len(req.IDs), store.MaxDeadLettersListed))
		return
	}
	res, err := d.Replay(r.Context(), req)
	switch {
	case errors.Is(err, errNothingSelected):
		badRequest(w, r, "Invalid replay request", "ids", err.Error())
	default:
		d.reply(w, r, res, err)
	}
}
