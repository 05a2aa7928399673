package app

import (
	"bytes"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/otpscope/otpscope/internal/cli"
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

	flags := flagEnv()
	for _, n := range nonFlagEnv {
		if flags[n] {
			t.Errorf("nonFlagEnv lists %s, a flag's variable", n)
		}
	}
	if OtherEnv("OTPSCOPE_TYNTEC_APIKEY") {
		t.Error("OtherEnv claims a misspelt variable")
	}
}

// TestConfigHidesEverySecret: `otpscope config` with every flag whose name
// marks a secret set, and passwords in the URLs, shows none of them; and a
// configuration that would start says so.
func TestConfigHidesEverySecret(t *testing.T) {
	c := Command(Binaries["otpscope"], nil)
	fs := flag.NewFlagSet("otpscope", flag.ContinueOnError)
	c.Flags(fs)
	env := []string{
		"OTPSCOPE_CLICKHOUSE_DSN=clickhouse://otpscope:sekrit-pw@ch:9000/otpscope",
		"OTPSCOPE_NATS_URL=nats://otpscope:sekrit-pw@nats:4222",
		"OTPSCOPE_ALERT_WEBHOOK_URL=https://hooks.slack.com/services/T0/B0/sekrit-path",
		"OTPSCOPE_REGISTER_CALLBACK_HEADER=X-Webhook-Token: sekrit-header",
	}
	secrets := 0
	fs.VisitAll(func(f *flag.Flag) {
		if strings.HasSuffix(f.Name, "-file") {
			return // a path (--tls-key-file), shown as such
		}
		for _, w := range []string{"password", "token", "key"} {
			if strings.Contains(f.Name, w) {
				secrets++
				env = append(env, flagenv.Name(f.Name)+"=sekrit-"+strings.Repeat("x", 32))
				return
			}
		}
	})
	if secrets < 7 {
		t.Fatalf("%d secret flags found; the all-in-one has at least 7", secrets)
	}
	var out bytes.Buffer
	code := cli.Main(c, []string{"config", "--insecure-no-auth=false"}, env, &out, &out)
	if got := out.String(); strings.Contains(got, "sekrit") {
		t.Errorf("config shows a secret:\n%s", got)
	}
	if n := strings.Count(out.String(), "(secret)"); n < secrets {
		t.Errorf("%d values shown as (secret); want at least %d", n, secrets)
	}
	if code != 0 && code != 2 {
		t.Errorf("config = %d; want 0 or 2", code)
	}

	out.Reset()
	if code := cli.Main(c, []string{"config", "--webhook-token", "0123456789abcdef0123"}, nil, &out, &out); code != 0 || !strings.Contains(out.String(), "configuration ok: otpscope would start") {
		t.Errorf("config with a webhook token = %d:\n%s", code, out.String())
	}
}
