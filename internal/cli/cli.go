// Package cli is the shared shape of otpscope's commands: flags with OTPSCOPE_*
// environment equivalents, a --log-level and --log-format, a slog logger, and
// a context that ends on SIGINT or SIGTERM. The environment is passed in by
// cmd/.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os/signal"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/otpscope/otpscope/internal/flagenv"
)

// Command describes one binary (or subcommand).
type Command struct {
	Name string
	// Summary says in one line what the command does, for help.
	Summary string
	// Subcommands are listed in help under the command's own usage.
	Subcommands []Subcommand
	// SubcommandsOnly says the command does nothing alone (`otpscope
	// backup` wants create or list): help lists no bare "[flags] run".
	SubcommandsOnly bool
	// Groups, when not nil, is filled by Flags with the configuration group
	// of each flag, so that help lists them by group; a flag in no group
	// (OwnFlags) joins the first.
	Groups *flagenv.Groups
	// Flags registers the command's flags and returns what runs after parsing.
	Flags func(fs *flag.FlagSet) func(ctx context.Context, logger *slog.Logger) error
	// OtherEnv claims the OTPSCOPE_* variables that other commands or tools
	// read (app.OtherEnv), so that the environment one file gives every
	// binary draws no warning; any other the command does not read does.
	// Nil: the command warns of none.
	OtherEnv func(name string) bool
	// Checkable says that the function Flags returns, given a context for
	// which CheckOnly is true, checks the configuration and returns
	// without running; `<command> config` then says whether it would start.
	Checkable bool
}

type checkOnlyKey struct{}

// CheckOnly tells a Checkable command's run function that `<command>
// config` called it: check the configuration, then return nil or the
// problem, without starting anything.
func CheckOnly(ctx context.Context) bool { return ctx.Value(checkOnlyKey{}) != nil }

// OwnFlags are the flags Main adds to every command.
var OwnFlags = []string{"log-level", "log-format"}

// Subcommand is one line of help: how it is called and what it does.
type Subcommand struct {
	Usage, Summary string
}

