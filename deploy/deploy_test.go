package deploy_test

// No container engine runs where these tests run, so they check what can be
// checked without one: every file parses, every path it mounts or builds
// exists, every OTPSCOPE_* variable and flag is one the binary defines (read
// from the binaries' own --help, built once in TestMain), ports agree between
// listeners, container ports, probes, healthchecks, Services and URLs, and the
// images run as non-root. The NATS configuration is parsed by the real NATS
// server and a 3-node cluster started from it; the ClickHouse cluster schema
// runs on the embedded engine as far as the engine allows.

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"gopkg.in/yaml.v3"

	"github.com/otpscope/otpscope/internal/broker"
	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/chdb"
	"github.com/otpscope/otpscope/internal/chdb/chdbtest"
	"github.com/otpscope/otpscope/internal/flagenv"
	"github.com/otpscope/otpscope/internal/ingest"
	"github.com/otpscope/otpscope/internal/tooltest"
	"github.com/otpscope/otpscope/internal/webtest"
	"github.com/otpscope/otpscope/schema"
)

var (
	repoRoot string // the repository; the tests run in deploy/
	built    struct {
		err   error
		dir   string                     // the binaries
		flags map[string]map[string]bool // binary → its flag names
	}
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	repoRoot = filepath.Dir(wd)
	dir, err := os.MkdirTemp("", "otpscope-deploy-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	built.dir = dir
	built.flags, built.err = buildBinaries(dir)
	return chdbtest.Run(m, chdbtest.WithSetup(clusterEngine))
}

// imageVersion is the OTPSCOPE_VERSION the binaries are built with here.
const imageVersion = "v0.0.0-deploytest"

// buildBinaries builds what deploy/Dockerfile builds and reads each binary's
// flags from its --help.
func buildBinaries(dir string) (map[string]map[string]bool, error) {
	gobin, err := exec.LookPath("go") // go test puts its own go first on PATH
	if err != nil {
		return nil, err
	}
	// The version as the Dockerfile's build argument sets it.
	dockerfile, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "Dockerfile"))
	if err != nil {
		return nil, err
	}
	stamp := regexp.MustCompile(`-X (\S+)=\$\{OTPSCOPE_VERSION\}`).FindSubmatch(dockerfile)
	if stamp == nil {
		return nil, errors.New("deploy/Dockerfile's go build sets no version from OTPSCOPE_VERSION (-X …=${OTPSCOPE_VERSION})")
	}
	cmd := exec.Command(gobin, "build", "-ldflags", "-X "+string(stamp[1])+"="+imageVersion, "-o", dir+string(filepath.Separator), "./cmd/...", "./deploy/healthcheck")
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build ./cmd/... ./deploy/healthcheck: %v\n%s", err, out)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	flagLine := regexp.MustCompile(`(?m)^  --?([a-z0-9][a-z0-9-]*)`) // cli.Help's "  --name"
	flags := map[string]map[string]bool{}
	for _, e := range entries {
		set := map[string]bool{}
		if e.Name() != "healthcheck" {
			out, _ := exec.Command(filepath.Join(dir, e.Name()), "--help").CombinedOutput() // usage exits 0 or 2
			for _, m := range flagLine.FindAllStringSubmatch(string(out), -1) {
				set[m[1]] = true
			}
			if len(set) == 0 {
				return nil, fmt.Errorf("%s --help lists no flags:\n%s", e.Name(), out)
			}
			if out, err := exec.Command(filepath.Join(dir, e.Name()), "version").CombinedOutput(); err != nil || !strings.HasPrefix(string(out), e.Name()+" "+imageVersion+" (") {
				return nil, fmt.Errorf("%s version: %v, %q; want it named %s, as the Dockerfile's OTPSCOPE_VERSION names the image's build", e.Name(), err, out, imageVersion)
			}
		}
		flags[e.Name()] = set
	}
	return flags, nil
}

// flagsOf returns the flags of a binary the image contains.
func flagsOf(t *testing.T, bin string) map[string]bool {
	t.Helper()
	if built.err != nil {
		t.Fatalf("build the binaries: %v", built.err)
	}
	f, ok := built.flags[bin]
	if !ok {
		t.Fatalf("binary %q is not built by deploy/Dockerfile (no cmd/%s)", bin, bin)
	}
	return f
}

// envOf is the set of OTPSCOPE_* variables a binary reads: one per flag.
func envOf(t *testing.T, bin string) map[string]bool {
	t.Helper()
	env := map[string]bool{}
	for f := range flagsOf(t, bin) {
		env[flagenv.Name(f)] = true
		env[flagenv.Name(f)+flagenv.FileSuffix] = true
	}
	return env
}

func deployPath(p ...string) string {
	return filepath.Join(append([]string{repoRoot, "deploy"}, p...)...)
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustExist(t *testing.T, what, path string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Errorf("%s: %v", what, err)
	}
}

func portOf(t *testing.T, what, hostport string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Errorf("%s: %q: %v", what, hostport, err)
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}

// ---------------------------------------------------------------- Dockerfile

// The data directory of the image: WORKDIR and OTPSCOPE_DATA_DIR, and where
// the Kubernetes manifests mount a writable volume.
const imageDataDir = "/var/lib/otpscope"

func TestDockerfile(t *testing.T) {
	text := string(readFile(t, deployPath("Dockerfile")))
	lines := dockerLines(text)

	goMod := string(readFile(t, filepath.Join(repoRoot, "go.mod")))
	wantGo := regexp.MustCompile(`(?m)^go (\S+)`).FindStringSubmatch(goMod)
	gotGo := regexp.MustCompile(`(?m)^ARG GO_VERSION=(\S+)`).FindStringSubmatch(text)
	if wantGo == nil || gotGo == nil {
		t.Fatalf("go directive %v, ARG GO_VERSION %v", wantGo, gotGo)
	}
	if versionLess(gotGo[1], wantGo[1]) {
		t.Errorf("Dockerfile builds with Go %s; go.mod needs %s (the golang images set GOTOOLCHAIN=local)", gotGo[1], wantGo[1])
	}

	var stages []string
	var user string
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "FROM "):
			stages = append(stages, l)
			user = ""
		case strings.HasPrefix(l, "USER "):
			user = strings.TrimSpace(strings.TrimPrefix(l, "USER "))
		case strings.HasPrefix(l, "COPY ") && !strings.Contains(l, "--from="):
			f := strings.Fields(l)
			for _, src := range f[1 : len(f)-1] {
				if !strings.HasPrefix(src, "--") && src != "." {
					mustExist(t, "Dockerfile COPY source", filepath.Join(repoRoot, src))
				}
			}
		}
	}
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stages; want a build and a runtime stage", len(stages))
	}
	if !strings.Contains(stages[0], "golang:") {
		t.Errorf("build stage %q: want a golang (glibc, gcc) image", stages[0])
	}
	final := stages[len(stages)-1]
	if !strings.Contains(final, "distroless/base") && !strings.Contains(final, "debian") {
		t.Errorf("runtime stage %q: want a small glibc image (the binaries use cgo)", final)
	}
	uid, _, _ := strings.Cut(user, ":")
	if user == "" || uid == "0" || uid == "root" {
		t.Errorf("runtime stage runs as %q; want a non-root USER", user)
	}
	for _, want := range []string{"CGO_ENABLED=1", "./cmd/...", "./deploy/healthcheck",
		"WORKDIR " + imageDataDir, "OTPSCOPE_DATA_DIR=" + imageDataDir} {
		if !strings.Contains(text, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	flagsOf(t, "healthcheck") // built, as the compose healthchecks need it

	ignore := string(readFile(t, deployPath("Dockerfile.dockerignore")))
	for _, want := range []string{".cache", ".git", "data"} {
		if !slices.Contains(strings.Fields(ignore), want) {
			t.Errorf("Dockerfile.dockerignore does not exclude %s (the embedded engine alone is 566 MB)", want)
		}
	}
}

// dockerLines joins continuation lines and drops comments.
func dockerLines(text string) []string {
	var out []string
	var cur strings.Builder
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if strings.HasSuffix(l, "\\") {
			cur.WriteString(strings.TrimSuffix(l, "\\") + " ")
			continue
		}
		cur.WriteString(l)
		out = append(out, cur.String())
		cur.Reset()
	}
	return out
}

func versionLess(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(pa), len(pb)); i++ {
		var x, y int
		if i < len(pa) {
			x, _ = strconv.Atoi(pa[i])
		}
		if i < len(pb) {
			y, _ = strconv.Atoi(pb[i])
		}
		if x != y {
			return x < y
		}
	}
	return false
}

// ---------------------------------------------------------------- compose

type composeFile struct {
	Services map[string]*composeService `yaml:"services"`
	Volumes  map[string]any             `yaml:"volumes"`
	// Secrets are the top-level secrets, each from a file or a variable.
	Secrets map[string]struct {
		File        string `yaml:"file"`
		Environment string `yaml:"environment"`
	} `yaml:"secrets"`
}

type composeService struct {
	Image string `yaml:"image"`
	Build *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	Volumes     []string          `yaml:"volumes"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Healthcheck *struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
	Profiles []string `yaml:"profiles"`
	ReadOnly bool     `yaml:"read_only"`
	Secrets  []string `yaml:"secrets"` // mounted at /run/secrets/<name>
	Networks map[string]struct {
		Aliases []string `yaml:"aliases"`
	} `yaml:"networks"`
}

func loadCompose(t *testing.T, name string) *composeFile {
	t.Helper()
	var f composeFile
	// Top-level x-* extensions are anchors only; decode them away.
	var raw map[string]yaml.Node
	if err := yaml.Unmarshal(readFile(t, deployPath(name)), &raw); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	for k := range raw {
		if k != "services" && k != "volumes" && k != "secrets" && k != "name" && !strings.HasPrefix(k, "x-") {
			t.Errorf("%s: unexpected top-level key %q", name, k)
		}
	}
	if err := yaml.Unmarshal(readFile(t, deployPath(name)), &f); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(f.Services) == 0 {
		t.Fatalf("%s has no services", name)
	}
	return &f
}

// merge applies an override file as docker compose does, for the fields used here.
func (f *composeFile) merge(o *composeFile) {
	for name, s := range o.Services {
		b, ok := f.Services[name]
		if !ok {
			f.Services[name] = s
			continue
		}
		if s.Image != "" {
			b.Image = s.Image
		}
		if s.Command != nil {
			b.Command = s.Command
		}
		if s.Healthcheck != nil {
			b.Healthcheck = s.Healthcheck
		}
		if s.Networks != nil {
			b.Networks = s.Networks
		}
		for k, v := range s.Environment {
			if b.Environment == nil {
				b.Environment = map[string]string{}
			}
			b.Environment[k] = v
		}
		for k, v := range s.DependsOn {
			b.DependsOn[k] = v
		}
		b.Volumes = append(b.Volumes, s.Volumes...)
		b.Ports = append(b.Ports, s.Ports...)
	}
	for k, v := range o.Volumes {
		f.Volumes[k] = v
	}
}

// Ports the third-party services listen on, from their images' defaults.
var thirdPartyPorts = map[string][]int{
	"clickhouse/clickhouse-server": {8123, 9000},
	"grafana/grafana":              {3000},
	"prom/prometheus":              {9090},
}

// composeEnv is deploy/demo.env: the variables the demo runs with, read as
// an environment file (systemd_test.go's readEnvFile; compose's --env-file
// takes the same shape).
func composeEnv(t *testing.T) map[string]string {
	t.Helper()
	return readEnvFile(t, deployPath("demo.env"))
}

// composeVar is one ${…} with no other inside it.
var composeVar = regexp.MustCompile(`\$\{([A-Za-z0-9_]+)(?:(:?[-?])([^}$]*))?\}`)

// expand interpolates ${VAR}, ${VAR:-default}, ${VAR-default} and
// ${VAR:?message} like compose, a default that is itself one too
// (${A:-${B}}): the innermost first.
func expand(s string, env map[string]string) string {
	for {
		next := composeVar.ReplaceAllStringFunc(s, func(m string) string {
			p := composeVar.FindStringSubmatch(m)
			v, ok := env[p[1]]
			if ok && (v != "" || p[2] == "-") {
				return v
			}
			if strings.HasSuffix(p[2], "-") {
				return p[3]
			}
			return ""
		})
		if next == s {
			return s
		}
		s = next
	}
}

// otpscopeBinary is the binary a compose service runs from the otpscope image,
// or "" for a third-party image.
func (s *composeService) otpscopeBinary() string {
	if s.Build == nil && !strings.Contains(s.Image, "OTPSCOPE_IMAGE") {
		return ""
	}
	if len(s.Command) == 0 {
		return "ingest" // the image's CMD
	}
	return s.Command[0]
}

// testedNATSRelease is the major.minor of go.mod's nats-server: the release
// the suite runs, which the compose files and the Helm values pin.
func testedNATSRelease(t *testing.T) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^\s*github\.com/nats-io/nats-server/v2 v(\d+\.\d+)\.`).FindSubmatch(readFile(t, filepath.Join(repoRoot, "go.mod")))
	if m == nil {
		t.Fatal("go.mod names no nats-server/v2 version")
	}
	return string(m[1])
}

