package tyntecsim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/polltest"
	"github.com/otpscope/otpscope/internal/tyntec"
	"github.com/otpscope/otpscope/internal/tyntecsim"
	"github.com/otpscope/otpscope/internal/tyntecsim/simtest"
)

// call makes one raw API request and returns status, headers and body.
func call(t *testing.T, method, url, key string, body any) (int, http.Header, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("apiKey", key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, raw
}

func TestFallbackSMSToViber(t *testing.T) {
	rc, hookURL := newReceiver(t, nil)
	chs := tyntecsim.DefaultChannels()
	sms := chs[events.ChannelSMS]
	sms.DeliveryProbability = 0 // SMS fails every time
	sim, _ := simtest.Start(t, tyntecsim.Config{
		Seed:      7,
		TimeScale: 1000,
		Channels:  map[events.Channel]tyntecsim.Channel{events.ChannelSMS: sms},
		Callbacks: []tyntec.NewCallbackConfig{{URL: hookURL, Headers: map[string]string{"X-Webhook-Token": "s3cret"}}},
	})
	const n = 25
	var ids []string
	for range n {
		id, err := sim.Send(tyntec.NewOTPRequest{To: "+491701234567", PriorityName: "tyntec_priority_sms-viber"})
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
		ids = append(ids, id)
	}
	simtest.WaitIdle(t, sim)

	got := byOTP(rc.all())
	truth := sim.Truth()
	for _, id := range ids {
		evs := got[id]
		if len(evs) != 4 {
			t.Fatalf("OTP %s: %d webhooks %+v; want 4", id, len(evs), evs)
		}
		want := []struct {
			ch     events.Channel
			status events.Status
		}{
			{events.ChannelSMS, events.StatusDispatched},
			{events.ChannelSMS, events.StatusUndeliverable},
			{events.ChannelViber, events.StatusDispatched},
			{events.ChannelViber, ""}, // any outcome
		}
		for i, w := range want {
			if evs[i].Channel != w.ch || (w.status != "" && evs[i].Status != w.status) {
				t.Errorf("OTP %s webhook %d = %s %s; want %s %s", id, i, evs[i].Channel, evs[i].Status, w.ch, w.status)
			}
			if i > 0 && evs[i].Timestamp.Before(evs[i-1].Timestamp) {
				t.Errorf("OTP %s webhook %d at %s before previous at %s", id, i, evs[i].Timestamp, evs[i-1].Timestamp)
			}
			failed := evs[i].Status == events.StatusUndeliverable || evs[i].Status == events.StatusTimedOut
			if failed != (evs[i].Error != nil) {
				t.Errorf("OTP %s webhook %d status %s has error %+v", id, i, evs[i].Status, evs[i].Error)
			}
		}
		switch evs[3].Status {
		case events.StatusDelivered, events.StatusUndeliverable, events.StatusTimedOut:
		default:
			t.Errorf("OTP %s final VIBER status %q", id, evs[3].Status)
		}

		ot, ok := truth.OTP(id)
		if !ok {
			t.Fatalf("OTP %s missing from truth", id)
		}
		if ot.Path() != "SMS>VIBER" || ot.Priority != "tyntec_priority_sms-viber" || ot.API != tyntecsim.APIv4 {
			t.Errorf("truth %s: path %q priority %q api %q", id, ot.Path(), ot.Priority, ot.API)
		}
		if len(ot.Webhooks) != 4 {
			t.Fatalf("truth %s: %d webhooks; want 4", id, len(ot.Webhooks))
		}
		for i, w := range ot.Webhooks {
			if !w.Timestamp.Equal(evs[i].Timestamp) || w.Status != evs[i].Status || w.Delivered != 1 {
				t.Errorf("truth webhook %d of %s = %+v; received %+v", i, id, w, evs[i])
			}
		}
		if ot.Attempts[0].Outcome != events.StatusUndeliverable || !ot.Attempts[0].Settled.Equal(evs[1].Timestamp) {
			t.Errorf("truth %s SMS attempt %+v; webhook %+v", id, ot.Attempts[0], evs[1])
		}
	}
	for _, r := range rc.all() {
		if r.header.Get("X-Webhook-Token") != "s3cret" {
			t.Fatalf("webhook header X-Webhook-Token = %q; want the configured one", r.header.Get("X-Webhook-Token"))
		}
		// The body is tyntec's webhook, none of otpscope's additions.
		var body map[string]json.RawMessage
		if err := json.Unmarshal(r.raw, &body); err != nil {
			t.Fatal(err)
		}
		want := map[string]bool{"channel": true, "otpId": true, "profileId": true, "status": true, "timestamp": true, "error": r.ds.Status.Failed()}
		for k := range body {
			if !want[k] {
				t.Errorf("webhook body %s has %q; want only tyntec's fields", r.raw, k)
			}
			delete(want, k)
		}
		for k, required := range want {
			if required {
				t.Errorf("webhook body %s lacks %q", r.raw, k)
			}
		}
	}
}

// story is what must not depend on the wall clock: codes, channels,
// outcomes and offsets from creation. OTP IDs are not part of it: they are
// random in every run.
func story(tr tyntecsim.Truth) []string {
	var out []string
	for _, o := range tr.OTPs {
		s := fmt.Sprintf("%d %s %s", o.Seq, o.Code, o.Path())
		for _, a := range o.Attempts {
			s += fmt.Sprintf(" [%s %s +%s +%s]", a.Channel, a.Outcome, a.Dispatched.Sub(o.Created), a.Settled.Sub(o.Created))
		}
		out = append(out, s)
	}
	return out
}

func TestDeterministicWithSeed(t *testing.T) {
	ids := map[string]bool{}
	run := func(seed int64) []string {
		sim, _ := simtest.Start(t, tyntecsim.Config{Seed: seed, TimeScale: 1000, OTPExpiry: time.Hour})
		for i := range 30 {
			prio := []string{"tyntec_priority_sms-viber", "tyntec_priority_whatsapp-sms", "tyntec_priority_sms-voice"}[i%3]
			id, err := sim.Send(tyntec.NewOTPRequest{To: "+4917000000" + strconv.Itoa(i), PriorityName: prio})
			if err != nil {
				t.Fatal(err)
			}
			if ids[id] {
				t.Errorf("otpId %s handed out twice", id)
			}
			ids[id] = true
		}
		simtest.WaitIdle(t, sim)
		return story(sim.Truth())
	}
	// The same seed twice (a restarted demo) tells the same story with new otpIds.
	a, b, c := run(42), run(42), run(43)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("same seed, different stories:\n%v\n%v", a, b)
	}
	if fmt.Sprint(a) == fmt.Sprint(c) {
		t.Errorf("seeds 42 and 43 told the same story %v", a)
	}
}

