package tyntec_test

import (
	"flag"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/tyntec"
)

// The flags' defaults are the values that apply (--help and config show
// them, not 0), and on the command line 0 retries is none.
func TestFlagsShowWhatApplies(t *testing.T) {
	for _, tt := range []struct {
		args    []string
		retries int // Config.MaxRetries: -1 none
		shown   string
	}{
		{nil, tyntec.DefaultMaxRetries, "3"},
		{[]string{"--tyntec-max-retries", "0"}, -1, "0"},
		{[]string{"--tyntec-max-retries", "-1"}, -1, "0"},
		{[]string{"--tyntec-max-retries", "5"}, 5, "5"},
	} {
		var c tyntec.Config
		fs := flag.NewFlagSet("poller", flag.ContinueOnError)
		c.RegisterFlags(fs)
		if err := fs.Parse(tt.args); err != nil {
			t.Fatal(err)
		}
		if c.MaxRetries != tt.retries || fs.Lookup("tyntec-max-retries").Value.String() != tt.shown {
			t.Errorf("%q: MaxRetries %d shown %q; want %d shown %q", tt.args, c.MaxRetries, fs.Lookup("tyntec-max-retries").Value, tt.retries, tt.shown)
		}
		if tt.args == nil {
			for name, want := range map[string]string{"tyntec-rate-limit": "100", "tyntec-rate-period": time.Minute.String(), "tyntec-timeout": "10s"} {
				if f := fs.Lookup(name); f.DefValue != want {
					t.Errorf("--%s default %q; want %q", name, f.DefValue, want)
				}
			}
		}
	}
	var c tyntec.Config
	fs := flag.NewFlagSet("poller", flag.ContinueOnError)
	c.RegisterFlags(fs)
	if err := fs.Parse([]string{"--tyntec-max-retries", "many"}); err == nil {
		t.Error("--tyntec-max-retries many was accepted")
	}
}
