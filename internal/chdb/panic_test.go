package chdb_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/chdb/chdbtest"
)

// panicChildEnv makes the test binary, re-executed by TestGoPanicFailsFast,
// open the engine and then panic.
const panicChildEnv = "OTPSCOPE_CHDB_PANIC_CHILD"

// TestGoPanicFailsFast guards against chDB's own SIGSEGV/SIGBUS handlers,
// which turn any Go panic into a process that hangs for minutes: Open must
// leave the Go runtime's signal handlers in place.
func TestGoPanicFailsFast(t *testing.T) {
	if kind := os.Getenv(panicChildEnv); kind != "" {
		panicChild(t, kind)
		return
	}
	chdbtest.Open(t) // skips without the library
	tests := []struct {
		kind string
		want string
	}{
		{"nil-dereference", "panic: runtime error: invalid memory address or nil pointer dereference"},
		{"explicit", "panic: explicit panic from the chdb child"},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			// The deadline only guards against the hang: a child that
			// outlives it is the failure being tested for.
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestGoPanicFailsFast$", "-test.count=1")
			// The child dies before it can remove its engine's data
			// directory; under TMPDIR it goes with the parent's TempDir.
			cmd.Env = append(os.Environ(), panicChildEnv+"="+tt.kind, "TMPDIR="+t.TempDir())
			out, err := cmd.CombinedOutput()
			if ctx.Err() != nil {
				t.Fatalf("child did not exit within 20s after its panic (chDB's signal handlers are active?); output:\n%s", out)
			}
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() == 0 {
				t.Fatalf("child exit = %v; want a non-zero exit status; output:\n%s", err, out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Errorf("child output lacks %q:\n%s", tt.want, out)
			}
			if !strings.Contains(string(out), "engine open, query ok") {
				t.Errorf("child did not get as far as a query before panicking:\n%s", out)
			}
		})
	}
}

type panicPayload struct{ n *int }

func panicChild(t *testing.T, kind string) {
	e := chdbtest.Open(t)
	if _, err := e.Query(t.Context(), "SELECT count() FROM numbers(1000)", "TabSeparated"); err != nil {
		t.Fatalf("child query: %v", err)
	}
	os.Stderr.WriteString("engine open, query ok\n")
	switch kind {
	case "nil-dereference":
		var p panicPayload
		_ = *p.n // SIGSEGV, which chDB's handler would swallow
	default:
		panic("explicit panic from the chdb child")
	}
}
