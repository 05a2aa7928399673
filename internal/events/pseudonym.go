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
	return scrubber{hash: hash}.scrub(body)
}

// ScrubPushBody is what a dead letter may keep of a POST /webhooks/push
// body: the members the push decoder reads — uuid, status, createdAt,
// updatedAt, secondsToExpire and, of hiddenDetails, its correlationId
// (keys matched ignoring case, as encoding/json does) — and nothing else:
// the tfaId, message, details and other hidden details that ingest never
// stores (they may identify a person) must not reach a dead letter either.
// A replay decodes the kept body as ingest would have the whole. ok is
// false for a body that is not JSON holding an object or an array of
// objects.
func ScrubPushBody(body []byte) (scrubbed []byte, ok bool) {
	// hiddenDetails other than an object (a string, a list) would be kept
	// whole: withheld instead.
	return scrubber{keep: pushMember, objects: func(key string) bool { return strings.EqualFold(key, "hiddenDetails") }}.scrub(body)
}

// pushMember says whether the member key of the object under parent
// (top level: "") is one the push decoder reads.
func pushMember(parent, key string) bool {
	switch {
	case parent == "":
		for _, k := range [...]string{"uuid", "status", "createdAt", "updatedAt", "secondsToExpire", "hiddenDetails"} {
			if strings.EqualFold(key, k) {
				return true
			}
		}
	case strings.EqualFold(parent, "hiddenDetails"):
		return strings.EqualFold(key, "correlationId")
	}
	return false
}

// scrub copies body through s, or reports that it cannot.
func (s scrubber) scrub(body []byte) (scrubbed []byte, ok bool) {
	if !json.Valid(body) {
		return nil, false
	}
	s.dec = json.NewDecoder(bytes.NewReader(body))
	s.dec.UseNumber()
	s.enc = json.NewEncoder(&s.out)
	s.enc.SetEscapeHTML(false)
	tok, err := s.dec.Token()
	switch {
	case err != nil:
		return nil, false
	case tok == json.Delim('{'):
		err = s.object("")
	case tok == json.Delim('['):
		err = s.array("", true)
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

// scrubber copies a JSON body member by member: with hash, replacing each
// loginHint and mobileId by its Pseudonym; with keep, leaving out each
// member keep refuses, and withholding the body when a member objects
// names holds anything but an object or null.
type scrubber struct {
	dec     *json.Decoder
	out     bytes.Buffer
	enc     *json.Encoder
	hash    func(string) string
	keep    func(parent, key string) bool
	objects func(key string) bool
}

// value copies the value that begins with tok, a member of parent's.
func (s *scrubber) value(parent string, tok json.Token) error {
	switch t := tok.(type) {
	case json.Delim:
		if t == '{' {
			return s.object(parent)
		}
		return s.array(parent, false)
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

// object copies the members of the object after its '{', the value of
// parent's member (top level: "").
func (s *scrubber) object(parent string) error {
	s.out.WriteByte('{')
	written := 0
	for s.dec.More() {
		k, err := s.dec.Token()
		if err != nil {
			return err
		}
		v, err := s.dec.Token()
		if err != nil {
			return err
		}
		key, _ := k.(string)
		if s.keep != nil && !s.keep(parent, key) {
			if err := s.skip(v); err != nil {
				return err
			}
			continue
		}
		if s.objects != nil && s.objects(key) && v != nil && v != json.Delim('{') {
			return errWithhold
		}
		if written > 0 {
			s.out.WriteByte(',')
		}
		written++
		s.str(key)
		s.out.WriteByte(':')
		if s.hash == nil || (!strings.EqualFold(key, "loginHint") && !strings.EqualFold(key, "mobileId")) {
			if err := s.value(key, v); err != nil {
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

// skip reads past the value that begins with tok.
func (s *scrubber) skip(tok json.Token) error {
	if d, ok := tok.(json.Delim); !ok || (d != '{' && d != '[') {
		return nil
	}
	for depth := 1; depth > 0; {
		t, err := s.dec.Token()
		if err != nil {
			return err
		}
		switch t {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
	return nil
}

// array copies the elements of the array after its '[', the value of
// parent's member; objects: each must be an object.
func (s *scrubber) array(parent string, objects bool) error {
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
		if err := s.value(parent, tok); err != nil {
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
