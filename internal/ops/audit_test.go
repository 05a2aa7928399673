package ops

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"

	"github.com/otpscope/otpscope/internal/reload"
)

// TestAudit: an action is logged once answered, with its status and the
// token's fingerprint, never the token; a read is not logged.
func TestAudit(t *testing.T) {
	var logs bytes.Buffer
	h := Audit(slog.New(slog.NewTextHandler(&logs, nil)))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
	}))
	const token = "operator-token-0123456789"
	for _, method := range []string{http.MethodGet, http.MethodHead, http.MethodPost} {
		req := httptest.NewRequest(method, "/api/v1/deadletters/replay", nil)
		req.RemoteAddr = "10.0.0.7:41000"
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("X-Forwarded-For", "198.51.100.4")
		req.Header.Set("User-Agent", "otpscope-cli")
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	what := `msg="api action" method=POST path=/api/v1/deadletters/replay status=202 took=`
	who := ` token=` + Fingerprint(token) + ` remote=10.0.0.7:41000 forwarded_for=198.51.100.4 user_agent=otpscope-cli`
	if len(lines) != 1 || !strings.Contains(lines[0], what) || !strings.Contains(lines[0], who) {
		t.Fatalf("after a GET, a HEAD and a POST, logs:\n%s\nwant one line containing\n%s…%s", logs.String(), what, who)
	}
	if strings.Contains(logs.String(), token) {
		t.Errorf("the log holds the token:\n%s", logs.String())
	}
}

// The fingerprint is what the README tells operators to compute with
// sha256sum.
func TestFingerprintAsSha256sum(t *testing.T) {
	const token = "operator-token-0123456789"
	out, err := exec.Command("sh", "-c", `printf %s "$0" | sha256sum | cut -c1-12`, token).Output()
	if err != nil {
		t.Skipf("sha256sum: %v", err)
	}
	if got, want := Fingerprint(token), "sha256:"+strings.TrimSpace(string(out)); got != want {
		t.Errorf("Fingerprint = %s; sha256sum gives %s", got, want)
	}
}

// A read token's attempt to act is refused, and logged as the action it
// was, with status 403 and the read token's fingerprint: who tried.
func TestAuditLogsAReadTokensRefusedAction(t *testing.T) {
	var logs bytes.Buffer
	const full, read = "operator-token-0123456789", "viewer-token-0123456789"
	fullTokens, readTokens := reload.Fixed(NewTokens([]string{full})), reload.Fixed(NewTokens([]string{read}))
	acted := 0
	h := RequireBearer(NewRefusals(slog.New(slog.DiscardHandler), "refused"), fullTokens, readTokens)(
		Audit(slog.New(slog.NewTextHandler(&logs, nil)))(ReadOnly(fullTokens)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			acted++
			w.WriteHeader(http.StatusNoContent)
		}))))
	for _, tt := range []struct {
		method, token string
		want          int
	}{
		{http.MethodGet, read, http.StatusNoContent},
		{http.MethodHead, read, http.StatusNoContent},
		{http.MethodPost, read, http.StatusForbidden},
		{http.MethodDelete, read, http.StatusForbidden},
		{http.MethodPost, full, http.StatusNoContent},
	} {
		req := httptest.NewRequest(tt.method, "/api/v1/backups", nil)
		req.Header.Set("Authorization", "Bearer "+tt.token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tt.want {
			t.Errorf("%s with %s = %d; want %d", tt.method, tt.token, rec.Code, tt.want)
		}
	}
	if acted != 3 {
		t.Errorf("the handler ran %d times; want 3: the read token's GET and HEAD, the API token's POST", acted)
	}
	for _, want := range []string{
		`method=POST path=/api/v1/backups status=403 took=`, `method=DELETE path=/api/v1/backups status=403 took=`,
		`token=` + Fingerprint(read), `method=POST path=/api/v1/backups status=204 took=`, `token=` + Fingerprint(full),
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs:\n%s\nwant %s", logs.String(), want)
		}
	}
}
