package store

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/events"
)

// deliverySamples are delivery payloads as the publishers write them, and
// shapes that must take the slow path.
func deliverySamples(t testing.TB) [][]byte {
	at := time.Date(2026, 11, 29, 12, 0, 0, 123456789, time.UTC)
	var out [][]byte
	for _, ev := range []events.DeliveryStatus{
		{Channel: events.ChannelSMS, OTPID: "0d6e5c5a-5f4c-4a38-9b3f-8d2f0c7e9a11", Status: events.StatusDelivered, Timestamp: at, ReceivedAt: at.Add(time.Second), Source: events.SourceWebhook},
		{Channel: events.ChannelViber, OTPID: "0d6e5c5a-5f4c-4a38-9b3f-8d2f0c7e9a11", ProfileID: "p-1", Status: events.StatusUndeliverable, Timestamp: at,
			Error: &events.DeliveryError{Code: "tyntec::delivery::1001", Message: "Subscriber unreachable – ünïcode"}, Source: events.SourcePoll, MissedWebhook: true},
		{Channel: "CARRIER_PIGEON", OTPID: "x", Status: "LOST", UnknownChannel: true, UnknownStatus: true, TimestampFromReceipt: true, OriginalTimestamp: "yesterday", Timestamp: at, ReceivedAt: at},
		{Error: &events.DeliveryError{}},
	} {
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	files, _ := filepath.Glob(filepath.Join("..", "events", "testdata", "*.json"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	for _, s := range []string{
		``, `{}`, ` { } `, `null`, `[]`, `{"channel":"SMS"}x`, `{"channel":"SMS",}`, `{"CHANNEL":"SMS"}`,
		`{"channel":"SMS","channel":"VOICE"}`, `{"channel":"S\u004dS"}`, `{"channel":"\xff"}`, `{"channel":null}`,
		`{"error":null}`, `{"error":{"code":"a","extra":1}}`, `{"error":{},"error":{"code":"b"}}`, `{"timestamp":""}`,
		`{"timestamp":"2026-11-29T12:00:00Z","x":1}`, `{"timestamp":"2026-13-29T12:00:00Z"}`, `{"unknownStatus":truex}`,
		`{"unknownStatus":1}`, `{"missedWebhook":false , "source" : "poll" }` + "\n",
	} {
		out = append(out, []byte(s))
	}
	return out
}

// FuzzDecodeDelivery holds segmentio's decoder to encoding/json: whatever
// the input, decodeDelivery gives what json.Unmarshal gives, error or value.
func FuzzDecodeDelivery(f *testing.F) {
	for _, b := range deliverySamples(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var want events.DeliveryStatus
		wantErr := json.Unmarshal(data, &want)
		var got events.DeliveryStatus
		gotErr := decodeDelivery(data, &got)
		if (gotErr != nil) != (wantErr != nil) {
			t.Fatalf("decodeDelivery(%q) error %v; json.Unmarshal error %v", data, gotErr, wantErr)
		}
		if wantErr == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("decodeDelivery(%q) = %+v; json.Unmarshal = %+v", data, got, want)
		}
	})
}

// BenchmarkBatchAddDelivery is the sink's decoding of one delivery event.
func BenchmarkBatchAddDelivery(b *testing.B) {
	ev := events.DeliveryStatus{Channel: events.ChannelSMS, OTPID: "0d6e5c5a-5f4c-4a38-9b3f-8d2f0c7e9a11", ProfileID: "adbe6521-f5bd-4295-9fd9-776debdf7dc2",
		Status: events.StatusUndeliverable, Source: events.SourceWebhook, Timestamp: time.Now().UTC(), ReceivedAt: time.Now().UTC(),
		Error: &events.DeliveryError{Code: "tyntec::delivery::1001", Message: "Subscriber unreachable"}}
	m, err := events.NewDeliveryMessage(&ev)
	if err != nil {
		b.Fatal(err)
	}
	var batch Batch
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%10000 == 0 {
			batch.Reset()
		}
		if err := batch.Add(m.Subject, m.ID, m.Data, uint64(i)); err != nil {
			b.Fatal(err)
		}
	}
}
