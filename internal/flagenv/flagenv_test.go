package flagenv

import (
	"flag"
	"reflect"
	"testing"
)

func TestPrecedence(t *testing.T) {
	env := map[string]string{
		"OTPSCOPE_NATS_URL":       "nats://env:4222",
		"OTPSCOPE_LISTEN":         "127.0.0.1:9000",
		"OTPSCOPE_WEBHOOK_TOKENS": "a, b,,c",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }

	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	url := fs.String("nats-url", "default", "")
	listen := fs.String("listen", "default", "")
	dir := fs.String("data-dir", "./data", "")
	var tokens List
	fs.Var(&tokens, "webhook-token", "")
	if err := Parse(fs, []string{"--listen", "127.0.0.1:1"}, lookup); err != nil {
		t.Fatal(err)
	}
	if *url != "nats://env:4222" {
		t.Errorf("nats-url = %q; want the environment's", *url)
	}
	if *listen != "127.0.0.1:1" {
		t.Errorf("listen = %q; want the flag's", *listen)
	}
	if *dir != "./data" {
		t.Errorf("data-dir = %q; want the default", *dir)
	}
	if want := (List{"a", "b", "c"}); !reflect.DeepEqual(tokens, want) {
		t.Errorf("tokens = %q; want %q", tokens, want)
	}
}

func TestBadEnvironmentValue(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.Int("max-body-bytes", 1, "")
	lookup := func(k string) (string, bool) { return "lots", k == "OTPSCOPE_MAX_BODY_BYTES" }
	if err := Parse(fs, nil, lookup); err == nil {
		t.Fatal("Parse accepted OTPSCOPE_MAX_BODY_BYTES=lots")
	}
}

func TestLookupLastWins(t *testing.T) {
	lookup := Lookup([]string{"A=1", "B=x=y", "A=2", "C"})
	if v, ok := lookup("A"); v != "2" || !ok {
		t.Errorf("A = %q, %v; want the last, 2", v, ok)
	}
	if v, ok := lookup("B"); v != "x=y" || !ok {
		t.Errorf("B = %q, %v; want x=y", v, ok)
	}
	if _, ok := lookup("C"); ok {
		t.Error("C without = was found")
	}
}

func TestStrays(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.String("tyntec-api-key", "", "")
	fs.String("nats-url", "", "")
	fs.Var(new(List), "webhook-token", "")
	known := func(name string) bool { return name == "OTPSCOPE_CLICKHOUSE_DSN" }
	got := Strays(fs, []string{
		"OTPSCOPE_TYNTEC_APIKEY=k",        // a misspelling
		"OTPSCOPE_WEBHOOK_TOKEN=t",        // the flag's name, not its variable
		"OTPSCOPE_NATS_URL=nats://x",      // read
		"OTPSCOPE_CLICKHOUSE_DSN=x",       // another binary's
		"OTPSCOPE_FROBNICATE=1",           // near nothing
		"OTPSCOPE_TYNTEC_APIKEY=again",    // once
		"PATH=/bin", "OTPSCOPEX=1", "X=2", // not ours
	}, known)
	want := []Stray{
		{"OTPSCOPE_TYNTEC_APIKEY", "OTPSCOPE_TYNTEC_API_KEY"},
		{"OTPSCOPE_WEBHOOK_TOKEN", "OTPSCOPE_WEBHOOK_TOKENS"},
		{"OTPSCOPE_FROBNICATE", ""},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Strays = %q; want %q", got, want)
	}
}

func TestDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"abc", "", 3}, {"kitten", "sitting", 3}, {"API_KEY", "APIKEY", 1}, {"flaw", "lawn", 2}} {
		if got := distance(tt.a, tt.b); got != tt.want {
			t.Errorf("distance(%q, %q) = %d; want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
