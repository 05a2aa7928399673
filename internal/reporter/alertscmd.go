package reporter

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/otpscope/otpscope/internal/flagenv"
)

// AlertsCLIConfig configures `otpscope alerts rules|test`, a client of a
// running reporter's API.
type AlertsCLIConfig struct {
	APIFlags
	JSON bool
}

// RegisterFlags registers the flags of `alerts rules` and `alerts test`.
func (c *AlertsCLIConfig) RegisterFlags(fs *flag.FlagSet) {
	c.APIFlags.Register(fs, "the otpscope or reporter API (its --admin-listen)")
	fs.BoolVar(&c.JSON, "json", false, "print the API's JSON answer")
	flagenv.CommandLineOnly(fs, "json")
}

// ErrTestAlertNotSent: a destination did not take the test alert, or
// there was none to send it to (the command exits 1).
var ErrTestAlertNotSent = errors.New("the test alert did not reach every destination")

// RunAlerts runs action against the API: "rules" prints the rules in
// force (GET /api/v1/alerts/rules), "test" sends a test alert (POST
// /api/v1/alerts/test) and prints what each destination did with it,
// failing with ErrTestAlertNotSent unless every one took it.
func RunAlerts(ctx context.Context, action string, cfg AlertsCLIConfig, stdout io.Writer) error {
	call := APICall{Method: http.MethodGet, API: cfg.API, Path: "/api/v1/alerts/rules", Token: cfg.Token,
		Command: "otpscope alerts " + action, Timeout: 30 * time.Second, Limit: 1 << 20}
	switch action {
	case "rules":
	case "test":
		call.Method, call.Path = http.MethodPost, "/api/v1/alerts/test"
	default:
		return fmt.Errorf("unknown action %q: want rules or test", action)
	}
	raw, err := call.Do(ctx)
	if err != nil {
		return err
	}
	if cfg.JSON {
		if _, err := stdout.Write(raw); err != nil {
			return err
		}
	}
	if action == "rules" {
		var r RulesResponse
		if err := json.Unmarshal(raw, &r); err != nil || cfg.JSON {
			return err
		}
		fmt.Fprintln(stdout, r.Says)
		for _, rule := range r.Rules {
			fmt.Fprintf(stdout, "  %-19s %s\n", rule.Rule, rule.Says)
		}
		return nil
	}
	var sent TestAlertResponse
	if err := json.Unmarshal(raw, &sent); err != nil {
		return err
	}
	var lines []string
	all := true
	said := func(who string, p TestPost) {
		all = all && p.Sent
		if p.Sent {
			lines = append(lines, who+": sent")
		} else {
			lines = append(lines, who+": not sent: "+p.Error)
		}
	}
	if sent.Webhook != nil {
		said("webhook", *sent.Webhook)
	}
	for i, am := range sent.Alertmanagers {
		who := "alertmanager"
		if len(sent.Alertmanagers) > 1 {
			who = fmt.Sprintf("alertmanager %d of %d", i+1, len(sent.Alertmanagers))
		}
		said(who, am)
	}
	if len(lines) == 0 {
		lines, all = []string{"nowhere to send it: the reporter has no --alert-webhook-url and no --alertmanager-url"}, false
	}
	if !cfg.JSON {
		fmt.Fprintln(stdout, strings.Join(lines, "\n"))
	}
	if !all {
		return ErrTestAlertNotSent
	}
	return nil
}
