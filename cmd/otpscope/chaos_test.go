package main_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/otpscope/otpscope/internal/chdb/chdbtest"
	"github.com/otpscope/otpscope/internal/disktest"
	"github.com/otpscope/otpscope/internal/polltest"
	"github.com/otpscope/otpscope/internal/webtest"
)

// service is one process of the split deployment: ingest hosting NATS, or
// the reporter hosting ClickHouse and the sink.
type service struct {
	name, bin string
	args      []string
	listen    string
	cmd       *exec.Cmd
	logs      *polltest.Buffer
}

func (s *service) start(t *testing.T) {
	t.Helper()
	s.logs = &polltest.Buffer{}
	s.cmd = exec.Command(s.bin, s.args...)
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.signal(syscall.SIGKILL) })
	if !polltest.Within(90*time.Second, 100*time.Millisecond, func() bool { return s.ready() == http.StatusOK }) {
		t.Fatalf("%s not ready after 90s:\n%s", s.name, s.logs)
	}
}

func (s *service) ready() int {
	resp, err := http.Get("http://" + s.listen + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// signal sends sig and waits for the process to end.
func (s *service) signal(sig syscall.Signal) {
	if s.cmd == nil || s.cmd.Process == nil || s.cmd.ProcessState != nil {
		return
	}
	_ = s.cmd.Process.Signal(sig)
	_ = s.cmd.Wait()
}

// fill fills dir's filesystem with a ballast file and returns its path.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "ballast")
	disktest.Fill(t, path)
	return path
}

// TestChaos runs ingest (hosting NATS) and the reporter (hosting ClickHouse,
// running the sink) as separate processes under steady webhook load and
// puts them through a bad day: SIGKILL and SIGTERM of each, NATS restarting
// under the running sink, JetStream's disk filling up, the engine's disk
// filling up (its inserts fail). At the end every acknowledged webhook is in
// ClickHouse exactly once and nothing valid was dead-lettered. The disk-full
// phases mount two small tmpfs (root on Linux); without, they are skipped
// with a loud line. `make chaos` runs it alone, verbosely.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("LOUD: -short skips the chaos run; `make chaos` runs it alone")
	}
	needEngine(t)
	bins := t.TempDir()
	for _, name := range []string{"ingest", "reporter"} {
		if out, err := exec.Command("go", "build", "-o", filepath.Join(bins, name), "../"+name).CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", name, err, out)
		}
	}
	natsDir, chDir := t.TempDir(), t.TempDir()
	diskFull := disktest.Tmpfs(t, natsDir, 256) && disktest.Tmpfs(t, chDir, 768)
	const password = "chaos-nats-password-0123456789"
	natsListen, chListen := webtest.FreeAddr(t), webtest.FreeAddr(t)
	ingest := &service{name: "ingest", bin: filepath.Join(bins, "ingest"), listen: webtest.FreeAddr(t), args: nil}
	ingest.args = []string{"--listen", ingest.listen, "--admin-listen", webtest.FreeAddr(t), "--data-dir", natsDir,
		"--nats-listen", natsListen, "--nats-password", password, "--webhook-token", token, "--publish-timeout", "2s"}
	reporter := &service{name: "reporter", bin: filepath.Join(bins, "reporter"), listen: webtest.FreeAddr(t)}
	reporter.args = []string{"--listen", reporter.listen, "--data-dir", chDir, "--nats-url", "nats://" + natsListen,
		"--nats-password", password, "--clickhouse-listen", chListen,
		// An ack wait of 15 s: the disk-full phase must break a part before
		// the sink's first check of them, one ack wait after its first failed
		// insert; 5 s was lost to a loaded machine. Only the redelivery of
		// what a killed reporter held waits for it, which the end allows.
		"--sink-flush-interval", "200ms", "--sink-ack-wait", "15s", "--report-hourly", "", "--report-daily", "", "--report-weekly", "", "--alert-schedule", ""}
	ingest.start(t)
	reporter.start(t)
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{chListen}, Protocol: clickhouse.HTTP})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	client := &http.Client{Timeout: 5 * time.Second}
	load := webtest.StartLoad(t, 6, func(id string) (int, error) {
		return postWebhook(client, ingest.listen, id, "DELIVERED", time.Now())
	})
	flowing := func(phase string) {
		t.Helper()
		before := load.Acked()
		if !polltest.Within(90*time.Second, 50*time.Millisecond, func() bool { return load.Acked() >= before+300 }) {
			t.Fatalf("%s: traffic did not flow again:\ningest:\n%s\nreporter:\n%s", phase, ingest.logs, reporter.logs)
		}
		t.Logf("%-48s acknowledged so far %d", phase, load.Acked())
	}

	flowing("warm-up")
	for _, f := range []struct {
		what string
		svc  *service
		sig  syscall.Signal
	}{
		{"reporter killed (-9) and restarted", reporter, syscall.SIGKILL},
		{"ingest and NATS killed (-9) and restarted", ingest, syscall.SIGKILL},
		{"ingest and NATS stopped (TERM) and restarted", ingest, syscall.SIGTERM},
		{"reporter stopped (TERM) and restarted", reporter, syscall.SIGTERM},
	} {
		f.svc.signal(f.sig)
		f.svc.start(t)
		flowing(f.what)
	}

	if diskFull {
		ballast := fill(t, natsDir)
		if !polltest.Within(30*time.Second, 100*time.Millisecond, func() bool { return ingest.ready() == http.StatusServiceUnavailable }) {
			t.Errorf("JetStream's disk full: ingest /readyz stayed 200")
		}
		t.Logf("%-40s ingest /readyz 503", "JetStream's disk full")
		os.Remove(ballast)
		flowing("JetStream's disk freed, no restart")

		// The engine commits the parts written as the disk fills broken
		// (store.RecoverParts); whether one is under way at that instant is
		// chance, so the newest part is broken here as it leaves it: once
		// the first insert failed, when the full disk stops merges (a merge
		// reading it before it broke would replace it by a whole part), and
		// before the sink's first check (AckWait after that insert), which
		// looks at the parts written within AckWait before it.
		ballast = fill(t, chDir)
		polltest.Until(t, 30*time.Second, "the sink's first failed insert", func() bool { return insertFailures(reporter.listen) >= 1 })
		// Through the files: the reporter's endpoint is read-only for this
		// client, so BreakPart's SYSTEM DROP MARK CACHE is refused.
		_, newest := chdbtest.ActivePart(t, conn, "default.delivery_events", "")
		chdbtest.EmptyMarks(t, newest)
		if !polltest.Within(30*time.Second, 100*time.Millisecond, func() bool { return reporter.ready() == http.StatusServiceUnavailable }) {
			t.Errorf("the engine's disk full: reporter /readyz stayed 200")
		}
		t.Logf("%-40s reporter /readyz 503", "the engine's disk full")
		// Let the sink fail a few times: its inserts retry, nothing is parked.
		polltest.Until(t, 60*time.Second, "the sink's inserts failing", func() bool { return insertFailures(reporter.listen) >= 3 })
		os.Remove(ballast)
		if !polltest.Within(60*time.Second, 100*time.Millisecond, func() bool { return reporter.ready() == http.StatusOK }) {
			t.Errorf("the engine's disk freed: reporter /readyz did not recover:\n%s", reporter.logs)
		}
		flowing("the engine's disk freed, no restart")
		polltest.Until(t, 60*time.Second, "the broken parts found", func() bool { return metricSum(reporter.listen, "otpscope_sink_broken_parts_total") >= 1 })
	}
	load.Stop()
	acked, codes := load.AckedIDs(), load.Codes()

	chdbtest.WaitForIDs(t, conn, 120*time.Second, "SELECT toString(otp_id) FROM delivery_events", acked)
	var stored, distinct, deadSink uint64
	if err := conn.QueryRow(t.Context(), "SELECT count(), uniqExact(event_id) FROM delivery_events FINAL").Scan(&stored, &distinct); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(t.Context(), "SELECT count() FROM dead_letters WHERE source = 'sink'").Scan(&deadSink); err != nil {
		t.Fatal(err)
	}
	lost := 0
	rows, err := conn.Query(t.Context(), "SELECT toString(otp_id) FROM delivery_events")
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		have[id] = true
	}
	rows.Close()
	for id := range acked {
		if !have[id] {
			lost++
		}
	}
	summary := fmt.Sprintf("chaos: answers %v; acknowledged %d, stored %d (distinct %d), lost %d, doubled %d, dead-lettered by the sink %d; broken parts set aside %d, rows replayed %d",
		codes, len(acked), stored, distinct, lost, stored-distinct, deadSink,
		metricSum(reporter.listen, "otpscope_sink_broken_parts_total"), metricSum(reporter.listen, "otpscope_sink_replayed_rows_total"))
	t.Log(summary)
	if lost > 0 || stored != distinct || deadSink > 0 {
		t.Error(summary)
	}
	for _, code := range []string{"400", "401", "413", "415", "500"} {
		if codes[code] > 0 {
			t.Errorf("ingest answered %s %d times: only 200 and 503 are right under these faults", code, codes[code])
		}
	}
	if strings.Contains(reporter.logs.String(), "panic") || strings.Contains(ingest.logs.String(), "panic") {
		t.Error("a process panicked")
	}
	reporter.signal(syscall.SIGTERM)
	ingest.signal(syscall.SIGTERM)
}

// insertFailures reads the sink's failed insert attempts from /metrics.
func insertFailures(addr string) int { return metricSum(addr, "otpscope_sink_insert_failures_total") }

// metricSum reads the sum of a metric's series from addr's /metrics.
func metricSum(addr, name string) int {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	n := 0
	for line := range strings.SplitSeq(string(b), "\n") {
		if line == name || strings.HasPrefix(line, name+" ") || strings.HasPrefix(line, name+"{") {
			var v float64
			if _, err := fmt.Sscan(line[strings.LastIndex(line, " ")+1:], &v); err == nil {
				n += int(v)
			}
		}
	}
	return n
}
