// Package ingest is the service tyntec calls: it authenticates each DeliveryStatus
// webhook, validates it, publishes it to JetStream and answers 200 only once
// JetStream has acknowledged every event, so an acknowledged webhook is durable.
package ingest

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"time"

	"github.com/otpscope/otpscope/internal/flagenv"
	"github.com/otpscope/otpscope/internal/ops"
)

// Config configures the ingest service.
type Config struct {
	// Tokens are the accepted webhook tokens; several allow rotation.
	// TokensFile is the file they were read from (OTPSCOPE_WEBHOOK_TOKENS_FILE),
	// read again when it changes; "" when they were given otherwise.
	Tokens         flagenv.List
	TokensFile     string
	InsecureNoAuth bool
	// AppTokens, when given, are the only tokens the app backend's
	// endpoints (TrackPath, SilentPath) accept, and PushTokens the only ones
	// the push provider's (PushPath) accepts; the webhook tokens then open
	// tyntec's endpoint alone, so no sender's token lets it write as
	// another (a leaked app token cannot forge tyntec's delivery statuses).
	// Empty, those endpoints take the webhook tokens. Their files as
	// TokensFile.
	AppTokens, PushTokens         flagenv.List
	AppTokensFile, PushTokensFile string
	// MaxBodyBytes bounds a webhook body; larger ones are answered 413.
	MaxBodyBytes int64
	// PublishTimeout bounds the wait for JetStream's acknowledgements.
	PublishTimeout time.Duration
	// RetryAfter is what a 503 asks tyntec to wait before retrying.
	RetryAfter time.Duration
	// PseudonymKey is the secret of the keyed hash that replaces silent-auth
	// loginHint and mobileId; empty: the one kept in the data directory
	// (PseudonymKey).
	PseudonymKey string
}

// DefaultMaxBodyBytes bounds a webhook body; MinMaxBodyBytes is the least
// bound Validate accepts.
const (
	DefaultMaxBodyBytes = 64 << 10
	MinMaxBodyBytes     = 1024
)

// RegisterFlags registers ingest's own flags (auth, bodies, publishing) on fs;
// the listener and NATS are the process's (package app).
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.Var(&c.Tokens, "webhook-token", "accepted webhook token (repeat or comma-separate for rotation; from $OTPSCOPE_WEBHOOK_TOKENS_FILE read again when it changes)")
	flagenv.RecordFile(fs, "webhook-token", &c.TokensFile)
	fs.Var(&c.AppTokens, "app-token", "the only tokens "+TrackPath+" and "+SilentPath+" accept, the app backend's (none: the webhook tokens; repeat or comma-separate for rotation; from $OTPSCOPE_APP_TOKEN_FILE read again when it changes)")
	flagenv.RecordFile(fs, "app-token", &c.AppTokensFile)
	fs.Var(&c.PushTokens, "push-token", "the only tokens "+PushPath+" accepts, the push provider's (none: the webhook tokens; repeat or comma-separate for rotation; from $OTPSCOPE_PUSH_TOKEN_FILE read again when it changes)")
	flagenv.RecordFile(fs, "push-token", &c.PushTokensFile)
	fs.BoolVar(&c.InsecureNoAuth, "insecure-no-auth", false, "accept webhooks without a token (development only)")
	fs.Int64Var(&c.MaxBodyBytes, "max-body-bytes", DefaultMaxBodyBytes, "largest webhook body accepted (at least "+strconv.Itoa(MinMaxBodyBytes)+")")
	fs.DurationVar(&c.PublishTimeout, "publish-timeout", 5*time.Second, "how long to wait for JetStream acknowledgements before answering 503")
	fs.DurationVar(&c.RetryAfter, "retry-after", 5*time.Second, "Retry-After sent with 503")
	fs.StringVar(&c.PseudonymKey, "pseudonym-key", "", "secret of the keyed hash (HMAC-SHA256) stored instead of silent-auth loginHint and mobileId (empty: generated at first start, into <data-dir>/"+PseudonymKeyFile+" on a single embedded NATS server, else into the KV bucket "+PseudonymBucket+" that replicas share)")
}

// Validate reports the first configuration error.
func (c *Config) Validate() error {
	if len(c.Tokens) == 0 && !c.InsecureNoAuth {
		return errors.New("no webhook token: set --webhook-token (OTPSCOPE_WEBHOOK_TOKENS), or --insecure-no-auth for development")
	}
	if (len(c.Tokens) > 0 || len(c.AppTokens) > 0 || len(c.PushTokens) > 0) && c.InsecureNoAuth {
		return errors.New("--insecure-no-auth with tokens: choose one")
	}
	for _, ts := range []struct {
		what   string
		tokens []string
	}{{"webhook token", c.Tokens}, {"app token", c.AppTokens}, {"push token", c.PushTokens}} {
		if err := ops.CheckTokens(ts.what, ts.tokens); err != nil {
			return err
		}
	}
	if c.MaxBodyBytes < MinMaxBodyBytes {
		return fmt.Errorf("max-body-bytes %d: must be at least %d", c.MaxBodyBytes, MinMaxBodyBytes)
	}
	if c.PseudonymKey != "" && len(c.PseudonymKey) < minPseudonymKey {
		return fmt.Errorf("pseudonym-key of %d characters: use at least %d", len(c.PseudonymKey), minPseudonymKey)
	}
	if c.PublishTimeout <= 0 || c.RetryAfter <= 0 {
		return errors.New("publish-timeout and retry-after must be positive")
	}
	return nil
}

// CheckMaxPayload refuses a --max-body-bytes whose messages NATS would not
// take (maxPayload, the server's max_payload): every webhook that large
// would be answered 503, and retried by tyntec, for good. A dead letter
// holds the whole body as a JSON string, in which a character may take
// six bytes (\u003c), besides its reason and headers.
func (c Config) CheckMaxPayload(maxPayload int64) error {
	const overhead = 64 << 10
	if need := 6*c.MaxBodyBytes + overhead; maxPayload > 0 && need > maxPayload {
		return fmt.Errorf("max-body-bytes %d: a dead letter of such a body may take %d bytes, more than NATS's max_payload of %d: lower it to at most %d, or raise the server's max_payload",
			c.MaxBodyBytes, need, maxPayload, (maxPayload-overhead)/6)
	}
	return nil
}
