package reporter_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/reporter"
)

func TestDeadLettersReplayEachOnce(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
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

	r := chi.NewRouter()
	reporter.NewDeadLetters(f.DB, f.Broker, brokertest.Logger(t)).Mount(r)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
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

	resp, err := http.Get(srv.URL + "/api/v1/deadletters?pending=true")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list reporter.DeadLettersResponse
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	if len(list.DeadLetters) != 1 || list.DeadLetters[0].ID != junk.ID {
		t.Fatalf("pending dead letters = %+v; want only the junk", list.DeadLetters)
	}
	if bad, err := http.Get(srv.URL + "/api/v1/deadletters?limit=0"); err != nil || bad.StatusCode != http.StatusBadRequest {
		t.Fatalf("GET /api/v1/deadletters?limit=0 = %v, %v; want 400", bad, err)
	} else {
		bad.Body.Close()
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
	resp, err = http.Post(srv.URL+"/api/v1/deadletters/replay", "application/json", bytes.NewReader([]byte(`{}`)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("replay of nothing: %s; want 400", resp.Status)
	}
}