func TestCompose(t *testing.T) {
	env := composeEnv(t)
	natsImage := "nats:" + testedNATSRelease(t) + "-alpine"
	for _, name := range []string{"docker-compose.yml", "docker-compose.cluster.yml"} {
		for service, s := range loadCompose(t, name).Services {
			if strings.HasPrefix(s.Image, "nats:") && s.Image != natsImage {
				t.Errorf("%s: %s runs %s; want %s, the nats-server release go.mod tests", name, service, s.Image, natsImage)
			}
		}
	}
	t.Run("single", func(t *testing.T) {
		f := loadCompose(t, "docker-compose.yml")
		checkCompose(t, f, env)
		for _, name := range []string{"nats", "clickhouse", "prometheus", "grafana", "ingest", "poller", "reporter", "tyntecsim"} {
			if f.Services[name] == nil {
				t.Errorf("docker-compose.yml has no %s service", name)
			}
		}
		if s := f.Services["tyntecsim"]; s != nil && !slices.Contains(s.Profiles, "demo") {
			t.Errorf("tyntecsim profiles = %q; want the demo profile", s.Profiles)
		}
		if s := f.Services["grafana"]; s != nil {
			checkGrafana(t, s)
		}
		if s := f.Services["clickhouse"]; s != nil {
			checkBackupPath(t, s)
		}
		checkPrometheus(t, f, env)
	})
	t.Run("cluster", func(t *testing.T) {
		f := loadCompose(t, "docker-compose.yml")
		f.merge(loadCompose(t, "docker-compose.cluster.yml"))
		checkCompose(t, f, env)
		nodes := 0
		for name, s := range f.Services {
			if strings.HasPrefix(s.Image, "nats:") {
				nodes++
				if !slices.Contains(s.Command, "/etc/nats/cluster.conf") {
					t.Errorf("%s: command %q does not run cluster.conf", name, s.Command)
				}
				if s.Environment["NATS_SERVER_NAME"] == "" {
					t.Errorf("%s: no NATS_SERVER_NAME", name)
				}
			}
			bin := s.otpscopeBinary()
			if bin == "" || !flagsOf(t, bin)["nats-url"] {
				continue
			}
			if got := s.Environment["OTPSCOPE_STREAM_REPLICAS"]; got != "3" {
				t.Errorf("%s: OTPSCOPE_STREAM_REPLICAS = %q on the NATS cluster; want 3", name, got)
			}
			if got := strings.Count(s.Environment["OTPSCOPE_NATS_URL"], "nats://"); got != 3 {
				t.Errorf("%s: OTPSCOPE_NATS_URL lists %d servers; want the 3 nodes", name, got)
			}
		}
		if nodes != 3 {
			t.Errorf("%d NATS nodes; want 3", nodes)
		}
		checkPrometheus(t, f, env)
	})
	t.Run("variables", func(t *testing.T) {
		example := string(readFile(t, deployPath(".env.example")))
		for _, file := range []string{"docker-compose.yml", "docker-compose.cluster.yml"} {
			for _, m := range composeVar.FindAllStringSubmatch(string(readFile(t, deployPath(file))), -1) {
				if strings.HasSuffix(m[2], "-") {
					continue // has a default
				}
				if _, ok := env[m[1]]; !ok {
					t.Errorf("%s: ${%s} has no default and demo.env does not set it", file, m[1])
				}
				if !strings.Contains(example, "\n"+m[1]+"=") {
					t.Errorf("%s: ${%s} has no default and .env.example does not list it", file, m[1])
				}
			}
		}
		if tok := env["OTPSCOPE_WEBHOOK_TOKENS"]; len(tok) < 16 || strings.Contains(tok, ",") {
			t.Errorf("demo.env OTPSCOPE_WEBHOOK_TOKENS = %q; want one token of at least 16 characters (the simulator sends it as a header)", tok)
		}
	})
}

func checkCompose(t *testing.T, f *composeFile, env map[string]string) {
	natsPorts := natsConfigPorts(t)
	// What each service (and network alias) listens on.
	listens := map[string][]int{}
	listenOf := map[string]int{}
	for name, s := range f.Services {
		var ports []int
		if bin := s.otpscopeBinary(); bin != "" {
			if addr := serviceListen(s, env); addr != "" {
				listenOf[name] = portOf(t, name+" listen", addr)
				ports = append(ports, listenOf[name])
			} else {
				t.Errorf("%s: no OTPSCOPE_LISTEN or --listen: it would listen on 127.0.0.1 only", name)
			}
		} else if strings.HasPrefix(s.Image, "nats:") {
			ports = natsPorts
		} else {
			repo, _, _ := strings.Cut(s.Image, ":")
			var ok bool
			if ports, ok = thirdPartyPorts[repo]; !ok {
				t.Errorf("%s: unknown image %q", name, s.Image)
			}
		}
		listens[name] = ports
		for _, n := range s.Networks {
			for _, a := range n.Aliases {
				listens[a] = ports
			}
		}
	}

	for name, s := range f.Services {
		if s.Build != nil {
			ctx := deployPath(s.Build.Context)
			mustExist(t, name+" build context", ctx)
			mustExist(t, name+" dockerfile", filepath.Join(ctx, s.Build.Dockerfile))
		}
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") {
				mustExist(t, name+" bind mount "+v, deployPath(src))
			} else if _, ok := f.Volumes[src]; !ok {
				t.Errorf("%s: volume %q is not declared under volumes:", name, src)
			}
		}
		for dep := range s.DependsOn {
			if f.Services[dep] == nil {
				t.Errorf("%s depends on %s, which is not a service", name, dep)
			}
		}
		for _, p := range s.Ports {
			parts := strings.Split(strings.TrimSuffix(p, "/tcp"), ":")
			cp, _ := strconv.Atoi(parts[len(parts)-1])
			if !slices.Contains(listens[name], cp) {
				t.Errorf("%s publishes container port %d; it listens on %v", name, cp, listens[name])
			}
		}
		if s.Healthcheck == nil || len(s.Healthcheck.Test) == 0 {
			t.Errorf("%s has no healthcheck", name)
		}

		bin := s.otpscopeBinary()
		if bin == "" {
			checkURLs(t, name, s, env, listens)
			continue
		}
		flags, vars := flagsOf(t, bin), envOf(t, bin)
		for k := range s.Environment {
			if strings.HasPrefix(k, "OTPSCOPE_") && !vars[k] {
				t.Errorf("%s sets %s, which is not a flag of %s", name, k, bin)
			}
		}
		for _, a := range s.Command[min(1, len(s.Command)):] {
			if !strings.HasPrefix(a, "-") {
				continue
			}
			fl, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
			if !flags[fl] {
				t.Errorf("%s passes %s, which is not a flag of %s", name, a, bin)
			}
		}
		if h := s.Healthcheck; h != nil && len(h.Test) > 0 {
			if len(h.Test) != 3 || h.Test[0] != "CMD" || h.Test[1] != "healthcheck" {
				t.Errorf("%s healthcheck %q: want [CMD healthcheck URL] (the image has no shell)", name, h.Test)
			} else if u, err := url.Parse(h.Test[2]); err != nil {
				t.Errorf("%s healthcheck: %v", name, err)
			} else {
				want := "/readyz"
				if bin == "tyntecsim" {
					want = "/healthz" // the simulator has no readiness of its own
				}
				if p, _ := strconv.Atoi(u.Port()); p != listenOf[name] || u.Path != want {
					t.Errorf("%s healthcheck %s: want %s on its listener port %d", name, h.Test[2], want, listenOf[name])
				}
			}
		}
		if !s.ReadOnly {
			t.Errorf("%s: want read_only: true", name)
		}
		checkURLs(t, name, s, env, listens)
	}
}

// serviceListen is the listen address of an otpscope service.
func serviceListen(s *composeService, env map[string]string) string {
	if v := s.Environment["OTPSCOPE_LISTEN"]; v != "" {
		return expand(v, env)
	}
	for _, a := range s.Command {
		if v, ok := strings.CutPrefix(a, "--listen="); ok {
			return expand(v, env)
		}
	}
	return ""
}

var urlPattern = regexp.MustCompile(`[a-z][a-z0-9+.-]*://[^\s,"']+`)

// checkURLs checks that every URL naming another service uses a port that
// service listens on.
func checkURLs(t *testing.T, name string, s *composeService, env map[string]string, listens map[string][]int) {
	t.Helper()
	var texts []string
	for _, v := range s.Environment {
		texts = append(texts, expand(v, env))
	}
	for _, a := range s.Command {
		texts = append(texts, expand(a, env))
	}
	for _, text := range texts {
		for _, raw := range urlPattern.FindAllString(text, -1) {
			u, err := url.Parse(raw)
			if err != nil {
				t.Errorf("%s: %q: %v", name, raw, err)
				continue
			}
			ports, ok := listens[u.Hostname()]
			if !ok {
				continue // outside compose, e.g. api.tyntec.com
			}
			p, _ := strconv.Atoi(u.Port())
			if !slices.Contains(ports, p) {
				t.Errorf("%s: %s: %s listens on %v", name, raw, u.Hostname(), ports)
			}
			if strings.Contains(raw, "/webhooks/") && u.Path != "/webhooks/tyntec" {
				t.Errorf("%s: %s: ingest's webhook path is /webhooks/tyntec", name, raw)
			}
		}
	}
}

// checkBackupPath checks that the ClickHouse server lets otpscope back it
// up (README, "Backups and restores"): backups.xml is mounted into
// config.d, and its allowed_path lies in a volume the server keeps.
func checkBackupPath(t *testing.T, s *composeService) {
	t.Helper()
	var cfg struct {
		AllowedPath string `xml:"backups>allowed_path"`
	}
	if err := xml.Unmarshal(readFile(t, deployPath("clickhouse", "backups.xml")), &cfg); err != nil || cfg.AllowedPath == "" {
		t.Fatalf("clickhouse/backups.xml: allowed_path %q, %v", cfg.AllowedPath, err)
	}
	mounted, kept := false, false
	for _, v := range s.Volumes {
		src, dst, _ := strings.Cut(v, ":")
		dst, _, _ = strings.Cut(dst, ":")
		if src == "./clickhouse/backups.xml" && strings.HasPrefix(dst, "/etc/clickhouse-server/config.d/") {
			mounted = true
		}
		if !strings.HasPrefix(src, ".") && strings.HasPrefix(cfg.AllowedPath, strings.TrimSuffix(dst, "/")+"/") {
			kept = true
		}
	}
	if !mounted || !kept {
		t.Errorf("clickhouse volumes %q: backups.xml mounted into config.d %v, allowed_path %s in a named volume %v", s.Volumes, mounted, cfg.AllowedPath, kept)
	}
}

