package chdb

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fakeRoot writes files (path → content) under a temporary root.
func fakeRoot(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	// procfs finds the process through the link /proc/self.
	if err := os.MkdirAll(filepath.Join(root, "proc/42"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("42", filepath.Join(root, "proc/self")); err != nil {
		t.Fatal(err)
	}
	for path, content := range files {
		path = strings.Replace(path, "proc/self/", "proc/42/", 1)
		full := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

const meminfo24G = "MemTotal:       24683784 kB\nMemFree:        1000 kB\n"

func TestProcessMemory(t *testing.T) {
	const ram = 24683784 << 10
	unlimitedV1 := "9223372036854771712\n"
	tests := []struct {
		name  string
		files map[string]string
		want  Memory
	}{
		{"no cgroups", map[string]string{"proc/meminfo": meminfo24G}, Memory{ram, "ram"}},
		{"cgroup v1, unlimited", map[string]string{
			"proc/meminfo":     meminfo24G,
			"proc/self/cgroup": "4:memory:/svc\n3:cpuset:/\n",
			"sys/fs/cgroup/memory/memory.limit_in_bytes":     unlimitedV1,
			"sys/fs/cgroup/memory/svc/memory.limit_in_bytes": unlimitedV1,
		}, Memory{ram, "ram"}},
		// The case ClickHouse itself misses: the limit on the process's
		// own cgroup, not the hierarchy's root.
		{"cgroup v1, the process's own cgroup", map[string]string{
			"proc/meminfo":     meminfo24G,
			"proc/self/cgroup": "5:cpu,cpuacct:/\n4:memory:/system.slice/otpscope.service\n",
			"sys/fs/cgroup/memory/memory.limit_in_bytes":                               unlimitedV1,
			"sys/fs/cgroup/memory/system.slice/memory.limit_in_bytes":                  unlimitedV1,
			"sys/fs/cgroup/memory/system.slice/otpscope.service/memory.limit_in_bytes": "1073741824\n",
		}, Memory{1 << 30, "cgroup v1"}},
		{"cgroup v1, a parent's limit", map[string]string{
			"proc/meminfo":     meminfo24G,
			"proc/self/cgroup": "4:memory:/kubepods/pod1/c1\n",
			"sys/fs/cgroup/memory/kubepods/pod1/memory.limit_in_bytes":    "2147483648\n",
			"sys/fs/cgroup/memory/kubepods/pod1/c1/memory.limit_in_bytes": unlimitedV1,
		}, Memory{2 << 30, "cgroup v1"}},
		// A container's mount is its own cgroup; the path is the host's.
		{"cgroup v1, inside a container", map[string]string{
			"proc/meminfo":     meminfo24G,
			"proc/self/cgroup": "4:memory:/docker/0123abcd\n",
			"sys/fs/cgroup/memory/memory.limit_in_bytes": "536870912\n",
		}, Memory{512 << 20, "cgroup v1"}},
		{"cgroup v2", map[string]string{
			"proc/meminfo":                          meminfo24G,
			"proc/self/cgroup":                      "0::/system.slice/otpscope.service\n",
			"sys/fs/cgroup/system.slice/memory.max": "max\n",
			"sys/fs/cgroup/system.slice/otpscope.service/memory.max": "3221225472\n",
		}, Memory{3 << 30, "cgroup v2"}},
		{"cgroup v2, no limit", map[string]string{
			"proc/meminfo":                        meminfo24G,
			"proc/self/cgroup":                    "0::/user.slice\n",
			"sys/fs/cgroup/user.slice/memory.max": "max\n",
		}, Memory{ram, "ram"}},
		{"a limit above the RAM", map[string]string{
			"proc/meminfo":                 meminfo24G,
			"proc/self/cgroup":             "0::/big\n",
			"sys/fs/cgroup/big/memory.max": "68719476736\n",
		}, Memory{ram, "ram"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := processMemory(fakeRoot(t, tt.files))
			if err != nil || got != tt.want {
				t.Errorf("processMemory = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
	if _, err := processMemory(fakeRoot(t, map[string]string{"proc/meminfo": "MemFree: 1 kB\n"})); err == nil {
		t.Error("processMemory without MemTotal: no error")
	}
}

func TestMemoryArgs(t *testing.T) {
	got := memoryArgs(Memory{Bytes: 1 << 30})
	want := []string{"--max_server_memory_usage=536870912", "--mark_cache_size=67108864",
		"--index_mark_cache_size=67108864", "--primary_index_cache_size=67108864"}
	if !slices.Equal(got, want) {
		t.Errorf("memoryArgs(1 GiB) = %q; want %q", got, want)
	}
}
