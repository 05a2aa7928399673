package main_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/otpscope/otpscope/internal/broker"
	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/chdb"
	"github.com/otpscope/otpscope/internal/chdb/chdbtest"
	"github.com/otpscope/otpscope/internal/polltest"
	"github.com/otpscope/otpscope/internal/sink"
	"github.com/otpscope/otpscope/internal/tyntecsim"
	"github.com/otpscope/otpscope/internal/webtest"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "otpscope-bin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "otpscope")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build otpscope: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// needEngine skips (or fails, when make test set OTPSCOPE_CHDB_LIB or in CI,
// as chdbtest does) without the embedded engine library, which the
// all-in-one hosts.
func needEngine(t *testing.T) {
	t.Helper()
	if os.Getenv(chdb.EnvLibrary) == "" {
		if _, err := os.Stat(filepath.Join("..", "..", ".cache", "chdb", "libchdb.so")); err != nil {
			if os.Getenv(chdbtest.EnvCI) == "true" {
				t.Fatal(chdbtest.SkipMessage)
			}
			t.Skip(chdbtest.SkipMessage)
		}
	}
}

// instance is one all-in-one process.
type instance struct {
	cmd                 *exec.Cmd
	listen, adminListen string
	natsListen          string
	chListen, simListen string
	dataDir             string
	logs                *polltest.Buffer
	// nofile, when set, lowers the process's open-file limit (RLIMIT_NOFILE).
	nofile int
}

const token = "e2e-token-0123456789abcdef"

func newInstance(t *testing.T, dataDir string) *instance {
	return &instance{
		listen: webtest.FreeAddr(t), adminListen: webtest.FreeAddr(t), natsListen: webtest.FreeAddr(t), chListen: webtest.FreeAddr(t), simListen: webtest.FreeAddr(t),
		dataDir: dataDir,
	}
}

