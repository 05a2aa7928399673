package app_test

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/otpscope/otpscope/internal/app"
	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/cli"
)

// config runs `<binary> config args` with environ and returns its exit code
// and what it printed (stdout and the log).
func config(binary string, args, environ []string) (int, string) {
	var out bytes.Buffer
	code := cli.Main(app.Command(app.Binaries[binary], nil), append([]string{"config"}, args...), environ, &out, &out)
	return code, out.String()
}

// TestConfigRefusesATokenInTwoRoles: one secret as the webhook token
// (tyntec holds it), the app or push token (the app backend, the push
// provider), the API token (replays, backups) and the metrics token
// (Prometheus holds it) is refused, whichever of a rotation's tokens
// it is and whether it came from a flag or a _FILE variable; the message
// names the flags, never the token.
func TestConfigRefusesATokenInTwoRoles(t *testing.T) {
	const (
		same  = "same-secret-token-0123456789"
		other = "other-secret-token-0123456789"
		third = "third-secret-token-0123456789"
	)
	file := filepath.Join(t.TempDir(), "webhook-tokens")
	if err := os.WriteFile(file, []byte(other+"\n"+same+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, binary string
		args, env    []string
		flags        []string // named by the refusal; none: accepted
	}{
		{"one token everywhere", "otpscope", []string{"--webhook-token", same, "--api-token", same, "--metrics-token", same}, nil, []string{"api-token", "metrics-token"}},
		{"webhook and API token", "ingest", []string{"--webhook-token", same, "--api-token", same}, nil, []string{"webhook-token", "api-token"}},
		{"webhook and metrics token", "otpscope", []string{"--webhook-token", same, "--api-token", other, "--metrics-token", same}, nil, []string{"metrics-token", "webhook-token"}},
		{"API and metrics token", "reporter", []string{"--api-token", other + "," + same, "--metrics-token", third, "--metrics-token", same}, nil, []string{"api-token", "metrics-token"}},
		{"the second of a file's tokens", "ingest", []string{"--api-token", same}, []string{"OTPSCOPE_WEBHOOK_TOKENS_FILE=" + file}, []string{"webhook-token", "api-token"}},
		{"API and read token", "otpscope", []string{"--webhook-token", third, "--api-token", same, "--api-read-token", same}, nil, []string{"api-token", "api-read-token"}},
		{"read and metrics token", "poller", []string{"--api-token", other, "--api-read-token", same}, []string{"OTPSCOPE_METRICS_TOKEN=" + same}, []string{"api-read-token", "metrics-token"}},
		{"webhook and app token", "ingest", []string{"--webhook-token", same, "--app-token", same}, nil, []string{"webhook-token", "app-token"}},
		{"app and push token", "otpscope", []string{"--webhook-token", third, "--app-token", other, "--push-token", other}, nil, []string{"app-token", "push-token"}},
		{"push and API token", "otpscope", []string{"--webhook-token", third, "--api-token", same}, []string{"OTPSCOPE_PUSH_TOKEN=" + same}, []string{"api-token", "push-token"}},
		{"each its own", "otpscope", []string{"--webhook-token", same, "--api-token", other, "--metrics-token", third}, nil, nil},
		{"each sender its own", "otpscope", []string{"--webhook-token", same, "--app-token", other, "--push-token", third}, nil, nil},
		{"each its own, rotating", "ingest", []string{"--api-token", third}, []string{"OTPSCOPE_WEBHOOK_TOKENS_FILE=" + file}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out := config(tt.binary, tt.args, append([]string{"OTPSCOPE_TYNTEC_API_KEY=key"}, tt.env...))
			if len(tt.flags) == 0 {
				if code != 0 {
					t.Fatalf("config = %d; want accepted:\n%s", code, out)
				}
				return
			}
			refusal, _ := strings.CutPrefix(out[strings.LastIndex(out, "\nconfiguration "):], "\n")
			if code != 2 || !strings.HasPrefix(refusal, "configuration refused") {
				t.Fatalf("config = %d; want refused:\n%s", code, out)
			}
			for _, f := range tt.flags {
				if !strings.Contains(refusal, f) {
					t.Errorf("refusal %q does not name %s", refusal, f)
				}
			}
			if strings.Contains(out, "secret-token") {
				t.Errorf("config shows a token:\n%s", out)
			}
		})
	}
}

