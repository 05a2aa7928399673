package flagenv

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
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

// TestFileForm: OTPSCOPE_X_FILE gives --x the file's content without its
// final line break; a List takes a value a line; both forms at once, and an
// unreadable file, are errors that do not print the value.
func TestFileForm(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	key := write("key", "s3cret-key\r\n")
	tokens := write("tokens", "first-token\nsecond-token\n")
	bad := write("port", "not-a-number-s3cret\n")

	newFS := func() (*flag.FlagSet, *string, *List, *int) {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		k := fs.String("tyntec-api-key", "", "")
		var l List
		fs.Var(&l, "webhook-token", "")
		n := fs.Int("port", 0, "")
		return fs, k, &l, n
	}
	fs, k, l, _ := newFS()
	env := Lookup([]string{"OTPSCOPE_TYNTEC_API_KEY_FILE=" + key, "OTPSCOPE_WEBHOOK_TOKENS_FILE=" + tokens})
	if err := Parse(fs, nil, env); err != nil {
		t.Fatal(err)
	}
	if *k != "s3cret-key" {
		t.Errorf("key = %q; want the file's first line", *k)
	}
	if want := (List{"first-token", "second-token"}); !reflect.DeepEqual(*l, want) {
		t.Errorf("tokens = %q; want %q", *l, want)
	}
	if fs, _, _, _ = newFS(); Strays(fs, []string{"OTPSCOPE_TYNTEC_API_KEY_FILE=" + key}, nil) != nil {
		t.Error("Strays lists a file form the flag set reads")
	}

	for _, tt := range []struct {
		env  []string
		want string
	}{
		{[]string{"OTPSCOPE_TYNTEC_API_KEY=k", "OTPSCOPE_TYNTEC_API_KEY_FILE=" + key}, "both OTPSCOPE_TYNTEC_API_KEY and OTPSCOPE_TYNTEC_API_KEY_FILE are set"},
		{[]string{"OTPSCOPE_TYNTEC_API_KEY_FILE=" + filepath.Join(dir, "absent")}, "OTPSCOPE_TYNTEC_API_KEY_FILE: open " + filepath.Join(dir, "absent")},
		{[]string{"OTPSCOPE_PORT_FILE=" + bad}, "OTPSCOPE_PORT_FILE: parse error"},
		{[]string{"OTPSCOPE_WEBHOOK_TOKENS_FILE=" + write("empty", " \n")}, "OTPSCOPE_WEBHOOK_TOKENS_FILE: " + filepath.Join(dir, "empty") + " is empty"},
		{[]string{"OTPSCOPE_WEBHOOK_TOKENS_FILE=" + write("placeholder", "REPLACE_ME-webhook-token\n")}, "holds deploy/'s placeholder REPLACE_ME"},
	} {
		fs, _, _, _ := newFS()
		err := Parse(fs, nil, Lookup(tt.env))
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%q: err = %v; want one saying %q, without the value", tt.env, err, tt.want)
		}
	}
}

// TestCommandLineReplacesList: a list the command line gives replaces the
// environment's (flags override the environment); one it does not give
// keeps it.
func TestCommandLineReplacesList(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want List
	}{
		{nil, List{"env-a", "env-b"}},
		{[]string{"--webhook-token", "flag-a", "--webhook-token", "flag-b,flag-c"}, List{"flag-a", "flag-b", "flag-c"}},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		var l List
		fs.Var(&l, "webhook-token", "")
		if err := Parse(fs, tt.args, Lookup([]string{"OTPSCOPE_WEBHOOK_TOKENS=env-a,env-b"})); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(l, tt.want) {
			t.Errorf("%q: tokens = %q; want %q", tt.args, l, tt.want)
		}
		if _, ok := fs.Lookup("webhook-token").Value.(*List); !ok {
			t.Errorf("%q: the flag's value is still wrapped after Parse", tt.args)
		}
	}
}

// TestOneSetting: a window on the command line replaces the environment's
// whole; without one, the environment's stands.
func TestOneSetting(t *testing.T) {
	for _, tt := range []struct {
		env             []string
		args            []string
		from, to, since string
	}{
		{[]string{"OTPSCOPE_SINCE=24h"}, nil, "", "", "24h"},
		{[]string{"OTPSCOPE_SINCE=24h"}, []string{"--from", "F", "--to", "T"}, "F", "T", ""},
		{[]string{"OTPSCOPE_FROM=F", "OTPSCOPE_TO=T"}, []string{"--since", "1h"}, "", "", "1h"},
		{[]string{"OTPSCOPE_FROM=F", "OTPSCOPE_TO=T"}, []string{"--to", "T2"}, "", "T2", ""},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		var from, to, since string
		fs.StringVar(&from, "from", "", "")
		fs.StringVar(&to, "to", "", "")
		fs.StringVar(&since, "since", "", "")
		OneSetting(fs, "from", "to", "since")
		if err := Parse(fs, tt.args, Lookup(tt.env)); err != nil {
			t.Fatal(err)
		}
		if from != tt.from || to != tt.to || since != tt.since {
			t.Errorf("%q %q: from %q, to %q, since %q; want %q, %q, %q", tt.env, tt.args, from, to, since, tt.from, tt.to, tt.since)
		}
	}
}

