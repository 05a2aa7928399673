// Command otpscope runs the whole pipeline in one process on embedded
// defaults — ingest, the sink into ClickHouse, and with --simulate the tyntec
// simulator producing traffic — so a newcomer sees real numbers within a
// minute. --nats-url and --clickhouse-dsn switch to external servers.
package main

import (
	"context"
	"flag"
	"log/slog"
	"os"

	"github.com/otpscope/otpscope/internal/allinone"
	"github.com/otpscope/otpscope/internal/cli"
	"github.com/otpscope/otpscope/internal/ingest"
)

func main() {
	os.Exit(cli.Main(cli.Command{
		Name:       "otpscope",
		RenamedEnv: ingest.RenamedEnv,
		Flags: func(fs *flag.FlagSet) func(context.Context, *slog.Logger) error {
			var cfg allinone.Config
			cfg.RegisterFlags(fs)
			return func(ctx context.Context, logger *slog.Logger) error {
				if err := cfg.Validate(); err != nil {
					return cli.Usage(err)
				}
				return allinone.Run(ctx, cfg, logger, os.Stdout)
			}
		},
	}, os.Args[1:], os.LookupEnv, os.Stderr))
}
