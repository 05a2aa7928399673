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
	"github.com/otpscope/otpscope/internal/reload"
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
	cfg Config
	// tokens open tyntec's endpoint; appTokens and pushTokens the app
	// backend's and the push provider's (the webhook tokens when not given:
	// Config.AppTokens).
	tokens, appTokens, pushTokens *reload.Value[ops.Tokens]
	refused                       *ops.Refusals
	// unstored logs the requests answered 503 (sparsely: on a full disk
	// every webhook is, and the broker logs the fault itself once).
	unstored *ops.Sparse
	pub      Publisher
	logger   *slog.Logger
	metrics  *metrics
	now      func() time.Time

	// accepted and lastAccepted (unix nanoseconds) feed Stats; refusedHooks
	// counts tyntec's webhooks refused for their token, refusedAtAccept
	// what it was at the last one accepted after one, lastRefused (unix
	// nanoseconds) when the last was, for Refused.
	accepted        atomic.Uint64
	lastAccepted    atomic.Int64
	refusedHooks    atomic.Uint64
	refusedAtAccept atomic.Uint64
	lastRefused     atomic.Int64
}

// Refused is how many of tyntec's webhooks (WebhookPath) were refused for
// their token since the last one accepted, and when the last was: many,
// lately, none accepted, say tyntec's callback sends no token of
// --webhook-token.
func (h *Handler) Refused() (sinceAccepted uint64, last time.Time) {
	if ns := h.lastRefused.Load(); ns != 0 {
		last = time.Unix(0, ns)
	}
	return h.refusedHooks.Load() - h.refusedAtAccept.Load(), last
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
	h.tokens = ops.WatchTokens("webhook token", cfg.Tokens, cfg.TokensFile, logger)
	h.appTokens, h.pushTokens = h.tokens, h.tokens
	if len(cfg.AppTokens) > 0 {
		h.appTokens = ops.WatchTokens("app token", cfg.AppTokens, cfg.AppTokensFile, logger)
	}
	if len(cfg.PushTokens) > 0 {
		h.pushTokens = ops.WatchTokens("push token", cfg.PushTokens, cfg.PushTokensFile, logger)
	}
	h.refused = ops.NewRefusals(logger, "request refused for its webhook token")
	h.unstored = ops.NewSparse(logger, "requests not accepted: publishing failed", "refused")
	if cfg.InsecureNoAuth {
		logger.Warn("webhook authentication is OFF (--insecure-no-auth): anyone who can reach " + WebhookPath + " can write events")
	}
	return h
}

// Mount adds the webhook and tracking routes to r; other methods get 405.
func (h *Handler) Mount(r chi.Router) { Mount(r, h.Routes()...) }

// Routes are the webhook and tracking endpoints.
func (h *Handler) Routes() []Route {
	return []Route{{WebhookPath, h.serveWebhook}, {TrackPath, h.serveTrack}}
}

// endpoint is what reject needs to know of the endpoint it refuses a
// request for.
type endpoint struct {
	// path goes into the dead letter: replay decodes its body by it.
	path string
	// deadLetter, when set, makes the dead letter of a refused body (which
	// may hold what must not be kept raw); nil keeps the body as it came.
	deadLetter func(dl events.DeadLetter, body []byte) (events.Message, error)
}

// webhookEndpoint is the webhook endpoint, whose bodies hold no personal data.
var webhookEndpoint = endpoint{path: WebhookPath}

