package app

import "testing"

// TestReachable: the banner gives a listener on every interface (Go
// reports 0.0.0.0 and :: alike as [::]) as localhost, which a client on
// the machine can dial; any other address as it is.
func TestReachable(t *testing.T) {
	for in, want := range map[string]string{
		"[::]:8080":      "localhost:8080",
		"0.0.0.0:8080":   "localhost:8080",
		":8080":          "localhost:8080",
		"127.0.0.1:8080": "127.0.0.1:8080",
		"[::1]:8080":     "[::1]:8080",
		"10.0.0.7:8080":  "10.0.0.7:8080",
		"otpscope:8080":  "otpscope:8080",
	} {
		if got := reachable(in); got != want {
			t.Errorf("reachable(%q) = %q; want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"nats://0.0.0.0:4222":     "nats://localhost:4222",
		"http://[::]:8090":        "http://localhost:8090",
		"nats://127.0.0.1:4222":   "nats://127.0.0.1:4222",
		"tls://nats.example:4222": "tls://nats.example:4222",
	} {
		if got := reachableURL(in); got != want {
			t.Errorf("reachableURL(%q) = %q; want %q", in, got, want)
		}
	}
}
