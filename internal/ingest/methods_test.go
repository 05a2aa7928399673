package ingest_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/ingest"
	"github.com/otpscope/otpscope/internal/problem"
)

const pseudonymKey = "test-pseudonym-key-0123"

// streamData is every message body in the stream, concatenated.
func (f *fixture) streamData(t *testing.T) []byte {
	t.Helper()
	s, err := brokertest.JetStream(t, f.broker).Stream(t.Context(), f.broker.StreamName())
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var all []byte
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
		m, err := s.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		all = append(append(all, m.Data...), '\n')
	}
	return all
}

const silentBody = `[
 {"attemptId":"sa-1","correlationId":"login-42","profileId":"default","startedAt":"2026-11-29T10:00:00.000Z",
  "finishedAt":"2026-11-29T10:00:01.250Z","result":"verified","loginHint":"381123456789","mobileId":"2d83f2c1aa"},
 {"attemptId":"sa-2","startedAt":"2026-11-29T10:00:00Z","finishedAt":"2026-11-29T10:00:02Z","result":"error","error":"token_invalid_client"},
 {"attemptId":"sa-3","startedAt":"2026-11-29T10:00:00Z","finishedAt":"2026-11-29T10:00:02Z","result":"maybe"}]`

func TestSilentOutcomes(t *testing.T) {
	f := newFixture(t)
	for i := range 3 { // the app retries: one fact each
		resp := f.postTo(t, ingest.SilentPath, silentBody, "X-Webhook-Token", token)
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusAccepted || strings.TrimSpace(string(b)) != `{"accepted":3}` {
			t.Fatalf("post %d = %d %s; want 202 {\"accepted\":3}", i, resp.StatusCode, b)
		}
	}
	want := map[string]uint64{"tyntec.2fa.silent.verified": 1, "tyntec.2fa.silent.error": 1, "tyntec.2fa.silent.maybe": 1}
	if got := f.subjects(t); len(got) != len(want) || got["tyntec.2fa.silent.verified"] != 1 || got["tyntec.2fa.silent.error"] != 1 || got["tyntec.2fa.silent.maybe"] != 1 {
		t.Errorf("stream subjects = %v; want %v", got, want)
	}
	data := f.streamData(t)
	for _, raw := range []string{"381123456789", "2d83f2c1aa"} {
		if bytes.Contains(data, []byte(raw)) {
			t.Errorf("the stream holds the raw identifier %s", raw)
		}
	}
	if h := events.KeyedHash([]byte(pseudonymKey))("381123456789"); !bytes.Contains(data, []byte(h)) {
		t.Errorf("the stream lacks loginHint's keyed hash %s", h)
	}
	wantMetric := `
# HELP otpscope_ingest_method_events_total Silent-auth outcomes (channel SILENT, by result) and push approval statuses (channel PUSH, by status) stored, OTHER for values otpscope does not know; duplicates the stream dropped are not counted.
# TYPE otpscope_ingest_method_events_total counter
otpscope_ingest_method_events_total{channel="SILENT",result="OTHER"} 1
otpscope_ingest_method_events_total{channel="SILENT",result="error"} 1
otpscope_ingest_method_events_total{channel="SILENT",result="verified"} 1
`
	if err := testutil.GatherAndCompare(f.reg, strings.NewReader(wantMetric), "otpscope_ingest_method_events_total"); err != nil {
		t.Error(err)
	}
}

