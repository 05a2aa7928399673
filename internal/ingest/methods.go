package ingest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/problem"
)

// The endpoints of the verification methods besides the OTP (issue 14).
const (
	// SilentPath is where an app's backend reports silent-auth attempts
	// (tyntec's Silent Authentication has no webhook: only the app sees the
	// outcome).
	SilentPath = "/silent-auth/outcomes"
	// PushPath is the push-approval provider's status callback.
	PushPath = "/webhooks/push"
)

// Methods serves the method endpoints with the webhook endpoint's
// machinery: its tokens, body limit, dead letters, problem answers,
// publishing (2xx only after every PubAck, 503 + Retry-After otherwise) and
// request metrics.
type Methods struct {
	h      *Handler
	hash   func(string) string
	events *prometheus.CounterVec
	// silent and push are the endpoints as their refusals are
	// dead-lettered: neither keeps a body as it came.
	silent, push endpoint
}

// NewMethods returns the method endpoints served beside h; key is the
// secret of the keyed hash that replaces loginHint and mobileId (PseudonymKey).
func NewMethods(h *Handler, key []byte, reg prometheus.Registerer) *Methods {
	m := &Methods{h: h, hash: events.KeyedHash(key)}
	// A silent-auth body keeps loginHint and mobileId as pseudonyms
	// (events.ScrubSilentBody), which replay stores as ingest would have;
	// a client posting "pseudonym:…" itself is not trusted: ingest hashes
	// that string like any other, only replay reads the form. A push
	// callback keeps the members the decoder reads, never the tfaId,
	// message or details ingest does not store (events.ScrubPushBody).
	m.silent = endpoint{SilentPath, m.scrubbedDeadLetter(func(b []byte) ([]byte, bool) { return events.ScrubSilentBody(b, m.hash) },
		"a loginHint or mobileId in it is not a string", "a phone number")}
	m.push = endpoint{PushPath, m.scrubbedDeadLetter(events.ScrubPushBody, "its hiddenDetails is not an object", "what identifies a person")}
	m.events = promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
		Name: "otpscope_ingest_method_events_total",
		Help: "Silent-auth outcomes (channel SILENT, by result) and push approval statuses (channel PUSH, by status) stored, OTHER for values otpscope does not know; duplicates the stream dropped are not counted.",
	}, []string{"channel", "result"})
	return m
}

// Routes are the method endpoints.
func (m *Methods) Routes() []Route {
	return []Route{{SilentPath, m.serveSilent}, {PushPath, m.servePush}}
}

func (m *Methods) serveSilent(x exchange) {
	// 202: the outcome is stored durably; its figures follow.
	m.serve(x, m.silent, http.StatusAccepted, "Invalid silent-auth outcome", func(body []byte, at time.Time) ([]events.Message, []string, error) {
		outs, err := events.DecodeSilentOutcomes(body, at, m.hash)
		if err != nil {
			return nil, nil, err
		}
		msgs, labels := make([]events.Message, len(outs)), make([]string, len(outs))
		for i := range outs {
			msgs[i], err = events.NewSilentOutcomeMessage(&outs[i])
			labels[i] = label(outs[i].Result, outs[i].UnknownResult)
		}
		return msgs, labels, err
	}, events.ChannelSilent)
}

func (m *Methods) servePush(x exchange) {
	m.serve(x, m.push, http.StatusOK, "Invalid push approval request", func(body []byte, at time.Time) ([]events.Message, []string, error) {
		ps, err := events.DecodePushEvents(body, at)
		if err != nil {
			return nil, nil, err
		}
		msgs, labels := make([]events.Message, len(ps)), make([]string, len(ps))
		for i := range ps {
			msgs[i], err = events.NewPushMessage(&ps[i])
			labels[i] = label(ps[i].Status, ps[i].UnknownStatus)
		}
		return msgs, labels, err
	}, events.ChannelPush)
}

// scrubbedDeadLetter makes the dead letter of a refused body that must not
// be kept as it came: what scrub keeps of it, else (scrub cannot: cut off,
// not JSON objects, or JSON objects with a member scrub cannot take, which
// unscrubbable says) no body at all, only its length, and a reason saying
// why it was withheld and what it may hold.
func (m *Methods) scrubbedDeadLetter(scrub func([]byte) ([]byte, bool), unscrubbable, mayHold string) func(events.DeadLetter, []byte) (events.Message, error) {
	return func(dl events.DeadLetter, body []byte) (events.Message, error) {
		if kept, ok := scrub(body); ok {
			// Pseudonyms are longer than most phone numbers: never let
			// them be what cuts a body that was within --max-body-bytes.
			return events.NewDeadLetterMessage(dl, kept, max(len(kept), int(m.h.cfg.MaxBodyBytes)))
		}
		why := "not JSON objects as the endpoint takes"
		switch {
		case dl.Truncated:
			why = "cut off at --max-body-bytes"
		case jsonObjects(body):
			why = unscrubbable
		}
		dl.Reason += "; body withheld: " + why + ", so it may hold " + mayHold
		return events.NewWithheldDeadLetterMessage(dl, body, m.hash(string(body)))
	}
}

