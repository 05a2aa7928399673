package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/flagenv"
)

func testCommand(ran *bool) Command {
	groups := new(flagenv.Groups)
	return Command{
		Name:        "svc",
		Summary:     "a test service",
		Subcommands: []Subcommand{{Usage: "svc report [flags]", Summary: "print a report"}},
		Groups:      groups,
		Flags: func(fs *flag.FlagSet) func(context.Context, *slog.Logger) error {
			groups.Add(fs, "Process", func() { fs.String("listen", "127.0.0.1:1", "HTTP address") })
			groups.Add(fs, "NATS", func() { fs.String("nats-url", "", "external NATS") })
			return func(context.Context, *slog.Logger) error { *ran = true; return nil }
		},
	}
}

var none []string

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		var ran bool
		var out, errs bytes.Buffer
		if code := Main(testCommand(&ran), args, none, &out, &errs); code != 0 || ran || errs.Len() != 0 {
			t.Errorf("Main(%q) = %d, ran %v, stderr %q; want 0 without running, the help on stdout", args, code, ran, errs.String())
		}
		help := out.String()
		for _, want := range []string{"svc — a test service", "svc report [flags]", "svc help", "Process:\n  --listen string  $OTPSCOPE_LISTEN  (default 127.0.0.1:1)\n      HTTP address", "--log-level string  $OTPSCOPE_LOG_LEVEL", "NATS:\n  --nats-url string  $OTPSCOPE_NATS_URL\n"} {
			if !strings.Contains(help, want) {
				t.Errorf("Main(%q) help lacks %q:\n%s", args, want, help)
			}
		}
		if strings.Index(help, "--log-level") > strings.Index(help, "NATS:") {
			t.Errorf("--log-level is not in the first group:\n%s", help)
		}
	}
}

// TestUsageErrorOnStderr: a flag the command does not have is one line
// on stderr naming it and pointing at --help; nothing on stdout.
func TestUsageErrorOnStderr(t *testing.T) {
	var ran bool
	var out, errs bytes.Buffer
	code := Main(testCommand(&ran), []string{"--nope"}, none, &out, &errs)
	if code != 2 || ran || out.Len() != 0 || errs.String() != "svc: flag provided but not defined: -nope (see svc --help)\n" {
		t.Errorf("Main(--nope) = %d, ran %v, stdout %q, stderr %q; want 2 and one line on stderr", code, ran, out.String(), errs.String())
	}
}

// TestBadValueSaysTheFormWanted: the flag package's "parse error" says
// nothing of what it wanted; the form is added, for a flag and for its
// variable.
func TestBadValueSaysTheFormWanted(t *testing.T) {
	c := Command{Name: "svc", Flags: func(fs *flag.FlagSet) func(context.Context, *slog.Logger) error {
		fs.Duration("window", time.Hour, "")
		fs.Float64("rate", 0.8, "")
		fs.Duration("timeout", time.Second, "")
		flagenv.Positive(fs, "timeout")
		return func(context.Context, *slog.Logger) error { return nil }
	}}
	for _, tt := range []struct {
		args, env []string
		want      string
	}{
		{[]string{"--window", "60"}, none, `invalid value "60" for flag -window: parse error: want a duration such as 90s, 5m or 1h`},
		{none, []string{"OTPSCOPE_WINDOW=60"}, `OTPSCOPE_WINDOW="60": parse error: want a duration such as 90s, 5m or 1h`},
		{[]string{"--rate", "high"}, none, `parse error: want a number such as 0.95`},
		// The value's own refusal, not a second "want".
		{[]string{"--timeout", "0"}, none, `invalid value "0" for flag -timeout: want a positive duration such as 90s, 5m or 1h (see svc --help)`},
		{none, []string{"OTPSCOPE_TIMEOUT=0"}, `OTPSCOPE_TIMEOUT="0": want a positive duration such as 90s, 5m or 1h (see svc --help)`},
	} {
		var out, errs bytes.Buffer
		if code := Main(c, tt.args, tt.env, &out, &errs); code != 2 || !strings.Contains(errs.String(), tt.want) {
			t.Errorf("Main(%q, %q) = %d, %q; want 2 saying %q", tt.args, tt.env, code, errs.String(), tt.want)
		}
	}
}

