package ingest

import (
	"bytes"
	"context"
	"io"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/valyala/fasthttp"
)

// exchange is one request and its answer, whichever server carries it: the
// endpoints are written once against it and served by net/http (a router,
// as when the API shares the listener) or by fasthttp (the public
// listener's own server, fast.go).
type exchange interface {
	context() context.Context
	header(name string) string
	// contentLength is the announced body size; -1 when not announced.
	contentLength() int64
	body() io.Reader
	remoteAddr() string
	path() string
	// answer writes the status, the header (name, value, ...) and body.
	answer(status int, body []byte, header ...string)
}

// Route is an endpoint taking POSTs at Path.
type Route struct {
	Path  string
	serve func(exchange)
}

// Mount adds routes to r as net/http handlers.
func Mount(r chi.Router, routes ...Route) {
	for _, rt := range routes {
		serve := rt.serve
		r.Post(rt.Path, func(w http.ResponseWriter, r *http.Request) { serve(httpExchange{w, r}) })
	}
}

type httpExchange struct {
	w http.ResponseWriter
	r *http.Request
}

func (x httpExchange) context() context.Context  { return x.r.Context() }
func (x httpExchange) header(name string) string { return x.r.Header.Get(name) }
func (x httpExchange) contentLength() int64      { return x.r.ContentLength }
func (x httpExchange) body() io.Reader           { return x.r.Body }
func (x httpExchange) remoteAddr() string        { return x.r.RemoteAddr }
func (x httpExchange) path() string              { return x.r.URL.Path }

func (x httpExchange) answer(status int, body []byte, header ...string) {
	h := x.w.Header()
	for i := 0; i+1 < len(header); i += 2 {
		h.Set(header[i], header[i+1])
	}
	x.w.WriteHeader(status)
	_, _ = x.w.Write(body)
}

type fastExchange struct{ ctx *fasthttp.RequestCtx }

// context is not the RequestCtx itself: its Done closes the moment the
// server begins to shut down, and a publish under way then failed with
// 503 although JetStream stored it (chaos review, SIGTERM mid-load). The
// publish has its own timeout, and the shutdown waits for it.
func (x fastExchange) context() context.Context { return context.WithoutCancel(x.ctx) }

func (x fastExchange) header(name string) string { return string(x.ctx.Request.Header.Peek(name)) }
func (x fastExchange) remoteAddr() string        { return x.ctx.RemoteAddr().String() }
func (x fastExchange) path() string              { return string(x.ctx.Path()) }

func (x fastExchange) contentLength() int64 {
	if n := x.ctx.Request.Header.ContentLength(); n >= 0 {
		return int64(n)
	}
	return -1 // chunked
}

// body is the body as the server streams it (StreamRequestBody): the bytes
// it read ahead, then the rest from the connection.
func (x fastExchange) body() io.Reader {
	if s := x.ctx.RequestBodyStream(); s != nil {
		return s
	}
	return bytes.NewReader(x.ctx.PostBody())
}

func (x fastExchange) answer(status int, body []byte, header ...string) {
	x.ctx.SetStatusCode(status)
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Connection" && header[i+1] == "close" {
			x.ctx.SetConnectionClose()
			continue
		}
		x.ctx.Response.Header.Set(header[i], header[i+1])
	}
	x.ctx.SetBody(body)
}
