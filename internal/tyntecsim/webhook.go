package tyntecsim

import (
	"bytes"
	"context"
	"hash/fnv"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/otpscope/otpscope/internal/tyntec"
)

// hookJob is one webhook to send (copies times): a DeliveryStatus webhook,
// a push callback, or one of the simulated app's requests to otpscope.
type hookJob struct {
	key string // jobs with the same key are sent by one worker, in order
	// record notes each request's answer (status 0: transport error) in
	// the truth; called under Sim.mu.
	record  func(status int, ok bool)
	url     string
	headers map[string]string
	body    []byte
	copies  int
}

// dispatcher sends webhooks through a fixed set of workers. All webhooks of
// one key (an OTP, an approval request) go through the same worker, in the
// order they were emitted.
type dispatcher struct {
	s       *Sim
	workers []*worker
}

type worker struct {
	mu     sync.Mutex
	queue  []hookJob
	busy   bool
	signal chan struct{}
}

func newDispatcher(s *Sim) *dispatcher {
	d := &dispatcher{s: s}
	for range s.cfg.Webhook.Workers {
		d.workers = append(d.workers, &worker{signal: make(chan struct{}, 1)})
	}
	return d
}

func (d *dispatcher) start(ctx context.Context, wg *sync.WaitGroup) {
	for _, w := range d.workers {
		wg.Go(func() { d.run(ctx, w) })
	}
}

// enqueue queues a job without blocking; callers may hold Sim.mu.
func (d *dispatcher) enqueue(j hookJob) {
	h := fnv.New32a()
	h.Write([]byte(j.key))
	w := d.workers[h.Sum32()%uint32(len(d.workers))]
	w.mu.Lock()
	w.queue = append(w.queue, j)
	w.mu.Unlock()
	select {
	case w.signal <- struct{}{}:
	default:
	}
}

func (d *dispatcher) idle() bool {
	for _, w := range d.workers {
		w.mu.Lock()
		busy := w.busy || len(w.queue) > 0
		w.mu.Unlock()
		if busy {
			return false
		}
	}
	return true
}

func (d *dispatcher) run(ctx context.Context, w *worker) {
	for {
		w.mu.Lock()
		if len(w.queue) == 0 {
			w.busy = false
			w.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-w.signal:
			}
			continue
		}
		j := w.queue[0]
		w.queue = w.queue[1:]
		w.busy = true
		w.mu.Unlock()
		for range j.copies {
			d.send(ctx, j)
		}
	}
}

// send posts one copy of a webhook, retrying non-2xx answers with backoff.
func (d *dispatcher) send(ctx context.Context, j hookJob) {
	s, p := d.s, d.s.cfg.Webhook
	backoff := p.InitialBackoff
	for attempt := 1; ; attempt++ {
		if ctx.Err() != nil {
			return
		}
		status, retryAfter, err := d.post(ctx, j)
		ok := err == nil && status >= 200 && status < 300
		if j.record != nil {
			s.mu.Lock()
			j.record(status, ok)
			s.mu.Unlock()
		}
		if ok {
			return
		}
		if attempt >= p.MaxAttempts {
			s.log.Warn("webhook given up", "url", j.url, "key", j.key, "attempts", attempt, "status", status, "err", err)
			return
		}
		wait := backoff
		if retryAfter > 0 {
			wait = min(retryAfter, p.MaxBackoff)
		}
		backoff = min(2*backoff, p.MaxBackoff)
		t := time.NewTimer(s.clock.wall(wait))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func (d *dispatcher) post(ctx context.Context, j hookJob) (int, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, d.s.cfg.Webhook.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.url, bytes.NewReader(j.body))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "tyntecsim")
	for k, v := range j.headers {
		req.Header.Set(k, v)
	}
	resp, err := d.s.cfg.HTTPClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	// Retry-After is read as simulated seconds, like every delay of the sender.
	return resp.StatusCode, tyntec.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()), nil
}
