package app

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/otpscope/otpscope/internal/broker"
	"github.com/otpscope/otpscope/internal/cli"
	"github.com/otpscope/otpscope/internal/flagenv"
	"github.com/otpscope/otpscope/internal/reporter"
)

// StatusCLIConfig configures `otpscope status`, a client of a running
// process's GET /api/v1/status: any binary's, on its admin listener.
type StatusCLIConfig struct {
	reporter.APIFlags
	JSON bool
}

// RegisterFlags registers the flags of `otpscope status`.
func (c *StatusCLIConfig) RegisterFlags(fs *flag.FlagSet) {
	c.APIFlags.Register(fs, "the process's admin listener (any binary's --admin-listen, or --listen without one)")
	fs.BoolVar(&c.JSON, "json", false, "print the API's JSON answer")
	flagenv.CommandLineOnly(fs, "json")
}

// RunStatus prints what the process at cfg.API says of itself, a line a
// module, then its warnings. A process with warnings is an error (the
// command exits 1), so a script or a deploy step can check it; one that
// does not answer too.
func RunStatus(ctx context.Context, cfg StatusCLIConfig, stdout io.Writer) error {
	raw, err := reporter.APICall{Method: http.MethodGet, API: cfg.API, Path: "/api/v1/status", Token: cfg.Token,
		Command: "otpscope status", Timeout: 10 * time.Second, Limit: 1 << 20}.Do(ctx)
	if err != nil {
		return err
	}
	var st StatusResponse
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("GET /api/v1/status: %w", err)
	}
	if cfg.JSON {
		_, err = stdout.Write(raw)
	} else {
		var firing *Firing
		var objective *Objective
		if slices.Contains(st.Modules, ModuleReporter) {
			firing, objective = readFiring(ctx, cfg), readObjective(ctx, cfg)
		}
		_, err = io.WriteString(stdout, st.Text(cfg.API, firing, objective))
	}
	if err != nil {
		return err
	}
	if n := len(st.Warnings); n > 0 {
		return cli.Said(fmt.Errorf("%d warning(s)", n))
	}
	return nil
}

// Firing is what GET /api/v1/alerts/firing answered: the alert rules
// firing now, or why they were not read; and GET /api/v1/alerts/silences:
// the silences, or why they were not read.
type Firing struct {
	Alerts      []reporter.FiringAlert
	Err         error
	Silences    []reporter.Silence
	SilencesErr error
}

// readFiring asks the reporter at cfg.API which alert rules fire now, and
// which silences hold its webhook.
func readFiring(ctx context.Context, cfg StatusCLIConfig) *Firing {
	var f reporter.FiringResponse
	var s reporter.SilencesResponse
	err := getJSON(ctx, cfg, "/api/v1/alerts/firing", &f)
	silencesErr := getJSON(ctx, cfg, "/api/v1/alerts/silences", &s)
	return &Firing{Alerts: f.Firing, Err: err, Silences: s.Silences, SilencesErr: silencesErr}
}

// Objective is what GET /api/v1/slo answered: the logins against the
// objective, or why they were not read.
type Objective struct {
	Answer reporter.SLOResponse
	Err    error
}

// readObjective asks the reporter at cfg.API how the logins stand against
// its objective; nil when it has none, as its rules in force say
// (error_budget_burn off), sparing /api/v1/slo's reads of ClickHouse.
func readObjective(ctx context.Context, cfg StatusCLIConfig) *Objective {
	var rules reporter.RulesResponse
	if getJSON(ctx, cfg, "/api/v1/alerts/rules", &rules) == nil &&
		!slices.ContainsFunc(rules.Rules, func(r reporter.RuleInForce) bool { return r.Rule == reporter.RuleErrorBudgetBurn && r.On }) {
		return nil
	}
	var o Objective
	o.Err = getJSON(ctx, cfg, "/api/v1/slo", &o.Answer)
	return &o
}

// getJSON reads GET path of the process at cfg.API into into.
func getJSON(ctx context.Context, cfg StatusCLIConfig, path string, into any) error {
	raw, err := reporter.APICall{Method: http.MethodGet, API: cfg.API, Path: path, Token: cfg.Token,
		Command: "otpscope status", Timeout: 10 * time.Second, Limit: 1 << 20}.Do(ctx)
	if err == nil {
		err = json.Unmarshal(raw, into)
	}
	return err
}