// Main parses args (after the environment, a list of KEY=value as
// os.Environ gives it), runs the command until it returns or a signal
// arrives, and returns the exit code: 0 success, 1 failure, 2 bad usage.
// --help, -h and a first argument "help" print the help, and a first
// argument "version" (or --version) the build (Version); any other
// positional argument is a usage error. A first argument "config" prints
// the configuration the command would run with (Config) instead of
// running it. What was asked for (help, version, config) goes to stdout,
// so that it pipes; logs and usage errors go to stderr. An OTPSCOPE_*
// variable that neither the command nor c.OtherEnv reads is logged as a
// warning, with the variable it likely misspells — or refused (exit 2)
// when its name is a secret's (flagenv.SecretName).
func Main(c Command, args []string, environ []string, stdout, stderr io.Writer) int {
	// The flag package's own output (an error, then the whole help) is
	// replaced by one line naming the error, below.
	fs, run, level, format := flagSet(c, io.Discard)
	fs.Usage = func() {}
	configMode := len(args) > 0 && args[0] == "config"
	if configMode {
		args = args[1:]
	}
	if len(args) > 0 && args[0] == "help" {
		Help(stdout, c, fs)
		return 0
	}
	if len(args) > 0 && (args[0] == "version" || args[0] == "--version" || args[0] == "-version") {
		// Not a flag: a flag would also read OTPSCOPE_VERSION.
		fmt.Fprintf(stdout, "%s %s\n", c.Name, Version())
		return 0
	}
	// refuse names what stops the start on stderr, exit 2; under config
	// also as its last line, as config names any refusal.
	refuse := func(format string, a ...any) int {
		msg := fmt.Sprintf(format, a...)
		fmt.Fprintf(stderr, "%s: %s\n", c.Name, msg)
		if configMode {
			fmt.Fprintf(stdout, "configuration refused: %s\n", msg)
		}
		return 2
	}
	if err := flagenv.Parse(fs, args, flagenv.Lookup(environ)); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			Help(stdout, c, fs)
			return 0
		}
		return refuse("%v%s (see %s --help)", err, wanted(fs, err), c.Name)
	}
	if fs.NArg() > 0 {
		return refuse("unexpected argument %q (see %s --help)", fs.Arg(0), c.Name)
	}
	if names := flagenv.Placeholders(fs); len(names) > 0 {
		return refuse("--%s: still deploy/'s placeholder %s; put a secret of your own there (e.g. openssl rand -hex 24)",
			strings.Join(names, ", --"), flagenv.Placeholder)
	}
	var strays []flagenv.Stray
	if c.OtherEnv != nil {
		strays = flagenv.Strays(fs, environ, c.OtherEnv)
	}
	// A stray secret is refused, not warned of: a token or password given
	// under a name nothing reads leaves what it was to guard open (an API
	// token misnamed, the API answers anyone) while the operator believes
	// it set. A secret's name, or a misspelling of one (OTPSCOPE_API_TOKN).
	for _, s := range strays {
		if flagenv.SecretName(s.Name) || flagenv.SecretName(s.Suggest) {
			meant := ""
			if s.Suggest != "" {
				meant = " (did you mean " + s.Suggest + "?)"
			}
			return refuse("%s names no setting of otpscope%s: a secret under a name otpscope does not read leaves what it guards open; rename it or unset it (see %s --help)",
				s.Name, meant, c.Name)
		}
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(*level)); err != nil {
		return refuse("log-level %q: %v", *level, err)
	}
	var handler slog.Handler
	switch opts := (&slog.HandlerOptions{Level: l}); *format {
	case "text":
		handler = slog.NewTextHandler(stderr, opts)
	case "json":
		handler = slog.NewJSONHandler(stderr, opts)
	default:
		return refuse("log-format %q: want text or json", *format)
	}
	logger := slog.New(handler).With("service", c.Name)
	for _, s := range strays {
		attrs := []any{"name", s.Name}
		if s.Suggest != "" {
			attrs = append(attrs, "did_you_mean", s.Suggest)
		}
		logger.Warn("ignoring an environment variable that names no setting of this command", attrs...)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	// Main returns once the watcher has said what it says: nothing is
	// written to stderr after.
	watched := make(chan struct{})
	defer func() { stop(); <-watched }()
	go func() {
		defer close(watched)
		<-ctx.Done()
		if cause := context.Cause(ctx); cause != context.Canceled { // a signal (its own error), not the return
			// The first signal stops in order (--shutdown-delay, requests in
			// flight, what the sink holds); the default action is back for
			// a second one, which ends the process at once.
			stop()
			logger.Info("stopping: " + cause.Error() + "; a second one stops at once")
		}
	}()
	if configMode {
		return config(ctx, c, fs, args, environ, run, logger, stdout)
	}
	if err := run(ctx, logger); err != nil {
		var u usageError
		var said saidError
		var early stoppedStarting
		switch {
		case errors.As(err, &u):
			fmt.Fprintf(stderr, "%s: %v\n", c.Name, err)
			return 2
		case errors.As(err, &said):
			return 1 // the command said why, on its output
		case errors.As(err, &early):
			// A signal while a service started (NATS not answering yet):
			// the stop asked for, not a failure (systemd and Kubernetes
			// count exit 1 as one). A one-shot command cut short by one
			// (a restore) fails as ever.
			logger.Info("stopped before it had started", "err", err)
			return 0
		}
		logger.Error("stopped with an error", "err", err)
		return 1
	}
	return 0
}

// stoppedStarting is a service's start ended by the signal to stop.
type stoppedStarting struct{ error }

// StoppedStarting marks err as a service's start cut short by the signal
// to stop (ctx ended): Main exits 0, saying so at INFO.
func StoppedStarting(err error) error { return stoppedStarting{err} }

// saidError is an error its command has told on its output already (status
// exits 1 for its warnings): the exit code says it, not a log line.
type saidError struct{ error }

// Said marks err as told on the command's output: Main exits 1 without
// logging it.
func Said(err error) error { return saidError{err} }

// flagSet is c's flags and cli's own (OwnFlags), and the function that runs c.
func flagSet(c Command, out io.Writer) (fs *flag.FlagSet, run func(context.Context, *slog.Logger) error, level, format *string) {
	fs = flag.NewFlagSet(c.Name, flag.ContinueOnError)
	fs.SetOutput(out)
	run = c.Flags(fs)
	level = fs.String("log-level", "info", "debug, info, warn or error")
	format = fs.String("log-format", "text", "text (key=value lines) or json (an object a line, for log collectors)")
	return fs, run, level, format
}

