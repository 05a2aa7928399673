package ingest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/ops"
	"github.com/otpscope/otpscope/internal/problem"
)

// Publisher gets messages durably into the stream, or fails; stored[i]
// tells whether msgs[i] was new (not a duplicate the stream dropped).
type Publisher interface {
	PublishNew(ctx context.Context, timeout time.Duration, msgs ...events.Message) (stored []bool, err error)
}

// WebhookPath is where tyntec posts DeliveryStatus events.
const WebhookPath = "/webhooks/tyntec"

// Handler serves the webhook endpoint.
type Handler struct {
	cfg     Config
	tokens  ops.Tokens
	pub     Publisher
	logger  *slog.Logger
	metrics *metrics
	now     func() time.Time

	// accepted and lastAccepted (unix nanoseconds) feed Stats.
	accepted     atomic.Uint64
	lastAccepted atomic.Int64
}

// Stats reports how many webhook requests were accepted (answered 200) since
// start and when the last one was (zero before the first), for the status log.
func (h *Handler) Stats() (accepted uint64, last time.Time) {
	if ns := h.lastAccepted.Load(); ns != 0 {
		last = time.Unix(0, ns)
	}
	return h.accepted.Load(), last
}

// NewHandler returns the webhook handler. reg may be nil.
func NewHandler(cfg Config, pub Publisher, logger *slog.Logger, reg prometheus.Registerer) *Handler {
	h := &Handler{cfg: cfg, pub: pub, logger: logger, metrics: newMetrics(reg), now: time.Now}
	h.tokens = ops.NewTokens(cfg.Tokens)
	if cfg.InsecureNoAuth {
		logger.Warn("webhook authentication is OFF (--insecure-no-auth): anyone who can reach " + WebhookPath + " can write events")
	}
	return h
}

// Mount adds the webhook and tracking routes to r; other methods get 405.
func (h *Handler) Mount(r chi.Router) {
	r.Post(WebhookPath, h.serveWebhook)
	r.Post(TrackPath, h.serveTrack)
}

// readJSON is the start every webhook-like endpoint shares: authenticate
// before reading, read at most --max-body-bytes, want JSON. When ok is
// false it has answered (and dead-lettered what it read).
func (h *Handler) readJSON(w http.ResponseWriter, r *http.Request, receivedAt time.Time) (body []byte, ok bool) {
	if !h.authorized(r) {
		h.unauthorized(w, "missing or wrong webhook token: send it as X-Webhook-Token or Authorization: Bearer")
		return nil, false
	}
	body, tooLarge, err := readBounded(r, h.cfg.MaxBodyBytes)
	if err != nil {
		h.bodyUnread(w, r, err)
		return nil, false
	}
	if tooLarge {
		h.reject(w, r, receivedAt, body, true, outcomeTooLarge, problem.Details{
			Status: http.StatusRequestEntityTooLarge,
			Detail: "body larger than " + strconv.FormatInt(h.cfg.MaxBodyBytes, 10) + " bytes",
		})
		return nil, false
	}
	if ct := r.Header.Get("Content-Type"); !isJSON(ct) {
		h.reject(w, r, receivedAt, body, false, outcomeMediaType, problem.Details{
			Status: http.StatusUnsupportedMediaType,
			Detail: "Content-Type " + strconv.Quote(ct) + ": want application/json",
		})
		return nil, false
	}
	return body, true
}

func (h *Handler) serveWebhook(w http.ResponseWriter, r *http.Request) {
	receivedAt := h.now()
	body, ok := h.readJSON(w, r, receivedAt)
	if !ok {
		return
	}

	evs, err := events.DecodeDeliveryStatuses(body, receivedAt)
	if err != nil {
		p := problem.Details{Status: http.StatusBadRequest, Title: "Invalid DeliveryStatus", Detail: err.Error()}
		var fe *events.FieldError
		if errors.As(err, &fe) {
			p.Field = fe.Field
			if fe.Index >= 0 {
				p.Index = &fe.Index
			}
		}
		h.reject(w, r, receivedAt, body, false, outcomeBadRequest, p)
		return
	}

	msgs := make([]events.Message, len(evs))
	for i := range evs {
		if msgs[i], err = events.NewDeliveryMessage(&evs[i]); err != nil {
			h.unavailable(w, err) // cannot happen for a decoded event; never answer 200 for it
			return
		}
	}
	stored, err := h.publish(r.Context(), msgs)
	if err != nil {
		h.unavailable(w, err)
		return
	}
	for i := range evs {
		if stored[i] { // tyntec's retries count once
			h.metrics.countEvent(&evs[i])
		}
	}
	h.metrics.accepted.Inc()
	h.accepted.Add(1)
	h.lastAccepted.Store(receivedAt.UnixNano())
	w.Header()["Content-Type"] = jsonContentType
	_, _ = w.Write(append(strconv.AppendInt([]byte(`{"accepted":`), int64(len(evs)), 10), "}\n"...))
}

