// Package flagenv gives every flag an OTPSCOPE_* environment equivalent, so that
// the precedence is defaults < environment < flags. The caller passes the
// environment in (only cmd/ reads it).
package flagenv

import (
	"flag"
	"fmt"
	"strings"
)

// Prefix starts every environment variable otpscope reads.
const Prefix = "OTPSCOPE_"

// Renamed lists the flags whose environment variable is not derived from the
// flag's name — the one such table: --webhook-token (ingest, the all-in-one and
// `poller register-callback`) reads the comma-separated OTPSCOPE_WEBHOOK_TOKENS.
var Renamed = map[string]string{"webhook-token": "OTPSCOPE_WEBHOOK_TOKENS"}

// Name is the environment variable of a flag: OTPSCOPE_ + the flag's name in
// upper case with dashes as underscores (--nats-url → OTPSCOPE_NATS_URL), unless
// Renamed lists another.
func Name(flagName string) string {
	if n, ok := Renamed[flagName]; ok {
		return n
	}
	return Prefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Apply sets every flag of fs whose environment variable is set, before fs is
// parsed from the command line (which then overrides it).
func Apply(fs *flag.FlagSet, lookup func(string) (string, bool)) error {
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil {
			return
		}
		name := Name(f.Name)
		if v, ok := lookup(name); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s=%q: %w", name, v, e)
			}
		}
	})
	return err
}

// Parse applies the environment and then the command-line args to fs.
func Parse(fs *flag.FlagSet, args []string, lookup func(string) (string, bool)) error {
	if err := Apply(fs, lookup); err != nil {
		return err
	}
	return fs.Parse(args)
}

// List is a flag.Value of strings that takes repeated flags and comma-separated
// values alike (--webhook-token a --webhook-token b, or OTPSCOPE_WEBHOOK_TOKENS=a,b).
type List []string

func (l *List) String() string { return strings.Join(*l, ",") }

// Set appends the comma-separated values of v, skipping empty ones.
func (l *List) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}
