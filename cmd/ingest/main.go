// Command ingest receives tyntec's DeliveryStatus webhooks and publishes them to
// NATS JetStream, answering 200 only once they are durable. Without --nats-url it
// hosts the embedded NATS server.
package main

import (
	"context"
	"flag"
	"log/slog"
	"os"

	"github.com/otpscope/otpscope/internal/cli"
	"github.com/otpscope/otpscope/internal/ingest"
)

func main() {
	os.Exit(cli.Main(cli.Command{
		Name:       "ingest",
		RenamedEnv: ingest.RenamedEnv,
		Flags: func(fs *flag.FlagSet) func(context.Context, *slog.Logger) error {
			var cfg ingest.Config
			cfg.RegisterFlags(fs)
			cfg.NATS.RegisterFlags(fs, "")
			dataDir := cli.DataDirFlag(fs)
			return func(ctx context.Context, logger *slog.Logger) error {
				cfg.NATS.DataDir = *dataDir
				if err := cfg.Validate(); err != nil {
					return cli.Usage(err)
				}
				return ingest.Run(ctx, cfg, logger)
			}
		},
	}, os.Args[1:], os.LookupEnv, os.Stderr))
}
