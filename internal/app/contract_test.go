package app_test

import (
	"bytes"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/santhosh-tekuri/jsonschema/v6"

	eventschema "github.com/otpscope/otpscope/docs/events"
	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/ingest"
)

// TestPublishedMessagesMatchTheirSchemas holds the running all-in-one to
// docs/events, the contract downstream subscribers code against: the
// simulator's logins (silent auth and push first for some, v1 OTPs for
// some, 30% of webhooks lost, OTPs expiring), the example resend policy,
// a malformed webhook, alerts evaluated and reports published every few
// seconds. Every message on tyntec.2fa.> carries a ce-type with a schema
// and a payload that schema accepts, and each kind of message appears.
func TestPublishedMessagesMatchTheirSchemas(t *testing.T) {
	schemas, err := eventschema.Compile()
	if err != nil {
		t.Fatal(err)
	}
	cfg := lossyConfig(t, 0)
	cfg.Simulate.Rate = 10
	// v1 OTPs are polled only when an upstream service tracks them, which
	// the simulator's app does for the OTPs that follow a method: many of
	// both, and the budget of a larger account, so that some are polled soon.
	cfg.Simulate.SilentShare, cfg.Simulate.PushShare, cfg.Simulate.V1Share = 0.3, 0.3, 0.5
	cfg.Poller.Tyntec.RateLimit = 1000
	cfg.Simulate.OTPExpiry = 4 * time.Second
	cfg.Simulate.PushExpiry = 2 * time.Second
	cfg.Poller.VerifySample = 1
	cfg.Poller.ResendPolicy = "../../docs/examples/resend-policy.json"
	cfg.Reports.Alerts = "@every 2s"
	cfg.Reports.Hourly = "@every 3s"
	cfg.Ingest.Tokens = []string{token}
	a := serve(t, cfg)

	var (
		mu       sync.Mutex
		seen     = map[string]int{}
		problems []string
	)
	unsubscribe, err := a.Broker().Subscribe("tyntec.2fa.>", func(m *nats.Msg) {
		typ := m.Header.Get(events.HeaderType)
		problem := ""
		if s := schemas[typ]; s == nil {
			problem = "no schema for ce-type " + typ
		} else if inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(m.Data)); err != nil {
			problem = "not JSON: " + err.Error()
		} else if err := s.Validate(inst); err != nil {
			problem = err.Error()
		}
		mu.Lock()
		defer mu.Unlock()
		seen[typ]++
		if problem != "" && len(problems) < 10 {
			problems = append(problems, m.Subject+": "+problem+"\n"+string(m.Data))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(unsubscribe)

	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+a.Addr()+ingest.WebhookPath, strings.NewReader(`{"otpId":`))
	req.Header.Set("X-Webhook-Token", token)
	req.Header.Set("Content-Type", "application/json")
	if got := do(t, req); got != http.StatusBadRequest {
		t.Fatalf("a malformed webhook = %d; want 400", got)
	}

	want := []string{events.TypeDeliveryStatus, events.TypeDeadLetter, events.TypeOTPStatus, events.TypeV1Event, events.TypeResend,
		events.TypeReconcile, events.TypeTrack, events.TypeSilentOutcome, events.TypePushApproval, events.TypeAlert, events.TypeReport}
	missing := func() []string {
		mu.Lock()
		defer mu.Unlock()
		var out []string
		for _, typ := range want {
			if seen[typ] == 0 {
				out = append(out, typ)
			}
		}
		return out
	}
	deadline := time.Now().Add(90 * time.Second)
	for len(missing()) > 0 && time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("messages by ce-type: %v", seen)
	for _, p := range problems {
		t.Errorf("a message its schema refuses: %s", p)
	}
	for _, typ := range want {
		if seen[typ] == 0 {
			t.Errorf("no %s message within 90 s", typ)
		}
	}
}