func TestWebhookFaults(t *testing.T) {
	tests := []struct {
		name   string
		faults tyntecsim.Faults
		status func(n int) int
		check  func(t *testing.T, got []received, requests int, tr tyntecsim.Truth)
	}{
		{
			name:   "drop all",
			faults: tyntecsim.Faults{WebhookDrop: 1},
			check: func(t *testing.T, got []received, requests int, tr tyntecsim.Truth) {
				if requests != 0 {
					t.Errorf("receiver got %d requests; want 0", requests)
				}
				for _, o := range tr.OTPs {
					for _, w := range o.Webhooks {
						if !w.Dropped || w.Requests != 0 {
							t.Errorf("truth webhook %+v; want dropped, never sent", w)
						}
					}
				}
			},
		},
		{
			name:   "duplicate all",
			faults: tyntecsim.Faults{WebhookDuplicate: 1},
			check: func(t *testing.T, got []received, requests int, tr tyntecsim.Truth) {
				n := 0
				for _, o := range tr.OTPs {
					for _, w := range o.Webhooks {
						n++
						if !w.Duplicated || w.Delivered != 2 {
							t.Errorf("truth webhook %+v; want duplicated, delivered twice", w)
						}
					}
				}
				if len(got) != 2*n {
					t.Errorf("received %d webhooks; want %d", len(got), 2*n)
				}
			},
		},
		{
			name:   "reorder half",
			faults: tyntecsim.Faults{WebhookReorder: 0.5, ReorderDelay: 20 * time.Second},
			check: func(t *testing.T, got []received, requests int, tr tyntecsim.Truth) {
				outOfOrder, reordered := 0, 0
				for _, evs := range byOTP(got) {
					for i := 1; i < len(evs); i++ {
						if evs[i].Timestamp.Before(evs[i-1].Timestamp) {
							outOfOrder++
						}
					}
				}
				for _, o := range tr.OTPs {
					for _, w := range o.Webhooks {
						if w.Reordered {
							reordered++
						}
						if w.Delivered != 1 {
							t.Errorf("truth webhook %+v; want delivered once", w)
						}
					}
				}
				if reordered == 0 || outOfOrder == 0 {
					t.Errorf("reordered %d, received out of order %d; want both > 0", reordered, outOfOrder)
				}
			},
		},
		{
			name:   "receiver always 503",
			status: func(int) int { return http.StatusServiceUnavailable },
			check: func(t *testing.T, got []received, requests int, tr tyntecsim.Truth) {
				n := 0
				for _, o := range tr.OTPs {
					for _, w := range o.Webhooks {
						n++
						if w.Requests != 3 || w.Delivered != 0 || w.LastStatus != http.StatusServiceUnavailable {
							t.Errorf("truth webhook %+v; want 3 requests, none delivered, last 503", w)
						}
					}
				}
				if requests != 3*n {
					t.Errorf("receiver got %d requests; want %d (3 attempts each)", requests, 3*n)
				}
			},
		},
		{
			name: "receiver fails first request",
			status: func(n int) int {
				return map[bool]int{true: http.StatusInternalServerError, false: http.StatusOK}[n == 1]
			},
			check: func(t *testing.T, got []received, requests int, tr tyntecsim.Truth) {
				retried := 0
				for _, o := range tr.OTPs {
					for _, w := range o.Webhooks {
						if w.Delivered != 1 {
							t.Errorf("truth webhook %+v; want delivered once", w)
						}
						if w.Requests == 2 {
							retried++
						}
					}
				}
				if retried != 1 {
					t.Errorf("%d webhooks needed a retry; want 1", retried)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc, hookURL := newReceiver(t, tt.status)
			sim, _ := simtest.Start(t, tyntecsim.Config{
				Seed: 3, TimeScale: 1000, OTPExpiry: time.Hour, Faults: tt.faults,
				Webhook:   tyntecsim.WebhookPolicy{MaxAttempts: 3, InitialBackoff: time.Millisecond},
				Callbacks: []tyntec.NewCallbackConfig{{URL: hookURL}},
			})
			for range 20 {
				if _, err := sim.Send(tyntec.NewOTPRequest{To: "+491700000001"}); err != nil {
					t.Fatal(err)
				}
			}
			simtest.WaitIdle(t, sim)
			tt.check(t, rc.all(), rc.requests(), sim.Truth())
		})
	}
}

func TestCallbackProfileFilter(t *testing.T) {
	rcAll, urlAll := newReceiver(t, nil)
	rcLogin, urlLogin := newReceiver(t, nil)
	login := tyntecsim.DefaultProfiles()[1]
	sim, _ := simtest.Start(t, tyntecsim.Config{Seed: 1, TimeScale: 1000, OTPExpiry: time.Hour, Callbacks: []tyntec.NewCallbackConfig{
		{URL: urlAll}, {URL: urlLogin, ProfileID: login.ID},
	}})
	for _, p := range []string{"tyntec_profile_register", login.Name, "tyntec_profile_payment", login.Name} {
		if _, err := sim.Send(tyntec.NewOTPRequest{To: "+491700000002", ProfileName: p}); err != nil {
			t.Fatal(err)
		}
	}
	simtest.WaitIdle(t, sim)
	if len(byOTP(rcAll.all())) != 4 {
		t.Errorf("unfiltered callback saw %d OTPs; want 4", len(byOTP(rcAll.all())))
	}
	loginOTPs := byOTP(rcLogin.all())
	if len(loginOTPs) != 2 {
		t.Errorf("login callback saw %d OTPs; want 2", len(loginOTPs))
	}
	for _, r := range rcLogin.all() {
		if r.ds.ProfileID != login.ID {
			t.Errorf("login callback got profile %q", r.ds.ProfileID)
		}
	}
}

func TestValidateTransitions(t *testing.T) {
	tests := []struct {
		name  string
		codes []bool // right code?
		want  []events.OTPState
	}{
		{"right", []bool{true, true}, []events.OTPState{"VERIFIED", "ALREADY_REPORTED"}},
		{"wrong then right", []bool{false, true}, []events.OTPState{"WRONG_CODE", "VERIFIED"}},
		{"too many", []bool{false, false, false, true}, []events.OTPState{"WRONG_CODE", "WRONG_CODE", "TOO_MANY_ATTEMPTS", "TOO_MANY_ATTEMPTS"}},
	}
	sim, base := simtest.Start(t, tyntecsim.Config{Seed: 5, OTPExpiry: time.Hour})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := sim.Send(tyntec.NewOTPRequest{To: "+491700000003", OTPCode: "123456"})
			if err != nil {
				t.Fatal(err)
			}
			for i, right := range tt.codes {
				code := "654321"
				if right {
					code = "123456"
				}
				st, _, raw := call(t, http.MethodPost, base+"/2fa/v4/otp/"+id+"/validate", tyntecsim.DefaultAPIKey, tyntec.ValidateOTPRequest{OTPCode: code})
				var got tyntec.ValidateOTPResponse
				if err := json.Unmarshal(raw, &got); st != http.StatusOK || err != nil || got.OTPStatus != tt.want[i] {
					t.Errorf("validate #%d = %d %s; want 200 %s", i, st, raw, tt.want[i])
				}
			}
		})
	}
}

