package console_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/otpscope/otpscope/internal/console"
)

// vendored are the committed copies of uplot@1.6.32 (scripts/setup-console.sh
// pins the tarball's sha512) with their sha256, and their path in the package.
var vendored = []struct{ file, sha256, inPackage string }{
	{"vendor/uPlot.iife.min.js", "19c8d4c6ad88929a79f4ae49d6f7161566dfd0ba3d15cc495e974f787eb78f1f", "dist/uPlot.iife.min.js"},
	{"vendor/uPlot.min.css", "df630c6a8d6f8eeaff264b50f73ce5b114f646ffd9a0bb74f049b0a00135fa04", "dist/uPlot.min.css"},
	{"vendor/uPlot.LICENSE", "8f989229699b4fe2f1a0432d0e9edc338a8a911e250e2d1b01ecd770a5f5b1bd", "LICENSE"},
}

// The embedded chart library is the pinned one: each file has its pinned
// hash, and — once `make setup` unpacked the integrity-checked npm tarball
// into .cache/console — is byte for byte the tarball's file.
func TestVendoredAssetsMatchPinnedPackage(t *testing.T) {
	_, here, _, _ := runtime.Caller(0)
	unpacked := filepath.Join(filepath.Dir(here), "..", "..", ".cache", "console", "uplot")
	if d := os.Getenv("CONSOLE_VENDOR_DIR"); d != "" {
		unpacked = filepath.Join(d, "uplot")
	}
	_, err := os.Stat(unpacked)
	havePackage := err == nil
	if !havePackage {
		t.Logf("%s missing (run make setup): checking the pinned hashes only", unpacked)
	}
	for _, v := range vendored {
		got, err := fs.ReadFile(console.Assets(), v.file)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(got)
		if h := hex.EncodeToString(sum[:]); h != v.sha256 {
			t.Errorf("sha256(%s) = %s; want %s", v.file, h, v.sha256)
		}
		if havePackage {
			want, err := os.ReadFile(filepath.Join(unpacked, v.inPackage))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the pinned package's %s", v.file, v.inPackage)
			}
		}
	}
}
