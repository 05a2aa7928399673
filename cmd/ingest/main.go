// Command ingest receives tyntec's DeliveryStatus webhooks and publishes them to
// NATS JetStream, answering 200 only once they are durable. Without --nats-url it
// hosts the embedded NATS server.
package main

import (
	"os"

	"github.com/otpscope/otpscope/internal/app"
	"github.com/otpscope/otpscope/internal/cli"
)

func main() {
	os.Exit(cli.Main(app.Command(app.Binaries["ingest"], nil), os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}