func TestPushCallbacks(t *testing.T) {
	f := newFixture(t)
	const req = `{"uuid":"0b5f3c1e-9d2a-4f60-8c1b-2e7d5a9f1c33","tfaId":"5661166","status":%q,"createdAt":"2026-11-29T10:00:00.000Z","updatedAt":%q,"secondsToExpire":300,"hiddenDetails":{"correlationId":"login-42"}}`
	for _, body := range []string{
		strings.Replace(strings.Replace(req, "%q", `"pending"`, 1), "%q", `"2026-11-29T10:00:00.000Z"`, 1),
		strings.Replace(strings.Replace(req, "%q", `"approved"`, 1), "%q", `"2026-11-29T10:00:07.000Z"`, 1),
		strings.Replace(strings.Replace(req, "%q", `"approved"`, 1), "%q", `"2026-11-29T10:00:07.000Z"`, 1), // a retried callback
	} {
		if resp := f.postTo(t, ingest.PushPath, body, "Authorization", "Bearer "+token); resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("POST %s = %d %s; want 200", body, resp.StatusCode, b)
		}
	}
	if got := f.subjects(t); len(got) != 2 || got["tyntec.2fa.push.pending"] != 1 || got["tyntec.2fa.push.approved"] != 1 {
		t.Errorf("stream subjects = %v; want one pending, one approved", got)
	}
	if bytes.Contains(f.streamData(t), []byte("5661166")) {
		t.Error("the stream holds the user's tfaId")
	}
}

func TestMethodBadInput(t *testing.T) { eachServer(t, testMethodBadInput) }

func testMethodBadInput(t *testing.T, on server) {
	tests := []struct {
		name, path, body, field string
		status, index           int
	}{
		{"invalid element", ingest.SilentPath, `[{"attemptId":"a","startedAt":"2026-11-29T10:00:00Z","finishedAt":"2026-11-29T10:00:01Z","result":"verified"},{"attemptId":"b","startedAt":"2026-11-29T10:00:00Z","finishedAt":"2026-11-29T10:00:01Z","result":"error"}]`, "error", 400, 1},
		{"malformed", ingest.SilentPath, `{"attemptId":`, "", 400, -1},
		{"push without status", ingest.PushPath, `{"uuid":"u-1","createdAt":"2026-11-29T10:00:00Z"}`, "status", 400, -1},
		{"hiddenDetails not an object", ingest.PushPath, `{"uuid":"u-1","status":"approved","createdAt":"2026-11-29T10:00:00Z","hiddenDetails":"x"}`, "hiddenDetails", 400, -1},
		{"silent attempt over a day", ingest.SilentPath, `{"attemptId":"a","startedAt":"2026-12-02T10:00:00Z","finishedAt":"2026-12-03T12:00:00Z","result":"verified"}`, "finishedAt", 400, -1},
		{"oversized", ingest.PushPath, `{"uuid":"` + strings.Repeat("x", 70<<10) + `"}`, "", 413, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixtureOn(t, on)
			resp := f.postTo(t, tt.path, tt.body, "X-Webhook-Token", token)
			if resp.StatusCode != tt.status || resp.Header.Get("Content-Type") != problem.ContentType {
				t.Fatalf("status %d %s; want %d problem+json", resp.StatusCode, resp.Header.Get("Content-Type"), tt.status)
			}
			var p problem.Details
			if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
				t.Fatal(err)
			}
			if p.Field != tt.field || (p.Index == nil) != (tt.index < 0) || (p.Index != nil && *p.Index != tt.index) {
				t.Errorf("problem = %+v; want field %q index %d", p, tt.field, tt.index)
			}
			if got := f.subjects(t); len(got) != 1 || got[events.SubjectDeadLetter] != 1 {
				t.Fatalf("stream subjects = %v; want exactly one dead letter (the valid element is not published alone)", got)
			}
			// The reason may go on: a silent-auth body not kept says why.
			if dl := lastDeadLetter(t, f); !strings.HasPrefix(dl.Reason, p.Detail) || dl.Status != tt.status || dl.Path != tt.path {
				t.Errorf("dead letter = %+v; want reason %q…, status %d, path %s", dl, p.Detail, tt.status, tt.path)
			}
		})
	}
}

// silentRepro is the security review's reproduction: a silent-auth
// outcome refused (no attemptId) with a phone number and a mobileId.
const silentRepro = `{"correlationId":"x","startedAt":"2026-12-03T12:00:00Z","finishedAt":"2026-12-03T12:00:01Z","result":"verified","loginHint":"381999888777","mobileId":"MOBILE-SECRET-1"}`

func TestSilentDeadLettersKeepNoIdentifier(t *testing.T) {
	eachServer(t, testSilentDeadLettersKeepNoIdentifier)
}

