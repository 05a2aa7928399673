package ops

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Certificate serves a certificate and key from PEM files and reads them
// again once they change (a renewal by certbot, cert-manager or a mounted
// Secret), so a renewed certificate needs no restart. Files that fail to
// load keep the one before in service, with a warning.
type Certificate struct {
	certFile, keyFile string
	logger            *slog.Logger
	// every is how often a handshake may look at the files' times.
	every time.Duration

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   string // the files' modification times and sizes when loaded
	checked time.Time
}

// certCheckEvery is how soon after a renewal new handshakes get the new
// certificate.
const certCheckEvery = 10 * time.Second

// LoadCertificate loads certFile and keyFile (a PEM chain and its key).
func LoadCertificate(certFile, keyFile string, logger *slog.Logger) (*Certificate, error) {
	c := &Certificate{certFile: certFile, keyFile: keyFile, logger: logger, every: certCheckEvery}
	stamp, err := c.filesStamp()
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls certificate %s, key %s: %w", certFile, keyFile, err)
	}
	c.cert, c.stamp, c.checked = &cert, stamp, time.Now()
	return c, nil
}

func (c *Certificate) filesStamp() (string, error) {
	var stamp string
	for _, f := range []string{c.certFile, c.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return "", fmt.Errorf("tls: %w", err)
		}
		stamp += fmt.Sprintf("%d/%d;", fi.ModTime().UnixNano(), fi.Size())
	}
	return stamp, nil
}

// get is tls.Config.GetCertificate: the loaded certificate, read again
// first when the files changed since.
func (c *Certificate) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.checked) < c.every {
		return c.cert, nil
	}
	c.checked = time.Now()
	stamp, err := c.filesStamp()
	if err != nil || stamp == c.stamp {
		if err != nil {
			c.logger.Warn("tls certificate files unreadable; serving the one loaded before", "err", err)
		}
		return c.cert, nil
	}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		// Perhaps half written (the certificate renewed, not yet its key):
		// tried again at the next check.
		c.logger.Warn("tls certificate files changed but do not load; serving the one loaded before", "err", err)
		return c.cert, nil
	}
	c.cert, c.stamp = &cert, stamp
	c.logger.Info("tls certificate reloaded", "cert", c.certFile)
	return c.cert, nil
}

// Config is a server TLS configuration serving c (TLS 1.2 and newer, HTTP/1.1).
func (c *Certificate) Config() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: c.get, NextProtos: []string{"http/1.1"}}
}
