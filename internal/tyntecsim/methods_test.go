package tyntecsim_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/tyntec"
	"github.com/otpscope/otpscope/internal/tyntecsim"
	"github.com/otpscope/otpscope/internal/tyntecsim/simtest"
)

// request is one request an otpscope stand-in received.
type request struct {
	path  string
	token string
	body  []byte
}

// otpscopeStub stands where otpscope's public listener would: it records
// every request and answers status(path, n) for the n-th request to a path
// (default 202).
type otpscopeStub struct {
	mu     sync.Mutex
	got    []request
	n      map[string]int
	status func(path string, n int) int
}

func newOTPScopeStub(t *testing.T, status func(path string, n int) int) (*otpscopeStub, string) {
	t.Helper()
	st := &otpscopeStub{n: map[string]int{}, status: status}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		st.mu.Lock()
		st.n[r.URL.Path]++
		code := http.StatusAccepted
		if st.status != nil {
			code = st.status(r.URL.Path, st.n[r.URL.Path])
		}
		if code < 300 {
			st.got = append(st.got, request{path: r.URL.Path, token: r.Header.Get("X-Webhook-Token"), body: raw})
		}
		st.mu.Unlock()
		w.WriteHeader(code)
	}))
	t.Cleanup(srv.Close)
	return st, srv.URL
}

// bodies returns the accepted bodies posted to path, decoded into T.
func bodies[T any](t *testing.T, st *otpscopeStub, path string) []T {
	t.Helper()
	st.mu.Lock()
	defer st.mu.Unlock()
	var out []T
	for _, r := range st.got {
		if r.path != path {
			continue
		}
		var v T
		if err := json.Unmarshal(r.body, &v); err != nil {
			t.Fatalf("%s body %s: %v", path, r.body, err)
		}
		out = append(out, v)
	}
	return out
}

// createPush creates an approval request through the API and returns its uuid.
func createPush(t *testing.T, base string, ttl string) string {
	t.Helper()
	st, raw := form(t, base+"/onetouch/json/users/5661166/approval_requests", url.Values{"message": {"m"}, "seconds_to_expire": {ttl}}, map[string]string{"X-TFA-API-Key": tyntecsim.DefaultAPIKey})
	var c struct {
		Request struct{ UUID string } `json:"approval_request"`
	}
	if st != http.StatusOK || json.Unmarshal(raw, &c) != nil {
		t.Fatalf("create = %d %s", st, raw)
	}
	return c.Request.UUID
}

