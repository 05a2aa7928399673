// Package flagenv gives every flag an OTPSCOPE_* environment equivalent, so that
// the precedence is defaults < environment < flags, and lets each variable be
// given as a file instead (OTPSCOPE_X_FILE), the way container platforms hand
// out secrets. The caller passes the environment in (only cmd/ reads it).
package flagenv

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// Prefix starts every environment variable otpscope reads.
const Prefix = "OTPSCOPE_"

// Renamed lists the flags whose environment variable is not derived from the
// flag's name — the one such table: --webhook-token (ingest, the all-in-one and
// `poller register-callback`) reads the comma-separated OTPSCOPE_WEBHOOK_TOKENS.
var Renamed = map[string]string{"webhook-token": "OTPSCOPE_WEBHOOK_TOKENS"}

// Aliases are variables a flag also reads, besides Name: names operators
// were given for it elsewhere. --api-token reads OTPSCOPE_API_TOKENS, the
// plural as in OTPSCOPE_WEBHOOK_TOKENS and the project's operator contract
// (shared/DESIGN.md); OTPSCOPE_API_TOKEN stays the name the README gives.
var Aliases = map[string][]string{"api-token": {"OTPSCOPE_API_TOKENS"}}

// Names are the variables a flag reads: Name, then its Aliases.
func Names(flagName string) []string {
	return append([]string{Name(flagName)}, Aliases[flagName]...)
}

// Name is the environment variable of a flag: OTPSCOPE_ + the flag's name in
// upper case with dashes as underscores (--nats-url → OTPSCOPE_NATS_URL), unless
// Renamed lists another.
func Name(flagName string) string {
	if n, ok := Renamed[flagName]; ok {
		return n
	}
	return Prefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// FileSuffix makes a variable's name into that of its file form:
// OTPSCOPE_TYNTEC_API_KEY_FILE=/run/secrets/tyntec gives --tyntec-api-key the
// file's content, without its final line break. A secret then stays out of
// the process's environment (readable in /proc/<pid>/environ, `docker
// inspect`, crash reports), which Docker's and Kubernetes' mounted secrets
// are for.
const FileSuffix = "_FILE"

// Apply sets every flag of fs whose environment variable, or its file form,
// is set, before fs is parsed from the command line (which then overrides
// it). Both forms of one variable set at once is an error, as is a file
// that cannot be read.
func Apply(fs *flag.FlagSet, lookup func(string) (string, bool)) error {
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || !FromEnvironment(f) {
			return
		}
		name, file, e := Variable(f.Name, lookup)
		if e != nil || name == "" {
			err = e
			return
		}
		v, _ := lookup(name)
		if file {
			content, e := ReadFile(v)
			if e == nil {
				if r, ok := f.Value.(*fileRecorder); ok {
					e = r.setFile(v, content)
				} else {
					e = fs.Set(f.Name, content)
				}
			}
			if e != nil {
				err = fmt.Errorf("%s: %w", name, e) // not the value: it may be a secret
			}
			return
		}
		if e := fs.Set(f.Name, v); e != nil {
			err = fmt.Errorf("%s=%q: %w", name, v, e)
		}
	})
	return err
}

// Variable is the one variable lookup finds set for a flag among its Names
// and their file forms ("" when none), and whether it is a file form; two
// set at once are an error naming both.
func Variable(flagName string, lookup func(string) (string, bool)) (name string, file bool, err error) {
	for _, n := range Names(flagName) {
		for _, form := range []string{n, n + FileSuffix} {
			if _, ok := lookup(form); !ok {
				continue
			}
			if name != "" {
				return "", false, fmt.Errorf("both %s and %s are set: set one", name, form)
			}
			name, file = form, form != n
		}
	}
	return name, file, nil
}

// ReadFile is the value a variable's file form gives: the file's content
// without its final line break. An empty file is an error: a secret not yet
// written, or mounted from an empty key, would otherwise turn its setting
// off (an API open to anyone, a poller without its key) without a word. So
// is one holding Placeholder: deploy/k8s/secret.yaml applied over a real
// Secret would otherwise swap the tokens in use for ones anyone can read
// (a secret read again keeps the one before: package reload).
func ReadFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if strings.TrimSpace(s) == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	if strings.Contains(s, Placeholder) {
		return "", fmt.Errorf("%s holds deploy/'s placeholder %s: put a secret of your own there", path, Placeholder)
	}
	return s, nil
}