// checkGrafana checks the provisioning that docker-compose.yml mounts from
// deploy/grafana/ (written with the dashboards): a ClickHouse data source whose
// variables compose sets, and a dashboard provider reading the mounted dashboards.
func checkGrafana(t *testing.T, s *composeService) {
	mounts := map[string]string{} // container path → deploy-relative source
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 {
			mounts[parts[1]] = parts[0]
		}
	}
	prov, ok := mounts["/etc/grafana/provisioning"]
	if !ok {
		t.Fatal("grafana: nothing mounted at /etc/grafana/provisioning")
	}
	dashboardsAt := ""
	for target, src := range mounts {
		if filepath.Clean(deployPath(src)) == filepath.Join(repoRoot, "dashboards") {
			dashboardsAt = target
		}
	}
	if dashboardsAt == "" {
		t.Error("grafana: the repository's dashboards/ is not mounted")
	}
	yamls := func(dir string) []string {
		var out []string
		for _, ext := range []string{"*.yaml", "*.yml"} {
			m, _ := filepath.Glob(filepath.Join(deployPath(prov), dir, ext))
			out = append(out, m...)
		}
		if len(out) == 0 {
			t.Errorf("grafana: no provisioning file in deploy/%s/%s (the Grafana provisioning is missing)", filepath.Clean(prov), dir)
		}
		return out
	}
	envRef := regexp.MustCompile(`\$\{?([A-Z][A-Z0-9_]*)\}?`)
	var prometheusUIDs []string
	for _, p := range yamls("datasources") {
		text := readFile(t, p)
		var doc struct {
			Datasources []struct{ Type, UID, URL string } `yaml:"datasources"`
		}
		if err := yaml.Unmarshal(text, &doc); err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		for _, d := range doc.Datasources {
			switch d.Type {
			case "grafana-clickhouse-datasource":
			case "prometheus": // built into Grafana
				prometheusUIDs = append(prometheusUIDs, d.UID)
				if d.URL != "${OTPSCOPE_PROMETHEUS_URL}" {
					t.Errorf("%s: Prometheus URL %q; want ${OTPSCOPE_PROMETHEUS_URL}, which the compose files set", p, d.URL)
				}
			default:
				t.Errorf("%s: data source type %q; compose installs grafana-clickhouse-datasource, Grafana has prometheus", p, d.Type)
			}
		}
		for _, m := range envRef.FindAllStringSubmatch(string(text), -1) {
			if _, ok := s.Environment[m[1]]; !ok && !strings.HasPrefix(m[1], "GF_") && !strings.HasPrefix(m[1], "__") {
				t.Errorf("%s uses $%s; docker-compose.yml does not set it for grafana", p, m[1])
			}
		}
	}
	for _, p := range yamls("dashboards") {
		var doc struct {
			Providers []struct {
				Options struct{ Path string } `yaml:"options"`
			} `yaml:"providers"`
		}
		if err := yaml.Unmarshal(readFile(t, p), &doc); err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		for _, pr := range doc.Providers {
			if pr.Options.Path != dashboardsAt {
				t.Errorf("%s: provider path %q; compose mounts dashboards/ at %q", p, pr.Options.Path, dashboardsAt)
			}
		}
	}
	if m, _ := filepath.Glob(filepath.Join(repoRoot, "dashboards", "*.json")); len(m) == 0 {
		t.Error("dashboards/ holds no dashboard JSON")
	}
	// The operations dashboard opens on the provisioned Prometheus.
	var ops struct {
		Templating struct {
			List []struct {
				Name    string `json:"name"`
				Current struct {
					Value string `json:"value"`
				} `json:"current"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(readFile(t, filepath.Join(repoRoot, "dashboards", "operations.json")), &ops); err != nil {
		t.Fatal(err)
	}
	for _, v := range ops.Templating.List {
		if v.Name == "datasource" && (len(prometheusUIDs) != 1 || v.Current.Value != prometheusUIDs[0]) {
			t.Errorf("operations.json opens on data source %q; the provisioning has Prometheus %q", v.Current.Value, prometheusUIDs)
		}
	}
}

// checkPrometheus checks the prometheus service against the services it
// scrapes: deploy/prometheus/prometheus.yml (which promtool checks, in
// TestPrometheusRules) scrapes every otpscope service but the simulator on
// the port it serves /metrics on, in jobs OtpscopeDown reads, and loads the
// rules; the service mounts it where its command reads it.
func checkPrometheus(t *testing.T, f *composeFile, env map[string]string) {
	t.Helper()
	s := f.Services["prometheus"]
	if s == nil {
		t.Fatal("no prometheus service")
	}
	if !regexp.MustCompile(`^prom/prometheus:v\d+\.\d+\.\d+$`).MatchString(s.Image) {
		t.Errorf("prometheus image %q; want a pinned release", s.Image)
	}
	mountedAt := ""
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && filepath.Clean(deployPath(parts[0])) == deployPath("prometheus") {
			mountedAt = parts[1]
		}
	}
	if want := "--config.file=" + mountedAt + "/prometheus.yml"; mountedAt == "" || !slices.Contains(s.Command, want) {
		t.Errorf("prometheus: command %q, deploy/prometheus mounted at %q; want %s", s.Command, mountedAt, want)
	}

	var cfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			Authorization struct {
				CredentialsFile string `yaml:"credentials_file"`
			} `yaml:"authorization"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, deployPath("prometheus", "prometheus.yml"), &cfg)
	if !slices.Contains(cfg.RuleFiles, "otpscope-rules.yml") {
		t.Errorf("prometheus.yml rule_files %q; want otpscope-rules.yml", cfg.RuleFiles)
	}
	// The token each job sends: the value of the secret its
	// credentials_file is, as compose mounts it into the service.
	scraped := map[string]string{}
	for _, sc := range cfg.ScrapeConfigs {
		if !strings.HasPrefix(sc.JobName, "otpscope") {
			t.Errorf("prometheus.yml job %q: OtpscopeDown reads the jobs named otpscope…", sc.JobName)
		}
		token := ""
		if name, ok := strings.CutPrefix(sc.Authorization.CredentialsFile, "/run/secrets/"); ok && slices.Contains(s.Secrets, name) {
			token = env[f.Secrets[name].Environment]
		}
		if token == "" {
			t.Errorf("prometheus.yml job %s: credentials_file %q is not a secret the prometheus service mounts (%q) from a variable demo.env sets", sc.JobName, sc.Authorization.CredentialsFile, s.Secrets)
		}
		for _, c := range sc.StaticConfigs {
			for _, target := range c.Targets {
				scraped[target] = token
			}
		}
	}
	for name, svc := range f.Services {
		bin := svc.otpscopeBinary()
		if bin == "" || bin == "tyntecsim" {
			continue
		}
		addr := svc.Environment["OTPSCOPE_ADMIN_LISTEN"]
		if addr == "" {
			if def := adminListenDefault(t, bin); def != "" {
				t.Errorf("%s: serves /metrics on %s (its --admin-listen default), out of Prometheus' reach; set OTPSCOPE_ADMIN_LISTEN", name, def)
				continue
			}
			addr = serviceListen(svc, env)
		}
		target := fmt.Sprintf("%s:%d", name, portOf(t, name+" metrics", expand(addr, env)))
		token, ok := scraped[target]
		if !ok {
			t.Errorf("prometheus.yml does not scrape %s (/metrics of %s); it scrapes %v", target, name, slices.Sorted(maps.Keys(scraped)))
		}
		// No admin listener open to compose's network and the host: an
		// API token guards it, and Prometheus sends the metrics token.
		if expand(svc.Environment["OTPSCOPE_API_TOKEN"], env) == "" {
			t.Errorf("%s: no OTPSCOPE_API_TOKEN: its admin API answers anyone who reaches it", name)
		}
		if metrics := expand(svc.Environment["OTPSCOPE_METRICS_TOKEN"], env); ok && (metrics == "" || metrics != token) {
			t.Errorf("%s: OTPSCOPE_METRICS_TOKEN %q; Prometheus scrapes it with %q", name, metrics, token)
		}
		delete(scraped, target)
	}
	for target := range scraped {
		t.Errorf("prometheus.yml scrapes %s, which no otpscope service serves", target)
	}
}

// adminListenDefault is the --admin-listen a binary has when given none.
func adminListenDefault(t *testing.T, bin string) string {
	t.Helper()
	flagsOf(t, bin) // built
	out, _ := exec.Command(filepath.Join(built.dir, bin), "--help").CombinedOutput()
	m := regexp.MustCompile(`(?m)^  --admin-listen string .*\(default (\S+)\)$`).FindSubmatch(out)
	if m == nil {
		return ""
	}
	return string(m[1])
}

// ---------------------------------------------------------------- NATS

// natsConfigPorts are the ports of deploy/nats/*.conf, read by the real server.
func natsConfigPorts(t *testing.T) []int {
	t.Helper()
	o := loadNATSConfig(t, "nats.conf", natsNodeEnv(t, false, "nats"))
	ports := []int{o.Port, o.HTTPPort}
	c := loadNATSConfig(t, "cluster.conf", natsNodeEnv(t, true, "nats"))
	return append(ports, c.Port, c.HTTPPort, c.Cluster.Port)
}

// natsNodeEnv is the environment compose gives a NATS service (with
// docker-compose.cluster.yml when cluster), its variables from demo.env.
func natsNodeEnv(t *testing.T, cluster bool, service string) map[string]string {
	t.Helper()
	f := loadCompose(t, "docker-compose.yml")
	if cluster {
		f.merge(loadCompose(t, "docker-compose.cluster.yml"))
	}
	s := f.Services[service]
	if s == nil {
		t.Fatalf("compose has no %s service", service)
	}
	env, demo := map[string]string{}, composeEnv(t)
	for k, v := range s.Environment {
		env[k] = expand(v, demo)
	}
	return env
}

var natsEnv sync.Mutex

// loadNATSConfig reads deploy/nats/<name> with the real server's parser,
// in the environment env (the variables the file names).
func loadNATSConfig(t *testing.T, name string, env map[string]string) *server.Options {
	t.Helper()
	o, err := parseNATSConfig(deployPath("nats", name), env)
	if err != nil {
		t.Fatalf("nats/%s: %v", name, err)
	}
	return o
}

// parseNATSConfig reads a NATS configuration file with the real server's
// parser, in the environment env.
func parseNATSConfig(file string, env map[string]string) (*server.Options, error) {
	natsEnv.Lock()
	defer natsEnv.Unlock()
	for k, v := range env {
		os.Setenv(k, v)
	}
	defer func() {
		for k := range env {
			os.Unsetenv(k)
		}
	}()
	return server.ProcessConfigFile(file)
}

func TestNATSConfig(t *testing.T) {
	for _, tt := range []struct {
		name    string
		cluster bool
	}{{"nats.conf", false}, {"cluster.conf", true}} {
		env := natsNodeEnv(t, tt.cluster, "nats")
		o := loadNATSConfig(t, tt.name, env)
		if !o.JetStream || o.StoreDir == "" {
			t.Errorf("%s: JetStream %v, store %q; want JetStream on disk", tt.name, o.JetStream, o.StoreDir)
		}
		if o.Port != 4222 {
			t.Errorf("%s: client port %d; the services use 4222", tt.name, o.Port)
		}
		if o.MaxPayload != 8<<20 {
			t.Errorf("%s: max_payload %d; the embedded server allows %d", tt.name, o.MaxPayload, 8<<20)
		}
		checkNATSUsers(t, tt.name, o, env)
	}
	// The single server holds the only copy, so it fsyncs every write; the
	// cluster's R3 is its durability (README, "Durability and speed").
	if o := loadNATSConfig(t, "nats.conf", natsNodeEnv(t, false, "nats")); !o.SyncAlways {
		t.Errorf("nats.conf: sync_interval %v; want always, as the embedded single node", o.SyncInterval)
	}
	env := natsNodeEnv(t, true, "nats-2")
	o := loadNATSConfig(t, "cluster.conf", env)
	if o.ServerName != "nats-2" {
		t.Errorf("cluster.conf: server_name %q; want it from $NATS_SERVER_NAME", o.ServerName)
	}
	var routes []string
	for _, r := range o.Routes {
		routes = append(routes, r.Host)
	}
	if o.Cluster.Name == "" || len(routes) != 3 {
		t.Errorf("cluster.conf: cluster %q with routes %q; want a named cluster of 3", o.Cluster.Name, routes)
	}
	if o.Cluster.Username != broker.DefaultUser || o.Cluster.Password == "" || o.Cluster.Password != env["OTPSCOPE_NATS_PASSWORD"] {
		t.Errorf("cluster.conf: routes accept user %q with password %q; want %q with OTPSCOPE_NATS_PASSWORD", o.Cluster.Username, o.Cluster.Password, broker.DefaultUser)
	}
	for _, r := range o.Routes {
		if p, _ := strconv.Atoi(r.Port()); p != o.Cluster.Port {
			t.Errorf("cluster.conf: route %s does not use the cluster port %d", r.Redacted(), o.Cluster.Port)
		}
		if pw, _ := r.User.Password(); r.User.Username() != o.Cluster.Username || pw != o.Cluster.Password {
			t.Errorf("cluster.conf: route %s does not authenticate as the cluster's user", r.Redacted())
		}
	}
}

// checkNATSUsers holds an external server's users to the embedded
// server's: the service user unrestricted, the reader with the same
// permissions, each with the password compose gives it.
func checkNATSUsers(t *testing.T, name string, o *server.Options, env map[string]string) {
	t.Helper()
	byName := map[string]*server.User{}
	for _, u := range o.Users {
		byName[u.Username] = u
	}
	if len(byName) != 2 {
		t.Errorf("%s: users %v; want %s and %s", name, slices.Collect(maps.Keys(byName)), broker.DefaultUser, broker.DefaultReaderUser)
	}
	svc, reader := byName[broker.DefaultUser], byName[broker.DefaultReaderUser]
	if svc == nil || reader == nil {
		t.Fatalf("%s: users %v; want %s and %s", name, slices.Collect(maps.Keys(byName)), broker.DefaultUser, broker.DefaultReaderUser)
	}
	if svc.Password == "" || svc.Password != env["OTPSCOPE_NATS_PASSWORD"] || svc.Permissions != nil {
		t.Errorf("%s: %s has password %q, permissions %+v; want OTPSCOPE_NATS_PASSWORD, unrestricted", name, svc.Username, svc.Password, svc.Permissions)
	}
	if reader.Password == "" || reader.Password != env["OTPSCOPE_NATS_READER_PASSWORD"] || reader.Password == svc.Password {
		t.Errorf("%s: %s has password %q; want OTPSCOPE_NATS_READER_PASSWORD, not the service user's", name, reader.Username, reader.Password)
	}
	want := broker.ReaderPermissions(broker.DefaultStreamName)
	got := reader.Permissions
	if got == nil || got.Publish == nil || got.Subscribe == nil || got.Response != nil ||
		!slices.Equal(got.Publish.Allow, want.Publish.Allow) || !slices.Equal(got.Publish.Deny, want.Publish.Deny) ||
		!slices.Equal(got.Subscribe.Allow, want.Subscribe.Allow) || !slices.Equal(got.Subscribe.Deny, want.Subscribe.Deny) {
		t.Errorf("%s: %s may %+v; want the embedded server's reader permissions %+v", name, reader.Username, fmtPerms(got), fmtPerms(want))
	}
}

func fmtPerms(p *server.Permissions) string {
	if p == nil || p.Publish == nil || p.Subscribe == nil {
		return fmt.Sprintf("%+v", p)
	}
	return fmt.Sprintf("publish %+v, subscribe %+v", *p.Publish, *p.Subscribe)
}

// TestNATSClusterR3 starts three servers from cluster.conf (on loopback
// ports) and lets the broker create otpscope's stream with three replicas, as
// every service does with OTPSCOPE_STREAM_REPLICAS=3.
func TestNATSClusterR3(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster")
	}
	var routePorts []int
	for range 3 {
		routePorts = append(routePorts, webtest.FreePort(t))
	}
	var urls []string
	var password, readerPassword string
	for i := range 3 {
		env := natsNodeEnv(t, true, map[int]string{0: "nats", 1: "nats-2", 2: "nats-3"}[i])
		password, readerPassword = env["OTPSCOPE_NATS_PASSWORD"], env["OTPSCOPE_NATS_READER_PASSWORD"]
		o := loadNATSConfig(t, "cluster.conf", env)
		o.Host, o.Port, o.HTTPPort = "127.0.0.1", -1, 0
		o.Cluster.Host, o.Cluster.Port = "127.0.0.1", routePorts[i]
		// The routes compose gives, on loopback ports: with the credentials
		// they carry, so the nodes join only if those are right.
		for j, r := range o.Routes {
			r.Host = fmt.Sprintf("127.0.0.1:%d", routePorts[j])
		}
		o.StoreDir = t.TempDir()
		o.NoSigs, o.NoLog = true, true
		srv, err := server.NewServer(o)
		if err != nil {
			t.Fatalf("nats-%d: %v", i+1, err)
		}
		srv.Start()
		t.Cleanup(srv.Shutdown)
		if !srv.ReadyForConnections(10 * time.Second) {
			t.Fatalf("nats-%d not ready", i+1)
		}
		urls = append(urls, srv.ClientURL())
	}

	ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
	defer cancel()
	cfg := broker.Config{URL: strings.Join(urls, ","), User: broker.DefaultUser, Password: password, Stream: broker.StreamConfig{
		Name: broker.DefaultStreamName, DuplicateWindow: broker.DefaultDuplicateWindow,
		Replicas: 3, MaxAge: broker.DefaultMaxAge,
	}}
	b, err := broker.Open(ctx, cfg, "deploy-test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("broker on the 3-node cluster: %v", err)
	}
	defer b.Close()

	withUser := func(u, user, pw string) string {
		parsed, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		parsed.User = url.UserPassword(user, pw)
		return parsed.String()
	}
	if nc, err := nats.Connect(urls[1], nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Error("a client without credentials connected to nats-2")
	}
	js := brokertest.JetStreamAt(t, withUser(urls[0], broker.DefaultUser, password))
	if _, err := js.Publish(ctx, "tyntec.2fa.deadletter", []byte(`{}`)); err != nil {
		t.Fatalf("publish to the R3 stream: %v", err)
	}
	checkReader(ctx, t, withUser(urls[2], broker.DefaultReaderUser, readerPassword))
	for {
		st, err := js.Stream(ctx, broker.DefaultStreamName)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		current := 0
		if info.Cluster != nil {
			for _, r := range info.Cluster.Replicas {
				if r.Current {
					current++
				}
			}
		}
		if info.Config.Replicas == 3 && info.Cluster != nil && info.Cluster.Leader != "" && current == 2 && info.State.Msgs == 1 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("stream replicas %d, cluster %+v, messages %d; want R3 with a leader and 2 current followers", info.Config.Replicas, info.Cluster, info.State.Msgs)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// checkReader connects as the reader of nats/auth.conf: it reads the
// stream and subscribes to events, and may not publish one.
func checkReader(ctx context.Context, t *testing.T, u string) {
	t.Helper()
	js := brokertest.JetStreamAt(t, u)
	st, err := js.Stream(ctx, broker.DefaultStreamName)
	if err != nil {
		t.Fatalf("reader: stream info: %v", err)
	}
	if _, err := st.GetMsg(ctx, 1); err != nil {
		t.Errorf("reader: get message 1: %v", err)
	}
	if _, err := js.Conn().Subscribe("tyntec.2fa.>", func(*nats.Msg) {}); err != nil {
		t.Errorf("reader: subscribe: %v", err)
	}
	if err := js.Conn().Flush(); err != nil || js.Conn().LastError() != nil {
		t.Errorf("reader: subscribe to tyntec.2fa.>: %v %v", err, js.Conn().LastError())
	}
	pubCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := js.Publish(pubCtx, "tyntec.2fa.deadletter", []byte(`{}`)); err == nil {
		t.Error("reader published an event")
	}
}

// ---------------------------------------------------------------- Kubernetes

type k8sObject struct {
	file     string
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	node *yaml.Node
}

type deployment struct {
	Spec struct {
		Replicas int `yaml:"replicas"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"metadata"`
			Spec struct {
				SecurityContext struct {
					RunAsNonRoot *bool `yaml:"runAsNonRoot"`
					RunAsUser    *int  `yaml:"runAsUser"`
				} `yaml:"securityContext"`
				Containers []container `yaml:"containers"`
				Volumes    []struct {
					Name   string `yaml:"name"`
					Secret *struct {
						SecretName string `yaml:"secretName"`
						Items      []struct {
							Key  string `yaml:"key"`
							Path string `yaml:"path"`
						} `yaml:"items"`
					} `yaml:"secret"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type container struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Ports   []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef    *keyRef `yaml:"secretKeyRef"`
			ConfigMapKeyRef *keyRef `yaml:"configMapKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	EnvFrom []struct {
		ConfigMapRef *struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
		SecretRef *struct {
			Name string `yaml:"name"`
		} `yaml:"secretRef"`
	} `yaml:"envFrom"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	StartupProbe   *probe `yaml:"startupProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext struct {
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
	} `yaml:"securityContext"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		SubPath   string `yaml:"subPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
}

type keyRef struct {
	Name string `yaml:"name"`
	Key  string `yaml:"key"`
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

// port resolves a named or numbered container port.
func (c *container) port(p string) int {
	for _, cp := range c.Ports {
		if cp.Name == p || strconv.Itoa(cp.ContainerPort) == p {
			return cp.ContainerPort
		}
	}
	return 0
}

// loadManifests reads the objects of the kustomization in dir (under
// deploy/), by kind/name, and the images it sets; the kustomization's
// namespace must be one it creates, or create.
func loadManifests(t *testing.T, dir, create string) (map[string]*k8sObject, []string) {
	t.Helper()
	var kust struct {
		Namespace string   `yaml:"namespace"`
		Resources []string `yaml:"resources"`
		Images    []struct {
			Name string `yaml:"name"`
		} `yaml:"images"`
		Labels []struct {
			Pairs            map[string]string `yaml:"pairs"`
			IncludeSelectors bool              `yaml:"includeSelectors"`
			IncludeTemplates bool              `yaml:"includeTemplates"`
		} `yaml:"labels"`
	}
	if err := yaml.Unmarshal(readFile(t, deployPath(dir, "kustomization.yaml")), &kust); err != nil {
		t.Fatalf("%s/kustomization.yaml: %v", dir, err)
	}
	files, _ := filepath.Glob(deployPath(dir, "*.yaml"))
	for _, f := range files {
		if base := filepath.Base(f); base != "kustomization.yaml" && !slices.Contains(kust.Resources, base) {
			t.Errorf("%s/%s is not listed in kustomization.yaml", dir, base)
		}
	}
	objs := map[string]*k8sObject{}
	for _, res := range kust.Resources {
		res = filepath.Join(dir, res)
		if fi, err := os.Stat(deployPath(res)); err == nil && fi.IsDir() {
			continue // another kustomization: TestKustomizationsBuild builds it
		}
		data := readFile(t, deployPath(res))
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for {
			var n yaml.Node
			if err := dec.Decode(&n); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", res, err)
			}
			o := &k8sObject{file: res, node: &n}
			if err := n.Decode(o); err != nil {
				t.Fatalf("%s: %v", res, err)
			}
			if o.Kind == "" || o.Metadata.Name == "" {
				t.Errorf("%s: a document without kind or name", res)
				continue
			}
			key := o.Kind + "/" + o.Metadata.Name
			if objs[key] != nil {
				t.Errorf("%s is defined twice", key)
			}
			objs[key] = o
		}
	}
	// Every object and every pod carries part-of (kubectl get pods -l
	// app.kubernetes.io/part-of=otpscope); no selector does, as a
	// Deployment's selector cannot change once applied.
	pods := false
	for key := range objs {
		pods = pods || strings.HasPrefix(key, "Deployment/")
	}
	if len(kust.Labels) != 1 || kust.Labels[0].Pairs["app.kubernetes.io/part-of"] != "otpscope" ||
		kust.Labels[0].IncludeTemplates != pods || kust.Labels[0].IncludeSelectors {
		t.Errorf("%s/kustomization.yaml labels: %+v; want part-of: otpscope, includeTemplates where it has pods, no includeSelectors", dir, kust.Labels)
	}
	var images []string
	for _, i := range kust.Images {
		images = append(images, i.Name)
	}
	if kust.Namespace == "" || (kust.Namespace != create && objs["Namespace/"+kust.Namespace] == nil) {
		t.Errorf("kustomization namespace %q is not created by the manifests", kust.Namespace)
	}
	return objs, images
}

func decode[T any](t *testing.T, o *k8sObject) *T {
	t.Helper()
	var v T
	if err := o.node.Decode(&v); err != nil {
		t.Fatalf("%s %s/%s: %v", o.file, o.Kind, o.Metadata.Name, err)
	}
	return &v
}

// checkPrometheusRule holds the PrometheusRule of k8s/monitoring to the
// rules Prometheus loads from prometheus/otpscope-rules.yml, which promtool
// checks and tests (TestPrometheusRules): the same groups.
func checkPrometheusRule(t *testing.T, o *k8sObject) {
	t.Helper()
	pr := decode[struct {
		Spec struct {
			Groups any `yaml:"groups"`
		} `yaml:"spec"`
	}](t, o)
	var file struct {
		Groups any `yaml:"groups"`
	}
	if err := yaml.Unmarshal(readFile(t, deployPath("prometheus", "otpscope-rules.yml")), &file); err != nil {
		t.Fatal(err)
	}
	if file.Groups == nil || !reflect.DeepEqual(pr.Spec.Groups, file.Groups) {
		t.Errorf("PrometheusRule %s: its groups differ from prometheus/otpscope-rules.yml's; copy them over", o.Metadata.Name)
	}
}

// labelSelector is a Kubernetes label selector: matchLabels, and
// matchExpressions with In.
type labelSelector struct {
	MatchLabels      map[string]string `yaml:"matchLabels"`
	MatchExpressions []struct {
		Key      string   `yaml:"key"`
		Operator string   `yaml:"operator"`
		Values   []string `yaml:"values"`
	} `yaml:"matchExpressions"`
}

// selects reports whether s selects a pod labelled labels; an empty
// selector selects none here (the manifests name their pods).
func (s labelSelector) selects(labels map[string]string) bool {
	if len(s.MatchLabels) == 0 && len(s.MatchExpressions) == 0 {
		return false
	}
	for k, v := range s.MatchLabels {
		if labels[k] != v {
			return false
		}
	}
	for _, e := range s.MatchExpressions {
		if e.Operator != "In" || !slices.Contains(e.Values, labels[e.Key]) {
			return false
		}
	}
	return true
}

func labelsMatch(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func TestKubernetes(t *testing.T) {
	objs, images := loadManifests(t, "k8s", "")

	configMaps := map[string]map[string]string{}
	secrets := map[string]map[string]string{}
	for _, o := range objs {
		switch o.Kind {
		case "ConfigMap":
			configMaps[o.Metadata.Name] = decode[struct {
				Data map[string]string `yaml:"data"`
			}](t, o).Data
		case "Secret":
			s := decode[struct {
				StringData map[string]string `yaml:"stringData"`
				Data       map[string]string `yaml:"data"`
			}](t, o)
			if len(s.Data) > 0 {
				t.Errorf("Secret %s has data:; keep placeholders readable in stringData", o.Metadata.Name)
			}
			for k, v := range s.StringData {
				if !strings.Contains(v, "REPLACE_ME") {
					t.Errorf("Secret %s: %s is not a marked placeholder", o.Metadata.Name, k)
				}
			}
			secrets[o.Metadata.Name] = s.StringData
		}
	}

	// A Secret applied with its placeholders is refused at start, not run
	// with a token anyone can read here: each value, as the variable it
	// sets, makes the all-in-one's config check (which reads them all) exit
	// 2 naming the flag.
	vars, checked := envOf(t, "otpscope"), 0
	for name, data := range secrets {
		for k, v := range data {
			if !vars[k] {
				continue
			}
			cmd := exec.Command(filepath.Join(built.dir, "otpscope"), "config")
			cmd.Env = []string{k + "=" + v}
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			flagName := ""
			for f := range flagsOf(t, "otpscope") {
				if flagenv.Name(f) == k {
					flagName = f
				}
			}
			if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), "--"+flagName+": still deploy/'s placeholder") {
				t.Errorf("Secret %s: otpscope config with %s from it = %v:\n%s\nwant exit 2 refusing the placeholder of --%s", name, k, err, out, flagName)
			}
			checked++
		}
	}
	if checked == 0 {
		t.Error("no Secret value is a setting of otpscope; the placeholders went unchecked")
	}

	type pod struct {
		deployment    string
		labels        map[string]string
		c             *container
		public, admin int
		// files maps an OTPSCOPE_*_FILE variable to the Secret item it
		// names, "secret/key".
		files map[string]string
	}
	var pods []pod
	deployments := map[string]*deployment{}
	wantReplicas := map[string]int{"ingest": 2, "poller": 2, "reporter": 2}
	for _, o := range objs {
		if o.Kind != "Deployment" {
			continue
		}
		name := o.Metadata.Name
		d := decode[deployment](t, o)
		deployments[name] = d
		spec := d.Spec.Template.Spec
		if !labelsMatch(d.Spec.Selector.MatchLabels, d.Spec.Template.Metadata.Labels) {
			t.Errorf("Deployment %s: selector %v does not match its pods %v", name, d.Spec.Selector.MatchLabels, d.Spec.Template.Metadata.Labels)
		}
		if d.Spec.Replicas < wantReplicas[name] {
			t.Errorf("Deployment %s: %d replicas; want %d", name, d.Spec.Replicas, wantReplicas[name])
		}
		sc := spec.SecurityContext
		if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
			t.Errorf("Deployment %s: pod securityContext must set runAsNonRoot and a non-zero runAsUser", name)
		}
		for i := range spec.Containers {
			c := &spec.Containers[i]
			public, admin := checkContainer(t, name, c, configMaps, secrets, images)
			pods = append(pods, pod{name, d.Spec.Template.Metadata.Labels, c, public, admin, map[string]string{}})
			files := pods[len(pods)-1].files
			volumes := map[string]bool{}
			for _, v := range spec.Volumes {
				volumes[v.Name] = true
			}
			for _, m := range c.VolumeMounts {
				if !volumes[m.Name] {
					t.Errorf("Deployment %s: mount of undefined volume %s", name, m.Name)
				}
			}
			// A secret given as a file (OTPSCOPE_X_FILE) is an item of a
			// Secret volume mounted read-only without subPath: the kubelet
			// updates such a mount in place, and otpscope reads the file
			// again (README, "Rotating a secret"); a subPath mount never
			// changes.
			for _, e := range c.Env {
				if !strings.HasSuffix(e.Name, flagenv.FileSuffix) || !strings.HasPrefix(e.Name, flagenv.Prefix) {
					continue
				}
				found := false
				for _, m := range c.VolumeMounts {
					rel, ok := strings.CutPrefix(e.Value, m.MountPath+"/")
					if !ok {
						continue
					}
					if m.SubPath != "" || !m.ReadOnly {
						t.Errorf("Deployment %s: %s is on mount %s with subPath %q, readOnly %v; want no subPath, read-only", name, e.Name, m.Name, m.SubPath, m.ReadOnly)
					}
					for _, v := range spec.Volumes {
						if v.Name != m.Name || v.Secret == nil {
							continue
						}
						for _, it := range v.Secret.Items {
							if it.Path != rel {
								continue
							}
							found = true
							files[e.Name] = v.Secret.SecretName + "/" + it.Key
							if _, ok := secrets[v.Secret.SecretName][it.Key]; !ok {
								t.Errorf("Deployment %s: %s is key %s of Secret %s, which has no such key", name, e.Name, it.Key, v.Secret.SecretName)
							}
						}
					}
				}
				if !found {
					t.Errorf("Deployment %s: %s=%s is no item of a mounted Secret volume", name, e.Name, e.Value)
				}
			}
		}
	}
	for name := range wantReplicas {
		if deployments[name] == nil {
			t.Errorf("no Deployment %s", name)
		}
	}

	hpas, pdbs := 0, map[string]bool{}
	for _, o := range objs {
		switch o.Kind {
		case "Service":
			s := decode[struct {
				Spec struct {
					Selector map[string]string `yaml:"selector"`
					Ports    []struct {
						Port       int    `yaml:"port"`
						TargetPort string `yaml:"targetPort"`
					} `yaml:"ports"`
				} `yaml:"spec"`
			}](t, o)
			matched := false
			for _, p := range pods {
				if !labelsMatch(s.Spec.Selector, p.labels) {
					continue
				}
				matched = true
				for _, sp := range s.Spec.Ports {
					target := sp.TargetPort
					if target == "" {
						target = strconv.Itoa(sp.Port)
					}
					if p.c.port(target) == 0 {
						t.Errorf("Service %s: targetPort %s is not a port of container %s", o.Metadata.Name, target, p.c.Name)
					}
				}
			}
			if !matched {
				t.Errorf("Service %s selects no pods", o.Metadata.Name)
			}
		case "HorizontalPodAutoscaler":
			hpas++
			h := decode[struct {
				APIVersion string `yaml:"apiVersion"`
				Spec       struct {
					ScaleTargetRef struct {
						Kind string `yaml:"kind"`
						Name string `yaml:"name"`
					} `yaml:"scaleTargetRef"`
					MinReplicas int `yaml:"minReplicas"`
					MaxReplicas int `yaml:"maxReplicas"`
					Metrics     []struct {
						Resource struct {
							Name string `yaml:"name"`
						} `yaml:"resource"`
					} `yaml:"metrics"`
				} `yaml:"spec"`
			}](t, o)
			ref := h.Spec.ScaleTargetRef
			if ref.Kind != "Deployment" || ref.Name != "ingest" || deployments[ref.Name] == nil {
				t.Errorf("HPA %s scales %s/%s; want Deployment/ingest", o.Metadata.Name, ref.Kind, ref.Name)
			}
			if h.APIVersion != "autoscaling/v2" || h.Spec.MinReplicas < 2 || h.Spec.MaxReplicas <= h.Spec.MinReplicas ||
				len(h.Spec.Metrics) == 0 || h.Spec.Metrics[0].Resource.Name != "cpu" {
				t.Errorf("HPA %s: want autoscaling/v2 on cpu, from at least 2 replicas up", o.Metadata.Name)
			}
		case "PodDisruptionBudget":
			p := decode[struct {
				Spec struct {
					Selector struct {
						MatchLabels map[string]string `yaml:"matchLabels"`
					} `yaml:"selector"`
				} `yaml:"spec"`
			}](t, o)
			for name, d := range deployments {
				if labelsMatch(p.Spec.Selector.MatchLabels, d.Spec.Template.Metadata.Labels) {
					pdbs[name] = true
				}
			}
		}
	}
	if hpas == 0 {
		t.Error("no HorizontalPodAutoscaler for ingest")
	}
	if !pdbs["ingest"] {
		t.Error("no PodDisruptionBudget selects ingest")
	}

	// The admin ports are closed by default: each service takes API tokens
	// and metrics tokens from files of the Secret (a rotation needs no
	// rollout), and no pod invites annotation-based scraping of a /metrics
	// that refuses a scrape without the token.
	for _, p := range pods {
		for _, v := range []string{"OTPSCOPE_API_TOKEN_FILE", "OTPSCOPE_METRICS_TOKEN_FILE"} {
			if p.files[v] == "" {
				t.Errorf("Deployment %s: no %s: its admin port would answer anyone in the cluster", p.deployment, v)
			}
		}
	}
	for name, d := range deployments {
		for k := range d.Spec.Template.Metadata.Annotations {
			if strings.HasPrefix(k, "prometheus.io/") {
				t.Errorf("Deployment %s: annotation %s: Prometheus scrapes with the metrics token (k8s/monitoring), which annotations cannot give", name, k)
			}
		}
	}

	// NetworkPolicies: every pod is selected; the public port of ingest is
	// open to every source (tyntec, through the Ingress), an admin port to
	// none but the sources a rule names, among them a namespace
	// (Prometheus').
	type portKey struct {
		deployment string
		port       int
	}
	open, fromNamespace, policed := map[portKey]bool{}, map[portKey]bool{}, map[string]bool{}
	for _, o := range objs {
		if o.Kind != "NetworkPolicy" {
			continue
		}
		np := decode[struct {
			Spec struct {
				PodSelector labelSelector `yaml:"podSelector"`
				PolicyTypes []string      `yaml:"policyTypes"`
				Ingress     []struct {
					From []struct {
						PodSelector       *labelSelector `yaml:"podSelector"`
						NamespaceSelector *labelSelector `yaml:"namespaceSelector"`
					} `yaml:"from"`
					Ports []struct {
						Port string `yaml:"port"`
					} `yaml:"ports"`
				} `yaml:"ingress"`
			} `yaml:"spec"`
		}](t, o)
		name := o.Metadata.Name
		if !slices.Contains(np.Spec.PolicyTypes, "Ingress") {
			t.Errorf("NetworkPolicy %s: policyTypes %v lack Ingress", name, np.Spec.PolicyTypes)
		}
		selected := false
		for _, p := range pods {
			if !np.Spec.PodSelector.selects(p.labels) {
				continue
			}
			selected, policed[p.deployment] = true, true
			for _, rule := range np.Spec.Ingress {
				if len(rule.Ports) == 0 {
					t.Errorf("NetworkPolicy %s: a rule without ports opens every port of %s", name, p.deployment)
				}
				for _, rp := range rule.Ports {
					port := p.c.port(rp.Port)
					if port == 0 {
						t.Errorf("NetworkPolicy %s: port %s is no port of %s", name, rp.Port, p.deployment)
						continue
					}
					k := portKey{p.deployment, port}
					if len(rule.From) == 0 {
						open[k] = true
					}
					for _, f := range rule.From {
						fromNamespace[k] = fromNamespace[k] || f.NamespaceSelector != nil
					}
				}
			}
		}
		if !selected {
			t.Errorf("NetworkPolicy %s selects no pods", name)
		}
	}
	for _, p := range pods {
		public, admin := portKey{p.deployment, p.public}, portKey{p.deployment, p.admin}
		switch {
		case !policed[p.deployment]:
			t.Errorf("Deployment %s: no NetworkPolicy selects its pods", p.deployment)
		case public != admin && !open[public]:
			t.Errorf("Deployment %s: its public port %d is not open to every source (tyntec, through the Ingress)", p.deployment, p.public)
		case open[admin]:
			t.Errorf("Deployment %s: its admin port %d is open to every source", p.deployment, p.admin)
		case !fromNamespace[admin]:
			t.Errorf("Deployment %s: its admin port %d is closed to Prometheus' namespace", p.deployment, p.admin)
		}
	}

	// The PodMonitors of k8s/monitoring scrape each service's admin port,
	// once, with a metrics token the service accepts.
	monitors, _ := loadManifests(t, filepath.Join("k8s", "monitoring"), "otpscope")
	scraped := map[string]int{}
	rules := 0
	for _, o := range monitors {
		if o.Kind == "PrometheusRule" {
			rules++
			checkPrometheusRule(t, o)
			continue
		}
		if o.Kind != "PodMonitor" {
			t.Errorf("k8s/monitoring: %s/%s; want PodMonitors and a PrometheusRule", o.Kind, o.Metadata.Name)
			continue
		}
		pm := decode[struct {
			Spec struct {
				Selector  labelSelector `yaml:"selector"`
				Endpoints []struct {
					Port          string `yaml:"port"`
					Path          string `yaml:"path"`
					Authorization struct {
						Type        string `yaml:"type"`
						Credentials struct {
							Name string `yaml:"name"`
							Key  string `yaml:"key"`
						} `yaml:"credentials"`
					} `yaml:"authorization"`
				} `yaml:"podMetricsEndpoints"`
			} `yaml:"spec"`
		}](t, o)
		for _, p := range pods {
			if !pm.Spec.Selector.selects(p.labels) {
				continue
			}
			for _, e := range pm.Spec.Endpoints {
				a := e.Authorization
				scraped[p.deployment]++
				if p.c.port(e.Port) != p.admin || e.Path != "/metrics" {
					t.Errorf("PodMonitor %s scrapes %s at port %s path %s; want its admin port %d, /metrics", o.Metadata.Name, p.deployment, e.Port, e.Path, p.admin)
				}
				if cred := a.Credentials.Name + "/" + a.Credentials.Key; a.Type != "Bearer" || cred != p.files["OTPSCOPE_METRICS_TOKEN_FILE"] {
					t.Errorf("PodMonitor %s sends %s %s to %s; want Bearer %s, its OTPSCOPE_METRICS_TOKEN_FILE", o.Metadata.Name, a.Type, cred, p.deployment, p.files["OTPSCOPE_METRICS_TOKEN_FILE"])
				}
			}
		}
	}
	for name := range deployments {
		if scraped[name] != 1 {
			t.Errorf("Deployment %s is scraped by %d PodMonitor endpoints; want 1", name, scraped[name])
		}
	}
	if rules != 1 {
		t.Errorf("k8s/monitoring has %d PrometheusRules; want 1, the alerting rules", rules)
	}

	// The Ingress of k8s/ingress exposes tyntec's webhook path, over TLS, and
	// nothing but ingest's public endpoints, through a Service to ingest's
	// public port (never an admin port).
	ingresses, _ := loadManifests(t, filepath.Join("k8s", "ingress"), "otpscope")
	exposed := map[string]bool{}
	for _, o := range ingresses {
		if o.Kind != "Ingress" {
			t.Errorf("k8s/ingress: %s/%s; want Ingresses only", o.Kind, o.Metadata.Name)
			continue
		}
		ing := decode[struct {
			Spec struct {
				TLS []struct {
					Hosts      []string `yaml:"hosts"`
					SecretName string   `yaml:"secretName"`
				} `yaml:"tls"`
				Rules []struct {
					Host string `yaml:"host"`
					HTTP struct {
						Paths []struct {
							Path     string `yaml:"path"`
							PathType string `yaml:"pathType"`
							Backend  struct {
								Service struct {
									Name string `yaml:"name"`
									Port struct {
										Name string `yaml:"name"`
									} `yaml:"port"`
								} `yaml:"service"`
							} `yaml:"backend"`
						} `yaml:"paths"`
					} `yaml:"http"`
				} `yaml:"rules"`
			} `yaml:"spec"`
		}](t, o)
		for _, rule := range ing.Spec.Rules {
			tls := false
			for _, tl := range ing.Spec.TLS {
				tls = tls || (slices.Contains(tl.Hosts, rule.Host) && tl.SecretName != "")
			}
			if !tls {
				t.Errorf("Ingress %s: host %q has no TLS", o.Metadata.Name, rule.Host)
			}
			for _, path := range rule.HTTP.Paths {
				if !slices.Contains([]string{ingest.WebhookPath, ingest.PushPath, ingest.TrackPath, ingest.SilentPath}, path.Path) || path.PathType != "Exact" {
					t.Errorf("Ingress %s: path %s (%s); want only ingest's endpoints, Exact", o.Metadata.Name, path.Path, path.PathType)
				}
				exposed[path.Path] = true
				svc := objs["Service/"+path.Backend.Service.Name]
				if svc == nil {
					t.Errorf("Ingress %s: %s goes to Service %s, which the manifests lack", o.Metadata.Name, path.Path, path.Backend.Service.Name)
					continue
				}
				s := decode[struct {
					Spec struct {
						Selector map[string]string `yaml:"selector"`
						Ports    []struct {
							Name       string `yaml:"name"`
							TargetPort string `yaml:"targetPort"`
						} `yaml:"ports"`
					} `yaml:"spec"`
				}](t, svc)
				for _, sp := range s.Spec.Ports {
					if sp.Name != path.Backend.Service.Port.Name {
						continue
					}
					for _, p := range pods {
						if labelsMatch(s.Spec.Selector, p.labels) && (p.deployment != "ingest" || p.c.port(sp.TargetPort) != p.public || p.public == p.admin) {
							t.Errorf("Ingress %s: %s reaches %s port %s; want ingest's public port", o.Metadata.Name, path.Path, p.deployment, sp.TargetPort)
						}
					}
				}
			}
		}
	}
	if !exposed[ingest.WebhookPath] {
		t.Errorf("k8s/ingress does not expose %s", ingest.WebhookPath)
	}

	// The NATS cluster the manifests point at has three nodes for their R3 stream.
	var values struct {
		Config struct {
			Cluster struct {
				Enabled  bool `yaml:"enabled"`
				Replicas int  `yaml:"replicas"`
			} `yaml:"cluster"`
			JetStream struct {
				Enabled bool `yaml:"enabled"`
			} `yaml:"jetstream"`
		} `yaml:"config"`
	}
	if err := yaml.Unmarshal(readFile(t, deployPath("k8s", "helm", "nats-values.yaml")), &values); err != nil {
		t.Fatalf("k8s/helm/nats-values.yaml: %v", err)
	}
	r, _ := strconv.Atoi(configMaps["otpscope-common"]["OTPSCOPE_STREAM_REPLICAS"])
	if !values.Config.JetStream.Enabled || !values.Config.Cluster.Enabled || values.Config.Cluster.Replicas < r {
		t.Errorf("nats-values.yaml: JetStream %v, cluster %v of %d; the services want %d stream replicas",
			values.Config.JetStream.Enabled, values.Config.Cluster.Enabled, values.Config.Cluster.Replicas, r)
	}
}

// TestNATSHelmValues writes the NATS configuration k8s/helm/nats-values.yaml
// asks the chart for — its merged authorization and cluster blocks, JSON
// with "<< X >>" unquoted as the chart does, in the environment its
// container.env gives (Secret values from k8s/secret.yaml, $(VAR) expanded
// as Kubernetes does) — and holds it to the embedded server's users.
func TestNATSHelmValues(t *testing.T) {
	var values struct {
		Config struct {
			Merge   map[string]any `yaml:"merge"`
			Cluster struct {
				Replicas int            `yaml:"replicas"`
				Merge    map[string]any `yaml:"merge"`
			} `yaml:"cluster"`
		} `yaml:"config"`
		Container struct {
			Image struct {
				Tag string `yaml:"tag"`
			} `yaml:"image"`
			Env map[string]yaml.Node `yaml:"env"`
		} `yaml:"container"`
	}
	if err := yaml.Unmarshal(readFile(t, deployPath("k8s", "helm", "nats-values.yaml")), &values); err != nil {
		t.Fatalf("k8s/helm/nats-values.yaml: %v", err)
	}
	if want := testedNATSRelease(t) + "-alpine"; values.Container.Image.Tag != want {
		t.Errorf("container.image.tag = %q; want %q, the nats-server release go.mod tests", values.Container.Image.Tag, want)
	}
	var secret struct {
		Metadata struct {
			Name string `yaml:"name"`
		} `yaml:"metadata"`
		StringData map[string]string `yaml:"stringData"`
	}
	if err := yaml.Unmarshal(readFile(t, deployPath("k8s", "secret.yaml")), &secret); err != nil {
		t.Fatalf("k8s/secret.yaml: %v", err)
	}

	// The chart writes env in name order; $(NAME) sees the ones before.
	env := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(values.Container.Env)) {
		n := values.Container.Env[name]
		var v string
		if n.Kind == yaml.ScalarNode {
			v = regexp.MustCompile(`\$\(([A-Za-z0-9_]+)\)`).ReplaceAllStringFunc(n.Value, func(m string) string {
				if d, ok := env[m[2:len(m)-1]]; ok {
					return d
				}
				return m
			})
		} else {
			var ref struct {
				ValueFrom struct {
					SecretKeyRef keyRef `yaml:"secretKeyRef"`
				} `yaml:"valueFrom"`
			}
			if err := n.Decode(&ref); err != nil {
				t.Fatalf("container.env %s: %v", name, err)
			}
			r := ref.ValueFrom.SecretKeyRef
			var ok bool
			if v, ok = secret.StringData[r.Key]; !ok || r.Name != secret.Metadata.Name {
				t.Fatalf("container.env %s: secret %s key %s is not in k8s/secret.yaml", name, r.Name, r.Key)
			}
		}
		env[name] = v
	}

	conf := map[string]any{"authorization": values.Config.Merge["authorization"]}
	cluster := maps.Clone(values.Config.Cluster.Merge)
	cluster["name"], cluster["port"] = "nats", 6222
	conf["cluster"] = cluster
	var js bytes.Buffer // raw JSON: <, > and & not escaped (the chart's toPrettyRawJson)
	enc := json.NewEncoder(&js)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(conf); err != nil {
		t.Fatal(err)
	}
	raw := regexp.MustCompile(`"<<\s+(.*?)\s+>>"`).ReplaceAll(js.Bytes(), []byte("$1"))
	file := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(file, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	o, err := parseNATSConfig(file, env)
	if err != nil {
		t.Fatalf("the chart's configuration from nats-values.yaml: %v\n%s", err, raw)
	}
	checkNATSUsers(t, "nats-values.yaml", o, env)
	if o.Cluster.Username != broker.DefaultUser || o.Cluster.Password != env["OTPSCOPE_NATS_PASSWORD"] {
		t.Errorf("nats-values.yaml: routes accept user %q with password %q; want %q with OTPSCOPE_NATS_PASSWORD", o.Cluster.Username, o.Cluster.Password, broker.DefaultUser)
	}
	if len(o.Routes) != values.Config.Cluster.Replicas {
		t.Errorf("nats-values.yaml: %d routes for %d replicas", len(o.Routes), values.Config.Cluster.Replicas)
	}
	for i, r := range o.Routes {
		pw, _ := r.User.Password()
		if r.User.Username() != o.Cluster.Username || pw != o.Cluster.Password || r.Hostname() != fmt.Sprintf("nats-%d.nats-headless", i) {
			t.Errorf("nats-values.yaml: route %s; want nats-%d.nats-headless as the cluster's user", r.Redacted(), i)
		}
	}
}

// checkContainer checks one container of Deployment dep and returns the
// ports of its public and its admin listener (the same port for a service
// with one listener).
func checkContainer(t *testing.T, dep string, c *container, configMaps, secrets map[string]map[string]string, images []string) (public, admin int) {
	t.Helper()
	what := "Deployment " + dep + " container " + c.Name
	if !slices.Contains(images, c.Image) {
		t.Errorf("%s: image %q is not set by kustomization images:", what, c.Image)
	}
	if len(c.Command) == 0 {
		t.Fatalf("%s: no command: the image holds several binaries", what)
	}
	bin, ok := strings.CutPrefix(c.Command[0], "/usr/local/bin/")
	if !ok {
		t.Errorf("%s: command %q; the Dockerfile installs binaries in /usr/local/bin", what, c.Command[0])
	}
	vars := envOf(t, bin)

	env := map[string]string{}
	for _, ef := range c.EnvFrom {
		var kind, name string
		var from map[string]map[string]string
		switch {
		case ef.ConfigMapRef != nil:
			kind, name, from = "ConfigMap", ef.ConfigMapRef.Name, configMaps
		case ef.SecretRef != nil:
			kind, name, from = "Secret", ef.SecretRef.Name, secrets
		default:
			continue
		}
		data, ok := from[name]
		if !ok {
			t.Errorf("%s: %s %s does not exist", what, kind, name)
		}
		maps.Copy(env, data)
	}
	for _, e := range c.Env {
		env[e.Name] = e.Value
		if e.ValueFrom == nil {
			continue
		}
		if r := e.ValueFrom.SecretKeyRef; r != nil {
			if v, ok := secrets[r.Name][r.Key]; ok {
				env[e.Name] = v
			} else {
				t.Errorf("%s: %s refers to missing key %s of Secret %s", what, e.Name, r.Key, r.Name)
			}
		}
		if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
			if v, ok := configMaps[r.Name][r.Key]; ok {
				env[e.Name] = v
			} else {
				t.Errorf("%s: %s refers to missing key %s of ConfigMap %s", what, e.Name, r.Key, r.Name)
			}
		}
	}
	for k := range env {
		if strings.HasPrefix(k, "OTPSCOPE_") && !vars[k] {
			t.Errorf("%s: %s is not a flag of %s", what, k, bin)
		}
	}
	flags := flagsOf(t, bin)
	for _, a := range append(c.Command[1:], c.Args...) {
		if fl, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "="); strings.HasPrefix(a, "-") && !flags[fl] {
			t.Errorf("%s: %s is not a flag of %s", what, a, bin)
		}
	}

	listen := env["OTPSCOPE_LISTEN"]
	if listen == "" {
		t.Errorf("%s: no OTPSCOPE_LISTEN: it would listen on 127.0.0.1 only", what)
		return 0, 0
	}
	if host, _, _ := net.SplitHostPort(listen); host != "0.0.0.0" && host != "" {
		t.Errorf("%s: OTPSCOPE_LISTEN=%s is not reachable from other pods", what, listen)
	}
	port := portOf(t, what, listen)
	wantPorts := []int{port}
	if admin := env["OTPSCOPE_ADMIN_LISTEN"]; admin != "" {
		wantPorts = append(wantPorts, portOf(t, what, admin))
	}
	var ports []int
	for _, p := range c.Ports {
		ports = append(ports, p.ContainerPort)
	}
	if !slices.Equal(ports, wantPorts) {
		t.Errorf("%s: container ports %+v; want those it listens on (public first, then admin), %v", what, c.Ports, wantPorts)
	}
	for _, p := range []struct {
		name string
		pr   *probe
		path string
	}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}, {"startup", c.StartupProbe, "/healthz"}} {
		if p.pr == nil {
			if p.name != "startup" {
				t.Errorf("%s: no %s probe", what, p.name)
			}
			continue
		}
		if p.pr.HTTPGet == nil || p.pr.HTTPGet.Path != p.path || c.port(p.pr.HTTPGet.Port) != port {
			t.Errorf("%s: %s probe %+v; want GET %s on port %d", what, p.name, p.pr.HTTPGet, p.path, port)
		}
	}
	for _, r := range []string{"cpu", "memory"} {
		if c.Resources.Requests[r] == "" {
			t.Errorf("%s: no %s request", what, r)
		}
	}
	if c.Resources.Limits["memory"] == "" {
		t.Errorf("%s: no memory limit", what)
	}
	sc := c.SecurityContext
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("%s: want allowPrivilegeEscalation: false", what)
	}
	if sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem {
		dataDir := imageDataDir
		if v := env["OTPSCOPE_DATA_DIR"]; v != "" {
			dataDir = v
		}
		mounted := false
		for _, m := range c.VolumeMounts {
			mounted = mounted || m.MountPath == dataDir
		}
		if !mounted {
			t.Errorf("%s: read-only root filesystem but nothing writable at the data directory %s", what, dataDir)
		}
	}
	return port, wantPorts[len(wantPorts)-1]
}

