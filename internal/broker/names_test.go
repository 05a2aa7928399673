package broker_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/otpscope/otpscope/internal/broker"
	"github.com/otpscope/otpscope/internal/broker/brokertest"
)

// TestCheckName: the names CheckName refuses are those NATS refuses for a
// stream (a start with one retried "invalid stream name" for good), and
// those it takes NATS takes; the refusal names the setting.
func TestCheckName(t *testing.T) {
	js := brokertest.JetStream(t, brokertest.NewServer(t).Broker(t))
	for i, tt := range []struct {
		name string
		ok   bool
	}{
		{"TYNTEC_2FA_B", true},
		{"otpscope-sink-2", true},
		{strings.Repeat("s", 255), true},
		{"", false},
		{"a.b", false},
		{"a*", false},
		{"a>", false},
		{"a b", false},
		{"a\tb", false},
		{"a/b", false},
		{`a\b`, false},
		{strings.Repeat("s", 256), false},
	} {
		err := broker.CheckName("stream", tt.name)
		if (err == nil) != tt.ok || err != nil && !strings.HasPrefix(err.Error(), "stream") {
			t.Errorf("CheckName(stream, %q) = %v; want ok %v, naming the setting", tt.name, err, tt.ok)
		}
		_, natsErr := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: tt.name, Subjects: []string{fmt.Sprintf("names.%d", i)}})
		if (natsErr == nil) != tt.ok {
			t.Errorf("NATS creating stream %q = %v; CheckName's ok %v disagrees", tt.name, natsErr, tt.ok)
		}
	}
}