func TestV1CheckStatuses(t *testing.T) {
	sim, base := simtest.Start(t, tyntecsim.Config{Seed: 5, OTPExpiry: time.Hour})
	send := func() tyntec.V1OTP {
		st, _, raw := call(t, http.MethodPost, base+"/2fa/v1/otp?number=%2B491700000004&otpCode=4711", tyntecsim.DefaultAPIKey, nil)
		var o tyntec.V1OTP
		if err := json.Unmarshal(raw, &o); st != http.StatusOK || err != nil {
			t.Fatalf("v1 send = %d %s", st, raw)
		}
		return o
	}
	check := func(id, code string) (int, tyntec.V1OTP) {
		st, _, raw := call(t, http.MethodPost, base+"/2fa/v1/otp/"+id+"/check?otpCode="+code, tyntecsim.DefaultAPIKey, nil)
		var o tyntec.V1OTP
		_ = json.Unmarshal(raw, &o)
		return st, o
	}
	a := send()
	for i, want := range []struct {
		code   string
		status int
		otp    events.OTPState
	}{
		{"1111", http.StatusUnauthorized, "ACTIVE"},
		{"4711", http.StatusAccepted, "VERIFIED"},
		{"4711", http.StatusGone, "VERIFIED"},
	} {
		if st, o := check(a.OTPID, want.code); st != want.status || o.OTPStatus != want.otp {
			t.Errorf("check #%d = %d %s; want %d %s", i, st, o.OTPStatus, want.status, want.otp)
		}
	}
	b := send()
	for i, want := range []int{http.StatusUnauthorized, http.StatusUnauthorized, http.StatusForbidden, http.StatusGone} {
		if st, _ := check(b.OTPID, "0000"); st != want {
			t.Errorf("wrong check #%d = %d; want %d", i, st, want)
		}
	}
	if st, _ := check("no-such-otp", "0000"); st != http.StatusNotFound {
		t.Errorf("check of unknown OTP = %d; want 404", st)
	}
	_ = sim
}

