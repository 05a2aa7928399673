package app_test

import (
	"flag"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/otpscope/otpscope/internal/app"
	"github.com/otpscope/otpscope/internal/flagenv"
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
		registered := []string{"log-level"} // every command's (package cli)
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
