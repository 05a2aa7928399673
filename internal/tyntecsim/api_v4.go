package tyntecsim

import (
	"cmp"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/tyntec"
)

var otpCodePattern = regexp.MustCompile(`^[^A-Z]{4,11}$`)

// v4View is an OTP as GET /2fa/v4/otp/{otp-id} shows it. Callers hold s.mu.
func (s *Sim) v4View(o *otp) tyntec.OTP {
	o.refresh(s.clock.now())
	return tyntec.OTP{
		OTPID: o.id, To: o.to, OTPStatus: o.status, AllowedAttempts: o.allowed, AttemptCount: o.attemptCount,
		OTPCreated: o.created, OTPExpire: o.expire,
	}
}

// Send sends an OTP as POST /2fa/v4/otp does, without HTTP, and returns its ID.
func (s *Sim) Send(req tyntec.NewOTPRequest) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, field, msg := s.v4Request(req)
	if field != "" {
		return "", &tyntec.APIError{Method: http.MethodPost, Path: "/2fa/v4/otp", StatusCode: http.StatusBadRequest,
			Status: http.StatusBadRequest, Title: "Constraint Violation", Violations: []tyntec.Violation{{Field: field, Message: msg}}}
	}
	return s.createOTP(n).id, nil
}

// v4Request checks a send request; field and msg name the first violation. Callers hold s.mu.
func (s *Sim) v4Request(req tyntec.NewOTPRequest) (n newOTP, field, msg string) {
	if req.To == "" {
		return n, "to", "must not be blank"
	}
	if req.OTPCode != "" && !otpCodePattern.MatchString(req.OTPCode) {
		return n, "otpCode", "must be 4 to 11 characters without upper-case letters"
	}
	if req.LanguageCode != "" && !validLanguage(req.LanguageCode) {
		return n, "languageCode", "must be one of " + strings.Join(languageCodes, ", ")
	}
	prof, ok := s.profiles[0], true
	if req.ProfileName != "" {
		i := slices.IndexFunc(s.profiles, func(p tyntec.Profile) bool { return p.Name == req.ProfileName })
		if ok = i >= 0; ok {
			prof = s.profiles[i]
		}
	}
	if !ok {
		return n, "profileName", "unknown profile " + req.ProfileName
	}
	prio := s.priorities[0]
	if req.PriorityName != "" {
		i := slices.IndexFunc(s.priorities, func(p tyntec.Priority) bool { return p.Name == req.PriorityName })
		if i < 0 {
			return n, "priorityName", "unknown priority " + req.PriorityName
		}
		prio = s.priorities[i]
	}
	n, ok = s.v4OTP(req.To, req.OTPCode, req.LanguageCode, prof, prio)
	if !ok {
		return n, "priorityName", "profile " + prof.Name + " has no usable template for any channel of priority " + prio.Name
	}
	return n, "", ""
}

// v4OTP decides a v4 OTP of profile prof sent along priority prio: the
// channels it can use, its code alphabet and its validity (the
// codeExpirationTime of the template for its first channel). False when no
// channel is usable. Callers hold s.mu.
func (s *Sim) v4OTP(to, code, lang string, prof tyntec.Profile, prio tyntec.Priority) (newOTP, bool) {
	chs := s.usableChannels(prof, prio)
	if len(chs) == 0 {
		return newOTP{}, false
	}
	tpl, _ := s.profileTemplate(prof, chs[0], cmp.Or(lang, defaultLanguage))
	allowed := prof.Attempts
	if allowed <= 0 {
		allowed = 3 // assumed, as tyntec's v1 default application
	}
	return newOTP{
		api: APIv4, to: to, code: code, profile: prof, priority: prio, channels: chs, allowed: allowed,
		codeLen: prof.OTPCodeLength, alnum: prof.Alphanumeric,
		expiry: time.Duration(tpl.CodeExpirationTime) * time.Minute,
	}, true
}

func (s *Sim) v4SendOTP(w http.ResponseWriter, r *http.Request) {
	var req tyntec.NewOTPRequest
	if !decode(w, r, &req) {
		return
	}
	s.mu.Lock()
	n, field, msg := s.v4Request(req)
	var id string
	if field == "" {
		id = s.createOTP(n).id
	}
	s.mu.Unlock()
	if field != "" {
		writeViolation(w, field, msg)
		return
	}
	writeJSON(w, http.StatusAccepted, tyntec.CreatedOTP{ID: id})
}

