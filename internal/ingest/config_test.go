package ingest_test

import (
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/ingest"
)

func TestConfigValidate(t *testing.T) {
	valid := func() ingest.Config {
		return ingest.Config{Tokens: []string{token}, MaxBodyBytes: 65536, PublishTimeout: time.Second, RetryAfter: time.Second}
	}
	tests := []struct {
		name   string
		mutate func(*ingest.Config)
		ok     bool
	}{
		{"valid", func(*ingest.Config) {}, true},
		{"no tokens", func(c *ingest.Config) { c.Tokens = nil }, false},
		{"insecure without tokens", func(c *ingest.Config) { c.Tokens = nil; c.InsecureNoAuth = true }, true},
		{"insecure with tokens", func(c *ingest.Config) { c.InsecureNoAuth = true }, false},
		{"short token", func(c *ingest.Config) { c.Tokens = []string{"abc"} }, false},
		{"tiny body limit", func(c *ingest.Config) { c.MaxBodyBytes = 10 }, false},
		{"no publish timeout", func(c *ingest.Config) { c.PublishTimeout = 0 }, false},
	}
	for _, tt := range tests {
		c := valid()
		tt.mutate(&c)
		if err := c.Validate(); (err == nil) != tt.ok {
			t.Errorf("%s: Validate() = %v; want ok=%v", tt.name, err, tt.ok)
		}
	}
}

// TestMaxBodyBytesHelpSaysTheLeast: --help says the least --max-body-bytes
// Validate accepts, which it refuses below.
func TestMaxBodyBytesHelpSaysTheLeast(t *testing.T) {
	var c ingest.Config
	fs := flag.NewFlagSet("ingest", flag.ContinueOnError)
	c.RegisterFlags(fs)
	if usage := fs.Lookup("max-body-bytes").Usage; !strings.Contains(usage, "(at least 1024)") {
		t.Errorf("--max-body-bytes help %q does not say (at least 1024)", usage)
	}
	c = ingest.Config{Tokens: []string{token}, PublishTimeout: time.Second, RetryAfter: time.Second}
	for size, ok := range map[int64]bool{1023: false, 1024: true} {
		c.MaxBodyBytes = size
		if err := c.Validate(); (err == nil) != ok {
			t.Errorf("max-body-bytes %d: Validate() = %v; want ok=%v", size, err, ok)
		}
	}
}

// TestCheckMaxPayload: a body limit whose dead letters NATS would refuse
// (every such webhook answered 503 for good) is refused at start, naming
// the most the server's max_payload allows.
func TestCheckMaxPayload(t *testing.T) {
	const embedded, external = 8 << 20, 1 << 20
	for _, tt := range []struct {
		body, payload int64
		ok            bool
	}{
		{ingest.DefaultMaxBodyBytes, external, true},
		{ingest.DefaultMaxBodyBytes, embedded, true},
		{1 << 20, embedded, true},
		{2 << 20, embedded, false},
		{200 << 10, external, false},
	} {
		err := ingest.Config{MaxBodyBytes: tt.body}.CheckMaxPayload(tt.payload)
		if (err == nil) != tt.ok {
			t.Errorf("max-body-bytes %d under max_payload %d: %v; want accepted %v", tt.body, tt.payload, err, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "max_payload") {
			t.Errorf("the refusal %q does not name max_payload", err)
		}
	}
}