// readJSON is the start every webhook-like endpoint shares: authenticate
// before reading, read at most --max-body-bytes, want JSON. When ok is
// false it has answered (and dead-lettered what it read).
func (h *Handler) readJSON(x exchange, ep endpoint, receivedAt time.Time) (body []byte, ok bool) {
	if !h.authorized(ep.path, x.header) {
		h.unauthorized(x, ep.path, unauthorizedDetail)
		return nil, false
	}
	body, tooLarge, err := readBounded(x, h.cfg.MaxBodyBytes)
	if err != nil {
		h.bodyUnread(x, ep.path, err)
		return nil, false
	}
	if tooLarge {
		h.reject(x, ep, receivedAt, body, true, outcomeTooLarge, problem.Details{
			Status: http.StatusRequestEntityTooLarge,
			Detail: "body larger than " + strconv.FormatInt(h.cfg.MaxBodyBytes, 10) + " bytes",
		})
		return nil, false
	}
	if enc := x.header("Content-Encoding"); enc != "" && !strings.EqualFold(enc, "identity") {
		h.reject(x, ep, receivedAt, body, false, outcomeMediaType, problem.Details{
			Status: http.StatusUnsupportedMediaType,
			Detail: "Content-Encoding " + strconv.Quote(enc) + ": send the body uncompressed",
		})
		return nil, false
	}
	if ct := x.header("Content-Type"); !isJSON(ct) {
		h.reject(x, ep, receivedAt, body, false, outcomeMediaType, problem.Details{
			Status: http.StatusUnsupportedMediaType,
			Detail: "Content-Type " + strconv.Quote(ct) + ": want application/json",
		})
		return nil, false
	}
	return body, true
}

func (h *Handler) serveWebhook(x exchange) {
	receivedAt := h.now()
	body, ok := h.readJSON(x, webhookEndpoint, receivedAt)
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
		h.reject(x, webhookEndpoint, receivedAt, body, false, outcomeBadRequest, p)
		return
	}

	msgs := make([]events.Message, len(evs))
	for i := range evs {
		if msgs[i], err = events.NewDeliveryMessage(&evs[i]); err != nil {
			h.unavailable(x, err) // cannot happen for a decoded event; never answer 200 for it
			return
		}
	}
	stored, err := h.publish(x.context(), msgs)
	if err != nil {
		h.unavailable(x, err)
		return
	}
	for i := range evs {
		if stored[i] { // tyntec's retries count once
			h.metrics.countEvent(&evs[i])
		}
	}
	h.metrics.accepted[endpointWebhook].Inc()
	h.accepted.Add(1)
	h.lastAccepted.Store(receivedAt.UnixNano())
	if n := h.refusedHooks.Load(); n != h.refusedAtAccept.Load() { // a load, but after a refusal
		h.refusedAtAccept.Store(n)
	}
	x.answer(http.StatusOK, acceptedBody(len(evs)), "Content-Type", "application/json")
}

// acceptedBody is the answer to n events stored.
func acceptedBody(n int) []byte {
	return append(strconv.AppendInt([]byte(`{"accepted":`), int64(n), 10), "}\n"...)
}

// answerProblem answers p as problem.Write does, with header (name, value, ...) besides.
func answerProblem(x exchange, p problem.Details, header ...string) {
	x.answer(p.Status, problem.Body(p), append(header, "Content-Type", problem.ContentType, "X-Content-Type-Options", "nosniff")...)
}

// reject answers a 4xx for input that cannot be accepted, after its bytes
// (as ep keeps them) and the reason are safely in the dead-letter subject.
// When even that fails the answer is 503: the sender retries and nothing is lost.
// truncated says body is only the first part of what was sent; the rest is
// left unread and the connection closed.
func (h *Handler) reject(x exchange, ep endpoint, receivedAt time.Time, body []byte, truncated bool, outcome string, p problem.Details) {
	dl := events.DeadLetter{
		Reason:      p.Detail,
		Field:       p.Field,
		Status:      p.Status,
		Source:      "ingest",
		ReceivedAt:  receivedAt.UTC(),
		RemoteAddr:  x.remoteAddr(),
		ContentType: x.header("Content-Type"),
		Path:        ep.path,
		Truncated:   truncated,
	}
	if n := x.contentLength(); truncated && n > 0 {
		dl.BodyBytes = int(n)
	}
	var msg events.Message
	var err error
	if ep.deadLetter != nil {
		msg, err = ep.deadLetter(dl, body)
	} else {
		msg, err = events.NewDeadLetterMessage(dl, body, int(h.cfg.MaxBodyBytes))
	}
	if err == nil {
		_, err = h.publish(x.context(), []events.Message{msg})
	}
	if err != nil {
		h.unavailable(x, err)
		return
	}
	h.logger.Info("webhook rejected", "status", p.Status, "reason", p.Detail, "remote", dl.RemoteAddr)
	h.metrics.count(ep.path, outcome)
	var header []string
	if truncated {
		header = []string{"Connection", "close"}
	}
	answerProblem(x, p, header...)
}

