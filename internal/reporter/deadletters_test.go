package reporter_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/ingest"
	"github.com/otpscope/otpscope/internal/problem"
	"github.com/otpscope/otpscope/internal/reporter"
	"github.com/otpscope/otpscope/internal/store"
	"github.com/otpscope/otpscope/internal/webtest"
)

func TestDeadLettersReplayEachOnce(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	// A page a dead letter: the three, received in one millisecond, are
	// read one after the other (the page's cursor breaks ties by id).
	reporter.SetReplayPage(t, 1)
	// Now: dead letters older than 90 days expire (TTL).
	at := time.Now().UTC().Truncate(time.Millisecond)
	// From ingest: a webhook refused for its Content-Type, valid otherwise.
	webhook := `{"channel":"SMS","otpId":"a4762c77-94cb-43d6-bbab-9f37e088ad11","status":"DELIVERED","timestamp":"2026-06-02T09:59:59Z"}`
	fromIngest, err := events.NewDeadLetterMessage(events.DeadLetter{Reason: "Content-Type \"text/plain\": want application/json", Status: 415, Source: "ingest", ReceivedAt: at}, []byte(webhook), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	// From the sink: a delivery event it could not store at the time.
	ev := events.DeliveryStatus{Channel: events.ChannelViber, Status: events.StatusDelivered, Source: events.SourceWebhook,
		OTPID: "b4762c77-94cb-43d6-bbab-9f37e088ad12", Timestamp: at, ReceivedAt: at}
	orig, err := events.NewDeliveryMessage(&ev)
	if err != nil {
		t.Fatal(err)
	}
	fromSink, err := events.NewDeadLetterMessage(events.DeadLetter{Reason: "disk full", Field: orig.Subject, Source: "sink", ReceivedAt: at}, orig.Data, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	// One that cannot be replayed: still not a webhook.
	junk, err := events.NewDeadLetterMessage(events.DeadLetter{Reason: "bad JSON", Status: 400, Source: "ingest", ReceivedAt: at}, []byte("{"), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Broker.Publish(ctx, fromIngest, fromSink, junk); err != nil {
		t.Fatal(err)
	}
	f.WaitCount(t, "SELECT count() FROM dead_letters", 3)
	pending := func(want uint64) {
		t.Helper()
		p, err := f.DB.PendingDeadLetters(ctx)
		if err != nil || p.Count != want || !p.Newest.Equal(at) {
			t.Fatalf("PendingDeadLetters = %+v, %v; want %d, the newest at %v", p, err, want, at)
		}
	}
	pending(3)

	srv := deadLettersAPI(t, f)
	replay := func(req reporter.ReplayRequest) reporter.ReplayResult {
		t.Helper()
		body, _ := json.Marshal(req)
		resp, err := http.Post(srv.URL+"/api/v1/deadletters/replay", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST replay %+v: %s", req, resp.Status)
		}
		var res reporter.ReplayResult
		if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
			t.Fatal(err)
		}
		return res
	}

	first := replay(reporter.ReplayRequest{All: true})
	if len(first.Replayed) != 2 || len(first.Skipped) != 1 || first.Skipped[0].ID != junk.ID {
		t.Fatalf("replay --all = %+v; want the two replayable ones, the junk skipped", first)
	}
	// The junk, skipped, is still never replayed.
	pending(1)
	f.WaitCount(t, "SELECT uniqExact(event_id) FROM delivery_events", 2)
	if again := replay(reporter.ReplayRequest{All: true}); len(again.Replayed) != 0 {
		t.Fatalf("second replay --all replayed %+v; want nothing", again.Replayed)
	}
	if byID := replay(reporter.ReplayRequest{IDs: []string{fromSink.ID}}); len(byID.Replayed) != 0 || len(byID.Skipped) != 1 {
		t.Fatalf("replay --id of a replayed one = %+v; want it skipped", byID)
	}
	if n := f.Count(t, "SELECT count() FROM delivery_events FINAL"); n != 2 {
		t.Fatalf("after replays ClickHouse holds %d delivery events; want 2", n)
	}
	if n := f.Count(t, "SELECT count() FROM delivery_events WHERE otp_id = 'a4762c77-94cb-43d6-bbab-9f37e088ad11' AND channel = 'SMS'"); n != 1 {
		t.Fatalf("the replayed webhook stored %d rows; want 1", n)
	}

	var list reporter.DeadLettersResponse
	webtest.GetJSON(t, srv.URL+"/api/v1/deadletters?pending=true", &list)
	if len(list.DeadLetters) != 1 || list.DeadLetters[0].ID != junk.ID {
		t.Fatalf("pending dead letters = %+v; want only the junk", list.DeadLetters)
	}
	// pending=1 or pending=maybe listed every dead letter, replayed ones too.
	for _, q := range []string{"limit=0", "pending=maybe", "limit=1&limit=2", "x=%%"} {
		if bad, err := http.Get(srv.URL + "/api/v1/deadletters?" + q); err != nil || bad.StatusCode != http.StatusBadRequest {
			t.Fatalf("GET /api/v1/deadletters?%s = %v, %v; want 400", q, bad, err)
		} else {
			bad.Body.Close()
		}
	}
	webtest.GetJSON(t, srv.URL+"/api/v1/deadletters?id="+junk.ID+"&id=dl-none", &list) // ids: one each
	if len(list.DeadLetters) != 1 {
		t.Fatalf("dead letters by two ids = %+v; want the junk", list.DeadLetters)
	}
	webtest.GetJSON(t, srv.URL+"/api/v1/deadletters?pending=1", &list)
	if len(list.DeadLetters) != 1 || list.DeadLetters[0].ID != junk.ID {
		t.Fatalf("dead letters with pending=1 = %+v; want only the junk", list.DeadLetters)
	}
	// The command is a client of the same API.
	var out bytes.Buffer
	if err := reporter.RunDeadLetters(ctx, "list", reporter.DeadLettersCLIConfig{APIFlags: reporter.APIFlags{API: srv.URL}, Pending: true, Limit: 10}, &out); err != nil || !strings.Contains(out.String(), junk.ID) || strings.Contains(out.String(), fromSink.ID) {
		t.Fatalf("deadletters list --pending = %v\n%s\nwant only %s", err, out.String(), junk.ID)
	}
	out.Reset()
	if err := reporter.RunDeadLetters(ctx, "replay", reporter.DeadLettersCLIConfig{APIFlags: reporter.APIFlags{API: srv.URL}, All: true}, &out); err != nil || !strings.Contains(out.String(), "0 replayed, 1 skipped") {
		t.Fatalf("deadletters replay --all = %v\n%s\nwant 0 replayed, 1 skipped", err, out.String())
	}
	resp, err := http.Post(srv.URL+"/api/v1/deadletters/replay", "application/json", bytes.NewReader([]byte(`{}`)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("replay of nothing: %s; want 400", resp.Status)
	}
}

// A dead letter is deleted by id, with its replays' records, and nothing
// else: not the others, not the events a replay stored.
func TestDeadLettersDelete(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	at := time.Now().UTC().Truncate(time.Millisecond)
	webhook := `{"channel":"SMS","otpId":"a4762c77-94cb-43d6-bbab-9f37e088ad21","status":"DELIVERED","timestamp":"2026-06-02T09:59:59Z"}`
	var dls []events.Message
	for _, body := range []string{webhook, "{", "not even JSON"} {
		m, err := events.NewDeadLetterMessage(events.DeadLetter{Reason: "refused", Status: 400, Source: "ingest", ReceivedAt: at}, []byte(body), 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		dls = append(dls, m)
	}
	if err := f.Broker.Publish(ctx, dls...); err != nil {
		t.Fatal(err)
	}
	f.WaitCount(t, "SELECT count() FROM dead_letters", 3)
	srv := deadLettersAPI(t, f)
	api := reporter.DeadLettersCLIConfig{APIFlags: reporter.APIFlags{API: srv.URL}}
	var out bytes.Buffer
	if err := reporter.RunDeadLetters(ctx, "replay", reporter.DeadLettersCLIConfig{APIFlags: api.APIFlags, IDs: []string{dls[0].ID}}, &out); err != nil {
		t.Fatalf("replay the webhook: %v\n%s", err, out.String())
	}
	f.WaitCount(t, "SELECT count() FROM delivery_events WHERE otp_id = 'a4762c77-94cb-43d6-bbab-9f37e088ad21'", 1)

	// None named: refused; there is no "delete all".
	req, _ := http.NewRequestWithContext(ctx, http.MethodDelete, srv.URL+"/api/v1/deadletters", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("DELETE /api/v1/deadletters naming none = %v, %v; want 400", resp, err)
	} else {
		resp.Body.Close()
	}
	// A replay naming more than a list's worth is the client's error, and
	// a body over 1 MiB too large, not ClickHouse's failure.
	manyIDs, _ := json.Marshal(reporter.ReplayRequest{IDs: make([]string, store.MaxDeadLettersListed+1)})
	for body, want := range map[string]int{
		string(manyIDs): http.StatusBadRequest,
		`{"ids":["` + strings.Repeat("x", 1<<20) + `"]}`: http.StatusRequestEntityTooLarge,
	} {
		resp, err := http.Post(srv.URL+"/api/v1/deadletters/replay", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var p problem.Details
		_ = json.NewDecoder(resp.Body).Decode(&p)
		resp.Body.Close()
		if resp.StatusCode != want || p.Status != want {
			t.Errorf("a replay of %d bytes = %d %+v; want %d", len(body), resp.StatusCode, p, want)
		}
	}

	// The replayed webhook and a junk one, and an id no dead letter has:
	// the command exits 1 for that one, after deleting the others.
	out.Reset()
	del := api
	del.IDs = []string{dls[0].ID, dls[1].ID, "dl-nonesuch"}
	err := reporter.RunDeadLetters(ctx, "delete", del, &out)
	if err == nil || !strings.Contains(out.String(), "2 deleted, 1 not found") || !strings.Contains(out.String(), "dl-nonesuch\tnot found") {
		t.Fatalf("deadletters delete = %v\n%s\nwant 2 deleted, dl-nonesuch not found, an error", err, out.String())
	}
	var list reporter.DeadLettersResponse
	webtest.GetJSON(t, srv.URL+"/api/v1/deadletters", &list)
	if len(list.DeadLetters) != 1 || list.DeadLetters[0].ID != dls[2].ID {
		t.Fatalf("dead letters after the delete: %+v; want only %s", list.DeadLetters, dls[2].ID)
	}
	if p, err := f.DB.PendingDeadLetters(ctx); err != nil || p.Count != 1 {
		t.Fatalf("PendingDeadLetters after the delete = %+v, %v; want 1", p, err)
	}
	for q, want := range map[string]uint64{
		"SELECT count() FROM dead_letter_replays":                                                   0,
		"SELECT count() FROM delivery_events WHERE otp_id = 'a4762c77-94cb-43d6-bbab-9f37e088ad21'": 1,
	} {
		if n := f.Count(t, q); n != want {
			t.Errorf("%s = %d after the delete; want %d", q, n, want)
		}
	}
	// Deleted before: missing now.
	out.Reset()
	del.IDs = []string{dls[1].ID}
	if err := reporter.RunDeadLetters(ctx, "delete", del, &out); err == nil || !strings.Contains(out.String(), "0 deleted, 1 not found") {
		t.Fatalf("deadletters delete of a deleted one = %v\n%s; want it not found", err, out.String())
	}
}

// A message the sink could not read is not replayed while it still cannot:
// it would come back as a new dead letter with every replay.
func TestSinkPoisonNotReplayedAgain(t *testing.T) {
	f := newFixture(t)
	at := time.Now().UTC().Truncate(time.Millisecond)
	poison, err := events.NewDeadLetterMessage(events.DeadLetter{Reason: "malformed", Field: "tyntec.2fa.delivery.SMS.DELIVERED", Source: "sink", ReceivedAt: at}, []byte(`{"otpId":"not json`), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Broker.Publish(t.Context(), poison); err != nil {
		t.Fatal(err)
	}
	f.WaitCount(t, "SELECT count() FROM dead_letters", 1)
	res, err := reporter.NewDeadLetters(f.DB, f.Broker, brokertest.Logger(t)).Replay(t.Context(), reporter.ReplayRequest{All: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Replayed) != 0 || len(res.Skipped) != 1 || !strings.Contains(res.Skipped[0].Skipped, "sink can read") {
		t.Fatalf("replay --all = %+v; want the poison skipped, still unreadable", res)
	}
}

// TestDeadLettersReplayMethods: silent-auth outcomes and push statuses that
// ingest refused for their Content-Type are dead-lettered with their
// endpoint (the silent one with pseudonyms, never the phone number or
// mobileId: not on NATS, not in ClickHouse) and replayed as the messages
// ingest publishes for the same bodies sent correctly: the same ids (so
// the correct post afterwards is a duplicate) and the same login hash.
func TestDeadLettersReplayMethods(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	const key = "replay-pseudonym-key-0123"
	hash := events.KeyedHash([]byte(key))

	h := ingest.NewHandler(ingest.Config{Tokens: []string{webhookToken}, MaxBodyBytes: ingest.DefaultMaxBodyBytes, PublishTimeout: 5 * time.Second, RetryAfter: time.Second},
		f.Broker, brokertest.Logger(t), prometheus.NewRegistry())
	hooks := chi.NewRouter()
	ingest.Mount(hooks, append(h.Routes(), ingest.NewMethods(h, []byte(key), prometheus.NewRegistry()).Routes()...)...)
	ing := httptest.NewServer(hooks)
	t.Cleanup(ing.Close)
	post := func(path, body, contentType string, want int) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ing.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("X-Webhook-Token", webhookToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("POST %s %.60s: %s; want %d", path, body, resp.Status, want)
		}
	}
	api := chi.NewRouter()
	reporter.NewDeadLetters(f.DB, f.Broker, brokertest.Logger(t)).Mount(api)
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)

	start := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
	silent := fmt.Sprintf(`{"attemptId":"sa-replay","startedAt":%q,"finishedAt":%q,"result":"verified","loginHint":"381999888777","mobileId":"MOBILE-SECRET-1"}`,
		start.Format(time.RFC3339), start.Add(time.Second).Format(time.RFC3339))
	push := fmt.Sprintf(`{"uuid":"0b5f3c1e-9d2a-4f60-8c1b-2e7d5a9f1c34","tfaId":"5661166","status":"approved","createdAt":%q,"hiddenDetails":{"correlationId":"login-replay"}}`,
		start.Format(time.RFC3339))
	post(ingest.SilentPath, silent, "text/plain", http.StatusUnsupportedMediaType)
	post(ingest.PushPath, push, "text/plain", http.StatusUnsupportedMediaType)
	// Not replayable: still invalid (no attemptId), and a body withheld.
	post(ingest.SilentPath, strings.Replace(silent, `"attemptId":"sa-replay",`, "", 1), "application/json", http.StatusBadRequest)
	post(ingest.SilentPath, "loginHint=381999888777", "application/json", http.StatusBadRequest)
	f.WaitCount(t, "SELECT count() FROM dead_letters", 4)
	for query, want := range map[string]uint64{
		"SELECT count() FROM dead_letters WHERE path = '/silent-auth/outcomes'":                                              3,
		"SELECT count() FROM dead_letters WHERE path = '/webhooks/push' AND position(body, 'correlationId') > 0":             1,
		"SELECT count() FROM dead_letters WHERE position(body, '5661166') > 0":                                               0, // the tfaId
		"SELECT count() FROM dead_letters WHERE position(body, '" + events.Pseudonym(hash("381999888777")) + "') > 0":        2,
		"SELECT count() FROM dead_letters WHERE position(body, '381999888777') > 0 OR position(body, 'MOBILE-SECRET-1') > 0": 0,
	} {
		if got := f.Count(t, query); got != want {
			t.Errorf("%s = %d; want %d", query, got, want)
		}
	}

	resp, err := http.Post(srv.URL+"/api/v1/deadletters/replay", "application/json", strings.NewReader(`{"all":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var res reporter.ReplayResult
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		t.Fatal(err)
	}
	if len(res.Replayed) != 2 || len(res.Skipped) != 2 {
		t.Fatalf("replay --all = %+v; want the silent outcome and the push status replayed, two skipped", res)
	}
	// What ingest publishes for the bodies sent correctly.
	outs, err := events.DecodeSilentOutcomes([]byte(silent), time.Now(), hash)
	if err != nil {
		t.Fatal(err)
	}
	wantSilent, _ := events.NewSilentOutcomeMessage(&outs[0])
	ps, err := events.DecodePushEvents([]byte(push), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	wantPush, _ := events.NewPushMessage(&ps[0])
	stream, err := brokertest.JetStream(t, f.Broker).Stream(ctx, f.Broker.StreamName())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []events.Message{wantSilent, wantPush} {
		m, err := stream.GetLastMsgForSubject(ctx, want.Subject)
		if err != nil {
			t.Fatalf("%s: %v", want.Subject, err)
		}
		if got := m.Header.Get(events.HeaderMsgID); got != want.ID {
			t.Errorf("replayed on %s with id %s; ingest publishes %s", want.Subject, got, want.ID)
		}
	}
	f.WaitCount(t, "SELECT count() FROM silent_auth_outcomes WHERE event_id = '"+wantSilent.ID+"' AND login_hint_hash = '"+hash("381999888777")+
		"' AND mobile_id_hash = '"+hash("MOBILE-SECRET-1")+"'", 1)
	f.WaitCount(t, "SELECT count() FROM push_events WHERE event_id = '"+wantPush.ID+"' AND correlation_id = 'login-replay'", 1)

	// The app sends them again correctly: duplicates of the replayed ones.
	post(ingest.SilentPath, silent, "application/json", http.StatusAccepted)
	post(ingest.PushPath, push, "application/json", http.StatusOK)
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter("tyntec.2fa.>"))
	if err != nil {
		t.Fatal(err)
	}
	if n := info.State.Subjects; n[wantSilent.Subject] != 1 || n[wantPush.Subject] != 1 {
		t.Errorf("stream subjects = %v; want one message on each of %s and %s", n, wantSilent.Subject, wantPush.Subject)
	}
}

// TestReplayMessagesByPath: an ingest dead letter is decoded as the
// endpoint named by its path does; one from before paths were recorded
// as a webhook; a silent-auth body only in its scrubbed form.
func TestReplayMessagesByPath(t *testing.T) {
	at := time.Now().UTC()
	webhook := `{"channel":"SMS","otpId":"a4762c77-94cb-43d6-bbab-9f37e088ad11","status":"DELIVERED","timestamp":"2026-06-02T09:59:59Z"}`
	silent := func(loginHint string) string {
		return `{"attemptId":"sa-1","startedAt":"2026-06-02T09:00:00Z","finishedAt":"2026-06-02T09:00:01Z","result":"verified","loginHint":"` + loginHint + `"}`
	}
	hash := events.KeyedHash([]byte("a key of sixteen+"))("381999888777")
	tests := []struct {
		path, body string
		bodyBytes  int
		subject    string // of the one message wanted; "": an error
	}{
		{"", webhook, len(webhook), "tyntec.2fa.delivery.SMS.DELIVERED"},
		{ingest.WebhookPath, webhook, len(webhook), "tyntec.2fa.delivery.SMS.DELIVERED"},
		{ingest.SilentPath, silent(events.Pseudonym(hash)), 0, "tyntec.2fa.silent.verified"},
		{ingest.SilentPath, silent("381999888777"), 0, ""}, // raw: never stored as a hash
		{ingest.SilentPath, "", 40, ""},                    // withheld
		{ingest.SilentPath, webhook, len(webhook), ""},
		{ingest.PushPath, `{"uuid":"u-1","status":"denied","createdAt":"2026-06-02T09:00:00Z"}`, 0, "tyntec.2fa.push.denied"},
		// Recorded without the path (an older build or sink): the endpoint
		// whose decoder takes the body.
		{"", silent(events.Pseudonym(hash)), 0, "tyntec.2fa.silent.verified"},
		{"", `{"uuid":"u-1","status":"denied","createdAt":"2026-06-02T09:00:00Z"}`, 0, "tyntec.2fa.push.denied"},
		{"", `{"nothing":"known"}`, 18, ""},
		{"/otps/track", `{}`, 2, ""},
	}
	for _, tt := range tests {
		r := store.DeadLetterRecord{ID: "dl-1", Source: "ingest", Path: tt.path, Body: tt.body, BodyBytes: tt.bodyBytes, ReceivedAt: at}
		msgs, _, err := reporter.ReplayMessages(r, at)
		if tt.subject == "" {
			if err == nil {
				t.Errorf("ReplayMessages(path %q, %.50s) = %d messages; want an error", tt.path, tt.body, len(msgs))
			}
			continue
		}
		if err != nil || len(msgs) != 1 || msgs[0].Subject != tt.subject {
			t.Errorf("ReplayMessages(path %q, %.50s) = %+v, %v; want one message on %s", tt.path, tt.body, msgs, err, tt.subject)
			continue
		}
		if strings.HasPrefix(tt.subject, "tyntec.2fa.silent.") && !strings.Contains(string(msgs[0].Data), `"loginHintHash":"`+hash+`"`) {
			t.Errorf("replayed outcome %s; want loginHintHash %s", msgs[0].Data, hash)
		}
	}
}

// TestReplayArrayLeavesOutOnlyTheInvalid: an endpoint refuses an array
// whole for one invalid element; its replay publishes the valid elements,
// with the ids they would have had, and names what it left out. An array
// with no valid element is still skipped.
func TestReplayArrayLeavesOutOnlyTheInvalid(t *testing.T) {
	at := time.Now().UTC()
	ev := func(otp string) string {
		return `{"channel":"SMS","otpId":"` + otp + `","status":"DELIVERED","timestamp":"2026-06-02T09:59:59Z"}`
	}
	const a, b = "a4762c77-94cb-43d6-bbab-9f37e088ad11", "b4762c77-94cb-43d6-bbab-9f37e088ad12"
	body := "[" + ev(a) + "," + ev("not-a-uuid") + "," + ev(b) + "]"
	r := store.DeadLetterRecord{ID: "dl-1", Source: "ingest", Path: ingest.WebhookPath, Body: body, BodyBytes: len(body), ReceivedAt: at}
	msgs, left, err := reporter.ReplayMessages(r, at)
	if err != nil || len(msgs) != 2 || len(left) != 1 || !strings.HasPrefix(left[0], "[1]: ") || !strings.Contains(left[0], "otpId") {
		t.Fatalf("ReplayMessages(an array with element 1 invalid) = %d messages, left %q, %v; want 2, element 1 left out naming otpId", len(msgs), left, err)
	}
	whole, err := events.DecodeDeliveryStatuses([]byte("["+ev(a)+","+ev(b)+"]"), at)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range whole {
		if got := msgs[i].ID; got != events.DeliveryID(&want) {
			t.Errorf("replayed element %d has id %s; want %s, as the endpoint would have published it", i, got, events.DeliveryID(&want))
		}
	}
	// The same array recorded without its path (an older sink's) is
	// replayed as the webhook it was.
	r.Path = ""
	if msgs, left, err := reporter.ReplayMessages(r, at); err != nil || len(msgs) != 2 || len(left) != 1 {
		t.Errorf("ReplayMessages(the array without its path) = %d messages, left %q, %v; want 2, one left out", len(msgs), left, err)
	}
	r.Path = ingest.WebhookPath
	r.Body = "[" + ev("not-a-uuid") + "]"
	if msgs, _, err := reporter.ReplayMessages(r, at); err == nil || !strings.Contains(err.Error(), "still not a valid webhook") {
		t.Errorf("ReplayMessages(an array with no valid element) = %d messages, %v; want skipped", len(msgs), err)
	}
}

// A body that is not UTF-8 is listed with its exact bytes in bodyBase64:
// body, JSON text, shows each invalid byte as U+FFFD.
func TestDeadLetterBodyNotUTF8(t *testing.T) {
	f := newFixture(t)
	raw := []byte(`{"channel":"SMS","status":"DELIV` + "\xff" + `ERED"}`)
	m, err := events.NewDeadLetterMessage(events.DeadLetter{Reason: "malformed JSON", Status: 400, Source: "ingest", ReceivedAt: time.Now().UTC()}, raw, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Broker.Publish(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	f.WaitCount(t, "SELECT count() FROM dead_letters", 1)
	srv := deadLettersAPI(t, f)
	var list reporter.DeadLettersResponse
	webtest.GetJSON(t, srv.URL+"/api/v1/deadletters", &list)
	if len(list.DeadLetters) != 1 || !bytes.Equal(list.DeadLetters[0].BodyBase64, raw) || !strings.Contains(list.DeadLetters[0].Body, "DELIV\uFFFDERED") {
		t.Fatalf("dead letters: %+v; want one whose bodyBase64 is the raw body", list.DeadLetters)
	}
}

// deadLettersAPI serves the dead letters' API over f until the test ends.
func deadLettersAPI(t *testing.T, f *fixture) *httptest.Server {
	t.Helper()
	r := chi.NewRouter()
	reporter.NewDeadLetters(f.DB, f.Broker, brokertest.Logger(t)).Mount(r)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv
}
