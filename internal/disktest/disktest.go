// Package disktest gives tests a disk that fills up: a small tmpfs (root on
// Linux) and a way to use its last byte.
package disktest

import (
	"fmt"
	"os"
	"syscall"
	"testing"
)

// Tmpfs mounts a tmpfs of sizeMiB at dir, unmounted when the test ends. It
// reports false, with a loud line, where mounting is not allowed.
func Tmpfs(t testing.TB, dir string, sizeMiB int) bool {
	t.Helper()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%dm", sizeMiB)); err != nil {
		t.Logf("LOUD: cannot mount a tmpfs at %s (%v): the disk-full checks need root on Linux", dir, err)
		return false
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	return true
}

// Fill writes path until the filesystem holding it has no byte left; remove
// path to free the space.
func Fill(t testing.TB, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	for {
		if _, err := f.Write(chunk[:1]); err != nil {
			return
		}
	}
}
