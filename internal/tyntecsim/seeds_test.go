package tyntecsim_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/tyntec"
	"github.com/otpscope/otpscope/internal/tyntecsim"
	"github.com/otpscope/otpscope/internal/tyntecsim/simtest"
)

// TestVersionsSeparate checks that by default each API version answers only
// for its own OTPs, and that SharedVersions joins them.
func TestVersionsSeparate(t *testing.T) {
	for _, shared := range []bool{false, true} {
		sim, base := simtest.Start(t, tyntecsim.Config{Seed: 1, SharedVersions: shared})
		v4, err := sim.Send(tyntec.NewOTPRequest{To: "+491700000001"})
		if err != nil {
			t.Fatal(err)
		}
		st, _, raw := call(t, http.MethodPost, base+"/2fa/v1/otp?number=%2B491700000002", tyntecsim.DefaultAPIKey, nil)
		var v1 tyntec.V1OTP
		if st != http.StatusOK || json.Unmarshal(raw, &v1) != nil {
			t.Fatalf("v1 send = %d %s", st, raw)
		}
		want := http.StatusNotFound
		if shared {
			want = http.StatusOK
		}
		for _, u := range []string{"/2fa/v4/otp/" + v1.OTPID, "/2fa/v1/otp/" + v4, "/2fa/v1/otp/" + v4 + "/events"} {
			if st, _, raw := call(t, http.MethodGet, base+u, tyntecsim.DefaultAPIKey, nil); st != want {
				t.Errorf("shared=%v: GET %s = %d %s; want %d", shared, u, st, raw, want)
			}
		}
		_, _, raw = call(t, http.MethodGet, base+"/2fa/v4/otp", tyntecsim.DefaultAPIKey, nil)
		var list []tyntec.OTP
		if err := json.Unmarshal(raw, &list); err != nil || (len(list) == 2) != shared {
			t.Errorf("shared=%v: v4 list = %s; want 1 OTP (2 when shared)", shared, raw)
		}
	}
}

func TestSeedAnswers(t *testing.T) {
	_, base := simtest.Start(t, tyntecsim.Config{Seed: 1})
	key := tyntecsim.DefaultAPIKey
	cb := tyntec.NewCallbackConfig{URL: "http://127.0.0.1:1/hook"}
	tests := []struct {
		name   string
		method string
		path   string
		body   any
		want   int
		inBody string
	}{
		{"callback", http.MethodPost, "/2fa/v4/configurations/callbacks", cb, http.StatusCreated, `"id"`},
		{"same callback", http.MethodPost, "/2fa/v4/configurations/callbacks", cb, http.StatusConflict, "Callback configuration already exists."},
		{"callback for a profile", http.MethodPost, "/2fa/v4/configurations/callbacks", tyntec.NewCallbackConfig{URL: cb.URL, ProfileID: "p1"}, http.StatusCreated, `"id"`},
		{"bad language", http.MethodPost, "/2fa/v4/otp", tyntec.NewOTPRequest{To: "+491700000001", LanguageCode: "xx"}, http.StatusBadRequest, `"field":"languageCode"`},
		{"good language", http.MethodPost, "/2fa/v4/otp", tyntec.NewOTPRequest{To: "+491700000001", LanguageCode: "es_MX"}, http.StatusAccepted, `"id"`},
		{"validate unknown", http.MethodPost, "/2fa/v4/otp/0034ac53-7e64-4537-955d-75054d8aaf44/validate", tyntec.ValidateOTPRequest{OTPCode: "1234"}, http.StatusBadRequest, "Constraint Violation"},
		{"delete unknown", http.MethodDelete, "/2fa/v4/otp/0034ac53-7e64-4537-955d-75054d8aaf44", nil, http.StatusOK, ""},
		{"whatsapp config", http.MethodGet, "/2fa/v4/configurations/channels/whatsapp", nil, http.StatusOK, tyntecsim.DefaultWhatsAppAccountID},
		{"second whatsapp config", http.MethodPost, "/2fa/v4/configurations/channels/whatsapp", map[string]string{"whatsAppAccountId": "x"}, http.StatusConflict, "WhatsApp configuration already exist."},
		{"templates", http.MethodGet, "/2fa/v4/templates", nil, http.StatusOK, `"codeExpirationTime":5`},
	}
	for _, tt := range tests {
		st, _, raw := call(t, tt.method, base+tt.path, key, tt.body)
		if st != tt.want || !strings.Contains(string(raw), tt.inBody) {
			t.Errorf("%s: %s %s = %d %s; want %d with %q", tt.name, tt.method, tt.path, st, raw, tt.want, tt.inBody)
		}
	}
}

