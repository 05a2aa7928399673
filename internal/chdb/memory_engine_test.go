package chdb_test

import (
	"errors"
	"os"
	"os/exec"
	"testing"

	"github.com/otpscope/otpscope/internal/chdb"
	"github.com/otpscope/otpscope/internal/chdb/chdbtest"
)

// boundedEngineDir, when set, makes TestEngineBoundedByTheProcessMemory the
// process of its own that it starts (one engine is open per process).
const boundedEngineDir = "OTPSCOPE_TEST_BOUNDED_ENGINE_DIR"

// TestEngineBoundedByTheProcessMemory: the engine may use half of what the
// process may (here 512 MiB): a query past that fails with
// MEMORY_LIMIT_EXCEEDED, where unbounded the kernel would have killed the
// process, and the engine goes on answering.
func TestEngineBoundedByTheProcessMemory(t *testing.T) {
	if dir := os.Getenv(boundedEngineDir); dir != "" {
		boundedEngine(t, dir)
		return
	}
	chdbtest.Open(t) // the library, or the skip that says how to install it
	cmd := exec.Command(os.Args[0], "-test.run=^TestEngineBoundedByTheProcessMemory$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), boundedEngineDir+"="+t.TempDir(), "CI=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the bounded engine's process: %v\n%s", err, out)
	}
}

func boundedEngine(t *testing.T, dir string) {
	e, err := chdb.Open(dir, chdb.WithMemory(chdb.Memory{Bytes: 512 << 20, Source: "test"}))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx := t.Context()
	for name, want := range map[string]string{"max_server_memory_usage": "268435456\n", "mark_cache_size": "33554432\n"} {
		got, err := e.Query(ctx, "SELECT value FROM system.server_settings WHERE name = '"+name+"'", "TabSeparated")
		if err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", name, got, err, want)
		}
	}
	// 100 M numbers in one array: 800 MB.
	_, err = e.Query(ctx, "SELECT length(groupArray(number)) FROM numbers(100000000)", "TabSeparated")
	if ex := (*chdb.Exception)(nil); !errors.As(err, &ex) || ex.Code != 241 {
		t.Errorf("a query of 800 MB under a 256 MiB engine: %v; want MEMORY_LIMIT_EXCEEDED (241)", err)
	}
	if got, err := e.Query(ctx, "SELECT 1", "TabSeparated"); err != nil || string(got) != "1\n" {
		t.Errorf("SELECT 1 after = %q, %v", got, err)
	}
}
