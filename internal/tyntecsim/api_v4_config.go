package tyntecsim

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"

	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/tyntec"
)

// whatsAppConfig is the body of the WhatsApp configuration endpoints.
type whatsAppConfig struct {
	WhatsAppAccountID string `json:"whatsAppAccountId"`
}

func (s *Sim) v4GetWhatsApp(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	id := s.whatsApp
	s.mu.Unlock()
	if id == "" {
		writeNotFound(w, "whatsapp")
		return
	}
	writeJSON(w, http.StatusOK, whatsAppConfig{WhatsAppAccountID: id})
}

// v4CreateWhatsApp sets the account's one WhatsApp configuration: 409 when
// there is one, as the seed documents.
func (s *Sim) v4CreateWhatsApp(w http.ResponseWriter, r *http.Request) {
	var req whatsAppConfig
	if !decode(w, r, &req) {
		return
	}
	if req.WhatsAppAccountID == "" {
		writeViolation(w, "whatsAppAccountId", "must not be blank")
		return
	}
	s.mu.Lock()
	exists := s.whatsApp != ""
	if !exists {
		s.whatsApp = req.WhatsAppAccountID
	}
	s.mu.Unlock()
	if exists {
		writeJSON(w, http.StatusConflict, v4Problem{Status: http.StatusConflict, Title: "Conflict", Detail: "WhatsApp configuration already exist."})
		return
	}
	w.WriteHeader(http.StatusCreated)
}

// flexBool is a boolean that also reads "true"/"false": NewProfileDTO types
// alphanumeric as a string, ProfileDTO as a boolean.
type flexBool bool

func (b *flexBool) UnmarshalJSON(data []byte) error {
	var s string
	if json.Unmarshal(data, &s) == nil {
		v, err := strconv.ParseBool(s)
		*b = flexBool(v)
		return err
	}
	var v bool
	err := json.Unmarshal(data, &v)
	*b = flexBool(v)
	return err
}

// newProfile is NewProfileDTO.
type newProfile struct {
	Alphanumeric  flexBool                `json:"alphanumeric"`
	Attempts      int                     `json:"attempts"`
	Channels      []tyntec.ProfileChannel `json:"channels"`
	Name          string                  `json:"name"`
	OTPCodeLength int                     `json:"otpCodeLength"`
}

// v4CreateProfile creates a profile. A profile with a WHATSAPP channel
// needs the account's WhatsApp configuration: 403 "Missing WhatsApp
// Configuration" otherwise, as the seed documents.
func (s *Sim) v4CreateProfile(w http.ResponseWriter, r *http.Request) {
	var req newProfile
	if !decode(w, r, &req) {
		return
	}
	if len(req.Channels) == 0 {
		writeViolation(w, "channels", "must not be empty")
		return
	}
	for _, ch := range req.Channels {
		if _, ok := s.cfg.Channels[ch.Type]; !ok || len(ch.Templates) == 0 {
			writeViolation(w, "channels", "unknown channel type or no templates")
			return
		}
	}
	p := tyntec.Profile{Name: req.Name, Alphanumeric: bool(req.Alphanumeric), Attempts: req.Attempts, OTPCodeLength: req.OTPCodeLength, Channels: req.Channels}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.whatsApp == "" && hasChannel(p, events.ChannelWhatsApp) {
		writeJSON(w, http.StatusForbidden, v4Problem{Status: http.StatusForbidden, Title: "Missing WhatsApp Configuration", Detail: "Account is not allowed to use WhatsApp functionality"})
		return
	}
	p.ID = s.newID()
	s.profiles = append(s.profiles, p)
	writeJSON(w, http.StatusCreated, tyntec.CreatedID{ID: p.ID})
}

func (s *Sim) v4ListTemplates(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	out := slices.Clone(s.templates)
	s.mu.Unlock()
	if out == nil {
		out = []Template{}
	}
	writeJSON(w, http.StatusOK, out)
}
