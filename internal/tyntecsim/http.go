package tyntecsim

import (
	"bufio"
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/otpscope/otpscope/internal/tyntec"
)

func (s *Sim) routes() http.Handler {
	root := chi.NewRouter()
	root.Use(s.record)
	root.NotFound(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, http.StatusNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	root.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, http.StatusMethodNotAllowed, "method not allowed")
	})
	// Silent Authentication authenticates each step its own way (none for
	// the user's authorize, the apiKey header for token, the access token
	// for userinfo); push approvals by X-TFA-API-Key. The 2FA API's rate
	// limit and injected faults are the 2FA API's alone.
	root.Route(SilentAuthPath, func(r chi.Router) {
		r.Get("/authorize", s.silentAuthorize)
		r.Post("/token", s.silentToken)
		r.Get("/userinfo", s.silentUserinfo)
	})
	root.Route(PushPath, func(r chi.Router) {
		r.Use(s.pushAuth)
		r.Post("/users/{tfaId}/approval_requests", s.pushCreate)
		r.Get("/approval_requests/{uuid}", s.pushGet)
	})
	root.Group(func(r chi.Router) {
		r.Use(s.authenticate, s.limit, s.injectFaults)
		s.routes2FA(r)
	})
	return root
}

// routes2FA are tyntec's 2FA v4 and v1 endpoints.
func (s *Sim) routes2FA(r chi.Router) {
	r.Route("/2fa/v4", func(r chi.Router) {
		r.Get("/otp", s.v4ListOTPs)
		r.Post("/otp", s.v4SendOTP)
		r.Get("/otp/{id}", s.v4GetOTP)
		r.Delete("/otp/{id}", s.v4DeleteOTP)
		r.Post("/otp/{id}/validate", s.v4Validate)
		r.Get("/configurations/callbacks", s.v4ListCallbacks)
		r.Post("/configurations/callbacks", s.v4CreateCallback)
		r.Patch("/configurations/callbacks/{id}", s.v4PatchCallback)
		r.Delete("/configurations/callbacks/{id}", s.v4DeleteCallback)
		r.Get("/priorities", s.v4ListPriorities)
		r.Post("/priorities", s.v4CreatePriority)
		r.Get("/priorities/{id}", s.v4GetPriority)
		r.Get("/configurations/channels/whatsapp", s.v4GetWhatsApp)
		r.Post("/configurations/channels/whatsapp", s.v4CreateWhatsApp)
		r.Get("/profiles", s.v4ListProfiles)
		r.Post("/profiles", s.v4CreateProfile)
		r.Get("/profiles/{id}", s.v4GetProfile)
		r.Get("/templates", s.v4ListTemplates)
	})
	r.Route("/2fa/v1", func(r chi.Router) {
		r.Get("/otp", s.v1ListOTPs)
		r.Post("/otp", s.v1SendOTP)
		r.Get("/otp/{id}", s.v1GetOTP)
		r.Post("/otp/{id}", s.v1Resend)
		r.Delete("/otp/{id}", s.v1DeleteOTP)
		r.Get("/otp/{id}/events", s.v1Events)
		r.Post("/otp/{id}/check", s.v1Check)
	})
}

// record logs every request for Calls (arrival time, answer status).
func (s *Sim) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		n := s.forgotten.Calls + uint64(len(s.calls)) // the call's place, counting the forgotten
		s.calls = append(s.calls, Call{At: time.Now(), Method: r.Method, Path: r.URL.Path, APIKey: r.Header.Get("apiKey")})
		s.mu.Unlock()
		rec := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(rec, r)
		s.mu.Lock()
		if n >= s.forgotten.Calls { // else forgotten meanwhile
			s.calls[n-s.forgotten.Calls].Status = rec.Status()
		}
		s.mu.Unlock()
	})
}

