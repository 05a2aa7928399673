package poller

import (
	"net/http"
	"testing"

	"github.com/otpscope/otpscope/internal/tyntec"
	"github.com/otpscope/otpscope/internal/tyntecsim"
	"github.com/otpscope/otpscope/internal/tyntecsim/simtest"
)

func TestRegisterCallback(t *testing.T) {
	const ours = "https://otpscope.example.com/webhooks/tyntec"
	foreign := tyntec.NewCallbackConfig{URL: "https://crm.example.com/hooks", Headers: map[string]string{"X-Crm": "1"}}
	token := map[string]string{"X-Webhook-Token": "0123456789abcdef0123"}
	tests := []struct {
		name     string
		existing []tyntec.NewCallbackConfig
		actions  []string // of the first and the second registration
		removed  int
	}{
		{"none yet", []tyntec.NewCallbackConfig{foreign}, []string{"created", "unchanged"}, 0},
		{"ours without the token", []tyntec.NewCallbackConfig{foreign, {URL: ours}}, []string{"patched", "unchanged"}, 0},
		{"ours at an old URL", []tyntec.NewCallbackConfig{{URL: "http://old-host:8080/webhooks/tyntec", Headers: map[string]string{MarkerHeader: "otpscope"}}}, []string{"patched", "unchanged"}, 0},
		{"duplicates of ours", []tyntec.NewCallbackConfig{{URL: ours}, {URL: ours + "/"}}, []string{"patched", "unchanged"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim, url := simtest.Start(t, tyntecsim.Config{Seed: 1, Callbacks: tt.existing})
			client := simClient(t, url)
			for i, want := range tt.actions {
				before := len(sim.Calls())
				res, err := RegisterCallback(t.Context(), client, ours, token)
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
					for _, c := range sim.Calls()[before:] {
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
			var mine, others int
			for _, cb := range cbs {
				switch {
				case cb.URL == ours:
					mine++
					if headerValue(cb.Headers, "X-Webhook-Token") != token["X-Webhook-Token"] || headerValue(cb.Headers, MarkerHeader) == "" {
						t.Errorf("our callback has headers %v; want the token and the marker", cb.Headers)
					}
				case cb.URL == foreign.URL:
					others++
					if headerValue(cb.Headers, "X-Crm") != "1" || len(cb.Headers) != 1 {
						t.Errorf("a foreign callback was changed: %+v", cb)
					}
				default:
					t.Errorf("unexpected callback %+v", cb)
				}
			}
			if mine != 1 {
				t.Errorf("%d callbacks point at us; want exactly 1 (all: %+v)", mine, cbs)
			}
			wantOthers := 0
			for _, e := range tt.existing {
				if e.URL == foreign.URL {
					wantOthers++
				}
			}
			if others != wantOthers {
				t.Errorf("%d foreign callbacks; want %d", others, wantOthers)
			}
		})
	}
}
