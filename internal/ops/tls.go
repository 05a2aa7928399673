package ops

import (
	"crypto/tls"
	"fmt"
	"log/slog"

	"github.com/otpscope/otpscope/internal/reload"
)

// Certificate serves a certificate and key from PEM files and reads them
// again once they change (a renewal by certbot, cert-manager or a mounted
// Secret), so a renewed certificate needs no restart. Files that fail to
// load keep the one before in service, with a warning (package reload).
type Certificate struct {
	cert *reload.Value[*tls.Certificate]
}

// LoadCertificate loads certFile and keyFile (a PEM chain and its key).
func LoadCertificate(certFile, keyFile string, logger *slog.Logger) (*Certificate, error) {
	load := func() (*tls.Certificate, error) {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("tls certificate %s, key %s: %w", certFile, keyFile, err)
		}
		return &cert, nil
	}
	cert, err := load()
	if err != nil {
		return nil, err
	}
	return &Certificate{reload.New("tls certificate", cert, load, logger, certFile, keyFile)}, nil
}

// get is tls.Config.GetCertificate.
func (c *Certificate) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.cert.Get(), nil
}

// Config is a server TLS configuration serving c (TLS 1.2 and newer, HTTP/1.1).
func (c *Certificate) Config() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: c.get, NextProtos: []string{"http/1.1"}}
}
