package main_test

import (
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/otpscope/otpscope/internal/chdb/chdbtest"
	"github.com/otpscope/otpscope/internal/polltest"
)

// TestIdleConnectionFloodLeavesTheProcessWhole opens many more idle
// connections to the public listener than the process has file descriptors
// (its RLIMIT_NOFILE lowered to 512). The listener's cap keeps them in the
// kernel's backlog: the admin listener, the ClickHouse endpoint and the sink
// go on working, and once the flood is gone a webhook is acknowledged and
// stored.
func TestIdleConnectionFloodLeavesTheProcessWhole(t *testing.T) {
	needEngine(t)
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur < 3000 {
		t.Skipf("LOUD: this test opens 2,000 connections and needs an open-file limit of at least 3,000 (have %d)", lim.Cur)
	}
	in := newInstance(t, t.TempDir())
	in.nofile = 512
	in.start(t, "--max-connections", "64")

	var flood []net.Conn
	for range 2000 {
		c, err := net.DialTimeout("tcp", in.listen, 2*time.Second)
		if err != nil {
			break // the backlog is full: the kernel refuses more, which is fine
		}
		flood = append(flood, c)
	}
	t.Logf("%d idle connections open to the public listener", len(flood))
	if len(flood) < 600 {
		t.Fatalf("only %d connections opened; the flood must exceed the process's 512 file descriptors", len(flood))
	}

	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + in.adminListen + "/readyz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("admin /readyz during the flood = %v, %v; want 200:\n%s", resp, err, in.logs)
	}
	resp.Body.Close()
	var one uint8
	if err := in.clickhouse(t).QueryRow(t.Context(), "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("the ClickHouse endpoint during the flood: %v", err)
	}

	for _, c := range flood {
		c.Close()
	}
	id := uuid.NewString()
	polltest.Until(t, 30*time.Second, "a webhook acknowledged after the flood", func() bool {
		code, err := postWebhook(client, in.listen, id, "DELIVERED", time.Now())
		return err == nil && code == http.StatusOK
	})
	chdbtest.WaitForIDs(t, in.clickhouse(t), 30*time.Second, "SELECT toString(otp_id) FROM delivery_events", map[string]bool{id: true})
	in.stop(t)
}