// TestPlaceholderRefused: a value still holding deploy/'s placeholder,
// from the environment or the command line, stops the command before it
// runs (and `config` too), naming the flags.
func TestPlaceholderRefused(t *testing.T) {
	for _, tt := range []struct {
		args, env []string
	}{
		{nil, []string{"OTPSCOPE_NATS_URL=nats://otpscope:REPLACE_ME@nats:4222"}},
		{[]string{"config", "--listen", "REPLACE_ME:1"}, nil},
	} {
		var ran bool
		var out, errs bytes.Buffer
		code := Main(testCommand(&ran), tt.args, tt.env, &out, &errs)
		if code != 2 || ran || !strings.Contains(errs.String(), "still deploy/'s placeholder REPLACE_ME") {
			t.Errorf("Main(%q) with %q = %d, ran %v, stderr %q; want 2, the placeholder named", tt.args, tt.env, code, ran, errs.String())
		}
	}
}

func TestPositionalArgumentsAreUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"report"}, {"--listen", "127.0.0.1:2", "extra"}} {
		var ran bool
		var out bytes.Buffer
		if code := Main(testCommand(&ran), args, none, &out, &out); code != 2 || ran || !strings.Contains(out.String(), "unexpected argument") {
			t.Errorf("Main(%q) = %d, ran %v, %q; want 2 without running", args, code, ran, out.String())
		}
	}
}

// TestVersion: "version" and --version print the build without running the
// command, whatever OTPSCOPE_VERSION says; a release set by the linker
// names it.
func TestVersion(t *testing.T) {
	env := []string{"OTPSCOPE_VERSION=not-a-bool"}
	defer func(r string) { release = r }(release)
	release = "v1.2.3"
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}} {
		var ran bool
		var out bytes.Buffer
		code := Main(testCommand(&ran), args, env, &out, io.Discard)
		if want := "svc v1.2.3 ("; code != 0 || ran || !strings.HasPrefix(out.String(), want) || !strings.Contains(out.String(), runtime.Version()) {
			t.Errorf("Main(%q) = %d, ran %v, %q; want 0 without running, %q… with the Go release", args, code, ran, out.String(), want)
		}
	}
	var ran bool
	var out bytes.Buffer
	if code := Main(testCommand(&ran), nil, env, &out, &out); code != 0 || !ran {
		t.Errorf("with OTPSCOPE_VERSION set, Main() = %d, ran %v, %s; want it run (the variable is not a flag's)", code, ran, out.String())
	}
	out.Reset()
	Main(testCommand(&ran), []string{"help"}, none, &out, &out)
	if !strings.Contains(out.String(), "svc version") {
		t.Error("help does not list svc version")
	}
}

// TestStrayEnvironment: Main warns of an OTPSCOPE_* variable the command
// does not read, naming the one it likely misspells, and not of one that
// OtherEnv claims nor of one the command reads; it still runs.
func TestStrayEnvironment(t *testing.T) {
	var ran bool
	var out bytes.Buffer
	c := testCommand(&ran)
	c.OtherEnv = func(name string) bool { return name == "OTPSCOPE_STREAM" }
	env := []string{"OTPSCOPE_NAT_URL=nats://x:4222", "OTPSCOPE_STREAM=S", "OTPSCOPE_LISTEN=127.0.0.1:2", "HOME=/root"}
	if code := Main(c, nil, env, &out, &out); code != 0 || !ran {
		t.Fatalf("Main = %d, ran %v; want 0, run:\n%s", code, ran, out.String())
	}
	got := out.String()
	if want := "level=WARN msg=\"ignoring an environment variable that names no setting of this command\" service=svc name=OTPSCOPE_NAT_URL did_you_mean=OTPSCOPE_NATS_URL"; !strings.Contains(got, want) {
		t.Errorf("log:\n%s\nwant a line with %s", got, want)
	}
	if n := strings.Count(got, "level=WARN"); n != 1 {
		t.Errorf("%d warnings; want 1 (OTPSCOPE_STREAM is claimed, OTPSCOPE_LISTEN read, HOME not ours):\n%s", n, got)
	}

	out.Reset()
	c.OtherEnv = nil
	if Main(c, nil, env, &out, &out); strings.Contains(out.String(), "WARN") {
		t.Errorf("without OtherEnv Main warned:\n%s", out.String())
	}
}

