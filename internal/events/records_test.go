package events

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

// wellFormed is the pattern WellFormed implements.
var wellFormed = regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,63}$`)

func FuzzIsWellFormed(f *testing.F) {
	for _, s := range []string{"", "A", "SMS", "TIMED_OUT", "9SMS", "_A", "sms", "SMS.X", "A B", "Ä", strings.Repeat("A", 64), strings.Repeat("A", 65), "A\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := WellFormed(s), wellFormed.MatchString(s); got != want {
			t.Fatalf("WellFormed(%q) = %v; the pattern says %v", s, got, want)
		}
	})
}

func FuzzDecodeTrack(f *testing.F) {
	f.Add([]byte(`{"otpId":"0b7e2d3c-1d39-4c4e-9d1b-5b8c1e0a9f01","api":"v1"}`))
	f.Add([]byte(`{"otpId":"0B7E2D3C-1D39-4C4E-9D1B-5B8C1E0A9F01","status":"verified","profileId":"adbe6521-f5bd-4295-9fd9-776debdf7dc2"}`))
	f.Add([]byte(`{"otpId":null,"api":7}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		tr, err := DecodeTrack(body, receivedAt)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("DecodeTrack(%q) error %v is not a *FieldError", body, err)
			}
			return
		}
		if _, err := canonicalUUID(tr.OTPID); err != nil || (tr.API != "v4" && tr.API != "v1") || tr.At.IsZero() {
			t.Fatalf("DecodeTrack(%q) accepted %+v", body, tr)
		}
		if tr.Status != "" && !wellFormed.MatchString(tr.Status) {
			t.Fatalf("DecodeTrack(%q) accepted status %q", body, tr.Status)
		}
		if _, err := NewTrackMessage(&tr); err != nil {
			t.Fatal(err)
		}
	})
}
