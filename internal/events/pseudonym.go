package events

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// PseudonymPrefix marks a keyed hash standing in for a loginHint or
// mobileId in a dead letter's body: "pseudonym:<hex>".
const PseudonymPrefix = "pseudonym:"

// Pseudonym is hash (a KeyedHash value) in the form ScrubSilentBody writes;
// "" for "" (no value, nothing to hide).
func Pseudonym(hash string) string {
	if hash == "" {
		return ""
	}
	return PseudonymPrefix + hash
}

// ScrubSilentBody is what a dead letter may keep of a POST
// /silent-auth/outcomes body: the body with each loginHint and mobileId
// replaced by Pseudonym(hash(value)) — the hash ingest would have stored —
// so that no phone number reaches NATS or ClickHouse, and a replay
// (DecodeScrubbedSilentOutcomes) stores what ingest would have.
//
// The rule: the body must be JSON holding an object or an array of objects
// (what the endpoint accepts). In it, at any depth, every member whose key
// equals loginHint or mobileId ignoring case (encoding/json, which the
// decoder reads them with, matches keys so) must be a string, taken without
// surrounding spaces as the decoder takes it, or null. Everything else is
// kept as it was: key order and repeated keys (the decoder takes the last),
// numbers as written, strings as the same values. ok is false for any
// other body — not JSON, cut off, a bare value, or such a member holding a
// number, an object… — which may hold a phone number and must not be kept.
func ScrubSilentBody(body []byte, hash func(string) string) (scrubbed []byte, ok bool) {
	if !json.Valid(body) {
		return nil, false
	}
	s := scrubber{dec: json.NewDecoder(bytes.NewReader(body)), hash: hash}
	s.dec.UseNumber()
	s.enc = json.NewEncoder(&s.out)
	s.enc.SetEscapeHTML(false)
	tok, err := s.dec.Token()
	switch {
	case err != nil:
		return nil, false
	case tok == json.Delim('{'):
		err = s.object()
	case tok == json.Delim('['):
		err = s.array(true)
	default:
		return nil, false
	}
	if err != nil {
		return nil, false
	}
	return s.out.Bytes(), true
}

// errWithhold: the body holds an identifier ScrubSilentBody cannot replace.
var errWithhold = errors.New("an identifier that is not a string")

type scrubber struct {
	dec  *json.Decoder
	out  bytes.Buffer
	enc  *json.Encoder
	hash func(string) string
}

// value copies the value that begins with tok.
func (s *scrubber) value(tok json.Token) error {
	switch t := tok.(type) {
	case json.Delim:
		if t == '{' {
			return s.object()
		}
		return s.array(false)
	case string:
		s.str(t)
	case json.Number:
		s.out.WriteString(t.String())
	case bool:
		s.out.WriteString(strconv.FormatBool(t))
	case nil:
		s.out.WriteString("null")
	}
	return nil
}

// object copies the members of the object after its '{'.
func (s *scrubber) object() error {
	s.out.WriteByte('{')
	for i := 0; s.dec.More(); i++ {
		k, err := s.dec.Token()
		if err != nil {
			return err
		}
		v, err := s.dec.Token()
		if err != nil {
			return err
		}
		if i > 0 {
			s.out.WriteByte(',')
		}
		key, _ := k.(string)
		s.str(key)
		s.out.WriteByte(':')
		if !strings.EqualFold(key, "loginHint") && !strings.EqualFold(key, "mobileId") {
			if err := s.value(v); err != nil {
				return err
			}
			continue
		}
		switch v := v.(type) {
		case nil:
			s.out.WriteString("null")
		case string:
			s.str(Pseudonym(s.hash(strings.TrimSpace(v))))
		default:
			return errWithhold
		}
	}
	s.out.WriteByte('}')
	_, err := s.dec.Token()
	return err
}

// array copies the elements of the array after its '['; objects: each
// must be an object.
func (s *scrubber) array(objects bool) error {
	s.out.WriteByte('[')
	for i := 0; s.dec.More(); i++ {
		tok, err := s.dec.Token()
		if err != nil {
			return err
		}
		if objects && tok != json.Delim('{') {
			return errWithhold
		}
		if i > 0 {
			s.out.WriteByte(',')
		}
		if err := s.value(tok); err != nil {
			return err
		}
	}
	s.out.WriteByte(']')
	_, err := s.dec.Token()
	return err
}

// str writes v as a JSON string.
func (s *scrubber) str(v string) {
	_ = s.enc.Encode(v) // a string always encodes
	s.out.Truncate(s.out.Len() - 1)
}

// DecodeScrubbedSilentOutcomes is DecodeSilentOutcomes for a body
// ScrubSilentBody made: each loginHint and mobileId must be a Pseudonym,
// whose hash is taken as it is. A raw value is refused (a *FieldError on
// it): only ingest holds the key to hash it. Replay uses this; ingest never
// does, so a client sending "pseudonym:…" itself gets it hashed like any
// value.
func DecodeScrubbedSilentOutcomes(body []byte, receivedAt time.Time) ([]SilentOutcome, error) {
	return decodeEach(body, func(raw json.RawMessage) (SilentOutcome, *FieldError) {
		return decodeSilent(raw, receivedAt.UTC(), fromPseudonym)
	})
}

// fromPseudonym is the hash in a Pseudonym.
func fromPseudonym(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	h, ok := strings.CutPrefix(v, PseudonymPrefix)
	if !ok || len(h) != 2*sha256.Size || strings.Trim(h, "0123456789abcdef") != "" {
		return "", fmt.Errorf("%w: not a pseudonym; a raw value is never replayed", ErrMalformed)
	}
	return h, nil
}
