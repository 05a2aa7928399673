package deploy_test

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/chdb"
	"github.com/otpscope/otpscope/internal/polltest"
	"github.com/otpscope/otpscope/internal/tyntecsim"
	"github.com/otpscope/otpscope/internal/tyntecsim/simtest"
	"github.com/otpscope/otpscope/internal/webtest"
)

// unitFile is systemd's view of a unit: each key's values in order, by
// section ("Service.Environment").
type unitFile map[string][]string

func readUnit(t *testing.T, path string) unitFile {
	t.Helper()
	u := unitFile{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(readFile(t, path)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s: %q is not key=value", path, line)
			}
			u[section+"."+k] = append(u[section+"."+k], v)
		}
	}
	return u
}

// one is the single value of key, failing the test when there is not one.
func (u unitFile) one(t *testing.T, key string) string {
	t.Helper()
	if len(u[key]) != 1 {
		t.Fatalf("otpscope.service: %s set %d times; want once", key, len(u[key]))
	}
	return u[key][0]
}

// readEnvFile reads an EnvironmentFile as systemd does: KEY=VALUE lines,
// comments and blank lines skipped, one pair of quotes around a value
// removed.
func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	env := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(readFile(t, path)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: %q is not KEY=VALUE", path, line)
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		} else if strings.ContainsAny(v, " \t") {
			t.Errorf("%s: %s's value %q has blanks without quotes: a shell sourcing the file (`otpscope config` as the file's comment shows) would run it", path, k, v)
		}
		env[k] = v
	}
	return env
}

