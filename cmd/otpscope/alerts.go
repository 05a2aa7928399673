package main

import (
	"context"
	"flag"
	"io"
	"log/slog"

	"github.com/otpscope/otpscope/internal/app"
	"github.com/otpscope/otpscope/internal/cli"
	"github.com/otpscope/otpscope/internal/reporter"
)

// alertsCommand is `otpscope alerts rules|test|silences|silence|unsilence`,
// a client of the running reporter's alert API.
func alertsCommand(action string, stdout io.Writer) cli.Command {
	name := "otpscope alerts"
	if action != "" && action != "help" {
		name += " " + action
	}
	return cli.Command{
		Name:            name,
		OtherEnv:        app.OtherEnv,
		Summary:         "say the alert rules in force, send a test alert, or hold the webhook's alerts with a silence, through a running otpscope's API",
		SubcommandsOnly: true,
		Subcommands: []cli.Subcommand{
			{Usage: "otpscope alerts rules [flags]", Summary: "the rules the reporter evaluates, as its flags set them"},
			{Usage: "otpscope alerts test [flags]", Summary: "send a test alert to the webhook and every Alertmanager; exits 1 unless every one took it"},
			{Usage: "otpscope alerts silences [flags]", Summary: "the silences: active and pending, then those ended"},
			{Usage: "otpscope alerts silence --comment WHY --for 2h|--until TIME [--rule RULE] [--channel CH] [flags]", Summary: "hold the webhook's posts of a rule (every rule without --rule) on a channel (every one without --channel)"},
			{Usage: "otpscope alerts unsilence --id ID [flags]", Summary: "end a silence now"},
		},
		Flags: func(fs *flag.FlagSet) func(context.Context, *slog.Logger) error {
			var cfg reporter.AlertsCLIConfig
			cfg.RegisterFlags(fs)
			return func(ctx context.Context, _ *slog.Logger) error {
				set := map[string]bool{}
				fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
				if err := cfg.Check(action, set); err != nil {
					return cli.Usage(err)
				}
				return reporter.RunAlerts(ctx, action, cfg, stdout)
			}
		},
	}
}
