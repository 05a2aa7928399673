package flagenv

import "testing"

func TestShown(t *testing.T) {
	for _, tt := range []struct{ flag, value, want string }{
		{"listen", "127.0.0.1:8080", "127.0.0.1:8080"},
		{"tyntec-api-key", "abc", "(secret)"},
		{"nats-password", "abc", "(secret)"},
		{"webhook-token", "a,b", "(2 secrets)"},
		{"api-token", "", ""},
		{"register-callback-header", "X-Webhook-Token: abc", "X-Webhook-Token: (secret)"},
		{"clickhouse-dsn", "clickhouse://otpscope:pw@ch:9000/otpscope?dial_timeout=5s", "clickhouse://otpscope:xxxxx@ch:9000/otpscope?dial_timeout=5s"},
		{"clickhouse-dsn", "http://ch:8123/db?password=pw&x=1", "http://ch:8123/db?password=xxxxx&x=1"},
		{"nats-url", "nats://otpscope:pw@a:4222,nats://b:4222", "nats://otpscope:xxxxx@a:4222,nats://b:4222"},
		{"nats-url", "nats://s3cr3tToken@a:4222", "nats://xxxxx@a:4222"}, // a user alone is NATS's token
		{"alert-webhook-url", "https://hooks.slack.com/services/T0/B0/abc", "https://hooks.slack.com/…"},
		{"tyntec-url", "https://api.tyntec.com", "https://api.tyntec.com"},
		{"api", "http://ops:pw@127.0.0.1:8081", "http://ops:xxxxx@127.0.0.1:8081"}, // the CLIs' --api
		{"console-url", "https://otpscope.example.com/console/", "https://otpscope.example.com/console/"},
		{"tyntec-url", "http://[::1", "(not a URL, hidden)"},
		{"tls-key-file", "/etc/otpscope/tls.key", "/etc/otpscope/tls.key"}, // a path
	} {
		if got := Shown(tt.flag, tt.value); got != tt.want {
			t.Errorf("Shown(%q, %q) = %q; want %q", tt.flag, tt.value, got, tt.want)
		}
	}
}
