// Package webtest gives tests what they need to reach a service over HTTP:
// a free loopback address to start it on and JSON answers.
package webtest

import (
	"encoding/json"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
)

// FreeAddr returns 127.0.0.1 with a port that was free when it was called,
// for a listener that the test cannot open on port 0 itself: another
// process's, or one whose address must be known before it starts.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
}

// handed are the ports FreePort has handed out.
var handed = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// FreePort is FreeAddr's port, for a configuration that takes a number.
//
// It is drawn below Linux's ephemeral range (32768–60999 by default), not
// from port 0: between this call and the listen, or while a node restarts
// on its old port, an outgoing connection anywhere on the machine can take
// an ephemeral port as its source, and the listen then fails (a cluster node
// "not ready after 30s"). Below the range only another explicit bind can.
// A port is handed out once per test binary: a process given several
// addresses before it binds any must not get the same one twice ("listen
// and clickhouse-listen are both …").
func FreePort(t testing.TB) int {
	t.Helper()
	const low, high = 20000, 32768
	handed.Lock()
	defer handed.Unlock()
	for range 200 {
		port := low + rand.IntN(high-low)
		if handed.ports[port] {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		ln.Close()
		handed.ports[port] = true
		return port
	}
	t.Fatalf("no free port in [%d, %d) after 200 tries", low, high)
	return 0
}

// GetJSON GETs url and decodes its JSON answer into v. Anything but a 200
// with a JSON body fails the test, with the body in the message.
func GetJSON(t testing.TB, url string, v any) {
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
		t.Fatalf("GET %s: decode: %v", url, err)
	}
}
