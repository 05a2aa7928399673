package broker_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/otpscope/otpscope/internal/broker"
	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/polltest"
)

// TestKeysLeavesNothingBehind lists a bucket of more keys than nats.go's
// lister buffers (256) again and again: every key each time, and no
// goroutine left over. (The push watch stopped reading its lister early when
// its budget ran out, and each such cycle left one goroutine blocked.)
func TestKeysLeavesNothingBehind(t *testing.T) {
	b := brokertest.NewServer(t).Broker(t)
	kv, err := b.KeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: "keys_test"})
	if err != nil {
		t.Fatal(err)
	}
	const n = 600
	for i := range n {
		if _, err := kv.Put(t.Context(), fmt.Sprintf("k%03d", i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	before := runtime.NumGoroutine()
	for range 10 {
		keys, err := broker.Keys(t.Context(), kv)
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) != n {
			t.Fatalf("Keys returned %d keys; want %d", len(keys), n)
		}
	}
	var now int
	if !polltest.Within(5*time.Second, 50*time.Millisecond, func() bool {
		now = runtime.NumGoroutine()
		return now <= before+2
	}) {
		t.Errorf("%d goroutines after 10 listings; %d before", now, before)
	}
}
