package reporter

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/otpscope/otpscope/internal/flagenv"
)

// AlertsCLIConfig configures `otpscope alerts rules|test|silences|silence|unsilence`,
// a client of a running reporter's API.
type AlertsCLIConfig struct {
	APIFlags
	JSON bool
	// silence's: what it holds, for how long, and why; unsilence's ID.
	Rule, Channel, For, Until, Comment, By, ID string
}

// RegisterFlags registers the flags of every `alerts` action.
func (c *AlertsCLIConfig) RegisterFlags(fs *flag.FlagSet) {
	c.APIFlags.Register(fs, "the otpscope or reporter API (its --admin-listen)")
	fs.BoolVar(&c.JSON, "json", false, "print the API's JSON answer")
	fs.StringVar(&c.Rule, "rule", "", "silence: the rule to hold ("+strings.Join(SilenceRules, ", ")+"); none: every rule")
	fs.StringVar(&c.Channel, "channel", "", "silence: the channel to hold it on (sms, whatsapp…); none: every channel")
	fs.StringVar(&c.For, "for", "", "silence: how long, from now (2h, 90m, 1d; at most 30d)")
	fs.StringVar(&c.Until, "until", "", "silence: until when, RFC 3339 (instead of --for)")
	fs.StringVar(&c.Comment, "comment", "", "silence: why (required), for whoever reads the list")
	fs.StringVar(&c.By, "by", "", "silence: who silences (default $USER)")
	fs.StringVar(&c.ID, "id", "", "unsilence: the silence to end, as otpscope alerts silences lists it")
	// What a silence holds, and which one ends, come from the command line
	// alone: a stray OTPSCOPE_RULE must not widen or narrow one.
	flagenv.CommandLineOnly(fs, "json", "rule", "channel", "for", "until", "comment", "by", "id")
}

// ErrAlertsUsage is an alerts action the command line does not make.
var ErrAlertsUsage = errors.New("want: otpscope alerts rules|test|silences|silence|unsilence [flags]")

// Check refuses, before anything is called, an unknown action, a silence
// without --comment or with neither or both of --for and --until, an
// unsilence without --id, and a flag of another action (it would be
// ignored). set holds the flags the command line gave.
func (c *AlertsCLIConfig) Check(action string, set map[string]bool) error {
	silence := []string{"rule", "channel", "for", "until", "comment", "by"}
	var others []string
	switch action {
	case "rules", "test", "silences":
		others = append(silence, "id")
	case "silence":
		if c.Comment == "" {
			return errors.New("--comment is required: say why")
		}
		if (c.For == "") == (c.Until == "") {
			return errors.New("give --for (2h, 1d) or --until (RFC 3339), one of them")
		}
		if c.Until != "" {
			if _, err := time.Parse(time.RFC3339, c.Until); err != nil {
				return fmt.Errorf("--until %q: want RFC 3339, such as 2026-12-07T18:00:00Z", c.Until)
			}
		}
		others = []string{"id"}
	case "unsilence":
		if c.ID == "" {
			return errors.New("--id is required (otpscope alerts silences lists them)")
		}
		others = silence
	default:
		return ErrAlertsUsage
	}
	for _, f := range others {
		if set[f] {
			return fmt.Errorf("--%s is not a flag of otpscope alerts %s", f, action)
		}
	}
	return nil
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
	case "silences", "silence", "unsilence":
		return runSilences(ctx, action, cfg, call, stdout)
	default:
		return fmt.Errorf("unknown action %q: %w", action, ErrAlertsUsage)
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

// runSilences lists the silences, adds one or ends one, through call's
// API, and says the answer a line each (or prints its JSON).
func runSilences(ctx context.Context, action string, cfg AlertsCLIConfig, call APICall, stdout io.Writer) error {
	call.Path = "/api/v1/alerts/silences"
	switch action {
	case "silence":
		req := SilenceRequest{Rule: cfg.Rule, Channel: cfg.Channel, Duration: cfg.For, Comment: cfg.Comment, CreatedBy: cmp.Or(cfg.By, os.Getenv("USER"))}
		if cfg.Until != "" {
			t, err := time.Parse(time.RFC3339, cfg.Until)
			if err != nil {
				return err
			}
			req.EndsAt = &t
		}
		body, err := json.Marshal(req)
		if err != nil {
			return err
		}
		call.Method, call.Body, call.Want = http.MethodPost, body, http.StatusCreated
	case "unsilence":
		call.Method, call.Path = http.MethodDelete, call.Path+"/"+url.PathEscape(cfg.ID)
	}
	raw, err := call.Do(ctx)
	if err != nil || cfg.JSON {
		if err == nil {
			_, err = stdout.Write(raw)
		}
		return err
	}
	if action == "silences" {
		var list SilencesResponse
		if err := json.Unmarshal(raw, &list); err != nil {
			return err
		}
		if len(list.Silences) == 0 {
			_, err := fmt.Fprintln(stdout, "no silences")
			return err
		}
		for _, s := range list.Silences {
			fmt.Fprintln(stdout, s.Line())
		}
		return nil
	}
	var s Silence
	if err := json.Unmarshal(raw, &s); err != nil {
		return err
	}
	if action == "silence" {
		_, err = fmt.Fprintf(stdout, "silence %s: %s\nend it sooner: otpscope alerts unsilence --id %s\n", s.ID, s.Says(), s.ID)
	} else {
		_, err = fmt.Fprintf(stdout, "silence %s ended: %s\n", s.ID, s.Says())
	}
	return err
}