// TestPushCallbacks checks the assumed lifecycle: a pending callback at
// creation, one when the user answers (approved, denied) or when
// seconds_to_expire passes without answer (expired), each retried on non-2xx
// and dropped like webhooks.
func TestPushCallbacks(t *testing.T) {
	fastAnswer := tyntecsim.LogNormal{Median: 2 * time.Second, P95: 3 * time.Second}
	for _, tt := range []struct {
		name   string
		push   tyntecsim.Push
		ttl    string
		want   string
		status func(string, int) int
		drop   float64
	}{
		{name: "approved", push: tyntecsim.Push{ApprovedShare: 1, AnswerLatency: fastAnswer}, ttl: "60", want: tyntecsim.PushApproved},
		{name: "denied", push: tyntecsim.Push{DeniedShare: 1, AnswerLatency: fastAnswer}, ttl: "60", want: tyntecsim.PushDenied},
		{name: "no answer", push: tyntecsim.Push{}, ttl: "5", want: tyntecsim.PushExpired},
		{name: "answer after expiry", push: tyntecsim.Push{ApprovedShare: 1, AnswerLatency: tyntecsim.LogNormal{Median: time.Minute}}, ttl: "5", want: tyntecsim.PushExpired},
		{name: "retried", push: tyntecsim.Push{ApprovedShare: 1, AnswerLatency: fastAnswer}, ttl: "60", want: tyntecsim.PushApproved,
			status: func(_ string, n int) int {
				if n <= 2 {
					return http.StatusServiceUnavailable
				}
				return http.StatusOK
			}},
		{name: "dropped", push: tyntecsim.Push{ApprovedShare: 1, AnswerLatency: fastAnswer}, ttl: "60", want: tyntecsim.PushApproved, drop: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			stub, stubURL := newOTPScopeStub(t, tt.status)
			push := tt.push
			sim, base := simtest.Start(t, tyntecsim.Config{
				Seed: 1, TimeScale: 100, Push: &push, Faults: tyntecsim.Faults{WebhookDrop: tt.drop},
				Webhook:       tyntecsim.WebhookPolicy{InitialBackoff: 100 * time.Millisecond},
				PushCallbacks: []tyntecsim.PushCallback{{URL: stubURL + "/webhooks/push", Headers: map[string]string{"X-Webhook-Token": "tok"}}},
			})
			id := createPush(t, base, tt.ttl)
			simtest.WaitIdle(t, sim)
			tr := sim.Truth()
			if len(tr.Push) != 1 {
				t.Fatalf("truth has %d approval requests; want 1", len(tr.Push))
			}
			p := tr.Push[0]
			if p.UUID != id || p.Status != tt.want {
				t.Errorf("truth %+v; want %s", p, tt.want)
			}
			if tt.want == tyntecsim.PushExpired && p.Updated.Sub(p.Created) != 5*time.Second {
				t.Errorf("expired after %s; want seconds_to_expire, 5s", p.Updated.Sub(p.Created))
			}
			_, _, raw := get(t, base+"/onetouch/json/approval_requests/"+id, map[string]string{"X-TFA-API-Key": tyntecsim.DefaultAPIKey})
			if !strings.Contains(string(raw), `"status":"`+tt.want+`"`) {
				t.Errorf("GET = %s; want status %s", raw, tt.want)
			}
			got := bodies[approvalRequest](t, stub, "/webhooks/push")
			if tt.drop == 1 {
				if len(got) != 0 || len(p.Callbacks) != 2 || !p.Callbacks[0].Dropped || !p.Callbacks[1].Dropped || p.Callbacks[1].Requests != 0 {
					t.Errorf("drop all: received %d callbacks, truth %+v; want none sent, 2 dropped", len(got), p.Callbacks)
				}
				return
			}
			if len(got) != 2 || got[0].Status != tyntecsim.PushPending || got[1].Status != tt.want || got[1].UUID != id ||
				!got[1].UpdatedAt.Equal(p.Updated) || !got[0].CreatedAt.Equal(p.Created) || got[1].TFAID != "5661166" {
				t.Errorf("callbacks %+v; want pending then %s, with the truth's times", got, tt.want)
			}
			if len(p.Callbacks) != 2 || p.Callbacks[1].Delivered != 1 {
				t.Errorf("truth callbacks %+v; want 2, each delivered", p.Callbacks)
			}
			if tt.status != nil && p.Callbacks[0].Requests != 3 {
				t.Errorf("first callback took %d requests; want 3 (two 503s retried)", p.Callbacks[0].Requests)
			}
			stub.mu.Lock()
			for _, r := range stub.got {
				if r.token != "tok" {
					t.Errorf("callback without the configured header: %q", r.token)
				}
			}
			stub.mu.Unlock()
		})
	}
}

// outcome is the body of POST /silent-auth/outcomes (the contract's fields).
type outcome struct {
	AttemptID     string    `json:"attemptId"`
	CorrelationID string    `json:"correlationId"`
	Scope         string    `json:"scope"`
	StartedAt     time.Time `json:"startedAt"`
	FinishedAt    time.Time `json:"finishedAt"`
	Result        string    `json:"result"`
	Error         string    `json:"error"`
	LoginHint     string    `json:"loginHint"`
	MobileID      string    `json:"mobileId"`
	ProfileID     string    `json:"profileId"`
}

// track is the body of POST /otps/track.
type track struct {
	OTPID         string    `json:"otpId"`
	API           string    `json:"api"`
	CorrelationID string    `json:"correlationId"`
	At            time.Time `json:"at"`
}