// TestWhatsAppPrerequisite checks the 403 of a WhatsApp profile without a
// WhatsApp configuration, and that sending skips WhatsApp then.
func TestWhatsAppPrerequisite(t *testing.T) {
	profiles := tyntecsim.DefaultProfiles()
	for i := range profiles {
		profiles[i].Channels = profiles[i].Channels[:1] // SMS only
	}
	sim, base := simtest.Start(t, tyntecsim.Config{Seed: 1, TimeScale: 1000, NoWhatsApp: true, Profiles: profiles})
	body := map[string]any{"name": "wa", "alphanumeric": "true", "channels": []tyntec.ProfileChannel{{Type: events.ChannelWhatsApp, Templates: []tyntec.Template{{Name: "t", LanguageCode: "en_US"}}}}}
	if st, _, raw := call(t, http.MethodPost, base+"/2fa/v4/profiles", tyntecsim.DefaultAPIKey, body); st != http.StatusForbidden || !strings.Contains(string(raw), "Missing WhatsApp Configuration") {
		t.Errorf("create WhatsApp profile = %d %s; want 403 Missing WhatsApp Configuration", st, raw)
	}
	if st, _, raw := call(t, http.MethodGet, base+"/2fa/v4/configurations/channels/whatsapp", tyntecsim.DefaultAPIKey, nil); st != http.StatusNotFound {
		t.Errorf("read WhatsApp configuration = %d %s; want 404", st, raw)
	}
	// WHATSAPP>SMS: no WhatsApp configuration and no template, so SMS only.
	id, err := sim.Send(tyntec.NewOTPRequest{To: "+491700000001", PriorityName: "tyntec_priority_whatsapp-sms"})
	if err != nil {
		t.Fatal(err)
	}
	// sms-viber with an SMS-only profile: VIBER is never tried.
	id2, err := sim.Send(tyntec.NewOTPRequest{To: "+491700000002", PriorityName: "tyntec_priority_sms-viber"})
	if err != nil {
		t.Fatal(err)
	}
	simtest.WaitIdle(t, sim)
	tr := sim.Truth()
	for _, id := range []string{id, id2} {
		o, _ := tr.OTP(id)
		if o.Path() != "SMS" {
			t.Errorf("OTP %s path %q; want SMS (no usable template or configuration for the others)", id, o.Path())
		}
	}
	if call, _, raw := call(t, http.MethodPost, base+"/2fa/v4/otp", tyntecsim.DefaultAPIKey, tyntec.NewOTPRequest{To: "+491700000003", PriorityName: "tyntec_priority_sms-viber", ProfileName: "nope"}); call != http.StatusBadRequest {
		t.Errorf("unknown profile = %d %s; want 400", call, raw)
	}
}