// testSilentDeadLettersKeepNoIdentifier: a refused silent-auth body
// reaches the dead letter with pseudonyms for loginHint and mobileId, or
// not at all when they cannot be replaced; either way the stream never
// holds the raw values. A push callback's keeps only what the decoder
// reads (no tfaId, message, details); the webhook's stays raw.
func testSilentDeadLettersKeepNoIdentifier(t *testing.T, on server) {
	f := newFixtureOn(t, on)
	hash := events.KeyedHash([]byte(pseudonymKey))
	valid := strings.Replace(silentRepro, `"correlationId":"x"`, `"attemptId":"sa-dl"`, 1)
	post := func(path, body, contentType string, want int) events.DeadLetter {
		t.Helper()
		if resp := f.postTo(t, path, body, "X-Webhook-Token", token, "Content-Type", contentType); resp.StatusCode != want {
			t.Fatalf("POST %s %.60s: %d; want %d", path, body, resp.StatusCode, want)
		}
		return lastDeadLetter(t, f)
	}

	for _, tt := range []struct{ name, body, contentType string }{
		{"invalid", silentRepro, "application/json"},
		{"wrong content type", valid, "text/plain"},
	} {
		dl := post(ingest.SilentPath, tt.body, tt.contentType, map[bool]int{true: 400, false: 415}[tt.contentType == "application/json"])
		if dl.Path != ingest.SilentPath || dl.Truncated || dl.BodyBytes != len(dl.Body) {
			t.Errorf("%s: dead letter %+v; want path %s, the whole scrubbed body", tt.name, dl, ingest.SilentPath)
		}
		for _, v := range []string{"381999888777", "MOBILE-SECRET-1"} {
			if want := `"` + events.Pseudonym(hash(v)) + `"`; !strings.Contains(dl.Body, want) {
				t.Errorf("%s: dead letter body %s; want %s in it", tt.name, dl.Body, want)
			}
		}
	}

	withheld := []struct{ name, body string }{
		{"not JSON", "loginHint=381999888777&mobileId=MOBILE-SECRET-1"},
		{"a number", strings.Replace(valid, `"381999888777"`, `381999888777`, 1)},
	}
	for _, tt := range withheld {
		dl := post(ingest.SilentPath, tt.body, "application/json", 400)
		if dl.Body != "" || dl.BodyBase64 != nil || dl.BodyBytes != len(tt.body) || !strings.Contains(dl.Reason, "body withheld") || dl.Path != ingest.SilentPath {
			t.Errorf("%s: dead letter %+v; want no body, its length %d, and the reason saying it was withheld", tt.name, dl, len(tt.body))
		}
	}
	oversized := `{"attemptId":"sa-big","loginHint":"381999888777","pad":"` + strings.Repeat("x", 70<<10) + `"}`
	if dl := post(ingest.SilentPath, oversized, "application/json", 413); dl.Body != "" || !dl.Truncated || dl.BodyBytes != len(oversized) {
		t.Errorf("oversized: dead letter %+v; want no body, truncated, %d bytes", dl, len(oversized))
	}

	// A push callback's dead letter keeps what its decoder reads, not the
	// person's tfaId, the message or other hidden details.
	push := `{"uuid":"u-1","tfaId":"5661166","message":"Approve, Jane Doe?","createdAt":"2026-11-29T10:00:00Z","hiddenDetails":{"email":"jane@example.com","correlationId":"login-9"}}`
	if dl := post(ingest.PushPath, push, "application/json", 400); dl.Body != `{"uuid":"u-1","createdAt":"2026-11-29T10:00:00Z","hiddenDetails":{"correlationId":"login-9"}}` || dl.Path != ingest.PushPath {
		t.Errorf("push: dead letter %+v; want the members the decoder reads and path %s", dl, ingest.PushPath)
	}
	// The webhook's holds no personal data: kept as it came.
	if dl := post(ingest.WebhookPath, `{"channel":"SMS"}`, "application/json", 400); dl.Body != `{"channel":"SMS"}` || dl.Path != ingest.WebhookPath {
		t.Errorf("webhook: dead letter %+v; want the raw body and path %s", dl, ingest.WebhookPath)
	}

	// One dead letter each: two withheld bodies refused for one reason are
	// two dead letters, not one.
	if got := f.subjects(t)[events.SubjectDeadLetter]; got != 7 {
		t.Errorf("%d dead letters; want 7", got)
	}
	data := f.streamData(t)
	for _, raw := range []string{"381999888777", "MOBILE-SECRET-1", "5661166", "Jane Doe", "jane@example.com"} {
		if bytes.Contains(data, []byte(raw)) {
			t.Errorf("the stream holds the raw identifier %s", raw)
		}
	}
}

