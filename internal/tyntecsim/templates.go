package tyntecsim

import (
	"slices"
	"strings"
	"time"

	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/tyntec"
)

// Template is a v4 message template (GET /2fa/v4/templates): what a
// profile's channel entry names, and where an OTP's validity comes from.
type Template struct {
	ID      string         `json:"id,omitempty"`
	Name    string         `json:"name"`
	Channel events.Channel `json:"channel"`
	// Language is one of tyntec's language codes (en_US, es, ...).
	Language string `json:"language"`
	// CodeExpirationTime is the minutes an OTP sent with it is valid.
	CodeExpirationTime int    `json:"codeExpirationTime"`
	Message            string `json:"message,omitempty"`
}

// defaultLanguage is the language of an OTP request without languageCode.
// Assumed: no seed says which template tyntec picks then; the seeds'
// examples all use en_US.
const defaultLanguage = "en_US"

// languageCodes are the languageCode values tyntec's v4 OpenAPI enumerates
// (NewOTPRequest.languageCode).
var languageCodes = []string{
	"ar", "bg", "ca", "zh_CN", "zh_HK", "zh_TW", "hr", "cs", "da", "nl", "en", "en_GB", "en_US",
	"fi", "fr", "de", "el", "he", "hu", "id", "it", "ja", "ko", "ms", "nb", "pl", "pt_BR", "pt_PT",
	"ro", "ru", "sk", "sl", "es", "es_ES", "es_MX", "sv", "ta", "te", "th", "tr", "vi",
}

func validLanguage(code string) bool { return slices.Contains(languageCodes, code) }

func hasChannel(p tyntec.Profile, ch events.Channel) bool {
	return slices.ContainsFunc(p.Channels, func(c tyntec.ProfileChannel) bool { return c.Type == ch && len(c.Templates) > 0 })
}

// profileTemplate returns the template profile p names for channel ch in
// language lang, else its first template for ch (assumed: the seeds do not
// say what tyntec does when the language has no template). Callers hold s.mu.
func (s *Sim) profileTemplate(p tyntec.Profile, ch events.Channel, lang string) (Template, bool) {
	i := slices.IndexFunc(p.Channels, func(c tyntec.ProfileChannel) bool { return c.Type == ch })
	if i < 0 || len(p.Channels[i].Templates) == 0 {
		return Template{}, false
	}
	refs := p.Channels[i].Templates
	ref := refs[0]
	if j := slices.IndexFunc(refs, func(t tyntec.Template) bool { return t.LanguageCode == lang }); j >= 0 {
		ref = refs[j]
	}
	k := slices.IndexFunc(s.templates, func(t Template) bool { return t.Name == ref.Name })
	if k < 0 {
		// A profile may name a template the simulator was not given: it is
		// usable, with the built-in validity.
		return Template{Name: ref.Name, Channel: ch, Language: ref.LanguageCode, CodeExpirationTime: int(DefaultCodeExpiration / time.Minute)}, true
	}
	return s.templates[k], true
}

// usableChannels returns the priority's channels, in order, that profile p
// can send on: it has a template for the channel, and WhatsApp needs the
// account's WhatsApp configuration. Callers hold s.mu.
func (s *Sim) usableChannels(p tyntec.Profile, prio tyntec.Priority) []events.Channel {
	var out []events.Channel
	for _, ch := range sortedChannels(prio) {
		if !hasChannel(p, ch) || (ch == events.ChannelWhatsApp && s.whatsApp == "") {
			continue
		}
		out = append(out, ch)
	}
	return out
}

const (
	digits       = "0123456789"
	alphanumeric = "0123456789abcdefghijklmnopqrstuvwxyz"
)

// codeAlphabet is what generated codes are made of: digits, or lower-case
// letters and digits for an alphanumeric profile or v1 alphaNumeric=true
// ("a lowercase alphanumeric PIN", tyntec's v1 documentation).
func codeAlphabet(alnum bool) string {
	if alnum {
		return alphanumeric
	}
	return digits
}

// wrongCode returns a code of the same length that differs from code.
func wrongCode(code string) string {
	b := []byte(code)
	alpha := digits
	if strings.IndexFunc(code, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		alpha = alphanumeric
	}
	i := strings.IndexByte(alpha, b[0])
	b[0] = alpha[(i+1)%len(alpha)]
	return string(b)
}