func (s *Sim) v4ListOTPs(w http.ResponseWriter, r *http.Request) {
	to, status := r.URL.Query().Get("to"), r.URL.Query().Get("otpStatus")
	s.mu.Lock()
	out := []tyntec.OTP{}
	for _, o := range s.otps {
		v := s.v4View(o)
		if o.deleted || !s.serves(o, APIv4) || (to != "" && v.To != to) || (status != "" && string(v.OTPStatus) != status) {
			continue
		}
		out = append(out, v)
	}
	s.mu.Unlock()
	writeJSONList(w, out)
}

// serves reports whether API version api shows OTP o: its own OTPs, or
// every OTP with Config.SharedVersions.
func (s *Sim) serves(o *otp, api string) bool { return s.cfg.SharedVersions || o.api == api }

// lookup returns a live OTP that API version api shows. Callers hold s.mu.
func (s *Sim) lookup(id, api string) (*otp, bool) {
	o, ok := s.byID[id]
	if !ok || o.deleted || !s.serves(o, api) {
		return nil, false
	}
	return o, true
}

// withLive runs fn under s.mu on the live OTP id that API version api
// shows; false when there is none.
func (s *Sim) withLive(id, api string, fn func(o *otp)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.lookup(id, api)
	if ok {
		fn(o)
	}
	return ok
}

// v4WithOTP runs fn on a live OTP under s.mu, or answers 404 and reports false.
func (s *Sim) v4WithOTP(w http.ResponseWriter, id string, fn func(o *otp)) bool {
	if !s.withLive(id, APIv4, fn) {
		writeNotFound(w, id)
		return false
	}
	return true
}

func (s *Sim) v4GetOTP(w http.ResponseWriter, r *http.Request) {
	var v tyntec.OTP
	if s.v4WithOTP(w, chi.URLParam(r, "id"), func(o *otp) { v = s.v4View(o) }) {
		writeJSON(w, http.StatusOK, v)
	}
}

// v4DeleteOTP answers 200 whether or not the OTP exists: the seed documents
// only 200 and 500 for it (assumed: deleting what is not there succeeds).
func (s *Sim) v4DeleteOTP(w http.ResponseWriter, r *http.Request) {
	s.withLive(chi.URLParam(r, "id"), APIv4, func(o *otp) { o.deleted = true })
	w.WriteHeader(http.StatusOK)
}

func (s *Sim) v4Validate(w http.ResponseWriter, r *http.Request) {
	var req tyntec.ValidateOTPRequest
	if !decode(w, r, &req) {
		return
	}
	if len(req.OTPCode) < 4 || len(req.OTPCode) > 11 {
		writeViolation(w, "otpCode", "size must be between 4 and 11")
		return
	}
	// The seed documents 200, 400 and 500 only: an unknown OTP is a
	// constraint violation on the path's otp-id (assumed message).
	var result events.OTPState
	if !s.withLive(chi.URLParam(r, "id"), APIv4, func(o *otp) { result = s.check(o, req.OTPCode, APIv4, s.clock.now()) }) {
		writeViolation(w, "otp-id", "OTP not found")
		return
	}
	writeJSON(w, http.StatusOK, tyntec.ValidateOTPResponse{OTPStatus: result})
}

func (s *Sim) v4ListCallbacks(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	out := s.copyCallbacks()
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// decodeCallback reads a callback configuration, or answers 400.
func decodeCallback(w http.ResponseWriter, r *http.Request) (tyntec.NewCallbackConfig, bool) {
	var req tyntec.NewCallbackConfig
	if !decode(w, r, &req) {
		return req, false
	}
	if req.URL == "" {
		writeViolation(w, "url", "must not be blank")
		return req, false
	}
	return req, true
}

func (s *Sim) v4CreateCallback(w http.ResponseWriter, r *http.Request) {
	req, ok := decodeCallback(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	cb, ok := s.addCallback(req)
	s.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusConflict, v4Problem{Status: http.StatusConflict, Title: "Conflict", Detail: "Callback configuration already exists."})
		return
	}
	writeJSON(w, http.StatusCreated, tyntec.CreatedID{ID: cb.ID})
}

