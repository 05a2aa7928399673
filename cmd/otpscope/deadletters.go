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

// deadLettersCommand is `otpscope deadletters list|replay|delete`, a client of the
// running process's dead-letter API.
func deadLettersCommand(action string, stdout io.Writer) cli.Command {
	name := "otpscope deadletters"
	if action != "" && action != "help" {
		name += " " + action
	}
	return cli.Command{
		Name:            name,
		OtherEnv:        app.OtherEnv,
		Summary:         "list dead letters, replay or delete them, through a running otpscope's API",
		SubcommandsOnly: true,
		Subcommands: []cli.Subcommand{
			{Usage: "otpscope deadletters list [flags]", Summary: "newest first; --pending, --source, --json"},
			{Usage: "otpscope deadletters replay --all|--id ID [flags]", Summary: "put them back through the normal path"},
			{Usage: "otpscope deadletters delete --id ID [flags]", Summary: "delete them for good (the API's, and the stored replays)"},
		},
		Flags: func(fs *flag.FlagSet) func(context.Context, *slog.Logger) error {
			var cfg reporter.DeadLettersCLIConfig
			cfg.RegisterFlags(fs)
			return func(ctx context.Context, _ *slog.Logger) error {
				set := map[string]bool{}
				fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
				if err := cfg.Check(action, set); err != nil {
					return cli.Usage(err)
				}
				return reporter.RunDeadLetters(ctx, action, cfg, stdout)
			}
		},
	}
}

// statusCommand is `otpscope status`, a client of a running process's
// GET /api/v1/status.
func statusCommand(stdout io.Writer) cli.Command {
	return cli.Command{
		Name:     "otpscope status",
		OtherEnv: app.OtherEnv,
		Summary:  "what a running otpscope, ingest, poller or reporter says of itself, through its API; exits 1 on warnings",
		Flags: func(fs *flag.FlagSet) func(context.Context, *slog.Logger) error {
			var cfg app.StatusCLIConfig
			cfg.RegisterFlags(fs)
			return func(ctx context.Context, _ *slog.Logger) error {
				return app.RunStatus(ctx, cfg, stdout)
			}
		},
	}
}
