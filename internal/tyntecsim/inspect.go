package tyntecsim

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Pages of GET /_sim/truth: DefaultTruthPage OTPs unless ?limit= asks for
// more, never more than MaxTruthPage, so that one answer stays small however
// long the simulator runs.
const (
	DefaultTruthPage = 1000
	MaxTruthPage     = 10000
)

// InspectHandler serves tyntec's API plus what the simulator did:
//
//	GET /_sim/truth?after=SEQ&limit=N  the ground truth, one page of OTPs in
//	                                   creation order after OTP number SEQ;
//	                                   "next" is the after of the next page;
//	                                   silent_after and push_after (answered
//	                                   by next_silent, next_push) page the
//	                                   silent-auth attempts and approval
//	                                   requests the same way, limit N each
//	GET /_sim/truth/summary            journeys by outcome, attempts by channel
//	GET /_sim/calls                    every API request
//	GET /healthz
//
// The standalone binary and the all-in-one serve it. Keys are snake_case.
func (s *Sim) InspectHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_sim/truth", s.serveTruth)
	mux.HandleFunc("GET /_sim/truth/summary", func(w http.ResponseWriter, _ *http.Request) { writeInspectJSON(w, http.StatusOK, s.TruthSummary()) })
	mux.HandleFunc("GET /_sim/calls", func(w http.ResponseWriter, _ *http.Request) {
		calls := s.Calls()
		if calls == nil {
			calls = []Call{} // [] before any call, not null: a list to every client
		}
		writeInspectJSON(w, http.StatusOK, calls)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.Handle("/", s)
	return mux
}

func (s *Sim) serveTruth(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var c TruthCursor
	limit := DefaultTruthPage
	for _, p := range []struct {
		name string
		to   *uint64
	}{{"after", &c.OTPs}, {"silent_after", &c.Silent}, {"push_after", &c.Push}} {
		if v := q.Get(p.name); v != "" {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				writeInspectJSON(w, http.StatusBadRequest, map[string]string{"error": p.name + ": want a seq (>= 0)"})
				return
			}
			*p.to = n
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxTruthPage {
			writeInspectJSON(w, http.StatusBadRequest, map[string]string{"error": "limit: want 1.." + strconv.Itoa(MaxTruthPage)})
			return
		}
		limit = n
	}
	writeInspectJSON(w, http.StatusOK, s.TruthPage(c, limit))
}

func writeInspectJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
