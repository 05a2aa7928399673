package poller

import (
	"net/http"
	"strings"
	"testing"

	"github.com/otpscope/otpscope/internal/tyntec"
	"github.com/otpscope/otpscope/internal/tyntecsim"
	"github.com/otpscope/otpscope/internal/tyntecsim/simtest"
)

func TestRegisterCallback(t *testing.T) {
	const (
		ours       = "https://staging.example.com/webhooks/tyntec"
		production = "https://otpscope.example.com/webhooks/tyntec"
		me, prod   = "otpscope-staging", "otpscope-production"
	)
	foreign := tyntec.NewCallbackConfig{URL: "https://crm.example.com/hooks", Headers: map[string]string{"X-Crm": "1"}}
	prodCB := tyntec.NewCallbackConfig{URL: production, Headers: map[string]string{MarkerHeader: prod, "X-Webhook-Token": "production-token-0123"}}
	token := map[string]string{"X-Webhook-Token": "0123456789abcdef0123"}
	tests := []struct {
		name     string
		existing []tyntec.NewCallbackConfig
		force    bool
		actions  []string // of the first and the second registration
		removed  int
		// kept are the existing configurations (by URL) that must be unchanged.
		kept []string
		// gone are URLs no configuration may point at afterwards.
		gone []string
	}{
		{"none yet", []tyntec.NewCallbackConfig{foreign}, false, []string{"created", "unchanged"}, 0, []string{foreign.URL}, nil},
		{"ours without the token", []tyntec.NewCallbackConfig{foreign, {URL: ours}}, false, []string{"patched", "unchanged"}, 0, []string{foreign.URL}, nil},
		{"ours with the old marker", []tyntec.NewCallbackConfig{{URL: ours, Headers: map[string]string{MarkerHeader: legacyMarker}}}, false, []string{"patched", "unchanged"}, 0, nil, nil},
		{"duplicates of ours", []tyntec.NewCallbackConfig{{URL: ours}, {URL: ours + "/"}}, false, []string{"patched", "unchanged"}, 1, nil, nil},
		{"two deployments coexist", []tyntec.NewCallbackConfig{prodCB, foreign}, false, []string{"created", "unchanged"}, 0, []string{production, foreign.URL}, nil},
		{"ours at an old URL is left without --force", []tyntec.NewCallbackConfig{{URL: "http://old-host:8080/webhooks/tyntec", Headers: map[string]string{MarkerHeader: me}}}, false, []string{"created", "unchanged"}, 0, []string{"http://old-host:8080/webhooks/tyntec"}, nil},
		{"ours at an old URL, --force", []tyntec.NewCallbackConfig{{URL: "http://old-host:8080/webhooks/tyntec", Headers: map[string]string{MarkerHeader: me}}}, true, []string{"taken over", "unchanged"}, 0, nil, []string{"http://old-host:8080/webhooks/tyntec"}},
		{"another deployment's, --force takes it over", []tyntec.NewCallbackConfig{prodCB, foreign}, true, []string{"taken over", "unchanged"}, 0, []string{foreign.URL}, []string{production}},
		{"another deployment's at our URL is left without --force", []tyntec.NewCallbackConfig{{URL: ours, Headers: map[string]string{MarkerHeader: prod}}}, false, []string{"unchanged", "unchanged"}, 0, []string{ours}, nil},
		{"another deployment's at our URL, --force", []tyntec.NewCallbackConfig{{URL: ours, Headers: map[string]string{MarkerHeader: prod}}}, true, []string{"patched", "unchanged"}, 0, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim, url := simtest.Start(t, tyntecsim.Config{Seed: 1, Callbacks: tt.existing})
			client := simClient(t, url)
			before, err := client.ListCallbacks(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			opts := RegisterOptions{Deployment: me, Force: tt.force}

			// A dry run (the plan) changes nothing.
			n := len(sim.Calls())
			if _, err := PlanCallback(t.Context(), client, ours, token, opts); err != nil {
				t.Fatalf("PlanCallback: %v", err)
			}
			for _, c := range sim.Calls()[n:] {
				if c.Method != http.MethodGet {
					t.Errorf("a dry run made %s %s; want only the list", c.Method, c.Path)
				}
			}

			for i, want := range tt.actions {
				n := len(sim.Calls())
				res, err := RegisterCallback(t.Context(), client, ours, token, opts)
				if err != nil {
					t.Fatalf("RegisterCallback #%d: %v", i+1, err)
				}
				if res.Action != want {
					t.Errorf("RegisterCallback #%d = %+v; want %s", i+1, res, want)
				}
				if i == 0 && res.Removed != tt.removed {
					t.Errorf("removed %d duplicates; want %d", res.Removed, tt.removed)
				}
				if i > 0 {
					for _, c := range sim.Calls()[n:] {
						if c.Method != http.MethodGet {
							t.Errorf("a repeated registration made %s %s; want only the list", c.Method, c.Path)
						}
					}
				}
			}
			cbs, err := client.ListCallbacks(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			mine := 0
			for _, cb := range cbs {
				if headerValue(cb.Headers, MarkerHeader) == me {
					if cb.URL != ours || headerValue(cb.Headers, "X-Webhook-Token") != token["X-Webhook-Token"] {
						if !tt.force && !sameURL(cb.URL, ours) {
							continue // ours at an old URL, left alone without --force
						}
						t.Errorf("our callback is %+v; want %s with the token and the marker", cb, ours)
					}
					mine++
				}
				for _, g := range tt.gone {
					if sameURL(cb.URL, g) {
						t.Errorf("a callback still points at %s: %+v", g, cb)
					}
				}
			}
			if wantMine := 1; tt.actions[0] == "unchanged" && !tt.force {
				wantMine = 0 // another deployment's delivers here
				if mine != wantMine {
					t.Errorf("%d callbacks of ours; want %d (all: %+v)", mine, wantMine, cbs)
				}
			} else if mine != 1 {
				t.Errorf("%d callbacks of ours at %s; want exactly 1 (all: %+v)", mine, ours, cbs)
			}
			for _, url := range tt.kept {
				for _, b := range before {
					if b.URL != url {
						continue
					}
					found := false
					for _, cb := range cbs {
						if cb.ID == b.ID && cb.URL == b.URL && len(cb.Headers) == len(b.Headers) && headerValue(cb.Headers, MarkerHeader) == headerValue(b.Headers, MarkerHeader) {
							found = true
						}
					}
					if !found {
						t.Errorf("the configuration at %s was changed or deleted: before %+v, now %+v", url, b, cbs)
					}
				}
			}
		})
	}
}

// TestIngestCallbackURL: register-callback's --ingest-url is ingest's base
// URL, to which the webhook path is added; one that ends in the path
// already is refused, naming the flag and the one that takes a whole URL.
func TestIngestCallbackURL(t *testing.T) {
	for base, want := range map[string]string{
		"http://127.0.0.1:39280":         "http://127.0.0.1:39280/webhooks/tyntec",
		"https://otpscope.example.com/":  "https://otpscope.example.com/webhooks/tyntec",
		"https://example.com/otpscope":   "https://example.com/otpscope/webhooks/tyntec",
		"https://example.com/webhooks/x": "https://example.com/webhooks/x/webhooks/tyntec",
	} {
		if got, err := IngestCallbackURL(base); err != nil || got != want {
			t.Errorf("IngestCallbackURL(%q) = %q, %v; want %q", base, got, err, want)
		}
	}
	// Not a base tyntec could post to: refused, without the password.
	for _, base := range []string{"ftp://x", "otpscope.example.com", "https://u:hidden@otpscope.example.com?token=abc", "https://otpscope.example.com/#frag", "https:///path"} {
		if got, err := IngestCallbackURL(base); err == nil || !strings.Contains(err.Error(), "--ingest-url") || strings.Contains(err.Error(), "hidden") {
			t.Errorf("IngestCallbackURL(%q) = %q, %v; want it refused, naming --ingest-url, no password", base, got, err)
		}
	}
	for _, base := range []string{"http://127.0.0.1:39280/webhooks/tyntec", "https://u:hidden@example.com/otpscope/webhooks/tyntec/"} {
		got, err := IngestCallbackURL(base)
		if err == nil {
			t.Errorf("IngestCallbackURL(%q) = %q; want it refused", base, got)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, "--ingest-url") || !strings.Contains(msg, "--register-callback-url") || strings.Contains(msg, "hidden") {
			t.Errorf("IngestCallbackURL(%q): %v; want --ingest-url and --register-callback-url named, no password", base, err)
		}
	}
}

// TestPlanCallbackRefusesDoubledPath: a callback URL with the webhook path
// twice (a base URL given with the path, which was added again) is refused
// before tyntec is asked anything; it was registered, and a dry run printed
// it.
func TestPlanCallbackRefusesDoubledPath(t *testing.T) {
	sim, url := simtest.Start(t, tyntecsim.Config{Seed: 1})
	client := simClient(t, url)
	doubled := "http://127.0.0.1:39280/webhooks/tyntec/webhooks/tyntec"
	_, err := PlanCallback(t.Context(), client, doubled, map[string]string{"X-Webhook-Token": "0123456789abcdef0123"}, RegisterOptions{Deployment: "otpscope-test"})
	if err == nil || !strings.Contains(err.Error(), "--ingest-url") {
		t.Fatalf("PlanCallback(%s) = %v; want it refused, naming --ingest-url", doubled, err)
	}
	if calls := sim.Calls(); len(calls) != 0 {
		t.Errorf("tyntec was called: %v", calls)
	}
}

// TestRegisterWithoutDeploymentID: replicas, restarted pods and other hosts
// derive other ids; without one given, each takes the id of the
// configuration delivering to the URL, so a new token reaches tyntec from
// any of them. A given id still leaves another's configuration alone.
func TestRegisterWithoutDeploymentID(t *testing.T) {
	const ours = "https://otpscope.example.com/webhooks/tyntec"
	_, url := simtest.Start(t, tyntecsim.Config{Seed: 1})
	client := simClient(t, url)
	register := func(opts RegisterOptions, token string) RegisterResult {
		t.Helper()
		res, err := RegisterCallback(t.Context(), client, ours, map[string]string{"X-Webhook-Token": token}, opts)
		if err != nil {
			t.Fatalf("RegisterCallback(%+v): %v", opts, err)
		}
		return res
	}
	first := register(RegisterOptions{Fallback: "otpscope-replica-a"}, "first-token-0123456789")
	if first.Action != "created" || first.Deployment != "otpscope-replica-a" || first.From != "derived" {
		t.Fatalf("the first registration = %+v; want created with the derived id", first)
	}
	rotated := register(RegisterOptions{Fallback: "otpscope-replica-b"}, "second-token-0123456789")
	if rotated.Action != "patched" || rotated.Deployment != "otpscope-replica-a" || rotated.From != "delivering here" {
		t.Errorf("another replica's registration with a new token = %+v; want patched under the delivering id", rotated)
	}
	elsewhere := register(RegisterOptions{Deployment: "otpscope-staging"}, "staging-token-0123456789")
	if elsewhere.Action != "unchanged" || elsewhere.Left != 1 {
		t.Errorf("a given id of another deployment = %+v; want ours left alone", elsewhere)
	}
	cbs, err := client.ListCallbacks(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(cbs) != 1 || headerValue(cbs[0].Headers, MarkerHeader) != "otpscope-replica-a" || headerValue(cbs[0].Headers, "X-Webhook-Token") != "second-token-0123456789" {
		t.Errorf("callbacks = %+v; want one, marked otpscope-replica-a, with the second token", cbs)
	}
	if _, err := PlanCallback(t.Context(), client, ours, nil, RegisterOptions{}); err == nil {
		t.Error("a plan with neither an id nor a fallback was made; want it refused")
	}
}
