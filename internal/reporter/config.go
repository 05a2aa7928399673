package reporter

import (
	"flag"
	"fmt"
	"net"
	"time"

	"github.com/otpscope/otpscope/internal/broker"
	"github.com/otpscope/otpscope/internal/sink"
	"github.com/otpscope/otpscope/internal/store"
)

// Config configures the reporter service.
type Config struct {
	Listen          string
	ShutdownTimeout time.Duration

	NATS       broker.Config
	ClickHouse store.Config
	Sink       sink.Config
	// Reports schedules the summaries and alerts.
	Reports ReportsConfig
}

// DefaultListen is the reporter's HTTP address.
const DefaultListen = "127.0.0.1:8081"

// RegisterFlags registers the reporter's own flags; the command registers the
// NATS (broker.Config) and ClickHouse (store.Config) flags and --data-dir.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Listen, "listen", DefaultListen, "HTTP address (API, health, metrics)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 15*time.Second, "how long in-flight requests may finish on stop")
	c.Sink.RegisterFlags(fs)
	c.Reports.RegisterFlags(fs)
}

// Validate reports the first configuration error.
func (c *Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("listen %q: %w", c.Listen, err)
	}
	if c.ShutdownTimeout <= 0 {
		return fmt.Errorf("shutdown-timeout %v: must be positive", c.ShutdownTimeout)
	}
	if err := c.ClickHouse.Validate(); err != nil {
		return err
	}
	if err := c.Sink.Validate(); err != nil {
		return err
	}
	if err := c.Reports.Validate(); err != nil {
		return err
	}
	return c.NATS.Validate()
}