// TestProfileShapesOTP checks that the profile's template sets the validity
// and its alphanumeric flag the code's alphabet.
func TestProfileShapesOTP(t *testing.T) {
	tpls := tyntecsim.DefaultTemplates()
	for i := range tpls {
		if strings.HasPrefix(tpls[i].Name, "tyntec_profile_login") {
			tpls[i].CodeExpirationTime = 2
		}
	}
	sim, base := simtest.Start(t, tyntecsim.Config{Seed: 1, Templates: tpls})
	ids := map[string]string{}
	for _, p := range []string{"tyntec_profile_register", "tyntec_profile_login", "tyntec_profile_payment"} {
		id, err := sim.Send(tyntec.NewOTPRequest{To: "+491700000001", ProfileName: p, PriorityName: "tyntec_priority_sms"})
		if err != nil {
			t.Fatal(err)
		}
		ids[p] = id
	}
	st, _, raw := call(t, http.MethodPost, base+"/2fa/v1/otp?number=%2B491700000002&alphaNumeric=true&pinLength=10", tyntecsim.DefaultAPIKey, nil)
	var v1 tyntec.V1OTP
	if st != http.StatusOK || json.Unmarshal(raw, &v1) != nil {
		t.Fatalf("v1 send = %d %s", st, raw)
	}
	tr := sim.Truth()
	for p, want := range map[string]time.Duration{"tyntec_profile_register": 5 * time.Minute, "tyntec_profile_login": 2 * time.Minute, "tyntec_profile_payment": 5 * time.Minute} {
		o, _ := tr.OTP(ids[p])
		if got := o.Expire.Sub(o.Created); got != want {
			t.Errorf("%s validity %s; want %s (template codeExpirationTime)", p, got, want)
		}
	}
	// Alphanumeric codes are drawn from 36 characters: 40 of them all digits
	// would be a 1 in 10^9 event.
	letters := 0
	for _, o := range tr.OTPs {
		for _, c := range o.Code {
			if c >= 'a' && c <= 'z' {
				letters++
			} else if c < '0' || c > '9' {
				t.Errorf("code %q has %q; want lower-case letters and digits", o.Code, c)
			}
		}
	}
	pay, _ := tr.OTP(ids["tyntec_profile_payment"])
	v1o, _ := tr.OTP(v1.OTPID)
	if len(pay.Code) != 8 || len(v1o.Code) != 10 || letters == 0 {
		t.Errorf("payment code %q, v1 alphaNumeric code %q: want 8 and 10 characters with letters", pay.Code, v1o.Code)
	}
	if v1o.Expire.Sub(v1o.Created) != 300*time.Second {
		t.Errorf("v1 validity %s; want 300s", v1o.Expire.Sub(v1o.Created))
	}
}

// TestTruthPages checks the paged, snake_case /_sim/truth and its summary.
func TestTruthPages(t *testing.T) {
	sim, _ := simtest.Start(t, tyntecsim.Config{Seed: 1})
	for range 5 {
		if _, err := sim.Send(tyntec.NewOTPRequest{To: "+491700000001"}); err != nil {
			t.Fatal(err)
		}
	}
	hs := httptest.NewServer(sim.InspectHandler())
	t.Cleanup(hs.Close)
	srv := hs.URL
	var seqs []uint64
	after := "0"
	for range 10 {
		var page struct {
			OTPs []map[string]any `json:"otps"`
			Next uint64           `json:"next"`
		}
		st, _, raw := call(t, http.MethodGet, srv+"/_sim/truth?limit=2&after="+after, "", nil)
		if st != http.StatusOK || json.Unmarshal(raw, &page) != nil {
			t.Fatalf("truth page = %d %s", st, raw)
		}
		for _, o := range page.OTPs {
			if _, ok := o["attempt_count"]; !ok {
				t.Errorf("truth OTP %v lacks snake_case attempt_count", o)
			}
			seqs = append(seqs, uint64(o["seq"].(float64)))
		}
		if page.Next == 0 {
			break
		}
		after = strconv.FormatUint(page.Next, 10)
	}
	if len(seqs) != 5 || seqs[0] != 1 || seqs[4] != 5 {
		t.Errorf("paged seqs %v; want 1..5", seqs)
	}
	st, _, raw := call(t, http.MethodGet, srv+"/_sim/truth/summary", "", nil)
	if st != http.StatusOK || !strings.Contains(string(raw), `"otps":5`) {
		t.Errorf("summary = %d %s; want 5 OTPs", st, raw)
	}
	if st, _, _ := call(t, http.MethodGet, srv+"/_sim/truth?limit=0", "", nil); st != http.StatusBadRequest {
		t.Errorf("limit=0 = %d; want 400", st)
	}
}