// Parse applies the environment and then the command-line args to fs. A
// flag the command line gives replaces what the environment gave it, a
// list's values too (a List would otherwise add to them).
func Parse(fs *flag.FlagSet, args []string, lookup func(string) (string, bool)) error {
	if err := Apply(fs, lookup); err != nil {
		return err
	}
	lists := map[*flag.Flag]flag.Value{}
	fs.VisitAll(func(f *flag.Flag) {
		if _, ok := f.Value.(resetter); ok {
			lists[f] = f.Value
			f.Value = &resetOnSet{Value: f.Value}
		}
		if p, ok := f.Value.(*settingPart); ok {
			p.commandLine = true
		}
	})
	defer func() {
		for f, v := range lists {
			f.Value = v
		}
	}()
	return fs.Parse(args)
}

// resetter is a flag.Value that adds to itself on Set (a List), and can
// start over.
type resetter interface {
	flag.Value
	Reset()
}

// resetOnSet starts its value over at the first Set: the command line's
// first value of a list replaces the environment's.
type resetOnSet struct {
	flag.Value
	set bool
}

func (r *resetOnSet) Set(s string) error {
	if !r.set {
		r.set = true
		r.Value.(resetter).Reset()
	}
	return r.Value.Set(s)
}

func (r *resetOnSet) Unwrap() flag.Value { return r.Value }

// Unwrap is the value a wrapper of this package holds (itself when none):
// the flag's own type, for help.
func Unwrap(v flag.Value) flag.Value {
	for {
		u, ok := v.(interface{ Unwrap() flag.Value })
		if !ok {
			return v
		}
		v = u.Unwrap()
	}
}

// CommandLineOnly makes the named flags of fs read no environment
// variable: what a one-shot command acts on (which dead letters to replay,
// which backup to restore, --force) comes from its command line alone, so
// that a variable left in an environment can never widen it (OTPSCOPE_ALL
// turning a replay of one into a replay of all). It panics when fs has no
// such flag, a mistake in the caller's code.
func CommandLineOnly(fs *flag.FlagSet, names ...string) {
	for _, name := range names {
		f := mustLookup(fs, "CommandLineOnly", name)
		f.Value = &commandLineOnly{f.Value}
	}
}

// commandLineOnly marks a flag CommandLineOnly.
type commandLineOnly struct{ flag.Value }

