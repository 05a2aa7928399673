// Command allinoneprof is cmd/otpscope (the all-in-one) with Go's profiling
// endpoints (net/http/pprof) on a loopback address of their own,
// $PPROF_ADDR (default 127.0.0.1:18389): bench/wrk/memory.sh reads the live
// heap from them. The product does not serve them: a heap profile or a
// goroutine dump is nothing to expose beside the API.
package main

import (
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof" // registers /debug/pprof on http.DefaultServeMux
	"os"

	"github.com/otpscope/otpscope/internal/app"
	"github.com/otpscope/otpscope/internal/cli"
)

func main() {
	addr := os.Getenv("PPROF_ADDR")
	if addr == "" {
		addr = "127.0.0.1:18389"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "allinoneprof:", err)
		os.Exit(1)
	}
	go func() { _ = http.Serve(ln, nil) }()
	os.Exit(cli.Main(app.Command(app.Binaries["otpscope"], os.Stdout), os.Args[1:], os.Environ(), os.Stderr))
}
