package store

import (
	"bytes"
	"time"
	"unicode/utf8"

	"github.com/otpscope/otpscope/internal/events"
)

// Delivery events are most of what the sink decodes, and encoding/json
// (reflection, a validating pre-scan, case-insensitive key matching, a
// string per field) was the largest part of the sink's own CPU time.
// decodeDelivery reads the shape otpscope's publishers write — an object
// with the DeliveryStatus keys spelt exactly, each at most once, strings
// without escapes, valid UTF-8 — directly, and hands anything else to
// encoding/json, so that every input decodes to what encoding/json makes
// of it (FuzzDecodeDelivery holds the two together).

// decodeDelivery decodes data into ds, which must be zero, as
// json.Unmarshal would.
func decodeDelivery(data []byte, ds *events.DeliveryStatus, in *interner) error {
	if fastDelivery(data, ds, in) {
		return nil
	}
	*ds = events.DeliveryStatus{}
	return decode(data, ds)
}

// deliveryKey numbers the keys of a DeliveryStatus, for the seen set.
const (
	keyChannel = 1 << iota
	keyOTPID
	keyProfileID
	keyStatus
	keyTimestamp
	keyError
	keyReceivedAt
	keyTimestampFromReceipt
	keyOriginalTimestamp
	keyUnknownChannel
	keyUnknownStatus
	keySource
	keyMissedWebhook
)

// fastDelivery decodes the common shape and reports whether it did; false
// leaves ds partly filled.
func fastDelivery(data []byte, ds *events.DeliveryStatus, in *interner) bool {
	s := scanner{b: data}
	if !s.next('{') {
		return false
	}
	seen := 0
	if s.next('}') {
		return s.end()
	}
	for {
		key, ok := s.str()
		if !ok || !s.next(':') {
			return false
		}
		var bit int
		switch string(key) { // no allocation: the compiler compares in place
		case "channel":
			bit = keyChannel
			ok = s.strVal(in, (*string)(&ds.Channel))
		case "otpId":
			bit = keyOTPID
			var v []byte
			if v, ok = s.str(); ok {
				ds.OTPID = string(v)
			}
		case "profileId":
			bit = keyProfileID
			ok = s.strVal(in, &ds.ProfileID)
		case "status":
			bit = keyStatus
			ok = s.strVal(in, (*string)(&ds.Status))
		case "timestamp":
			bit = keyTimestamp
			ok = s.timeVal(&ds.Timestamp)
		case "receivedAt":
			bit = keyReceivedAt
			ok = s.timeVal(&ds.ReceivedAt)
		case "error":
			bit = keyError
			ds.Error = &events.DeliveryError{}
			ok = s.deliveryError(ds.Error, in)
		case "timestampFromReceipt":
			bit = keyTimestampFromReceipt
			ds.TimestampFromReceipt, ok = s.boolean()
		case "originalTimestamp":
			bit = keyOriginalTimestamp
			var v []byte
			if v, ok = s.str(); ok {
				ds.OriginalTimestamp = string(v)
			}
		case "unknownChannel":
			bit = keyUnknownChannel
			ds.UnknownChannel, ok = s.boolean()
		case "unknownStatus":
			bit = keyUnknownStatus
			ds.UnknownStatus, ok = s.boolean()
		case "source":
			bit = keySource
			ok = s.strVal(in, &ds.Source)
		case "missedWebhook":
			bit = keyMissedWebhook
			ds.MissedWebhook, ok = s.boolean()
		default:
			// Unknown keys, and known ones spelt otherwise (encoding/json
			// matches keys without regard to case), take the slow path.
			return false
		}
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
		if s.next('}') {
			return s.end()
		}
		if !s.next(',') {
			return false
		}
	}
}

// deliveryError decodes {"code": "…", "message": "…"}.
func (s *scanner) deliveryError(e *events.DeliveryError, in *interner) bool {
	if !s.next('{') {
		return false // null, among others: the slow path
	}
	if s.next('}') {
		return true
	}
	seen := 0
	for {
		key, ok := s.str()
		if !ok || !s.next(':') {
			return false
		}
		var bit int
		switch string(key) {
		case "code":
			bit = 1
			ok = s.strVal(in, &e.Code)
		case "message":
			bit = 2
			ok = s.strVal(in, &e.Message)
		default:
			return false
		}
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
		if s.next('}') {
			return true
		}
		if !s.next(',') {
			return false
		}
	}
}

// scanner reads JSON tokens of the plain kind only; anything else fails.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// next consumes c after whitespace, if it is there.
func (s *scanner) next(c byte) bool {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// end reports whether only whitespace is left.
func (s *scanner) end() bool {
	s.space()
	return s.i == len(s.b)
}

// str reads a string without escapes or control characters, in valid
// UTF-8 (which encoding/json would keep as it is), and returns its bytes.
func (s *scanner) str() ([]byte, bool) {
	s.space()
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false
	}
	start, ascii := s.i+1, true
	for j := start; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			v := s.b[start:j]
			if !ascii && !utf8.Valid(v) {
				return nil, false
			}
			s.i = j + 1
			return v, true
		case c == '\\', c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false
}

// strVal reads a string into *dst, interned.
func (s *scanner) strVal(in *interner, dst *string) bool {
	v, ok := s.str()
	if ok {
		*dst = in.intern(v)
	}
	return ok
}

// timeVal reads a string with time.Time's own JSON decoding, as
// encoding/json does.
func (s *scanner) timeVal(dst *time.Time) bool {
	s.space()
	from := s.i
	if _, ok := s.str(); !ok {
		return false
	}
	return dst.UnmarshalJSON(s.b[from:s.i]) == nil
}

// boolean reads true or false; a word running on (truex) is left for
// the caller to reject.
func (s *scanner) boolean() (v, ok bool) {
	s.space()
	switch rest := s.b[s.i:]; {
	case bytes.HasPrefix(rest, []byte("true")):
		s.i += 4
		return true, true
	case bytes.HasPrefix(rest, []byte("false")):
		s.i += 5
		return false, true
	}
	return false, false
}

// interner shares one string among the rows that repeat a value (channel,
// status, profile, source, error code and message take few values), so a
// batch allocates each once; it stops adding past a bound, so that a
// stream of distinct values cannot grow it without end.
type interner struct {
	m map[string]string
}

const maxInterned = 4096

func (in *interner) intern(b []byte) string {
	if s, ok := in.m[string(b)]; ok { // no allocation for the lookup
		return s
	}
	s := string(b)
	if in.m == nil {
		in.m = make(map[string]string)
	}
	if len(in.m) < maxInterned {
		in.m[s] = s
	}
	return s
}
