package cli

import (
	"bytes"
	"context"
	"flag"
	"log/slog"
	"runtime"
	"strings"
	"testing"

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

func none(string) (string, bool) { return "", false }

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		var ran bool
		var out bytes.Buffer
		if code := Main(testCommand(&ran), args, none, &out); code != 0 || ran {
			t.Errorf("Main(%q) = %d, ran %v; want 0 without running", args, code, ran)
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

func TestPositionalArgumentsAreUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"report"}, {"--listen", "127.0.0.1:2", "extra"}} {
		var ran bool
		var out bytes.Buffer
		if code := Main(testCommand(&ran), args, none, &out); code != 2 || ran || !strings.Contains(out.String(), "unexpected argument") {
			t.Errorf("Main(%q) = %d, ran %v, %q; want 2 without running", args, code, ran, out.String())
		}
	}
}

// TestVersion: "version" and --version print the build without running the
// command, whatever OTPSCOPE_VERSION says; a release set by the linker
// names it.
func TestVersion(t *testing.T) {
	env := func(name string) (string, bool) { return "not-a-bool", name == "OTPSCOPE_VERSION" }
	defer func(r string) { release = r }(release)
	release = "v1.2.3"
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}} {
		var ran bool
		var out bytes.Buffer
		code := Main(testCommand(&ran), args, env, &out)
		if want := "svc v1.2.3 ("; code != 0 || ran || !strings.HasPrefix(out.String(), want) || !strings.Contains(out.String(), runtime.Version()) {
			t.Errorf("Main(%q) = %d, ran %v, %q; want 0 without running, %q… with the Go release", args, code, ran, out.String(), want)
		}
	}
	var ran bool
	var out bytes.Buffer
	if code := Main(testCommand(&ran), nil, env, &out); code != 0 || !ran {
		t.Errorf("with OTPSCOPE_VERSION set, Main() = %d, ran %v, %s; want it run (the variable is not a flag's)", code, ran, out.String())
	}
	out.Reset()
	Main(testCommand(&ran), []string{"help"}, none, &out)
	if !strings.Contains(out.String(), "svc version") {
		t.Error("help does not list svc version")
	}
}