// TestStraySecretRefused: a stray variable whose name is a secret's
// (OTPSCOPE_API_TOKN for OTPSCOPE_API_TOKEN) is refused before the command
// runs, in `config` too, naming it and what it likely misspells, never its
// value: the operator believes the API guarded while it answers anyone.
func TestStraySecretRefused(t *testing.T) {
	for _, tt := range []struct {
		args      []string
		stray, is string
	}{
		{nil, "OTPSCOPE_API_TOKN", "OTPSCOPE_API_TOKN names no setting of otpscope (did you mean OTPSCOPE_API_TOKEN?)"},
		{[]string{"config"}, "OTPSCOPE_API_TOKN", "OTPSCOPE_API_TOKN names no setting of otpscope (did you mean OTPSCOPE_API_TOKEN?)"},
		{nil, "OTPSCOPE_GRAFANA_PASSWORD", "OTPSCOPE_GRAFANA_PASSWORD names no setting of otpscope:"},
	} {
		var ran bool
		c := testCommand(&ran)
		c.OtherEnv = func(string) bool { return false }
		flags := c.Flags
		c.Flags = func(fs *flag.FlagSet) func(context.Context, *slog.Logger) error {
			fs.String("api-token", "", "bearer token")
			return flags(fs)
		}
		var out bytes.Buffer
		code := Main(c, tt.args, []string{tt.stray + "=s3cret-value-0123456789"}, &out, &out)
		if want := "svc: " + tt.is; code != 2 || ran || !strings.Contains(out.String(), want) || !strings.Contains(out.String(), "leaves what it guards open") {
			t.Errorf("Main(%q) with %s = %d, ran %v:\n%s\nwant 2 without running, saying %q", tt.args, tt.stray, code, ran, out.String(), want)
		}
		if strings.Contains(out.String(), "s3cret") {
			t.Errorf("the refusal shows the value:\n%s", out.String())
		}
	}
	// A stray of another kind is a warning, as before.
	var ran bool
	var out bytes.Buffer
	if code := Main(testCommand(&ran), nil, []string{"OTPSCOPE_LISTN=x"}, &out, &out); code != 0 || !ran {
		t.Errorf("a stray that is no secret: Main = %d, ran %v; want it run", code, ran)
	}
}

// TestLogFormat: --log-format json writes each entry as one JSON object;
// an unknown format is a usage error before the command runs.
func TestLogFormat(t *testing.T) {
	var ran bool
	var out bytes.Buffer
	c := testCommand(&ran)
	c.OtherEnv = func(string) bool { return false }
	if code := Main(c, []string{"--log-format", "json"}, []string{"OTPSCOPE_LISTN=x"}, &out, &out); code != 0 || !ran {
		t.Fatalf("Main = %d, ran %v:\n%s", code, ran, out.String())
	}
	var entry map[string]any
	if err := json.Unmarshal(out.Bytes(), &entry); err != nil {
		t.Fatalf("log %q is not one JSON object: %v", out.String(), err)
	}
	if entry["level"] != "WARN" || entry["service"] != "svc" || entry["name"] != "OTPSCOPE_LISTN" || entry["did_you_mean"] != "OTPSCOPE_LISTEN" {
		t.Errorf("entry = %v; want the stray variable's warning with its keys", entry)
	}

	ran = false
	out.Reset()
	if code := Main(c, nil, []string{"OTPSCOPE_LOG_FORMAT=logfmt"}, &out, &out); code != 2 || ran || !strings.Contains(out.String(), `log-format "logfmt": want text or json`) {
		t.Errorf("OTPSCOPE_LOG_FORMAT=logfmt: Main = %d, ran %v, %q; want 2 without running", code, ran, out.String())
	}
}

