package tyntec_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/metricstest"
	"github.com/otpscope/otpscope/internal/polltest"
	"github.com/otpscope/otpscope/internal/tyntec"
	"github.com/otpscope/otpscope/internal/tyntecsim"
	"github.com/otpscope/otpscope/internal/tyntecsim/simtest"
)

// env is a simulator behind httptest and a client for it.
type env struct {
	sim    *tyntecsim.Sim
	url    string
	client *tyntec.Client
	reg    *prometheus.Registry
}

// newEnv starts a simulator (wrapped by wrap when not nil) and a client with
// a generous budget and millisecond backoff; ccfg fields override those.
func newEnv(t *testing.T, scfg tyntecsim.Config, ccfg tyntec.Config, wrap func(http.Handler) http.Handler) *env {
	t.Helper()
	sim, url := simtest.StartWrapped(t, scfg, wrap)
	reg := prometheus.NewRegistry()
	ccfg.BaseURL = url
	if ccfg.APIKey == "" {
		ccfg.APIKey = tyntecsim.DefaultAPIKey
	}
	if ccfg.RateLimit == 0 {
		ccfg.RateLimit, ccfg.RatePeriod, ccfg.RateBurst = 10000, time.Second, 1000
	}
	if ccfg.MinBackoff == 0 {
		ccfg.MinBackoff, ccfg.MaxBackoff = time.Millisecond, 5*time.Millisecond
	}
	ccfg.Registerer = reg
	client, err := tyntec.New(ccfg)
	if err != nil {
		t.Fatalf("tyntec.New: %v", err)
	}
	return &env{sim: sim, url: url, client: client, reg: reg}
}

// callsTo returns the statuses of the calls the simulator received for path.
func (e *env) callsTo(path string) []int {
	var out []int
	for _, c := range e.sim.Calls() {
		if c.Path == path {
			out = append(out, c.Status)
		}
	}
	return out
}

