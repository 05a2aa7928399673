package ops

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/otpscope/otpscope/internal/problem"
)

// NewRouter is the chi router every otpscope listener uses: a panic in a
// handler answers 500 instead of killing the process, and unknown paths and
// methods get problem+json 404 and 405.
func NewRouter() chi.Router {
	r := chi.NewRouter()
	r.Use(middleware.Recoverer)
	r.NotFound(func(w http.ResponseWriter, _ *http.Request) {
		problem.Error(w, http.StatusNotFound, "no such endpoint")
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, req *http.Request) {
		problem.Error(w, http.StatusMethodNotAllowed, req.Method+" is not allowed here")
	})
	return r
}
