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
