// Command otpscope runs the whole pipeline in one process on embedded
// defaults — ingest, the poller, the sink into ClickHouse and the analytics
// API, and with --simulate the tyntec simulator producing traffic — so a
// newcomer sees real numbers within a minute. --nats-url and --clickhouse-dsn
// switch to external servers.
//
// `otpscope deadletters list|replay` lists dead letters and puts them back
// through the normal path, through a running otpscope's API.
package main

import (
	"os"

	"github.com/otpscope/otpscope/internal/app"
	"github.com/otpscope/otpscope/internal/cli"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "deadletters" {
		action := ""
		if len(os.Args) > 2 {
			action = os.Args[2]
		}
		os.Exit(cli.Main(deadLettersCommand(action, os.Stdout), os.Args[min(3, len(os.Args)):], os.LookupEnv, os.Stderr))
	}
	os.Exit(cli.Main(app.Command(app.Binaries["otpscope"], os.Stdout), os.Args[1:], os.LookupEnv, os.Stderr))
}