// ---------------------------------------------------------------- ClickHouse

var (
	createTable  = regexp.MustCompile("(?s)^CREATE TABLE IF NOT EXISTS (\\w+) ON CLUSTER `(\\w+)`")
	createView   = regexp.MustCompile("(?s)^CREATE MATERIALIZED VIEW IF NOT EXISTS (\\w+) ON CLUSTER `(\\w+)`\\s+TO (\\w+) AS\\s.*\\bFROM (\\w+)")
	engineOf     = regexp.MustCompile(`(?m)^ENGINE = (\w+)\((.*)\)`)
	distEngine   = regexp.MustCompile("^`(\\w+)`, currentDatabase\\(\\), (\\w+), (.+)$")
	alterTable   = regexp.MustCompile("^ALTER TABLE (\\w+) ON CLUSTER `(\\w+)`")
	columnChange = regexp.MustCompile(`^(ADD|DROP|MODIFY|RENAME) COLUMN `)
	dropView     = regexp.MustCompile("^DROP VIEW IF EXISTS (\\w+) ON CLUSTER `(\\w+)`")
	dropTable    = regexp.MustCompile("^DROP TABLE IF EXISTS (\\w+) ON CLUSTER `(\\w+)` SYNC$")
	replPath     = regexp.MustCompile(`^'/clickhouse/tables/\{shard\}/\{database\}/(\w+)', '\{replica\}'`)
)