// jsonObjects reports whether body is a JSON object or an array of them,
// the shape the method endpoints take.
func jsonObjects(body []byte) bool {
	body = bytes.TrimSpace(body)
	if !json.Valid(body) || len(body) == 0 {
		return false
	}
	if body[0] == '{' {
		return true
	}
	var items []json.RawMessage
	if body[0] != '[' || json.Unmarshal(body, &items) != nil {
		return false
	}
	for _, it := range items {
		if it[0] != '{' {
			return false
		}
	}
	return true
}

func label(v string, unknown bool) string {
	if unknown {
		return "OTHER"
	}
	return v
}

// decodeFunc turns a body into the messages to publish, with each one's
// metric label; an invalid body is an error (a *events.FieldError names
// where).
type decodeFunc func(body []byte, receivedAt time.Time) (msgs []events.Message, labels []string, err error)

// serve is the webhook endpoint's pipeline (serveWebhook) for another body:
// readJSON, decode (invalid: a dead letter and a problem), publish, and answer status
// with {"accepted": n} only after JetStream acknowledged every message.
func (m *Methods) serve(x exchange, ep endpoint, status int, title string, decode decodeFunc, ch events.Channel) {
	h := m.h
	receivedAt := h.now()
	body, ok := h.readJSON(x, ep, receivedAt)
	if !ok {
		return
	}
	msgs, labels, err := decode(body, receivedAt)
	if err != nil {
		p := problem.Details{Status: http.StatusBadRequest, Title: title, Detail: err.Error()}
		var fe *events.FieldError
		if errors.As(err, &fe) {
			p.Field = fe.Field
			if fe.Index >= 0 {
				p.Index = &fe.Index
			}
		} else {
			p.Status = http.StatusInternalServerError // a decoded record that cannot be encoded: a bug
		}
		h.reject(x, ep, receivedAt, body, false, outcomeBadRequest, p)
		return
	}
	stored, err := h.publish(x.context(), msgs)
	if err != nil {
		h.unavailable(x, err)
		return
	}
	for i, ok := range stored {
		if ok { // retries count once
			m.events.WithLabelValues(string(ch), labels[i]).Inc()
		}
	}
	h.metrics.accepted[endpointOf(ep.path)].Inc()
	x.answer(status, acceptedBody(len(msgs)), "Content-Type", "application/json")
}

// PseudonymKeyFile is where PseudonymKey keeps a generated key, under the
// data directory.
const PseudonymKeyFile = "pseudonym.key"

// PseudonymKey is the secret of the keyed hash (HMAC-SHA256) that replaces
// loginHint and mobileId before anything is published: cfg's
// --pseudonym-key when set, else the key in dataDir/pseudonym.key, made
// (32 random bytes, hex, readable by its owner only) on the first start.
// Replicas of ingest must share one key, or one phone number gets two
// pseudonyms: on an external NATS server they share one through it
// (SharedPseudonymKey), unless --pseudonym-key sets it on each.
func PseudonymKey(cfg Config, dataDir string) ([]byte, error) {
	if cfg.PseudonymKey != "" {
		return []byte(cfg.PseudonymKey), nil
	}
	if key, err := FilePseudonymKey(dataDir); key != nil || err != nil {
		return key, err
	}
	key := newPseudonymKey()
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("pseudonym key: %w", err)
	}
	// Write a private file, then link it into place: two processes starting
	// on one data directory both end up with the first one's whole key.
	tmp, err := os.CreateTemp(dataDir, PseudonymKeyFile+".*")
	if err != nil {
		return nil, fmt.Errorf("pseudonym key: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(key + "\n") // CreateTemp's mode is 0600
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(tmp.Name(), filepath.Join(dataDir, PseudonymKeyFile))
	}
	if errors.Is(err, fs.ErrExist) {
		return PseudonymKey(cfg, dataDir)
	}
	if err != nil {
		return nil, fmt.Errorf("pseudonym key: %w", err)
	}
	return []byte(key), nil
}

// FilePseudonymKey is the key in dataDir's PseudonymKeyFile; nil when
// there is none.
func FilePseudonymKey(dataDir string) ([]byte, error) {
	path := filepath.Join(dataDir, PseudonymKeyFile)
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("pseudonym key: %w", err)
	}
	key := strings.TrimSpace(string(data))
	if len(key) < minPseudonymKey {
		return nil, fmt.Errorf("pseudonym key %s: %d characters; want at least %d", path, len(key), minPseudonymKey)
	}
	return []byte(key), nil
}

// newPseudonymKey is a fresh key: 32 random bytes, hex.
func newPseudonymKey() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// minPseudonymKey is the shortest key accepted.
const minPseudonymKey = 16
