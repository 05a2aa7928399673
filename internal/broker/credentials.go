package broker

import (
	"cmp"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/nats-io/nats-server/v2/server"
	"golang.org/x/crypto/bcrypt"

	"github.com/otpscope/otpscope/internal/events"
)

// Credentials are the two users of the embedded NATS server: the service user
// otpscope's own clients connect as, allowed everything, and a read-only user
// for downstream subscribers.
type Credentials struct {
	User           string `json:"user"`
	Password       string `json:"password"`
	ReaderUser     string `json:"readerUser"`
	ReaderPassword string `json:"readerPassword"`
}

// Default user names.
const (
	DefaultUser       = "otpscope"
	DefaultReaderUser = "reader"
)

// CredentialsFile is where the embedded server keeps its credentials:
// StoreDir()/credentials.json, readable by its owner only.
func (c *Config) CredentialsFile() string { return filepath.Join(c.StoreDir(), "credentials.json") }

// ServerCredentials are the credentials the embedded server of cfg requires:
// those in its credentials file, overridden by the ones cfg gives, completed
// by fresh random passwords; the file is (re)written when that changed
// anything, so later starts, and services sharing the data directory, use the
// same ones.
func ServerCredentials(cfg Config) (Credentials, error) {
	path := cfg.CredentialsFile()
	var file Credentials
	switch data, err := os.ReadFile(path); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return Credentials{}, fmt.Errorf("nats credentials: %w", err)
	default:
		if err := json.Unmarshal(data, &file); err != nil {
			return Credentials{}, fmt.Errorf("nats credentials %s: %w", path, err)
		}
	}
	c := file
	override := func(dst *string, v, def string) {
		if v != "" {
			*dst = v
		} else if *dst == "" {
			*dst = def
		}
	}
	override(&c.User, cfg.User, DefaultUser)
	override(&c.Password, cfg.Password, "")
	override(&c.ReaderUser, cfg.ReaderUser, DefaultReaderUser)
	override(&c.ReaderPassword, cfg.ReaderPassword, "")
	for _, p := range []*string{&c.Password, &c.ReaderPassword} {
		if *p == "" {
			*p = randomPassword()
		}
	}
	if c.User == c.ReaderUser {
		return Credentials{}, fmt.Errorf("nats credentials: the service and the reader user are both %q", c.User)
	}
	if c == file {
		return c, nil
	}
	data, _ := json.MarshalIndent(c, "", "  ")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return Credentials{}, fmt.Errorf("nats credentials: %w", err)
	}
	// Write a new file and rename it over: a crash leaves the old one or the
	// new one, never half of one.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return Credentials{}, fmt.Errorf("nats credentials: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return Credentials{}, fmt.Errorf("nats credentials: %w", err)
	}
	return c, nil
}

// clientCredentials are what a client of an external server connects with
// when its URL carries none: cfg's, or else those of the credentials file
// under cfg's data directory when there is one (a service next to the one
// hosting the embedded server, with the same --data-dir). ok is false when
// there are none: connect without.
func clientCredentials(cfg Config) (user, password string, ok bool) {
	if cfg.Password != "" {
		return cmp.Or(cfg.User, DefaultUser), cfg.Password, true
	}
	if cfg.DataDir == "" {
		return "", "", false
	}
	data, err := os.ReadFile(cfg.CredentialsFile())
	if err != nil {
		return "", "", false
	}
	var c Credentials
	if json.Unmarshal(data, &c) != nil || c.Password == "" {
		return "", "", false
	}
	return c.User, c.Password, true
}

// randomPassword is 32 random bytes, URL-safe base64: usable in a nats:// URL
// as it is.
func randomPassword() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// users are the embedded server's users: the service user without
// restrictions, and the reader, who may subscribe to the stream's subjects
// and read the stream (info, single messages by sequence) but publish
// nothing else: no events, no stream changes, no KV, and no consumers but
// the ones named for it (ReaderPermissions).
//
// The server holds their passwords as bcrypt hashes: no secret stands in
// its options as it is, and it does not warn at every start of plaintext
// passwords. At bcrypt's lowest cost, since every connection pays the check
// (about a millisecond at cost 4, ~60 ms at the default 10) and the
// generated passwords are 256 random bits, which no cost makes harder to
// guess.
func users(c Credentials, stream string, readerConsumers []string) []*server.User {
	return []*server.User{
		{Username: c.User, Password: hashed(c.Password)},
		{Username: c.ReaderUser, Password: hashed(c.ReaderPassword), Permissions: ReaderPermissions(stream, readerConsumers...)},
	}
}

// hashed is password's bcrypt hash, or password itself where bcrypt cannot
// take it (a password of more than 72 bytes, set by hand): the server
// accepts both, and warns of the latter.
func hashed(password string) string {
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		return password
	}
	return string(h)
}

// ReaderPermissions are the reader's permissions on a server holding the
// stream: deploy/nats/auth.conf gives an external server's reader the same,
// which deploy's tests hold it to. With consumers it may also create, read,
// pull from, acknowledge and delete the durable consumers of those names,
// and no other: JetStream's permissions name a consumer in each of its
// subjects, so the sink's and the poller's stay out of its reach (pulling
// or acknowledging theirs would take events from them).
func ReaderPermissions(stream string, consumers ...string) *server.Permissions {
	allow := []string{
		"$JS.API.INFO",
		"$JS.API.STREAM.NAMES",
		"$JS.API.STREAM.LIST",
		"$JS.API.STREAM.INFO." + stream,
		"$JS.API.STREAM.MSG.GET." + stream,
	}
	for _, c := range consumers {
		sc := stream + "." + c
		allow = append(allow,
			"$JS.API.CONSUMER.CREATE."+sc, "$JS.API.CONSUMER.CREATE."+sc+".>", "$JS.API.CONSUMER.DURABLE.CREATE."+sc,
			"$JS.API.CONSUMER.INFO."+sc, "$JS.API.CONSUMER.DELETE."+sc, "$JS.API.CONSUMER.MSG.NEXT."+sc,
			// Acknowledgements, and in the form servers from 2.14 may
			// send (js_ack_fc_v2: domain and account hash first).
			"$JS.ACK."+sc+".>", "$JS.ACK.*.*."+sc+".>")
	}
	// Already outside the allow list; spelled out so that widening it
	// later cannot let these through. (A deny wins over an allow: the
	// consumers' subjects are left out of it when some are named.)
	deny := []string{
		events.SubjectAll,
		"$JS.API.STREAM.PURGE.>",
		"$JS.API.STREAM.DELETE.>",
		"$JS.API.STREAM.UPDATE.>",
		"$JS.API.STREAM.MSG.DELETE.>",
	}
	if len(consumers) == 0 {
		deny = append(deny, "$JS.API.CONSUMER.>", "$JS.ACK.>")
	}
	deny = append(deny, "$KV.>")
	return &server.Permissions{
		Publish: &server.SubjectPermission{Allow: allow, Deny: deny},
		Subscribe: &server.SubjectPermission{
			Allow: []string{events.SubjectAll, "_INBOX.>"},
			// Outside the allow list too: the replies otpscope's own
			// requests get (Connect).
			Deny: []string{ServiceInbox + ".>"},
		},
	}
}