// IsBoolFlag keeps a bool flag one that takes no value (--all).
func (c *commandLineOnly) IsBoolFlag() bool {
	b, ok := c.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

func (c *commandLineOnly) Unwrap() flag.Value { return c.Value }

// OneSetting makes the named flags of fs one setting that the command line
// gives whole: when it gives any of them, what the environment gave the
// others is dropped. reporter report's window is --since, or --from and
// --to: OTPSCOPE_SINCE=24h left for a scheduled job must not clash with a
// --from and --to typed by hand. It panics when fs has no such flag, a
// mistake in the caller's code.
func OneSetting(fs *flag.FlagSet, names ...string) {
	s := &setting{}
	for _, name := range names {
		f := mustLookup(fs, "OneSetting", name)
		p := &settingPart{Value: f.Value, setting: s, def: f.DefValue}
		f.Value = p
		s.parts = append(s.parts, p)
	}
}

// setting is the flags OneSetting joined. commandLine is set by Parse once
// the environment is applied: a Set from then on is the command line's.
type setting struct {
	parts       []*settingPart
	commandLine bool
	given       bool
}

// settingPart is one flag of a setting.
type settingPart struct {
	flag.Value
	*setting
	def string
}

// Set resets every part to its default at the command line's first Set of
// any of them, then sets this one.
func (p *settingPart) Set(v string) error {
	if p.commandLine && !p.given {
		p.given = true
		for _, o := range p.parts {
			if err := o.Value.Set(o.def); err != nil {
				return err
			}
		}
	}
	return p.Value.Set(v)
}

func (p *settingPart) Unwrap() flag.Value { return p.Value }

// TrackGiven records which of fs's flags names are set, from the command
// line or the environment, and returns a function listing them in the
// order they were first set: settings that have no effect in some setup
// (the embedded servers' flags beside an external server's URL) can be
// warned of rather than ignored in silence. It panics when fs has no such
// flag, a mistake in the caller's code.
func TrackGiven(fs *flag.FlagSet, names ...string) func() []string {
	given := new([]string)
	for _, name := range names {
		f := mustLookup(fs, "TrackGiven", name)
		f.Value = &givenRecorder{Value: f.Value, name: name, given: given}
	}
	return func() []string { return slices.Clone(*given) }
}

type givenRecorder struct {
	flag.Value
	name  string
	given *[]string
}

func (g *givenRecorder) Set(s string) error {
	if !slices.Contains(*g.given, g.name) {
		*g.given = append(*g.given, g.name)
	}
	return g.Value.Set(s)
}

func (g *givenRecorder) String() string {
	if g == nil || g.Value == nil { // flag's zero-value probe
		return ""
	}
	return g.Value.String()
}

// IsBoolFlag keeps a boolean flag's bare form (--nats-group-commit).
func (g *givenRecorder) IsBoolFlag() bool {
	b, ok := g.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

func (g *givenRecorder) Unwrap() flag.Value { return g.Value }

// FromEnvironment reports whether f reads its environment variable (every
// flag but those CommandLineOnly marks).
func FromEnvironment(f *flag.Flag) bool {
	_, only := f.Value.(*commandLineOnly)
	return !only
}

// mustLookup is fs's flag name; a missing one is a mistake in the
// caller's code (fn's), which panics.
func mustLookup(fs *flag.FlagSet, fn, name string) *flag.Flag {
	f := fs.Lookup(name)
	if f == nil {
		panic("flagenv." + fn + ": no flag " + name)
	}
	return f
}

// SayDefault gives fs's flag name the words `config` shows for its value
// when nothing set it: a default worked out at start (from the disk, the
// server) that the flag's zero would misstate ("0", where 0 means no
// bound). It panics when fs has no such flag, a mistake in the caller's
// code. Call it after any other wrapping of the flag's value.
func SayDefault(fs *flag.FlagSet, name, words string) {
	f := mustLookup(fs, "SayDefault", name)
	f.Value = &saidDefault{Value: f.Value, words: words}
}

type saidDefault struct {
	flag.Value
	words string
}

// DefaultSaid is what SayDefault gave f, "" when nothing.
func DefaultSaid(f *flag.Flag) string {
	if d, ok := f.Value.(*saidDefault); ok {
		return d.words
	}
	return ""
}

// RecordFile makes fs's flag name keep in *path the file its value was
// read from (its variable's file form), and "" when the command line or
// the plain variable gave it: for a holder that reads a rotated secret
// again when the file changes (package reload). It panics when fs has no
// such flag, a mistake in the caller's code.
func RecordFile(fs *flag.FlagSet, name string, path *string) {
	f := mustLookup(fs, "RecordFile", name)
	f.Value = &fileRecorder{Value: f.Value, path: path}
}

// fileRecorder is a flag.Value that keeps the file its value came from.
type fileRecorder struct {
	flag.Value
	path *string
}

func (r *fileRecorder) setFile(path, content string) error {
	if err := r.Value.Set(content); err != nil {
		return err
	}
	*r.path = path
	return nil
}

// Set is a value from the command line or a plain variable: the file, if
// any, no longer gives the value.
func (r *fileRecorder) Set(s string) error {
	*r.path = ""
	return r.Value.Set(s)
}

// Reset starts a recorded list over.
func (r *fileRecorder) Reset() {
	if l, ok := r.Value.(resetter); ok {
		l.Reset()
	}
}

// Unwrap is the recorded value, whose type help names.
func (r *fileRecorder) Unwrap() flag.Value { return r.Value }

// List is a flag.Value of strings that takes repeated flags and comma-separated
// values alike (--webhook-token a --webhook-token b, or OTPSCOPE_WEBHOOK_TOKENS=a,b),
// and values a line each (a file of OTPSCOPE_WEBHOOK_TOKENS_FILE).
type List []string

func (l *List) String() string { return strings.Join(*l, ",") }

// Reset empties l.
func (l *List) Reset() { *l = nil }

// Set appends the values of v separated by commas or line breaks, skipping
// empty ones.
func (l *List) Set(v string) error {
	for _, s := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == '\n' }) {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// Lookup finds a variable in environ, a list of KEY=value (os.Environ's
// shape); the last of repeated keys wins, as in a process's environment.
func Lookup(environ []string) func(string) (string, bool) {
	return func(key string) (v string, ok bool) {
		for _, kv := range environ {
			if k, val, found := strings.Cut(kv, "="); found && k == key {
				v, ok = val, true
			}
		}
		return v, ok
	}
}

// Stray is an OTPSCOPE_* variable that nothing reads, and the variable it
// most likely misspells (empty when none is near).
type Stray struct{ Name, Suggest string }

// Strays are the OTPSCOPE_* variables of environ that no flag of fs reads and
// known does not claim (variables other binaries or tools read), in the
// order they are set. A misspelt variable would otherwise be ignored without
// a word: each names the closest variable fs reads when it is within a few
// edits.
func Strays(fs *flag.FlagSet, environ []string, known func(string) bool) []Stray {
	var reads []string
	fs.VisitAll(func(f *flag.Flag) {
		if FromEnvironment(f) {
			for _, n := range Names(f.Name) {
				reads = append(reads, n, n+FileSuffix)
			}
		}
	})
	var strays []Stray
	seen := map[string]bool{}
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(k, Prefix) || seen[k] || slices.Contains(reads, k) || (known != nil && known(k)) {
			continue
		}
		seen[k] = true
		s := Stray{Name: k}
		// Within a third of the name's length after the prefix, at most 4:
		// OTPSCOPE_TYNTEC_APIKEY → OTPSCOPE_TYNTEC_API_KEY, but OTPSCOPE_FOO
		// suggests nothing.
		best := min(4, (len(k)-len(Prefix))/3+1)
		for _, r := range reads {
			if d := distance(k, r); d < best {
				best, s.Suggest = d, r
			}
		}
		strays = append(strays, s)
	}
	return strays
}

// distance is the Levenshtein distance of a and b (bytes: the names are
// ASCII).
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Positive makes the named flags of fs, durations or whole numbers, refuse
// 0 and less, naming what they want. Their Configs read 0 as the default
// (a struct literal leaves them so), so a 0 given would otherwise run as
// the default while `config` showed 0. It panics when fs has no such flag,
// or one that is neither, a mistake in the caller's code.
func Positive(fs *flag.FlagSet, names ...string) {
	for _, name := range names {
		f := mustLookup(fs, "Positive", name)
		g, ok := f.Value.(flag.Getter)
		if !ok {
			panic("flagenv.Positive: flag " + name + " is not a duration or a whole number")
		}
		switch g.Get().(type) {
		case time.Duration, int, int64:
		default:
			panic("flagenv.Positive: flag " + name + " is not a duration or a whole number")
		}
		f.Value = &positive{Getter: g}
	}
}

// positive is a flag.Value that refuses 0 and less.
type positive struct{ flag.Getter }

func (p *positive) Set(s string) error {
	before := p.String()
	if err := p.Getter.Set(s); err != nil {
		return err
	}
	var want string
	switch v := p.Get().(type) {
	case time.Duration:
		if v <= 0 {
			want = "want a positive duration such as 90s, 5m or 1h"
		}
	case int:
		if v <= 0 {
			want = "want a whole number of 1 or more"
		}
	case int64:
		if v <= 0 {
			want = "want a whole number of 1 or more"
		}
	}
	if want == "" {
		return nil
	}
	_ = p.Getter.Set(before) // what it held parses
	return errors.New(want)
}

func (p *positive) Unwrap() flag.Value { return p.Getter }
