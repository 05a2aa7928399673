package tyntecsim

import (
	"encoding/json"
	"maps"
	"math/rand/v2"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
)

// PushPath is the base of the push-approval endpoints (seed 003: the JSON
// format of /onetouch/$TFA_API_FORMAT).
const PushPath = "/onetouch/json"

// PushAPIKeyHeader authenticates push-approval requests (seed 003).
const PushAPIKeyHeader = "X-TFA-API-Key"

var tfaIDPattern = regexp.MustCompile(`^[0-9]{1,20}$`)

// pushRequest is one approval request. Guarded by Sim.mu.
type pushRequest struct {
	seq             uint64
	uuid, tfaID     string
	message         string
	details, hidden map[string]string
	created         time.Time
	updated         time.Time
	ttl             int // seconds_to_expire
	status          string
	generated       bool
	callbacks       []*PushCallbackTruth
	// onSettle, set by the simulated app that created the request, runs
	// when the request settles (the app hears the status as a callback to
	// it would tell it).
	onSettle func(status string, at time.Time)
}

// ApprovalRequest is an approval request on the wire: GET's
// approval_request and the callback body (shape assumed, see the README).
type ApprovalRequest struct {
	UUID            string            `json:"uuid"`
	TFAID           string            `json:"tfaId"`
	Status          string            `json:"status"`
	CreatedAt       string            `json:"createdAt"`
	UpdatedAt       string            `json:"updatedAt"`
	SecondsToExpire int               `json:"secondsToExpire"`
	Message         string            `json:"message,omitempty"`
	Details         map[string]string `json:"details,omitempty"`
	HiddenDetails   map[string]string `json:"hiddenDetails,omitempty"`
}

func (p *pushRequest) view() ApprovalRequest {
	return ApprovalRequest{
		UUID: p.uuid, TFAID: p.tfaID, Status: p.status, CreatedAt: formatV1Time(p.created), UpdatedAt: formatV1Time(p.updated),
		SecondsToExpire: p.ttl, Message: p.message, Details: maps.Clone(p.details), HiddenDetails: maps.Clone(p.hidden),
	}
}

func (p *pushRequest) truth() PushTruth {
	t := PushTruth{
		Seq: p.seq, UUID: p.uuid, TFAID: p.tfaID, Message: p.message, Details: maps.Clone(p.details),
		CorrelationID: p.hidden["correlationId"], SecondsToExpire: p.ttl, Created: p.created, Updated: p.updated,
		Status: p.status, Generated: p.generated,
	}
	for _, cb := range p.callbacks {
		t.Callbacks = append(t.Callbacks, *cb)
	}
	return t
}

// pushAnswer is the {"success": false, "message": …} of a refused request
// (shape assumed: the seed shows no error).
func pushAnswer(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"success": false, "message": msg})
}

// pushAuth checks the X-TFA-API-Key header against the account's API keys.
func (s *Sim) pushAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !slices.Contains(s.cfg.APIKeys, r.Header.Get(PushAPIKeyHeader)) {
			pushAnswer(w, http.StatusUnauthorized, "missing or unknown "+PushAPIKeyHeader)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// newPush is what a create request asked for.
type newPush struct {
	tfaID, message  string
	details, hidden map[string]string
	ttl             int
	generated       bool
}

// pushCreate is POST /onetouch/json/users/{tfaId}/approval_requests, form
// encoded: message, details[k] (or one details string), hidden_details[k],
// seconds_to_expire.
func (s *Sim) pushCreate(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<16)
	if err := r.ParseForm(); err != nil {
		pushAnswer(w, http.StatusBadRequest, "unreadable form: "+err.Error())
		return
	}
	n := newPush{tfaID: chi.URLParam(r, "tfaId"), message: r.PostForm.Get("message"), ttl: DefaultSecondsToExpire}
	if !tfaIDPattern.MatchString(n.tfaID) {
		pushAnswer(w, http.StatusBadRequest, "tfaId must be the user's numeric id")
		return
	}
	if strings.TrimSpace(n.message) == "" {
		pushAnswer(w, http.StatusBadRequest, "message is required")
		return
	}
	if v := r.PostForm.Get("seconds_to_expire"); v != "" {
		ttl, err := strconv.Atoi(v)
		if err != nil || ttl < 1 {
			pushAnswer(w, http.StatusBadRequest, "seconds_to_expire must be a whole number of seconds >= 1")
			return
		}
		n.ttl = ttl
	}
	n.details, n.hidden = bracketed(r.PostForm, "details"), bracketed(r.PostForm, "hidden_details")
	if v := r.PostForm.Get("details"); v != "" { // the curl example's one details string
		if n.details == nil {
			n.details = map[string]string{}
		}
		n.details[""] = v
	}
	s.mu.Lock()
	p := s.createPush(n)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "approval_request": map[string]string{"uuid": p.uuid}})
}

