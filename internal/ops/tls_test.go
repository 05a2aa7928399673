package ops

import (
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/otpscope/otpscope/internal/ops/tlstest"
)

// TestCertificate: the pair is served; an absent file is refused at load.
// (Reading renewed files again is package reload's, tested there.)
func TestCertificate(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	tlstest.Write(t, certFile, keyFile, "first")
	c, err := LoadCertificate(certFile, keyFile, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := c.Config().GetCertificate(nil)
	if err != nil || cert.Leaf.Subject.CommonName != "first" {
		t.Fatalf("serving %v, %v; want first", cert, err)
	}
	if _, err := LoadCertificate(filepath.Join(dir, "absent"), keyFile, slog.New(slog.DiscardHandler)); err == nil {
		t.Error("LoadCertificate of an absent file succeeded")
	}
}
