package events

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

const scrubOK = `"attemptId":"sa-1","startedAt":"2026-11-22T09:00:00Z","finishedAt":"2026-11-22T09:00:01Z","result":"verified"`

// TestScrubSilentBody: a body that can be scrubbed loses its raw
// identifiers and decodes, pseudonyms taken as hashes, to exactly what the
// raw body decodes to under the key; any other body is withheld.
func TestScrubSilentBody(t *testing.T) {
	kept := []string{
		`{` + scrubOK + `,"loginHint":"381999888777","mobileId":"MOBILE-SECRET-1"}`,
		`[{` + scrubOK + `,"loginHint":" 381999888777 "},{"attemptId":"sa-2","startedAt":"2026-11-22T09:00:00Z","finishedAt":"2026-11-22T09:00:01Z","result":"error","error":"no_data_session","mobileId":"MOBILE-SECRET-1"}]`,
		// encoding/json matches keys ignoring case, escaped or not; of a
		// repeated key the last counts.
		`{` + scrubOK + `,"LOGINHINT":"381999888777","MobileID":"MOBILE-SECRET-1"}`,
		`{` + scrubOK + `,"login\u0048int":"381999888777"}`,
		`{` + scrubOK + `,"loginHint":"381999888777","LoginHint":"381000000001"}`,
		`{` + scrubOK + `,"loginHint":null,"mobileId":""}`,
		`{` + scrubOK + `,"scope":"<a&b> \u00e9","extra":{"loginHint":"381999888777","n":[1e400,true,null]}}`,
		// Invalid otherwise (no attemptId): kept scrubbed, as invalid.
		`{"correlationId":"x","startedAt":"2026-12-03T12:00:00Z","finishedAt":"2026-12-03T12:00:01Z","result":"verified","loginHint":"381999888777","mobileId":"MOBILE-SECRET-1"}`,
		`[]`,
	}
	for _, body := range kept {
		scrubbed, ok := ScrubSilentBody([]byte(body), testHash)
		if !ok {
			t.Errorf("ScrubSilentBody(%s) withheld it; want it scrubbed", body)
			continue
		}
		for _, raw := range []string{"381999888777", "381000000001", "MOBILE-SECRET-1"} {
			if bytes.Contains(scrubbed, []byte(raw)) {
				t.Errorf("ScrubSilentBody(%s) = %s, holding %s", body, scrubbed, raw)
			}
		}
		if strings.Contains(body, "381999888777") && !bytes.Contains(scrubbed, []byte(Pseudonym(testHash("381999888777")))) {
			t.Errorf("ScrubSilentBody(%s) = %s; want the pseudonym of 381999888777", body, scrubbed)
		}
		sameDecoding(t, []byte(body), scrubbed)
	}
	withheld := []string{
		`{"attemptId":`,
		`381999888777`,
		`"381999888777"`,
		`[381999888777]`,
		`[{` + scrubOK + `},"381999888777"]`,
		`{` + scrubOK + `,"loginHint":381999888777}`,
		`{` + scrubOK + `,"mobileid":{"v":"MOBILE-SECRET-1"}}`,
		`{"extra":{"loginHint":["381999888777"]}}`,
		`{"a":1} {"loginHint":"381999888777"}`,
		"loginHint=381999888777",
		"",
	}
	for _, body := range withheld {
		if scrubbed, ok := ScrubSilentBody([]byte(body), testHash); ok {
			t.Errorf("ScrubSilentBody(%s) = %s; want it withheld", body, scrubbed)
		}
	}
}

// sameDecoding fails t unless scrubbed decodes (DecodeScrubbedSilentOutcomes)
// as raw does (DecodeSilentOutcomes under testHash): the same outcomes, or
// an error on the same field of the same element.
func sameDecoding(t *testing.T, raw, scrubbed []byte) {
	t.Helper()
	want, werr := DecodeSilentOutcomes(raw, receivedAt, testHash)
	got, gerr := DecodeScrubbedSilentOutcomes(scrubbed, receivedAt)
	if werr != nil || gerr != nil {
		var wfe, gfe *FieldError
		if !errors.As(werr, &wfe) || !errors.As(gerr, &gfe) || wfe.Field != gfe.Field || wfe.Index != gfe.Index {
			t.Errorf("%s decodes with %v; scrubbed %s with %v", raw, werr, scrubbed, gerr)
		}
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s decodes to %+v; scrubbed %s to %+v", raw, want, scrubbed, got)
	}
}

