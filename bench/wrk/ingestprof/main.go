// Command ingestprof is cmd/ingest with a CPU profile: the same modules and
// flags, profiled from start to stop (SIGTERM) into the file $CPUPROFILE.
// bench/wrk/run.sh uses it when PROFILE is set.
package main

import (
	"fmt"
	"os"

	"github.com/otpscope/otpscope/bench/cpuprofile"
	"github.com/otpscope/otpscope/internal/app"
	"github.com/otpscope/otpscope/internal/cli"
)

func main() {
	stop, err := cpuprofile.Start(os.Getenv("CPUPROFILE"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "ingestprof:", err)
		os.Exit(1)
	}
	code := cli.Main(app.Command(app.Binaries["ingest"], nil), os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