func TestExpiry(t *testing.T) {
	sim, base := simtest.Start(t, tyntecsim.Config{Seed: 5, TimeScale: 1000, OTPExpiry: 10 * time.Second})
	id, err := sim.Send(tyntec.NewOTPRequest{To: "+491700000005", OTPCode: "123456"})
	if err != nil {
		t.Fatal(err)
	}
	tr := sim.Truth()
	expire := tr.OTPs[0].Expire
	polltest.Until(t, 10*time.Second, "the simulated clock to pass the expiry", func() bool { return sim.Now().After(expire) })
	st, _, raw := call(t, http.MethodGet, base+"/2fa/v4/otp/"+id, tyntecsim.DefaultAPIKey, nil)
	var o tyntec.OTP
	if err := json.Unmarshal(raw, &o); st != http.StatusOK || err != nil || o.OTPStatus != events.OTPExpired {
		t.Errorf("GET expired OTP = %d %s; want 200 EXPIRED", st, raw)
	}
	_, _, raw = call(t, http.MethodPost, base+"/2fa/v4/otp/"+id+"/validate", tyntecsim.DefaultAPIKey, tyntec.ValidateOTPRequest{OTPCode: "123456"})
	if !bytes.Contains(raw, []byte(`"EXPIRED"`)) {
		t.Errorf("validate expired OTP = %s; want EXPIRED", raw)
	}
}

