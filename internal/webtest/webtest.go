// Package webtest gives tests what they need to reach a service over HTTP:
// a free loopback address to start it on and JSON answers.
package webtest

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
)

// FreeAddr returns 127.0.0.1 with a port that was free when it was called,
// for a listener that the test cannot open on port 0 itself: another
// process's, or one whose address must be known before it starts.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
}

// FreePort is FreeAddr's port, for a configuration that takes a number.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
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
