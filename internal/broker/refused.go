package broker

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/nats-io/nats.go"
)

// ErrCredentialsRefused is what Open returns when the NATS server refused
// the credentials it connected with: no retry makes them right.
var ErrCredentialsRefused = errors.New("NATS refused the credentials")

// authErrors are the server's answers to credentials it does not accept;
// nats.go closes the connection after the second one in a row.
var authErrors = []error{nats.ErrAuthorization, nats.ErrAuthExpired, nats.ErrAuthRevoked, nats.ErrAccountAuthExpired}

// authError is the one of authErrors that err is, or nil.
func authError(err error) error {
	for _, a := range authErrors {
		if errors.Is(err, a) {
			return a
		}
	}
	return nil
}

// withCause is err with what the connection last failed on, when it is
// down and err does not already say: a request on a closed connection fails
// with "connection closed", which hides that the server refused the
// password, and one while it reconnects with a timeout. (Connected, the
// last error is an old one: a denied publish.)
func (b *Broker) withCause(err error) error {
	if err == nil || b.nc == nil {
		return err
	}
	st := b.nc.Status()
	if st == nats.CONNECTED {
		return err
	}
	switch last := b.nc.LastError(); {
	case last == nil: // a server not reachable (yet): nats.go keeps no error
		// The servers it tries, what an operator checks when none answers
		// (nats.go lists them as scheme://host: no credentials).
		return fmt.Errorf("%w (nats connection %s, to %s)", err, st, strings.Join(b.nc.Servers(), ", "))
	case errors.Is(err, last):
		return err
	default:
		return fmt.Errorf("%w: %w", err, last)
	}
}

// closed reports whether the connection is closed for good: nats.go
// reconnects forever (Connect) unless the server refused the credentials
// twice in a row or answered with a protocol error. A server that is not up
// yet leaves it reconnecting.
func (b *Broker) closed() bool { return b.nc != nil && b.nc.IsClosed() }

// closedError is err, from a request on the closed connection, saying why
// it closed: refused credentials name where they came from.
func (b *Broker) closedError(err error) error {
	if a := authError(err); a != nil {
		return fmt.Errorf("%w (%w); %s", ErrCredentialsRefused, a, b.credsFrom())
	}
	return fmt.Errorf("nats connection closed: %w", err)
}

// credentialsFrom says, for an error message, which credentials a client of
// cfg connects with and where to correct them. Credentials in the URL come
// first (nats.go), then the flags, then the data directory's file
// (clientCredentials).
func credentialsFrom(cfg Config) string {
	if cfg.Embedded() {
		return "the embedded server's own, from " + cfg.CredentialsFile()
	}
	if urlHasUser(cfg.URL) {
		return "the user and password in --nats-url: correct them there"
	}
	user, _, ok := clientCredentials(cfg)
	switch {
	case ok && cfg.Password != "":
		return fmt.Sprintf("user %q with --nats-password: give --nats-user and --nats-password a user the server knows", user)
	case ok:
		return fmt.Sprintf("user %q with the password in %s (from --data-dir): give --nats-user and --nats-password, or the --data-dir of the service that hosts the embedded server", user, cfg.CredentialsFile())
	}
	return "no credentials: give --nats-user and --nats-password, user:password@ in --nats-url, or the --data-dir of the service that hosts the embedded server (it finds nats/credentials.json there)"
}

// urlHasUser reports whether any of the comma-separated NATS URLs carries a
// user.
func urlHasUser(urls string) bool {
	for _, s := range strings.Split(urls, ",") {
		s = strings.TrimSpace(s)
		if s != "" && !strings.Contains(s, "://") {
			s = "nats://" + s // as nats.go reads it
		}
		if u, err := url.Parse(s); err == nil && u.User != nil {
			return true
		}
	}
	return false
}
