// Package cli is the shared shape of otpscope's commands: flags with OTPSCOPE_*
// environment equivalents, a --log-level, a slog logger, and a context that ends
// on SIGINT or SIGTERM. The environment is passed in by cmd/.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os/signal"
	"syscall"

	"github.com/otpscope/otpscope/internal/flagenv"
)

// Command describes one binary (or subcommand).
type Command struct {
	Name string
	// Flags registers the command's flags and returns what runs after parsing.
	Flags func(fs *flag.FlagSet) func(ctx context.Context, logger *slog.Logger) error
}

// Main parses args (after the environment, looked up with lookup), runs the
// command until it returns or a signal arrives, and returns the exit code:
// 0 success, 1 failure, 2 bad usage.
func Main(c Command, args []string, lookup func(string) (string, bool), stderr io.Writer) int {
	fs := flag.NewFlagSet(c.Name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	run := c.Flags(fs)
	level := fs.String("log-level", "info", "debug, info, warn or error")
	if err := flagenv.Parse(fs, args, lookup); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "%s: %v\n", c.Name, err)
		return 2
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(stderr, "%s: log-level %q: %v\n", c.Name, *level, err)
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: l})).With("service", c.Name)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, logger); err != nil {
		var u usageError
		if errors.As(err, &u) {
			fmt.Fprintf(stderr, "%s: %v\n", c.Name, err)
			return 2
		}
		logger.Error("stopped with an error", "err", err)
		return 1
	}
	return 0
}

// Usage marks err as a configuration mistake (exit code 2, printed plainly).
func Usage(err error) error { return usageError{err} }

type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

// DataDirFlag registers --data-dir, the one directory under which the embedded
// NATS server (nats/) and the embedded ClickHouse engine (clickhouse/) keep data.
func DataDirFlag(fs *flag.FlagSet) *string {
	return fs.String("data-dir", "./data", "where the embedded NATS server and ClickHouse engine keep data")
}