// TestConfig: `config` lists every flag's value and where it came from,
// hides secrets, runs nothing, and for a Checkable command says whether
// the configuration would start.
func TestConfig(t *testing.T) {
	var ran bool
	var checked []bool
	c := testCommand(&ran)
	c.Checkable = true
	flags := c.Flags
	c.Flags = func(fs *flag.FlagSet) func(context.Context, *slog.Logger) error {
		flags(fs)
		fs.String("api-token", "", "")
		fs.Int64("stream-max-bytes", 0, "0 = no bound")
		flagenv.SayDefault(fs, "stream-max-bytes", "unset: 60 % of the embedded store")
		return func(ctx context.Context, _ *slog.Logger) error {
			checked = append(checked, CheckOnly(ctx))
			if fs.Lookup("listen").Value.String() == "bad" {
				return Usage(errors.New("listen: bad address"))
			}
			return nil
		}
	}
	env := []string{"OTPSCOPE_NATS_URL=nats://otpscope:pw@n:4222", "OTPSCOPE_API_TOKEN=s3cret-token-0123456789"}

	var out, errs bytes.Buffer
	if code := Main(c, []string{"config", "--log-level", "debug"}, env, &out, &errs); code != 0 || ran || errs.Len() != 0 {
		t.Fatalf("config = %d, ran %v, stderr %q; want 0, not run, all on stdout:\n%s", code, ran, errs.String(), out.String())
	}
	got := out.String()
	for _, re := range []string{
		`(?m)^  --listen +127\.0\.0\.1:1 +default$`,
		`(?m)^  --nats-url +nats://otpscope:xxxxx@n:4222 +\$OTPSCOPE_NATS_URL$`,
		`(?m)^  --api-token +\(secret\) +\$OTPSCOPE_API_TOKEN$`,
		`(?m)^  --log-level +debug +flag$`,
		// A default worked out at start is said, not its zero ("0" reads
		// "no bound").
		`(?m)^  --stream-max-bytes +unset: 60 % of the embedded store +default$`,
		`(?m)^configuration ok: svc would start`,
	} {
		if !regexp.MustCompile(re).MatchString(got) {
			t.Errorf("config output lacks %s:\n%s", re, got)
		}
	}
	if strings.Contains(got, "s3cret") || strings.Contains(got, ":pw@") {
		t.Errorf("config output shows a secret:\n%s", got)
	}
	if len(checked) != 1 || !checked[0] {
		t.Errorf("run calls with CheckOnly: %v; want one, true", checked)
	}

	out.Reset()
	if code := Main(c, []string{"config", "--listen", "bad"}, nil, &out, &out); code != 2 || !strings.Contains(out.String(), "configuration refused: listen: bad address") {
		t.Errorf("config with a bad listen = %d:\n%s\nwant 2, refused", code, out.String())
	}

	// Refused before the check (a flag's value, an argument): the reason on stderr and config's last line on stdout.
	for _, tc := range []struct {
		args, env []string
		want      string
	}{
		{[]string{"config", "--log-level", "loud"}, nil, `log-level "loud"`},
		{[]string{"config", "extra"}, nil, `unexpected argument "extra"`},
	} {
		out.Reset()
		errs.Reset()
		code := Main(c, tc.args, tc.env, &out, &errs)
		if last := strings.TrimSpace(out.String()); code != 2 || !strings.HasPrefix(last, "configuration refused: ") || !strings.Contains(last, tc.want) || !strings.Contains(errs.String(), tc.want) {
			t.Errorf("%q with %q = %d, stdout %q, stderr %q; want 2 and %q on both, stdout's as configuration refused", tc.args, tc.env, code, out.String(), errs.String(), tc.want)
		}
	}

	out.Reset()
	c.Checkable = false
	checked = nil
	if code := Main(c, []string{"config"}, nil, &out, &out); code != 0 || checked != nil || !strings.Contains(out.String(), "svc checks the rest of its configuration when it runs") {
		t.Errorf("config of a command that cannot check = %d, run %v:\n%s", code, checked, out.String())
	}
}

