package ops

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/otpscope/otpscope/internal/ops/tlstest"
)

// TestCertificateReload: changed files are read again; files that do not
// load leave the certificate before in service.
func TestCertificateReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	tlstest.Write(t, certFile, keyFile, "first")
	c, err := LoadCertificate(certFile, keyFile, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	c.every = 0 // look at the files on every handshake
	name := func() string {
		t.Helper()
		cert, err := c.get(nil)
		if err != nil {
			t.Fatal(err)
		}
		return cert.Leaf.Subject.CommonName
	}
	if got := name(); got != "first" {
		t.Fatalf("serving %q; want first", got)
	}
	if err := os.WriteFile(certFile, []byte("half written"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := name(); got != "first" {
		t.Errorf("with a broken file, serving %q; want first still", got)
	}
	tlstest.Write(t, certFile, keyFile, "second")
	if got := name(); got != "second" {
		t.Errorf("after the renewal, serving %q; want second", got)
	}
	if _, err := LoadCertificate(filepath.Join(dir, "absent"), keyFile, slog.New(slog.DiscardHandler)); err == nil {
		t.Error("LoadCertificate of an absent file succeeded")
	}
}