const clusterName = "otpscope"

// TestClusterSchema checks the cluster variant the services apply with
// --clickhouse-cluster otpscope: every local table is Replicated*MergeTree
// with a replica path of its own, and has a Distributed twin under the plain
// name over the same cluster, sharded by otp_id.
func TestClusterSchema(t *testing.T) {
	migrations, err := schema.Migrations(schema.Options{Cluster: clusterName})
	if err != nil {
		t.Fatal(err)
	}
	local := map[string]bool{}       // *_local tables
	hasOTP := map[string]bool{}      // … with an otp_id column
	hasAttempt := map[string]bool{}  // … or a method attempt's (attempt_uuid, its otp_id in channel_events)
	hasDay := map[string]bool{}      // … or a day column (daily rollups)
	hasHour := map[string]bool{}     // … or an hour column (hourly rollups)
	distributed := map[string]bool{} // their twins
	views := 0
	for _, m := range migrations {
		columnChanges := map[string]int{} // table and change: +1 each *_local, -1 each twin
		for _, st := range m.Statements {
			body := stripComments(st)
			if strings.HasPrefix(body, "INSERT") {
				continue
			}
			if a := alterTable.FindStringSubmatch(body); a != nil {
				// A column a *_local table gains, loses or changes, its
				// Distributed twin must too (inserts through it name the
				// columns), in the same migration; nothing else alters a twin.
				change := strings.TrimSpace(body[len(a[0]):])
				tb, isLocal := strings.CutSuffix(a[1], "_local")
				switch {
				case columnChange.MatchString(change) && isLocal:
					columnChanges[tb+" "+change]++
				case columnChange.MatchString(change):
					columnChanges[tb+" "+change]--
				case !isLocal:
					t.Errorf("%04d: ALTER TABLE %s %s: only column changes go to a Distributed table", m.Version, a[1], change)
				}
				if a[2] != clusterName {
					t.Errorf("%04d: ALTER TABLE %s ON CLUSTER %s: want the cluster %s", m.Version, a[1], a[2], clusterName)
				}
				continue
			}
			if d := dropView.FindStringSubmatch(body); d != nil {
				if d[2] != clusterName || !strings.HasSuffix(d[1], "_local") {
					t.Errorf("%04d: DROP VIEW %s ON CLUSTER %s: want a *_local view on the cluster", m.Version, d[1], d[2])
				}
				continue
			}
			if d := dropTable.FindStringSubmatch(body); d != nil {
				// A table goes with its twin: the pairing checks below
				// hold what is left.
				if d[2] != clusterName {
					t.Errorf("%04d: DROP TABLE %s ON CLUSTER %s; want %s", m.Version, d[1], d[2], clusterName)
				}
				if tb, ok := strings.CutSuffix(d[1], "_local"); ok {
					delete(local, tb)
				} else {
					delete(distributed, d[1])
				}
				continue
			}
			if v := createView.FindStringSubmatch(body); v != nil {
				views++
				if v[2] != clusterName || !strings.HasSuffix(v[1], "_local") || !strings.HasSuffix(v[3], "_local") || !strings.HasSuffix(v[4], "_local") {
					t.Errorf("%04d: view %s ON CLUSTER %s TO %s FROM %s: want a *_local view from and to *_local tables, so each shard aggregates its own rows", m.Version, v[1], v[2], v[3], v[4])
				}
				continue
			}
			c := createTable.FindStringSubmatch(body)
			if c == nil {
				t.Errorf("%04d: statement is neither CREATE TABLE … ON CLUSTER nor a view:\n%s", m.Version, body)
				continue
			}
			if c[2] != clusterName {
				t.Errorf("%04d: %s ON CLUSTER %s; want %s", m.Version, c[1], c[2], clusterName)
			}
			e := engineOf.FindStringSubmatch(body)
			if e == nil {
				t.Errorf("%04d: %s has no ENGINE", m.Version, c[1])
				continue
			}
			switch {
			case e[1] == "Distributed":
				d := distEngine.FindStringSubmatch(e[2])
				// One OTP's journey on one shard: tables with an otp_id shard by it,
				// method attempts by the id they take there; daily rollups by day,
				// hourly ones by hour; alerts by their id, so that one stored twice
				// collapses on its shard.
				key := "rand()"
				switch {
				case c[1] == "alerts":
					key = "cityHash64(event_id)"
				case hasOTP[c[1]]:
					key = "cityHash64(otp_id)"
				case hasAttempt[c[1]]:
					key = "cityHash64(attempt_uuid)"
				case hasDay[c[1]]:
					key = "toUInt64(day)"
				case hasHour[c[1]]:
					key = "cityHash64(hour)"
				}
				if d == nil || d[1] != clusterName || d[2] != c[1]+"_local" || d[3] != key {
					t.Errorf("%04d: %s = Distributed(%s); want Distributed(`%s`, currentDatabase(), %s_local, %s)", m.Version, c[1], e[2], clusterName, c[1], key)
				}
				if !strings.Contains(body, " AS "+c[1]+"_local") {
					t.Errorf("%04d: Distributed %s does not take its columns from %s_local", m.Version, c[1], c[1])
				}
				distributed[c[1]] = true
			case strings.HasPrefix(e[1], "Replicated") && strings.HasSuffix(e[1], "MergeTree"):
				p := replPath.FindStringSubmatch(e[2])
				if p == nil || p[1] != c[1] || !strings.HasSuffix(c[1], "_local") {
					t.Errorf("%04d: %s = %s(%s); want a *_local table at '/clickhouse/tables/{shard}/{database}/<table>', '{replica}'", m.Version, c[1], e[1], e[2])
				}
				local[strings.TrimSuffix(c[1], "_local")] = true
				hasOTP[strings.TrimSuffix(c[1], "_local")] = regexp.MustCompile(`(?m)^\s+otp_id\s`).MatchString(body)
				hasDay[strings.TrimSuffix(c[1], "_local")] = regexp.MustCompile(`(?m)^\s+day\s`).MatchString(body)
				hasAttempt[strings.TrimSuffix(c[1], "_local")] = regexp.MustCompile(`(?m)^\s+attempt_uuid\s`).MatchString(body)
				hasHour[strings.TrimSuffix(c[1], "_local")] = regexp.MustCompile(`(?m)^\s+hour\s`).MatchString(body)
			default:
				t.Errorf("%04d: %s has engine %s; want Replicated*MergeTree or Distributed", m.Version, c[1], e[1])
			}
		}
		for change, n := range columnChanges {
			if n != 0 {
				t.Errorf("%04d: ALTER TABLE %s: made to the *_local table and its Distributed twin %+d times apart; want both", m.Version, change, n)
			}
		}
	}
	for tb := range local {
		if !distributed[tb] {
			t.Errorf("%s_local has no Distributed table %s", tb, tb)
		}
	}
	for tb := range distributed {
		if !local[tb] {
			t.Errorf("Distributed %s has no %s_local", tb, tb)
		}
	}
	if len(local) == 0 || views == 0 {
		t.Errorf("%d local tables, %d views", len(local), views)
	}

	// deploy/clickhouse defines the cluster and macros the DDL names.
	cfg := string(readFile(t, deployPath("clickhouse", "config.d", "cluster.xml")))
	for _, want := range []string{"<" + clusterName + ">", `<shard from_env=`, `<replica from_env=`, "<zookeeper>", "<distributed_ddl>", "<internal_replication>true</internal_replication>"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("clickhouse/config.d/cluster.xml lacks %s", want)
		}
	}
	mustExist(t, "ClickHouse Keeper configuration", deployPath("clickhouse", "keeper.xml"))
}

