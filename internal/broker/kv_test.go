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

// TestEntriesReadsTheLatestOfEachKey reads a bucket of more keys than
// nats.go's watcher buffers (256), one updated, one deleted, one purged,
// again and again: the latest value of each key left, each time, and no
// goroutine left over (nats.go's key lister, read part way, once left one
// blocked at each push watch cycle). An empty bucket has none.
func TestEntriesReadsTheLatestOfEachKey(t *testing.T) {
	ctx := t.Context()
	b := brokertest.NewServer(t).Broker(t)
	empty, err := b.KeyValue(ctx, jetstream.KeyValueConfig{Bucket: "entries_empty"})
	if err != nil {
		t.Fatal(err)
	}
	if es, err := broker.Entries(ctx, empty); err != nil || len(es) != 0 {
		t.Fatalf("an empty bucket: %d entries, %v; want none", len(es), err)
	}
	kv, err := b.KeyValue(ctx, jetstream.KeyValueConfig{Bucket: "entries_test", History: 5})
	if err != nil {
		t.Fatal(err)
	}
	const n = 600
	for i := range n {
		if _, err := kv.Put(ctx, fmt.Sprintf("k%03d", i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := kv.Put(ctx, "k007", []byte("updated")); err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(ctx, "k008"); err != nil {
		t.Fatal(err)
	}
	if err := kv.Purge(ctx, "k009"); err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	for range 10 {
		es, err := broker.Entries(ctx, kv)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, e := range es {
			got[e.Key()] = string(e.Value())
		}
		_, deleted := got["k008"]
		_, purged := got["k009"]
		if len(es) != n-2 || len(got) != n-2 || got["k007"] != "updated" || got["k599"] != "v" || deleted || purged {
			t.Fatalf("Entries returned %d entries, %d keys, k007 %q, k599 %q, k008 %v, k009 %v; want %d, the latest of each, none deleted or purged",
				len(es), len(got), got["k007"], got["k599"], deleted, purged, n-2)
		}
	}
	var now int
	if !polltest.Within(5*time.Second, 50*time.Millisecond, func() bool {
		now = runtime.NumGoroutine()
		return now <= before+2
	}) {
		t.Errorf("%d goroutines after 10 reads; %d before", now, before)
	}
}