// TestGeneratedLogins runs the generator with both methods, over HTTP and
// in process, and checks each login's story: a method first for the
// configured share, its outcome reported to otpscope (silent) or called
// back (push), an OTP with the login's correlation id exactly when the
// method failed, tracked with that id; and the truth's journeys agree.
func TestGeneratedLogins(t *testing.T) {
	for _, overHTTP := range []bool{true, false} {
		name := "in process"
		if overHTTP {
			name = "over HTTP"
		}
		t.Run(name, func(t *testing.T) {
			const logins = 150
			stub, stubURL := newOTPScopeStub(t, nil)
			sa := tyntecsim.DefaultSilentAuth()
			sa.VerifiedShare, sa.ErrorShare = 0.5, 0.3 // enough of each kind in 150 logins
			sim, base := simtest.Start(t, tyntecsim.Config{
				Seed: 5, TimeScale: 1000, OTPExpiry: time.Hour, SilentAuth: &sa,
				Callbacks:     []tyntec.NewCallbackConfig{{URL: stubURL + "/webhooks/tyntec"}},
				PushCallbacks: []tyntecsim.PushCallback{{URL: stubURL + "/webhooks/push"}},
			})
			traffic := tyntecsim.Traffic{Rate: 2000, Count: logins, V1Share: 0.2, SilentShare: 0.4, PushShare: 0.3,
				OTPScopeURL: stubURL, OTPScopeHeaders: map[string]string{"X-Webhook-Token": "tok"}}
			if overHTTP {
				traffic.SimURL = base
			}
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			if err := sim.RunTraffic(ctx, traffic); err != nil {
				t.Fatalf("RunTraffic: %v", err)
			}
			simtest.WaitLogins(t, sim, logins)
			simtest.WaitIdle(t, sim)
			tr := sim.Truth()
			checkLogins(t, tr, logins, stub)
			// In process too, the app's requests go through the endpoints.
			if !strings.Contains(callPaths(sim.Calls()), "/silent-auth/v1/oauth2/token") {
				t.Errorf("the app never called the token endpoint")
			}
			if n := sim.MaxCallsInWindow(time.Hour); n != 0 {
				t.Errorf("MaxCallsInWindow = %d; want 0 (the generator sends OTPs without the 2FA API; silent and push calls are not 2FA calls)", n)
			}
		})
	}
}

func callPaths(calls []tyntecsim.Call) string {
	var b strings.Builder
	for _, c := range calls {
		b.WriteString(c.Path + " ")
	}
	return b.String()
}