func TestV1ResendAndEvents(t *testing.T) {
	sim, base := simtest.Start(t, tyntecsim.Config{Seed: 9, TimeScale: 1000, OTPExpiry: time.Hour})
	st, _, raw := call(t, http.MethodPost, base+"/2fa/v1/otp?number=%2B491700000006&otpCode=4711", tyntecsim.DefaultAPIKey, nil)
	var o tyntec.V1OTP
	if err := json.Unmarshal(raw, &o); st != http.StatusOK || err != nil {
		t.Fatalf("v1 send = %d %s", st, raw)
	}
	if st, _, raw := call(t, http.MethodPost, base+"/2fa/v1/otp/"+o.OTPID+"?via=VOICE", tyntecsim.DefaultAPIKey, nil); st != http.StatusOK {
		t.Fatalf("resend = %d %s", st, raw)
	}
	simtest.WaitIdle(t, sim)
	ot, _ := sim.Truth().OTP(o.OTPID)
	if len(ot.Attempts) != 2 || ot.Attempts[0].Channel != events.ChannelSMS || ot.Attempts[1].Channel != events.ChannelVoice || !ot.Attempts[1].Resend {
		t.Errorf("attempts %+v; want SMS then re-sent VOICE", ot.Attempts)
	}
	if len(ot.Webhooks) != 0 {
		t.Errorf("v1 OTP sent %d webhooks; want none", len(ot.Webhooks))
	}
	_, _, raw = call(t, http.MethodGet, base+"/2fa/v1/otp/"+o.OTPID+"/events", tyntecsim.DefaultAPIKey, nil)
	var evs []tyntec.V1Event
	if err := json.Unmarshal(raw, &evs); err != nil {
		t.Fatal(err)
	}
	types := map[string]int{}
	for _, e := range evs {
		types[e.Type]++
		if ch, status, ok := e.Delivery(); ok && (ch == "" || status == "") {
			t.Errorf("event %+v maps to %q %q", e, ch, status)
		}
	}
	if types[events.V1EventCreated] != 1 || types[events.V1EventResend] != 1 || types[events.V1EventSMS] != 2 || types[events.V1EventVoice] != 2 {
		t.Errorf("event types %v; want CREATED 1, RESEND 1, SMS 2, VOICE 2", types)
	}
	if fmt.Sprint(evs) != fmt.Sprint(ot.Events) {
		t.Errorf("events endpoint %v differs from truth %v", evs, ot.Events)
	}
	// A verified OTP cannot be re-sent.
	call(t, http.MethodPost, base+"/2fa/v1/otp/"+o.OTPID+"/check?otpCode=4711", tyntecsim.DefaultAPIKey, nil)
	if st, _, raw := call(t, http.MethodPost, base+"/2fa/v1/otp/"+o.OTPID+"?via=SMS", tyntecsim.DefaultAPIKey, nil); st != http.StatusUnauthorized {
		t.Errorf("resend of verified OTP = %d %s; want 401", st, raw)
	}
}