func stripComments(st string) string {
	var out []string
	for _, l := range strings.Split(st, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "--") {
			out = append(out, l)
		}
	}
	return strings.TrimSpace(strings.Join(out, "\n"))
}

// clusterEngine sets up the embedded engine of this test binary with a
// configuration that gives it a cluster: chDB is ClickHouse without a server,
// so it has no cluster of its own. It loads deploy/clickhouse/config.d/cluster.xml
// as is, plus (config.d/zz-test.xml) an in-memory Keeper (testkeeper) and a
// one-shard cluster whose only replica is this process.
func clusterEngine(dir string) ([]chdb.Option, error) {
	cfgDir := filepath.Join(dir, "etc")
	if err := os.MkdirAll(filepath.Join(cfgDir, "config.d"), 0o755); err != nil {
		return nil, err
	}
	cluster, err := os.ReadFile(deployPath("clickhouse", "config.d", "cluster.xml"))
	if err != nil {
		return nil, err
	}
	for name, text := range map[string][]byte{
		"config.xml":           []byte("<clickhouse></clickhouse>\n"),
		"config.d/cluster.xml": cluster,
		"config.d/zz-test.xml": []byte(testConfig),
	} {
		if err := os.WriteFile(filepath.Join(cfgDir, name), text, 0o644); err != nil {
			return nil, err
		}
	}
	// cluster.xml takes these from the environment, per node.
	os.Setenv("CLICKHOUSE_SHARD", testShard)
	os.Setenv("CLICKHOUSE_REPLICA", testReplica)
	os.Setenv("CLICKHOUSE_CLUSTER_SECRET", "deploy-test")
	return []chdb.Option{chdb.WithSetting("config-file", filepath.Join(cfgDir, "config.xml"))}, nil
}