// TestWithheldDeadLetterReasons: a withheld body's dead letter says why it
// was withheld: cut off (413), not JSON objects, or, for JSON objects, the
// member that could not be scrubbed; the validation failure comes first.
func TestWithheldDeadLetterReasons(t *testing.T) {
	f := newFixture(t)
	const silentOK = `"attemptId":"sa-w","startedAt":"2026-11-29T10:00:00Z","finishedAt":"2026-11-29T10:00:01Z","result":"verified"`
	tests := []struct {
		name, path, body string
		status           int
		reason           []string // each in the reason
	}{
		{"not JSON", ingest.SilentPath, "loginHint=381999888777", 400,
			[]string{"body: malformed JSON", "body withheld: not JSON objects as the endpoint takes, so it may hold a phone number"}},
		{"an array of non-objects", ingest.SilentPath, `["381999888777"]`, 400,
			[]string{"body withheld: not JSON objects as the endpoint takes"}},
		{"loginHint a number", ingest.SilentPath, `{` + silentOK + `,"loginHint":381999888777}`, 400,
			[]string{"loginHint: malformed value", "body withheld: a loginHint or mobileId in it is not a string, so it may hold a phone number"}},
		{"hiddenDetails a string", ingest.PushPath, `{"uuid":"u-w","status":"approved","createdAt":"2026-11-29T10:00:00Z","hiddenDetails":"Jane Doe"}`, 400,
			[]string{"hiddenDetails: malformed value: want an object", "body withheld: its hiddenDetails is not an object, so it may hold what identifies a person"}},
		{"too large", ingest.SilentPath, `{"attemptId":"sa-big","loginHint":"381999888777","pad":"` + strings.Repeat("x", 70<<10) + `"}`, 413,
			[]string{"body larger than", "body withheld: cut off at --max-body-bytes, so it may hold a phone number"}},
	}
	for _, tt := range tests {
		if resp := f.postTo(t, tt.path, tt.body, "X-Webhook-Token", token, "Content-Type", "application/json"); resp.StatusCode != tt.status {
			t.Fatalf("%s: POST %d; want %d", tt.name, resp.StatusCode, tt.status)
		}
		dl := lastDeadLetter(t, f)
		if dl.Body != "" || dl.BodyBytes != len(tt.body) {
			t.Errorf("%s: dead letter %+v; want the body withheld", tt.name, dl)
		}
		for _, want := range tt.reason {
			if !strings.Contains(dl.Reason, want) {
				t.Errorf("%s: reason %q; want %q in it", tt.name, dl.Reason, want)
			}
		}
		if notObjects := "not JSON objects"; strings.Contains(dl.Reason, notObjects) && !strings.Contains(strings.Join(tt.reason, " "), notObjects) {
			t.Errorf("%s: reason %q says %s", tt.name, dl.Reason, notObjects)
		}
	}
}

// TestPseudonymFormNotTrusted: ingest hashes a loginHint that looks like a
// pseudonym as it hashes any value; only replay takes the form.
func TestPseudonymFormNotTrusted(t *testing.T) {
	f := newFixture(t)
	hash := events.KeyedHash([]byte(pseudonymKey))
	forged := events.Pseudonym(hash("381999888777"))
	body := `{"attemptId":"sa-forged","startedAt":"2026-11-29T10:00:00Z","finishedAt":"2026-11-29T10:00:01Z","result":"verified","loginHint":"` + forged + `"}`
	if resp := f.postTo(t, ingest.SilentPath, body, "X-Webhook-Token", token); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: %d; want 202", resp.StatusCode)
	}
	data := f.streamData(t)
	if !bytes.Contains(data, []byte(`"loginHintHash":"`+hash(forged)+`"`)) || bytes.Contains(data, []byte(`"loginHintHash":"`+hash("381999888777")+`"`)) {
		t.Errorf("stream = %s; want the keyed hash of the whole value %q", data, forged)
	}
}