// start runs the binary with args and waits until /readyz answers 200.
func (in *instance) start(t *testing.T, args ...string) {
	t.Helper()
	in.logs = &polltest.Buffer{}
	var wrap []string
	if in.nofile > 0 {
		// The shell lowers the limit, then becomes the binary.
		wrap = []string{"sh", "-c", fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, in.nofile)}
	}
	in.cmd = exec.Command(binary, append([]string{
		"--listen", in.listen, "--admin-listen", in.adminListen, "--nats-listen", in.natsListen, "--clickhouse-listen", in.chListen,
		"--simulate-listen", in.simListen, "--data-dir", in.dataDir, "--webhook-token", token,
		"--sink-flush-interval", "200ms", "--sink-ack-wait", "3s", // a crash leaves messages unacked until then
	}, args...)...)
	if wrap != nil {
		in.cmd = exec.Command(wrap[0], append(wrap[1:], in.cmd.Args...)...)
	}
	in.cmd.Stdout, in.cmd.Stderr = in.logs, in.logs
	if err := in.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.kill() })
	ready := polltest.Within(60*time.Second, 100*time.Millisecond, func() bool {
		resp, err := http.Get("http://" + in.listen + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if !ready {
		t.Fatalf("otpscope not ready after 60s:\n%s", in.logs)
	}
}

// natsURL is the embedded NATS server's URL with the credentials the
// process keeps in its data directory: the service user's, or the reader's.
func (in *instance) natsURL(t *testing.T, reader bool) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(in.dataDir, "nats", "credentials.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c broker.Credentials
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	user := url.UserPassword(c.User, c.Password)
	if reader {
		user = url.UserPassword(c.ReaderUser, c.ReaderPassword)
	}
	return (&url.URL{Scheme: "nats", User: user, Host: in.natsListen}).String()
}

func (in *instance) kill() {
	if in.cmd != nil && in.cmd.Process != nil && in.cmd.ProcessState == nil {
		_ = in.cmd.Process.Signal(syscall.SIGKILL)
		_ = in.cmd.Wait()
	}
}

func (in *instance) stop(t *testing.T) {
	t.Helper()
	_ = in.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- in.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("otpscope exited with %v:\n%s", err, in.logs)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("otpscope did not stop within 30s of SIGTERM:\n%s", in.logs)
	}
}

// clickhouse connects from outside the process, as Grafana does: over HTTP,
// as the read-only default user.
func (in *instance) clickhouse(t *testing.T) clickhouse.Conn {
	t.Helper()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{in.chListen}, Protocol: clickhouse.HTTP})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func postWebhook(client *http.Client, base, otpID, status string, at time.Time) (int, error) {
	body := fmt.Sprintf(`{"channel":"SMS","otpId":%q,"status":%q,"timestamp":%q}`, otpID, status, at.UTC().Format(time.RFC3339Nano))
	req, err := http.NewRequest(http.MethodPost, "http://"+base+"/webhooks/tyntec", strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Webhook-Token", token)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestCrashSafety kills the all-in-one with SIGKILL in the middle of traffic
// and restarts it on the same data directory: every webhook answered 200 is
// in ClickHouse, exactly once.
func TestCrashSafety(t *testing.T) {
	needEngine(t)
	in := newInstance(t, t.TempDir())
	in.start(t)

	client := &http.Client{Timeout: 5 * time.Second}
	load := webtest.StartLoad(t, 8, func(id string) (int, error) {
		return postWebhook(client, in.listen, id, "DELIVERED", time.Now())
	})
	// Kill once some traffic was acknowledged and more is in flight.
	polltest.Within(30*time.Second, 10*time.Millisecond, func() bool { return load.Acked() >= 300 })
	in.kill()
	load.Stop()
	acked := load.AckedIDs()
	if len(acked) < 300 {
		t.Fatalf("only %d webhooks acknowledged before the kill:\n%s", len(acked), in.logs)
	}
	t.Logf("%d webhooks acknowledged before SIGKILL", len(acked))

	restartAt := time.Now()
	in.start(t) // same ports, same data directory
	t.Logf("ready again %v after the restart", time.Since(restartAt))
	conn := in.clickhouse(t)
	// Those the sink held unacknowledged at the kill come back after
	// --sink-ack-wait.
	chdbtest.WaitForIDs(t, conn, 60*time.Second, "SELECT toString(otp_id) FROM delivery_events", acked)
	t.Logf("ClickHouse has them all %v after the restart", time.Since(restartAt))
	// Redeliveries, if any, have landed once the sink has nothing pending
	// or unacknowledged: it acknowledges after the insert.
	js := brokertest.JetStreamAt(t, in.natsURL(t, false))
	polltest.Until(t, 30*time.Second, "the sink to acknowledge everything", func() bool {
		c, err := js.Consumer(t.Context(), broker.DefaultStreamName, sink.DefaultDurable)
		if err != nil {
			return false
		}
		info, err := c.Info(t.Context())
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
	var stored, distinct uint64
	if err := conn.QueryRow(t.Context(), "SELECT count(), uniqExact(event_id) FROM delivery_events FINAL").Scan(&stored, &distinct); err != nil {
		t.Fatal(err)
	}
	if stored != distinct || distinct < uint64(len(acked)) {
		t.Errorf("ClickHouse counts %d rows for %d distinct events (%d acknowledged): something counted twice", stored, distinct, len(acked))
	}
	in.stop(t)
}

// TestSimulateEndToEnd starts the all-in-one with --simulate for a bounded
// number of OTPs and checks what a user would: the banner says what runs where,
// a NATS subscriber sees the documented subjects, the JSON API's numbers equal
// the simulator's ground truth, and the embedded ClickHouse endpoint answers
// clickhouse-go from outside the process, read-only.
func TestSimulateEndToEnd(t *testing.T) {
	needEngine(t)
	const otps = 150
	in := newInstance(t, t.TempDir())
	// --simulate-shared-versions: the poller's v4 recovery reads v4 OTPs
	// through v1, which assumes one OTP store for both versions.
	// Methods off: this test counts OTP-only journeys (the methods' own
	// end-to-end test is issue 14's).
	in.start(t, "--simulate", "--simulate-rate", "100", "--simulate-count", fmt.Sprint(otps), "--simulate-time-scale", "50", "--simulate-shared-versions",
		"--simulate-silent-share", "0", "--simulate-push-share", "0")
	for _, want := range []string{"otpscope is running", "http://" + in.listen + "/webhooks/tyntec", "http://" + in.chListen, "http://" + in.simListen, "/api/v1/channels", "credentials.json"} {
		if !strings.Contains(in.logs.String(), want) {
			t.Errorf("banner lacks %q:\n%s", want, in.logs)
		}
	}

	// A downstream service subscribes to the documented subjects, as the
	// read-only user; without credentials it is turned away.
	if nc, err := nats.Connect("nats://" + in.natsListen); err == nil {
		nc.Close()
		t.Error("the embedded NATS server accepted a client without credentials")
	}
	nc, err := nats.Connect(in.natsURL(t, true))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var mu sync.Mutex
	seen := map[string]bool{}
	if _, err := nc.Subscribe("tyntec.2fa.>", func(m *nats.Msg) {
		toks := strings.Split(m.Subject, ".")
		mu.Lock()
		seen[strings.Join(toks[:min(3, len(toks))], ".")] = true
		if m.Header.Get("ce-specversion") != "1.0" {
			seen["missing CloudEvents headers on "+m.Subject] = true
		}
		mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	// Subscribe only sends the interest; after a round trip the server has
	// it, so the dead letter of the bad webhook below cannot pass unseen.
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	if code, err := postWebhook(client, in.listen, "not-a-uuid", "DELIVERED", time.Now()); err != nil || code != http.StatusBadRequest {
		t.Errorf("bad webhook = %d, %v; want 400", code, err)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+in.listen+"/otps/track", strings.NewReader(`{"otpId":"`+uuid.NewString()+`","api":"v1"}`))
	req.Header.Set("X-Webhook-Token", token)
	if resp, err := client.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("POST /otps/track = %v, %v", resp, err)
	} else {
		resp.Body.Close()
	}

	// Wait until the simulator has sent every OTP and settled every attempt.
	var truth tyntecsim.Truth
	polltest.UntilEvery(t, 200*time.Millisecond, 60*time.Second, "the simulator to settle every attempt", func() bool {
		webtest.GetJSON(t, "http://"+in.simListen+"/_sim/truth", &truth)
		return truth.Settled(otps)
	})
	want := truth.Summary()

	// The API, over everything the simulator did (its clock runs 50x ahead).
	window := "?from=" + time.Now().Add(-time.Hour).UTC().Format(time.RFC3339) + "&to=" + time.Now().Add(48*time.Hour).UTC().Format(time.RFC3339)
	var fallback struct {
		OTPs         int `json:"otps"`
		FallbackOTPs int `json:"fallback_otps"`
		Outcomes     map[string]int
	}
	// 60 s: under a loaded machine (the whole suite on two cores) the
	// sink and the poller's reconciliation of lost webhooks lag.
	agree := polltest.Within(60*time.Second, 200*time.Millisecond, func() bool {
		webtest.GetJSON(t, "http://"+in.adminListen+"/api/v1/fallback"+window, &fallback)
		webtest.GetJSON(t, "http://"+in.simListen+"/_sim/truth", &truth) // fresh: a fallback may have been dispatched since
		want = truth.Summary()
		return truth.Settled(otps) && want.Pending == 0 && fallback.OTPs >= otps && fallback.Outcomes["pending"] == 0 &&
			fallback.FallbackOTPs == want.Fallback
	})
	if !agree {
		t.Fatalf("timed out after 60s waiting for the API to agree with the ground truth: /api/v1/fallback %+v; truth %+v (settled %v)", fallback, want, truth.Settled(otps))
	}
	t.Logf("API: %+v; truth: %+v", fallback, want)
	if fallback.OTPs != otps || fallback.FallbackOTPs != want.Fallback || fallback.Outcomes["delivered_primary"] != want.DeliveredPrimary ||
		fallback.Outcomes["delivered_fallback"] != want.DeliveredLater || fallback.Outcomes["failed"] != want.Failed {
		t.Errorf("/api/v1/fallback = %+v; truth: %d OTPs, %+v", fallback, otps, want)
	}
	var channels struct {
		Channels []struct {
			Channel                     string
			Attempts, Delivered, Failed int
		}
	}
	webtest.GetJSON(t, "http://"+in.adminListen+"/api/v1/channels"+window, &channels)
	if len(channels.Channels) != len(want.Channels) {
		t.Errorf("/api/v1/channels has %d channels; truth has %d", len(channels.Channels), len(want.Channels))
	}
	for _, c := range channels.Channels {
		w, ok := want.Channels[c.Channel]
		if !ok || c.Attempts != w.Attempts || c.Delivered != w.Delivered || c.Failed != w.Failed {
			t.Errorf("/api/v1/channels %s = %d attempts, %d delivered, %d failed; truth %+v", c.Channel, c.Attempts, c.Delivered, c.Failed, w)
		}
	}

	// Outside the process, clickhouse-go reads the same facts and cannot write.
	conn := in.clickhouse(t)
	var stored uint64
	if err := conn.QueryRow(t.Context(), "SELECT uniqExact(otp_id) FROM delivery_events WHERE source = 'webhook'").Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != otps {
		t.Errorf("ClickHouse holds webhooks of %d OTPs; want %d", stored, otps)
	}
	err = conn.Exec(t.Context(), "INSERT INTO delivery_events (event_id) VALUES ('x')")
	var ex *clickhouse.Exception
	if !errors.As(err, &ex) || ex.Code != 164 {
		t.Errorf("an outside INSERT = %v; want READONLY (164)", err)
	}

	mu.Lock()
	for _, want := range []string{"tyntec.2fa.delivery", "tyntec.2fa.deadletter", "tyntec.2fa.track"} {
		if !seen[want] {
			t.Errorf("the NATS subscriber saw no %s.* message (saw %v)", want, seen)
		}
	}
	for s := range seen {
		if strings.HasPrefix(s, "missing") {
			t.Error(s)
		}
	}
	mu.Unlock()
	in.stop(t)
	sc := bufio.NewScanner(strings.NewReader(in.logs.String()))
	for sc.Scan() {
		if strings.Contains(sc.Text(), "level=ERROR") {
			t.Errorf("error logged: %s", sc.Text())
		}
	}
}

func TestDeadLettersUsage(t *testing.T) {
	for _, args := range [][]string{
		{"deadletters"},
		{"deadletters", "purge"},
		{"deadletters", "replay"},
		{"deadletters", "replay", "--source", "sink"},
		// Both would replay the ids alone; a flag of the other action
		// would be ignored; a limit the API refuses is the command line's.
		{"deadletters", "replay", "--all", "--id", "dl-1"},
		{"deadletters", "replay", "--all", "--pending"},
		{"deadletters", "list", "--all"},
		{"deadletters", "list", "--limit", "0"},
		// A delete names each dead letter it deletes.
		{"deadletters", "delete"},
		{"deadletters", "delete", "--all"},
		{"deadletters", "delete", "--id", "dl-1", "--source", "sink"},
	} {
		out, err := exec.Command(binary, args...).CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), "otpscope deadletters") {
			t.Errorf("otpscope %v = %v (%s); want exit 2 and the usage", args, err, out)
		}
	}
	// What to replay comes from the command line only: a variable left in
	// the environment does not make `replay` a replay of everything.
	cmd := exec.Command(binary, "deadletters", "replay", "--api", "http://127.0.0.1:1")
	cmd.Env = append(os.Environ(), "OTPSCOPE_ALL=true", "OTPSCOPE_ID=dl-1")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), "--id ID… or --all") ||
		!strings.Contains(string(out), "name=OTPSCOPE_ALL") || !strings.Contains(string(out), "name=OTPSCOPE_ID") {
		t.Errorf("deadletters replay with OTPSCOPE_ALL and OTPSCOPE_ID set = %v (%s); want exit 2, the usage, both variables warned of", err, out)
	}
}

// TestSecondSignalStopsAtOnce: the first SIGTERM stops in order, here
// through a 60 s --shutdown-delay, and says so; a second one ends the
// process at once, by the signal's default action.
func TestSecondSignalStopsAtOnce(t *testing.T) {
	in := newInstance(t, t.TempDir())
	in.start(t, "--simulate", "--shutdown-delay", "60s")
	_ = in.cmd.Process.Signal(syscall.SIGTERM)
	if !polltest.Within(10*time.Second, 50*time.Millisecond, func() bool {
		return strings.Contains(in.logs.String(), "stopping: terminated signal received; a second one stops at once")
	}) {
		t.Fatalf("no line saying the first signal stops:\n%s", in.logs)
	}
	done := make(chan error, 1)
	go func() { done <- in.cmd.Wait() }()
	select {
	case err := <-done:
		t.Fatalf("otpscope exited before the second signal, within its 60 s delay: %v", err)
	case <-time.After(time.Second):
	}
	_ = in.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
			t.Errorf("after the second signal: %v; want killed by SIGTERM", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("otpscope still running 20 s after a second SIGTERM (its delay is 60 s):\n%s", in.logs)
	}
}

// `otpscope deadletters config`, as its help lists it, prints the
// command's settings rather than calling "config" an unknown action.
func TestActionCommandsConfig(t *testing.T) {
	for _, name := range []string{"deadletters", "backup", "alerts"} {
		out, err := exec.Command(binary, name, "config").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--api") {
			t.Errorf("otpscope %s config = %v\n%s\nwant its settings, --api among them", name, err, out)
		}
	}
}