func TestAPIGuards(t *testing.T) {
	_, base := simtest.Start(t, tyntecsim.Config{Seed: 1, Faults: tyntecsim.Faults{RateLimit: 3, RatePeriod: time.Minute}})
	for _, tt := range []struct {
		name, path, key string
		want            int
		field           string // a field of the expected error shape
	}{
		{"v4 wrong key", "/2fa/v4/otp", "wrong", http.StatusUnauthorized, `"title"`},
		{"v1 wrong key", "/2fa/v1/otp?number=%2B4917000", "wrong", http.StatusUnauthorized, `"message"`},
	} {
		st, _, raw := call(t, http.MethodGet, base+tt.path, tt.key, nil)
		if st != tt.want || !bytes.Contains(raw, []byte(tt.field)) {
			t.Errorf("%s: %d %s; want %d with %s", tt.name, st, raw, tt.want, tt.field)
		}
	}
	for i := range 3 {
		if st, _, raw := call(t, http.MethodGet, base+"/2fa/v4/priorities", tyntecsim.DefaultAPIKey, nil); st != http.StatusOK {
			t.Fatalf("call %d within budget = %d %s", i, st, raw)
		}
	}
	st, h, raw := call(t, http.MethodGet, base+"/2fa/v1/otp/x", tyntecsim.DefaultAPIKey, nil)
	ra, err := strconv.Atoi(h.Get("Retry-After"))
	if st != http.StatusTooManyRequests || err != nil || ra < 1 || ra > 60 || !bytes.Contains(raw, []byte(`"message"`)) {
		t.Errorf("call over budget = %d Retry-After %q %s; want 429, 1..60 s, v1 error shape", st, h.Get("Retry-After"), raw)
	}
}

func TestAPIErrorFault(t *testing.T) {
	_, base := simtest.Start(t, tyntecsim.Config{Seed: 1, Faults: tyntecsim.Faults{APIError: 1, APIErrorStatus: http.StatusBadGateway}})
	if st, _, raw := call(t, http.MethodGet, base+"/2fa/v4/priorities", tyntecsim.DefaultAPIKey, nil); st != http.StatusBadGateway || !bytes.Contains(raw, []byte(`"status":502`)) {
		t.Errorf("faulty call = %d %s; want 502 in v4 shape", st, raw)
	}
}

func TestTrafficGenerator(t *testing.T) {
	rc, hookURL := newReceiver(t, nil)
	sim, _ := simtest.Start(t, tyntecsim.Config{Seed: 11, TimeScale: 1000, OTPExpiry: time.Hour, Callbacks: []tyntec.NewCallbackConfig{{URL: hookURL}}})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := sim.RunTraffic(ctx, tyntecsim.Traffic{Rate: 2000, Count: 60, V1Share: 0.25}); err != nil {
		t.Fatalf("RunTraffic: %v", err)
	}
	simtest.WaitIdle(t, sim)
	tr := sim.Truth()
	if len(tr.OTPs) != 60 {
		t.Fatalf("generated %d OTPs; want 60", len(tr.OTPs))
	}
	apis, profiles, prios, finals := map[string]int{}, map[string]int{}, map[string]int{}, map[string]int{}
	webhooks := 0
	for _, o := range tr.OTPs {
		apis[o.API]++
		profiles[o.Profile]++
		prios[o.Priority]++
		finals[string(o.Final)]++
		if !o.Generated {
			t.Errorf("OTP %s not marked generated", o.ID)
		}
		if o.API == tyntecsim.APIv1 && len(o.Webhooks) != 0 {
			t.Errorf("v1 OTP %s has webhooks", o.ID)
		}
		webhooks += len(o.Webhooks)
	}
	if apis[tyntecsim.APIv1] == 0 || apis[tyntecsim.APIv4] == 0 || len(profiles) < 3 || len(prios) < 3 {
		t.Errorf("spread: apis %v profiles %v priorities %v; want both APIs and several profiles and priorities", apis, profiles, prios)
	}
	if finals[string(events.OTPVerified)] == 0 {
		t.Errorf("final statuses %v; want some VERIFIED", finals)
	}
	if len(rc.all()) != webhooks {
		t.Errorf("received %d webhooks; truth says %d", len(rc.all()), webhooks)
	}
}

