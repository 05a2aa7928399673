// Command ingest receives tyntec's DeliveryStatus webhooks and publishes them to
// NATS JetStream, answering 200 only once they are durable. Without --nats-url it
// hosts the embedded NATS server.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/otpscope/otpscope/internal/flagenv"
	"github.com/otpscope/otpscope/internal/ingest"
)

func main() { os.Exit(run()) }

func run() int {
	var cfg ingest.Config
	fs := flag.NewFlagSet("ingest", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	cfg.NATS.RegisterFlags(fs, "")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := flagenv.Parse(fs, os.Args[1:], os.LookupEnv, ingest.RenamedEnv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "ingest:", err)
		return 2
	}
	logger, err := newLogger(*logLevel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ingest:", err)
		return 2
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "ingest:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := ingest.Run(ctx, cfg, logger); err != nil {
		logger.Error("ingest failed", "err", err)
		return 1
	}
	return 0
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log-level %q: %w", level, err)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}
