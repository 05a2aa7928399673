package events

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

var testHash = KeyedHash([]byte("test key"))

func TestDecodeSilentOutcomes(t *testing.T) {
	body := `[{"attemptId":"sa-1","correlationId":"login-42","profileId":"default","scope":"tt:phone_verify",
  "startedAt":"2026-11-22T09:00:00.000Z","finishedAt":"2026-11-22T09:00:01.250Z","result":"verified",
  "loginHint":"381123456789","mobileId":"2d83f2c1"},
 {"attemptId":"sa-2","startedAt":"2026-11-22t10:00:00+01:00","finishedAt":"2026-11-22 09:00:00z","result":"ERROR","error":"no_data_session"},
 {"attemptId":"sa-3","startedAt":"2026-11-22T09:00:00Z","finishedAt":"2026-11-22T09:00:02Z","result":"timeout_new","error":"brand_new"}]`
	got, err := DecodeSilentOutcomes([]byte(body), receivedAt, testHash)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("decoded %d outcomes; want 3", len(got))
	}
	a := got[0]
	if a.CorrelationID != "login-42" || a.Result != SilentVerified || a.UnknownResult || a.FinishedAt.Sub(a.StartedAt) != 1250*time.Millisecond {
		t.Errorf("outcome 0 = %+v", a)
	}
	if a.LoginHintHash != testHash("381123456789") || a.LoginHintHash == "" || a.MobileIDHash != testHash("2d83f2c1") {
		t.Errorf("outcome 0 hashes %q %q", a.LoginHintHash, a.MobileIDHash)
	}
	data, _ := json.Marshal(a)
	if strings.Contains(string(data), "381123456789") || strings.Contains(string(data), "2d83f2c1") {
		t.Errorf("published outcome holds a raw identifier: %s", data)
	}
	if b := got[1]; b.CorrelationID != "sa-2" || b.Result != SilentError || b.Error != "no_data_session" || b.UnknownError || b.LoginHintHash != "" {
		t.Errorf("outcome 1 = %+v; want the attempt id as correlation id, a known error, no hash", b)
	}
	if b, at := got[1], time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC); !b.StartedAt.Equal(at) || !b.FinishedAt.Equal(at) {
		t.Errorf("outcome 1 times %v, %v; want %v: RFC 3339's other spellings read", b.StartedAt, b.FinishedAt, at)
	}
	if c := got[2]; !c.UnknownResult || !c.UnknownError {
		t.Errorf("outcome 2 = %+v; want unknown result and error marked", c)
	}
	if other := KeyedHash([]byte("other key"))("381123456789"); other == a.LoginHintHash {
		t.Error("two keys gave one pseudonym")
	}
}

func TestDecodeSilentRejects(t *testing.T) {
	const ok = `"attemptId":"sa-1","startedAt":"2026-11-22T09:00:00Z","finishedAt":"2026-11-22T09:00:01Z"`
	tests := []struct {
		body, field string
		index       int
	}{
		{`{` + ok + `}`, "result", -1},
		{`{` + ok + `,"result":"error"}`, "error", -1},
		{`{` + ok + `,"result":"verified no"}`, "result", -1},
		{`{"attemptId":"sa-1","startedAt":"2026-11-22T09:00:02Z","finishedAt":"2026-11-22T09:00:01Z","result":"verified"}`, "finishedAt", -1},
		{`{"attemptId":"sa-1","startedAt":"yesterday","finishedAt":"2026-11-22T09:00:01Z","result":"verified"}`, "startedAt", -1},
		{`{"attemptId":"sa-1","startedAt":"2026-11-22T09:00:00","finishedAt":"2026-11-22T09:00:01Z","result":"verified"}`, "startedAt", -1},
		{`{"attemptId":"sa-1","startedAt":"2126-11-22T09:00:00Z","finishedAt":"2126-11-22T09:00:01Z","result":"verified"}`, "startedAt", -1},
		{`[{` + ok + `,"result":"verified"},{"startedAt":"2026-11-22T09:00:00Z","finishedAt":"2026-11-22T09:00:01Z","result":"verified"}]`, "attemptId", 1},
		{`{` + ok + `,"result":"verified","loginHint":381123456789}`, "loginHint", -1},
		{`{` + ok + `,"result":"verified","correlationId":"` + strings.Repeat("x", 129) + `"}`, "correlationId", -1},
		// A profile is a name dashboards put in their SQL: no quote, no
		// backslash, no space.
		{`{` + ok + `,"result":"verified","profileId":"default' = 'default') --"}`, "profileId", -1},
		{`{` + ok + `,"result":"verified","profileId":"x\\' OR 1=1 --"}`, "profileId", -1},
		{`{` + ok + `,"result":"verified","profileId":"<i>prof</i>"}`, "profileId", -1},
		{`[]`, "", -1},
		{`{`, "", -1},
	}
	for _, tt := range tests {
		_, err := DecodeSilentOutcomes([]byte(tt.body), receivedAt, testHash)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field || fe.Index != tt.index {
			t.Errorf("DecodeSilentOutcomes(%.80q) = %v; want an error on [%d].%s", tt.body, err, tt.index, tt.field)
		}
	}
}