// bracketed collects form keys prefix[k] into a map (nil when none).
func bracketed(f map[string][]string, prefix string) map[string]string {
	var out map[string]string
	for k, v := range f {
		inner, ok := strings.CutPrefix(k, prefix+"[")
		if !ok || !strings.HasSuffix(inner, "]") || len(v) == 0 {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[strings.TrimSuffix(inner, "]")] = v[0]
	}
	return out
}

// pushGet is GET /onetouch/json/approval_requests/{uuid}.
func (s *Sim) pushGet(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "uuid")
	s.mu.Lock()
	p, ok := s.pushByID[id]
	var v ApprovalRequest
	if ok {
		v = p.view()
	}
	s.mu.Unlock()
	if !ok {
		pushAnswer(w, http.StatusNotFound, "approval request "+id+" not found")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "approval_request": v})
}

// createPush stores an approval request, posts its pending callback and
// schedules its user's answer or its expiry. Callers hold s.mu.
func (s *Sim) createPush(n newPush) *pushRequest {
	s.pushSeq++
	now := s.clock.now()
	p := &pushRequest{
		seq: s.pushSeq, uuid: uuid.NewString(), tfaID: n.tfaID, message: n.message, details: n.details, hidden: n.hidden,
		created: now, updated: now, ttl: n.ttl, status: PushPending, generated: n.generated,
	}
	s.pushes = append(s.pushes, p)
	s.pushByID[p.uuid] = p
	s.pushCallback(p, now)

	cfg := s.cfg.push()
	rng := rand.New(rand.NewPCG(uint64(s.cfg.Seed), 3000+p.seq))
	u, z := rng.Float64(), rng.NormFloat64()
	expire := p.created.Add(time.Duration(p.ttl) * time.Second)
	answer, at := PushExpired, expire
	if u < cfg.ApprovedShare+cfg.DeniedShare {
		answer = PushApproved
		if u >= cfg.ApprovedShare {
			answer = PushDenied
		}
		at = p.created.Add(cfg.AnswerLatency.sample(z))
		if !at.Before(expire) { // too late: the request expired first
			answer, at = PushExpired, expire
		}
	}
	s.schedule(at, func(at time.Time) { s.settlePush(p, answer, at) })
	return p
}

// settlePush records the final status, posts its callback and tells the app.
func (s *Sim) settlePush(p *pushRequest, status string, at time.Time) {
	p.status, p.updated = status, at
	s.pushCallback(p, at)
	if p.onSettle != nil {
		p.onSettle(status, at)
	}
}

// AddPushCallback makes the simulator post every later status change to
// cb too: the push product's callback setting, which its seed names but
// documents no API for. The all-in-one points it at otpscope once its
// listener is bound.
func (s *Sim) AddPushCallback(cb PushCallback) error {
	if err := (Config{PushCallbacks: []PushCallback{cb}}).validateMethods(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cb.Headers = copyHeaders(cb.Headers)
	s.pushHooks = append(s.pushHooks, cb)
	return nil
}

// pushCallback posts the request as it is now to every push callback URL,
// with the faults of webhooks. Callers hold s.mu.
func (s *Sim) pushCallback(p *pushRequest, at time.Time) {
	if len(s.pushHooks) == 0 {
		return
	}
	body, err := json.Marshal(p.view())
	if err != nil {
		s.log.Error("encode push callback", "err", err)
		return
	}
	for _, cb := range s.pushHooks {
		drop, dup, reorder := s.pushFaults.Float64(), s.pushFaults.Float64(), s.pushFaults.Float64()
		rec := &PushCallbackTruth{URL: cb.URL, Status: p.status, At: at}
		p.callbacks = append(p.callbacks, rec)
		if drop < s.cfg.Faults.WebhookDrop {
			rec.Dropped = true
			continue
		}
		job := hookJob{key: p.uuid, record: rec.record, url: cb.URL, headers: copyHeaders(cb.Headers), body: body}
		rec.Duplicated, rec.Reordered = s.sendFaulty(job, at, dup, reorder)
	}
}
