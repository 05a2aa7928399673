// Command poller reconciles otpscope's view of tyntec 2FA OTPs through tyntec's
// API: it tracks open OTPs in JetStream KV, reads what webhooks lost on a cron
// schedule within the API budget, decides resends by a policy (dry-run by
// default) and points tyntec's callback configuration at ingest.
//
//	poller [flags]                     run the service
//	poller register-callback [flags]   point tyntec's v4 callback at ingest, then exit
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/otpscope/otpscope/internal/app"
	"github.com/otpscope/otpscope/internal/cli"
	"github.com/otpscope/otpscope/internal/flagenv"
	"github.com/otpscope/otpscope/internal/poller"
	"github.com/otpscope/otpscope/internal/tyntec"
)

func main() { os.Exit(run(os.Args[1:], os.Environ(), os.Stdout, os.Stderr)) }

func run(args []string, environ []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "register-callback" {
		return cli.Main(registerCommand(), args[1:], environ, stdout, stderr)
	}
	return cli.Main(app.Command(app.Binaries["poller"], nil), args, environ, stdout, stderr)
}

// registerCommand is `poller register-callback`: list tyntec's callback
// configurations, then create or patch ours so that it points at
// --ingest-url + /webhooks/tyntec with the webhook token.
func registerCommand() cli.Command {
	return cli.Command{
		Name:     "poller register-callback",
		OtherEnv: app.OtherEnv,
		Summary:  "point tyntec's v4 callback configuration at ingest (idempotent), then exit",
		Flags: func(fs *flag.FlagSet) func(context.Context, *slog.Logger) error {
			var tc tyntec.Config
			tc.RegisterFlags(fs)
			ingestURL := fs.String("ingest-url", "", "ingest's public base URL, e.g. https://otpscope.example.com (required)")
			var tokens flagenv.List
			fs.Var(&tokens, "webhook-token", "token tyntec sends as X-Webhook-Token (the first of OTPSCOPE_WEBHOOK_TOKENS)")
			var headers poller.Headers
			fs.Var(&headers, "register-callback-header", `extra header tyntec sends, "Name: value" (repeatable)`)
			deployment := fs.String("deployment-id", "", "this deployment's id, the value of the "+poller.MarkerHeader+" header that marks its callback (default: the id of the configuration delivering to the URL already, else derived from the host and --data-dir)")
			dataDir := fs.String("data-dir", "./data", "the deployment's data directory (only to derive a first --deployment-id)")
			force := fs.Bool("force", false, "take over a callback configuration that points elsewhere (ours at an old URL, or another deployment's)")
			dryRun := fs.Bool("dry-run", false, "print what would change and change nothing")
			flagenv.CommandLineOnly(fs, "force", "dry-run") // taking over a callback is asked for each time
			return func(ctx context.Context, logger *slog.Logger) error {
				if *ingestURL == "" {
					return cli.Usage(fmt.Errorf("--ingest-url is required"))
				}
				url, err := poller.IngestCallbackURL(*ingestURL)
				if err != nil {
					return cli.Usage(err)
				}
				h := map[string]string{}
				for k, v := range headers {
					h[k] = v
				}
				if len(tokens) > 0 {
					h["X-Webhook-Token"] = tokens[0]
				}
				if len(h) == 0 {
					return cli.Usage(fmt.Errorf("--webhook-token (or a --register-callback-header) is required: ingest refuses webhooks without one"))
				}
				client, err := tyntec.New(tc)
				if err != nil {
					return cli.Usage(err)
				}
				ctx, cancel := context.WithTimeout(ctx, time.Minute)
				defer cancel()
				opts := poller.RegisterOptions{Deployment: *deployment, Fallback: poller.DefaultDeploymentID(*dataDir), Force: *force}
				plan, err := poller.PlanCallback(ctx, client, url, h, opts)
				if err != nil {
					return err
				}
				// What it would change comes first, so an operator sees it
				// before (or, with --dry-run, instead of) the change.
				shown := flagenv.Shown("ingest-url", url) // without a password it may hold
				fmt.Fprintf(os.Stdout, "deployment %s (%s), callback %s:\n%s", plan.Deployment, plan.From, shown, plan)
				if *dryRun {
					return nil
				}
				res, err := plan.Apply(ctx, client)
				if err != nil {
					return err
				}
				logger.Info("callback registered", "url", shown, "deployment", res.Deployment, "deployment_from", res.From, "id", res.ID, "action", res.Action, "duplicates_removed", res.Removed, "others_left_alone", res.Left)
				return nil
			}
		},
	}
}
