package poller

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/polltest"
)

// TestWatchWaitsForTheServer starts the view's watch of its bucket while the
// NATS server is down (as while JetStream restarts): the watch is retried,
// not given up — which would end the poller — and once the server is back
// the view follows the bucket.
func TestWatchWaitsForTheServer(t *testing.T) {
	srv := brokertest.NewServer(t)
	b := srv.Broker(t)
	s, err := openStore(t.Context(), b, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.watch(ctx, brokertest.Logger(t))
	}()
	select {
	case <-done:
		t.Fatal("the watch returned while the server was down")
	case <-time.After(500 * time.Millisecond):
	}

	srv.Start()
	data, _ := json.Marshal(Record{OTPID: "otp-1", API: "v4"})
	polltest.Until(t, 30*time.Second, "the record put once the server is back", func() bool {
		_, err := s.kv.Put(t.Context(), "otp-1", data)
		return err == nil
	})
	polltest.Until(t, 30*time.Second, "the view to follow the bucket", func() bool {
		s.mu.RLock()
		defer s.mu.RUnlock()
		return s.view["otp-1"].rec.OTPID == "otp-1"
	})
	cancel()
	<-done
}