// TestRecordFile: a recorded flag keeps the file its value came from; the
// plain variable or the command line leave no file (nothing to read
// again), and the command line replaces a file's list.
func TestRecordFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(file, []byte("file-a\nfile-b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		env, args []string
		want      List
		wantFile  string
	}{
		{[]string{"OTPSCOPE_WEBHOOK_TOKENS_FILE=" + file}, nil, List{"file-a", "file-b"}, file},
		{[]string{"OTPSCOPE_WEBHOOK_TOKENS=env-a"}, nil, List{"env-a"}, ""},
		{[]string{"OTPSCOPE_WEBHOOK_TOKENS_FILE=" + file}, []string{"--webhook-token", "flag-a"}, List{"flag-a"}, ""},
		{nil, nil, nil, ""},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		var l List
		var path string
		fs.Var(&l, "webhook-token", "")
		RecordFile(fs, "webhook-token", &path)
		if err := Parse(fs, tt.args, Lookup(tt.env)); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(l, tt.want) || path != tt.wantFile {
			t.Errorf("%q %q: tokens %q from file %q; want %q from %q", tt.env, tt.args, l, path, tt.want, tt.wantFile)
		}
		if _, ok := Unwrap(fs.Lookup("webhook-token").Value).(*List); !ok {
			t.Errorf("Unwrap does not reach the List")
		}
	}
}

// TestCommandLineOnly: a flag CommandLineOnly marks reads no variable, and
// one set draws a Stray; a bool one still takes no value.
func TestCommandLineOnly(t *testing.T) {
	newFS := func() (*flag.FlagSet, *bool, *string) {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		all := fs.Bool("all", false, "")
		api := fs.String("api", "", "")
		CommandLineOnly(fs, "all")
		return fs, all, api
	}
	env := []string{"OTPSCOPE_ALL=true", "OTPSCOPE_API=http://api"}
	fs, all, api := newFS()
	if err := Parse(fs, nil, Lookup(env)); err != nil {
		t.Fatal(err)
	}
	if *all || *api != "http://api" {
		t.Errorf("all %v, api %q; want false (the variable ignored) and the variable's api", *all, *api)
	}
	if strays := Strays(fs, env, nil); len(strays) != 1 || strays[0].Name != "OTPSCOPE_ALL" {
		t.Errorf("Strays = %v; want OTPSCOPE_ALL, which nothing reads", strays)
	}
	if FromEnvironment(fs.Lookup("all")) || !FromEnvironment(fs.Lookup("api")) {
		t.Error("FromEnvironment wrong for all or api")
	}
	fs, all, _ = newFS()
	if err := Parse(fs, []string{"--all", "--api", "x"}, Lookup(nil)); err != nil || !*all {
		t.Errorf("--all on the command line: %v, all %v; want it set", err, *all)
	}
}

// TestAliases: --api-token also reads OTPSCOPE_API_TOKENS (the contract's
// operator contract), and its file form; two of a flag's names set at
// once are an error naming both; an alias is no stray.
func TestAliases(t *testing.T) {
	newFS := func() (*flag.FlagSet, *List) {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		var l List
		fs.Var(&l, "api-token", "")
		return fs, &l
	}
	file := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(file, []byte("token-from-file-0123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		env  []string
		want List
		err  string
	}{
		{[]string{"OTPSCOPE_API_TOKEN=a-0123456789abcdef"}, List{"a-0123456789abcdef"}, ""},
		{[]string{"OTPSCOPE_API_TOKENS=b-0123456789abcdef,c-0123456789abcdef"}, List{"b-0123456789abcdef", "c-0123456789abcdef"}, ""},
		{[]string{"OTPSCOPE_API_TOKENS_FILE=" + file}, List{"token-from-file-0123"}, ""},
		{[]string{"OTPSCOPE_API_TOKEN=a-0123456789abcdef", "OTPSCOPE_API_TOKENS=b-0123456789abcdef"}, nil, "both OTPSCOPE_API_TOKEN and OTPSCOPE_API_TOKENS are set: set one"},
		{[]string{"OTPSCOPE_API_TOKEN_FILE=" + file, "OTPSCOPE_API_TOKENS=b-0123456789abcdef"}, nil, "both OTPSCOPE_API_TOKEN_FILE and OTPSCOPE_API_TOKENS are set: set one"},
	} {
		fs, l := newFS()
		err := Parse(fs, nil, Lookup(tt.env))
		switch {
		case tt.err != "" && (err == nil || err.Error() != tt.err):
			t.Errorf("%q: %v; want %q", tt.env, err, tt.err)
		case tt.err == "" && (err != nil || !reflect.DeepEqual(*l, tt.want)):
			t.Errorf("%q: %q, %v; want %q", tt.env, *l, err, tt.want)
		}
		if strays := Strays(fs, tt.env, nil); len(strays) != 0 {
			t.Errorf("%q: strays %q; want none", tt.env, strays)
		}
	}
}

// TrackGiven lists the flags set, from the command line or the
// environment, each once; a boolean flag keeps its bare form.
func TestTrackGiven(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.String("nats-sync", "always", "")
	fs.Bool("nats-group-commit", true, "")
	fs.String("nats-routes", "", "")
	fs.String("nats-url", "", "")
	given := TrackGiven(fs, "nats-sync", "nats-group-commit", "nats-routes")
	if err := Parse(fs, []string{"--nats-group-commit", "--nats-sync", "1m", "--nats-sync", "2m", "--nats-url", "nats://x:4222"}, Lookup([]string{"OTPSCOPE_NATS_ROUTES=nats-route://a:6222"})); err != nil {
		t.Fatal(err)
	}
	got := given()
	slices.Sort(got)
	if want := []string{"nats-group-commit", "nats-routes", "nats-sync"}; !slices.Equal(got, want) {
		t.Errorf("given %v; want %v", got, want)
	}
	if v := fs.Lookup("nats-sync").Value.String(); v != "2m" {
		t.Errorf("--nats-sync reads %q; want the value set, 2m", v)
	}
}
