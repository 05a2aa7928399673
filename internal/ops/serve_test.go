package ops_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/otpscope/otpscope/internal/ops"
)

// Stopping lets a request in flight finish, and refuses new connections,
// on net/http and on fasthttp (the public listener's server for webhooks).
func TestServeDrainsInFlightRequests(t *testing.T) {
	servers := map[string]func(context.Context, http.Handler, net.Listener) error{
		"net/http": func(ctx context.Context, h http.Handler, ln net.Listener) error {
			return ops.Serve(ctx, ops.NewServer(h), ln, 5*time.Second)
		},
		"fasthttp": func(ctx context.Context, h http.Handler, ln net.Listener) error {
			return ops.ServeFast(ctx, &fasthttp.Server{Handler: fasthttpadaptor.NewFastHTTPHandler(h)}, ln, 5*time.Second)
		},
	}
	for name, serve := range servers {
		t.Run(name, func(t *testing.T) { testServeDrains(t, serve) })
	}
}

func testServeDrains(t *testing.T, serve func(context.Context, http.Handler, net.Listener) error) {
	started := make(chan struct{})
	r := ops.NewRouter()
	r.Get("/slow", func(w http.ResponseWriter, _ *http.Request) {
		close(started)
		time.Sleep(300 * time.Millisecond) // a slow request: still in flight when Serve is told to stop
		io.WriteString(w, "done")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- serve(ctx, r, ln) }()

	type answer struct {
		body string
		err  error
	}
	got := make(chan answer, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/slow")
		if err != nil {
			got <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- answer{string(b), err}
	}()
	<-started
	cancel()
	if a := <-got; a.err != nil || a.body != "done" {
		t.Fatalf("in-flight request = %q, %v; want it to finish", a.body, a.err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := http.Get("http://" + ln.Addr().String() + "/slow"); err == nil {
		t.Fatal("a new request was answered after shutdown")
	}
}

func TestRouterProblems(t *testing.T) {
	r := ops.NewRouter()
	r.Post("/x", func(http.ResponseWriter, *http.Request) {})
	r.Get("/panic", func(http.ResponseWriter, *http.Request) { panic("boom") })
	srv := &http.Server{Handler: r}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	defer srv.Close()
	for path, want := range map[string]int{"/nope": 404, "/x": 405, "/panic": 500} {
		resp, err := http.Get("http://" + ln.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s = %d; want %d", path, resp.StatusCode, want)
		}
		if want == 405 && resp.Header.Get("Allow") != "POST" {
			t.Errorf("GET %s Allow = %q; want POST", path, resp.Header.Get("Allow"))
		}
		if want != 500 && resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("GET %s Content-Type %q", path, resp.Header.Get("Content-Type"))
		}
	}
	// HEAD is GET without the body: a load balancer's check may send it.
	r.Get("/ok", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) })
	resp, err := http.Head("http://" + ln.Addr().String() + "/ok")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("HEAD /ok = %d; want 200", resp.StatusCode)
	}
	resp, err = http.Post("http://"+ln.Addr().String()+"/ok", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Allow"); got != "GET, HEAD" {
		t.Errorf("POST /ok Allow = %q; want GET, HEAD", got)
	}
}

// TestServeStoppedAtOnce: a stop that comes before the server has taken
// its listener (a process stopped as it starts) still ends Serve. fasthttp's
// shutdown returns at once when no Serve has registered a listener yet, and
// the Serve that begins after it waited on Accept for good (a CI run hung
// 17 minutes in a test that stopped the all-in-one right after starting it).
func TestServeStoppedAtOnce(t *testing.T) {
	servers := map[string]func(context.Context, net.Listener) error{
		"net/http": func(ctx context.Context, ln net.Listener) error {
			return ops.Serve(ctx, ops.NewServer(http.NotFoundHandler()), ln, time.Second)
		},
		"fasthttp": func(ctx context.Context, ln net.Listener) error {
			return ops.ServeFast(ctx, &fasthttp.Server{Handler: func(*fasthttp.RequestCtx) {}}, ln, time.Second)
		},
	}
	for name, serve := range servers {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			for range 200 { // the race is the scheduler's: many tries
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				served := make(chan error, 1)
				go func() { served <- serve(ctx, ln) }()
				select {
				case <-served:
				case <-time.After(5 * time.Second):
					t.Fatal("Serve stopped before it took its listener did not return")
				}
				ln.Close()
			}
		})
	}
}