// exerciseAll calls every client method against e and checks the answers.
// The contract test runs it too, behind a validating proxy.
func exerciseAll(t *testing.T, e *env, hookURL string) {
	ctx, c := t.Context(), e.client

	prios, err := c.ListPriorities(ctx, "")
	if err != nil || len(prios) < 4 {
		t.Fatalf("ListPriorities = %d, %v; want the 4 built-in ones", len(prios), err)
	}
	named, err := c.ListPriorities(ctx, "tyntec_priority_sms-viber")
	if err != nil || len(named) != 1 || named[0].ChannelPriority[0].Channel != events.ChannelSMS {
		t.Errorf("ListPriorities(name) = %+v, %v", named, err)
	}
	pid, err := c.CreatePriority(ctx, tyntec.NewPriority{Name: "test_viber-voice", ChannelPriority: []tyntec.ChannelPriority{{Channel: "VIBER", Priority: 1}, {Channel: "VOICE", Priority: 2}}})
	if err != nil || pid == "" {
		t.Fatalf("CreatePriority = %q, %v", pid, err)
	}
	if p, err := c.GetPriority(ctx, pid); err != nil || p.Name != "test_viber-voice" || len(p.ChannelPriority) != 2 {
		t.Errorf("GetPriority = %+v, %v", p, err)
	}

	profiles, err := c.ListProfiles(ctx, "")
	if err != nil || len(profiles) < 1 {
		t.Fatalf("ListProfiles = %+v, %v", profiles, err)
	}
	if p, err := c.GetProfile(ctx, profiles[0].ID); err != nil || p.Name != profiles[0].Name || p.Attempts == 0 {
		t.Errorf("GetProfile = %+v, %v", p, err)
	}
	if ps, err := c.ListProfiles(ctx, profiles[0].Name); err != nil || len(ps) != 1 {
		t.Errorf("ListProfiles(name) = %+v, %v", ps, err)
	}

	cbID, err := c.CreateCallback(ctx, tyntec.NewCallbackConfig{URL: hookURL + "/old", Headers: map[string]string{"X-Webhook-Token": "old"}})
	if err != nil || cbID == "" {
		t.Fatalf("CreateCallback = %q, %v", cbID, err)
	}
	patched, err := c.PatchCallback(ctx, cbID, tyntec.NewCallbackConfig{URL: hookURL, Headers: map[string]string{"X-Webhook-Token": "new"}})
	if err != nil || patched.URL != hookURL || patched.Headers["X-Webhook-Token"] != "new" || patched.ID != cbID {
		t.Errorf("PatchCallback = %+v, %v", patched, err)
	}
	cbs, err := c.ListCallbacks(ctx)
	if err != nil || len(cbs) != 1 || cbs[0].URL != hookURL {
		t.Errorf("ListCallbacks = %+v, %v", cbs, err)
	}

	const to = "+491701112233"
	created, err := c.SendOTP(ctx, tyntec.NewOTPRequest{To: to, ProfileName: profiles[0].Name, PriorityName: "tyntec_priority_sms-viber"})
	if err != nil || created.ID == "" {
		t.Fatalf("SendOTP = %+v, %v", created, err)
	}
	otp, err := c.GetOTP(ctx, created.ID)
	if err != nil || otp.OTPID != created.ID || otp.To != to || otp.OTPStatus != events.OTPActive || !otp.OTPExpire.After(otp.OTPCreated) {
		t.Errorf("GetOTP = %+v, %v", otp, err)
	}
	if list, err := c.ListOTPs(ctx, tyntec.OTPFilter{To: to}); err != nil || len(list) != 1 || list[0].OTPID != created.ID {
		t.Errorf("ListOTPs(to) = %+v, %v", list, err)
	}
	truth, _ := e.sim.Truth().OTP(created.ID)
	if st, err := c.ValidateOTP(ctx, created.ID, "0000000"); err != nil || st != events.OTPWrongCode {
		t.Errorf("ValidateOTP(wrong) = %q, %v; want WRONG_CODE", st, err)
	}
	if st, err := c.ValidateOTP(ctx, created.ID, truth.Code); err != nil || st != events.OTPVerified {
		t.Errorf("ValidateOTP(right) = %q, %v; want VERIFIED", st, err)
	}
	if list, err := c.ListOTPs(ctx, tyntec.OTPFilter{Status: events.OTPVerified}); err != nil || !slices.ContainsFunc(list, func(o tyntec.OTP) bool { return o.OTPID == created.ID }) {
		t.Errorf("ListOTPs(VERIFIED) = %+v, %v; want %s in it", list, err, created.ID)
	}

	const number = "+491704445566"
	v1, err := c.V1Send(ctx, tyntec.V1SendRequest{Number: number, OTPCode: "4711", ReferenceID: "ref-1"})
	if err != nil || v1.OTPID == "" || v1.OTPStatus != events.OTPActive || v1.ReferenceID != "ref-1" {
		t.Fatalf("V1Send = %+v, %v", v1, err)
	}
	if got, err := c.V1OTP(ctx, v1.OTPID); err != nil || got.Number != number || got.ExpiresAt().Before(got.CreatedAt()) {
		t.Errorf("V1OTP = %+v, %v", got, err)
	}
	if list, err := c.V1ListOTPs(ctx, number); err != nil || len(list) != 1 {
		t.Errorf("V1ListOTPs = %+v, %v", list, err)
	}
	if list, err := c.V1ListOTPs(ctx, "+491709999999"); err != nil || len(list) != 0 {
		t.Errorf("V1ListOTPs(no OTPs) = %+v, %v; want empty (204)", list, err)
	}
	if r, err := c.V1Resend(ctx, v1.OTPID, tyntec.ResendRequest{Via: tyntec.ViaVoice, Caller: "+4930123456"}); err != nil || r.OTPID != v1.OTPID {
		t.Errorf("V1Resend = %+v, %v", r, err)
	}
	evs, err := c.V1Events(ctx, v1.OTPID)
	if err != nil || len(evs) < 2 || evs[0].Type != events.V1EventCreated || !slices.ContainsFunc(evs, func(e tyntec.V1Event) bool { return e.Type == events.V1EventResend && e.StatusText == "VOICE" }) {
		t.Errorf("V1Events = %+v, %v; want CREATED first and a RESEND via VOICE", evs, err)
	}
	if o, err := c.V1Check(ctx, v1.OTPID, "1234"); !errors.Is(err, tyntec.ErrUnauthorized) || o == nil || o.OTPStatus != events.OTPActive || o.AttemptCount != 1 {
		t.Errorf("V1Check(wrong) = %+v, %v; want ACTIVE status and ErrUnauthorized", o, err)
	}
	if o, err := c.V1Check(ctx, v1.OTPID, "4711"); err != nil || o.OTPStatus != events.OTPVerified {
		t.Errorf("V1Check(right) = %+v, %v; want VERIFIED", o, err)
	}

	// Let the v4 OTP's first webhook reach the callback before it goes away.
	polltest.Until(t, 10*time.Second, "the first webhook of "+created.ID+" to be delivered", func() bool {
		ot, _ := e.sim.Truth().OTP(created.ID)
		return len(ot.Webhooks) > 0 && ot.Webhooks[0].Delivered > 0
	})
	if err := c.DeleteCallback(ctx, cbID); err != nil {
		t.Errorf("DeleteCallback = %v", err)
	}
	if err := c.DeleteCallback(ctx, cbID); !tyntec.IsNotFound(err) {
		t.Errorf("DeleteCallback again = %v; want ErrNotFound", err)
	}
	if cbs, err := c.ListCallbacks(ctx); err != nil || len(cbs) != 0 {
		t.Errorf("ListCallbacks after delete = %+v, %v", cbs, err)
	}
}

