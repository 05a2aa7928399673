package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

var receivedAt = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

const seedOTP = "a4762c77-94cb-43d6-bbab-9f37e088ad11"
const seedProfile = "adbe6521-f5bd-4295-9fd9-776debdf7dc2"

func TestDecodeSeedExamples(t *testing.T) {
	seedTime := time.Date(2023, 11, 15, 3, 0, 0, 0, time.UTC)
	tests := []struct {
		file string
		want []DeliveryStatus
	}{
		{"seed_delivered.json", []DeliveryStatus{{
			Channel: ChannelSMS, OTPID: seedOTP, ProfileID: seedProfile, Status: StatusDelivered,
			Timestamp: seedTime, ReceivedAt: receivedAt, Source: SourceWebhook,
		}}},
		{"seed_undeliverable_error.json", []DeliveryStatus{{
			Channel: ChannelSMS, OTPID: seedOTP, ProfileID: seedProfile, Status: StatusUndeliverable,
			Timestamp: seedTime, ReceivedAt: receivedAt, Source: SourceWebhook,
			Error: &DeliveryError{Code: "tyntec::internal::500", Message: "Internal Server Error"},
		}}},
		{"no_profile.json", []DeliveryStatus{{
			Channel: ChannelViber, OTPID: seedOTP, Status: StatusDispatched,
			Timestamp: seedTime, ReceivedAt: receivedAt, Source: SourceWebhook,
		}}},
		{"received_status.json", []DeliveryStatus{{
			Channel: ChannelWhatsApp, OTPID: seedOTP, ProfileID: seedProfile, Status: StatusReceived,
			Timestamp: seedTime, ReceivedAt: receivedAt, Source: SourceWebhook,
		}}},
		{"unknown_values.json", []DeliveryStatus{{
			Channel: "RCS", OTPID: seedOTP, Status: "READ", UnknownChannel: true, UnknownStatus: true,
			Timestamp: seedTime, ReceivedAt: receivedAt, Source: SourceWebhook,
		}}},
		{"array.json", []DeliveryStatus{
			{Channel: ChannelSMS, OTPID: seedOTP, ProfileID: seedProfile, Status: StatusDispatched,
				Timestamp: seedTime, ReceivedAt: receivedAt, Source: SourceWebhook},
			{Channel: ChannelSMS, OTPID: seedOTP, ProfileID: seedProfile, Status: StatusUndeliverable,
				Timestamp: seedTime.Add(5 * time.Second), ReceivedAt: receivedAt, Source: SourceWebhook,
				Error: &DeliveryError{Code: "tyntec::internal::500", Message: "Internal Server Error"}},
			{Channel: ChannelViber, OTPID: seedOTP, ProfileID: seedProfile, Status: StatusDelivered,
				Timestamp: seedTime.Add(9250 * time.Millisecond), ReceivedAt: receivedAt, Source: SourceWebhook},
		}},
	}
	for _, tt := range tests {
		body, err := os.ReadFile(filepath.Join("testdata", tt.file))
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeDeliveryStatuses(body, receivedAt)
		if err != nil {
			t.Errorf("Decode(%s) error = %v; want nil", tt.file, err)
			continue
		}
		if g, w := mustJSON(t, got), mustJSON(t, tt.want); g != w {
			t.Errorf("Decode(%s) =\n%s\nwant\n%s", tt.file, g, w)
		}
	}
}

