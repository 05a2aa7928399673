package ingest_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/otpscope/otpscope/internal/ingest"
)

// otpscope_ingest_requests_total says which endpoint a request went to:
// an alert on tyntec's callback (no webhook accepted, its token refused)
// reads the webhook's alone, so the app's backend posting silent-auth
// outcomes, or a service announcing OTPs with a wrong token, neither hides
// nor fakes a broken callback. Every endpoint's series exist before its
// first request.
func TestRequestsCountedByEndpoint(t *testing.T) { eachServer(t, testRequestsCountedByEndpoint) }

func testRequestsCountedByEndpoint(t *testing.T, on server) {
	f := newFixtureOn(t, on)
	auth := []string{"X-Webhook-Token", token}
	wrong := []string{"X-Webhook-Token", "wrong-token-wrong-token"}
	for _, p := range []struct {
		path, body string
		header     []string
		want       int
	}{
		{ingest.SilentPath, silentBody, auth, http.StatusAccepted},
		{ingest.SilentPath, silentBody, auth, http.StatusAccepted},
		{ingest.TrackPath, `{"otpId":"0b7e2d3c-1d39-4c4e-9d1b-5b8c1e0a9f01","api":"v1"}`, auth, http.StatusOK},
		{ingest.TrackPath, `{"otpId":"0b7e2d3c-1d39-4c4e-9d1b-5b8c1e0a9f01","api":"v1"}`, wrong, http.StatusUnauthorized},
		{ingest.WebhookPath, webhook("0b7e2d3c-1d39-4c4e-9d1b-5b8c1e0a9f01", "SMS", "DELIVERED", "2026-01-01T00:00:00Z"), wrong, http.StatusUnauthorized},
		{ingest.WebhookPath, `{"channel":`, auth, http.StatusBadRequest},
	} {
		if resp := f.postTo(t, p.path, p.body, p.header...); resp.StatusCode != p.want {
			t.Fatalf("POST %s = %d; want %d", p.path, resp.StatusCode, p.want)
		}
	}
	got := gathered(t, f, "otpscope_ingest_requests_total")
	for _, want := range []string{
		`otpscope_ingest_requests_total{endpoint="webhook",outcome="accepted"} 0`,
		`otpscope_ingest_requests_total{endpoint="webhook",outcome="unauthorized"} 1`,
		`otpscope_ingest_requests_total{endpoint="webhook",outcome="bad_request"} 1`,
		`otpscope_ingest_requests_total{endpoint="silent_auth",outcome="accepted"} 2`,
		`otpscope_ingest_requests_total{endpoint="track",outcome="accepted"} 1`,
		`otpscope_ingest_requests_total{endpoint="track",outcome="unauthorized"} 1`,
		`otpscope_ingest_requests_total{endpoint="push",outcome="accepted"} 0`,
		`otpscope_ingest_requests_total{endpoint="push",outcome="unavailable"} 0`,
	} {
		if !strings.Contains(got, want+"\n") {
			t.Errorf("lacks %s:\n%s", want, got)
		}
	}
}
