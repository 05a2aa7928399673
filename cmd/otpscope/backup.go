package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/otpscope/otpscope/internal/app"
	"github.com/otpscope/otpscope/internal/broker"
	"github.com/otpscope/otpscope/internal/cli"
	"github.com/otpscope/otpscope/internal/flagenv"
	"github.com/otpscope/otpscope/internal/ingest"
	"github.com/otpscope/otpscope/internal/reporter"
	"github.com/otpscope/otpscope/internal/store"
)

// errBackupUsage is `otpscope backup` without create, list or delete.
var errBackupUsage = errors.New("want: otpscope backup create|list|delete [flags]")

// errRestoreUsage is `otpscope restore` without a backup's name.
var errRestoreUsage = errors.New("want: otpscope restore --name NAME [flags] (otpscope backup list names the backups)")

// backupCommand is `otpscope backup create|list|delete`, a client of the running
// process's backup API.
func backupCommand(action string, stdout io.Writer) cli.Command {
	name := "otpscope backup"
	if action != "" && action != "help" {
		name += " " + action
	}
	return cli.Command{
		Name:            name,
		OtherEnv:        app.OtherEnv,
		Summary:         "back the database up, list the backups or remove one, through a running otpscope's API",
		SubcommandsOnly: true,
		Subcommands: []cli.Subcommand{
			{Usage: "otpscope backup create [flags]", Summary: "take a backup now (ClickHouse's BACKUP, into --backup-dir)"},
			{Usage: "otpscope backup list [flags]", Summary: "the backups taken, newest first"},
			{Usage: "otpscope backup delete --name NAME [flags]", Summary: "remove a backup from --backup-dir (one taken by hand: a schedule's --backup-keep prunes its own)"},
		},
		Flags: func(fs *flag.FlagSet) func(context.Context, *slog.Logger) error {
			var cfg reporter.BackupCLIConfig
			cfg.RegisterFlags(fs)
			return func(ctx context.Context, _ *slog.Logger) error {
				if action != "create" && action != "list" && action != "delete" {
					return cli.Usage(errBackupUsage)
				}
				// --name names the backup delete removes: required there,
				// and never ignored elsewhere.
				if (action == "delete") != (cfg.Name != "") {
					return cli.Usage(fmt.Errorf("--name goes with delete, and delete with --name (%w)", errBackupUsage))
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
		Name:            "otpscope restore",
		OtherEnv:        app.OtherEnv,
		Summary:         "put a backup back in place of the database, with otpscope stopped; on its next start the sink inserts the stream again from the backup's position",
		SubcommandsOnly: true,
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
			flagenv.CommandLineOnly(fs, "name") // which backup replaces the database: never a leftover variable
			return func(ctx context.Context, logger *slog.Logger) error {
				if *name == "" {
					return cli.Usage(errRestoreUsage)
				}
				if err := reporter.Restore(ctx, cfg, *name, logger, stdout); err != nil {
					return err
				}
				if cfg.Embedded() {
					return noteMissingFiles(stdout, cfg.DataDir)
				}
				return nil
			}
		},
	}
}

// noteMissingFiles tells, after a restore into dataDir, of the files a
// backup does not hold that otpscope would make anew at its next start
// (README, "What a backup does not hold"): on a rebuilt machine, the ones
// kept from the old should be put back first.
func noteMissingFiles(w io.Writer, dataDir string) error {
	nats := broker.Config{DataDir: dataDir}
	for _, f := range []struct{ path, consequence string }{
		{filepath.Join(dataDir, ingest.PseudonymKeyFile), "a new pseudonym key gives silent-auth phone numbers new pseudonyms, unless otpscope starts with --pseudonym-key"},
		{nats.CredentialsFile(), "new NATS passwords lock out subscribers that have the old ones, unless otpscope starts with --nats-password and --nats-reader-password"},
	} {
		if _, err := os.Stat(f.path); !errors.Is(err, os.ErrNotExist) {
			continue
		}
		if _, err := fmt.Fprintf(w, "note: %s is missing (a backup does not hold it): put back the copy you kept before starting otpscope; otherwise %s\n", f.path, f.consequence); err != nil {
			return err
		}
	}
	return nil
}
