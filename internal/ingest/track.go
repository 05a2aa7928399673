package ingest

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/problem"
)

// TrackPath is where upstream services announce OTPs to the poller (notably v1
// OTPs, which have no webhooks) or report a verification outcome.
const TrackPath = "/otps/track"

// serveTrack publishes a registration to tyntec.2fa.track, with the webhook's
// authentication and durability: 200 only after the PubAck.
func (h *Handler) serveTrack(w http.ResponseWriter, r *http.Request) {
	if !h.authorized(r) {
		h.unauthorized(w, "missing or wrong token")
		return
	}
	body, tooLarge, err := readBounded(r, h.cfg.MaxBodyBytes)
	if err != nil || tooLarge {
		problem.Error(w, http.StatusRequestEntityTooLarge, "body too large or unreadable")
		return
	}
	tr, err := events.DecodeTrack(body, h.now())
	if err != nil {
		p := problem.Details{Status: http.StatusBadRequest, Title: "Invalid tracking request", Detail: err.Error()}
		var fe *events.FieldError
		if errors.As(err, &fe) {
			p.Field = fe.Field
		}
		problem.Write(w, p)
		return
	}
	msg, err := events.NewTrackMessage(&tr)
	if err == nil {
		_, err = h.publish(r.Context(), []events.Message{msg})
	}
	if err != nil {
		h.unavailable(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(tr)
}