// A command that does nothing alone lists its subcommands, not a bare run.
func TestHelpSubcommandsOnly(t *testing.T) {
	for _, only := range []bool{false, true} {
		c := Command{Name: "otpscope backup", SubcommandsOnly: only,
			Subcommands: []Subcommand{{Usage: "otpscope backup create [flags]", Summary: "take a backup now"}}}
		var b bytes.Buffer
		Help(&b, c, flag.NewFlagSet("x", flag.ContinueOnError))
		bare := regexp.MustCompile(`(?m)^  otpscope backup \[flags\] +run$`).MatchString(b.String())
		if bare == only || !strings.Contains(b.String(), "otpscope backup create [flags]") {
			t.Errorf("SubcommandsOnly %v: help\n%s", only, b.String())
		}
	}
}

// commandReturning is a command whose run does what run says.
func commandReturning(run func(ctx context.Context) error) Command {
	return Command{Name: "svc", Summary: "a test service", Groups: new(flagenv.Groups),
		Flags: func(*flag.FlagSet) func(context.Context, *slog.Logger) error {
			return func(ctx context.Context, _ *slog.Logger) error { return run(ctx) }
		}}
}

// How a run's end is told. An error the command said on its output
// (status's warnings) exits 1 with no log line: `otpscope status` in a cron
// job mailed an ERROR after its own report. A signal while a service starts
// (NATS not answering yet) is the stop asked for: exit 0, said at INFO, not
// an ERROR and 1, which systemd and Kubernetes count as a failed stop. A
// one-shot command a signal cuts short (a restore) failed, and any other
// error: logged, exit 1.
func TestRunEnds(t *testing.T) {
	for _, tt := range []struct {
		name  string
		run   func(ctx context.Context) error
		code  int
		log   string
		stays string
	}{
		{"said", func(context.Context) error { return Said(errors.New("2 warning(s)")) }, 1, "", ""},
		{"failed", func(context.Context) error { return errors.New("no such table") }, 1, "level=ERROR msg=\"stopped with an error\" service=svc err=\"no such table\"", ""},
		{"a signal while a service starts", func(ctx context.Context) error {
			if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
				return err
			}
			<-ctx.Done()
			return StoppedStarting(fmt.Errorf("ensure stream: %w", ctx.Err()))
		}, 0, "level=INFO msg=\"stopped before it had started\"", "ERROR"},
		{"a signal cutting a one-shot command short", func(ctx context.Context) error {
			if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
				return err
			}
			<-ctx.Done()
			return fmt.Errorf("restore: copying part 3 of 7: %w", ctx.Err())
		}, 1, "level=ERROR msg=\"stopped with an error\"", ""},
	} {
		var out, errs bytes.Buffer
		code := Main(commandReturning(tt.run), nil, none, &out, &errs)
		logged := errs.String()
		if code != tt.code || (tt.log == "") != (logged == "") || !strings.Contains(logged, tt.log) || (tt.stays != "" && strings.Contains(logged, tt.stays)) {
			t.Errorf("%s: exit %d, stderr %q; want %d and %q", tt.name, code, logged, tt.code, tt.log)
		}
	}
}
