package app

import (
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/otpscope/otpscope/internal/flagenv"
)

// TestDeployFilesSetOnlyKnownVariables: every OTPSCOPE_* variable the
// deployment files set or pass on is one OtherEnv claims, so that the
// binaries run from them warn of none; and nonFlagEnv names no flag's
// variable (it would hide a flag renamed away).
func TestDeployFilesSetOnlyKnownVariables(t *testing.T) {
	name := regexp.MustCompile(`OTPSCOPE_[A-Z0-9_]*[A-Z0-9]\b`)
	seen := 0
	err := filepath.WalkDir("../../deploy", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) == ".go" || filepath.Ext(path) == ".md" {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, n := range name.FindAllString(string(b), -1) {
			seen++
			if !OtherEnv(n) {
				t.Errorf("%s sets %s, which no binary reads (nor nonFlagEnv lists)", path, n)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen < 20 {
		t.Fatalf("found %d OTPSCOPE_* names in deploy/; the walk missed its files", seen)
	}

	flags := map[string]bool{}
	for n, b := range Binaries {
		var cfg Config
		fs := flag.NewFlagSet(n, flag.ContinueOnError)
		cfg.RegisterFlags(fs, b)
		fs.VisitAll(func(f *flag.Flag) { flags[flagenv.Name(f.Name)] = true })
	}
	for _, n := range nonFlagEnv {
		if flags[n] {
			t.Errorf("nonFlagEnv lists %s, a flag's variable", n)
		}
	}
	if OtherEnv("OTPSCOPE_TYNTEC_APIKEY") {
		t.Error("OtherEnv claims a misspelt variable")
	}
}