func TestDecodePushEvents(t *testing.T) {
	body := `{"uuid":"0b5f3c1e-9d2a-4f60-8c1b-2e7d5a9f1c33","tfaId":"5661166","status":"approved",
  "createdAt":"2026-11-22T09:00:00.000Z","updatedAt":"2026-11-22T09:00:07.000Z","secondsToExpire":300,
  "hiddenDetails":{"correlationId":"login-42","secret":"x"}}`
	got, err := DecodePushEvents([]byte(body), receivedAt)
	if err != nil {
		t.Fatal(err)
	}
	p := got[0]
	if p.Status != PushApproved || p.CorrelationID != "login-42" || p.SecondsToExpire != 300 || p.UnknownStatus || !p.Settled() || p.Source != SourceWebhook {
		t.Errorf("push = %+v", p)
	}
	if data, _ := json.Marshal(p); strings.Contains(string(data), "5661166") || strings.Contains(string(data), "secret") {
		t.Errorf("published push event keeps the tfaId or hidden details: %s", data)
	}
	got, err = DecodePushEvents([]byte(`[{"uuid":"req-1","status":"Pending","createdAt":"2026-11-22T09:00:00Z"},{"uuid":"req-1","status":"cancelled","createdAt":"2026-11-22T09:00:00Z","updatedAt":"2026-11-22T09:00:03Z"}]`), receivedAt)
	if err != nil {
		t.Fatal(err)
	}
	if a := got[0]; a.Status != PushPending || a.Settled() || a.CorrelationID != "req-1" || !a.UpdatedAt.Equal(a.CreatedAt) {
		t.Errorf("pending = %+v", a)
	}
	if b := got[1]; !b.UnknownStatus {
		t.Errorf("cancelled = %+v; want unknown status marked", b)
	}
	for _, bad := range []string{
		`{"status":"approved","createdAt":"2026-11-22T09:00:00Z"}`,
		`{"uuid":"u","createdAt":"2026-11-22T09:00:00Z"}`,
		`{"uuid":"u","status":"approved"}`,
		`{"uuid":"u","status":"approved","createdAt":"2026-11-22T09:00:00Z","updatedAt":"2026-11-22T08:00:00Z"}`,
		`{"uuid":"u","status":"approved","createdAt":"2026-11-22T09:00:00Z","secondsToExpire":-1}`,
		`{"uuid":"u","status":"approved","createdAt":"2026-11-22T09:00:00Z","hiddenDetails":{"correlationId":7}}`,
	} {
		if _, err := DecodePushEvents([]byte(bad), receivedAt); err == nil {
			t.Errorf("DecodePushEvents(%s) accepted it", bad)
		}
	}
}