func TestMaxInWindow(t *testing.T) {
	at := func(ms ...int) []tyntecsim.Call {
		var cs []tyntecsim.Call
		base := time.Unix(0, 0)
		for _, m := range ms {
			cs = append(cs, tyntecsim.Call{At: base.Add(time.Duration(m) * time.Millisecond)})
		}
		return cs
	}
	tests := []struct {
		calls  []tyntecsim.Call
		window time.Duration
		want   int
	}{
		{nil, time.Second, 0},
		{at(0), time.Second, 1},
		{at(0, 500, 1000, 1001), time.Second, 3},
		{at(0, 100, 200, 5000), 150 * time.Millisecond, 2},
		{at(0, 2000, 4000), time.Second, 1},
	}
	for _, tt := range tests {
		if got := tyntecsim.MaxInWindow(tt.calls, tt.window); got != tt.want {
			t.Errorf("MaxInWindow(%v, %s) = %d; want %d", tt.calls, tt.window, got, tt.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  tyntecsim.Config
		ok   bool
	}{
		{"zero", tyntecsim.Config{}, true},
		{"negative scale", tyntecsim.Config{TimeScale: -1}, false},
		{"drop above 1", tyntecsim.Config{Faults: tyntecsim.Faults{WebhookDrop: 1.5}}, false},
		{"probability above 1", tyntecsim.Config{Channels: map[events.Channel]tyntecsim.Channel{"SMS": {DeliveryProbability: 2, Timeout: time.Second}}}, false},
		{"unknown priority channel", tyntecsim.Config{Priorities: []tyntec.Priority{{Name: "x", ChannelPriority: []tyntec.ChannelPriority{{Channel: "FAX", Priority: 1}}}}}, false},
		{"methods above 1", tyntecsim.Config{Traffic: tyntecsim.Traffic{SilentShare: 0.6, PushShare: 0.6}}, false},
		{"silent mix above 1", tyntecsim.Config{SilentAuth: &tyntecsim.SilentAuth{VerifiedShare: 0.9, ErrorShare: 0.2, Errors: map[string]float64{"server_error": 1}}}, false},
		{"silent errors without weights", tyntecsim.Config{SilentAuth: &tyntecsim.SilentAuth{ErrorShare: 0.2}}, false},
		{"unknown silent error", tyntecsim.Config{SilentAuth: &tyntecsim.SilentAuth{ErrorShare: 0.2, Errors: map[string]float64{"oops": 1}}}, false},
		{"silent share without a client", tyntecsim.Config{SilentAuth: &tyntecsim.SilentAuth{}, Traffic: tyntecsim.Traffic{SilentShare: 0.1}}, false},
		{"push mix above 1", tyntecsim.Config{Push: &tyntecsim.Push{ApprovedShare: 0.9, DeniedShare: 0.2}}, false},
		{"push callback not http", tyntecsim.Config{PushCallbacks: []tyntecsim.PushCallback{{URL: "ftp://x"}}}, false},
		{"negative rate", tyntecsim.Config{Traffic: tyntecsim.Traffic{Rate: -1}}, false},
		{"callback not a URL", tyntecsim.Config{Callbacks: []tyntec.NewCallbackConfig{{URL: "foo"}}}, false},
		{"callback", tyntecsim.Config{Callbacks: []tyntec.NewCallbackConfig{{URL: "http://127.0.0.1:8080/webhooks/tyntec"}}}, true},
		{"methods", tyntecsim.Config{Traffic: tyntecsim.Traffic{SilentShare: 0.2, PushShare: 0.1, OTPScopeURL: "http://127.0.0.1:8080"}}, true},
	}
	for _, tt := range tests {
		if err := tt.cfg.Validate(); (err == nil) != tt.ok {
			t.Errorf("%s: Validate() = %v; want ok=%v", tt.name, err, tt.ok)
		}
	}
}

// TestKeepForgetsTheOldest: with Keep, a long run forgets its oldest
// settled OTPs (with the methods before them), so its memory stays bounded;
// the truth pages on from the first kept, counts the forgotten, and the API
// no longer knows a forgotten OTP.
func TestKeepForgetsTheOldest(t *testing.T) {
	rc, hookURL := newReceiver(t, nil)
	sim, base := simtest.Start(t, tyntecsim.Config{Seed: 12, TimeScale: 1000, OTPExpiry: time.Minute, Keep: 100,
		Callbacks: []tyntec.NewCallbackConfig{{URL: hookURL}}})
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	const logins = 2600 // 5.2 s at 500/s, ~2,200 OTPs (approved pushes send none): the 2,048th comes ~80 simulated minutes in, when the first are an hour old
	if err := sim.RunTraffic(ctx, tyntecsim.Traffic{Rate: 500, Count: logins, PushShare: 0.2}); err != nil {
		t.Fatalf("RunTraffic: %v", err)
	}
	simtest.WaitIdle(t, sim)
	tr := sim.Truth()
	gone := tr.Forgotten.OTPs
	if gone == 0 || gone > logins-100 {
		t.Fatalf("forgot %d OTPs of %d; want some, keeping at least 100", gone, logins)
	}
	if tr.Forgotten.Push == 0 {
		t.Errorf("forgot no approval request; want those before the oldest OTP kept")
	}
	if uint64(len(tr.OTPs))+gone != tr.OTPs[len(tr.OTPs)-1].Seq || tr.OTPs[0].Seq != gone+1 {
		t.Errorf("truth holds %d OTPs, seqs %d..%d, %d forgotten; want the seqs after the forgotten", len(tr.OTPs), tr.OTPs[0].Seq, tr.OTPs[len(tr.OTPs)-1].Seq, gone)
	}
	page := sim.TruthPage(tyntecsim.TruthCursor{OTPs: 3}, 10)
	if len(page.OTPs) != 10 || page.OTPs[0].Seq != gone+1 || page.Next != gone+10 {
		t.Errorf("a page after OTP 3: %d OTPs from seq %d, next %d; want 10 from %d, next %d", len(page.OTPs), page.OTPs[0].Seq, page.Next, gone+1, gone+10)
	}
	if sum := sim.TruthSummary(); sum.Forgotten.OTPs != gone || sum.OTPs != len(tr.OTPs) {
		t.Errorf("summary counts %d OTPs, %d forgotten; want %d and %d", sum.OTPs, sum.Forgotten.OTPs, len(tr.OTPs), gone)
	}
	kept := map[string]bool{}
	for _, o := range tr.OTPs {
		kept[o.ID] = true
	}
	if st, _, _ := call(t, http.MethodGet, base+"/2fa/v4/otp/"+tr.OTPs[0].ID, tyntecsim.DefaultAPIKey, nil); st != http.StatusOK {
		t.Errorf("GET of the oldest OTP kept = %d; want 200", st)
	}
	for _, r := range rc.all() {
		if id := r.ds.OTPID; !kept[id] {
			if st, _, _ := call(t, http.MethodGet, base+"/2fa/v4/otp/"+id, tyntecsim.DefaultAPIKey, nil); st != http.StatusNotFound {
				t.Errorf("GET of forgotten OTP %s = %d; want 404", id, st)
			}
			return
		}
	}
	t.Error("no webhook of a forgotten OTP")
}
