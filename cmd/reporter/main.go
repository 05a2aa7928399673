// Command reporter moves every event from NATS JetStream into ClickHouse, and
// serves the analytics API (/api/v1), scheduled reports and alerts, health and
// metrics. Without --clickhouse-dsn it hosts the embedded ClickHouse engine
// under --data-dir and serves its HTTP endpoint on --clickhouse-listen, where
// Grafana connects.
//
// `reporter report --from … --to … --format table|json|csv|html` prints an
// ad-hoc report instead, read from ClickHouse.
package main

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"os"

	"github.com/otpscope/otpscope/internal/app"
	"github.com/otpscope/otpscope/internal/cli"
	"github.com/otpscope/otpscope/internal/reporter"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "report" {
		os.Exit(cli.Main(reportCommand(os.Stdout), os.Args[2:], os.Environ(), os.Stdout, os.Stderr))
	}
	os.Exit(cli.Main(app.Command(app.Binaries["reporter"], nil), os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

// reportCommand is `reporter report`.
func reportCommand(stdout io.Writer) cli.Command {
	return cli.Command{
		Name:     "reporter report",
		OtherEnv: app.OtherEnv,
		Summary:  "print an ad-hoc report (table, json, csv or html) read from ClickHouse",
		Flags: func(fs *flag.FlagSet) func(context.Context, *slog.Logger) error {
			var cfg reporter.ReportCLIConfig
			cfg.RegisterFlags(fs)
			return func(ctx context.Context, logger *slog.Logger) error {
				if err := cfg.Validate(); err != nil {
					return cli.Usage(err)
				}
				return reporter.RunReport(ctx, cfg, stdout, logger)
			}
		},
	}
}
