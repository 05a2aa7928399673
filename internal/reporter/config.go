package reporter

import (
	"flag"
	"fmt"
	"net"
	"time"

	"github.com/otpscope/otpscope/internal/broker"
	"github.com/otpscope/otpscope/internal/sink"
)

// Config configures the reporter service.
type Config struct {
	Listen          string
	DataDir         string
	ShutdownTimeout time.Duration

	NATS       broker.Config
	ClickHouse sink.Config
	Sink       SinkConfig
	// Reports schedules the summaries and alerts.
	Reports ReportsConfig
}

// DefaultListen is the reporter's HTTP address.
const DefaultListen = "127.0.0.1:8081"

// RegisterFlags registers the reporter's own flags; the command registers the
// NATS (broker.Config) and ClickHouse (sink.Config) flags and --data-dir.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Listen, "listen", DefaultListen, "HTTP address (API, health, metrics)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 15*time.Second, "how long in-flight requests may finish on stop")
	c.Sink.RegisterFlags(fs)
	c.Reports.RegisterFlags(fs)
}

// RegisterFlags registers the sink consumer's flags.
func (c *SinkConfig) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Durable, "sink-consumer", DefaultDurable, "durable JetStream consumer shared by reporter replicas")
	fs.IntVar(&c.MaxRows, "sink-batch-rows", DefaultMaxRows, "insert when a batch has this many rows")
	fs.IntVar(&c.MaxBytes, "sink-batch-bytes", DefaultMaxBytes, "insert when a batch's events reach this many bytes")
	fs.DurationVar(&c.FlushInterval, "sink-flush-interval", DefaultFlush, "insert at the latest this long after a batch's first event")
	fs.DurationVar(&c.AckWait, "sink-ack-wait", DefaultAckWait, "JetStream redelivers an event not acknowledged within this time")
}

// Validate reports the first configuration error.
func (c *Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("listen %q: %w", c.Listen, err)
	}
	if c.ShutdownTimeout <= 0 {
		return fmt.Errorf("shutdown-timeout %v: must be positive", c.ShutdownTimeout)
	}
	if c.ClickHouse.DSN == "" {
		if c.DataDir == "" {
			return fmt.Errorf("data-dir is required for the embedded ClickHouse engine")
		}
		if _, _, err := net.SplitHostPort(c.ClickHouse.Listen); err != nil {
			return fmt.Errorf("clickhouse-listen %q: %w", c.ClickHouse.Listen, err)
		}
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
