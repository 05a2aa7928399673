package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"

	"github.com/otpscope/otpscope/internal/cli"
	"github.com/otpscope/otpscope/internal/reporter"
	"github.com/otpscope/otpscope/internal/store"
)

// errBackupUsage is `otpscope backup` without create or list.
var errBackupUsage = errors.New("want: otpscope backup create|list [flags]")

// errRestoreUsage is `otpscope restore` without a backup's name.
var errRestoreUsage = errors.New("want: otpscope restore --name NAME [flags] (otpscope backup list names the backups)")

// backupCommand is `otpscope backup create|list`, a client of the running
// process's backup API.
func backupCommand(action string, stdout io.Writer) cli.Command {
	name := "otpscope backup"
	if action != "" && action != "help" {
		name += " " + action
	}
	return cli.Command{
		Name:    name,
		Summary: "back the database up, or list the backups, through a running otpscope's API",
		Subcommands: []cli.Subcommand{
			{Usage: "otpscope backup create [flags]", Summary: "take a backup now (ClickHouse's BACKUP, into --backup-dir)"},
			{Usage: "otpscope backup list [flags]", Summary: "the backups taken, newest first"},
		},
		Flags: func(fs *flag.FlagSet) func(context.Context, *slog.Logger) error {
			var cfg reporter.BackupCLIConfig
			cfg.RegisterFlags(fs)
			return func(ctx context.Context, _ *slog.Logger) error {
				if action != "create" && action != "list" {
					return cli.Usage(errBackupUsage)
				}
				return reporter.RunBackup(ctx, action, cfg, stdout)
			}
		},
	}
}

// restoreCommand is `otpscope restore --name NAME`, run with otpscope stopped: it
// opens the data directory (or the server) itself.
func restoreCommand(stdout io.Writer) cli.Command {
	return cli.Command{
		Name:    "otpscope restore",
		Summary: "put a backup back in place of the database, with otpscope stopped; on its next start the sink inserts the stream again from the backup's position",
		Subcommands: []cli.Subcommand{
			{Usage: "otpscope restore --name NAME [flags]", Summary: "NAME as otpscope backup list shows it"},
		},
		Flags: func(fs *flag.FlagSet) func(context.Context, *slog.Logger) error {
			var cfg store.Config
			name := fs.String("name", "", "the backup to restore, as otpscope backup list names it")
			fs.StringVar(&cfg.DataDir, "data-dir", "./data", "the stopped otpscope's --data-dir")
			fs.StringVar(&cfg.BackupDir, "backup-dir", "", "its --backup-dir (empty: <data-dir>/backups)")
			fs.StringVar(&cfg.DSN, "clickhouse-dsn", "", "its --clickhouse-dsn, for a backup of one ClickHouse server (restored from that server's backups.allowed_path)")
			fs.StringVar(&cfg.Listen, "clickhouse-listen", "127.0.0.1:0", "the embedded engine's endpoint while restoring")
			return func(ctx context.Context, logger *slog.Logger) error {
				if *name == "" {
					return cli.Usage(errRestoreUsage)
				}
				return reporter.Restore(ctx, cfg, *name, logger, stdout)
			}
		},
	}
}
