package ingest

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/problem"
)

// TrackPath is where upstream services announce OTPs to the poller (notably v1
// OTPs, which have no webhooks) or report a verification outcome.
const TrackPath = "/otps/track"

// serveTrack publishes a registration to tyntec.2fa.track, with the webhook's
// authentication and durability: 200 only after the PubAck.
func (h *Handler) serveTrack(x exchange) {
	if !h.authorized(TrackPath, x.header) {
		h.unauthorized(x, TrackPath, unauthorizedDetail)
		return
	}
	// As the other endpoints but the Content-Type, which is not asked
	// for: upstream services have tracked OTPs without one since the first
	// release (a refused request is no dead letter: its sender is told).
	body, tooLarge, err := readBounded(x, h.cfg.MaxBodyBytes)
	if err != nil {
		h.bodyUnread(x, TrackPath, err)
		return
	}
	if tooLarge {
		h.metrics.count(TrackPath, outcomeTooLarge)
		answerProblem(x, problem.Details{Status: http.StatusRequestEntityTooLarge, Detail: "body larger than " + strconv.FormatInt(h.cfg.MaxBodyBytes, 10) + " bytes"}, "Connection", "close")
		return
	}
	tr, err := events.DecodeTrack(body, h.now())
	if err != nil {
		p := problem.Details{Status: http.StatusBadRequest, Title: "Invalid tracking request", Detail: err.Error()}
		var fe *events.FieldError
		if errors.As(err, &fe) {
			p.Field = fe.Field
		}
		h.metrics.count(TrackPath, outcomeBadRequest)
		answerProblem(x, p)
		return
	}
	msg, err := events.NewTrackMessage(&tr)
	if err == nil {
		_, err = h.publish(x.context(), []events.Message{msg})
	}
	if err != nil {
		h.unavailable(x, err)
		return
	}
	answer, err := json.Marshal(tr)
	if err != nil { // a decoded request always encodes; never 200 without its echo
		h.unavailable(x, err)
		return
	}
	h.metrics.accepted[endpointTrack].Inc()
	x.answer(http.StatusOK, append(answer, '\n'), "Content-Type", "application/json")
}
