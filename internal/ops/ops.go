// Package ops mounts the endpoints every otpscope service serves for its
// operators: /healthz (the process is up), /readyz (its dependencies answer) and
// /metrics (Prometheus).
package ops

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/pprof"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/otpscope/otpscope/internal/problem"
	"github.com/otpscope/otpscope/internal/reload"
)

// Check is one readiness condition, named in /readyz's answer.
type Check struct {
	Name  string
	Ready func(context.Context) error
	// Info, when set, adds what the component knows to its ok line
	// ("poller: ok (tyntec v1 sees v4 OTPs: no)").
	Info func() string
}

// NewRegistry is a Prometheus registry with the Go and process collectors
// and otpscope_build_info.
func NewRegistry() *Registry {
	reg := &Registry{Registry: prometheus.NewRegistry(), names: map[string]bool{}}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), majorFaultsCollector())
	RegisterBuildInfo(reg)
	reg.MustRegister(reload.Collector())
	return reg
}

// Registry is a Prometheus registry that remembers the names of the metrics
// registered with it, also those with no series yet (a labelled counter
// before its first increment), so that a test can hold the README's list of
// metrics against a binary's.
type Registry struct {
	*prometheus.Registry
	mu    sync.Mutex
	names map[string]bool
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

// Register registers c and remembers its metrics' names.
func (r *Registry) Register(c prometheus.Collector) error {
	if err := r.Registry.Register(c); err != nil {
		return err
	}
	descs := make(chan *prometheus.Desc)
	go func() { c.Describe(descs); close(descs) }()
	r.mu.Lock()
	defer r.mu.Unlock()
	for d := range descs {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			r.names[m[1]] = true
		}
	}
	return nil
}

// MustRegister registers cs and panics on the first error, as
// prometheus.Registry does.
func (r *Registry) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// Names are the names of every metric registered, sorted.
func (r *Registry) Names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Sorted(maps.Keys(r.names))
}

// WriteJSON answers v as JSON, 200, never cached: the API's answers are
// read when asked.
func WriteJSON(w http.ResponseWriter, v any) { WriteJSONStatus(w, http.StatusOK, v) }

// WriteJSONStatus is WriteJSON with another status: the headers are set
// before it is written, when they still count.
func WriteJSONStatus(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// MountMetrics adds /metrics (Prometheus) to r.
func MountMetrics(r chi.Router, gatherer prometheus.Gatherer) {
	r.Handle("/metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
}

// MaxProfileSeconds bounds a CPU profile or trace asked of /debug/pprof/:
// one CPU profile runs at a time, and a forgotten ?seconds=3600 would hold
// it (and a connection) for an hour.
const MaxProfileSeconds = 120

// MountProfiling adds Go's profiler under /debug/pprof/ to r: the index,
// CPU profiles and execution traces (?seconds=N, at most
// MaxProfileSeconds) and every named profile (heap, allocs, goroutine,
// mutex, block, threadcreate), for `go tool pprof`. Not
// /debug/pprof/cmdline: the command line may hold secrets given as flags.
func MountProfiling(r chi.Router) {
	bounded := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, req *http.Request) {
			if s := req.URL.Query().Get("seconds"); s != "" {
				if n, err := strconv.ParseFloat(s, 64); err != nil || n <= 0 || n > MaxProfileSeconds {
					problem.Error(w, http.StatusBadRequest, fmt.Sprintf("seconds=%.32q: want a number of seconds from 1 to %d", s, MaxProfileSeconds))
					return
				}
			}
			h(w, req)
		}
	}
	r.Get("/debug/pprof/", pprof.Index)
	r.Get("/debug/pprof/profile", bounded(pprof.Profile))
	r.Get("/debug/pprof/trace", bounded(pprof.Trace))
	r.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	r.Get("/debug/pprof/{profile}", func(w http.ResponseWriter, req *http.Request) {
		name := chi.URLParam(req, "profile")
		if name == "cmdline" {
			http.NotFound(w, req)
			return
		}
		pprof.Handler(name).ServeHTTP(w, req)
	})
}

// MountHealth adds /healthz (the process is up) and /readyz (every check
// passes) to r. /readyz names each check; with detail it says why one
// fails (an error may name an internal address or quote the store's
// message) and what a passing one reports, for the operators' listener:
// the internet-facing one says only which checks fail.
func MountHealth(r chi.Router, detail bool, checks ...Check) {
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	r.Get("/readyz", func(w http.ResponseWriter, req *http.Request) {
		ctx, cancel := context.WithTimeout(req.Context(), 3*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		status, body := http.StatusOK, ""
		for _, c := range checks {
			if err := c.Ready(ctx); err != nil {
				status = http.StatusServiceUnavailable
				if detail {
					body += fmt.Sprintf("%s: %v\n", c.Name, err)
				} else {
					body += c.Name + ": failing (the admin listener's /readyz says why)\n"
				}
			} else if detail && c.Info != nil {
				body += fmt.Sprintf("%s: ok (%s)\n", c.Name, c.Info())
			} else {
				body += fmt.Sprintf("%s: ok\n", c.Name)
			}
		}
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	})
}
