package ops

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/otpscope/otpscope/internal/problem"
)

// Starting answers on a bound listener while the process starts — opening
// NATS and the engine, which on a recovering or full disk can take minutes
// — so that clients are answered at once rather than left in the kernel's
// backlog: /healthz 200 (the process is alive), /readyz and everything else
// 503 with Retry-After (tyntec retries a webhook, a load balancer looks
// elsewhere). Handoff gives the listener to the process's own server.
type Starting struct {
	ln        net.Listener
	conns     chan net.Conn
	failed    chan struct{} // closed when ln's Accept fails, with acceptErr
	acceptErr error
	stop      chan struct{} // closed with ln: a connection nobody took is closed
	stopOnce  sync.Once
	srv       *http.Server
	served    chan struct{}
}

// StartingRetryAfter is the Retry-After of Starting's 503s, in seconds.
const StartingRetryAfter = "5"

// ServeStarting starts answering on ln for the process until Handoff.
func ServeStarting(ln net.Listener) *Starting {
	s := &Starting{ln: ln, conns: make(chan net.Conn), failed: make(chan struct{}), stop: make(chan struct{}), served: make(chan struct{})}
	go s.accept()
	standIn := s.listener(false)
	s.srv = NewServer(http.HandlerFunc(answerStarting))
	go func() {
		defer close(s.served)
		_ = s.srv.Serve(standIn)
	}()
	return s
}

// accept hands each connection ln accepts to whichever server holds it.
func (s *Starting) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			s.acceptErr = err
			close(s.failed)
			return
		}
		select {
		case s.conns <- c:
		case <-s.stop:
			c.Close()
			return
		}
	}
}

// closeBound closes the bound listener.
func (s *Starting) closeBound() error {
	s.stopOnce.Do(func() { close(s.stop) })
	if err := s.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

// answerStarting answers one request while the process starts. Every
// answer closes its connection: a kept-alive one would be closed under the
// client at the handoff, and a POST sent on it then fails with EOF instead
// of reaching the process's own server.
func answerStarting(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Connection", "close")
	if r.URL.Path == "/healthz" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok (starting)")
		return
	}
	w.Header().Set("Retry-After", StartingRetryAfter)
	problem.Error(w, http.StatusServiceUnavailable, "otpscope is starting (opening NATS and ClickHouse); retry shortly")
}

// Handoff stops answering for the process (requests in flight finish,
// within ctx) and returns the listener for its own server; connections
// that arrive meanwhile wait for that server. Closing the returned
// listener closes the bound one.
func (s *Starting) Handoff(ctx context.Context) net.Listener {
	_ = s.srv.Shutdown(ctx) // closes the stand-in's listener, not ln
	<-s.served
	return s.listener(true)
}

// Close stops answering and closes the bound listener: a start that
// failed.
func (s *Starting) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
	return s.closeBound()
}

func (s *Starting) listener(owns bool) *handedListener {
	return &handedListener{s: s, owns: owns, closed: make(chan struct{})}
}

// handedListener is the bound listener as one server sees it.
type handedListener struct {
	s      *Starting
	owns   bool // Close closes the bound listener
	once   sync.Once
	closed chan struct{}
}

func (l *handedListener) Accept() (net.Conn, error) {
	select {
	case <-l.closed: // before a connection that is also ready
		return nil, net.ErrClosed
	default:
	}
	select {
	case c := <-l.s.conns:
		return c, nil
	case <-l.s.failed:
		return nil, l.s.acceptErr
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *handedListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	if l.owns {
		return l.s.closeBound()
	}
	return nil
}

func (l *handedListener) Addr() net.Addr { return l.s.ln.Addr() }
