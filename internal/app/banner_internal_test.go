package app

import "testing"

// TestReachable: the banner gives a listener on every interface (Go
// reports 0.0.0.0 and :: alike as [::]) as localhost, which a client on
// the machine can dial, as an address and in a URL; any other address as
// it is.
func TestReachable(t *testing.T) {
	for in, want := range map[string]string{
		"[::]:8080":      "localhost:8080",
		"0.0.0.0:4222":   "localhost:4222",
		":8080":          "localhost:8080",
		"[0:0::0]:8090":  "localhost:8090",
		"127.0.0.1:8080": "127.0.0.1:8080",
		"[::1]:8080":     "[::1]:8080",
		"10.0.0.7:8080":  "10.0.0.7:8080",
		"otpscope:8080":  "otpscope:8080",
	} {
		if got := reachable(in); got != want {
			t.Errorf("reachable(%q) = %q; want %q", in, got, want)
		}
		if got := reachableURL("nats://" + in); got != "nats://"+want {
			t.Errorf("reachableURL(nats://%s) = %q; want nats://%s", in, got, want)
		}
	}
}