func TestDecodeNormalizes(t *testing.T) {
	tests := []struct {
		name, body string
		check      func(DeliveryStatus) bool
	}{
		{"lower-case enums are upper-cased", `{"channel":"sms","otpId":"` + seedOTP + `","status":"delivered","timestamp":"2023-11-15T03:00:00Z"}`,
			func(e DeliveryStatus) bool {
				return e.Channel == ChannelSMS && e.Status == StatusDelivered && !e.UnknownChannel
			}},
		{"upper-case UUID is canonicalized", `{"channel":"SMS","otpId":"A4762C77-94CB-43D6-BBAB-9F37E088AD11","status":"DELIVERED"}`,
			func(e DeliveryStatus) bool { return e.OTPID == seedOTP }},
		{"missing timestamp falls back to receipt", `{"channel":"SMS","otpId":"` + seedOTP + `","status":"DELIVERED"}`,
			func(e DeliveryStatus) bool { return e.TimestampFromReceipt && e.Timestamp.Equal(receivedAt) }},
		{"unparseable timestamp falls back to receipt", `{"channel":"SMS","otpId":"` + seedOTP + `","status":"DELIVERED","timestamp":"yesterday"}`,
			func(e DeliveryStatus) bool { return e.TimestampFromReceipt && e.Timestamp.Equal(receivedAt) }},
		{"numeric timestamp falls back to receipt", `{"channel":"SMS","otpId":"` + seedOTP + `","status":"DELIVERED","timestamp":1700017200}`,
			func(e DeliveryStatus) bool { return e.TimestampFromReceipt }},
		{"zone-less timestamp is UTC", `{"channel":"SMS","otpId":"` + seedOTP + `","status":"DELIVERED","timestamp":"2023-11-15T03:00:00.5"}`,
			func(e DeliveryStatus) bool {
				return !e.TimestampFromReceipt && e.Timestamp.Equal(time.Date(2023, 11, 15, 3, 0, 0, 5e8, time.UTC))
			}},
		{"offset timestamp is converted to UTC", `{"channel":"SMS","otpId":"` + seedOTP + `","status":"DELIVERED","timestamp":"2023-11-15T04:00:00+01:00"}`,
			func(e DeliveryStatus) bool {
				return e.Timestamp.Equal(time.Date(2023, 11, 15, 3, 0, 0, 0, time.UTC)) && e.Timestamp.Location() == time.UTC
			}},
		{"a numeric error code is kept as its text", `{"channel":"WHATSAPP","otpId":"` + seedOTP + `","status":"UNDELIVERABLE","error":{"code":131026,"message":"Message undeliverable"}}`,
			func(e DeliveryStatus) bool {
				return e.Error != nil && *e.Error == DeliveryError{Code: "131026", Message: "Message undeliverable"}
			}},
		{"an error's code and message are cut, not the fact", `{"channel":"SMS","otpId":"` + seedOTP + `","status":"UNDELIVERABLE","error":{"code":"` + strings.Repeat("Z", 65000) + `","message":"` + strings.Repeat("é", 600) + `"}}`,
			func(e DeliveryStatus) bool {
				return e.Status == StatusUndeliverable && e.Error != nil && e.Error.Code == strings.Repeat("Z", MaxErrorCode) &&
					e.Error.Message == strings.Repeat("é", MaxErrorMessage/2)
			}},
		{"a numeric code is cut too", `{"channel":"SMS","otpId":"` + seedOTP + `","status":"UNDELIVERABLE","error":{"code":` + strings.Repeat("9", 100) + `}}`,
			func(e DeliveryStatus) bool {
				return e.Error != nil && e.Error.Code == strings.Repeat("9", MaxErrorCode)
			}},
		{"null error is no error", `{"channel":"SMS","otpId":"` + seedOTP + `","status":"DELIVERED","error":null}`,
			func(e DeliveryStatus) bool { return e.Error == nil }},
		{"unknown fields are ignored", `{"channel":"SMS","otpId":"` + seedOTP + `","status":"DELIVERED","price":0.05}`,
			func(e DeliveryStatus) bool { return e.Status == StatusDelivered }},
	}
	for _, tt := range tests {
		got, err := DecodeDeliveryStatuses([]byte(tt.body), receivedAt)
		if err != nil || len(got) != 1 {
			t.Errorf("%s: Decode(%q) = %v, %v; want one event", tt.name, tt.body, got, err)
			continue
		}
		if !tt.check(got[0]) {
			t.Errorf("%s: Decode(%q) = %+v", tt.name, tt.body, got[0])
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	ok := `"channel":"SMS","status":"DELIVERED","timestamp":"2023-11-15T03:00:00Z"`
	tests := []struct {
		name, body string
		field      string
		index      int
		err        error
	}{
		{"malformed JSON", `{"channel":`, "", -1, ErrMalformedJSON},
		{"empty body", ``, "", -1, ErrMalformedJSON},
		{"not an object", `"DELIVERED"`, "", -1, ErrNotAnEvent},
		{"number", `42`, "", -1, ErrNotAnEvent},
		{"empty array", `[]`, "", -1, ErrEmptyBatch},
		{"missing otpId", `{` + ok + `}`, "otpId", -1, ErrMissing},
		{"invalid otpId", `{` + ok + `,"otpId":"12345"}`, "otpId", -1, ErrInvalidUUID},
		{"braced otpId", `{` + ok + `,"otpId":"{` + seedOTP + `}"}`, "otpId", -1, ErrInvalidUUID},
		{"numeric otpId", `{` + ok + `,"otpId":12345}`, "otpId", -1, ErrMalformed},
		{"invalid profileId", `{` + ok + `,"otpId":"` + seedOTP + `","profileId":"p1"}`, "profileId", -1, ErrInvalidUUID},
		{"missing channel", `{"status":"DELIVERED","otpId":"` + seedOTP + `"}`, "channel", -1, ErrMissing},
		{"missing status", `{"channel":"SMS","otpId":"` + seedOTP + `"}`, "status", -1, ErrMissing},
		{"status with a dot", `{"channel":"SMS","status":"A.B","otpId":"` + seedOTP + `"}`, "status", -1, ErrMalformed},
		{"channel wildcard", `{"channel":">","status":"DELIVERED","otpId":"` + seedOTP + `"}`, "channel", -1, ErrMalformed},
		{"a method's channel", `{"channel":"silent","status":"UNDELIVERABLE","otpId":"` + seedOTP + `"}`, "channel", -1, ErrMalformed},
		{"push's channel in an array", `[{` + ok + `,"otpId":"` + seedOTP + `"},{"channel":"PUSH","status":"DELIVERED","otpId":"` + seedOTP + `"}]`, "channel", 1, ErrMalformed},
		{"error not an object", `{` + ok + `,"otpId":"` + seedOTP + `","error":"boom"}`, "error", -1, ErrMalformed},
		{"array with a bad second element", `[{` + ok + `,"otpId":"` + seedOTP + `"},{` + ok + `,"otpId":"x"}]`, "otpId", 1, ErrInvalidUUID},
		{"array of non-objects", `[1,2]`, "", 0, ErrNotAnEvent},
	}
	for _, tt := range tests {
		got, err := DecodeDeliveryStatuses([]byte(tt.body), receivedAt)
		var fe *FieldError
		if !errors.As(err, &fe) {
			t.Errorf("%s: Decode(%q) = %v, %v; want *FieldError", tt.name, tt.body, got, err)
			continue
		}
		if fe.Field != tt.field || fe.Index != tt.index || !errors.Is(err, tt.err) {
			t.Errorf("%s: Decode(%q) error = %v (field %q index %d); want field %q index %d, %v",
				tt.name, tt.body, err, fe.Field, fe.Index, tt.field, tt.index, tt.err)
		}
	}
}

func TestDeliveryIDIsContentDerived(t *testing.T) {
	base := `{"channel":"SMS","otpId":"` + seedOTP + `","status":"DELIVERED","timestamp":"2023-11-15T03:00:00Z"}`
	id := func(body string, at time.Time) string {
		evs, err := DecodeDeliveryStatuses([]byte(body), at)
		if err != nil {
			t.Fatalf("Decode(%q): %v", body, err)
		}
		return DeliveryID(&evs[0])
	}
	a := id(base, receivedAt)
	if b := id(base, receivedAt.Add(time.Hour)); a != b {
		t.Errorf("a retry received later has id %s; want %s", b, a)
	}
	if b := id(strings.Replace(base, "03:00:00Z", "03:00:00.000Z", 1), receivedAt); a != b {
		t.Errorf("the same instant written differently has id %s; want %s", b, a)
	}
	if b := id(strings.Replace(base, "DELIVERED", "DISPATCHED", 1), receivedAt); a == b {
		t.Errorf("another status has the same id %s", a)
	}
	if b := id(strings.Replace(base, `"SMS"`, `"VOICE"`, 1), receivedAt); a == b {
		t.Errorf("another channel has the same id %s", a)
	}
	noTime := `{"channel":"SMS","otpId":"` + seedOTP + `","status":"DELIVERED"}`
	if x, y := id(noTime, receivedAt), id(noTime, receivedAt.Add(time.Minute)); x != y {
		t.Errorf("without a timestamp, retries have ids %s and %s; want one", x, y)
	}
}

func TestDeliveryMessage(t *testing.T) {
	evs, err := DecodeDeliveryStatuses([]byte(`{"channel":"VIBER","otpId":"`+seedOTP+`","status":"TIMED_OUT","timestamp":"2023-11-15T03:00:00Z"}`), receivedAt)
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewDeliveryMessage(&evs[0])
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "tyntec.2fa.delivery.VIBER.TIMED_OUT" {
		t.Errorf("subject = %q", m.Subject)
	}
	want := map[string]string{
		HeaderSpecVersion: "1.0", HeaderID: m.ID, HeaderSource: "/otpscope/webhook",
		HeaderType: TypeDeliveryStatus, HeaderTime: "2023-11-15T03:00:00Z", HeaderSubject: seedOTP,
		HeaderContentType: "application/json",
	}
	for k, v := range want {
		if m.Header.Get(k) != v {
			t.Errorf("header %s = %q; want %q", k, m.Header.Get(k), v)
		}
	}
	var back DeliveryStatus
	if err := json.Unmarshal(m.Data, &back); err != nil || back.OTPID != seedOTP || back.Status != StatusTimedOut || back.Source != SourceWebhook {
		t.Errorf("payload %s decodes to %+v, %v", m.Data, back, err)
	}
}

func TestDeadLetterMessage(t *testing.T) {
	dl := DeadLetter{Reason: "otpId: not a UUID", Source: "ingest", ReceivedAt: receivedAt}
	m, err := NewDeadLetterMessage(dl, []byte("0123456789"), 4)
	if err != nil {
		t.Fatal(err)
	}
	var got DeadLetter
	if err := json.Unmarshal(m.Data, &got); err != nil {
		t.Fatal(err)
	}
	if m.Subject != SubjectDeadLetter || got.Body != "0123" || !got.Truncated || got.BodyBytes != 10 {
		t.Errorf("dead letter %s on %s; want body 0123 truncated from 10 bytes", m.Data, m.Subject)
	}
	bin, _ := NewDeadLetterMessage(dl, []byte{0xff, 0xfe}, 100)
	if err := json.Unmarshal(bin.Data, &got); err != nil || string(got.BodyBase64) != "\xff\xfe" {
		t.Errorf("binary body: %s, %v", bin.Data, err)
	}
	again, _ := NewDeadLetterMessage(dl, []byte("0123456789"), 4)
	if again.ID != m.ID {
		t.Errorf("the same dead letter has ids %s and %s", m.ID, again.ID)
	}
}

func FuzzDecodeDeliveryStatuses(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`[{"channel":"sms","otpId":"A4762C77-94CB-43D6-BBAB-9F37E088AD11","status":"x"}]`))
	f.Add([]byte(`{"otpId":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		// The one-pass fast path must agree with the field-by-field slow path.
		if fast, ok := decodeFast(bytes.TrimSpace(body), receivedAt); ok {
			slow, err := decodeSlow(bytes.TrimSpace(body), receivedAt)
			if err != nil || !reflect.DeepEqual(fast, slow) {
				t.Fatalf("Decode(%q): fast path %+v; slow path %+v, %v", body, fast, slow, err)
			}
		}
		evs, err := DecodeDeliveryStatuses(body, receivedAt)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || evs != nil {
				t.Fatalf("Decode(%q) = %v, %v; want nil and a *FieldError", body, evs, err)
			}
			return
		}
		if len(evs) == 0 {
			t.Fatalf("Decode(%q) accepted no events", body)
		}
		for _, ev := range evs {
			m, err := NewDeliveryMessage(&ev)
			if err != nil {
				t.Fatalf("message for %+v: %v", ev, err)
			}
			// Every accepted event makes a subject of exactly five tokens, none empty
			// or a wildcard, so it lands in the stream and filters work.
			toks := strings.Split(m.Subject, ".")
			if len(toks) != 5 {
				t.Fatalf("subject %q from %q", m.Subject, body)
			}
			for _, tok := range toks {
				if tok == "" || tok == "*" || tok == ">" {
					t.Fatalf("subject %q from %q", m.Subject, body)
				}
			}
			if ev.Timestamp.IsZero() || ev.Timestamp.Location() != time.UTC {
				t.Fatalf("timestamp %v from %q", ev.Timestamp, body)
			}
		}
	})
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDeliveryStatusJSONShapes pins the two shapes of one type: with only
// tyntec's fields set, DeliveryStatus is exactly tyntec's webhook body (the
// simulator sends it so); as otpscope publishes it, it always carries
// receivedAt and source.
func TestDeliveryStatusJSONShapes(t *testing.T) {
	ts := time.Date(2023, 11, 15, 3, 0, 0, 0, time.UTC)
	webhook := DeliveryStatus{
		Channel: ChannelSMS, OTPID: seedOTP, ProfileID: seedProfile, Status: StatusUndeliverable, Timestamp: ts,
		Error: &DeliveryError{Code: "tyntec::internal::500", Message: "Internal Server Error"},
	}
	const wantWebhook = `{"channel":"SMS","otpId":"` + seedOTP + `","profileId":"` + seedProfile +
		`","status":"UNDELIVERABLE","timestamp":"2023-11-15T03:00:00Z","error":{"code":"tyntec::internal::500","message":"Internal Server Error"}}`
	body, err := json.Marshal(webhook)
	if err != nil {
		t.Fatal(err)
	}
	if string(body) != wantWebhook {
		t.Errorf("Marshal(webhook) = %s; want %s", body, wantWebhook)
	}

	// The same body, received and published: tyntec's fields plus ours.
	evs, err := DecodeDeliveryStatuses(body, receivedAt)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		ds   DeliveryStatus
		keys []string
	}{
		{"webhook", evs[0], []string{"channel", "error", "otpId", "profileId", "receivedAt", "source", "status", "timestamp"}},
		{"delivered, no profile", DeliveryStatus{Channel: ChannelViber, OTPID: seedOTP, Status: StatusDelivered, Timestamp: ts,
			ReceivedAt: receivedAt, Source: SourceWebhook}, []string{"channel", "otpId", "receivedAt", "source", "status", "timestamp"}},
	} {
		m, err := NewDeliveryMessage(&tt.ds)
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := json.Unmarshal(m.Data, &got); err != nil {
			t.Fatal(err)
		}
		var keys []string
		for k := range got {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if !slices.Equal(keys, tt.keys) {
			t.Errorf("%s: published keys %v; want %v", tt.name, keys, tt.keys)
		}
		if got["receivedAt"] != receivedAt.Format(time.RFC3339Nano) || got["source"] != SourceWebhook {
			t.Errorf("%s: published receivedAt %v, source %v; want %s, %s", tt.name, got["receivedAt"], got["source"], receivedAt.Format(time.RFC3339Nano), SourceWebhook)
		}
	}
}

// decodeTimestamp decodes a DELIVERED whose timestamp is ts.
func decodeTimestamp(t *testing.T, ts string) DeliveryStatus {
	t.Helper()
	body := `{"channel":"SMS","otpId":"` + seedOTP + `","status":"DELIVERED","timestamp":"` + ts + `"}`
	evs, err := DecodeDeliveryStatuses([]byte(body), receivedAt)
	if err != nil {
		t.Fatalf("Decode(%q): %v", ts, err)
	}
	return evs[0]
}

// The spellings of a date-time RFC 3339 allows, and Java's "+0000", are
// read as the time they name rather than replaced by the receive time.
func TestTimestampSpellings(t *testing.T) {
	want := time.Date(2023, 11, 15, 3, 0, 0, 0, time.UTC)
	tests := []struct {
		ts   string
		want time.Time // zero: not a time; the receive time is taken
	}{
		{"2023-11-15t03:00:00z", want},
		{"2023-11-15 03:00:00Z", want},
		{"2023-11-15 03:00:00.250Z", want.Add(250 * time.Millisecond)},
		{"2023-11-15T03:00:00+0000", want},
		{"2023-11-15T04:30:00+0130", want},
		{"2023-11-15T01:00:00.5-0200", want.Add(500 * time.Millisecond)},
		{"2023-11-15 03:00:00", want},
		{"2023-11-15T03:00Z", time.Time{}},
		{"2023-11-15T03:00:00+00", time.Time{}},
		{"2023-11-15T03:00:00 +0000", time.Time{}},
	}
	for _, tt := range tests {
		ev := decodeTimestamp(t, tt.ts)
		if tt.want.IsZero() {
			if !ev.TimestampFromReceipt || ev.OriginalTimestamp != tt.ts {
				t.Errorf("timestamp %q: %v (from receipt %v, original %q); want the receive time, the text kept", tt.ts, ev.Timestamp, ev.TimestampFromReceipt, ev.OriginalTimestamp)
			}
			continue
		}
		if ev.TimestampFromReceipt || !ev.Timestamp.Equal(tt.want) || ev.Timestamp.Location() != time.UTC {
			t.Errorf("timestamp %q: %v (from receipt %v); want %v", tt.ts, ev.Timestamp, ev.TimestampFromReceipt, tt.want)
		}
	}
}

// ParseRFC3339 reads RFC 3339's spellings and nothing else: the times a
// caller chooses must say their zone.
func TestParseRFC3339(t *testing.T) {
	want := time.Date(2023, 11, 15, 3, 0, 0, 0, time.UTC)
	for s, ok := range map[string]bool{
		"2023-11-15T03:00:00Z":       true,
		"2023-11-15t03:00:00z":       true,
		"2023-11-15 03:00:00Z":       true,
		"2023-11-15T04:30:00+01:30":  true,
		"2023-11-15 01:00:00-02:00":  true,
		"2023-11-15T03:00:00+0000":   false,
		"2023-11-15T03:00:00":        false,
		"2023-11-15 03:00:00":        false,
		"2023-11-15T03:00Z":          false,
		"2023-11-15x03:00:00Z":       false,
		"2023-11-15T03:00:00 +00:00": false,
		"":                           false,
	} {
		got, parsed := ParseRFC3339(s)
		if parsed != ok || (ok && (!got.Equal(want) || got.Location() != time.UTC)) {
			t.Errorf("ParseRFC3339(%q) = %v, %v; want ok=%v", s, got, parsed, ok)
		}
	}
}

// A timestamp outside the sane range is kept as text; the fact takes the
// receive time, marked, and is never stored as a wrapped date.
func TestTimestampOutOfRange(t *testing.T) {
	tests := []struct {
		ts       string
		keep     bool
		original string
	}{
		{"9999-12-31T23:59:59Z", false, "9999-12-31T23:59:59Z"},
		{"2300-01-01T00:00:00Z", false, "2300-01-01T00:00:00Z"},
		{"0001-01-01T00:00:00Z", false, "0001-01-01T00:00:00Z"},
		{"1999-12-31T23:59:59Z", false, "1999-12-31T23:59:59Z"},
		{receivedAt.Add(25 * time.Hour).Format(time.RFC3339), false, receivedAt.Add(25 * time.Hour).Format(time.RFC3339)},
		{receivedAt.Add(time.Hour).Format(time.RFC3339), true, ""},
		{"2000-01-01T00:00:00Z", true, ""},
		{"not a time", false, "not a time"},
	}
	for _, tt := range tests {
		ev := decodeTimestamp(t, tt.ts)
		if kept := !ev.TimestampFromReceipt; kept != tt.keep || ev.OriginalTimestamp != tt.original {
			t.Errorf("timestamp %q: kept=%v original=%q; want kept=%v original=%q", tt.ts, kept, ev.OriginalTimestamp, tt.keep, tt.original)
		}
		if !tt.keep && !ev.Timestamp.Equal(receivedAt) {
			t.Errorf("timestamp %q: stored as %v; want the receive time %v", tt.ts, ev.Timestamp, receivedAt)
		}
	}
}