// TestMethodSpanBounded: a silent attempt or a push request whose end lies
// more than MaxAttemptSpan after its start is refused naming the end's field
// (the windowed analytics read only MaxAttemptSpan either side); exactly
// MaxAttemptSpan is accepted.
func TestMethodSpanBounded(t *testing.T) {
	silent := func(start, finish string) string {
		return `{"attemptId":"sa-1","startedAt":"` + start + `","finishedAt":"` + finish + `","result":"verified"}`
	}
	if _, err := DecodeSilentOutcomes([]byte(silent("2026-11-20T10:00:00Z", "2026-11-21T10:00:00Z")), receivedAt, testHash); err != nil {
		t.Errorf("silent attempt of exactly MaxAttemptSpan: %v; want accepted", err)
	}
	_, err := DecodeSilentOutcomes([]byte(silent("2026-11-20T10:00:00Z", "2026-11-21T12:00:00Z")), receivedAt, testHash)
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "finishedAt" || !errors.Is(err, ErrMalformed) {
		t.Errorf("silent attempt of 26 h = %v; want refused on finishedAt", err)
	}

	push := func(created, updated string) string {
		return `{"uuid":"u","status":"approved","createdAt":"` + created + `","updatedAt":"` + updated + `"}`
	}
	if _, err := DecodePushEvents([]byte(push("2026-11-20T10:00:00Z", "2026-11-21T10:00:00Z")), receivedAt); err != nil {
		t.Errorf("push request of exactly MaxAttemptSpan: %v; want accepted", err)
	}
	_, err = DecodePushEvents([]byte(push("2026-11-20T10:00:00Z", "2026-11-21T12:00:00Z")), receivedAt)
	if !errors.As(err, &fe) || fe.Field != "updatedAt" || !errors.Is(err, ErrMalformed) {
		t.Errorf("push request of 26 h = %v; want refused on updatedAt", err)
	}
}

// TestPushUpdatedAtDefault: without updatedAt a settled request takes the
// time it was received (it settled by then; createdAt would be a 0 ms
// approval), never before createdAt nor more than MaxAttemptSpan after it;
// a pending one takes createdAt.
func TestPushUpdatedAtDefault(t *testing.T) {
	tests := []struct {
		status, created string
		want            time.Time
	}{
		{"pending", "2026-11-22T09:59:00Z", time.Date(2026, 11, 22, 9, 59, 0, 0, time.UTC)},
		{"approved", "2026-11-22T09:59:00Z", receivedAt},
		{"denied", "2026-11-22T09:59:00Z", receivedAt},
		{"expired", "2026-11-22T09:55:00Z", receivedAt},
		{"cancelled", "2026-11-22T09:59:00Z", receivedAt}, // unknown: settled too (Settled)
		// createdAt ahead of our clock (within the skew allowed): not before it.
		{"approved", "2026-11-22T10:00:05Z", time.Date(2026, 11, 22, 10, 0, 5, 0, time.UTC)},
	}
	for _, tt := range tests {
		body := `{"uuid":"u","status":"` + tt.status + `","createdAt":"` + tt.created + `","updatedAt":null}`
		got, err := DecodePushEvents([]byte(body), receivedAt)
		if err != nil {
			t.Errorf("%s: %v", body, err)
			continue
		}
		if !got[0].UpdatedAt.Equal(tt.want) {
			t.Errorf("%s: updatedAt %v; want %v", body, got[0].UpdatedAt, tt.want)
		}
	}
	// Received more than MaxAttemptSpan after createdAt: at most
	// MaxAttemptSpan after it, the bound the analytics rely on.
	created := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	for status, want := range map[string]time.Time{"approved": created.Add(MaxAttemptSpan), "pending": created} {
		body := `{"uuid":"u","status":"` + status + `","createdAt":"2026-11-20T09:00:00Z"}`
		if got, err := DecodePushEvents([]byte(body), receivedAt); err != nil || !got[0].UpdatedAt.Equal(want) {
			t.Errorf("%s received 49 h after createdAt = %+v, %v; want updatedAt %v", status, got, err, want)
		}
	}
}

