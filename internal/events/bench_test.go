package events_test

import (
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/events"
)

// A webhook as tyntec sends it, the body bench/wrk/run.sh posts.
var benchBody = []byte(`{"channel":"SMS","otpId":"6c1bb8a6-4d5e-4b1a-9f35-0a7e2f3c9b11","profileId":"adbe6521-f5bd-4295-9fd9-776debdf7dc2","status":"UNDELIVERABLE","timestamp":"2026-11-29T22:41:54Z","error":{"code":"tyntec::delivery::1001","message":"Subscriber unreachable"}}`)

// The two steps of an accepted webhook in package events: validating the
// body, and the message it is published as.
//
//	go test -run '^$' -bench . -benchmem ./internal/events
func BenchmarkDecodeDeliveryStatuses(b *testing.B) {
	now := time.Date(2026, 11, 29, 22, 42, 0, 0, time.UTC)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := events.DecodeDeliveryStatuses(benchBody, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNewDeliveryMessage(b *testing.B) {
	evs, err := events.DecodeDeliveryStatuses(benchBody, time.Date(2026, 11, 29, 22, 42, 0, 0, time.UTC))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := events.NewDeliveryMessage(&evs[0]); err != nil {
			b.Fatal(err)
		}
	}
}