// jsonContentType is the accepted answer's Content-Type, set as the header
// map's value: Header.Set canonicalizes the key and allocates a slice per
// answer. Nothing writes into the shared slice (an Add would grow a copy).
var jsonContentType = []string{"application/json"}

// reject answers a 4xx for input that cannot be accepted, after its raw bytes
// and the reason are safely in the dead-letter subject. When even that fails the
// answer is 503: the sender retries and nothing is lost.
// truncated says body is only the first part of what was sent.
func (h *Handler) reject(w http.ResponseWriter, r *http.Request, receivedAt time.Time, body []byte, truncated bool, outcome string, p problem.Details) {
	dl := events.DeadLetter{
		Reason:      p.Detail,
		Field:       p.Field,
		Status:      p.Status,
		Source:      "ingest",
		ReceivedAt:  receivedAt.UTC(),
		RemoteAddr:  r.RemoteAddr,
		ContentType: r.Header.Get("Content-Type"),
		Truncated:   truncated,
	}
	if truncated && r.ContentLength > 0 {
		dl.BodyBytes = int(r.ContentLength)
	}
	msg, err := events.NewDeadLetterMessage(dl, body, int(h.cfg.MaxBodyBytes))
	if err == nil {
		_, err = h.publish(r.Context(), []events.Message{msg})
	}
	if err != nil {
		h.unavailable(w, err)
		return
	}
	h.logger.Info("webhook rejected", "status", p.Status, "reason", p.Detail, "remote", r.RemoteAddr)
	h.metrics.requests.WithLabelValues(outcome).Inc()
	problem.Write(w, p)
}

func (h *Handler) publish(ctx context.Context, msgs []events.Message) ([]bool, error) {
	start := time.Now()
	stored, err := h.pub.PublishNew(ctx, h.cfg.PublishTimeout, msgs...)
	if err == nil {
		h.metrics.publish.Observe(time.Since(start).Seconds())
	}
	return stored, err
}

func (h *Handler) unavailable(w http.ResponseWriter, err error) {
	h.logger.Warn("webhook not accepted: publishing failed", "err", err)
	h.metrics.requests.WithLabelValues(outcomeUnavailable).Inc()
	w.Header().Set("Retry-After", strconv.Itoa(int((h.cfg.RetryAfter+time.Second-1)/time.Second)))
	problem.Error(w, http.StatusServiceUnavailable, "events could not be stored durably; retry later")
}

// unauthorized answers 401 at once, without reading the body.
func (h *Handler) unauthorized(w http.ResponseWriter, detail string) {
	h.metrics.requests.WithLabelValues(outcomeUnauthorized).Inc()
	ops.Unauthorized(w, detail)
}

// bodyUnread answers 400 when the client went away or broke the body off
// (nothing was accepted); the answer names no internal address.
func (h *Handler) bodyUnread(w http.ResponseWriter, r *http.Request, err error) {
	h.logger.Info("request body not read", "remote", r.RemoteAddr, "err", err)
	h.metrics.requests.WithLabelValues(outcomeBadRequest).Inc()
	w.Header().Set("Connection", "close")
	problem.Error(w, http.StatusBadRequest, "the request body could not be read (cut off or too slow)")
}

// authorized accepts X-Webhook-Token: <token> or Authorization: Bearer <token>.
func (h *Handler) authorized(r *http.Request) bool {
	return h.cfg.InsecureNoAuth || h.tokens.Match(ops.Presented(r, "X-Webhook-Token"))
}

// readBounded reads at most max bytes; tooLarge reports a longer body, of which
// the first max bytes are returned (for the dead letter).
func readBounded(r *http.Request, max int64) (body []byte, tooLarge bool, err error) {
	if n := r.ContentLength; n >= 0 && n <= min(max, exactReadLimit) {
		// The server's body ends after Content-Length bytes: read them into
		// a buffer of that size, not io.ReadAll's growing one. Only up to
		// exactReadLimit: a client announcing more than it sends holds no
		// more memory than it delivered.
		body = make([]byte, n)
		_, err = io.ReadFull(r.Body, body)
		return body, false, err
	}
	if r.ContentLength > max {
		body, err = io.ReadAll(io.LimitReader(r.Body, max))
		return body, true, err
	}
	body, err = io.ReadAll(io.LimitReader(r.Body, max+1))
	if int64(len(body)) > max {
		return body[:max], true, err
	}
	return body, false, err
}

// exactReadLimit is the largest announced body read into a buffer of its
// size at once; a DeliveryStatus is ~200 bytes.
const exactReadLimit = 16 << 10

// isJSON accepts application/json, any +json type, and a missing Content-Type
// (lenient: some senders omit it for JSON bodies).
func isJSON(ct string) bool {
	if ct == "" || ct == "application/json" { // what tyntec sends: no parsing
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}
