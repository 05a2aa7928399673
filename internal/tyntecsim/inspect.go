package tyntecsim

import (
	"encoding/json"
	"net/http"
)

// InspectHandler serves tyntec's API plus what the simulator did:
// GET /_sim/truth (the ground truth), GET /_sim/calls (every API request) and
// GET /healthz. The standalone binary and the all-in-one serve it.
func (s *Sim) InspectHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_sim/truth", func(w http.ResponseWriter, _ *http.Request) { writeInspectJSON(w, s.Truth()) })
	mux.HandleFunc("GET /_sim/calls", func(w http.ResponseWriter, _ *http.Request) { writeInspectJSON(w, s.Calls()) })
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.Handle("/", s)
	return mux
}

func writeInspectJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
