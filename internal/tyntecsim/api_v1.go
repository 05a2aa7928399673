package tyntecsim

import (
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/tyntec"
)

// Defaults of the simulated v1 default application: attempts, expire and
// pinLength are those of tyntec's v1 example application.
const (
	v1AccountID     = "tyntecsim-account"
	v1ApplicationID = "default"
	v1Attempts      = 3
	v1PinLength     = 4
	v1Expire        = 300 * time.Second
)

// v1 error codes. tyntec's ErrorResponse has a code but the seeds list none,
// so these are assumed, and prefixed "sim-" to say so.
const (
	v1CodeNumber    = "sim-1001"
	v1CodeVia       = "sim-1002"
	v1CodeOTPCode   = "sim-1003"
	v1CodeBadArg    = "sim-1004"
	v1CodePinLength = "sim-1006"
	v1CodeNotValid  = "sim-1401"
	v1CodeNotFound  = "sim-1404"
)

var e164 = regexp.MustCompile(`^\+?[1-9][0-9]{6,14}$`)

// v1View is an OTP as the v1 API shows it; v1 knows no WRONG_CODE, an OTP
// with wrong attempts left is still ACTIVE. Callers hold s.mu.
func (s *Sim) v1View(o *otp) tyntec.V1OTP {
	o.refresh(s.clock.now())
	status := o.status
	if status == events.OTPWrongCode {
		status = events.OTPActive
	}
	app := o.applicationID
	if app == "" {
		app = v1ApplicationID
	}
	return tyntec.V1OTP{
		AccountID: v1AccountID, ApplicationID: app, AttemptCount: o.attemptCount,
		Created: o.created.UnixMilli(), Expire: o.expire.UnixMilli(), Number: o.to, OTPID: o.id,
		OTPStatus: status, ReferenceID: o.referenceID,
		TimestampCreated: formatV1Time(o.created), TimestampExpire: formatV1Time(o.expire),
	}
}

// v1Channel maps via to a channel: AUTO sends SMS (the simulator treats every
// number as mobile).
func v1Channel(via string) (events.Channel, bool) {
	switch strings.ToUpper(via) {
	case "", tyntec.ViaAuto, tyntec.ViaSMS:
		return events.ChannelSMS, true
	case tyntec.ViaVoice:
		return events.ChannelVoice, true
	}
	return "", false
}

func (s *Sim) v1Error(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, v1Error{Code: code, Message: msg, Timestamp: time.Now().UnixMilli()})
}

func (s *Sim) v1SendOTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	number := q.Get("number")
	if !e164.MatchString(number) {
		s.v1Error(w, http.StatusBadRequest, v1CodeNumber, "number must be in E.164 format")
		return
	}
	ch, ok := v1Channel(q.Get("via"))
	if !ok {
		s.v1Error(w, http.StatusBadRequest, v1CodeVia, "via must be AUTO, SMS or VOICE")
		return
	}
	pin := v1PinLength
	if v := q.Get("pinLength"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 4 || n > 11 {
			s.v1Error(w, http.StatusBadRequest, v1CodePinLength, "PIN length should be between 4 to 10 digits.")
			return
		}
		pin = n
	}
	var alnum bool
	if v := q.Get("alphaNumeric"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			s.v1Error(w, http.StatusBadRequest, v1CodeBadArg, "alphaNumeric must be true or false")
			return
		}
		alnum = b
	}
	s.mu.Lock()
	o := s.createOTP(newOTP{
		api: APIv1, to: number, code: q.Get("otpCode"), channels: []events.Channel{ch},
		allowed: v1Attempts, codeLen: pin, alnum: alnum, expiry: v1Expire,
		appID: q.Get("applicationId"), refID: q.Get("referenceId"),
	})
	v := s.v1View(o)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, v)
}

func (s *Sim) v1ListOTPs(w http.ResponseWriter, r *http.Request) {
	number := r.URL.Query().Get("number")
	if number == "" {
		s.v1Error(w, http.StatusBadRequest, v1CodeNumber, "number is required")
		return
	}
	s.mu.Lock()
	var out []tyntec.V1OTP
	for _, o := range s.otps {
		if !o.deleted && o.to == number && s.serves(o, APIv1) {
			out = append(out, s.v1View(o))
		}
	}
	s.mu.Unlock()
	if len(out) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// withOTP runs fn on a live OTP under s.mu, or answers 404.
func (s *Sim) withOTP(w http.ResponseWriter, r *http.Request, fn func(o *otp)) {
	id := chi.URLParam(r, "id")
	if !s.withLive(id, APIv1, fn) {
		s.v1Error(w, http.StatusNotFound, v1CodeNotFound, "OTP "+id+" was not found.")
	}
}

func (s *Sim) v1GetOTP(w http.ResponseWriter, r *http.Request) {
	s.withOTP(w, r, func(o *otp) { writeJSON(w, http.StatusOK, s.v1View(o)) })
}

func (s *Sim) v1DeleteOTP(w http.ResponseWriter, r *http.Request) {
	s.withOTP(w, r, func(o *otp) {
		o.deleted = true
		writeJSON(w, http.StatusOK, s.v1View(o))
	})
}

func (s *Sim) v1Events(w http.ResponseWriter, r *http.Request) {
	s.withOTP(w, r, func(o *otp) {
		out := slices.Clone(o.events)
		if out == nil {
			out = []tyntec.V1Event{}
		}
		writeJSON(w, http.StatusOK, out)
	})
}

// v1Resend re-sends the same code on the channel asked for. The re-send is an
// extra attempt with no fallback of its own.
func (s *Sim) v1Resend(w http.ResponseWriter, r *http.Request) {
	via := strings.ToUpper(r.URL.Query().Get("via"))
	if via == "" {
		via = tyntec.ViaAuto
	}
	ch, ok := v1Channel(via)
	if !ok {
		s.v1Error(w, http.StatusBadRequest, v1CodeVia, "via must be AUTO, SMS or VOICE")
		return
	}
	s.withOTP(w, r, func(o *otp) {
		now := s.clock.now()
		if !o.open(now) {
			s.v1Error(w, http.StatusUnauthorized, v1CodeNotValid, "OTP is not valid anymore.")
			return
		}
		s.resend(o, via, ch, now)
		writeJSON(w, http.StatusOK, s.v1View(o))
	})
}

// v1Check answers as tyntec documents: 202 valid, 401 wrong code, 403 too
// many attempts, 410 no longer active; each with the OTP status.
func (s *Sim) v1Check(w http.ResponseWriter, r *http.Request) {
	code := r.URL.Query().Get("otpCode")
	if code == "" {
		s.v1Error(w, http.StatusBadRequest, v1CodeOTPCode, "otpCode is required")
		return
	}
	s.withOTP(w, r, func(o *otp) {
		now := s.clock.now()
		wasOpen := o.open(now)
		status := http.StatusAccepted
		switch s.check(o, code, APIv1, now) {
		case events.OTPWrongCode:
			status = http.StatusUnauthorized
		case events.OTPTooManyAttempts:
			status = http.StatusForbidden // this check used up the last attempt
			if !wasOpen {
				status = http.StatusGone
			}
		case events.OTPExpired, events.OTPAlreadyReported:
			status = http.StatusGone
		}
		writeJSON(w, status, s.v1View(o))
	})
}
