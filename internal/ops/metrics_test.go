package ops_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/otpscope/otpscope/internal/ops"
)

func TestHTTPMetricsLabelRoutesByPattern(t *testing.T) {
	reg := ops.NewRegistry()
	m := ops.NewHTTPMetrics(reg)
	r := ops.NewRouter()
	r.Use(m.Middleware("admin"))
	r.Get("/api/v1/otps/{otpId}", func(w http.ResponseWriter, _ *http.Request) {})
	srv := httptest.NewServer(r)
	defer srv.Close()
	for _, req := range []struct{ method, path string }{
		{"GET", "/api/v1/otps/a"}, {"GET", "/api/v1/otps/b"}, {"POST", "/api/v1/otps/c"}, {"GET", "/no/such/path"}, {"GET", "/another/one"},
	} {
		hr, _ := http.NewRequest(req.method, srv.URL+req.path, nil)
		resp, err := http.DefaultClient.Do(hr)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	want := `
# HELP otpscope_http_requests_total HTTP requests answered, by listener, route pattern, method and status code.
# TYPE otpscope_http_requests_total counter
otpscope_http_requests_total{code="200",handler="/api/v1/otps/{otpId}",listener="admin",method="get"} 2
otpscope_http_requests_total{code="404",handler="unmatched",listener="admin",method="get"} 2
otpscope_http_requests_total{code="405",handler="unmatched",listener="admin",method="post"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "otpscope_http_requests_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(reg, "otpscope_build_info"); n != 1 {
		t.Errorf("otpscope_build_info series = %d; want 1", n)
	}
}

// TestRegistryTellsRestarts: OtpscopeRestarting counts the changes of
// process_start_time_seconds on targets that export otpscope_build_info;
// every registry must export both.
func TestRegistryTellsRestarts(t *testing.T) {
	reg := ops.NewRegistry()
	for _, name := range []string{"process_start_time_seconds", "otpscope_build_info"} {
		if n, err := testutil.GatherAndCount(reg, name); err != nil || n != 1 {
			t.Errorf("%s: %d series (%v); want 1", name, n, err)
		}
	}
}
