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
