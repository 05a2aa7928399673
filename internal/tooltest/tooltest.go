// Package tooltest finds the programs that make setup-test takes from Debian's
// packages for the tests that run them as the real thing (scripts/
// setup-debian-tool.sh): Prometheus' promtool and Alertmanager.
package tooltest

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Program is the path of the program that the environment variable env
// names (make test sets it), or else of .cache/<rel> under the module's
// root. Missing, it fails the test when env or CI is set, as under make
// test and .ci/run, and skips it saying so otherwise (go test by hand).
func Program(t testing.TB, env, rel string) string {
	t.Helper()
	set := os.Getenv(env)
	bin := cmp.Or(set, filepath.Join(moduleRoot(t), ".cache", rel))
	if _, err := os.Stat(bin); err != nil {
		msg := fmt.Sprintf("%s not found at %s (%v): run make setup-test (scripts/setup-debian-tool.sh), or set %s", filepath.Base(rel), bin, err, env)
		if set != "" || os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return bin
}

// moduleRoot is the nearest directory above the test's with a go.mod.
func moduleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}
