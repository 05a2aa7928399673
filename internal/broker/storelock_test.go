package broker_test

import (
	"errors"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/broker"
	"github.com/otpscope/otpscope/internal/broker/brokertest"
)

// TestSecondServerOnTheStoreIsRefused: an embedded server started on a
// store another one holds — in another process (a second otpscope on the
// same --data-dir), or in this one — is refused before it reads anything
// there, and the first one's stream keeps every message. (Before, the
// second one's recovery truncated the stream's message file under the
// first.) A server restarted in the same process once the first is down
// takes the store over.
func TestSecondServerOnTheStoreIsRefused(t *testing.T) {
	srv := brokertest.NewServer(t)
	b := srv.Broker(t)
	const n = 200
	for i := range n {
		if err := b.Publish(t.Context(), message(i)); err != nil {
			t.Fatal(err)
		}
	}
	second := srv.Config()
	second.Listen = "127.0.0.1:-1"
	if _, err := broker.StartServer(second, brokertest.Logger(t)); !errors.Is(err, broker.ErrStoreInUse) {
		t.Fatalf("a second server in this process on the store: %v; want ErrStoreInUse", err)
	}
	srv.Stop()

	// Another process holds it now.
	holder := exec.Command(os.Args[0])
	holder.Env = append(os.Environ(), "OTPSCOPE_TEST_HOLD_STORE="+srv.Config().DataDir)
	out, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	ready := make(chan string, 1)
	go func() {
		buf := make([]byte, 256)
		k, _ := out.Read(buf)
		ready <- string(buf[:k])
	}()
	select {
	case line := <-ready:
		if !strings.Contains(line, "holding") {
			t.Fatalf("the holder said %q", line)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the holder did not start")
	}
	if _, err := broker.StartServer(second, brokertest.Logger(t)); !errors.Is(err, broker.ErrStoreInUse) || !strings.Contains(err.Error(), "stop it first") {
		t.Fatalf("a server beside another process's on the store: %v; want ErrStoreInUse", err)
	}
	holder.Process.Kill()
	holder.Wait()

	srv.Start() // the store is free again
	brokertest.WaitFor(t, 10*time.Second, "reconnect", func() bool { return b.Ready(t.Context()) == nil })
	if got := brokertest.StreamMsgs(t, b); got != n {
		t.Errorf("after the refused servers the stream holds %d messages; want %d", got, n)
	}
}

// TestMain runs the tests, or, with OTPSCOPE_TEST_HOLD_STORE set, is
// TestSecondServerOnTheStoreIsRefused's other process: an embedded server
// holding that store until killed.
func TestMain(m *testing.M) {
	dir := os.Getenv("OTPSCOPE_TEST_HOLD_STORE")
	if dir == "" {
		os.Exit(m.Run())
	}
	cfg := broker.Config{Listen: "127.0.0.1:-1", DataDir: dir, Stream: broker.StreamConfig{Name: broker.DefaultStreamName, Replicas: 1}}
	srv, err := broker.StartServer(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		os.Stdout.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
	defer srv.Shutdown()
	os.Stdout.WriteString("holding\n")
	time.Sleep(time.Minute)
}

// TestServerOnATakenPortFailsAtOnce: an embedded server whose client port
// another process holds fails its start with the listener's error, rather
// than waiting 30 s for readiness that never comes (the server only logs
// the bind error) and then saying it was not ready.
func TestServerOnATakenPortFailsAtOnce(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg := brokertest.Config(t)
	cfg.Listen = taken.Addr().String()
	srv, err := broker.StartServer(cfg, slog.New(slog.DiscardHandler))
	if err == nil {
		srv.Shutdown()
		t.Fatal("a server started on a taken port")
	}
	if !strings.Contains(err.Error(), "address already in use") || !strings.Contains(err.Error(), cfg.Listen) {
		t.Errorf("start on a taken port: %v; want the bind error naming %s", err, cfg.Listen)
	}
	// The store is free again for a server on a free port.
	cfg.Listen = "127.0.0.1:-1"
	srv, err = broker.StartServer(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("start on the same store after the failed one: %v", err)
	}
	srv.Shutdown()
	srv.WaitForShutdown()
}
