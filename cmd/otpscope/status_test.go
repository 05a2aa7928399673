package main_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/app"
	"github.com/otpscope/otpscope/internal/polltest"
)

// runStatus runs `otpscope status` against api and returns its standard
// output and exit code.
func runStatus(t *testing.T, api string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"status", "--api", api}, args...)...)
	var stdout strings.Builder
	cmd.Stdout = &stdout
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return stdout.String(), 0
	case errors.As(err, &exit):
		return stdout.String(), exit.ExitCode()
	}
	t.Fatal(err)
	return "", -1
}

// TestStatusCommand: `otpscope status` prints a line a module of a running
// process and exits 0; with a warning (the poller off for want of a key;
// the simulator dropping every webhook while the poller tracks its OTPs)
// it prints it and exits 1; a process that does not answer is exit 1 too,
// an --api that is no URL exit 2.
func TestStatusCommand(t *testing.T) {
	in := newInstance(t, t.TempDir())
	// Rules that the simulator's traffic breaks within seconds: the status
	// lists them firing, and still exits 0.
	in.start(t, "--simulate", "--alert-schedule", "@every 1s", "--alert-window", "1m", "--alert-min-attempts", "1", "--alert-min-delivery-rate", "0.999",
		"--alert-max-fallback-rate", "0.001", "--alert-min-otps", "1", "--slo-delivery-rate", "0.9999")
	api := "http://" + in.adminListen
	var out string
	var code int
	if !polltest.Within(30*time.Second, 500*time.Millisecond, func() bool {
		out, code = runStatus(t, api)
		return code == 0 && strings.Contains(out, "  poller  ") && !strings.Contains(out, "the last never")
	}) {
		t.Errorf("otpscope status of the all-in-one with the simulator = %d:\n%s\nwant exit 0 once webhooks arrive", code, out)
	}
	if !strings.Contains(out, "ingest, poller, reporter at "+api) || !strings.Contains(out, "  stream  ") || !strings.HasSuffix(out, "no warnings\n") {
		t.Errorf("otpscope status of a healthy all-in-one:\n%s", out)
	}
	if !polltest.Within(30*time.Second, 500*time.Millisecond, func() bool {
		out, code = runStatus(t, api)
		// Listed the longest firing first: the fallback rate's may be.
		return strings.Contains(out, "\n  alerts  ") && strings.Contains(out, " firing:\n") && strings.Contains(out, "\n    delivery_rate_low on ")
	}) || code != 0 || !strings.Contains(out, ", threshold 99.9%") || !strings.HasSuffix(out, "no warnings\n") {
		t.Errorf("otpscope status of an all-in-one whose alert rules fire = %d:\n%s\nwant them listed, no warning, exit 0", code, out)
	}
	// The objective, as /api/v1/slo says it, and the simulator's failures,
	// far beyond 0.01 %, burning its budget fast enough to page (one
	// journey in a thousand failing burns it ten times as fast as it
	// lasts; the simulator's fail far more often). (Its
	// budget may read unspent a while: a journey whose attempts so far
	// failed counts as failed until its fallback is dispatched, so the
	// evaluation and the line, read apart, may count it apart.)
	if !polltest.Within(30*time.Second, 500*time.Millisecond, func() bool {
		out, code = runStatus(t, api)
		return strings.Contains(out, "    error_budget_burn since ")
	}) || !strings.Contains(out, "\n  objective  ") || !strings.Contains(out, " settled journeys delivered over the last 28 d (objective 99.99%): ") || code != 0 {
		t.Errorf("otpscope status of an all-in-one far below its objective = %d:\n%s\nwant the objective's line and error_budget_burn firing", code, out)
	}
	// A silence of every rule: listed after the alerts, which it holds.
	if said, err := exec.Command(binary, "alerts", "silence", "--api", api, "--for", "2h", "--comment", "status test", "--by", "ci").CombinedOutput(); err != nil {
		t.Fatalf("otpscope alerts silence: %v\n%s", err, said)
	}
	out, code = runStatus(t, api)
	if code != 0 || !strings.Contains(out, "\n  silences  1 active, 0 pending:\n    active   ") || !strings.Contains(out, "  every rule held until ") ||
		!strings.Contains(out, " (status test, by ci)\n") || !strings.Contains(out, " (silenced until ") {
		t.Errorf("otpscope status under a silence of every rule = %d:\n%s\nwant the silence listed, the firings silenced", code, out)
	}
	in.kill()
	if _, code := runStatus(t, api); code != 1 {
		t.Errorf("otpscope status of a stopped process = %d; want 1", code)
	}
	// An --api that is no URL is a bad flag, as any: exit 2.
	if _, code := runStatus(t, "notaurl"); code != 2 {
		t.Errorf("otpscope status --api notaurl = %d; want 2", code)
	}

	// Without a tyntec API key the poller is off: not listed, and a warning.
	in = newInstance(t, t.TempDir())
	in.start(t)
	api = "http://" + in.adminListen
	out, code = runStatus(t, api)
	if code != 1 || !strings.Contains(out, "ingest, reporter at "+api) || !strings.Contains(out, "  ingest  0 webhooks accepted since start, the last never") ||
		!strings.Contains(out, "warning: the poller is off (no --tyntec-api-key)") {
		t.Errorf("otpscope status of an all-in-one without a tyntec key = %d:\n%s\nwant exit 1, the poller off", code, out)
	}
	if logs := in.logs.String(); !strings.Contains(logs, "otpscope is running (ingest, reporter)") || !strings.Contains(logs, "modules=ingest,reporter") {
		t.Errorf("the banner and the start line of an all-in-one without a tyntec key:\n%s\nwant the running modules only", logs)
	}
	// Pointed at the public listener, which serves no API, it says where
	// the API is; a path neither serves is a plain 404.
	public := exec.Command(binary, "status", "--api", "http://"+in.listen)
	if out, err := public.CombinedOutput(); err == nil || !strings.Contains(string(out), "404") ||
		!strings.Contains(string(out), "on the admin listener (--admin-listen "+in.adminListen+")") {
		t.Errorf("otpscope status against the public listener: %v\n%s\nwant a 404 naming the admin listener", err, out)
	}
	if out, _ := exec.Command("curl", "-sS", "http://"+in.listen+"/no/such/path").CombinedOutput(); !strings.Contains(string(out), `"no such endpoint"`) {
		t.Errorf("the public listener's 404 for a path nobody serves: %s; want the plain one", out)
	}
	in.kill()

	// With an API token: in the server's own environment, whose token file
	// holds two tokens during a rotation, the command sends the first.
	guarded := newInstance(t, t.TempDir())
	const apiToken = "status-api-token-0123456789"
	guarded.start(t, "--api-token", apiToken)
	api = "http://" + guarded.adminListen
	if _, code := runStatus(t, api); code != 1 {
		t.Errorf("otpscope status without the API token = %d; want 1", code)
	}
	tokens := filepath.Join(t.TempDir(), "api-tokens")
	if err := os.WriteFile(tokens, []byte(apiToken+"\nnext-api-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "status", "--api", api)
	cmd.Env = append(os.Environ(), "OTPSCOPE_API_TOKEN_FILE="+tokens)
	if out, err := cmd.Output(); !strings.Contains(string(out), "  ingest  ") {
		t.Errorf("otpscope status with OTPSCOPE_API_TOKEN_FILE of two tokens: %v\n%s", err, out)
	}
	// Without an objective it reads the rules in force, not /slo (four
	// reads of ClickHouse for a line it would not print).
	req, err := http.NewRequest(http.MethodGet, api+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+apiToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if m := string(metrics); !strings.Contains(m, `handler="/api/v1/alerts/rules"`) || strings.Contains(m, `handler="/api/v1/slo"`) {
		t.Errorf("otpscope status without an objective: the API served /alerts/rules %v, /slo %v; want the rules read, not /slo",
			strings.Contains(m, `handler="/api/v1/alerts/rules"`), strings.Contains(m, `handler="/api/v1/slo"`))
	}
	guarded.kill()

	lost := newInstance(t, t.TempDir())
	lost.start(t, "--simulate", "--simulate-drop-webhooks", "1", "--reconcile-schedule", "@every 1s")
	api = "http://" + lost.adminListen
	const warning = "warning: no webhook ever while the poller tracks OTPs"
	if !polltest.Within(60*time.Second, 500*time.Millisecond, func() bool {
		out, code = runStatus(t, api)
		return code == 1 && strings.Contains(out, warning)
	}) {
		t.Fatalf("otpscope status with every webhook lost = %d:\n%s\nwant exit 1 and %q", code, out, warning)
	}
	if !strings.Contains(out, "  poller  ") || strings.Contains(out, "no warnings") {
		t.Errorf("otpscope status with a warning:\n%s", out)
	}
	raw, code := runStatus(t, api, "--json")
	var st app.StatusResponse
	if err := json.Unmarshal([]byte(raw), &st); err != nil || code != 1 || len(st.Warnings) == 0 || st.Poller == nil || st.Poller.TrackedOTPs == 0 || st.Poller.BacklogCounted == nil || !*st.Poller.BacklogCounted {
		t.Errorf("otpscope status --json = %d, %v:\n%s", code, err, raw)
	}
}
