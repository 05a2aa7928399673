package main_test

import (
	"bufio"
	"errors"
	"context"
	"fmt"
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

	"github.com/otpscope/otpscope/internal/sink/chdb"
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
	listen, natsListen  string
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
		listen: freePort(t), natsListen: freePort(t), chListen: freePort(t), simListen: freePort(t),
		dataDir: dataDir,
	}
}

// start runs the binary with args and waits until /readyz answers 200.
func (in *instance) start(t *testing.T, args ...string) {
	t.Helper()
	in.logs = &syncBuffer{}
	in.cmd = exec.Command(binary, append([]string{
		"--listen", in.listen, "--nats-listen", in.natsListen, "--clickhouse-listen", in.chListen,
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

// TestSimulateEndToEnd starts the all-in-one with --simulate, reads its
// banner, sees simulated traffic arrive in ClickHouse through the endpoint,
// and checks that outside clients cannot write.
func TestSimulateEndToEnd(t *testing.T) {
	needEngine(t)
	in := newInstance(t, t.TempDir())
	in.start(t, "--simulate", "--simulate-rate", "50", "--simulate-time-scale", "20")
	for _, want := range []string{"otpscope is running", "http://" + in.listen + "/webhooks/tyntec", "http://" + in.chListen, "http://" + in.simListen} {
		if !strings.Contains(in.logs.String(), want) {
			t.Errorf("banner lacks %q:\n%s", want, in.logs)
		}
	}
	conn := in.clickhouse(t)
	var delivered uint64
	deadline := time.Now().Add(30 * time.Second)
	for delivered < 20 && time.Now().Before(deadline) {
		if err := conn.QueryRow(t.Context(), "SELECT count() FROM delivery_events WHERE status = 'DELIVERED'").Scan(&delivered); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if delivered < 20 {
		t.Fatalf("%d DELIVERED events after 30s of simulated traffic:\n%s", delivered, in.logs)
	}
	err := conn.Exec(t.Context(), "INSERT INTO delivery_events (event_id) VALUES ('x')")
	var ex *clickhouse.Exception
	if !errors.As(err, &ex) || ex.Code != 164 {
		t.Errorf("an outside INSERT = %v; want READONLY (164)", err)
	}
	in.stop(t)
	sc := bufio.NewScanner(strings.NewReader(in.logs.String()))
	for sc.Scan() {
		if strings.Contains(sc.Text(), "level=ERROR") {
			t.Errorf("error logged: %s", sc.Text())
		}
	}
}