// Text is the status as lines for people: the process, a line a module,
// the alert rules firing (firing, with the reporter) and the objective
// (objective, when one is set), then each warning, or that there is none.
// A firing alert, or a budget spent, is no warning: it says how tyntec
// delivers, not how otpscope runs.
func (st StatusResponse) Text(api string, firing *Firing, objective *Objective) string {
	ago := func(t *time.Time) string {
		if t == nil {
			return "never"
		}
		return st.At.Sub(*t).Round(time.Second).String() + " ago"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s at %s (%s)\n", strings.Join(st.Modules, ", "), api, st.At.Format(time.RFC3339))
	if i := st.Ingest; i != nil {
		fmt.Fprintf(&b, "  ingest  %d webhooks accepted since start, the last %s\n", i.WebhooksAccepted, ago(i.LastWebhook))
	}
	if st.Stream.Error != "" {
		fmt.Fprintf(&b, "  stream  unreadable: %s\n", st.Stream.Error)
	} else {
		fmt.Fprintf(&b, "  stream  %d messages, the newest %s\n", st.Stream.Messages, ago(st.Stream.LastMessage))
	}
	if s := st.Sink; s != nil {
		fmt.Fprintf(&b, "  sink    %d waiting, %d being inserted", s.Lag, s.AckPending)
		if s.StreamBoundShare != nil {
			fmt.Fprintf(&b, ": %s of the stream's bound", percent(*s.StreamBoundShare))
		}
		b.WriteString("\n")
	} else if slices.Contains(st.Modules, ModuleReporter) {
		// Not yet read (the first seconds), unread for 30 s (NATS away),
		// or the sink waiting for the engine's lease: the last two warned
		// of.
		b.WriteString("  sink    backlog not known: not read yet, or unreadable now\n")
	}
	if p := st.Poller; p != nil && !p.Leading && strings.Contains(st.Stream.Error, broker.ErrNotConnected.Error()) {
		// Its lease lost with the connection, not taken by another: a lone
		// poller's operator went looking for a second replica.
		b.WriteString("  poller  not leading: this replica cannot reach NATS to hold the lease (see the warnings)\n")
	} else if p != nil && !p.Leading {
		b.WriteString("  poller  not leading: another replica calls tyntec and knows the backlog\n")
	} else if p != nil && p.BacklogCounted != nil && !*p.BacklogCounted {
		b.WriteString("  poller  leading: no reconciliation cycle has run yet to count its OTPs\n")
	} else if p != nil {
		fmt.Fprintf(&b, "  poller  leading: %d OTPs tracked, %d to reconcile, the oldest unsettled %s\n",
			p.TrackedOTPs, p.ReconcileBacklog, (time.Duration(p.OldestUnreconciledS * float64(time.Second))).Round(time.Second))
	}
	if d := st.DeadLetters; d != nil {
		switch {
		case d.Error != "":
			fmt.Fprintf(&b, "  dead letters  not counted: %s\n", d.Error)
		case d.Pending == 0:
			b.WriteString("  dead letters  0 never replayed\n")
		default:
			fmt.Fprintf(&b, "  dead letters  %d never replayed, the newest %s: otpscope deadletters list --pending\n", d.Pending, ago(d.NewestPending))
		}
	}
	if firing != nil {
		b.WriteString(firing.text())
	}
	switch o := objective; {
	case o == nil:
	case o.Err != nil:
		fmt.Fprintf(&b, "  objective  not read: %v\n", o.Err)
	case o.Answer.Objective != nil:
		fmt.Fprintf(&b, "  objective  %s\n", o.Answer.Says)
	}
	if len(st.Warnings) == 0 {
		b.WriteString("no warnings\n")
	}
	for _, w := range st.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", w)
	}
	return b.String()
}

// text is the alerts' lines of the status: none firing, or each firing
// rule as the console's "Firing now" says it (a silence that holds it
// named), the longest firing first; then the silences active and pending,
// as otpscope alerts silences lists them, if any (one that holds every
// rule for weeks pages nobody, firing or not).
func (f *Firing) text() string {
	var b strings.Builder
	switch {
	case f.Err != nil:
		fmt.Fprintf(&b, "  alerts  not read: %v\n", f.Err)
	case len(f.Alerts) == 0:
		b.WriteString("  alerts  none firing\n")
	default:
		f.firingText(&b)
	}
	active, pending := reporter.CountSilences(f.Silences)
	switch {
	case f.SilencesErr != nil:
		fmt.Fprintf(&b, "  silences  not read: %v\n", f.SilencesErr)
	case active+pending > 0:
		fmt.Fprintf(&b, "  silences  %d active, %d pending:\n", active, pending)
		for _, s := range f.Silences {
			if s.State != reporter.SilenceExpired {
				fmt.Fprintf(&b, "    %s\n", s.Line())
			}
		}
	}
	return b.String()
}

// firingText writes a line for each alert firing.
func (f *Firing) firingText(b *strings.Builder) {
	fmt.Fprintf(b, "  alerts  %d firing:\n", len(f.Alerts))
	for _, al := range f.Alerts {
		v, t := reporter.AlertFigures(al.Rule, al.Value, al.Threshold)
		on := ""
		if al.Channel != "" {
			on = " on " + al.Channel
		}
		fmt.Fprintf(b, "    %s%s since %s: %s, threshold %s", al.Rule, on, al.Since.UTC().Format(time.RFC3339), v, t)
		if be := al.Before; be != nil && be.Value != nil {
			fmt.Fprintf(b, "; %s: %s", reporter.BeforeName(be.To.Sub(be.From)), reporter.AlertFigure(al.Rule, *be.Value))
		}
		if al.Kept {
			fmt.Fprintf(b, " (kept firing: it held last at %s)", al.To.UTC().Format(time.RFC3339))
		}
		if al.SilencedUntil != nil {
			fmt.Fprintf(b, " (silenced until %s: silence %s)", al.SilencedUntil.UTC().Format(time.RFC3339), al.SilencedBy)
		}
		b.WriteString("\n")
	}
}