// config is `<command> config`: every flag's value as parsed into fs from
// args and environ, secrets hidden (flagenv.Shown), with where it came from,
// by group; then, for a Checkable command, whether the configuration would
// start (exit 0) or not (exit 2, the problem named).
func config(ctx context.Context, c Command, fs *flag.FlagSet, args, environ []string, run func(context.Context, *slog.Logger) error, logger *slog.Logger, w io.Writer) int {
	// The flags the command line set: args parsed again on their own.
	cmdline, _, _, _ := flagSet(c, io.Discard)
	_ = cmdline.Parse(args)
	fromArgs := map[string]bool{}
	cmdline.Visit(func(f *flag.Flag) { fromArgs[f.Name] = true })
	lookup := flagenv.Lookup(environ)
	source := func(name string) string {
		if fromArgs[name] {
			return "flag"
		}
		if !flagenv.FromEnvironment(fs.Lookup(name)) {
			return "default"
		}
		if v, _, _ := flagenv.Variable(name, lookup); v != "" {
			return "$" + v
		}
		return "default"
	}

	type row struct{ flag, value, source string }
	type group struct {
		name string
		rows []row
	}
	var groups []group
	nameW, valueW := 0, 0
	for _, g := range helpGroups(c, fs) {
		gr := group{name: g.Name}
		for _, name := range g.Flags {
			f := fs.Lookup(name)
			if f == nil {
				continue
			}
			r := row{"--" + name, flagenv.Shown(name, f.Value.String()), source(name)}
			if said := flagenv.DefaultSaid(f); said != "" && r.source == "default" {
				r.value = said
			}
			if r.value == "" {
				r.value = `""`
			}
			nameW, valueW = max(nameW, len(r.flag)), max(valueW, utf8.RuneCountInString(r.value))
			gr.rows = append(gr.rows, r)
		}
		groups = append(groups, gr)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: the configuration from flags, the environment and the defaults (secrets hidden)\n", c.Name)
	for _, g := range groups {
		fmt.Fprintf(&b, "\n%s:\n", g.name)
		for _, r := range g.rows {
			pad := valueW - utf8.RuneCountInString(r.value)
			fmt.Fprintf(&b, "  %-*s  %s%s  %s\n", nameW, r.flag, r.value, strings.Repeat(" ", pad), r.source)
		}
	}
	io.WriteString(w, b.String())
	if !c.Checkable {
		fmt.Fprintf(w, "\n%s checks the rest of its configuration when it runs.\n", c.Name)
		return 0
	}
	if err := run(context.WithValue(ctx, checkOnlyKey{}, true), logger); err != nil {
		fmt.Fprintf(w, "\nconfiguration refused: %v\n", err)
		return 2
	}
	fmt.Fprintf(w, "\nconfiguration ok: %s would start with it (checked without opening or connecting to anything)\n", c.Name)
	return 0
}

// release is the version a build names itself by, set by the linker where
// the build has no VCS information to stamp (deploy/Dockerfile:
// -X github.com/otpscope/otpscope/internal/cli.release=…).
var release string

// ModuleVersion is the version the build names itself by: release when
// set, else the module version Go stamped (from the VCS tag or
// pseudo-version; "(devel)" under go run or without VCS information).
func ModuleVersion() string {
	if release != "" {
		return release
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "unknown"
}

// Version describes the running build: ModuleVersion, then the commit and
// its time when built from a checkout ("+dirty" with uncommitted changes),
// and the Go release.
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = &debug.BuildInfo{}
	}
	var rev, at string
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	parts := []string{}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if dirty {
			rev += "+dirty"
		}
		parts = append(parts, "commit "+rev)
	}
	if at != "" {
		parts = append(parts, at)
	}
	parts = append(parts, runtime.Version())
	return ModuleVersion() + " (" + strings.Join(parts, ", ") + ")"
}

// Usage marks err as a configuration mistake (exit code 2, printed plainly).
func Usage(err error) error { return usageError{err} }

