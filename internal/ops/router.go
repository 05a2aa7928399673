package ops

import (
	"net/http"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/otpscope/otpscope/internal/problem"
)

// methods are those a 405's Allow header may list.
var methods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions}

// NewRouter is the chi router every otpscope listener uses: a panic in a
// handler answers 500 instead of killing the process, HEAD is answered as
// GET without the body (a load balancer's health check may send it), and
// unknown paths and methods get problem+json 404 and 405 (with Allow, as
// RFC 9110 asks).
func NewRouter() chi.Router {
	r := chi.NewRouter()
	r.Use(middleware.Recoverer, middleware.GetHead)
	r.NotFound(func(w http.ResponseWriter, _ *http.Request) {
		problem.Error(w, http.StatusNotFound, "no such endpoint")
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, req *http.Request) {
		var allowed []string
		for _, m := range methods {
			if r.Match(chi.NewRouteContext(), m, req.URL.Path) || (m == http.MethodHead && slices.Contains(allowed, http.MethodGet)) {
				allowed = append(allowed, m)
			}
		}
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		problem.Error(w, http.StatusMethodNotAllowed, req.Method+" is not allowed here")
	})
	return r
}
