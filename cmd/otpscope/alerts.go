package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"

	"github.com/otpscope/otpscope/internal/app"
	"github.com/otpscope/otpscope/internal/cli"
	"github.com/otpscope/otpscope/internal/reporter"
)

// errAlertsUsage is `otpscope alerts` without rules or test.
var errAlertsUsage = errors.New("want: otpscope alerts rules|test [flags]")

// alertsCommand is `otpscope alerts rules|test`, a client of the running
// reporter's alert API.
func alertsCommand(action string, stdout io.Writer) cli.Command {
	name := "otpscope alerts"
	if action != "" && action != "help" {
		name += " " + action
	}
	return cli.Command{
		Name:            name,
		OtherEnv:        app.OtherEnv,
		Summary:         "say the alert rules in force, or send a test alert, through a running otpscope's API",
		SubcommandsOnly: true,
		Subcommands: []cli.Subcommand{
			{Usage: "otpscope alerts rules [flags]", Summary: "the rules the reporter evaluates, as its flags set them"},
			{Usage: "otpscope alerts test [flags]", Summary: "send a test alert to the webhook and every Alertmanager; exits 1 unless every one took it"},
		},
		Flags: func(fs *flag.FlagSet) func(context.Context, *slog.Logger) error {
			var cfg reporter.AlertsCLIConfig
			cfg.RegisterFlags(fs)
			return func(ctx context.Context, _ *slog.Logger) error {
				if action != "rules" && action != "test" {
					return cli.Usage(errAlertsUsage)
				}
				return reporter.RunAlerts(ctx, action, cfg, stdout)
			}
		},
	}
}