func (h *Handler) publish(ctx context.Context, msgs []events.Message) ([]bool, error) {
	start := time.Now()
	stored, err := h.pub.PublishNew(ctx, h.cfg.PublishTimeout, msgs...)
	if err == nil {
		h.metrics.publish.Observe(time.Since(start).Seconds())
	}
	return stored, err
}

func (h *Handler) unavailable(x exchange, err error) {
	h.unstored.Warn("path", x.path(), "err", err)
	h.metrics.count(x.path(), outcomeUnavailable)
	answerProblem(x, problem.Details{Status: http.StatusServiceUnavailable, Detail: "events could not be stored durably; retry later"},
		"Retry-After", strconv.Itoa(int((h.cfg.RetryAfter+time.Second-1)/time.Second)))
}

// unauthorized answers 401 at once, without reading the body, and closes
// the connection (ops.Unauthorized says why); path is the route's (fast.go
// answers when the request's own is gone).
func (h *Handler) unauthorized(x exchange, path, detail string) {
	h.noteUnauthorized(x, path)
	answerProblem(x, problem.Details{Status: http.StatusUnauthorized, Detail: detail},
		"WWW-Authenticate", ops.BearerChallenge, "Connection", "close")
}

// noteUnauthorized counts and logs a request refused for its token.
func (h *Handler) noteUnauthorized(x exchange, path string) {
	h.metrics.count(path, outcomeUnauthorized)
	if path == WebhookPath {
		h.refusedHooks.Add(1)
		h.lastRefused.Store(time.Now().UnixNano())
	}
	h.refused.Note(path, x.remoteAddr(), x.header("X-Forwarded-For"), ops.PresentedIn(x.header, "X-Webhook-Token") != "")
}

// bodyUnread answers 400 when the client went away or broke the body off
// (nothing was accepted, nothing dead-lettered); the answer names no
// internal address. path is the route's, "" when unknown.
func (h *Handler) bodyUnread(x exchange, path string, err error) {
	h.logger.Info("request body not read", "remote", x.remoteAddr(), "err", err)
	h.metrics.count(path, outcomeBadRequest)
	answerProblem(x, problem.Details{Status: http.StatusBadRequest, Detail: bodyUnreadDetail}, "Connection", "close")
}

const bodyUnreadDetail = "the request body could not be read (cut off or too slow)"

// unauthorizedDetail is a 401's detail on every endpoint: it does not say
// whose token the endpoint wanted.
const unauthorizedDetail = "missing or wrong token: send it as X-Webhook-Token or Authorization: Bearer"

// authorized accepts X-Webhook-Token: <token> or Authorization: Bearer
// <token>, from the headers get reads, when the token is one of those
// path's sender holds.
func (h *Handler) authorized(path string, get func(string) string) bool {
	return h.cfg.InsecureNoAuth || h.tokensOf(path).Get().Match(ops.PresentedIn(get, "X-Webhook-Token"))
}

// tokensOf are the tokens path's endpoint accepts (Config.AppTokens).
func (h *Handler) tokensOf(path string) *reload.Value[ops.Tokens] {
	switch path {
	case TrackPath, SilentPath:
		return h.appTokens
	case PushPath:
		return h.pushTokens
	}
	return h.tokens
}

// readBounded reads at most max bytes; tooLarge reports a longer body, of which
// the first max bytes are returned (for the dead letter).
func readBounded(x exchange, max int64) (body []byte, tooLarge bool, err error) {
	n, r := x.contentLength(), x.body()
	if n >= 0 && n <= min(max, exactReadLimit) {
		// The server's body ends after Content-Length bytes: read them into
		// a buffer of that size, not io.ReadAll's growing one. Only up to
		// exactReadLimit: a client announcing more than it sends holds no
		// more memory than it delivered.
		body = make([]byte, n)
		_, err = io.ReadFull(r, body)
		return body, false, err
	}
	if n > max {
		body, err = io.ReadAll(io.LimitReader(r, max))
		return body, true, err
	}
	body, err = io.ReadAll(io.LimitReader(r, max+1))
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