// checkLogins checks every generated login of tr against what the stub received.
func checkLogins(t *testing.T, tr tyntecsim.Truth, logins int, stub *otpscopeStub) {
	t.Helper()
	if tr.Logins != logins || tr.LoginsDone != logins {
		t.Fatalf("logins %d, done %d; want %d", tr.Logins, tr.LoginsDone, logins)
	}
	otpsOf := map[string][]tyntecsim.OTPTruth{}
	for _, o := range tr.OTPs {
		if o.JourneyID == "" {
			t.Errorf("generated OTP %s has no journey id", o.ID)
		}
		otpsOf[o.JourneyID] = append(otpsOf[o.JourneyID], o)
	}
	reports := map[string]outcome{}
	for _, r := range bodies[outcome](t, stub, "/silent-auth/outcomes") {
		reports[r.AttemptID] = r
	}
	tracks := map[string]track{}
	for _, r := range bodies[track](t, stub, "/otps/track") {
		tracks[r.OTPID] = r
	}
	results := map[string]int{}
	for _, a := range tr.Silent {
		results[a.Result+" "+a.Error]++
		r, ok := reports[a.AttemptID]
		if !ok || r.CorrelationID != a.CorrelationID || r.Result != a.Result || r.Error != a.Error || !r.StartedAt.Equal(a.Started) ||
			!r.FinishedAt.Equal(a.Finished) || r.FinishedAt.Before(r.StartedAt) || r.Scope != tyntecsim.ScopePhoneVerify || r.LoginHint == "" || !a.Report.Reached() ||
			r.ProfileID == "" || r.ProfileID != a.ProfileID {
			t.Errorf("silent attempt %+v reported as %+v (found %v)", a, r, ok)
		}
		if (a.Result == tyntecsim.SilentError) != (a.Error != "") {
			t.Errorf("silent attempt %+v: an error code exactly when the result is error", a)
		}
		wantOTP := a.Result != tyntecsim.SilentVerified
		checkFollowUp(t, "silent "+a.Result, a.CorrelationID, otpsOf[a.CorrelationID], wantOTP, tracks)
		delete(otpsOf, a.CorrelationID)
	}
	pushes := map[string]int{}
	for _, p := range tr.Push {
		pushes[p.Status]++
		if !p.Generated || p.CorrelationID == "" || !p.Seen() {
			t.Errorf("approval request %+v: want generated, with the login's correlation id, called back", p)
		}
		checkFollowUp(t, "push "+p.Status, p.CorrelationID, otpsOf[p.CorrelationID], p.Status != tyntecsim.PushApproved, tracks)
		delete(otpsOf, p.CorrelationID)
	}
	// The rest are OTP-only logins: one OTP, not tracked.
	for id, os := range otpsOf {
		if len(os) != 1 || os[0].Track != nil {
			t.Errorf("OTP-only login %s: %d OTPs, track %+v; want 1 OTP, untracked", id, len(os), os[0].Track)
		}
	}
	only := len(otpsOf)
	t.Logf("%d logins: %d silent %v, %d push %v, %d OTP only", logins, len(tr.Silent), results, len(tr.Push), pushes, only)
	if len(tr.Silent) == 0 || len(tr.Push) == 0 || only == 0 || results["verified "] == 0 || results["not_verified "] == 0 ||
		pushes[tyntecsim.PushApproved] == 0 || pushes[tyntecsim.PushApproved] == len(tr.Push) {
		t.Errorf("the mix lacks a kind: silent %v, push %v, %d OTP only", results, pushes, only)
	}
	if len(tr.Silent)+len(tr.Push)+only != logins {
		t.Errorf("%d silent + %d push + %d OTP-only logins; want %d", len(tr.Silent), len(tr.Push), only, logins)
	}

	// The journeys: one per login, paths starting with the method.
	sum := tr.Summary()
	js := sum.Journeys
	if js.Journeys != logins || js.DeliveredPrimary+js.DeliveredFallback+js.Failed+js.Pending != logins || js.Pending != 0 {
		t.Errorf("journeys %+v; want %d, none pending", js, logins)
	}
	if js.Paths["SILENT"].Journeys != results["verified "] || js.Paths["SILENT"].Delivered != results["verified "] {
		t.Errorf("path SILENT %+v; want %d verified logins, all delivered", js.Paths["SILENT"], results["verified "])
	}
	fallbackPaths := 0
	for p, n := range js.Paths {
		if strings.HasPrefix(p, "SILENT>") || strings.HasPrefix(p, "PUSH>") {
			fallbackPaths += n.Journeys
		}
	}
	if want := len(tr.Silent) - results["verified "] + len(tr.Push) - pushes[tyntecsim.PushApproved]; fallbackPaths != want {
		t.Errorf("%d journeys fall back from a method to an OTP; want %d (failed methods): %v", fallbackPaths, want, js.Paths)
	}
	if c := sum.Channels["SILENT"]; c.Attempts != len(tr.Silent) || c.Delivered != results["verified "] || c.Failed != c.Attempts-c.Delivered || c.Failures["not_verified"] != results["not_verified "] {
		t.Errorf("SILENT channel %+v; want %d attempts, %v", c, len(tr.Silent), results)
	}
	if c := sum.Channels["PUSH"]; c.Attempts != len(tr.Push) || c.Delivered != pushes["approved"] || c.Failures["denied"] != pushes["denied"] || c.Failures["expired"] != pushes["expired"] {
		t.Errorf("PUSH channel %+v; want %v", c, pushes)
	}
	lat := tr.Latencies()
	if len(lat["SILENT"]) != results["verified "] || len(lat["PUSH"]) != pushes["approved"] {
		t.Errorf("latencies of %d SILENT, %d PUSH; want one per verified / approved attempt", len(lat["SILENT"]), len(lat["PUSH"]))
	}
	for ch, ds := range lat {
		for _, d := range ds {
			if d < 0 {
				t.Errorf("%s latency %s < 0", ch, d)
			}
		}
	}
	if r := tr.Reported(); len(r.Silent) != len(tr.Silent) || len(r.Push) != len(tr.Push) {
		t.Errorf("Reported() kept %d silent, %d push of %d, %d; everything was acknowledged", len(r.Silent), len(r.Push), len(tr.Silent), len(tr.Push))
	}
}