// TestConfigSaysUnknownAlertChannels: a per-channel alert threshold for a
// channel otpscope does not know is accepted (tyntec adds channels), but
// `config` and the start log say which, so that a typo (SMSS) shows; a
// name no channel can have is refused.
func TestConfigSaysUnknownAlertChannels(t *testing.T) {
	code, out := config("reporter", []string{"--alert-channel-min-delivery-rate", "SMSS=0.95,silent=0", "--alert-channel-max-latency-p95", "FOO=5s,VOICE=2m",
		"--alert-channel-max-delivery-rate-drop", "push=0,RSC=0.1"}, nil)
	if code != 0 {
		t.Fatalf("config = %d; want accepted:\n%s", code, out)
	}
	for _, want := range []string{
		"level=WARN msg=\"a per-channel alert threshold names a channel otpscope does not know",
		"flag=alert-channel-min-delivery-rate channels=SMSS known=SMS,VOICE,VIBER,WHATSAPP,SILENT,PUSH",
		"flag=alert-channel-max-latency-p95 channels=FOO ",
		"flag=alert-channel-max-delivery-rate-drop channels=RSC ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("config does not say %q:\n%s", want, out)
		}
	}
	if code, out := config("reporter", []string{"--alert-channel-min-delivery-rate", "SMS=0.95,VOICE=0.7"}, nil); code != 0 || strings.Contains(out, "WARN") {
		t.Errorf("config with known channels = %d; want accepted without a warning:\n%s", code, out)
	}
	for _, bad := range [][]string{
		{"--alert-channel-min-delivery-rate", "S.MS=0.5,V OICE=0.3"},
		{"--alert-channel-max-latency-p95", "SMS*=5s"},
		{"--alert-channel-max-delivery-rate-drop", "SM-S=0.1"},
	} {
		if code, out := config("reporter", bad, nil); code != 2 || !strings.Contains(out, "not a channel name") {
			t.Errorf("config %v = %d; want refused as not a channel name:\n%s", bad, code, out)
		}
	}
}

// TestConfigRefusesAlertmanagerAPIPath: --alertmanager-url is Alertmanager's
// base URL; with the API path already on it the alerts went to
// …/api/v2/alerts/api/v2/alerts.
func TestConfigRefusesAlertmanagerAPIPath(t *testing.T) {
	code, out := config("reporter", []string{"--alertmanager-url", "http://am:9093/api/v2/alerts"}, nil)
	if code != 2 || !strings.Contains(out, "configuration refused: alertmanager-url") || !strings.Contains(out, "http://alertmanager:9093") {
		t.Errorf("config with an API path on --alertmanager-url = %d; want refused, the base URL asked for:\n%s", code, out)
	}
	if code, out := config("reporter", []string{"--alertmanager-url", "http://am:9093,http://am2:9093/"}, nil); code != 0 {
		t.Errorf("config with base URLs = %d; want accepted:\n%s", code, out)
	}
}

// TestConfigRefusesListenerClashes: two listeners on one address, or a
// port beyond 65535, are refused by config, not met as a bind error after
// the migrations; port 0 never clashes.
func TestConfigRefusesListenerClashes(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string // in the refusal; "": accepted
	}{
		{[]string{"--listen", "127.0.0.1:39480", "--admin-listen", "127.0.0.1:39480"}, "listen and admin-listen are both"},
		{[]string{"--admin-listen", "0.0.0.0:39481", "--insecure-open-api", "--clickhouse-listen", "127.0.0.1:39481"}, "admin-listen and clickhouse-listen are both"},
		{[]string{"--simulate-listen", "127.0.0.1:8080"}, "listen and simulate-listen are both"},
		{[]string{"--listen", "127.0.0.1:99999"}, "port 99999 is not within"},
		{[]string{"--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--clickhouse-listen", "127.0.0.1:0"}, ""},
		{[]string{"--listen", "127.0.0.1:39480", "--admin-listen", "127.0.0.2:39480"}, ""},
	} {
		code, out := config("otpscope", append([]string{"--simulate"}, tt.args...), nil)
		if tt.want == "" {
			if code != 0 {
				t.Errorf("otpscope config %q = %d; want accepted:\n%s", tt.args, code, out)
			}
			continue
		}
		if code != 2 || !strings.Contains(out, tt.want) {
			t.Errorf("otpscope config %q = %d; want exit 2 saying %q:\n%s", tt.args, code, tt.want, out)
		}
	}
}