func (s *Sim) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !slices.Contains(s.cfg.APIKeys, r.Header.Get("apiKey")) {
			s.writeError(w, r, http.StatusUnauthorized, "missing or unknown apiKey")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// limit enforces Faults.RateLimit calls per RatePeriod per API key over a
// sliding window of the wall clock.
func (s *Sim) limit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := s.cfg.Faults
		if f.RateLimit > 0 {
			key := r.Header.Get("apiKey")
			now := time.Now()
			s.mu.Lock()
			times := s.accepted[key]
			for len(times) > 0 && now.Sub(times[0]) >= f.RatePeriod {
				times = times[1:]
			}
			if len(times) >= f.RateLimit {
				s.accepted[key] = times
				wait := f.RetryAfter
				if wait == 0 {
					wait = times[0].Add(f.RatePeriod).Sub(now)
				}
				s.mu.Unlock()
				w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
				s.writeError(w, r, http.StatusTooManyRequests, "API rate limit exceeded: "+strconv.Itoa(f.RateLimit)+" calls per "+f.RatePeriod.String())
				return
			}
			s.accepted[key] = append(times, now)
			s.mu.Unlock()
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Sim) injectFaults(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := s.cfg.Faults
		if f.APIError == 0 && f.APISlow == 0 {
			next.ServeHTTP(w, r)
			return
		}
		s.mu.Lock()
		fail, slow := s.apiFaults.Float64() < f.APIError, s.apiFaults.Float64() < f.APISlow
		s.mu.Unlock()
		if slow {
			t := time.NewTimer(f.APISlowDelay)
			select {
			case <-r.Context().Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		if fail {
			s.writeError(w, r, f.APIErrorStatus, "simulated failure")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// writeJSON answers with a JSON body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeJSONList answers 200 with list as a JSON array written element by
// element: GET /2fa/v4/otp lists every OTP kept, whose whole answer
// encoded at once would take a buffer of its size and twice that in growing.
func writeJSONList[T any](w http.ResponseWriter, list []T) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	sep := byte('[')
	for i := range list {
		_ = bw.WriteByte(sep)
		if err := enc.Encode(&list[i]); err != nil {
			return // the client went away
		}
		sep = ','
	}
	if sep == '[' {
		_ = bw.WriteByte('[')
	}
	_, _ = bw.WriteString("]\n")
	_ = bw.Flush()
}

// writeError answers in the error shape of the API version of the path:
// v1 ErrorResponse or the v4 problem object.
func (s *Sim) writeError(w http.ResponseWriter, r *http.Request, status int, detail string) {
	if strings.HasPrefix(r.URL.Path, "/2fa/v1/") {
		writeJSON(w, status, v1Error{
			Code: strconv.Itoa(status), ID: strconv.Itoa(status), Message: detail, Timestamp: time.Now().UnixMilli(),
		})
		return
	}
	writeJSON(w, status, v4Problem{Status: status, Title: http.StatusText(status), Detail: detail})
}

type v1Error struct {
	Code      string `json:"code"`
	ID        string `json:"id,omitempty"`
	Message   string `json:"message"`
	Timestamp int64  `json:"timestamp"`
}

type v4Problem struct {
	Status     int                `json:"status"`
	Title      string             `json:"title"`
	Detail     string             `json:"detail,omitempty"`
	ResourceID string             `json:"resourceId,omitempty"`
	Violations []tyntec.Violation `json:"violations,omitempty"`
}

func writeNotFound(w http.ResponseWriter, id string) {
	writeJSON(w, http.StatusNotFound, v4Problem{Status: http.StatusNotFound, Title: "No Resource Found", Detail: "Resource with ID " + id + " not found", ResourceID: id})
}

func writeViolation(w http.ResponseWriter, field, msg string) {
	writeJSON(w, http.StatusBadRequest, v4Problem{Status: http.StatusBadRequest, Title: "Constraint Violation", Violations: []tyntec.Violation{{Field: field, Message: msg}}})
}

// decode reads a JSON body or answers 400.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(v); err != nil {
		writeViolation(w, "body", "invalid JSON: "+err.Error())
		return false
	}
	return true
}
