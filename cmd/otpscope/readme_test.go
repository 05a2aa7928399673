package main_test

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/chdb/chdbtest"
	"github.com/otpscope/otpscope/internal/polltest"
)

// snippetRE finds the README's tested shell blocks: a fenced sh block right
// after <!-- snippet: NAME -->.
var snippetRE = regexp.MustCompile("(?s)<!-- snippet: ([a-z-]+) -->\n```sh\n(.*?)```")

// TestREADMESnippets runs the README's marked snippets as written, in order,
// the way a newcomer follows them: `start` (the all-in-one on the default
// ports), then `webhook`, `query` and `report` against it; then, with it
// stopped, `split` (the services apart) and `split-check`. The test only adds
// what the README tells the reader to do between shells: the second shell
// has the first one's TOKEN and API_TOKEN, and PATH has the binaries.
func TestREADMESnippets(t *testing.T) {
	needEngine(t)
	if testing.Short() {
		t.Skip("starts the README's processes (-short)")
	}
	for _, addr := range []string{"127.0.0.1:8080", "127.0.0.1:8081", "127.0.0.1:8083", "127.0.0.1:8090", "127.0.0.1:8123", "127.0.0.1:4222"} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			msg := "the README's snippets use the default ports, and " + addr + " is taken: " + err.Error()
			if os.Getenv(chdbtest.EnvCI) == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
		ln.Close()
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	snippets := map[string]string{}
	for _, m := range snippetRE.FindAllStringSubmatch(string(readme), -1) {
		snippets[m[1]] = m[2]
	}
	for _, name := range []string{"start", "webhook", "methods", "query", "report", "split", "split-check", "split-stop"} {
		if snippets[name] == "" {
			t.Fatalf("README has no snippet %q", name)
		}
	}

	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Dir(binary) // TestMain built otpscope there; the others join it
	if out, err := exec.Command("go", "build", "-o", bin, "../reporter", "../ingest", "../tyntecsim").CombinedOutput(); err != nil {
		t.Fatalf("build the binaries: %v\n%s", err, out)
	}
	envFile := filepath.Join(t.TempDir(), "env")
	sh := &shell{t: t, dir: root, env: append(os.Environ(),
		"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"OTPSCOPE_DATA_DIR="+t.TempDir(), // instead of ./data in the checkout
	)}

	// The first shell: `start` runs in the foreground until stopped. Its go
	// command is wrapped to write down what the shell exported (TOKEN and
	// API_TOKEN) for the second shell, as the README says to.
	allInOne := sh.background("start", `go() { export -p > `+strconv.Quote(envFile)+`; command go "$@"; }`+"\n"+snippets["start"])
	polltest.UntilEvery(t, 250*time.Millisecond, 5*time.Minute, "the all-in-one of `start` ready", func() bool {
		return allInOne.exited() == nil && ready("127.0.0.1:8080")
	})
	second := ". " + strconv.Quote(envFile) + "\n"
	// The startup log names the ClickHouse the engine runs, by its own
	// SELECT version() (four parts), not the chDB package's three.
	if !regexp.MustCompile(`embedded ClickHouse engine open.* clickhouse=\d+\.\d+\.\d+\.\d+ `).MatchString(allInOne.logs.String()) {
		t.Errorf("the startup log names no engine version:\n%s", allInOne.logs)
	}

	if out := sh.run("webhook", second+snippets["webhook"]); !strings.Contains(out, `{"accepted":1}`) {
		t.Errorf("webhook snippet answered %q; want {\"accepted\":1}", out)
	}
	if out := sh.run("methods", second+snippets["methods"]); !strings.Contains(out, `{"accepted":2}`) || !strings.Contains(out, `{"accepted":1}`) || !strings.Contains(out, `"correlationId":"login-readme"`) {
		t.Errorf("methods snippet answered %q; want {\"accepted\":2}, the tracked OTP with its correlationId, {\"accepted\":1}", out)
	}
	var out string
	polltest.UntilEvery(t, time.Second, 2*time.Minute, "the query snippet to show delivery events and channels", func() bool {
		out = sh.run("query", second+snippets["query"])
		return strings.Contains(out, "DELIVERED") && strings.Contains(out, `"channels":[{`)
	})
	// The webhook is stamped now, so the console's and the API's recent
	// windows count it (a fixed date left it months in the past).
	age := sh.run("webhook age", `curl -sS 'http://127.0.0.1:8123/?query=SELECT+dateDiff(%27second%27,max(event_time),now64(3))+FROM+delivery_events+WHERE+otp_id=%27a4762c77-94cb-43d6-bbab-9f37e088ad11%27'`)
	if n, err := strconv.Atoi(strings.TrimSpace(age)); err != nil || n < 0 || n > 600 {
		t.Errorf("the webhook snippet's event is %q seconds old; want it stamped within the last 10 minutes", age)
	}
	if out := sh.run("report", second+snippets["report"]); !strings.Contains(out, "SMS") {
		t.Errorf("report snippet printed %q; want the SMS figures", out)
	}
	allInOne.stop()

	// The services' shell stops them itself, with split-stop, once the test
	// has seen them count: what the reader types in the shell that started
	// them. Its shell ends only when every service has.
	stopNow := filepath.Join(t.TempDir(), "stop")
	services := sh.background("split", snippets["split"]+
		"while [ ! -e "+strconv.Quote(stopNow)+" ]; do sleep 0.2; done\n"+snippets["split-stop"])
	counted := polltest.Within(5*time.Minute, time.Second, func() bool {
		n, err := strconv.Atoi(strings.TrimSpace(sh.try(snippets["split-check"])))
		return err == nil && n > 0
	})
	if !counted {
		t.Fatalf("split-check never counted a delivery event the simulator sent through ingest; the services said:\n%s", services.logs)
	}
	if err := os.WriteFile(stopNow, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	services.ended()
}

// ready reports whether addr's /readyz answers 200.
func ready(addr string) bool {
	out, err := exec.Command("curl", "-fsS", "-o", "/dev/null", "http://"+addr+"/readyz").CombinedOutput()
	return err == nil && len(out) == 0
}

// shell runs snippets with bash in dir.
type shell struct {
	t   *testing.T
	dir string
	env []string
}

func (s *shell) command(script string) *exec.Cmd {
	cmd := exec.Command("bash", "-e", "-c", script)
	cmd.Dir, cmd.Env = s.dir, s.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // stop() ends its jobs too
	return cmd
}

// try runs script and returns its standard output, "" when it failed.
func (s *shell) try(script string) string {
	out, err := s.command(script).Output()
	if err != nil {
		return ""
	}
	return string(out)
}

// run runs script, failing the test when it fails.
func (s *shell) run(name, script string) string {
	s.t.Helper()
	out, err := s.command(script).CombinedOutput()
	if err != nil {
		s.t.Fatalf("snippet %s: %v\n%s", name, err, out)
	}
	return string(out)
}

// job is a snippet running in the background, with its process group.
type job struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	logs *polltest.Buffer
	done chan error
}

