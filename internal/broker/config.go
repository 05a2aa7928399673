package broker

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/otpscope/otpscope/internal/flagenv"
)

// Config says where NATS is and how otpscope's stream is shaped.
type Config struct {
	// URL of an external NATS server or cluster (comma-separated). Empty means
	// host the embedded server, when the service allows it.
	URL string
	// Listen is the embedded server's client address.
	Listen string
	// DataDir holds the embedded server's JetStream store, under DataDir/nats.
	DataDir string
	// Sync is the embedded server's file-store sync policy: "always" (fsync every
	// write before the PubAck: an acknowledged webhook survives a host crash) or
	// a flush interval such as "2m" (faster; a host crash may lose up to that
	// much of acknowledged webhooks, a process crash nothing).
	Sync string
	// NoGroupCommit turns group commit off (--nats-group-commit=false): every
	// publish then goes out on its own even under load (groupcommit.go).
	NoGroupCommit bool
	// User and Password are the service user's: the embedded server requires
	// them of every client, and otpscope's clients connect with them. Empty on
	// the embedded server: kept in CredentialsFile(), generated at first start.
	// With an external server, credentials in the URL come first, then these,
	// then the credentials file under DataDir when it exists.
	User, Password string
	// ReaderUser and ReaderPassword are the embedded server's read-only user,
	// for downstream subscribers; an empty password is generated and kept
	// with the service user's.
	ReaderUser, ReaderPassword string
	// ReaderConsumers are the durable consumers the embedded server's
	// reader may create and use on the stream (pull, acknowledge, delete),
	// one per downstream service that needs replay; it may touch no other
	// consumer (ReaderPermissions).
	ReaderConsumers flagenv.List
	// ClusterName, ClusterListen and Routes make the embedded server one node of a
	// NATS cluster; empty runs a single server.
	ClusterName   string
	ClusterListen string
	Routes        string
	ServerName    string

	Stream StreamConfig

	// embeddedGiven lists the embedded server's flags that were set:
	// beside --nats-url they do nothing, and Open says so.
	embeddedGiven func() []string
}

// StreamConfig shapes the one stream over tyntec.2fa.>.
type StreamConfig struct {
	Name string
	// DuplicateWindow is how long JetStream remembers message ids; a tyntec retry or
	// a re-read by the poller within it is dropped. ClickHouse dedups beyond it.
	DuplicateWindow time.Duration
	// Replicas is 1 for a single server, 3 for a cluster (R3).
	Replicas int
	// MaxAge bounds how long messages stay in the stream; 0 keeps them forever.
	MaxAge time.Duration
	// MaxBytes bounds the bytes the stream keeps: past them the oldest
	// messages go, as past MaxAge (JetStream's DiscardOld); 0 keeps no
	// bound. Defaulted, the embedded server's stream keeps at most
	// StoreShare of its JetStream store (EnsureStream).
	MaxBytes int64
	// Defaulted says which of the settings above are the flags' defaults,
	// not given to this process (flag or environment). A new stream gets
	// them all; an existing one keeps its own value of these, so a
	// process started on defaults — a debugging ingest, an all-in-one
	// pointed at production NATS — cannot shrink a cluster's R3 stream to
	// one copy or cut its retention. A Config built in code has none.
	Defaulted StreamSettings
}

// StreamSettings marks StreamConfig's settings.
type StreamSettings struct{ DuplicateWindow, Replicas, MaxAge, MaxBytes bool }

// Defaults of the stream.
const (
	DefaultStreamName      = "TYNTEC_2FA"
	DefaultDuplicateWindow = 10 * time.Minute
	DefaultMaxAge          = 7 * 24 * time.Hour
	// StoreShare is the share of the embedded server's JetStream store the
	// stream keeps by default: without a bound in bytes, a week of busy
	// traffic fills the store (75 % of the disk's free space at start),
	// and from then on every webhook is refused until messages age out.
	// The rest is the poller's KV buckets' (its record of each OTP of the
	// last --state-ttl) and room to spare.
	StoreShare    = 0.6
	DefaultListen = "127.0.0.1:4222"
	// DefaultSync fsyncs every write: a 200 to tyntec survives a host crash.
	DefaultSync = "always"
)