// TestPushMemberTypes: a member of the wrong type is refused naming it, not
// as malformed JSON.
func TestPushMemberTypes(t *testing.T) {
	const ok = `"uuid":"u","status":"approved","createdAt":"2026-11-22T09:00:00Z","updatedAt":"2026-11-22T09:00:07Z"`
	for body, field := range map[string]string{
		`{` + ok + `,"hiddenDetails":"x"}`:                 "hiddenDetails",
		`{` + ok + `,"hiddenDetails":["correlationId"]}`:   "hiddenDetails",
		`{` + ok + `,"hiddenDetails":{"correlationId":7}}`: "hiddenDetails.correlationId",
		`{` + ok + `,"secondsToExpire":{}}`:                "secondsToExpire",
		`{` + ok + `,"secondsToExpire":"soon"}`:            "secondsToExpire",
	} {
		_, err := DecodePushEvents([]byte(body), receivedAt)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != field || errors.Is(err, ErrMalformedJSON) {
			t.Errorf("DecodePushEvents(%s) = %v; want refused on %s", body, err, field)
		}
	}
	for _, body := range []string{
		`{` + ok + `,"hiddenDetails":null,"secondsToExpire":null}`,
		`{` + ok + `,"hiddenDetails":{"correlationId":null},"secondsToExpire":"300"}`,
	} {
		if got, err := DecodePushEvents([]byte(body), receivedAt); err != nil || got[0].CorrelationID != "u" {
			t.Errorf("DecodePushEvents(%s) = %+v, %v; want accepted, the uuid as correlation id", body, got, err)
		}
	}
}

func TestMethodMessages(t *testing.T) {
	o := SilentOutcome{AttemptID: "sa-1", CorrelationID: "sa-1", Result: SilentVerified, StartedAt: receivedAt, FinishedAt: receivedAt, ReceivedAt: receivedAt}
	m1, err := NewSilentOutcomeMessage(&o)
	if err != nil {
		t.Fatal(err)
	}
	o.ReceivedAt = receivedAt.Add(time.Minute) // the app's retry
	m2, _ := NewSilentOutcomeMessage(&o)
	if m1.ID != m2.ID || m1.Subject != "tyntec.2fa.silent.verified" || m1.Header.Get(HeaderType) != TypeSilentOutcome {
		t.Errorf("silent messages %s %s %s; want one id on tyntec.2fa.silent.verified", m1.ID, m2.ID, m1.Subject)
	}
	p := PushEvent{UUID: "u-1", Status: PushDenied, CreatedAt: receivedAt, UpdatedAt: receivedAt, Source: SourceWebhook}
	w, _ := NewPushMessage(&p)
	p.Source = SourcePoll
	q, _ := NewPushMessage(&p)
	if w.ID != q.ID || q.Subject != "tyntec.2fa.push.denied" || q.Header.Get(HeaderSource) != "/otpscope/poller" {
		t.Errorf("push messages %+v %+v; want one id whoever reported it", w, q)
	}
	if once, again := AttemptUUID(ChannelSilent, "sa-1"), AttemptUUID(ChannelSilent, "sa-1"); once != again || once == AttemptUUID(ChannelPush, "sa-1") {
		t.Error("AttemptUUID is not a function of channel and id")
	}
	if id := "0b5f3c1e-9d2a-4f60-8c1b-2e7d5a9f1c33"; AttemptUUID(ChannelPush, strings.ToUpper(id)) != id {
		t.Error("AttemptUUID changed a UUID")
	}
}