// TestResendPolicyCheckedWithPollerOff: without --tyntec-api-key the
// all-in-one's poller is off, but a --resend-policy given is still read:
// `config` and the start refuse a missing or malformed file as they do with
// the poller on, and a good one is accepted with a warning that nothing
// applies it.
func TestResendPolicyCheckedWithPollerOff(t *testing.T) {
	dir := t.TempDir()
	malformed := filepath.Join(dir, "malformed.json")
	if err := os.WriteFile(malformed, []byte(`{"rules": [`), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.json")
	if err := os.WriteFile(empty, []byte(`{"rules": []}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{filepath.Join(dir, "nonexistent.json"), malformed, empty} {
		code, out := config("otpscope", []string{"--webhook-token", token, "--resend-policy", path}, nil)
		if code != 2 || !strings.Contains(out, "configuration refused: ") || !strings.Contains(out, "resend policy") {
			t.Errorf("config --resend-policy %s without a tyntec key = %d; want refused:\n%s", path, code, out)
		}

		// The start: New refuses before it binds anything (the listener
		// taken would fail it otherwise, with a listen error).
		taken, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		cfg := newConfig(t, "otpscope")
		cfg.Listen = taken.Addr().String()
		cfg.Ingest.Tokens = []string{token}
		cfg.Poller.ResendPolicy = path
		_, err = app.New(t.Context(), cfg, brokertest.Logger(t))
		taken.Close()
		if err == nil || !strings.Contains(err.Error(), "resend policy") {
			t.Errorf("New with --resend-policy %s without a tyntec key = %v; want the policy refused", path, err)
		}
	}

	code, out := config("otpscope", []string{"--webhook-token", token, "--resend-policy", "../../docs/examples/resend-policy.json"}, nil)
	if code != 0 || !strings.Contains(out, `level=WARN msg="--resend-policy without --tyntec-api-key`) {
		t.Errorf("config with a good policy without a tyntec key = %d; want accepted with a warning:\n%s", code, out)
	}
	// With the poller on, no such warning.
	code, out = config("otpscope", []string{"--webhook-token", token, "--resend-policy", "../../docs/examples/resend-policy.json"}, []string{"OTPSCOPE_TYNTEC_API_KEY=key"})
	if code != 0 || strings.Contains(out, "--resend-policy without") {
		t.Errorf("config with a good policy and a tyntec key = %d; want accepted without the warning:\n%s", code, out)
	}
}

// An open admin API beyond loopback answers a browser at --console-url's
// host besides IP addresses and localhost (ops.BrowserGuard): where the
// alerts send operators. A binary without the console has none.
func TestBrowserNamesAreTheConsoleURLs(t *testing.T) {
	for _, tt := range []struct {
		binary, consoleURL string
		want               []string
	}{
		{"otpscope", "https://otpscope.example.com:8443/console/", []string{"otpscope.example.com"}},
		{"reporter", "http://10.0.0.5:8081/console/", []string{"10.0.0.5"}},
		{"reporter", "", nil},
		{"ingest", "", nil},
	} {
		c := newConfig(t, tt.binary)
		c.Reports.ConsoleURL = tt.consoleURL
		if got := c.BrowserNames(); !slices.Equal(got, tt.want) {
			t.Errorf("%s --console-url %q: browser names %q; want %q", tt.binary, tt.consoleURL, got, tt.want)
		}
	}
}

// TestConfigReadsTheContractsAPITokens: OTPSCOPE_API_TOKENS, the name
// the operator contract (shared/DESIGN.md) gives --api-token, guards the API as
// OTPSCOPE_API_TOKEN does (it was ignored, with a warning: the API open);
// a misspelt secret stops the start.
func TestConfigReadsTheContractsAPITokens(t *testing.T) {
	env := []string{"OTPSCOPE_WEBHOOK_TOKENS=webhook-token-0123456789", "OTPSCOPE_API_TOKENS=contract-api-token-0123456789"}
	code, out := config("otpscope", nil, env)
	if code != 0 || !regexp.MustCompile(`--api-token\s+\(secret\)\s+\$OTPSCOPE_API_TOKENS`).MatchString(out) || strings.Contains(out, "ignoring") {
		t.Errorf("config with OTPSCOPE_API_TOKENS = %d:\n%s\nwant accepted, --api-token set from it, no warning", code, out)
	}
	code, out = config("reporter", nil, []string{"OTPSCOPE_API_TOKN=contract-api-token-0123456789"})
	if code != 2 || !strings.Contains(out, "OTPSCOPE_API_TOKN names no setting of otpscope (did you mean OTPSCOPE_API_TOKEN?)") {
		t.Errorf("config with OTPSCOPE_API_TOKN = %d:\n%s\nwant refused, naming it", code, out)
	}
}

// TestConfigRefusesAnOpenAPIBeyondLoopback: the API and /metrics beyond
// loopback without --api-token (for loopback only without one) stop
// the start, naming the address, unless --insecure-open-api says so; on
// loopback, with a token, or with only the public listener beyond, they
// start. Both flags at once are refused.
func TestConfigRefusesAnOpenAPIBeyondLoopback(t *testing.T) {
	const webhook, api = "webhook-token-0123456789", "api-token-0123456789ab"
	for _, tt := range []struct {
		binary string
		args   []string
		refuse string // in the refusal; "": accepted
	}{
		{"ingest", []string{"--webhook-token", webhook, "--admin-listen", "0.0.0.0:8083"}, "admin-listen 0.0.0.0:8083 is beyond loopback and there is no --api-token"},
		{"reporter", []string{"--listen", "0.0.0.0:8081"}, "listen 0.0.0.0:8081 is beyond loopback"},
		{"otpscope", []string{"--webhook-token", webhook, "--admin-listen", "10.0.0.5:8081"}, "admin-listen 10.0.0.5:8081 is beyond loopback"},
		{"otpscope", []string{"--webhook-token", webhook, "--admin-listen", "10.0.0.5:8081", "--insecure-open-api"}, ""},
		{"otpscope", []string{"--webhook-token", webhook, "--admin-listen", "0.0.0.0:8081", "--api-token", api}, ""},
		{"otpscope", []string{"--webhook-token", webhook, "--admin-listen", "localhost:8081"}, ""},
		{"ingest", []string{"--webhook-token", webhook, "--listen", "0.0.0.0:8080"}, ""}, // the admin stays on loopback
		{"otpscope", []string{"--webhook-token", webhook, "--api-token", api, "--insecure-open-api"}, "--insecure-open-api with --api-token"},
	} {
		code, out := config(tt.binary, tt.args, nil)
		if tt.refuse == "" {
			if code != 0 {
				t.Errorf("%s %q: %d; want accepted:\n%s", tt.binary, tt.args, code, out)
			}
			continue
		}
		if code != 2 || !strings.Contains(out, tt.refuse) {
			t.Errorf("%s %q: %d; want refused, saying %q:\n%s", tt.binary, tt.args, code, tt.refuse, out)
		}
	}
}

// TestConfigPollerZeros: the poller's flags, in the poller and the
// all-in-one, show and run a wait's 0 as none, and refuse a 0 that means
// nothing, naming the flag, where both took the default while `config`
// showed 0.
func TestConfigPollerZeros(t *testing.T) {
	env := []string{"OTPSCOPE_TYNTEC_API_KEY=key", "OTPSCOPE_WEBHOOK_TOKENS=webhook-token-0123456789"}
	for _, binary := range []string{"poller", "otpscope"} {
		for _, name := range []string{"settle", "recheck", "grace", "push-grace"} {
			if code, out := config(binary, []string{"--" + name, "0"}, env); code != 0 || !regexp.MustCompile(`--`+name+` +0s +flag`).MatchString(out) {
				t.Errorf("%s config --%s 0 = %d; want accepted, showing 0s:\n%s", binary, name, code, out)
			}
		}
		for _, name := range []string{"otp-expiry", "leader-ttl", "state-ttl", "push-rate-limit", "push-rate-period", "push-recheck", "push-max-polls", "push-timeout", "tyntec-rate-limit", "tyntec-rate-period", "tyntec-timeout"} {
			if code, out := config(binary, []string{"--" + name, "0"}, env); code != 2 || !strings.Contains(out, "configuration refused: invalid value \"0\" for flag -"+name+": want ") {
				t.Errorf("%s config --%s 0 = %d; want refused naming the flag:\n%s", binary, name, code, out)
			}
		}
	}
}

// TestConfigRefusesWhatTheStartWould: values a start refuses only after
// bringing things up, or retries for good, are refused by `config` (and
// so at once by a start), naming the flag.
func TestConfigRefusesWhatTheStartWould(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"OTPSCOPE_WEBHOOK_TOKENS=webhook-token-0123456789", "OTPSCOPE_DATA_DIR=" + t.TempDir()}
	for _, tt := range []struct {
		binary string
		args   []string
		flag   string // named by the refusal; "": accepted
	}{
		{"otpscope", []string{"--stream", "a.b"}, "stream"},
		{"ingest", []string{"--stream", "a b"}, "stream"},
		{"reporter", []string{"--stream", "a/b"}, "stream"},
		{"otpscope", []string{"--stream", ""}, "stream"},
		{"otpscope", []string{"--sink-consumer", "a.b"}, "sink-consumer"},
		{"reporter", []string{"--sink-consumer", "a>"}, "sink-consumer"},
		{"otpscope", []string{"--report-dir", file}, "report-dir"},
		{"otpscope", []string{"--report-dir", filepath.Join(t.TempDir(), "reports")}, ""},
		{"otpscope", []string{"--backup-dir", file}, "backup-dir"},
		{"reporter", []string{"--backup-dir", file}, "backup-dir"},
		{"otpscope", []string{"--max-body-bytes", "999999999"}, "max-body-bytes"},
		{"ingest", []string{"--max-body-bytes", "999999999"}, "max-body-bytes"},
		{"otpscope", []string{"--max-body-bytes", "1000000"}, ""},
		// An external server's max_payload is known once connected.
		{"ingest", []string{"--max-body-bytes", "999999999", "--nats-url", "nats://127.0.0.1:4222"}, ""},
	} {
		code, out := config(tt.binary, tt.args, env)
		if tt.flag == "" {
			if code != 0 {
				t.Errorf("%s config %q = %d; want accepted:\n%s", tt.binary, tt.args, code, out)
			}
			continue
		}
		if code != 2 || !strings.Contains(out, "configuration refused: "+tt.flag+" ") {
			t.Errorf("%s config %q = %d; want refused naming %s:\n%s", tt.binary, tt.args, code, tt.flag, out)
		}
	}
	// The all-in-one's simulated traffic share, refused as tyntecsim's
	// --v1-share is: 1.5 ran.
	if code, out := config("otpscope", []string{"--simulate", "--simulate-v1-share", "1.5"}, env); code != 2 || !strings.Contains(out, "traffic v1 share 1.5: want 0..1") {
		t.Errorf("otpscope config --simulate-v1-share 1.5 = %d; want it refused:\n%s", code, out)
	}
}

// A reconciliation cycle ends at the schedule's next run: a --tyntec-timeout
// not shorter than the shortest cycle is warned of (a tyntec that slow is
// read by no cycle), and the defaults (10 s, every 30 s) are not.
func TestConfigWarnsOfATyntecTimeoutPastTheCycle(t *testing.T) {
	key := []string{"OTPSCOPE_TYNTEC_API_KEY=key"}
	const warning = "--tyntec-timeout is not shorter than a reconciliation cycle"
	for _, c := range []struct {
		args []string
		warn bool
	}{
		{nil, false},
		{[]string{"--reconcile-schedule", "@every 5s"}, true},
		{[]string{"--reconcile-schedule", "@every 5s", "--tyntec-timeout", "4s"}, false},
		{[]string{"--reconcile-schedule", "* * * * *", "--tyntec-timeout", "1m"}, true},
	} {
		code, out := config("otpscope", append([]string{"--webhook-token", token}, c.args...), key)
		if code != 0 || strings.Contains(out, warning) != c.warn {
			t.Errorf("config %v = %d; want accepted, warned of the timeout: %v:\n%s", c.args, code, c.warn, out)
		}
	}
}