// RegisterFlags registers the NATS flags on fs; the command registers --data-dir
// (shared with the embedded ClickHouse engine) and sets DataDir. defaultURL is the service's
// default --nats-url: empty on ingest and the all-in-one (host the embedded
// server), nats://127.0.0.1:4222 on poller and reporter.
func (c *Config) RegisterFlags(fs *flag.FlagSet, defaultURL string) {
	fs.StringVar(&c.URL, "nats-url", defaultURL, "external NATS URL(s), comma-separated; empty hosts the embedded server")
	fs.StringVar(&c.Listen, "nats-listen", DefaultListen, "client address of the embedded NATS server")
	fs.StringVar(&c.Sync, "nats-sync", DefaultSync, `embedded JetStream sync policy: "always" (fsync every write; acknowledged webhooks survive a host crash) or an interval such as "2m" (faster; a host crash may lose up to that much of acknowledged webhooks)`)
	fs.Var(negated{&c.NoGroupCommit}, "nats-group-commit", "with --nats-sync always on the embedded single node, group concurrent webhooks into JetStream atomic batches under load (one fsync per batch); false publishes each on its own")
	fs.StringVar(&c.User, "nats-user", DefaultUser, "NATS user otpscope connects as (the embedded server's service user)")
	fs.StringVar(&c.Password, "nats-password", "", "password of --nats-user (embedded server: empty generates one, kept in <data-dir>/nats/credentials.json; external: empty uses the URL's, or that file's when present)")
	fs.StringVar(&c.ReaderUser, "nats-reader-user", DefaultReaderUser, "the embedded server's read-only user for downstream subscribers")
	fs.StringVar(&c.ReaderPassword, "nats-reader-password", "", "password of --nats-reader-user (empty: generated, kept in <data-dir>/nats/credentials.json)")
	fs.Var(&c.ReaderConsumers, "nats-reader-consumers", "durable consumers the embedded server's reader may create and pull from on the stream, one per downstream service (comma-separated names)")
	fs.StringVar(&c.ServerName, "nats-server-name", "", "embedded NATS server name (required in a cluster)")
	fs.StringVar(&c.ClusterName, "nats-cluster-name", "", "embedded NATS cluster name; empty runs a single server")
	fs.StringVar(&c.ClusterListen, "nats-cluster-listen", "", "embedded NATS cluster (route) address")
	fs.StringVar(&c.Routes, "nats-routes", "", "comma-separated nats-route:// URLs of the other cluster nodes")
	fs.StringVar(&c.Stream.Name, "stream", DefaultStreamName, "JetStream stream over tyntec.2fa.>")
	fs.DurationVar(&c.Stream.DuplicateWindow, "stream-duplicate-window", DefaultDuplicateWindow, "JetStream duplicate window for message ids")
	fs.IntVar(&c.Stream.Replicas, "stream-replicas", 1, "stream replicas (3 in a NATS cluster)")
	fs.DurationVar(&c.Stream.MaxAge, "stream-max-age", DefaultMaxAge, "how long the stream keeps messages (0 = forever)")
	fs.Int64Var(&c.Stream.MaxBytes, "stream-max-bytes", 0, "bytes the stream keeps at most, its oldest messages going first past them (0 = no bound); unset: 60% of the embedded NATS server's store, and an external server's stream keeps its own")
	c.Stream.Defaulted = StreamSettings{DuplicateWindow: true, Replicas: true, MaxAge: true, MaxBytes: true}
	recordGiven(fs, "stream-duplicate-window", &c.Stream.Defaulted.DuplicateWindow)
	recordGiven(fs, "stream-replicas", &c.Stream.Defaulted.Replicas)
	recordGiven(fs, "stream-max-age", &c.Stream.Defaulted.MaxAge)
	recordGiven(fs, "stream-max-bytes", &c.Stream.Defaulted.MaxBytes)
	c.embeddedGiven = flagenv.TrackGiven(fs, "nats-listen", "nats-sync", "nats-group-commit", "nats-reader-user", "nats-reader-password",
		"nats-server-name", "nats-cluster-name", "nats-cluster-listen", "nats-routes")
	// Its 0 would read "no bound" in `config`.
	flagenv.SayDefault(fs, "stream-max-bytes", "unset: 60 % of the embedded store")
}