const (
	localCluster = "otpscope_local" // one shard: this process
	// twoShards has two shards, each this process: a Distributed table reads
	// every row twice, and ClickHouse plans its queries as on a cluster.
	twoShards   = "otpscope_two"
	testShard   = "01"
	testReplica = "ch-1"
)

const testConfig = `<clickhouse>
    <tcp_port>9000</tcp_port>
    <zookeeper replace="replace"><implementation>testkeeper</implementation></zookeeper>
    <remote_servers>
        <` + localCluster + `>
            <shard>
                <internal_replication>true</internal_replication>
                <replica><host>localhost</host><port>9000</port></replica>
            </shard>
        </` + localCluster + `>
        <` + twoShards + `>
            <shard><replica><host>localhost</host><port>9000</port></replica></shard>
            <shard><replica><host>localhost</host><port>9000</port></replica></shard>
        </` + twoShards + `>
    </remote_servers>
</clickhouse>
`

// runSchema runs in db the migrations for cluster, each statement as edit
// rewrites it and none that edit drops; report (t.Errorf or t.Fatalf) names
// a statement that fails.
func runSchema(t *testing.T, e *chdb.Engine, db, cluster string, report func(string, ...any), edit func(st string) (string, bool)) {
	t.Helper()
	migrations, err := schema.Migrations(schema.Options{Cluster: cluster})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range migrations {
		for _, st := range m.Statements {
			st, ok := edit(st)
			if !ok {
				continue
			}
			if _, err := query(t, e, db, st); err != nil {
				report("%04d_%s: %v\n%s", m.Version, m.Name, err, st)
			}
		}
	}
}

func query(t *testing.T, e *chdb.Engine, db, sql string) (string, error) {
	t.Helper()
	res, err := e.Exec(t.Context(), chdb.Statement{SQL: sql, Format: "TSV", Database: db})
	return strings.TrimSpace(string(res.Data)), err
}