func TestMethodsAuthAndNATSDown(t *testing.T) {
	f := newFixture(t)
	body := `{"attemptId":"sa-9","startedAt":"2026-11-29T10:00:00Z","finishedAt":"2026-11-29T10:00:01Z","result":"not_verified"}`
	for _, path := range []string{ingest.SilentPath, ingest.PushPath} {
		if resp := f.postTo(t, path, body, "X-Webhook-Token", "wrong-token-0123456789"); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s with a wrong token = %d; want 401", path, resp.StatusCode)
		}
	}
	f.srv.Stop()
	brokertest.WaitFor(t, 5*time.Second, "disconnect", func() bool { return f.broker.Ready(t.Context()) != nil })
	resp := f.postTo(t, ingest.SilentPath, body, "X-Webhook-Token", token)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "3" {
		t.Fatalf("with NATS down: %d, Retry-After %q; want 503 and 3", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	f.srv.Start()
	brokertest.WaitFor(t, 10*time.Second, "reconnect", func() bool { return f.broker.Ready(t.Context()) == nil })
	if resp := f.postTo(t, ingest.SilentPath, body, "X-Webhook-Token", token); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("after restart: %d; want 202", resp.StatusCode)
	}
	if got := f.subjects(t); len(got) != 1 || got["tyntec.2fa.silent.not_verified"] != 1 {
		t.Errorf("stream subjects = %v", got)
	}
}

func TestPseudonymKey(t *testing.T) {
	dir := t.TempDir()
	k1, err := ingest.PseudonymKey(ingest.Config{}, dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, ingest.PseudonymKeyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v; want 0600", err, st.Mode())
	}
	k2, err := ingest.PseudonymKey(ingest.Config{}, dir)
	if err != nil || string(k1) != string(k2) || len(k1) < 32 {
		t.Errorf("second start: key %q, %v; want the first one, %q", k2, err, k1)
	}
	if k, _ := ingest.PseudonymKey(ingest.Config{PseudonymKey: pseudonymKey}, dir); string(k) != pseudonymKey {
		t.Errorf("--pseudonym-key gave %q", k)
	}
	if err := (&ingest.Config{Tokens: []string{token}, MaxBodyBytes: 4096, PublishTimeout: 1, RetryAfter: 1, PseudonymKey: "short"}).Validate(); err == nil {
		t.Error("Validate accepted a 5-character pseudonym key")
	}
}

// TestSharedPseudonymKey: replicas starting at once on one NATS server get
// one key, which one of them created, and a later start reads it.
func TestSharedPseudonymKey(t *testing.T) {
	b := brokertest.NewServer(t).Broker(t)
	kv, err := b.KeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: ingest.PseudonymBucket, History: 1})
	if err != nil {
		t.Fatal(err)
	}
	const replicas = 5
	keys, created := make([]string, replicas), make([]bool, replicas)
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Go(func() {
			k, c, err := ingest.SharedPseudonymKey(t.Context(), kv, nil)
			if err != nil {
				t.Error(err)
			}
			keys[i], created[i] = string(k), c
		})
	}
	wg.Wait()
	makers := 0
	for i := range replicas {
		if keys[i] != keys[0] || len(keys[i]) < 32 {
			t.Errorf("replica %d has key %q; replica 0 %q", i, keys[i], keys[0])
		}
		if created[i] {
			makers++
		}
	}
	if makers != 1 {
		t.Errorf("%d replicas created the key; want 1", makers)
	}
	if k, c, err := ingest.SharedPseudonymKey(t.Context(), kv, nil); err != nil || c || string(k) != keys[0] {
		t.Errorf("a later start: %q, created %v, %v; want the key the first made", k, c, err)
	}
}