// recordGiven has the flag name on fs clear *defaulted when it is set,
// from the command line or the environment.
func recordGiven(fs *flag.FlagSet, name string, defaulted *bool) {
	f := fs.Lookup(name)
	f.Value = &givenValue{Value: f.Value, defaulted: defaulted}
}

type givenValue struct {
	flag.Value
	defaulted *bool
}

func (g *givenValue) Set(s string) error {
	*g.defaulted = false
	return g.Value.Set(s)
}

func (g *givenValue) String() string {
	if g == nil || g.Value == nil { // flag's zero-value probe
		return ""
	}
	return g.Value.String()
}

func (g *givenValue) Unwrap() flag.Value { return g.Value }

// Embedded reports whether the service should host the NATS server itself.
func (c *Config) Embedded() bool { return c.URL == "" }

// StoreDir is where the embedded server keeps JetStream data.
func (c *Config) StoreDir() string { return filepath.Join(c.DataDir, "nats") }

// Validate reports the first configuration error.
func (c *Config) Validate() error {
	if c.Embedded() {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			return fmt.Errorf("nats-listen %q: %w", c.Listen, err)
		}
		if c.DataDir == "" {
			return errors.New("data-dir is required for the embedded NATS server")
		}
		if _, err := parseSync(c.Sync); err != nil {
			return err
		}
		if c.ClusterName != "" && (c.ClusterListen == "" || c.ServerName == "") {
			return errors.New("a NATS cluster node needs nats-cluster-listen and nats-server-name")
		}
		// Every node must require the same credentials; each would generate
		// its own.
		if c.ClusterName != "" && (c.Password == "" || c.ReaderPassword == "") {
			return errors.New("a NATS cluster node needs nats-password and nats-reader-password, the same on every node")
		}
		if c.User != "" && c.User == c.ReaderUser {
			return fmt.Errorf("nats-user and nats-reader-user are both %q", c.User)
		}
		for _, name := range c.ReaderConsumers {
			if err := checkReaderConsumer(name); err != nil {
				return err
			}
		}
	}
	if err := checkURLs(c.URL); err != nil {
		return err
	}
	s := c.Stream
	if err := CheckName("stream", s.Name); err != nil {
		return err
	}
	if s.DuplicateWindow <= 0 {
		return fmt.Errorf("stream-duplicate-window %v: must be positive", s.DuplicateWindow)
	}
	if s.Replicas < 1 || s.Replicas > 5 {
		return fmt.Errorf("stream-replicas %d: must be 1 to 5", s.Replicas)
	}
	if s.MaxAge < 0 {
		return fmt.Errorf("stream-max-age %v: must not be negative (0 keeps messages forever)", s.MaxAge)
	}
	if s.MaxBytes < 0 {
		return fmt.Errorf("stream-max-bytes %d: must not be negative (0 keeps no bound)", s.MaxBytes)
	}
	if s.MaxAge != 0 && s.MaxAge < s.DuplicateWindow {
		return fmt.Errorf("stream-max-age %v is shorter than the duplicate window %v", s.MaxAge, s.DuplicateWindow)
	}
	return nil
}

