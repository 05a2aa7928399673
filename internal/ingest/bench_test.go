package ingest_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpscope/otpscope/internal/broker"
	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/ingest"
	"github.com/otpscope/otpscope/internal/ops"
)

// BenchmarkWebhook is one accepted webhook through the net/http router's
// middleware (the public listener when the API shares it; by default
// fasthttp serves webhooks, ingest.NewServer), the handler and a publish to
// the embedded NATS server
// (flushing every 2 minutes, so that fsync does not hide the CPU), from
// parallel callers. bench/wrk/run.sh measures the
// whole service; this tells where allocations come from:
//
//	go test -run '^$' -bench Webhook -benchmem ./internal/ingest
func BenchmarkWebhook(b *testing.B) {
	cfg := brokertest.Config(b)
	cfg.Sync = "2m"
	br, err := broker.Open(b.Context(), cfg, "bench", brokertest.Logger(b))
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	r := ops.NewRouter()
	reg := prometheus.NewRegistry()
	r.Use(ops.NewHTTPMetrics(reg).Middleware("public"))
	icfg := ingest.Config{Tokens: []string{token}, MaxBodyBytes: ingest.DefaultMaxBodyBytes, PublishTimeout: 5 * time.Second, RetryAfter: time.Second}
	ingest.NewHandler(icfg, br, brokertest.Logger(b), reg).Mount(r)
	stamp := time.Now().UTC().Format(time.RFC3339)
	var n atomic.Uint64
	b.ReportAllocs()
	b.SetParallelism(32) // 32 x GOMAXPROCS callers, as many publishes in flight as under wrk -c64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			body := fmt.Appendf(nil, `{"channel":"SMS","otpId":"%08x-0000-4000-8000-%012x","profileId":"adbe6521-f5bd-4295-9fd9-776debdf7dc2","status":"DELIVERED","timestamp":%q}`, i>>32, i, stamp)
			req := httptest.NewRequest(http.MethodPost, ingest.WebhookPath, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Webhook-Token", token)
			w := httptest.NewRecorder()
			r.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Errorf("status %d: %s", w.Code, w.Body)
				return
			}
		}
	})
}
