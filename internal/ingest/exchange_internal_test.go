package ingest

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// A webhook being published when SIGTERM comes finishes its publish: the
// exchange's context does not end with the server's (fasthttp closes every
// RequestCtx's Done as its shutdown begins), so a stored event is not
// answered 503.
func TestFastContextOutlivesShutdown(t *testing.T) {
	type inFlight struct {
		raw *fasthttp.RequestCtx
		ctx context.Context
	}
	in := make(chan inFlight, 1)
	release := make(chan struct{})
	s := &fasthttp.Server{Handler: func(c *fasthttp.RequestCtx) {
		in <- inFlight{c, fastExchange{ctx: c}.context()}
		<-release
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	go func() {
		if resp, err := http.Post("http://"+ln.Addr().String()+WebhookPath, "application/json", nil); err == nil {
			resp.Body.Close()
		}
	}()
	f := <-in
	stopped := make(chan error, 1)
	go func() { stopped <- s.Shutdown() }()
	select {
	case <-f.raw.Done(): // the shutdown has begun
	case <-time.After(10 * time.Second):
		t.Fatal("the server's shutdown did not begin")
	}
	if err := f.ctx.Err(); err != nil {
		t.Errorf("the exchange's context during the server's shutdown: %v; want it alive", err)
	}
	close(release)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
}