func TestTrackCorrelation(t *testing.T) {
	tr, err := DecodeTrack([]byte(`{"otpId":"0b7e2d3c-1d39-4c4e-9d1b-5b8c1e0a9f01","correlationId":" login-42 "}`), receivedAt)
	if err != nil || tr.CorrelationID != "login-42" {
		t.Fatalf("DecodeTrack = %+v, %v", tr, err)
	}
	with, _ := NewTrackMessage(&tr)
	tr.CorrelationID = ""
	without, _ := NewTrackMessage(&tr)
	if with.ID == without.ID || without.ID != "tr-"+digest(tr.OTPID, "v4", "") {
		t.Errorf("track ids %s %s: want a registration with a correlation id apart, one without unchanged", with.ID, without.ID)
	}
	if _, err := DecodeTrack([]byte(`{"otpId":"0b7e2d3c-1d39-4c4e-9d1b-5b8c1e0a9f01","correlationId":"a\u0000b"}`), receivedAt); err == nil {
		t.Error("DecodeTrack accepted a control character in correlationId")
	}
}

// A tracked time outside the sane range is refused, never stored: a
// DateTime64 wraps 9999-12-31 to 1816 (and the rollups would walk to it).
func TestTrackTimeInRange(t *testing.T) {
	for at, ok := range map[string]bool{
		receivedAt.Add(-time.Hour).Format(time.RFC3339):                 true,
		receivedAt.Add(MaxClockSkew - time.Minute).Format(time.RFC3339): true,
		"9999-12-31T00:00:00Z":                                          false,
		"1816-03-29T05:56:08Z":                                          false,
		"1999-12-31T23:59:59Z":                                          false,
		receivedAt.Add(MaxClockSkew + time.Hour).Format(time.RFC3339):   false,
		// An explicit zero time is a time, not one left out.
		"0001-01-01T00:00:00Z": false,
		// RFC 3339's other spellings; not a zone-less time.
		receivedAt.Add(-time.Hour).Format("2006-01-02t15:04:05.000z"):  true,
		receivedAt.Add(-time.Hour).Format("2006-01-02 15:04:05-07:00"): true,
		receivedAt.Add(-time.Hour).Format("2006-01-02T15:04:05"):       false,
	} {
		tr, err := DecodeTrack([]byte(`{"otpId":"0b7e2d3c-1d39-4c4e-9d1b-5b8c1e0a9f01","at":"`+at+`"}`), receivedAt)
		var fe *FieldError
		if ok != (err == nil) || (!ok && (!errors.As(err, &fe) || fe.Field != "at")) {
			t.Errorf("at %s: DecodeTrack = %v, %v; want ok=%v (else a FieldError on at)", at, tr.At, err, ok)
		}
	}
}

// The time a tracking names is the one stored, whatever RFC 3339 spelling
// names it; without one (or null) it is the receive time.
func TestTrackTime(t *testing.T) {
	const otp = `"otpId":"0b7e2d3c-1d39-4c4e-9d1b-5b8c1e0a9f01"`
	at := time.Date(2026, 11, 22, 9, 0, 0, 250e6, time.UTC)
	for body, want := range map[string]time.Time{
		`{` + otp + `,"at":"2026-11-22t10:00:00.25+01:00"}`: at,
		`{` + otp + `,"At":"2026-11-22 09:00:00.250z"}`:     at,
		`{` + otp + `}`:           receivedAt,
		`{` + otp + `,"at":null}`: receivedAt,
	} {
		tr, err := DecodeTrack([]byte(body), receivedAt)
		if err != nil || !tr.At.Equal(want) || tr.At.Location() != time.UTC {
			t.Errorf("DecodeTrack(%s) = %v, %v; want %v", body, tr.At, err, want)
		}
	}
}

