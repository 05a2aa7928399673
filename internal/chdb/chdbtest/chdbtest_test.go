package chdbtest_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otpscope/otpscope/internal/chdb"
	"github.com/otpscope/otpscope/internal/chdb/chdbtest"
)

func TestMain(m *testing.M) { chdbtest.Main(m) }

// envChild marks the child processes of TestMainWithoutLibrary.
const envChild = "OTPSCOPE_CHDBTEST_CHILD"

// TestChildOpensEngine is what the child processes run: one test that needs
// the engine.
func TestChildOpensEngine(t *testing.T) {
	if os.Getenv(envChild) == "" {
		t.Skip("runs in the child processes of TestMainWithoutLibrary")
	}
	chdbtest.Open(t)
}

// TestMainWithoutLibrary runs this test binary again, without the engine
// library, and checks what Main does: in CI it fails before any test runs and
// says how to install the library; elsewhere the engine's tests skip, loudly,
// unless OTPSCOPE_CHDB_LIB says the library is expected.
func TestMainWithoutLibrary(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-libchdb.so")
	tests := []struct {
		name     string
		env      []string
		wantCode int
		want     []string
	}{
		{"CI", []string{"CI=true", chdb.EnvLibrary + "=" + missing}, 1,
			[]string{"CI=true", "library is missing", "make setup", missing}},
		{"CI without OTPSCOPE_CHDB_LIB", []string{"CI=true", chdb.EnvLibrary + "="}, 1,
			[]string{"make setup"}},
		{"local, library expected", []string{"CI=", chdb.EnvLibrary + "=" + missing}, 1,
			[]string{"--- FAIL: TestChildOpensEngine", missing}},
		{"local", []string{"CI=", chdb.EnvLibrary + "="}, 0,
			[]string{"--- SKIP: TestChildOpensEngine", "SKIPPED", "make setup"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestChildOpensEngine$", "-test.v")
			// Away from the repository, whose .cache the library search would find.
			cmd.Dir = t.TempDir()
			cmd.Env = append(os.Environ(), envChild+"=1", "LD_LIBRARY_PATH=")
			cmd.Env = append(cmd.Env, tt.env...)
			out, err := cmd.CombinedOutput()
			code := 0
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				code = exit.ExitCode()
			} else if err != nil {
				t.Fatalf("run %s: %v", os.Args[0], err)
			}
			if code != tt.wantCode {
				t.Errorf("exit code %d; want %d\n%s", code, tt.wantCode, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if tt.wantCode == 1 && strings.HasPrefix(tt.name, "CI") && strings.Contains(string(out), "=== RUN") {
				t.Errorf("tests ran in CI without the library:\n%s", out)
			}
		})
	}
}