func (s *Sim) v4PatchCallback(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	req, ok := decodeCallback(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	i := slices.IndexFunc(s.callbacks, func(c *tyntec.CallbackConfig) bool { return c.ID == id })
	var out tyntec.CallbackConfig
	if i >= 0 {
		// A new value replaces the old one, so webhooks already queued keep
		// the configuration they were emitted with.
		cb := &tyntec.CallbackConfig{ID: id, URL: req.URL, ProfileID: req.ProfileID, Headers: copyHeaders(req.Headers)}
		s.callbacks[i] = cb
		out = *cb
		out.Headers = copyHeaders(cb.Headers)
	}
	s.mu.Unlock()
	if i < 0 {
		writeNotFound(w, id)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Sim) v4DeleteCallback(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	s.mu.Lock()
	n := len(s.callbacks)
	s.callbacks = slices.DeleteFunc(s.callbacks, func(c *tyntec.CallbackConfig) bool { return c.ID == id })
	found := len(s.callbacks) < n
	s.mu.Unlock()
	if !found {
		writeNotFound(w, id)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Sim) v4ListPriorities(w http.ResponseWriter, r *http.Request) {
	listByName(s, w, r, func() []tyntec.Priority { return s.priorities }, func(p tyntec.Priority) string { return p.Name })
}

func (s *Sim) v4GetPriority(w http.ResponseWriter, r *http.Request) {
	getByID(s, w, r, func() []tyntec.Priority { return s.priorities }, func(p tyntec.Priority) string { return p.ID })
}

func (s *Sim) v4CreatePriority(w http.ResponseWriter, r *http.Request) {
	var req tyntec.NewPriority
	if !decode(w, r, &req) {
		return
	}
	if n := len(req.ChannelPriority); n < 1 || n > 2 {
		writeViolation(w, "channelPriority", "size must be between 1 and 2")
		return
	}
	for _, cp := range req.ChannelPriority {
		if _, ok := s.cfg.Channels[cp.Channel]; !ok || cp.Priority < 1 {
			writeViolation(w, "channelPriority", "unknown channel or priority below 1")
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if req.Name != "" && slices.ContainsFunc(s.priorities, func(p tyntec.Priority) bool { return p.Name == req.Name }) {
		writeJSON(w, http.StatusConflict, struct {
			Status       int    `json:"status"`
			Title        string `json:"title"`
			Detail       string `json:"detail"`
			PriorityName string `json:"priorityName"`
		}{http.StatusConflict, "Conflict", "Priority with name " + req.Name + " already exists. Priority name must be unique.", req.Name})
		return
	}
	p := tyntec.Priority{ID: s.newID(), Name: req.Name, ChannelPriority: slices.Clone(req.ChannelPriority)}
	s.priorities = append(s.priorities, p)
	writeJSON(w, http.StatusCreated, tyntec.CreatedID{ID: p.ID})
}

func (s *Sim) v4ListProfiles(w http.ResponseWriter, r *http.Request) {
	listByName(s, w, r, func() []tyntec.Profile { return s.profiles }, func(p tyntec.Profile) string { return p.Name })
}

func (s *Sim) v4GetProfile(w http.ResponseWriter, r *http.Request) {
	getByID(s, w, r, func() []tyntec.Profile { return s.profiles }, func(p tyntec.Profile) string { return p.ID })
}

// listByName answers a list call with the items named by ?name=, or all.
// items is called under s.mu.
func listByName[T any](s *Sim, w http.ResponseWriter, r *http.Request, items func() []T, name func(T) string) {
	want := r.URL.Query().Get("name")
	s.mu.Lock()
	out := []T{}
	for _, it := range items() {
		if want == "" || name(it) == want {
			out = append(out, it)
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// getByID answers a read of the item whose id is the path's {id}, or 404.
func getByID[T any](s *Sim, w http.ResponseWriter, r *http.Request, items func() []T, id func(T) string) {
	want := chi.URLParam(r, "id")
	s.mu.Lock()
	all := items()
	i := slices.IndexFunc(all, func(it T) bool { return id(it) == want })
	var it T
	if i >= 0 {
		it = all[i]
	}
	s.mu.Unlock()
	if i < 0 {
		writeNotFound(w, want)
		return
	}
	writeJSON(w, http.StatusOK, it)
}