// TestDecodeScrubbedRefusesRawValues: replay has no key, so it takes only
// the pseudonym form, never a value it would store as if hashed.
func TestDecodeScrubbedRefusesRawValues(t *testing.T) {
	h := testHash("381999888777")
	for _, v := range []string{"381999888777", "pseudonym:", "pseudonym:" + h[:63], "pseudonym:" + strings.ToUpper(h), h, "pseudonym:" + h + "0"} {
		body := `{` + scrubOK + `,"mobileId":"` + v + `"}`
		var fe *FieldError
		if _, err := DecodeScrubbedSilentOutcomes([]byte(body), receivedAt); !errors.As(err, &fe) || fe.Field != "mobileId" {
			t.Errorf("DecodeScrubbedSilentOutcomes(mobileId %q) = %v; want an error on mobileId", v, err)
		}
	}
	got, err := DecodeScrubbedSilentOutcomes([]byte(`{`+scrubOK+`,"loginHint":"`+Pseudonym(h)+`"}`), receivedAt)
	if err != nil || got[0].LoginHintHash != h {
		t.Errorf("DecodeScrubbedSilentOutcomes(a pseudonym) = %+v, %v; want the hash %s", got, err, h)
	}
}

// FuzzScrubSilentBody: whatever a scrubbed body is, it decodes as the raw
// body does.
func FuzzScrubSilentBody(f *testing.F) {
	f.Add([]byte(`{` + scrubOK + `,"loginHint":"381999888777","mobileId":"m"}`))
	f.Add([]byte(`[{` + scrubOK + `,"LoginHint":" 1 ","loginhint":"2"},{"attemptId":"b"}]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if scrubbed, ok := ScrubSilentBody(body, testHash); ok {
			sameDecoding(t, body, scrubbed)
		}
	})
}

// TestScrubPushBody: a push callback's dead letter keeps only what the
// decoder reads, and decodes as the whole body does.
func TestScrubPushBody(t *testing.T) {
	const ok = `"uuid":"0b5f3c1e-9d2a-4f60-8c1b-2e7d5a9f1c33","status":"denied","createdAt":"2026-11-29T10:00:00Z","updatedAt":"2026-11-29T10:00:09Z","secondsToExpire":300`
	for _, body := range []string{
		`{` + ok + `,"tfaId":"5661166","message":"Approve, Jane?","details":{"ip":"203.0.113.9"},"hiddenDetails":{"correlationId":"login-9","email":"jane@example.com"}}`,
		`[{` + ok + `,"TFAID":"5661166"},{"uuid":"u-2","STATUS":"approved","createdAt":"2026-11-29T10:00:00Z","HiddenDetails":{"CorrelationId":"c","x":[1,{"y":"jane@example.com"}]}}]`,
		`{"tfaId":"5661166","createdAt":"2026-11-29T10:00:00Z"}`, // invalid: no uuid, still invalid
	} {
		scrubbed, kept := ScrubPushBody([]byte(body))
		if !kept {
			t.Errorf("ScrubPushBody(%s) withheld it", body)
			continue
		}
		for _, gone := range []string{"5661166", "Jane", "203.0.113.9", `"x"`} {
			if bytes.Contains(scrubbed, []byte(gone)) {
				t.Errorf("ScrubPushBody(%s) = %s, holding %s", body, scrubbed, gone)
			}
		}
		want, werr := DecodePushEvents([]byte(body), receivedAt)
		got, gerr := DecodePushEvents(scrubbed, receivedAt)
		var wfe, gfe *FieldError
		switch {
		case werr != nil || gerr != nil:
			if !errors.As(werr, &wfe) || !errors.As(gerr, &gfe) || wfe.Field != gfe.Field || wfe.Index != gfe.Index {
				t.Errorf("%s decodes with %v; scrubbed %s with %v", body, werr, scrubbed, gerr)
			}
		case !reflect.DeepEqual(got, want):
			t.Errorf("%s decodes to %+v; scrubbed %s to %+v", body, want, scrubbed, got)
		}
	}
	for _, body := range []string{`"5661166"`, `[{"uuid":"u"},5661166]`, `{"uuid":`, "tfaId=5661166",
		`{` + ok + `,"hiddenDetails":"jane@example.com"}`, `{` + ok + `,"HIDDENDETAILS":["jane@example.com"]}`} {
		if scrubbed, kept := ScrubPushBody([]byte(body)); kept {
			t.Errorf("ScrubPushBody(%s) = %s; want it withheld", body, scrubbed)
		}
	}
}