// A UTF-8 byte-order mark before a body is ignored, as RFC 8259 lets a
// parser do (some senders' libraries write one): every endpoint's body
// reads as it would without it, and a dead letter of one replays.
func TestBodyAfterAByteOrderMark(t *testing.T) {
	const bom = "\uFEFF"
	decoders := map[string]struct {
		body   string
		decode func([]byte) (any, error)
	}{
		"delivery": {`{"channel":"SMS","otpId":"` + seedOTP + `","status":"DELIVERED","timestamp":"2026-11-22T09:00:00Z"}`,
			func(b []byte) (any, error) { return DecodeDeliveryStatuses(b, receivedAt) }},
		"silent": {`[{"attemptId":"sa-1","startedAt":"2026-11-22T09:00:00Z","finishedAt":"2026-11-22T09:00:01Z","result":"verified"}]`,
			func(b []byte) (any, error) { return DecodeSilentOutcomes(b, receivedAt, testHash) }},
		"push": {`{"uuid":"0b7e2d3c-1d39-4c4e-9d1b-5b8c1e0a9f01","status":"APPROVED","createdAt":"2026-11-22T09:00:00Z"}`,
			func(b []byte) (any, error) { return DecodePushEvents(b, receivedAt) }},
		"track": {`{"otpId":"0b7e2d3c-1d39-4c4e-9d1b-5b8c1e0a9f01"}`,
			func(b []byte) (any, error) { return DecodeTrack(b, receivedAt) }},
	}
	for name, d := range decoders {
		want, err := d.decode([]byte(d.body))
		if err != nil {
			t.Fatalf("%s without a mark: %v", name, err)
		}
		for _, body := range []string{bom + d.body, bom + " \n" + d.body + "\n"} {
			got, err := d.decode([]byte(body))
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("%s after a byte-order mark: %+v, %v; want %+v", name, got, err, want)
			}
		}
		// A mark anywhere else is no mark: still malformed.
		if _, err := d.decode([]byte(d.body + bom)); !errors.Is(err, ErrMalformedJSON) {
			t.Errorf("%s before a byte-order mark: %v; want malformed JSON", name, err)
		}
	}
}

// A member of the wrong type is named, as every other refusal names its
// field; a body that is no object says so.
func TestTrackNamesTheWrongMember(t *testing.T) {
	const otp = `"otpId":"0b7e2d3c-1d39-4c4e-9d1b-5b8c1e0a9f01"`
	for body, field := range map[string]string{
		`{` + otp + `,"at":5}`:             "at",
		`{` + otp + `,"AT":"yesterday"}`:   "at",
		`{` + otp + `,"status":5}`:         "status",
		`{"otpId":["x"]}`:                  "otpId",
		`{` + otp + `,"correlationId":{}}`: "correlationId",
		`[{` + otp + `}]`:                  "",
		`{` + otp + `,`:                    "",
	} {
		_, err := DecodeTrack([]byte(body), receivedAt)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != field {
			t.Errorf("DecodeTrack(%s) = %v; want a FieldError on %q", body, err, field)
		}
	}
}

func FuzzDecodeSilentOutcomes(f *testing.F) {
	f.Add([]byte(`{"attemptId":"sa-1","startedAt":"2026-11-22T09:00:00Z","finishedAt":"2026-11-22T09:00:01Z","result":"error","error":"x"}`))
	f.Add([]byte(`[{"attemptId":"a","loginHint":"1"}]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := DecodeSilentOutcomes(body, receivedAt, testHash)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a *FieldError", err)
			}
			return
		}
		for _, o := range got {
			if o.AttemptID == "" || o.CorrelationID == "" || !methodWord.MatchString(o.Result) || o.FinishedAt.Before(o.StartedAt) {
				t.Fatalf("accepted %+v", o)
			}
			if _, err := ParseSubject(SilentSubject(o.Result)); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func FuzzDecodePushEvents(f *testing.F) {
	f.Add([]byte(`{"uuid":"u","status":"approved","createdAt":"2026-11-22T09:00:00Z","hiddenDetails":{"correlationId":"c"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := DecodePushEvents(body, receivedAt)
		if err != nil {
			return
		}
		for _, p := range got {
			if p.UUID == "" || p.CorrelationID == "" || !methodWord.MatchString(p.Status) || p.UpdatedAt.Before(p.CreatedAt) {
				t.Fatalf("accepted %+v", p)
			}
		}
	})
}
