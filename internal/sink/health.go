package sink

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// health is whether the sink's inserts succeed: one log line per change of
// state, not one per retry, and the last error for /readyz while failing.
type health struct {
	logger  *slog.Logger
	metrics *metrics

	mu      sync.Mutex
	err     error // the last insert error; nil while healthy
	since   time.Time
	retries int
}

// failed records a failed insert attempt and says how many there have been
// in a row.
func (h *health) failed(err error) int {
	h.metrics.insertFailures.WithLabelValues(errorClass(err)).Inc()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err == nil {
		h.since = time.Now()
		h.metrics.storeHealthy.Set(0)
		h.logger.Warn("clickhouse inserts failing; events are kept in NATS and retried until they succeed", "err", err)
	}
	h.err = err
	h.retries++
	return h.retries
}

// ok records a successful insert.
func (h *health) ok() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err != nil {
		h.logger.Info("clickhouse inserts healthy again", "failing_for", time.Since(h.since).Round(time.Millisecond), "failed_attempts", h.retries, "last_err", h.err)
		h.metrics.storeHealthy.Set(1)
	}
	h.err, h.retries = nil, 0
}

// failures is the number of failed attempts in a row (0 while healthy).
func (h *health) failures() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.retries
}

// Ready reports the last insert error while the sink's inserts fail, and nil
// while they succeed: the "clickhouse" check of /readyz in the processes that
// run the sink.
func (c *Consumer) Ready(context.Context) error {
	h := &c.health
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err == nil {
		return nil
	}
	return fmt.Errorf("inserts failing for %s (%d attempts): %w", time.Since(h.since).Round(time.Second), h.retries, h.err)
}
