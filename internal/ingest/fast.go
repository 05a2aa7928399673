package ingest

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/otpscope/otpscope/internal/ops"
	"github.com/otpscope/otpscope/internal/problem"
)

// NewServer is the public listener's server when the endpoints of routes
// have it to themselves (the API on its own listener, the default):
// fasthttp, on which a webhook costs about a fifth less CPU than on
// net/http, the difference between ingest keeping pace with the serial
// limit of HTTP and publishing on two cores or not (bench/HISTORY.md,
// eighteenth session). POSTs to routes are served here, each through the
// same code as on net/http (exchange); every other request (health checks,
// 404s, 405s) goes to next, the listener's router, through fasthttpadaptor
// and without its body: none of those routes reads one.
//
// What differs from net/http, and why:
//   - The server reads up to 8 KB of a body ahead before a handler runs. A
//     POST to a route without a valid token gets no time for that (its read
//     fails at once) and is answered 401, so an unauthorized caller still
//     waits for nothing; other callers that stall within those 8 KB are cut
//     off by ops.ReadTimeout.
//   - ops.ReadTimeout counts from the request's first byte, headers
//     included: fasthttp has no ReadHeaderTimeout of its own.
//   - Request headers may take MaxHeaderBytes (net/http's listeners: 64 KB).
func (h *Handler) NewServer(next http.Handler, observe ops.Observe, routes ...Route) *fasthttp.Server {
	serves := make(map[string]Route, len(routes))
	for _, rt := range routes {
		serves[rt.Path] = rt
	}
	// unauthorizedPost is the route of a POST to one of routes without a
	// valid token; "": not such a POST. The endpoint checks the token again
	// (a digest, well under a microsecond): HeaderReceived has no way to
	// hand it its answer.
	unauthorizedPost := func(hd *fasthttp.RequestHeader) string {
		path, _, _ := bytes.Cut(hd.RequestURI(), []byte("?"))
		if _, ok := serves[string(path)]; !ok || !hd.IsPost() || h.authorized(string(path), func(name string) string { return string(hd.Peek(name)) }) {
			return ""
		}
		return string(path)
	}
	// cutShort holds the unauthorized POSTs whose body read HeaderReceived
	// cut short (route and arrival), for ErrorHandler to answer 401:
	// fasthttp resets a request's headers before calling it. Keyed by the
	// headers' address: each connection's request context has its own, so
	// it holds at most one entry per connection.
	type cut struct {
		route string
		start time.Time
	}
	var cutShort sync.Map
	slow := fasthttpadaptor.NewFastHTTPHandler(next)
	logger := h.logger.With("server", "public")
	return &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			rt, ok := serves[string(ctx.Path())]
			if !ok || !ctx.IsPost() {
				if ctx.Request.Header.ContentLength() != 0 {
					// Left unread; the server drains it or closes the connection.
					_ = ctx.Request.CloseBodyStream()
					ctx.Request.ResetBody()
				}
				slow(ctx)
				return
			}
			start := time.Now()
			defer func() {
				if rec := recover(); rec != nil { // as chi's Recoverer does on net/http
					logger.Error("panic serving a request", "path", rt.Path, "panic", rec)
					ctx.Response.Reset()
					answerProblem(fastExchange{ctx}, problem.Details{Status: http.StatusInternalServerError}, "Connection", "close")
				}
				observe(rt.Path, http.MethodPost, ctx.Response.StatusCode(), time.Since(start))
			}()
			rt.serve(fastExchange{ctx})
			if ctx.Response.StatusCode() == http.StatusUnauthorized {
				cutShort.Delete(&ctx.Request.Header) // its body had arrived with its headers
			}
		},
		HeaderReceived: func(hd *fasthttp.RequestHeader) fasthttp.RequestConfig {
			if route := unauthorizedPost(hd); route != "" && hd.ContentLength() != 0 {
				cutShort.Store(hd, cut{route, time.Now()})
				return fasthttp.RequestConfig{ReadTimeout: time.Nanosecond} // ErrorHandler answers
			}
			return fasthttp.RequestConfig{}
		},
		// Expect: 100-continue would have a POST without a valid token
		// (which HeaderReceived marked) send the body its endpoint refuses
		// unread: it is answered 401 instead (fasthttp writes the status
		// alone) and the connection closed, as net/http does. A body over
		// --max-body-bytes is invited, as without Expect: its first bytes
		// are the dead letter.
		ExpectHandler: func(ctx *fasthttp.RequestCtx) int {
			if c, ok := cutShort.LoadAndDelete(&ctx.Request.Header); ok {
				h.noteUnauthorized(fastExchange{ctx}, c.(cut).route)
				observe(c.(cut).route, http.MethodPost, http.StatusUnauthorized, time.Since(c.(cut).start))
				return http.StatusUnauthorized
			}
			return fasthttp.StatusContinue
		},
		ErrorHandler: func(ctx *fasthttp.RequestCtx, err error) {
			x := fastExchange{ctx}
			var small *fasthttp.ErrSmallBuffer
			var netErr net.Error
			if c, ok := cutShort.LoadAndDelete(&ctx.Request.Header); ok {
				h.unauthorized(x, c.(cut).route, unauthorizedDetail)
				observe(c.(cut).route, http.MethodPost, http.StatusUnauthorized, time.Since(c.(cut).start))
				return
			}
			// Not counted by observe: no route ran, and the request's
			// headers are gone (otpscope_ingest_requests_total counts a
			// cut-off body, endpoint unknown).
			switch {
			case errors.As(err, &small):
				answerProblem(x, problem.Details{Status: http.StatusRequestHeaderFieldsTooLarge, Detail: "request headers too large"})
			case errors.As(err, &netErr) && netErr.Timeout():
				answerProblem(x, problem.Details{Status: http.StatusRequestTimeout, Detail: "the request was not sent in time"})
			case errors.Is(err, io.ErrUnexpectedEOF):
				h.bodyUnread(x, "", err)
			default:
				answerProblem(x, problem.Details{Status: http.StatusBadRequest, Detail: "malformed HTTP request"})
			}
		},
		StreamRequestBody: true,
		// The handler reads every body as it came: a multipart one is
		// refused 415 with its dead letter, not parsed by fasthttp first.
		DisablePreParseMultipartForm: true,
		MaxRequestBodySize:           int(h.cfg.MaxBodyBytes),
		ReadBufferSize:               MaxHeaderBytes,
		ReadTimeout:                  ops.ReadTimeout,
		WriteTimeout:                 ops.WriteTimeout,
		IdleTimeout:                  ops.IdleTimeout,
		NoDefaultServerHeader:        true,
		NoDefaultContentType:         true,
		CloseOnShutdown:              true,
		Logger:                       slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
}

// MaxHeaderBytes bounds a request's headers on NewServer's listener (a
// webhook's are well under 1 KB); each connection holds a buffer this size.
const MaxHeaderBytes = 16 << 10
