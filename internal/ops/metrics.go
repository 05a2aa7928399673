package ops

import (
	"context"
	"net/http"
	"runtime"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/otpscope/otpscope/internal/cli"
)

// HTTPMetrics instrument otpscope's listeners: requests by listener, route,
// method and code (404s and 405s included), and their durations, labelled as
// the Prometheus client's promhttp.InstrumentHandlerCounter and ...Duration
// label them. The handler label is chi's route pattern, so a scan of random
// paths adds no series.
type HTTPMetrics struct{ timed }

// NewHTTPMetrics registers the HTTP metrics with reg.
func NewHTTPMetrics(reg prometheus.Registerer) *HTTPMetrics {
	return &HTTPMetrics{newTimed(reg, []string{"listener", "handler", "method"}, "code",
		prometheus.CounterOpts{Name: "otpscope_http_requests_total", Help: "HTTP requests answered, by listener, route pattern, method and status code."},
		prometheus.HistogramOpts{Name: "otpscope_http_request_duration_seconds", Help: "Time to answer an HTTP request, by listener, route pattern and method.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}})}
}

// timed counts requests by their labels and an outcome, and times them by
// their labels alone.
type timed struct {
	total   *prometheus.CounterVec
	seconds *prometheus.HistogramVec
}

// newTimed registers total (labelled by and outcome) and seconds (labelled by) with reg.
func newTimed(reg prometheus.Registerer, by []string, outcome string, total prometheus.CounterOpts, seconds prometheus.HistogramOpts) timed {
	f := promauto.With(reg)
	return timed{
		total:   f.NewCounterVec(total, append(by[:len(by):len(by)], outcome)),
		seconds: f.NewHistogramVec(seconds, by),
	}
}

// Middleware instruments the routes of a chi router serving listener
// (public or admin); r.Use it before mounting routes.
func (m *HTTPMetrics) Middleware(listener string) func(http.Handler) http.Handler {
	observe := m.Recorder(listener)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			sw := &statusWriter{ResponseWriter: w}
			next.ServeHTTP(sw, r)
			status := sw.status
			switch {
			case status != 0:
			case r.Context().Err() != nil:
				// Nothing written to a client that left: a request it
				// abandoned (waiting for a place, or for its queries).
				status = StatusClientClosed
			default: // nothing written: net/http answers 200
				status = http.StatusOK
			}
			observe(routePattern(r.Context()), r.Method, status, time.Since(start))
		})
	}
}

// StatusClientClosed is the code label of a request whose client left
// before anything was written to it (nginx's 499, "client closed request"):
// net/http would count it as 200.
const StatusClientClosed = 499

// Observe records one answered request: its route pattern, method, status
// and how long it took.
type Observe func(route, method string, status int, took time.Duration)

// Recorder records the requests of listener, for servers that are not a
// chi router with Middleware (the public listener's fasthttp routes).
//
// It keeps the series it has used: promhttp's middleware builds a label map
// and looks each series up by hashing its labels on every request, which was
// a few percent of a webhook's CPU (bench/HISTORY.md, "Ingest (until
// 2026-12-03)").
func (m *HTTPMetrics) Recorder(listener string) Observe {
	l := prometheus.Labels{"listener": listener}
	requests, duration := m.total.MustCurryWith(l), m.seconds.MustCurryWith(l)
	var used Series[seriesKey, httpSeries]
	return func(route, method string, status int, took time.Duration) {
		key := seriesKey{route, httpMethod(method), status}
		hs := used.Get(key, func() httpSeries {
			return httpSeries{
				requests: requests.WithLabelValues(key.route, key.method, strconv.Itoa(key.status)),
				seconds:  duration.WithLabelValues(key.route, key.method),
			}
		})
		hs.requests.Inc()
		hs.seconds.Observe(took.Seconds())
	}
}

type seriesKey struct {
	route, method string
	status        int
}

type httpSeries struct {
	requests prometheus.Counter
	seconds  prometheus.Observer
}

// httpMethod is the method label, as promhttp writes it: the standard
// methods in lower case, anything else "unknown" (a client cannot add series).
func httpMethod(m string) string {
	switch m {
	case http.MethodGet:
		return "get"
	case http.MethodPut:
		return "put"
	case http.MethodHead:
		return "head"
	case http.MethodPost:
		return "post"
	case http.MethodDelete:
		return "delete"
	case http.MethodConnect:
		return "connect"
	case http.MethodOptions:
		return "options"
	case http.MethodTrace:
		return "trace"
	case http.MethodPatch:
		return "patch"
	}
	return "unknown"
}

// statusWriter remembers the status a handler answered with. Unwrap lets
// http.ResponseController reach the connection (flushes, deadlines) through it.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 { // 1xx are interim answers
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush serves handlers that assert http.Flusher.
func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush() // http.Flusher has no error to return
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// routePattern is the chi route that served the request ("unmatched" for a
// 404 or 405), read after the router filled it in.
func routePattern(ctx context.Context) string {
	if rc := chi.RouteContext(ctx); rc != nil {
		if p := rc.RoutePattern(); p != "" && p != "/*" {
			return p
		}
	}
	return "unmatched"
}

// RegisterBuildInfo registers otpscope_build_info{version,goversion} = 1:
// the version the binary names itself by (cli.ModuleVersion) and its Go.
func RegisterBuildInfo(reg prometheus.Registerer) {
	version := cli.ModuleVersion()
	promauto.With(reg).NewGaugeVec(prometheus.GaugeOpts{
		Name: "otpscope_build_info",
		Help: "Always 1; the labels say which build runs.",
	}, []string{"version", "goversion"}).WithLabelValues(version, runtime.Version()).Set(1)
}

// QueryMetrics count the embedded ClickHouse endpoint's queries by who sent
// them (owner: this process; guest: Grafana, reporter report, curl) and
// outcome, and time them. Observe is store.Config.ObserveQuery.
type QueryMetrics struct{ timed }

// NewQueryMetrics registers the endpoint's query metrics with reg.
func NewQueryMetrics(reg prometheus.Registerer) *QueryMetrics {
	return &QueryMetrics{newTimed(reg, []string{"client"}, "outcome",
		prometheus.CounterOpts{Name: "otpscope_clickhouse_endpoint_queries_total", Help: "Queries the embedded ClickHouse endpoint answered, by client (owner or guest) and outcome (ok, refused, error)."},
		prometheus.HistogramOpts{Name: "otpscope_clickhouse_endpoint_query_seconds", Help: "Time the embedded ClickHouse endpoint took to answer a query, by client.",
			Buckets: prometheus.ExponentialBuckets(.001, 4, 9)})}
}

// Observe records one query.
func (m *QueryMetrics) Observe(guest bool, outcome string, d time.Duration) {
	client := "owner"
	if guest {
		client = "guest"
	}
	m.total.WithLabelValues(client, outcome).Inc()
	m.seconds.WithLabelValues(client).Observe(d.Seconds())
}