// checkURLs refuses an http(s) URL among the comma-separated NATS URLs:
// nats.go dials its host all the same, so an HTTP port (NATS' monitoring
// one) leaves the service waiting for an answer forever. It refuses one
// that does not parse too, unquoted: nats.go's own error quoted it whole,
// password and all, and `config` called it ok. The URL is shown without
// its password or token.
func checkURLs(urls string) error {
	for _, s := range strings.Split(urls, ",") {
		u, err := url.Parse(strings.TrimSpace(s))
		if err != nil {
			return errors.New("nats-url: a URL does not parse (not quoted: it may hold a password); want nats://host:4222 (or tls://, ws://, wss://)")
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			continue // nats.go reads the rest, or says what is wrong
		}
		return fmt.Errorf("nats-url %q: an HTTP URL; want nats://host:4222 (or tls://, ws://, wss://)", flagenv.Shown("nats-url", s))
	}
	return nil
}

// syncPolicy is the embedded file store's sync setting.
type syncPolicy struct {
	Interval time.Duration
	Always   bool
}

func parseSync(s string) (syncPolicy, error) {
	switch s {
	case "", DefaultSync:
		return syncPolicy{Always: true}, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return syncPolicy{}, fmt.Errorf("nats-sync %q: want \"always\" or a positive duration", s)
	}
	return syncPolicy{Interval: d}, nil
}

// GroupCommits reports whether publishes are grouped into atomic batches
// under load (groupcommit.go): on the embedded single node that fsyncs every
// write, where a batch shares one fsync. Elsewhere a batch costs more than
// it saves (no fsync to share) or was not measured (a cluster's replicas).
func (c *Config) GroupCommits() bool {
	p, err := parseSync(c.Sync)
	return err == nil && p.Always && !c.NoGroupCommit && c.Embedded() && c.ClusterName == "" && c.Stream.Replicas == 1
}

// negated is a boolean flag that sets the opposite into *p, so that the
// zero Config has the flag's default, true.
type negated struct{ p *bool }

func (n negated) String() string {
	if n.p == nil {
		return "true"
	}
	return strconv.FormatBool(!*n.p)
}

func (n negated) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	*n.p = !v
	return nil
}

func (n negated) IsBoolFlag() bool { return true }

// checkReaderConsumer refuses a name of --nats-reader-consumers that is not
// a plain consumer name (letters, digits, - and _: it is one token of the
// subjects the permissions name) or that otpscope's own consumers could
// have.
// CheckName refuses a stream or consumer name NATS refuses (flag names the
// setting): a start with one would retry "invalid stream name" for good.
// Names are at most 255 bytes, of printable characters but '.', '*', '>'
// and path separators (the server's file store makes them directories).
func CheckName(flag, name string) error {
	const maxLen = 255 // the server's JSMaxNameLen
	switch {
	case name == "":
		return fmt.Errorf("%s is empty: want a name", flag)
	case len(name) > maxLen:
		return fmt.Errorf("%s %q: want at most %d bytes", flag, name, maxLen)
	case strings.ContainsFunc(name, func(r rune) bool {
		return strings.ContainsRune(".*>/\\", r) || unicode.IsSpace(r) || !unicode.IsPrint(r)
	}):
		return fmt.Errorf("%s %q: NATS refuses the name; want no '.', '*', '>', '/', '\\', whitespace or control characters", flag, name)
	}
	return nil
}

func checkReaderConsumer(name string) error {
	if len(name) > 64 || strings.TrimFunc(name, func(r rune) bool {
		return r == '-' || r == '_' || r < 128 && (r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}) != "" {
		return fmt.Errorf("nats-reader-consumers %q: a consumer name is 1 to 64 letters, digits, - and _", name)
	}
	if strings.HasPrefix(strings.ToLower(name), "otpscope") {
		return fmt.Errorf("nats-reader-consumers %q: names beginning with otpscope are otpscope's own consumers'", name)
	}
	return nil
}
