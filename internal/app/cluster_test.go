package app_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpscope/otpscope/internal/broker"
	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/chdb/chdbtest"
	"github.com/otpscope/otpscope/internal/ingest"
	"github.com/otpscope/otpscope/internal/ops"
	"github.com/otpscope/otpscope/internal/sink"
	"github.com/otpscope/otpscope/internal/store"
	"github.com/otpscope/otpscope/internal/webtest"
)

func TestMain(m *testing.M) { chdbtest.Main(m) }

// cluster is three embedded NATS servers routed into one JetStream cluster.
type cluster struct {
	cfgs []broker.Config
	srvs []*server.Server
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	c := &cluster{}
	routes := make([]string, 3)
	for i := range 3 {
		cfg := brokertest.Config(t)
		cfg.Listen = webtest.FreeAddr(t)
		cfg.ServerName = fmt.Sprintf("n%d", i+1)
		cfg.ClusterName = "otpscope-test"
		cfg.ClusterListen = webtest.FreeAddr(t)
		// Every node requires the same credentials, given as flags would.
		cfg.Password, cfg.ReaderPassword = "cluster-service-password", "cluster-reader-password"
		routes[i] = "nats-route://" + cfg.ClusterListen
		c.cfgs = append(c.cfgs, cfg)
	}
	for i := range c.cfgs {
		c.cfgs[i].Routes = strings.Join(routes, ",")
	}
	c.srvs = make([]*server.Server, 3)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() { defer wg.Done(); c.start(t, i) }()
	}
	wg.Wait()
	t.Cleanup(func() {
		for i := range c.srvs {
			c.stop(i)
		}
	})
	return c
}

func (c *cluster) start(t *testing.T, i int) {
	srv, err := broker.StartServer(c.cfgs[i], brokertest.Logger(t))
	if err != nil {
		t.Errorf("start %s: %v", c.cfgs[i].ServerName, err)
		return
	}
	c.srvs[i] = srv
}

func (c *cluster) stop(i int) {
	if c.srvs[i] != nil {
		c.srvs[i].Shutdown()
		c.srvs[i].WaitForShutdown()
		c.srvs[i] = nil
	}
}

func (c *cluster) urls() string {
	var u []string
	for _, cfg := range c.cfgs {
		u = append(u, "nats://"+cfg.Listen)
	}
	return strings.Join(u, ",")
}

// TestClusterNodeRestart runs ingest and the sink on a 3-node NATS cluster
// with an R3 stream, stops the stream leader mid-traffic and starts it again:
// ingest answers 200 or 503, never a false 200, and every acknowledged event
// reaches ClickHouse exactly once.
func TestClusterNodeRestart(t *testing.T) {
	ch := chdbtest.Serve(t)
	c := newCluster(t)
	cfg := c.cfgs[0]
	cfg.URL = c.urls()
	cfg.Stream.Replicas = 3
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	b, err := broker.Open(ctx, cfg, "cluster-test", brokertest.Logger(t))
	cancel()
	if err != nil {
		t.Fatalf("open broker on the cluster: %v", err)
	}
	t.Cleanup(b.Close)

	icfg := ingest.Config{Tokens: []string{"cluster-token-0123456789"}, MaxBodyBytes: 1 << 16, PublishTimeout: 2 * time.Second, RetryAfter: time.Second}
	r := ops.NewRouter()
	ingest.NewHandler(icfg, b, brokertest.Logger(t), nil).Mount(r)
	hs := httptest.NewServer(r)
	t.Cleanup(hs.Close)

	db, err := store.Open(t.Context(), store.Config{DSN: ch.DSN + "/" + ch.Database}, brokertest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	sinkCtx, stopSink := context.WithCancel(t.Context())
	sinkDone := make(chan error, 1)
	consumer := sink.NewConsumer(sink.Config{Durable: "sink", MaxRows: 1000, MaxBytes: 1 << 20, FlushInterval: 200 * time.Millisecond, AckWait: 5 * time.Second},
		b, db, brokertest.Logger(t), prometheus.NewRegistry())
	go func() { sinkDone <- consumer.Run(sinkCtx) }()
	t.Cleanup(func() { stopSink(); <-sinkDone })

	client := &http.Client{Timeout: 5 * time.Second}
	load := webtest.StartLoad(t, 4, func(id string) (int, error) {
		body := fmt.Sprintf(`{"channel":"SMS","otpId":%q,"status":"DELIVERED","timestamp":%q}`, id, time.Now().UTC().Format(time.RFC3339Nano))
		req, _ := http.NewRequest(http.MethodPost, hs.URL+ingest.WebhookPath, strings.NewReader(body))
		req.Header.Set("X-Webhook-Token", icfg.Tokens[0])
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	})
	acks := load.Acked
	// Stop the stream's leader once traffic flows, start it again once
	// another leader took over, and stop the load once the restarted node
	// has caught up.
	brokertest.WaitFor(t, 30*time.Second, "traffic to flow", func() bool { return acks() >= 50 })
	s, err := brokertest.JetStream(t, b).Stream(t.Context(), b.StreamName())
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil || info.Cluster == nil {
		t.Fatalf("stream info: %v, %+v", err, info)
	}
	leader := -1
	for i, cfg := range c.cfgs {
		if cfg.ServerName == info.Cluster.Leader {
			leader = i
		}
	}
	if leader < 0 || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("stream cluster = %+v; want a leader and two replicas", info.Cluster)
	}
	stopped := c.cfgs[leader].ServerName
	c.stop(leader)
	before := acks()
	brokertest.WaitFor(t, 30*time.Second, "another stream leader taking writes", func() bool {
		info, err := s.Info(t.Context())
		return err == nil && info.Cluster != nil && info.Cluster.Leader != "" && info.Cluster.Leader != stopped && acks() >= before+50
	})
	c.start(t, leader)
	brokertest.WaitFor(t, 30*time.Second, stopped+" to be a current replica again", func() bool {
		info, err := s.Info(t.Context())
		if err != nil || info.Cluster == nil {
			return false
		}
		for _, r := range info.Cluster.Replicas {
			if r.Name == stopped {
				return r.Current && !r.Offline
			}
		}
		return false
	})
	before = acks()
	brokertest.WaitFor(t, 30*time.Second, "traffic on the whole cluster again", func() bool { return acks() >= before+50 })
	load.Stop()
	acked, codes := load.AckedIDs(), load.Codes()
	t.Logf("answers during the restart: %v", codes)
	for code := range codes {
		if code != "200" && code != "503" && code != "error" { // error: a client timeout, retried
			t.Errorf("ingest answered %s during the node restart", code)
		}
	}
	if codes["200"] < 100 {
		t.Fatalf("only %d requests acknowledged", codes["200"])
	}

	// Every acknowledged event is in ClickHouse, once.
	conn := db.Conn()
	chdbtest.WaitForIDs(t, conn, 60*time.Second, "SELECT toString(otp_id) FROM delivery_events", acked)
	var stored, distinct uint64
	if err := conn.QueryRow(t.Context(), "SELECT count(), uniqExact(event_id) FROM delivery_events FINAL").Scan(&stored, &distinct); err != nil {
		t.Fatal(err)
	}
	if stored != distinct {
		t.Fatalf("ClickHouse counts %d rows for %d events", stored, distinct)
	}
}