// checkFollowUp checks the OTP of a login whose method ended: one, in its
// journey and tracked with its correlation id, exactly when it failed.
func checkFollowUp(t *testing.T, what, id string, os []tyntecsim.OTPTruth, want bool, tracks map[string]track) {
	t.Helper()
	if !want {
		if len(os) != 0 {
			t.Errorf("%s login %s sent %d OTPs; want none", what, id, len(os))
		}
		return
	}
	if len(os) != 1 {
		t.Errorf("%s login %s sent %d OTPs; want 1", what, id, len(os))
		return
	}
	o := os[0]
	tr, ok := tracks[o.ID]
	if !ok || tr.CorrelationID != id || tr.API != o.API || !tr.At.Equal(o.Created) || !o.Track.Reached() {
		t.Errorf("%s login %s: OTP %s tracked as %+v (found %v); want its correlation id", what, id, o.ID, tr, ok)
	}
}

// TestJourneysWithoutMethods checks that without methods the journey
// figures equal the OTP figures the existing tests compare.
func TestJourneysWithoutMethods(t *testing.T) {
	sim, _ := simtest.Start(t, tyntecsim.Config{Seed: 3, TimeScale: 1000, OTPExpiry: time.Hour})
	if err := sim.RunTraffic(t.Context(), tyntecsim.Traffic{Rate: 2000, Count: 80}); err != nil {
		t.Fatal(err)
	}
	tr := simtest.WaitLogins(t, sim, 80)
	s := tr.Summary()
	j := s.Journeys
	if j.Journeys != s.OTPs || j.Fallback != s.Fallback || j.DeliveredPrimary != s.DeliveredPrimary || j.DeliveredFallback != s.DeliveredLater || j.Failed != s.Failed {
		t.Errorf("journeys %+v; OTP summary %+v: want equal", j, s)
	}
	if len(tr.Silent) != 0 || len(tr.Push) != 0 || s.Channels["SILENT"].Attempts != 0 {
		t.Errorf("methods without shares: %d silent, %d push", len(tr.Silent), len(tr.Push))
	}
}

// TestTruthPagesMethods pages the silent attempts and approval requests of
// /_sim/truth and checks simtest.FetchTruth merges them.
func TestTruthPagesMethods(t *testing.T) {
	sa := tyntecsim.SilentAuth{VerifiedShare: 1}
	sa.Clients = map[string]string{"client": "12345"}
	sim, _ := simtest.Start(t, tyntecsim.Config{Seed: 2, TimeScale: 1000, SilentAuth: &sa})
	if err := sim.RunTraffic(t.Context(), tyntecsim.Traffic{Rate: 2000, Count: 9, SilentShare: 0.5, PushShare: 0.5}); err != nil {
		t.Fatal(err)
	}
	simtest.WaitLogins(t, sim, 9)
	hs := httptest.NewServer(sim.InspectHandler())
	t.Cleanup(hs.Close)
	whole := sim.Truth()
	var silent, push int
	var c tyntecsim.TruthCursor
	for range 20 {
		var page tyntecsim.Truth
		q := fmt.Sprintf("limit=2&after=%d&silent_after=%d&push_after=%d", c.OTPs, c.Silent, c.Push)
		st, _, raw := call(t, http.MethodGet, hs.URL+"/_sim/truth?"+q, "", nil)
		if st != http.StatusOK || json.Unmarshal(raw, &page) != nil {
			t.Fatalf("truth page = %d %s", st, raw)
		}
		if len(page.Silent) > 2 || len(page.Push) > 2 || !strings.Contains(string(raw), `"correlation_id"`) {
			t.Fatalf("page %s: want at most 2 of each, snake_case", raw)
		}
		silent += len(page.Silent)
		push += len(page.Push)
		next, more := page.NextCursor(c)
		if !more {
			break
		}
		c = next
	}
	if silent != len(whole.Silent) || push != len(whole.Push) || silent+push != 9 || silent == 0 || push == 0 {
		t.Errorf("paged %d silent, %d push; truth has %d, %d of 9 logins", silent, push, len(whole.Silent), len(whole.Push))
	}
	got := simtest.FetchTruth(t, hs.URL)
	if len(got.Silent) != len(whole.Silent) || len(got.Push) != len(whole.Push) || len(got.OTPs) != len(whole.OTPs) || got.Logins != 9 {
		t.Errorf("FetchTruth: %d silent, %d push, %d OTPs, %d logins; want %d, %d, %d, 9", len(got.Silent), len(got.Push), len(got.OTPs), got.Logins, len(whole.Silent), len(whole.Push), len(whole.OTPs))
	}
}