// hookSink is a webhook endpoint that counts what it gets.
func hookSink(t *testing.T, check func(t *testing.T, r *http.Request)) (string, func() int) {
	var mu sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if check != nil {
			check(t, r)
		}
		mu.Lock()
		n++
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func() int { mu.Lock(); defer mu.Unlock(); return n }
}

func TestClientEveryCall(t *testing.T) {
	hookURL, hooks := hookSink(t, func(t *testing.T, r *http.Request) {
		if got := r.Header.Get("X-Webhook-Token"); got != "new" {
			t.Errorf("webhook token %q; want the patched one", got)
		}
	})
	e := newEnv(t, tyntecsim.Config{Seed: 1, TimeScale: 1000, OTPExpiry: time.Hour}, tyntec.Config{}, nil)
	exerciseAll(t, e, hookURL)
	if err := e.sim.WaitIdle(t.Context()); err != nil {
		t.Fatal(err)
	}
	if hooks() == 0 {
		t.Error("no webhook reached the patched callback URL")
	}
	for _, c := range e.sim.Calls() {
		if c.APIKey != tyntecsim.DefaultAPIKey {
			t.Errorf("call %s %s sent apiKey %q", c.Method, c.Path, c.APIKey)
		}
	}
	if got := metricstest.Must(t, e.reg, "otpscope_tyntec_calls_total", "op", "v4_get_otp", "outcome", "ok"); got != 1 {
		t.Errorf("calls_total{v4_get_otp,ok} = %v; want 1", got)
	}
}

// TestCallsCountedFromZero: every call's series exists, at 0, before the
// call is made, so increase() sees its first 401 or 429 (a series born at
// 1 hides it: OtpscopeTyntecUnauthorized missed a one-off refusal). Every
// client method then makes no series that was not there.
func TestCallsCountedFromZero(t *testing.T) {
	hookURL, _ := hookSink(t, func(*testing.T, *http.Request) {})
	e := newEnv(t, tyntecsim.Config{Seed: 1, TimeScale: 1000, OTPExpiry: time.Hour}, tyntec.Config{}, nil)
	before := callSeries(t, e.reg)
	ops := map[string]bool{}
	for k, v := range before {
		ops[k[0]] = true
		if v != 0 {
			t.Errorf("calls_total%v = %v before any call; want 0", k, v)
		}
	}
	for op := range ops {
		for _, o := range []string{"unauthorized", "rate_limited", "server_error", "timeout"} {
			if _, ok := before[[2]string{op, o}]; !ok {
				t.Errorf("no calls_total{op=%q,outcome=%q} before any call", op, o)
			}
		}
	}
	exerciseAll(t, e, hookURL)
	for k := range callSeries(t, e.reg) {
		if _, ok := before[k]; !ok {
			t.Errorf("calls_total%v appeared at its first call; want it from zero (tyntec's ops)", k)
		}
	}
}

// callSeries are the series of otpscope_tyntec_calls_total by op and
// outcome, with their values.
func callSeries(t *testing.T, reg *prometheus.Registry) map[[2]string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[[2]string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "otpscope_tyntec_calls_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var k [2]string
			for _, lp := range m.GetLabel() {
				switch lp.GetName() {
				case "op":
					k[0] = lp.GetValue()
				case "outcome":
					k[1] = lp.GetValue()
				}
			}
			out[k] = m.GetCounter().GetValue()
		}
	}
	return out
}

