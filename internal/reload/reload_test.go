package reload

import (
	"bytes"
	"crypto/tls"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/otpscope/otpscope/internal/ops/tlstest"
)

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestTextReload: a changed file is read again; an emptied, removed or
// unreadable one, or one holding deploy/'s placeholder, keeps the value before, with a warning that holds no
// value; the value comes back when the file does.
func TestTextReload(t *testing.T) {
	file := filepath.Join(t.TempDir(), "key")
	write(t, file, "first-secret\n")
	var logs bytes.Buffer
	v := Text("tyntec API key", "first-secret", file, slog.New(slog.NewTextHandler(&logs, nil)))
	v.every = 0 // look at the file on every read

	steps := []struct {
		do      func()
		want    string
		failing float64 // otpscope_secret_reload_failing after the step
	}{
		{func() {}, "first-secret", 0},
		{func() { write(t, file, "second-secret-longer\n") }, "second-secret-longer", 0},
		{func() { write(t, file, "\n") }, "second-secret-longer", 1},
		// deploy/k8s/secret.yaml applied over the real Secret.
		{func() { write(t, file, "REPLACE_ME-tyntec-api-key\n") }, "second-secret-longer", 1},
		{func() { os.Remove(file) }, "second-secret-longer", 1},
		{func() { write(t, file, "third-secret") }, "third-secret", 0},
	}
	for i, s := range steps {
		s.do()
		if got := v.Get(); got != s.want {
			t.Fatalf("step %d: Get = %q; want %q", i, got, s.want)
		}
		if got := testutil.ToFloat64(failing.WithLabelValues("tyntec_api_key")); got != s.failing {
			t.Errorf("step %d: otpscope_secret_reload_failing = %v; want %v", i, got, s.failing)
		}
		if got, want := Failing(), s.failing == 1; slices.Contains(got, "tyntec API key") != want {
			t.Errorf("step %d: Failing() = %q; want the key in it: %v", i, got, want)
		}
	}
	out := logs.String()
	for _, want := range []string{"tyntec API key reloaded", "does not load", "is empty", "placeholder REPLACE_ME", "file unreadable"} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{"first-secret", "second-secret", "third-secret"} {
		if strings.Contains(out, secret) {
			t.Errorf("logs hold the value %q:\n%s", secret, out)
		}
	}
}

// TestTextFixed: with no file the value never changes and no file is looked at.
func TestTextFixed(t *testing.T) {
	v := Text("x", "given", "", nil)
	if got := v.Get(); got != "given" || v.files != nil {
		t.Fatalf("Get = %q, files %v; want given and none", got, v.files)
	}
}

// TestLooksOnlyEvery: between looks a changed file is not read; the first
// read after the interval reads it.
func TestLooksOnlyEvery(t *testing.T) {
	file := filepath.Join(t.TempDir(), "token")
	write(t, file, "one")
	v := Text("t", "one", file, slog.New(slog.DiscardHandler))
	v.every = time.Hour
	v.Get() // the first look
	write(t, file, "two, longer")
	if got := v.Get(); got != "one" {
		t.Fatalf("within the interval Get = %q; want one", got)
	}
	v.next.Store(0) // the interval has passed
	if got := v.Get(); got != "two, longer" {
		t.Fatalf("after the interval Get = %q; want the new value", got)
	}
}

// TestCertificatePair: a renewal that writes the key before its
// certificate is served once both are written, never half.
func TestCertificatePair(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	tlstest.Write(t, certFile, keyFile, "first")
	load := func() (*tls.Certificate, error) {
		c, err := tls.LoadX509KeyPair(certFile, keyFile)
		return &c, err
	}
	first, err := load()
	if err != nil {
		t.Fatal(err)
	}
	v := New("tls certificate", first, load, slog.New(slog.DiscardHandler), certFile, keyFile)
	v.every = 0
	name := func() string { return v.Get().Leaf.Subject.CommonName }

	// The new key alone: the pair does not load.
	tlstest.Write(t, filepath.Join(dir, "new.crt"), filepath.Join(dir, "new.key"), "second")
	newKey, _ := os.ReadFile(filepath.Join(dir, "new.key"))
	write(t, keyFile, string(newKey))
	if got := name(); got != "first" {
		t.Fatalf("with the new key beside the old certificate, serving %q; want first", got)
	}
	newCert, _ := os.ReadFile(filepath.Join(dir, "new.crt"))
	write(t, certFile, string(newCert))
	if got := name(); got != "second" {
		t.Fatalf("after the renewal, serving %q; want second", got)
	}
}
