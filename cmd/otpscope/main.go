// Command otpscope runs the whole pipeline in one process on embedded
// defaults — ingest, the poller, the sink into ClickHouse and the analytics
// API, and with --simulate the tyntec simulator producing traffic — so a
// newcomer sees real numbers within a minute. --nats-url and --clickhouse-dsn
// switch to external servers.
//
// Through a running otpscope's API, `otpscope deadletters
// list|replay|delete` lists dead letters, puts them back through the normal
// path or deletes them, `otpscope backup create|list|delete` backs the
// database up, and `otpscope alerts rules|test|silences|silence|unsilence`
// says the alert rules in force, sends a test alert or holds the webhook's
// alerts with a silence; `otpscope restore` puts a backup back, with
// otpscope stopped. `otpscope status` prints what a
// running process (any binary) says of itself, and exits 1 on warnings.
package main

import (
	"io"
	"os"
	"strings"

	"github.com/otpscope/otpscope/internal/app"
	"github.com/otpscope/otpscope/internal/cli"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout))
}

// withAction are the commands called with an action: otpscope NAME ACTION [flags].
var withAction = map[string]func(action string, stdout io.Writer) cli.Command{
	"deadletters": deadLettersCommand,
	"backup":      backupCommand,
	"alerts":      alertsCommand,
}

func run(args []string, stdout io.Writer) int {
	if len(args) > 0 {
		if command, ok := withAction[args[0]]; ok {
			action, rest := "", args[1:]
			if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
				action, rest = rest[0], rest[1:]
			}
			switch action {
			case "help":
				rest = []string{"help"} // the help names the actions
			case "config": // as its help says: the settings of its flags
				action, rest = "", append([]string{"config"}, rest...)
			}
			return cli.Main(command(action, stdout), rest, os.Environ(), stdout, os.Stderr)
		}
		if args[0] == "restore" {
			return cli.Main(restoreCommand(stdout), args[1:], os.Environ(), stdout, os.Stderr)
		}
		if args[0] == "status" {
			return cli.Main(statusCommand(stdout), args[1:], os.Environ(), stdout, os.Stderr)
		}
	}
	return cli.Main(app.Command(app.Binaries["otpscope"], stdout), args, os.Environ(), stdout, os.Stderr)
}