func TestClientErrorClasses(t *testing.T) {
	tests := []struct {
		name   string
		sim    tyntecsim.Config
		client tyntec.Config
		do     func(ctx context.Context, e *env) error
		want   error
		status int
		shape  func(*tyntec.APIError) bool // the body was read in the right error shape
	}{
		{
			name: "v4 404", want: tyntec.ErrNotFound, status: 404,
			do: func(ctx context.Context, e *env) error {
				_, err := e.client.GetOTP(ctx, "3fa85f64-5717-4562-b3fc-2c963f66afa6")
				return err
			},
			shape: func(a *tyntec.APIError) bool { return a.Title == "No Resource Found" && a.Status == 404 },
		},
		{
			name: "v1 404", want: tyntec.ErrNotFound, status: 404,
			do:    func(ctx context.Context, e *env) error { _, err := e.client.V1Events(ctx, "nope"); return err },
			shape: func(a *tyntec.APIError) bool { return a.Message != "" && a.Code != "" && a.Timestamp > 0 },
		},
		{
			name: "v4 400", want: tyntec.ErrBadRequest, status: 400,
			do: func(ctx context.Context, e *env) error {
				_, err := e.client.SendOTP(ctx, tyntec.NewOTPRequest{})
				return err
			},
			shape: func(a *tyntec.APIError) bool { return len(a.Violations) == 1 && a.Violations[0].Field == "to" },
		},
		{
			name: "401 wrong key", want: tyntec.ErrUnauthorized, status: 401, client: tyntec.Config{APIKey: "wrong"},
			do:    func(ctx context.Context, e *env) error { _, err := e.client.ListCallbacks(ctx); return err },
			shape: func(a *tyntec.APIError) bool { return a.Title == "Unauthorized" },
		},
		{
			name: "403 too many attempts", want: tyntec.ErrUnauthorized, status: 403,
			do: func(ctx context.Context, e *env) error {
				o, err := e.client.V1Send(ctx, tyntec.V1SendRequest{Number: "+491700000001", OTPCode: "4711"})
				if err != nil {
					return err
				}
				for range 2 {
					if _, err := e.client.V1Check(ctx, o.OTPID, "1111"); !errors.Is(err, tyntec.ErrUnauthorized) {
						return errors.New("wrong code not answered 401")
					}
				}
				_, err = e.client.V1Check(ctx, o.OTPID, "1111")
				return err
			},
			shape: func(a *tyntec.APIError) bool { return strings.Contains(string(a.Body), `"TOO_MANY_ATTEMPTS"`) },
		},
		{
			name: "410 gone", want: tyntec.ErrGone, status: 410,
			do: func(ctx context.Context, e *env) error {
				o, err := e.client.V1Send(ctx, tyntec.V1SendRequest{Number: "+491700000001", OTPCode: "4711"})
				if err != nil {
					return err
				}
				if _, err := e.client.V1Check(ctx, o.OTPID, "4711"); err != nil {
					return err
				}
				_, err = e.client.V1Check(ctx, o.OTPID, "4711")
				return err
			},
			shape: func(a *tyntec.APIError) bool { return strings.Contains(string(a.Body), `"VERIFIED"`) },
		},
		{
			name: "429", want: tyntec.ErrRateLimited, status: 429,
			sim:    tyntecsim.Config{Faults: tyntecsim.Faults{RateLimit: 1, RatePeriod: time.Minute}},
			client: tyntec.Config{MaxRetries: -1},
			do: func(ctx context.Context, e *env) error {
				if _, err := e.client.ListProfiles(ctx, ""); err != nil {
					return err
				}
				_, err := e.client.ListProfiles(ctx, "")
				return err
			},
			shape: func(a *tyntec.APIError) bool { return a.RetryAfter > 0 && a.RetryAfter <= time.Minute },
		},
		{
			name: "5xx", want: tyntec.ErrServer, status: 503,
			sim:    tyntecsim.Config{Faults: tyntecsim.Faults{APIError: 1, APIErrorStatus: 503}},
			client: tyntec.Config{MaxRetries: -1},
			do:     func(ctx context.Context, e *env) error { _, err := e.client.V1OTP(ctx, "x"); return err },
			shape:  func(a *tyntec.APIError) bool { return a.Message != "" },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.sim.Seed = 1
			e := newEnv(t, tt.sim, tt.client, nil)
			err := tt.do(t.Context(), e)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v; want %v", err, tt.want)
			}
			var apiErr *tyntec.APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("errors.As(%v, *APIError) = false", err)
			}
			if apiErr.StatusCode != tt.status || !tt.shape(apiErr) {
				t.Errorf("APIError = %+v (body %s); want status %d in the documented shape", apiErr, apiErr.Body, tt.status)
			}
		})
	}
}