// TestSystemdUnit: deploy/systemd's unit passes systemd's own checks
// (`systemd-analyze verify`, and `security` rates it OK or better), and the
// process it describes — its ExecStart with its Environment= and the
// environment file, the layout's paths moved under a temporary directory —
// starts, takes a webhook with the token from its secrets directory,
// answers the API with the API token, and stops cleanly on systemd's
// SIGTERM well within TimeoutStopSec.
func TestSystemdUnit(t *testing.T) {
	unitPath, envPath := deployPath("systemd", "otpscope.service"), deployPath("systemd", "otpscope.env")
	u := readUnit(t, unitPath)
	exe := u.one(t, "Service.ExecStart")
	bin, ok := strings.CutPrefix(exe, "/usr/local/bin/")
	if !ok || strings.ContainsAny(bin, " /") {
		t.Fatalf("ExecStart=%s; want /usr/local/bin/<binary> without arguments (settings are in the environment)", exe)
	}
	flagsOf(t, bin) // one of the binaries built here
	if u.one(t, "Service.EnvironmentFile") != "/etc/otpscope/otpscope.env" {
		t.Errorf("EnvironmentFile=%s; want /etc/otpscope/otpscope.env, where deploy/README.md installs otpscope.env", u.one(t, "Service.EnvironmentFile"))
	}
	env := readEnvFile(t, envPath)
	for _, kv := range u["Service.Environment"] {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	vars := envOf(t, bin)
	for k := range env {
		if k != chdb.EnvLibrary && !vars[k] {
			t.Errorf("%s is set for the service but is no variable of %s", k, bin)
		}
	}
	state := "/var/lib/" + u.one(t, "Service.StateDirectory")
	if env["OTPSCOPE_DATA_DIR"] != state || u.one(t, "Service.WorkingDirectory") != state {
		t.Errorf("OTPSCOPE_DATA_DIR=%s, WorkingDirectory=%s; want both the StateDirectory, %s (the only place ProtectSystem=strict lets it write)", env["OTPSCOPE_DATA_DIR"], u.one(t, "Service.WorkingDirectory"), state)
	}
	if d, err := time.ParseDuration(u.one(t, "Service.TimeoutStopSec") + "s"); err != nil || d < 60*time.Second {
		t.Errorf("TimeoutStopSec=%s; want at least 60 (seconds): --shutdown-timeout, then the sink's last insert", u.one(t, "Service.TimeoutStopSec"))
	}

	t.Run("systemd-analyze", func(t *testing.T) {
		analyze, err := exec.LookPath("systemd-analyze")
		if err != nil {
			t.Fatal("systemd-analyze is missing: install Debian's systemd package (.ci/run does) to check deploy/systemd/otpscope.service")
		}
		// verify wants ExecStart and EnvironmentFile to exist: point them
		// at the binary built here and the repository's file.
		dir := t.TempDir()
		unit := strings.NewReplacer("ExecStart="+exe, "ExecStart="+filepath.Join(built.dir, bin),
			"EnvironmentFile=/etc/otpscope/otpscope.env", "EnvironmentFile="+envPath).Replace(string(readFile(t, unitPath)))
		copyPath := filepath.Join(dir, "otpscope.service")
		if err := os.WriteFile(copyPath, []byte(unit), 0o644); err != nil {
			t.Fatal(err)
		}
		// Any line (an unknown key, a bad value) is a finding: verify
		// exits 0 on warnings.
		if out, err := exec.Command(analyze, "verify", "--man=no", copyPath).CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
		out, err := exec.Command(analyze, "security", "--offline=true", "--no-pager", copyPath).CombinedOutput()
		m := regexp.MustCompile(`Overall exposure level for otpscope\.service: ([0-9.]+) (\w+)`).FindSubmatch(out)
		if err != nil || m == nil {
			t.Fatalf("systemd-analyze security: %v\n%s", err, out)
		}
		if level := string(m[2]); level != "OK" && level != "SAFE" {
			t.Errorf("systemd-analyze security rates otpscope.service %s %s; want OK or SAFE:\n%s", m[1], level, out)
		}
		t.Logf("systemd-analyze security: exposure %s %s", m[1], m[2])
	})

	t.Run("runs", func(t *testing.T) {
		lib := os.Getenv(chdb.EnvLibrary)
		if lib == "" {
			lib = filepath.Join(repoRoot, ".cache", "chdb", "libchdb.so")
		}
		if _, err := os.Stat(lib); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("the embedded engine library: %v (make setup)", err)
			}
			t.Skipf("the embedded engine library is missing (%v): run `make setup` to run the unit's process", err)
		}
		root := t.TempDir()
		etc, stateDir := filepath.Join(root, "etc"), filepath.Join(root, "state")
		secrets := filepath.Join(etc, "secrets")
		for _, d := range []string{secrets, stateDir} {
			if err := os.MkdirAll(d, 0o700); err != nil {
				t.Fatal(err)
			}
		}
		const webhookToken, apiToken, metricsToken, tyntecKey = "webhook-token-0123456789", "api-token-0123456789", "metrics-token-0123456789", "tyntec-key-for-the-unit"
		_, simURL := simtest.Start(t, tyntecsim.Config{Seed: 1, APIKeys: []string{tyntecKey}})
		ports := map[string]string{}
		moved := strings.NewReplacer("/etc/otpscope", etc, state, stateDir)
		var environ []string
		for k, v := range env {
			switch {
			case k == chdb.EnvLibrary:
				v = lib
			case strings.HasSuffix(k, "_LISTEN"):
				v = webtest.FreeAddr(t)
				ports[k] = v
			default:
				v = moved.Replace(v)
			}
			environ = append(environ, k+"="+v)
		}
		for name, content := range map[string]string{"webhook-tokens": webhookToken, "api-token": apiToken, "metrics-token": metricsToken, "tyntec-api-key": tyntecKey} {
			if err := os.WriteFile(filepath.Join(secrets, name), []byte(content+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		for _, k := range []string{"OTPSCOPE_LISTEN", "OTPSCOPE_ADMIN_LISTEN"} {
			if ports[k] == "" {
				t.Fatalf("the environment sets no %s", k)
			}
		}
		environ = append(environ, "OTPSCOPE_TYNTEC_URL="+simURL, "OTPSCOPE_NATS_LISTEN="+webtest.FreeAddr(t))

		// `otpscope config`, as the environment file's comment shows.
		cfg := exec.Command(filepath.Join(built.dir, bin), "config")
		cfg.Env, cfg.Dir = environ, stateDir
		if out, err := cfg.CombinedOutput(); err != nil || !strings.Contains(string(out), "configuration ok") {
			t.Fatalf("%s config with the unit's environment: %v\n%s", bin, err, out)
		}

		var logs polltest.Buffer // written by the process while the test reads it
		cmd := exec.Command(filepath.Join(built.dir, bin))
		cmd.Env, cmd.Dir, cmd.Stdout, cmd.Stderr = environ, stateDir, &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		stopped := false
		t.Cleanup(func() {
			if !stopped {
				cmd.Process.Kill()
				<-done
			}
		})
		public, admin := "http://"+ports["OTPSCOPE_LISTEN"], "http://"+ports["OTPSCOPE_ADMIN_LISTEN"]
		status := func(method, url, token, body string) int {
			req, _ := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return 0
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		deadline := time.Now().Add(60 * time.Second)
		for status(http.MethodGet, admin+"/readyz", "", "") != http.StatusOK {
			if time.Now().After(deadline) {
				t.Fatalf("not ready within 60 s; logs:\n%s", logs.String())
			}
			select {
			case err := <-done:
				stopped = true
				t.Fatalf("exited before ready: %v; logs:\n%s", err, logs.String())
			case <-time.After(200 * time.Millisecond):
			}
		}
		body := `{"otpId":"7b1d2e3f-0000-4000-8000-00000000000b","channel":"SMS","status":"DELIVERED","timestamp":"2026-12-03T10:00:00Z"}`
		if got := status(http.MethodPost, public+"/webhooks/tyntec", webhookToken, body); got != http.StatusOK {
			t.Errorf("webhook with the secrets file's token = %d; want 200", got)
		}
		if got := status(http.MethodGet, admin+"/api/v1/status", apiToken, ""); got != http.StatusOK {
			t.Errorf("API with the secrets file's token = %d; want 200", got)
		}
		if got := status(http.MethodGet, admin+"/api/v1/status", "", ""); got != http.StatusUnauthorized {
			t.Errorf("API without a token = %d; want 401", got)
		}
		if got := [2]int{status(http.MethodGet, admin+"/metrics", metricsToken, ""), status(http.MethodGet, admin+"/api/v1/status", metricsToken, "")}; got != [2]int{200, 401} {
			t.Errorf("/metrics and the API with the metrics token = %v; want [200 401]", got)
		}
		if _, err := os.Stat(filepath.Join(stateDir, "nats")); err != nil {
			t.Errorf("nothing under the StateDirectory: %v", err)
		}

		// systemctl stop: SIGTERM, then SIGKILL after TimeoutStopSec.
		timeout, _ := strconv.Atoi(u.one(t, "Service.TimeoutStopSec"))
		start := time.Now()
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			stopped = true
			var exit *exec.ExitError
			if err != nil && !errors.As(err, &exit) {
				t.Fatal(err)
			}
			if err != nil {
				t.Errorf("stopped with %v; want exit 0 (systemd would count a failure); logs:\n%s", err, logs.String())
			}
			t.Logf("stopped %s after SIGTERM (TimeoutStopSec=%d)", time.Since(start).Round(100*time.Millisecond), timeout)
		case <-time.After(time.Duration(timeout) * time.Second):
			t.Fatalf("still running %d s after SIGTERM: systemd would kill it; logs:\n%s", timeout, logs.String())
		}
	})
}
