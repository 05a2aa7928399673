// Command otpscope runs the whole pipeline in one process on embedded
// defaults — ingest, the poller, the sink into ClickHouse and the analytics
// API, and with --simulate the tyntec simulator producing traffic — so a
// newcomer sees real numbers within a minute. --nats-url and --clickhouse-dsn
// switch to external servers.
package main

import (
	"os"

	"github.com/otpscope/otpscope/internal/app"
	"github.com/otpscope/otpscope/internal/cli"
)

func main() {
	os.Exit(cli.Main(app.Command(app.Binaries["otpscope"], os.Stdout), os.Args[1:], os.LookupEnv, os.Stderr))
}