func mustQuery(t *testing.T, e *chdb.Engine, db, sql string) string {
	t.Helper()
	out, err := query(t, e, db, sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

func database(t *testing.T, e *chdb.Engine, name string) string {
	t.Helper()
	mustQuery(t, e, "", "CREATE DATABASE "+name)
	t.Cleanup(func() {
		// Dropped before the engine closes: chDB crashes closing with
		// replicated tables still attached.
		if _, err := e.Query(context.Background(), "DROP DATABASE IF EXISTS "+name+" SYNC", ""); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
	})
	return name
}

var onCluster = regexp.MustCompile(" ON CLUSTER `\\w+`")

// TestClusterSchemaOnEngine runs the cluster DDL on the embedded engine. What
// the engine accepts:
//   - deploy/clickhouse/config.d/cluster.xml: the cluster otpscope (2 shards
//     of 2 replicas) and the {shard}/{replica} macros from the environment;
//   - every CREATE of the cluster schema once ON CLUSTER is taken out, the
//     Replicated*MergeTree tables included (their Keeper is chDB's in-memory
//     testkeeper) and the Distributed tables over the real cluster definition.
//
// What it cannot do: run ON CLUSTER (chDB has no distributed DDL worker:
// "Replicated DDL queries are disabled"), or write to a replicated table (its
// replicas never leave read-only mode without a server, and an insert waits
// minutes before failing). So the data path is run on the same DDL with the
// local tables' engines unreplicated and the Distributed tables over a
// one-shard cluster of this process.
func TestClusterSchemaOnEngine(t *testing.T) {
	e := chdbtest.Open(t)

	t.Run("config", func(t *testing.T) {
		got := mustQuery(t, e, "", "SELECT shard_num, replica_num, host_name, port FROM system.clusters WHERE cluster = '"+clusterName+"' ORDER BY shard_num, replica_num")
		want := "1\t1\tch-1\t9000\n1\t2\tch-2\t9000\n2\t1\tch-3\t9000\n2\t2\tch-4\t9000"
		if got != want {
			t.Errorf("system.clusters for %s:\n%s\nwant:\n%s", clusterName, got, want)
		}
		got = mustQuery(t, e, "", "SELECT macro, substitution FROM system.macros WHERE macro IN ('shard', 'replica') ORDER BY macro")
		if want := "replica\t" + testReplica + "\nshard\t" + testShard; got != want {
			t.Errorf("system.macros:\n%s\nwant:\n%s", got, want)
		}
	})

	t.Run("replicated", func(t *testing.T) {
		db := database(t, e, "deploy_cluster_ddl")
		if _, err := query(t, e, db, "CREATE TABLE probe ON CLUSTER `"+clusterName+"` (x UInt8) ENGINE = Memory"); err == nil {
			t.Error("the engine ran ON CLUSTER DDL; run the schema with it unchanged")
		} else {
			t.Logf("ON CLUSTER on the embedded engine: %v", err)
		}
		runSchema(t, e, db, clusterName, t.Errorf, func(st string) (string, bool) {
			if b := stripComments(st); strings.HasPrefix(b, "INSERT") || strings.HasPrefix(b, "ALTER") {
				return "", false // backfills and index changes write to a replicated table: see the doc comment
			}
			return onCluster.ReplaceAllString(st, ""), true
		})
		got := mustQuery(t, e, db, "SELECT name, engine FROM system.tables WHERE database = currentDatabase() ORDER BY name")
		t.Logf("created:\n%s", got)
		paths := mustQuery(t, e, db, "SELECT zookeeper_path FROM system.replicas WHERE database = currentDatabase() AND table = 'delivery_events_local'")
		if want := "/clickhouse/tables/" + testShard + "/" + db + "/delivery_events_local"; paths != want {
			t.Errorf("replica path %q; want %q (macros substituted)", paths, want)
		}
	})

	t.Run("data", func(t *testing.T) {
		db := database(t, e, "deploy_cluster_data")
		unreplicated := regexp.MustCompile(`Replicated(\w*MergeTree)\('[^']*', '\{replica\}'(?:, )?`)
		runSchema(t, e, db, localCluster, t.Fatalf, func(st string) (string, bool) {
			return unreplicated.ReplaceAllString(onCluster.ReplaceAllString(st, ""), "$1("), true
		})
		otp := "a4762c77-94cb-43d6-bbab-9f37e088ad11"
		mustQuery(t, e, db, `INSERT INTO delivery_events (event_id, otp_id, channel, status, event_time, received_at, source)
SETTINGS distributed_foreground_insert = 1 VALUES
('e1', '`+otp+`', 'SMS', 'DISPATCHED', '2026-11-22 03:00:00', now64(3), 'webhook'),
('e2', '`+otp+`', 'SMS', 'DELIVERED', '2026-11-22 03:00:04', now64(3), 'webhook'),
('e2', '`+otp+`', 'SMS', 'DELIVERED', '2026-11-22 03:00:04', now64(3), 'webhook')`)
		if got := mustQuery(t, e, db, "SELECT count() FROM delivery_events_local FINAL"); got != "2" {
			t.Errorf("delivery_events_local FINAL has %s rows after a Distributed insert; want 2", got)
		}
		got := mustQuery(t, e, db, `SELECT channel, length(groupUniqArrayArray(events)), dateDiff('second', min(first_at), max(arrayMax(x -> x.1, events)))
FROM channel_events GROUP BY otp_id, channel`)
		if got != "SMS\t2\t4" {
			t.Errorf("channel_events through the Distributed table: %q; want SMS with 2 facts 4 s apart (the view fed the local table, the duplicate once)", got)
		}
		if got := mustQuery(t, e, db, "SELECT uniqExact(hour), min(hour), max(hour) FROM rollup_dirty"); got != "49\t2026-11-21 03:00:00\t2026-11-23 03:00:00" {
			t.Errorf("rollup_dirty through the Distributed table: %q; want the 49 hours within a day of 03:00 (the view marked the local table)", got)
		}
	})
}

// TestGrafanaDataSources holds the data sources' settings to the reporter's:
// in docker-compose.yml both read the ClickHouse the reporter writes (its
// DSN's host, port and database; as their own read-only user,
// TestGrafanaReadsClickHouseReadOnly), the Kubernetes secret's DSN has the
// same host, native port and database, and the Grafana-only compose file
// points at no service it does not define.
func TestGrafanaDataSources(t *testing.T) {
	f := loadCompose(t, "docker-compose.yml")
	g, r := f.Services["grafana"], f.Services["reporter"]
	if g == nil || r == nil {
		t.Fatal("docker-compose.yml lacks grafana or reporter")
	}
	dsn, err := url.Parse(strings.ReplaceAll(r.Environment["OTPSCOPE_CLICKHOUSE_DSN"], "${CLICKHOUSE_PASSWORD}", "p"))
	if err != nil {
		t.Fatal(err)
	}
	db := strings.TrimPrefix(dsn.Path, "/")
	env := g.Environment
	for k, want := range map[string]string{
		"OTPSCOPE_CLICKHOUSE_SERVER_HOST": dsn.Hostname(), "OTPSCOPE_CLICKHOUSE_SERVER_PORT": dsn.Port(), "OTPSCOPE_CLICKHOUSE_SERVER_DATABASE": db,
		"OTPSCOPE_CLICKHOUSE_HOST": dsn.Hostname(), "OTPSCOPE_CLICKHOUSE_PORT": "8123", "OTPSCOPE_CLICKHOUSE_DATABASE": db,
	} {
		if env[k] != want {
			t.Errorf("docker-compose.yml grafana %s = %q; the reporter's DSN says %q", k, env[k], want)
		}
	}
	if f.Services[dsn.Hostname()] == nil {
		t.Errorf("the reporter's DSN names host %q, which compose does not define", dsn.Hostname())
	}

	var secret struct {
		StringData map[string]string `yaml:"stringData"`
	}
	if err := yaml.Unmarshal(readFile(t, deployPath("k8s", "secret.yaml")), &secret); err != nil {
		t.Fatal(err)
	}
	k, err := url.Parse(secret.StringData["OTPSCOPE_CLICKHOUSE_DSN"])
	if err != nil {
		t.Fatal(err)
	}
	if k.Hostname() != dsn.Hostname() || k.Port() != dsn.Port() || k.Path != dsn.Path || k.User.Username() != dsn.User.Username() {
		t.Errorf("k8s DSN %s and compose DSN %s differ beyond the password", k.Redacted(), dsn.Redacted())
	}

	alone := loadCompose(t, filepath.Join("grafana", "docker-compose.yaml"))
	expand := regexp.MustCompile(`^\$\{[A-Z_]+:-([^}]*)\}$`)
	for _, v := range []string{"OTPSCOPE_CLICKHOUSE_HOST", "OTPSCOPE_CLICKHOUSE_SERVER_HOST"} {
		host := alone.Services["grafana"].Environment[v]
		if m := expand.FindStringSubmatch(host); m != nil {
			host = m[1]
		}
		if alone.Services[host] == nil && host != "host.docker.internal" {
			t.Errorf("grafana/docker-compose.yaml %s = %q: no such service there", v, host)
		}
	}
	for _, v := range []string{"OTPSCOPE_CLICKHOUSE_PORT", "OTPSCOPE_CLICKHOUSE_SERVER_PORT", "OTPSCOPE_PROMETHEUS_URL"} {
		if m := expand.FindStringSubmatch(alone.Services["grafana"].Environment[v]); m == nil || m[1] == "" {
			t.Errorf("grafana/docker-compose.yaml %s has no default", v)
		}
	}

	// The Prometheus data source reads, by default, the prometheus service
	// of docker-compose.yml, or one on the host beside Grafana alone.
	for file, c := range map[string]*composeFile{"docker-compose.yml": f, "grafana/docker-compose.yaml": alone} {
		m := expand.FindStringSubmatch(c.Services["grafana"].Environment["OTPSCOPE_PROMETHEUS_URL"])
		if m == nil {
			t.Errorf("%s: grafana's OTPSCOPE_PROMETHEUS_URL has no default", file)
			continue
		}
		u, err := url.Parse(m[1])
		if err != nil {
			t.Errorf("%s: OTPSCOPE_PROMETHEUS_URL: %v", file, err)
			continue
		}
		if s := c.Services[u.Hostname()]; (s == nil || !strings.HasPrefix(s.Image, "prom/prometheus:")) && u.Hostname() != "host.docker.internal" {
			t.Errorf("%s: OTPSCOPE_PROMETHEUS_URL %s: no prometheus service there", file, m[1])
		}
	}
	if u := f.Services["grafana"].Environment["OTPSCOPE_PROMETHEUS_URL"]; !strings.Contains(u, "//prometheus:") {
		t.Errorf("docker-compose.yml: grafana's OTPSCOPE_PROMETHEUS_URL %q; want its prometheus service by default", u)
	}
}

// ---------------------------------------------------------------- Prometheus

// promtool is Prometheus' own, put in place by make setup-test.
func promtool(t *testing.T) string {
	return tooltest.Program(t, "OTPSCOPE_PROMTOOL", "promtool/promtool")
}

// TestPrometheusRules holds deploy/prometheus/otpscope-rules.yml to what
// Prometheus accepts and to its unit tests, run by Prometheus' rule engine,
// and to otpscope's metrics: each rule reads only metrics the README names
// (internal/app's TestREADMEListsEveryMetric holds those to the binaries),
// has a severity and says what is wrong, and fires in a unit test.
func TestPrometheusRules(t *testing.T) {
	dir := filepath.Join(repoRoot, "deploy", "prometheus")
	bin := promtool(t)
	for _, args := range [][]string{{"check", "rules", "otpscope-rules.yml"}, {"test", "rules", "otpscope-rules.test.yml"}} {
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	// check config wants the scrape jobs' credentials file, which compose
	// mounts at /run/secrets: checked in a copy naming one of the test's.
	copyDir := t.TempDir()
	token := filepath.Join(copyDir, "metrics_token")
	config := strings.ReplaceAll(string(readFile(t, filepath.Join(dir, "prometheus.yml"))), "/run/secrets/metrics_token", token)
	for name, data := range map[string][]byte{"prometheus.yml": []byte(config), "otpscope-rules.yml": readFile(t, filepath.Join(dir, "otpscope-rules.yml")), "metrics_token": []byte("metrics-token-0123456789\n")} {
		if err := os.WriteFile(filepath.Join(copyDir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, "check", "config", "prometheus.yml")
	cmd.Dir = copyDir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check config prometheus.yml: %v\n%s", err, out)
	}

	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	readYAML(t, filepath.Join(dir, "otpscope-rules.yml"), &rules)
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	readYAML(t, filepath.Join(dir, "otpscope-rules.test.yml"), &tests)
	fires := map[string]bool{}
	for _, tc := range tests.Tests {
		for _, at := range tc.AlertRuleTest {
			if len(at.ExpAlerts) > 0 {
				fires[at.Alertname] = true
			}
		}
	}
	readme, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	metric := regexp.MustCompile(`\botpscope_[a-z_]+`)
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			n++
			if !regexp.MustCompile(`^Otpscope[A-Z]\w+$`).MatchString(r.Alert) {
				t.Errorf("rule %q: want an alert named Otpscope…", r.Alert)
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" && s != "info" {
				t.Errorf("%s: severity %q; want critical, warning or info", r.Alert, s)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: want a summary and a description", r.Alert)
			}
			if !fires[r.Alert] {
				t.Errorf("%s: no unit test in otpscope-rules.test.yml where it fires", r.Alert)
			}
			for _, m := range metric.FindAllString(r.Expr, -1) {
				if !bytes.Contains(readme, []byte("`"+m+"`")) {
					t.Errorf("%s reads %s, which the README's metrics do not name", r.Alert, m)
				}
			}
		}
	}
	if n < 10 {
		t.Errorf("%d rules; want the file's", n)
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// The namespace enforces the restricted Pod Security Standard; the NATS
// chart's pods do not meet it unless nats-values.yaml says so, and one
// recreated after the label (a drain, an upgrade) would be refused. Each
// container the chart runs (the server, its config reloader) drops every
// capability and cannot escalate; the pod runs as a non-root user with
// the runtime's seccomp profile; the chart's toolbox is off. JetStream's
// own limit leaves room on its volume, and the stream's bound
// (configmap.yaml) leaves room in it for the KV buckets.
func TestNATSHelmValuesMeetTheNamespacesPodSecurity(t *testing.T) {
	var ns struct {
		Metadata struct {
			Labels map[string]string `yaml:"labels"`
		} `yaml:"metadata"`
	}
	if err := yaml.Unmarshal(readFile(t, deployPath("k8s", "namespace.yaml")), &ns); err != nil {
		t.Fatal(err)
	}
	if ns.Metadata.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Skipf("k8s/namespace.yaml enforces %q, not restricted: nothing to meet", ns.Metadata.Labels["pod-security.kubernetes.io/enforce"])
	}
	type containerSC struct {
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	}
	type merged struct {
		Merge struct {
			SecurityContext containerSC `yaml:"securityContext"`
		} `yaml:"merge"`
	}
	var values struct {
		Config struct {
			JetStream struct {
				FileStore struct {
					PVC struct {
						Size string `yaml:"size"`
					} `yaml:"pvc"`
					MaxSize string `yaml:"maxSize"`
				} `yaml:"fileStore"`
			} `yaml:"jetstream"`
		} `yaml:"config"`
		PodTemplate struct {
			Merge struct {
				Spec struct {
					SecurityContext struct {
						RunAsNonRoot   *bool `yaml:"runAsNonRoot"`
						RunAsUser      *int  `yaml:"runAsUser"`
						FSGroup        *int  `yaml:"fsGroup"`
						SeccompProfile struct {
							Type string `yaml:"type"`
						} `yaml:"seccompProfile"`
					} `yaml:"securityContext"`
				} `yaml:"spec"`
			} `yaml:"merge"`
		} `yaml:"podTemplate"`
		Container    merged `yaml:"container"`
		Reloader     merged `yaml:"reloader"`
		PromExporter struct {
			Enabled bool `yaml:"enabled"`
		} `yaml:"promExporter"`
		NatsBox struct {
			Enabled *bool `yaml:"enabled"`
		} `yaml:"natsBox"`
	}
	if err := yaml.Unmarshal(readFile(t, deployPath("k8s", "helm", "nats-values.yaml")), &values); err != nil {
		t.Fatal(err)
	}
	pod := values.PodTemplate.Merge.Spec.SecurityContext
	if pod.RunAsNonRoot == nil || !*pod.RunAsNonRoot || pod.RunAsUser == nil || *pod.RunAsUser == 0 || pod.FSGroup == nil || pod.SeccompProfile.Type != "RuntimeDefault" {
		t.Errorf("nats-values.yaml podTemplate.merge.spec.securityContext %+v; want runAsNonRoot, a non-zero runAsUser, an fsGroup for the volume, seccompProfile RuntimeDefault", pod)
	}
	for name, c := range map[string]merged{"container": values.Container, "reloader": values.Reloader} {
		sc := c.Merge.SecurityContext
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || !slices.Equal(sc.Capabilities.Drop, []string{"ALL"}) {
			t.Errorf("nats-values.yaml %s.merge.securityContext %+v; want allowPrivilegeEscalation false, capabilities drop [ALL]", name, sc)
		}
	}
	if values.PromExporter.Enabled || values.NatsBox.Enabled == nil || *values.NatsBox.Enabled {
		t.Errorf("nats-values.yaml: promExporter %v, natsBox %v; want neither (containers these values do not harden)", values.PromExporter.Enabled, values.NatsBox.Enabled)
	}

	gib := func(s string) float64 {
		n, err := strconv.ParseFloat(strings.TrimSuffix(s, "Gi"), 64)
		if err != nil || !strings.HasSuffix(s, "Gi") {
			t.Fatalf("nats-values.yaml: size %q; want …Gi", s)
		}
		return n * (1 << 30)
	}
	fs := values.Config.JetStream.FileStore
	volume, store := gib(fs.PVC.Size), gib(fs.MaxSize)
	if store >= volume {
		t.Errorf("nats-values.yaml: JetStream's maxSize %s of a %s volume; want room left on it", fs.MaxSize, fs.PVC.Size)
	}
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	for _, doc := range bytes.Split(readFile(t, deployPath("k8s", "configmap.yaml")), []byte("\n---\n")) {
		if err := yaml.Unmarshal(doc, &cm); err == nil && cm.Data["OTPSCOPE_STREAM_MAX_BYTES"] != "" {
			break
		}
	}
	if b, err := strconv.ParseFloat(cm.Data["OTPSCOPE_STREAM_MAX_BYTES"], 64); err != nil || b <= 0 || b > 0.7*store {
		t.Errorf("configmap.yaml OTPSCOPE_STREAM_MAX_BYTES %q against JetStream's %s: want a bound, with room left for the poller's KV buckets", cm.Data["OTPSCOPE_STREAM_MAX_BYTES"], fs.MaxSize)
	}
}

// Grafana reads a ClickHouse server as a user that can only read
// otpscope's database (clickhouse/users.d/grafana.xml), not as the
// reporter's, which may write and drop: the compose file gives the server
// that user and Grafana's data sources connect as it.
func TestGrafanaReadsClickHouseReadOnly(t *testing.T) {
	var users struct {
		Profiles struct {
			Grafana struct {
				Readonly string `xml:"readonly"`
			} `xml:"grafana"`
		} `xml:"profiles"`
		Users struct {
			Grafana struct {
				Password struct {
					FromEnv string `xml:"from_env,attr"`
				} `xml:"password"`
				Profile string   `xml:"profile"`
				Grants  []string `xml:"grants>query"`
			} `xml:"grafana"`
		} `xml:"users"`
	}
	if err := xml.Unmarshal(readFile(t, deployPath("clickhouse", "users.d", "grafana.xml")), &users); err != nil {
		t.Fatalf("clickhouse/users.d/grafana.xml: %v", err)
	}
	g := users.Users.Grafana
	if ro := users.Profiles.Grafana.Readonly; (ro != "1" && ro != "2") || g.Profile != "grafana" || g.Password.FromEnv != "CLICKHOUSE_GRAFANA_PASSWORD" {
		t.Errorf("grafana.xml: profile %q readonly %q, password from %q; want the grafana profile, readonly, the password from CLICKHOUSE_GRAFANA_PASSWORD", g.Profile, ro, g.Password.FromEnv)
	}
	if len(g.Grants) == 0 {
		t.Error("grafana.xml grants nothing; want SELECT on otpscope's database")
	}
	for _, q := range g.Grants {
		if !strings.HasPrefix(q, "GRANT SELECT ON otpscope.") {
			t.Errorf("grafana.xml grants %q; want SELECT on otpscope's database only", q)
		}
	}

	f := loadCompose(t, "docker-compose.yml")
	env := composeEnv(t)
	ch, gr := f.Services["clickhouse"], f.Services["grafana"]
	if !slices.Contains(ch.Volumes, "./clickhouse/users.d/grafana.xml:/etc/clickhouse-server/users.d/grafana.xml:ro") || expand(ch.Environment["CLICKHOUSE_GRAFANA_PASSWORD"], env) == "" {
		t.Errorf("docker-compose.yml clickhouse: volumes %v, CLICKHOUSE_GRAFANA_PASSWORD %q; want grafana.xml mounted and its password given", ch.Volumes, ch.Environment["CLICKHOUSE_GRAFANA_PASSWORD"])
	}
	for _, kind := range []string{"READER", "SERVER"} {
		user, pass := gr.Environment["OTPSCOPE_CLICKHOUSE_"+kind+"_USER"], gr.Environment["OTPSCOPE_CLICKHOUSE_"+kind+"_PASSWORD"]
		if user != "grafana" || expand(pass, env) != expand(ch.Environment["CLICKHOUSE_GRAFANA_PASSWORD"], env) {
			t.Errorf("docker-compose.yml grafana: %s data source as %q with %q; want user grafana with CLICKHOUSE_GRAFANA_PASSWORD", kind, user, pass)
		}
	}
}
