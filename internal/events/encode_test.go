package events

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// Message bodies are written by segmentio's encoder (newMessage); they must
// be what encoding/json writes for the same record, byte for byte, whatever
// the strings hold: HTML characters, line and paragraph separators, control
// characters, invalid UTF-8.
func FuzzBodiesAsEncodingJSON(f *testing.F) {
	for _, s := range []string{"", "plain", "<script>&amp;</script>", "\u2028\u2029", "tab\tnew\nline\x00", "\xff\xfeinvalid", "quote\" back\\slash", "ünïcødé ✓"} {
		f.Add(s, int64(1785369600123))
	}
	f.Fuzz(func(t *testing.T, s string, ms int64) {
		at := time.UnixMilli(ms % (1 << 40)).UTC()
		records := []any{
			DeliveryStatus{Channel: Channel(s), OTPID: s, ProfileID: s, Status: Status(s), Timestamp: at,
				Error: &DeliveryError{Code: s, Message: s}, ReceivedAt: at, OriginalTimestamp: s, Source: SourceWebhook},
			DeadLetter{Reason: s, Field: s, Status: 400, Source: "ingest", ReceivedAt: at, Body: s, BodyBase64: []byte(s), BodyBytes: len(s)},
			Track{OTPID: s, API: "v4", Status: s, CorrelationID: s, At: at},
		}
		for _, r := range records {
			m, err := newMessage("s", "id", "ingest", "type", at, "", r)
			if err != nil {
				t.Fatal(err)
			}
			want, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(m.Data, want) {
				t.Fatalf("%T body\n got %s\nwant %s", r, m.Data, want)
			}
		}
	})
}

// plainString reads a string without the decoder only when it would give
// what json.Unmarshal gives.
func FuzzPlainString(f *testing.F) {
	for _, s := range []string{`""`, `"2026-07-30T00:00:00Z"`, `"a\"b"`, `"a\\b"`, `"\u00e9"`, "\"tab\there\"", "\"\xff\"", `"unterminated`, `123`, `null`, `"ünï"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, ok := plainString(raw)
		if !ok {
			return
		}
		var want string
		if err := json.Unmarshal(raw, &want); err != nil {
			t.Fatalf("plainString(%q) = %q; json.Unmarshal fails: %v", raw, got, err)
		}
		if got != want {
			t.Fatalf("plainString(%q) = %q; json.Unmarshal gives %q", raw, got, want)
		}
	})
}

func TestPlainStringLeavesEscapesToTheDecoder(t *testing.T) {
	for raw, want := range map[string]bool{
		`"2026-07-30T00:00:00.123Z"`: true,
		`""`:                         true,
		`"ünï"`:                      true,
		`"a\nb"`:                     false,
		"\"a\tb\"":                   false,
		"\"\xff\"":                   false,
		`"a"b"`:                      false,
		`42`:                         false,
		`"`:                          false,
	} {
		if _, ok := plainString([]byte(raw)); ok != want {
			t.Errorf("plainString(%q) ok = %v, want %v", raw, ok, want)
		}
	}
}

// A record whose omitzero fields hold zero values — a status an upstream
// service reported, with no otpCreated — is written without them, as
// encoding/json writes it (segmentio's encoder alone would write
// "0001-01-01T00:00:00Z").
func TestZeroFieldsOmitted(t *testing.T) {
	at := time.Date(2026, 12, 3, 23, 40, 0, 0, time.UTC)
	status := OTPStatus{OTPID: "o", API: "v4", Status: OTPVerified, ObservedAt: at, Source: SourceUpstream, SampleRate: 1}
	for _, r := range []any{
		status, &status, // every New…Message passes a pointer
		Track{OTPID: "o", Status: "VERIFIED"},
		DeliveryStatus{Channel: "SMS", OTPID: "o", Status: "DELIVERED", Timestamp: at},
	} {
		m, err := newMessage("s", "id", "poller", "type", at, "", r)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(r)
		if !bytes.Equal(m.Data, want) || bytes.Contains(m.Data, []byte("0001-01-01")) {
			t.Errorf("%T body\n got %s\nwant %s", r, m.Data, want)
		}
	}
	if m, err := NewOTPStatusMessage(&status); err != nil || bytes.Contains(m.Data, []byte("0001-01-01")) || bytes.Contains(m.Data, []byte("otpCreated")) {
		t.Errorf("NewOTPStatusMessage without otpCreated: %s, %v; want it left out", m.Data, err)
	}
}
