package app_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/chdb/chdbtest"
)

// TestConcurrentWebhooksReachClickHouseOnce posts webhooks from 64 clients
// at once to the all-in-one with its defaults (fsync every write, group
// commit on): every one is answered 200 and becomes exactly one row in
// ClickHouse, whether it went out in an atomic batch or on its own. How
// many were batched depends on the disk's speed; the test logs it, and
// internal/broker's group commit tests force batches.
func TestConcurrentWebhooksReachClickHouseOnce(t *testing.T) {
	const clients, each = 64, 20
	ch := chdbtest.Serve(t)
	cfg := newConfig(t, "otpscope")
	cfg.ClickHouse.DSN = ch.DSN + "/" + ch.Database
	cfg.Sink.FlushInterval = 100 * time.Millisecond
	cfg.Ingest.Tokens = []string{token}
	if !cfg.NATS.GroupCommits() {
		t.Fatal("the all-in-one's defaults do not group commits")
	}
	a := serve(t, cfg)
	base := "http://" + a.Addr()
	var wg sync.WaitGroup
	codes := make([]int, clients*each)
	for c := range clients {
		wg.Go(func() {
			for i := range each {
				n := c*each + i
				codes[n] = postTo(t, base, webhook(fmt.Sprintf("7b1d2c3e-0000-4000-8000-%012d", n), "SMS", "DELIVERED", "2026-02-01T10:00:00Z"))
			}
		})
	}
	wg.Wait()
	for n, code := range codes {
		if code != http.StatusOK {
			t.Fatalf("webhook %d answered %d", n, code)
		}
	}
	bs := a.Broker().Batches()
	t.Logf("%d webhooks, %d of them in %d atomic batches (%d failed)", len(codes), bs.Messages, bs.Batches, bs.Failures)
	if got := brokertest.StreamMsgs(t, a.Broker()); got != uint64(len(codes)) {
		t.Fatalf("stream holds %d messages; want %d", got, len(codes))
	}
	conn := chdbtest.Conn(t, ch.Options())
	var rows, otps uint64
	brokertest.WaitFor(t, 60*time.Second, "every webhook in ClickHouse", func() bool {
		if err := conn.QueryRow(t.Context(), "SELECT count(), uniqExact(otp_id) FROM delivery_events").Scan(&rows, &otps); err != nil {
			t.Fatal(err)
		}
		return rows >= uint64(len(codes))
	})
	time.Sleep(500 * time.Millisecond) // a duplicate would land after the last one
	if err := conn.QueryRow(t.Context(), "SELECT count(), uniqExact(otp_id) FROM delivery_events").Scan(&rows, &otps); err != nil {
		t.Fatal(err)
	}
	if rows != uint64(len(codes)) || otps != uint64(len(codes)) {
		t.Fatalf("delivery_events holds %d rows of %d OTPs; want %d of %d", rows, otps, len(codes), len(codes))
	}
}
