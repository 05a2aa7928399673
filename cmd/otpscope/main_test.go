package main_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/otpscope/otpscope/internal/chdb"
	"github.com/otpscope/otpscope/internal/tyntecsim"
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

// needEngine skips (or fails, when make test set OTPSCOPE_CHDB_LIB) without
// the embedded engine library, which the all-in-one hosts.
func needEngine(t *testing.T) {
	t.Helper()
	if os.Getenv(chdb.EnvLibrary) == "" {
		if _, err := os.Stat(filepath.Join("..", "..", ".cache", "chdb", "libchdb.so")); err != nil {
			t.Skip("libchdb.so not found: run `make setup` (or set OTPSCOPE_CHDB_LIB)")
		}
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// instance is one all-in-one process.
type instance struct {
	cmd                 *exec.Cmd
	listen, adminListen string
	natsListen          string
	chListen, simListen string
	dataDir             string
	logs                *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

const token = "e2e-token-0123456789abcdef"

func newInstance(t *testing.T, dataDir string) *instance {
	return &instance{
		listen: freePort(t), adminListen: freePort(t), natsListen: freePort(t), chListen: freePort(t), simListen: freePort(t),
		dataDir: dataDir,
	}
}

// start runs the binary with args and waits until /readyz answers 200.
func (in *instance) start(t *testing.T, args ...string) {
	t.Helper()
	in.logs = &syncBuffer{}
	in.cmd = exec.Command(binary, append([]string{
		"--listen", in.listen, "--admin-listen", in.adminListen, "--nats-listen", in.natsListen, "--clickhouse-listen", in.chListen,
		"--simulate-listen", in.simListen, "--data-dir", in.dataDir, "--webhook-token", token,
		"--sink-flush-interval", "200ms", "--sink-ack-wait", "3s", // a crash leaves messages unacked until then
	}, args...)...)
	in.cmd.Stdout, in.cmd.Stderr = in.logs, in.logs
	if err := in.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.kill() })
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + in.listen + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) || in.cmd.ProcessState != nil {
			t.Fatalf("otpscope not ready after 60s:\n%s", in.logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
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

	var mu sync.Mutex
	acked := map[string]bool{}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second}
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil && i < 5000; i++ {
				id := uuid.NewString()
				code, err := postWebhook(client, in.listen, id, "DELIVERED", time.Now())
				if err == nil && code == http.StatusOK {
					mu.Lock()
					acked[id] = true
					mu.Unlock()
				}
				_ = w
			}
		}()
	}
	// Kill once some traffic was acknowledged and more is in flight.
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 300 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	in.kill()
	cancel()
	wg.Wait()
	if len(acked) < 300 {
		t.Fatalf("only %d webhooks acknowledged before the kill:\n%s", len(acked), in.logs)
	}
	t.Logf("%d webhooks acknowledged before SIGKILL", len(acked))

	restartAt := time.Now()
	in.start(t) // same ports, same data directory
	t.Logf("ready again %v after the restart", time.Since(restartAt))
	conn := in.clickhouse(t)
	// missing counts the acknowledged webhooks not (yet) in ClickHouse. Those the
	// sink held unacknowledged at the kill come back after --sink-ack-wait.
	missing := func() int {
		rows, err := conn.Query(t.Context(), "SELECT toString(otp_id) FROM delivery_events")
		if err != nil {
			t.Fatalf("query from outside the process: %v", err)
		}
		defer rows.Close()
		have := map[string]bool{}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			have[id] = true
		}
		n := 0
		for id := range acked {
			if !have[id] {
				n++
			}
		}
		return n
	}
	waitUntil := time.Now().Add(60 * time.Second)
	for missing() > 0 && time.Now().Before(waitUntil) {
		time.Sleep(200 * time.Millisecond)
	}
	if n := missing(); n > 0 {
		t.Fatalf("%d of %d acknowledged webhooks are missing after the crash", n, len(acked))
	}
	t.Logf("ClickHouse has them all %v after the restart", time.Since(restartAt))
	time.Sleep(time.Second) // let redeliveries, if any, land before counting
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
	in.start(t, "--simulate", "--simulate-rate", "100", "--simulate-count", fmt.Sprint(otps), "--simulate-time-scale", "50")
	for _, want := range []string{"otpscope is running", "http://" + in.listen + "/webhooks/tyntec", "http://" + in.chListen, "http://" + in.simListen, "/api/v1/channels"} {
		if !strings.Contains(in.logs.String(), want) {
			t.Errorf("banner lacks %q:\n%s", want, in.logs)
		}
	}

	// A downstream service subscribes to the documented subjects.
	nc, err := nats.Connect("nats://" + in.natsListen)
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
	waitFor(t, 60*time.Second, "the simulator to settle every attempt", func() bool {
		getJSON(t, "http://"+in.simListen+"/_sim/truth", &truth)
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
	waitFor(t, 30*time.Second, "the API to agree with the ground truth", func() bool {
		getJSON(t, "http://"+in.adminListen+"/api/v1/fallback"+window, &fallback)
		getJSON(t, "http://"+in.simListen+"/_sim/truth", &truth) // fresh: a fallback may have been dispatched since
		want = truth.Summary()
		return truth.Settled(otps) && want.Pending == 0 && fallback.OTPs >= otps && fallback.Outcomes["pending"] == 0 &&
			fallback.FallbackOTPs == want.Fallback
	})
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
	getJSON(t, "http://"+in.adminListen+"/api/v1/channels"+window, &channels)
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

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s = %d %s", url, resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}