type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

// wanted is what the flag package's "invalid value … for flag -x: parse
// error" leaves unsaid, for the kinds of value it parses: the form wanted.
func wanted(fs *flag.FlagSet, err error) string {
	if strings.Contains(err.Error(), ": want ") {
		return "" // the value's own Set said it (flagenv.Positive)
	}
	var f *flag.Flag
	if _, name, ok := strings.Cut(err.Error(), " for flag -"); ok {
		name, _, _ = strings.Cut(name, ":")
		f = fs.Lookup(name)
	} else if env, _, ok := strings.Cut(err.Error(), "="); ok { // flagenv.Apply's VAR="value": …
		fs.VisitAll(func(g *flag.Flag) {
			if flagenv.Name(g.Name) == env {
				f = g
			}
		})
	}
	if f == nil {
		return ""
	}
	g, ok := flagenv.Unwrap(f.Value).(flag.Getter)
	if !ok {
		return ""
	}
	switch g.Get().(type) {
	case time.Duration:
		return ": want a duration such as 90s, 5m or 1h"
	case bool:
		return ": want true or false"
	case int, int64, uint, uint64:
		return ": want a whole number"
	case float64:
		return ": want a number such as 0.95"
	}
	return ""
}

// Help writes c's help: usage and subcommands, then every flag by group with
// its environment variable and default.
func Help(w io.Writer, c Command, fs *flag.FlagSet) {
	var b strings.Builder
	if c.Summary != "" {
		fmt.Fprintf(&b, "%s — %s\n\n", c.Name, c.Summary)
	}
	lines := c.Subcommands
	if !c.SubcommandsOnly {
		lines = append([]Subcommand{{Usage: c.Name + " [flags]", Summary: "run"}}, lines...)
	}
	lines = slices.Clone(lines)
	lines = append(lines, Subcommand{Usage: c.Name + " config [flags]", Summary: "print the configuration it would run with, secrets hidden, and check it, without starting"},
		Subcommand{Usage: c.Name + " help", Summary: "this help (also --help)"},
		Subcommand{Usage: c.Name + " version", Summary: "the build: version, commit, Go (also --version)"})
	width := 0
	for _, s := range lines {
		width = max(width, len(s.Usage))
	}
	b.WriteString("Usage:\n")
	for _, s := range lines {
		fmt.Fprintf(&b, "  %-*s  %s\n", width, s.Usage, s.Summary)
	}
	fmt.Fprintf(&b, "\nA flag shown with its environment variable $%[1]s… also reads it, or the file $%[1]s…%[2]s names (for secrets); flags override the environment, which overrides the defaults.\n", flagenv.Prefix, flagenv.FileSuffix)

	for _, g := range helpGroups(c, fs) {
		fmt.Fprintf(&b, "\n%s:\n", g.Name)
		for _, name := range g.Flags {
			f := fs.Lookup(name)
			if f == nil {
				continue
			}
			own := *f
			own.Value = flagenv.Unwrap(f.Value)
			kind, usage := flag.UnquoteUsage(&own)
			head := "--" + f.Name
			if kind != "" {
				head += " " + kind
			}
			line := "  " + head
			if flagenv.FromEnvironment(f) {
				line += "  $" + flagenv.Name(f.Name)
			}
			if f.DefValue != "" && f.DefValue != "[]" {
				line += "  (default " + f.DefValue + ")"
			}
			fmt.Fprintf(&b, "%s\n      %s\n", line, usage)
		}
	}
	io.WriteString(w, b.String())
}

// helpGroups are c's flag groups with the flags of none (OwnFlags) in the
// first.
func helpGroups(c Command, fs *flag.FlagSet) flagenv.Groups {
	var groups flagenv.Groups
	if c.Groups != nil {
		groups = append(groups, *c.Groups...)
	}
	var loose []string
	fs.VisitAll(func(f *flag.Flag) {
		if groups.Of(f.Name) == "" {
			loose = append(loose, f.Name)
		}
	})
	if len(groups) == 0 {
		groups = flagenv.Groups{{Name: "Flags"}}
	}
	groups[0].Flags = append(append([]string(nil), groups[0].Flags...), loose...)
	return groups
}