func TestClientHonoursRetryAfter(t *testing.T) {
	// SharedVersions: the OTP is read through v4 and re-sent through v1.
	e := newEnv(t, tyntecsim.Config{Seed: 1, SharedVersions: true, Faults: tyntecsim.Faults{RateLimit: 2, RatePeriod: time.Second}}, tyntec.Config{}, nil)
	id, err := e.sim.Send(tyntec.NewOTPRequest{To: "+491700000007"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.ListPriorities(t.Context(), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.GetOTP(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	// The budget is spent: the re-send is refused with 429 before tyntec
	// acts, and returned at once: the OTP may be delivered while the client
	// waited, so the caller checks it again before asking again.
	if _, err := e.client.V1Resend(t.Context(), id, tyntec.ResendRequest{Via: tyntec.ViaSMS}); !errors.Is(err, tyntec.ErrRateLimited) {
		t.Fatalf("V1Resend after the budget = %v; want ErrRateLimited at once", err)
	}
	var resends []tyntecsim.Call
	for _, c := range e.sim.Calls() {
		if c.Method == http.MethodPost {
			resends = append(resends, c)
		}
	}
	if len(resends) != 1 || resends[0].Status != 429 {
		t.Fatalf("re-send calls %+v; want the one 429", resends)
	}
	if ot, _ := e.sim.Truth().OTP(id); len(ot.Resends) != 0 {
		t.Errorf("simulator saw %d re-sends; want none", len(ot.Resends))
	}
	// A read is retried after Retry-After.
	if _, err := e.client.GetOTP(t.Context(), id); err != nil {
		t.Fatalf("GetOTP after 429 = %v; want success on retry", err)
	}
	var reads []tyntecsim.Call
	for _, c := range e.sim.Calls() {
		if c.Path == "/2fa/v4/otp/"+id && c.At.After(resends[0].At) {
			reads = append(reads, c)
		}
	}
	if len(reads) != 2 || reads[0].Status != 429 || reads[1].Status != 200 {
		t.Fatalf("reads after the re-send %+v; want a 429 then a 200", reads)
	}
	if gap := reads[1].At.Sub(reads[0].At); gap < time.Second {
		t.Errorf("retry came %s after the 429; want at least Retry-After (1s)", gap)
	}
	for op, want := range map[string]float64{"v4_get_otp": 1, "v1_resend": 0} {
		if got, _ := metricstest.Value(t, e.reg, "otpscope_tyntec_retries_total", "op", op, "reason", "rate_limited"); got != want { // absent: none
			t.Errorf("retries_total{%s,rate_limited} = %v; want %v", op, got, want)
		}
	}
}

func TestClientGivesUpWhenRetryAfterOutlivesDeadline(t *testing.T) {
	e := newEnv(t, tyntecsim.Config{Seed: 1, Faults: tyntecsim.Faults{RateLimit: 1, RatePeriod: time.Minute, RetryAfter: 30 * time.Second}}, tyntec.Config{}, nil)
	if _, err := e.client.ListProfiles(t.Context(), ""); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	_, err := e.client.ListProfiles(ctx, "")
	if !errors.Is(err, tyntec.ErrRateLimited) || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v; want the 429 itself, not a deadline spent sleeping", err)
	}
	if n := len(e.callsTo("/2fa/v4/profiles")); n != 2 {
		t.Errorf("%d calls; want 2 (no retry)", n)
	}
}

func TestClientRetriesBounded(t *testing.T) {
	failing := tyntecsim.Config{Faults: tyntecsim.Faults{APIError: 1}}
	slow := tyntecsim.Config{Faults: tyntecsim.Faults{APISlow: 1, APISlowDelay: 2 * time.Second}}
	tests := []struct {
		name  string
		sim   tyntecsim.Config
		do    func(ctx context.Context, c *tyntec.Client) error
		path  string
		calls int
		want  error
	}{
		{"GET on 5xx retried", failing, func(ctx context.Context, c *tyntec.Client) error { _, err := c.GetOTP(ctx, "x"); return err }, "/2fa/v4/otp/x", 3, tyntec.ErrServer},
		{"PATCH on 5xx retried", failing, func(ctx context.Context, c *tyntec.Client) error {
			_, err := c.PatchCallback(ctx, "x", tyntec.NewCallbackConfig{URL: "http://127.0.0.1:1/"})
			return err
		}, "/2fa/v4/configurations/callbacks/x", 3, tyntec.ErrServer},
		{"re-send on 5xx not retried", failing, func(ctx context.Context, c *tyntec.Client) error {
			_, err := c.V1Resend(ctx, "x", tyntec.ResendRequest{})
			return err
		}, "/2fa/v1/otp/x", 1, tyntec.ErrServer},
		{"send on 5xx not retried", failing, func(ctx context.Context, c *tyntec.Client) error {
			_, err := c.SendOTP(ctx, tyntec.NewOTPRequest{To: "+4917000000"})
			return err
		}, "/2fa/v4/otp", 1, tyntec.ErrServer},
		{"GET timeout retried", slow, func(ctx context.Context, c *tyntec.Client) error { _, err := c.V1OTP(ctx, "x"); return err }, "/2fa/v1/otp/x", 3, context.DeadlineExceeded},
		{"re-send timeout not retried", slow, func(ctx context.Context, c *tyntec.Client) error {
			_, err := c.V1Resend(ctx, "x", tyntec.ResendRequest{})
			return err
		}, "/2fa/v1/otp/x", 1, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.sim.Seed = 1
			e := newEnv(t, tt.sim, tyntec.Config{MaxRetries: 2, Timeout: 50 * time.Millisecond}, nil)
			err := tt.do(t.Context(), e.client)
			if !errors.Is(err, tt.want) {
				t.Errorf("err = %v; want %v", err, tt.want)
			}
			if got := len(e.callsTo(tt.path)); got != tt.calls {
				t.Errorf("%d calls reached the simulator; want %d", got, tt.calls)
			}
		})
	}
}

func TestClientStaysWithinBudget(t *testing.T) {
	const limit, period = 10, 500 * time.Millisecond
	e := newEnv(t,
		tyntecsim.Config{Seed: 1, Faults: tyntecsim.Faults{RateLimit: limit, RatePeriod: period}},
		tyntec.Config{RateLimit: limit, RatePeriod: period, RateBurst: 4, MaxRetries: -1}, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 30)
	for range 5 {
		wg.Go(func() {
			for range 6 {
				if _, err := e.client.ListPriorities(t.Context(), ""); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("call failed: %v", err)
	}
	calls := e.sim.Calls()
	if len(calls) != 30 {
		t.Fatalf("%d calls; want 30", len(calls))
	}
	if most := e.sim.MaxCallsInWindow(period); most > limit {
		t.Errorf("%d calls within %s; budget is %d", most, period, limit)
	}
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(mfs, func(mf *dto.MetricFamily) bool { return mf.GetName() == "otpscope_tyntec_rate_limit_wait_seconds" })
	if i < 0 {
		t.Fatal("rate_limit_wait_seconds not registered")
	}
	h := mfs[i].GetMetric()[0].GetHistogram()
	if h.GetSampleCount() != 30 || h.GetSampleSum() <= 0 {
		t.Errorf("rate_limit_wait_seconds: %d samples, sum %v; want 30 samples and some waiting", h.GetSampleCount(), h.GetSampleSum())
	}
}

func TestSharedBudgetPerKey(t *testing.T) {
	const limit, period = 6, 400 * time.Millisecond
	e := newEnv(t, tyntecsim.Config{Seed: 1}, tyntec.Config{RateLimit: limit, RatePeriod: period, RateBurst: 2}, nil)
	// A second client of the same key and URL, built separately, spends the same budget.
	other, err := tyntec.New(tyntec.Config{BaseURL: e.url, APIKey: tyntecsim.DefaultAPIKey, RateLimit: limit, RatePeriod: period, RateBurst: 2})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, c := range []*tyntec.Client{e.client, other} {
		wg.Go(func() {
			for range 7 {
				if _, err := c.ListProfiles(t.Context(), ""); err != nil {
					t.Errorf("ListProfiles: %v", err)
				}
			}
		})
	}
	wg.Wait()
	if most := e.sim.MaxCallsInWindow(period); most > limit {
		t.Errorf("two clients of one key made %d calls within %s; budget is %d", most, period, limit)
	}
}

func TestClientRespectsContext(t *testing.T) {
	e := newEnv(t, tyntecsim.Config{Seed: 1}, tyntec.Config{RateLimit: 1, RatePeriod: time.Hour, RateBurst: 1}, nil)
	if _, err := e.client.ListProfiles(t.Context(), ""); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := e.client.ListProfiles(ctx, ""); err == nil {
		t.Fatal("call beyond an hour-long budget succeeded within 100ms")
	}
	if n := len(e.sim.Calls()); n != 1 {
		t.Errorf("%d calls reached the simulator; want 1", n)
	}
}

// TestClientHealth: a streak of failed calls is told while it lasts, and
// as recovered once a call is answered (a 404 is an answer); forgetting
// clears both.
func TestClientHealth(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	e := newEnv(t, tyntecsim.Config{Seed: 1}, tyntec.Config{MaxRetries: 2}, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if failing.Load() {
				http.Error(w, `{"status":503,"title":"Service Unavailable"}`, http.StatusServiceUnavailable)
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	c := e.client
	if _, err := c.GetOTP(t.Context(), "x"); !errors.Is(err, tyntec.ErrServer) {
		t.Fatalf("GetOTP while failing = %v; want ErrServer", err)
	}
	h := c.Health()
	if h.Failed != 3 || h.Outcome != "server_error" || h.FailingSince.IsZero() || !strings.Contains(h.LastError, "503") || h.Recovered != 0 {
		t.Fatalf("Health after a call and its two retries failed = %+v; want 3 failed, server_error, a 503", h)
	}
	since := h.FailingSince

	failing.Store(false)
	if _, err := c.GetOTP(t.Context(), "x"); !tyntec.IsNotFound(err) {
		t.Fatalf("GetOTP once answered = %v; want not found", err)
	}
	h = c.Health()
	if h.Failed != 0 || h.Recovered != 3 || !h.RecoveredFrom.Equal(since) || h.RecoveredAt.Before(since) {
		t.Fatalf("Health once answered = %+v; want no streak, 3 recovered from %v", h, since)
	}
	if _, err := c.GetOTP(t.Context(), "x"); !tyntec.IsNotFound(err) {
		t.Fatalf("GetOTP = %v", err)
	}
	if again := c.Health(); again != h {
		t.Errorf("Health after another answer = %+v; want the recovery kept, %+v", again, h)
	}
	c.ForgetHealth()
	if h := c.Health(); h != (tyntec.Health{}) {
		t.Errorf("Health forgotten = %+v; want zero", h)
	}
}

// A 2xx whose body is not tyntec's (a proxy's or a captive portal's page,
// cut JSON) is a failed call, outcome bad_answer, in the metrics and the
// client's Health, as a 5xx is: it used to count as tyntec answering, so
// the status and OtpscopeTyntecErrors never told it. An answer too large
// for its bound is still an answer.
func TestClientBadAnswer(t *testing.T) {
	var page atomic.Bool
	page.Store(true)
	e := newEnv(t, tyntecsim.Config{Seed: 1}, tyntec.Config{MaxRetries: 2}, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if page.Load() {
				w.Header().Set("Content-Type", "text/html")
				fmt.Fprint(w, "<html><body>Please sign in to the guest network</body></html>")
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	c := e.client
	for range 3 {
		if _, err := c.ListOTPs(t.Context(), tyntec.OTPFilter{}); !errors.Is(err, tyntec.ErrBadAnswer) || tyntec.Outcome(err) != "bad_answer" {
			t.Fatalf("ListOTPs answered by a page = %v (outcome %s); want ErrBadAnswer, bad_answer", err, tyntec.Outcome(err))
		}
		if _, err := c.GetOTP(t.Context(), "x"); !errors.Is(err, tyntec.ErrBadAnswer) {
			t.Fatalf("GetOTP answered by a page = %v; want ErrBadAnswer", err)
		}
	}
	if h := c.Health(); h.Failed != 6 || h.Outcome != "bad_answer" || !strings.Contains(h.LastError, "answer does not read") {
		t.Errorf("Health after six pages = %+v; want 6 failed, bad_answer", h)
	}
	if got := metricstest.Must(t, e.reg, "otpscope_tyntec_calls_total", "op", "v4_get_otp", "outcome", "bad_answer"); got != 3 {
		t.Errorf("calls_total{v4_get_otp,bad_answer} = %v; want 3 (not retried: the same page would come again)", got)
	}
	if got := metricstest.Must(t, e.reg, "otpscope_tyntec_calls_total", "op", "v4_get_otp", "outcome", "ok"); got != 0 {
		t.Errorf("calls_total{v4_get_otp,ok} = %v; want 0", got)
	}
	page.Store(false)
	if _, err := c.GetOTP(t.Context(), "x"); !tyntec.IsNotFound(err) {
		t.Fatalf("GetOTP once tyntec answers = %v; want not found", err)
	}
	if h := c.Health(); h.Failed != 0 || h.Recovered != 6 {
		t.Errorf("Health once tyntec answers = %+v; want the streak of 6 recovered", h)
	}
}

// A v1 re-send answered 401 "OTP is not valid anymore" (seed 000: the OTP
// closed while the poller decided) speaks of the OTP, not the API key: it
// is outcome otp_refused and an answer in the client's Health, so it
// neither pages OtpscopeTyntecUnauthorized nor has the status say "check
// --tyntec-api-key". The caller still gets ErrUnauthorized. A 401 to any
// other call is the key refused, as before.
func TestClientResendRefusalSpeaksOfTheOTP(t *testing.T) {
	e := newEnv(t, tyntecsim.Config{Seed: 1}, tyntec.Config{}, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/2fa/v1/otp/closed" || r.URL.Path == "/2fa/v4/otp/refused" {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				fmt.Fprint(w, `{"code":"1401","message":"OTP is not valid anymore."}`)
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	c := e.client
	for range 3 {
		if _, err := c.V1Resend(t.Context(), "closed", tyntec.ResendRequest{}); !errors.Is(err, tyntec.ErrUnauthorized) {
			t.Fatalf("V1Resend of a closed OTP = %v; want ErrUnauthorized", err)
		}
	}
	if got := metricstest.Must(t, e.reg, "otpscope_tyntec_calls_total", "op", "v1_resend", "outcome", "otp_refused"); got != 3 {
		t.Errorf("calls_total{v1_resend,otp_refused} = %v; want 3", got)
	}
	if got := metricstest.Must(t, e.reg, "otpscope_tyntec_calls_total", "op", "v1_resend", "outcome", "unauthorized"); got != 0 {
		t.Errorf("calls_total{v1_resend,unauthorized} = %v; want 0 (the key was not refused)", got)
	}
	if h := c.Health(); h.Failed != 0 {
		t.Errorf("Health after three re-sends of a closed OTP = %+v; want no streak", h)
	}
	for range 3 {
		if _, err := c.GetOTP(t.Context(), "refused"); !errors.Is(err, tyntec.ErrUnauthorized) {
			t.Fatalf("GetOTP answered 401 = %v; want ErrUnauthorized", err)
		}
	}
	if h := c.Health(); h.Failed != 3 || h.Outcome != "unauthorized" {
		t.Errorf("Health after three 401s to the v4 status = %+v; want 3 failed, unauthorized", h)
	}
}

// A 429 without Retry-After (no seed documents tyntec's header) is taken
// to ask DefaultRetryAfter: the poller paused 1 s and the client retried
// within milliseconds, four calls in two seconds spending the window's
// budget again.
func TestClient429WithoutRetryAfter(t *testing.T) {
	var calls atomic.Int64
	e := newEnv(t, tyntecsim.Config{Seed: 1}, tyntec.Config{MaxRetries: -1}, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprint(w, `{"status":429,"title":"Too Many Requests"}`)
		})
	})
	_, err := e.client.GetOTP(t.Context(), "x")
	var apiErr *tyntec.APIError
	if !errors.As(err, &apiErr) || !errors.Is(err, tyntec.ErrRateLimited) || apiErr.RetryAfter != tyntec.DefaultRetryAfter {
		t.Fatalf("GetOTP answered 429 without Retry-After = %v; want ErrRateLimited asking %v", err, tyntec.DefaultRetryAfter)
	}
	// With retries, the client waits that long, or gives the 429 back at
	// once to a caller whose deadline is nearer.
	c, err := tyntec.New(tyntec.Config{BaseURL: e.url, APIKey: tyntecsim.DefaultAPIKey, RateLimit: 1000, RatePeriod: time.Second, RateBurst: 100})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	start := time.Now()
	if _, err := c.GetOTP(ctx, "x"); !errors.Is(err, tyntec.ErrRateLimited) || time.Since(start) > time.Second {
		t.Errorf("GetOTP with retries and a 2 s deadline = %v after %v; want the 429 back at once", err, time.Since(start))
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("%d calls reached tyntec; want 2, one each (no retry within milliseconds)", n)
	}
}

// Words tyntec's answers carry: an OTP status in any case is read as the
// webhook reads its words ("verified" is VERIFIED, final; it used to be
// an unknown status, the OTP polled to its expiry and its status published
// under tyntec.2fa.otp.verified), and a word otpscope does not know — a
// new status, event type or channel — is taken as it came, counted by
// operation and field, and logged with the word.
func TestClientUnknownWords(t *testing.T) {
	answers := map[string]string{
		"/2fa/v4/otp/lower":    `{"otpId":"lower","otpStatus":" verified "}`,
		"/2fa/v4/otp/new":      `{"otpId":"new","otpStatus":"CANCELLED"}`,
		"/2fa/v4/otp":          `[{"otpId":"a","otpStatus":"cancelled"},{"otpId":"b","otpStatus":"Active"}]`,
		"/2fa/v1/otp/x/events": `[{"type":"sms","status":"success"},{"type":"RCS","status":"success"},{"type":"created"},{"type":"Check","statusText":"VERIFIED"}]`,
		"/2fa/v4/priorities/p": `{"id":"p","name":"p","channelPriority":[{"channel":"SMS","priority":1},{"channel":"RCS","priority":2}]}`,
	}
	var logs polltest.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	e := newEnv(t, tyntecsim.Config{Seed: 1}, tyntec.Config{Logger: logger}, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if body, ok := answers[r.URL.Path]; ok && r.Method == http.MethodGet {
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprint(w, body)
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	c := e.client
	o, err := c.GetOTP(t.Context(), "lower")
	if err != nil || o.OTPStatus != events.OTPVerified || !o.OTPStatus.Final() {
		t.Fatalf(`GetOTP answered otpStatus " verified " = %+v, %v; want VERIFIED, final`, o, err)
	}
	if o, err := c.GetOTP(t.Context(), "new"); err != nil || o.OTPStatus != "CANCELLED" || o.OTPStatus.Final() {
		t.Fatalf("GetOTP answered otpStatus CANCELLED = %+v, %v; want it as it came, not final", o, err)
	}
	list, err := c.ListOTPs(t.Context(), tyntec.OTPFilter{})
	if err != nil || len(list) != 2 || list[0].OTPStatus != "CANCELLED" || list[1].OTPStatus != events.OTPActive {
		t.Fatalf("ListOTPs = %+v, %v; want CANCELLED and ACTIVE", list, err)
	}
	if evs, err := c.V1Events(t.Context(), "x"); err != nil || len(evs) != 4 {
		t.Fatalf("V1Events = %+v, %v; want the 4 events", evs, err)
	}
	if p, err := c.GetPriority(t.Context(), "p"); err != nil || len(p.ChannelPriority) != 2 {
		t.Fatalf("GetPriority = %+v, %v; want both channels", p, err)
	}
	for _, w := range []struct {
		op, field string
		n         float64
	}{
		{"v4_get_otp", "otp_status", 1}, {"v4_list_otps", "otp_status", 1},
		{"v1_list_events", "event_type", 1}, {"v4_get_priority", "channel", 1},
	} {
		if got := metricstest.Must(t, e.reg, "otpscope_tyntec_unknown_words_total", "op", w.op, "field", w.field); got != w.n {
			t.Errorf("unknown_words_total{%s,%s} = %v; want %v", w.op, w.field, got, w.n)
		}
	}
	for _, want := range []string{"word=CANCELLED", "word=RCS", "field=event_type", "field=channel"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
	if strings.Contains(logs.String(), "VERIFIED") || strings.Contains(logs.String(), "word=sms") {
		t.Errorf("log names a known word:\n%s", logs.String())
	}
}
