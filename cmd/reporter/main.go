// Command reporter moves every event from NATS JetStream into ClickHouse, and
// serves health and metrics. Without --clickhouse-dsn it hosts the embedded
// ClickHouse engine under --data-dir and serves its HTTP endpoint on
// --clickhouse-listen, where Grafana connects.
package main

import (
	"context"
	"flag"
	"log/slog"
	"os"

	"github.com/otpscope/otpscope/internal/cli"
	"github.com/otpscope/otpscope/internal/reporter"
)

func main() {
	os.Exit(cli.Main(cli.Command{
		Name: "reporter",
		Flags: func(fs *flag.FlagSet) func(context.Context, *slog.Logger) error {
			var cfg reporter.Config
			cfg.RegisterFlags(fs)
			cfg.NATS.RegisterFlags(fs, "nats://127.0.0.1:4222")
			cfg.ClickHouse.RegisterFlags(fs)
			dataDir := cli.DataDirFlag(fs)
			return func(ctx context.Context, logger *slog.Logger) error {
				cfg.DataDir, cfg.NATS.DataDir = *dataDir, *dataDir
				if err := cfg.Validate(); err != nil {
					return cli.Usage(err)
				}
				return reporter.Run(ctx, cfg, logger)
			}
		},
	}, os.Args[1:], os.LookupEnv, os.Stderr))
}