func (s *shell) background(name, script string) *job {
	j := &job{t: s.t, name: name, cmd: s.command(script), logs: &polltest.Buffer{}, done: make(chan error, 1)}
	j.cmd.Stdout, j.cmd.Stderr = j.logs, j.logs
	if err := j.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	go func() { j.done <- j.cmd.Wait() }()
	s.t.Cleanup(j.kill)
	return j
}

// exited fails the test when the job's shell ended on an error; otherwise nil.
func (j *job) exited() error {
	select {
	case err := <-j.done:
		j.done <- err
		if err != nil {
			j.t.Fatalf("snippet %s exited: %v\n%s", j.name, err, j.logs)
		}
	default:
	}
	return nil
}

// stop sends SIGTERM to the job's process group and waits for its shell
// and the processes the group holds to end.
func (j *job) stop() {
	_ = syscall.Kill(-j.cmd.Process.Pid, syscall.SIGTERM)
	j.ended()
}

// ended waits for the job's shell and the processes its group holds to
// end, failing the test when they do not within 30 s each.
func (j *job) ended() {
	j.t.Helper()
	select {
	case <-j.done:
	case <-time.After(30 * time.Second):
		j.t.Errorf("snippet %s did not stop:\n%s", j.name, j.logs)
	}
	gone := polltest.Within(30*time.Second, 100*time.Millisecond, func() bool {
		return syscall.Kill(-j.cmd.Process.Pid, 0) != nil
	})
	if !gone {
		j.t.Errorf("processes of snippet %s outlived their stop:\n%s", j.name, j.logs)
	}
}

func (j *job) kill() { _ = syscall.Kill(-j.cmd.Process.Pid, syscall.SIGKILL) }
