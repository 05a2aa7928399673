package app_test

import (
	"flag"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/app"
	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/chdb/chdbtest"
	"github.com/otpscope/otpscope/internal/cli"
	"github.com/otpscope/otpscope/internal/flagenv"
	"github.com/otpscope/otpscope/internal/polltest"
	"github.com/otpscope/otpscope/internal/store"
	"github.com/otpscope/otpscope/internal/tyntecsim"
	"github.com/otpscope/otpscope/internal/tyntecsim/simtest"
)

// TestREADMEListsEveryFlag holds the README's configuration tables against
// the binaries: every flag a binary registers is in a table whose heading
// names that binary, every flag such a table lists is registered by each
// binary it names, and an environment variable written out in full is the
// flag's.
func TestREADMEListsEveryFlag(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(readme)
	start := strings.Index(section, "\n## Configuration\n")
	if start < 0 {
		t.Fatal("README has no Configuration section")
	}
	section = section[start+1:]
	if end := strings.Index(section[3:], "\n## "); end > 0 {
		section = section[:end+3]
	}

	heading := regexp.MustCompile(`^### .*\(binaries: ([a-z, ]+)\)$`)
	flagName := regexp.MustCompile("`--([a-z0-9-]+)")
	envName := regexp.MustCompile("`(OTPSCOPE_[A-Z0-9_]+)`")
	documented := map[string][]string{} // binary → flags
	var binaries []string
	for line := range strings.SplitSeq(section, "\n") {
		if m := heading.FindStringSubmatch(line); m != nil {
			binaries = strings.Split(m[1], ", ")
			continue
		}
		if strings.HasPrefix(line, "### ") {
			binaries = nil
		}
		if !strings.HasPrefix(line, "| `--") || binaries == nil {
			continue
		}
		cells := strings.Split(line, "|")
		var flags []string
		for _, m := range flagName.FindAllStringSubmatch(cells[1], -1) {
			flags = append(flags, m[1])
		}
		envs := envName.FindAllStringSubmatch(cells[2], -1)
		if len(envs) == len(flags) {
			for i, m := range envs {
				if want := flagenv.Name(flags[i]); m[1] != want {
					t.Errorf("README: --%s reads %s; the binaries read %s", flags[i], m[1], want)
				}
			}
		}
		for _, b := range binaries {
			documented[b] = append(documented[b], flags...)
		}
	}

	for name, b := range app.Binaries {
		var cfg app.Config
		fs := flag.NewFlagSet(name, flag.ContinueOnError)
		cfg.RegisterFlags(fs, b)
		registered := slices.Clone(cli.OwnFlags) // every command's
		fs.VisitAll(func(f *flag.Flag) { registered = append(registered, f.Name) })
		for _, f := range registered {
			if !slices.Contains(documented[name], f) {
				t.Errorf("%s --%s is in no README table naming %s", name, f, name)
			}
		}
		for _, f := range documented[name] {
			if !slices.Contains(registered, f) {
				t.Errorf("README lists --%s for %s, which has no such flag", f, name)
			}
		}
	}
}

// TestREADMEListsEveryMetric builds each binary and holds the metrics it
// registers against the README: every otpscope_ metric is named there.
func TestREADMEListsEveryMetric(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	ns := brokertest.NewServer(t)
	ch := chdbtest.Serve(t)
	_, simURL := simtest.Start(t, tyntecsim.Config{Seed: 1})
	for _, name := range []string{"ingest", "poller", "reporter", "otpscope"} {
		t.Run(name, func(t *testing.T) {
			cfg := newConfig(t, name)
			cfg.NATS.URL = ns.URL()
			cfg.ClickHouse = store.Config{DSN: ch.DSN + "/" + ch.Database}
			cfg.Ingest.Tokens = []string{"webhook-token-0123456789"}
			cfg.Poller.Tyntec.BaseURL, cfg.Poller.Tyntec.APIKey = simURL, tyntecsim.DefaultAPIKey
			a, stop := start(t, cfg)
			defer stop()
			// Stop only once running (a stop while the consumers are still
			// being set up is reported as an error).
			polltest.Until(t, 20*time.Second, name+" ready", func() bool {
				code, _ := get(t, "http://"+a.Addr()+"/readyz")
				return code == http.StatusOK
			})
			names := a.MetricNames()
			if !slices.Contains(names, "otpscope_build_info") {
				t.Errorf("%s registers no otpscope_build_info: %q", name, names)
			}
			for _, m := range names {
				if strings.HasPrefix(m, "otpscope_") && !regexp.MustCompile(`\b`+m+`\b`).Match(readme) {
					t.Errorf("README does not name %s's metric %s", name, m)
				}
			}
		})
	}
}

// A stop that comes while a module is still setting up (creating its lease
// bucket, its consumer) is a clean stop, not an error of Serve.
func TestStopWhileStarting(t *testing.T) {
	ns := brokertest.NewServer(t)
	ch := chdbtest.Serve(t)
	for range 3 {
		cfg := newConfig(t, "reporter")
		cfg.NATS.URL = ns.URL()
		cfg.ClickHouse = store.Config{DSN: ch.DSN + "/" + ch.Database}
		_, stop := start(t, cfg)
		stop() // reports Serve's error, if any
	}
}
