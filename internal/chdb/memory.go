package chdb

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/prometheus/procfs"
)

// The engine's memory.
//
// ClickHouse sizes itself from the machine: it may use 0.9 of the RAM
// (max_server_memory_usage_to_ram_ratio) and each of its caches up to half
// (cache_size_to_ram_max_ratio, 5 GiB each by default). Embedded, it
// shares the process with the NATS server and the Go heap, and it reads a
// cgroup v1 limit only at the hierarchy's root: under a limit placed on
// the process's own cgroup (a systemd MemoryMax on a cgroup v1 host) it
// counted the host's 23.5 GiB where 1 GiB was allowed (2026-12-06). A
// query past the process's memory then has the kernel kill the whole
// process, webhook intake with it.
//
// So the engine is given engineShare of what the process may use — the
// least of the RAM and its cgroup's limit, v1 or v2, found from
// /proc/self/cgroup — and its caches an eighth of that each. Past it a
// query fails with MEMORY_LIMIT_EXCEEDED (the API answers 503 and the
// sink retries), and the process lives.

// engineShare is the part of the process's memory the engine may use.
const engineShare = 0.5

// Memory is what the process may use and where that figure came from.
type Memory struct {
	Bytes  uint64
	Source string // "ram", "cgroup v1" or "cgroup v2"
}

// engine is the memory the engine may use in a process that may use m.
func (m Memory) engine() uint64 { return uint64(float64(m.Bytes) * engineShare) }

// memoryArgs are the engine's command-line bounds for a process that may
// use m.
func memoryArgs(m Memory) []string {
	engine := m.engine()
	return []string{
		"--max_server_memory_usage=" + strconv.FormatUint(engine, 10),
		"--mark_cache_size=" + strconv.FormatUint(engine/8, 10),
		"--index_mark_cache_size=" + strconv.FormatUint(engine/8, 10),
		"--primary_index_cache_size=" + strconv.FormatUint(engine/8, 10),
	}
}

// ProcessMemory is what this process may use: the least of the machine's
// RAM and its cgroup's memory limit.
func ProcessMemory() (Memory, error) { return processMemory("/") }

// processMemory is ProcessMemory with /proc and /sys under root (tests).
// procfs reads /proc, as it does for the Prometheus process collector.
func processMemory(root string) (Memory, error) {
	fs, err := procfs.NewFS(filepath.Join(root, "proc"))
	if err != nil {
		return Memory{}, fmt.Errorf("the machine's memory: %w", err)
	}
	info, err := fs.Meminfo()
	if err != nil || info.MemTotalBytes == nil {
		return Memory{}, fmt.Errorf("the machine's memory: no MemTotal (%v)", err)
	}
	m := Memory{Bytes: *info.MemTotalBytes, Source: "ram"}
	self, err := fs.Self()
	if err != nil {
		return m, nil // no /proc/self: the RAM it is
	}
	cgroups, err := self.Cgroups()
	if err != nil {
		return m, nil // not Linux's cgroups: the RAM it is
	}
	for _, cg := range cgroups {
		var limit uint64
		var source string
		switch {
		case cg.HierarchyID == 0 && len(cg.Controllers) == 0:
			limit, source = cgroupLimit(filepath.Join(root, "sys/fs/cgroup"), cg.Path, "memory.max"), "cgroup v2"
		case slices.Contains(cg.Controllers, "memory"):
			limit, source = cgroupLimit(filepath.Join(root, "sys/fs/cgroup/memory"), cg.Path, "memory.limit_in_bytes"), "cgroup v1"
		}
		if limit > 0 && limit < m.Bytes {
			m = Memory{Bytes: limit, Source: source}
		}
	}
	return m, nil
}

// cgroupLimit is the least limit in file along path's cgroups under
// mount, from the process's own up to the root: a parent's limit bounds
// its children. 0 means none found. Inside a container the mount may be
// the container's own cgroup while path is the host's name for it, so
// only the directories that exist count.
func cgroupLimit(mount, path, file string) uint64 {
	var least uint64
	dir := filepath.Join(mount, filepath.Clean("/"+path))
	for {
		if b, err := os.ReadFile(filepath.Join(dir, file)); err == nil {
			// "max" (v2) or a figure near 2^63 (v1) is no limit.
			if n, err := strconv.ParseUint(string(bytes.TrimSpace(b)), 10, 64); err == nil && n < 1<<62 && (least == 0 || n < least) {
				least = n
			}
		}
		if dir == mount || len(dir) <= len(mount) {
			return least
		}
		dir = filepath.Dir(dir)
	}
}