// `otpscope backup`'s --name belongs to delete: required there, refused
// by create and list (which ignored it), before any call (exit 2).
func TestBackupUsage(t *testing.T) {
	for _, args := range [][]string{{"backup", "delete"}, {"backup", "list", "--name", "otpscope-x"}, {"backup", "create", "--name", "otpscope-x"}} {
		out, err := exec.Command(binary, append(args, "--api", "http://127.0.0.1:1")...).CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), "--name goes with delete") {
			t.Errorf("otpscope %v = %v (%s); want exit 2 saying --name goes with delete", args, err, out)
		}
	}
}

// TestHelpListsEveryAction: `otpscope --help` names every action the
// commands' own help lists (it left out `deadletters delete`).
func TestHelpListsEveryAction(t *testing.T) {
	top, err := exec.Command(binary, "--help").Output()
	if err != nil {
		t.Fatal(err)
	}
	usage := regexp.MustCompile(`(?m)^  otpscope (deadletters|backup|alerts) ([a-z|]+)`)
	listed := map[string]bool{}
	for _, m := range usage.FindAllStringSubmatch(string(top), -1) {
		for _, action := range strings.Split(m[2], "|") {
			listed[m[1]+" "+action] = true
		}
	}
	for _, name := range []string{"deadletters", "backup", "alerts"} {
		help, err := exec.Command(binary, name, "--help").Output()
		if err != nil {
			t.Fatal(err)
		}
		actions := usage.FindAllStringSubmatch(string(help), -1)
		if len(actions) == 0 {
			t.Fatalf("otpscope %s --help lists no action:\n%s", name, help)
		}
		for _, m := range actions {
			for _, action := range strings.Split(m[2], "|") {
				if action == "config" || action == "help" || action == "version" {
					continue // every command's, which the top help lists as otpscope's own
				}
				if !listed[name+" "+action] {
					t.Errorf("otpscope --help does not list %s %s, which otpscope %s --help does:\n%s", name, action, name, top)
				}
			}
		}
	}
}
