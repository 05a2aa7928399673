package deploy_test

import (
	"cmp"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/chdb"
	"github.com/otpscope/otpscope/internal/chdb/chdbtest"
	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/grafanatest"
	"github.com/otpscope/otpscope/internal/store"
	"github.com/otpscope/otpscope/schema"
)

// TestClusterReads runs the store's reads and the rollup job over the
// cluster schema on two shards (twoShards: each this process, so a
// Distributed table reads every row twice) and holds the live answers to a
// single server's with the same facts. On more than one shard ClickHouse
// refuses an IN or JOIN subquery over a Distributed table inside a query
// over one unless distributed_product_mode says what to do
// (chdb.DefaultSettings, and deploy/clickhouse/users.d/otpscope.xml for
// every user of a server): the test shows the refusal, then the answers.
// Before the setting, every one of these reads failed on a cluster of more
// than one shard; the one-shard cluster of TestClusterSchemaOnEngine could
// not tell.
func TestClusterReads(t *testing.T) {
	// Every user of a server has it from the profile deploy/clickhouse ships.
	var users struct {
		Mode string `xml:"profiles>default>distributed_product_mode"`
	}
	if err := xml.Unmarshal(readFile(t, deployPath("clickhouse", "users.d", "otpscope.xml")), &users); err != nil {
		t.Fatal(err)
	}
	if want := chdb.DefaultSettings["distributed_product_mode"]; users.Mode != want || want == "" {
		t.Errorf("clickhouse/users.d/otpscope.xml: distributed_product_mode %q; the reporter asks for %q", users.Mode, want)
	}

	e := chdbtest.Open(t)
	ctx := t.Context()
	logger := brokertest.Logger(t)

	single := chdbtest.Serve(t)
	ref, err := store.Connect(ctx, single.DSN+"/"+single.Database, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ref.Close() })
	if err := ref.Migrate(ctx); err != nil {
		t.Fatal(err)
	}

	sharded := chdbtest.Serve(t)
	unreplicated := regexp.MustCompile(`Replicated(\w*MergeTree)\('[^']*', '\{replica\}'(?:, )?`)
	runSchema(t, e, sharded.Database, twoShards, t.Fatalf, func(st string) (string, bool) {
		return unreplicated.ReplaceAllString(onCluster.ReplaceAllString(st, ""), "$1("), true
	})
	// What store.Migrate records, so that the reads know the schema's version.
	migrations, err := schema.Migrations(schema.Options{Cluster: twoShards})
	if err != nil {
		t.Fatal(err)
	}
	mustQuery(t, e, sharded.Database, `CREATE TABLE otpscope_schema_migrations (version UInt32, name String, checksum String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3))
ENGINE = ReplacingMergeTree(applied_at) ORDER BY version`)
	for _, m := range migrations {
		mustQuery(t, e, sharded.Database, fmt.Sprintf("INSERT INTO otpscope_schema_migrations (version, name, checksum) VALUES (%d, '%s', '%s')", m.Version, m.Name, m.Checksum))
	}
	// Inserts through the Distributed tables land before the call returns.
	cluster, err := store.Connect(ctx, sharded.DSN+"/"+sharded.Database+"?distributed_foreground_insert=1", logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cluster.Close() })

	// The facts: SMS delivered; SMS failed then Viber delivered, with a
	// resend decision; WhatsApp pending; and an alert rule's firing.
	t0 := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Hour).Add(17 * time.Minute)
	otp := func(i int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", 900+i) }
	var b store.Batch
	seq := uint64(0)
	fact := func(i int, ch events.Channel, st events.Status, after time.Duration) {
		seq++
		ev := events.DeliveryStatus{Channel: ch, Status: st, Source: events.SourceWebhook, OTPID: otp(i), ProfileID: "profile-cluster",
			Timestamp: t0.Add(after), ReceivedAt: t0.Add(after)}
		b.Deliveries = append(b.Deliveries, store.DeliveryRow{DeliveryStatus: ev, EventID: events.DeliveryID(&ev), Seq: seq})
	}
	fact(1, events.ChannelSMS, events.StatusDispatched, 0)
	fact(1, events.ChannelSMS, events.StatusDelivered, 3*time.Second)
	fact(2, events.ChannelSMS, events.StatusDispatched, time.Second)
	fact(2, events.ChannelSMS, events.StatusUndeliverable, 5*time.Second)
	fact(2, events.ChannelViber, events.StatusDispatched, 6*time.Second)
	fact(2, events.ChannelViber, events.StatusDelivered, 9*time.Second)
	fact(3, events.ChannelWhatsApp, events.StatusDispatched, 2*time.Second)
	b.Resends = append(b.Resends, store.ResendRow{EventID: "rs-cluster", Seq: 20, Resend: events.Resend{OTPID: otp(2), DecisionID: "d-cluster",
		Result: events.ResendDryRun, Via: "VOICE", TriggerChannel: events.ChannelSMS, TriggerStatus: events.StatusUndeliverable, Attempt: 1, DryRun: true, DecidedAt: t0.Add(7 * time.Second)}})
	// Two evaluations of one firing of an alert rule.
	for i, to := range []time.Duration{5 * time.Minute, 10 * time.Minute} {
		al := events.Alert{Rule: "delivery_rate_low", Channel: "SMS", State: events.AlertFiring, Since: t0.Add(5 * time.Minute), From: t0.Add(to - time.Hour), To: t0.Add(to),
			Value: 0.5 + float64(i)/10, Threshold: 0.8, Volume: 2, Summary: "SMS low"}
		m, err := events.NewAlertMessage(&al)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Add(m.Subject, m.ID, m.Data, uint64(30+i)); err != nil {
			t.Fatal(err)
		}
	}
	// A row a batch: a batch's insert carries one deduplication token, and
	// here both shards' parts land in the same table, where the second
	// would be dropped as the first's duplicate.
	var rows []store.Batch
	for _, d := range b.Deliveries {
		rows = append(rows, store.Batch{Deliveries: []store.DeliveryRow{d}})
	}
	for _, r := range b.Resends {
		rows = append(rows, store.Batch{Resends: []store.ResendRow{r}})
	}
	for _, a := range b.Alerts {
		rows = append(rows, store.Batch{Alerts: []store.AlertRow{a}})
	}
	for _, db := range []*store.DB{ref, cluster} {
		for i := range rows {
			if err := db.Insert(ctx, &rows[i]); err != nil {
				t.Fatal(err)
			}
		}
	}

	w := store.Window{From: t0.Add(-time.Hour), To: t0.Add(time.Hour)}
	now := t0.Add(time.Hour)
	reads := []struct {
		name string
		read func(db *store.DB, ctx context.Context) (any, error)
	}{
		{"channels", func(db *store.DB, ctx context.Context) (any, error) { return db.Channels(ctx, w) }},
		{"channels from raw events", func(db *store.DB, ctx context.Context) (any, error) { r := w; r.Raw = true; return db.Channels(ctx, r) }},
		{"fallback", func(db *store.DB, ctx context.Context) (any, error) { return db.Fallback(ctx, w) }},
		{"timeseries", func(db *store.DB, ctx context.Context) (any, error) {
			return db.Timeseries(ctx, w, 10*time.Minute, nil)
		}},
		{"completeness", func(db *store.DB, ctx context.Context) (any, error) { return db.Completeness(ctx, w, now) }},
		{"journey", func(db *store.DB, ctx context.Context) (any, error) {
			// Its attempts and outcome; not its lists of stored rows, which
			// show each row twice here (each shard is this process), where
			// on a cluster a row lives on one shard.
			j, err := db.Journey(ctx, otp(2), now)
			j.Events, j.Resends = nil, nil
			return j, err
		}},
		{"alert episodes", func(db *store.DB, ctx context.Context) (any, error) {
			// Not their count of evaluations: a count, it doubles here.
			eps, err := db.AlertEpisodes(ctx, store.AlertFilter{From: w.From, To: w.To})
			for i := range eps {
				eps[i].Evaluations = 0
			}
			return eps, err
		}},
		{"resends", func(db *store.DB, ctx context.Context) (any, error) {
			return db.Resends(ctx, store.ResendFilter{From: w.From, To: w.To})
		}},
	}
	deny := clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"distributed_product_mode": "deny"}))
	if _, err := cluster.Channels(deny, w); err == nil || !strings.Contains(err.Error(), "DISTRIBUTED_IN_JOIN_SUBQUERY_DENIED") {
		t.Errorf("channels on two shards with distributed_product_mode deny: %v; want ClickHouse's refusal (else this test no longer shows what the setting is for)", err)
	}
	compare := func(when string) {
		t.Helper()
		for _, r := range reads {
			want, err := r.read(ref, ctx)
			if err != nil {
				t.Fatalf("%s on one server (%s): %v", r.name, when, err)
			}
			got, err := r.read(cluster, ctx)
			if err != nil {
				t.Errorf("%s on two shards (%s): %v", r.name, when, err)
				continue
			}
			wj, _ := json.Marshal(want)
			gj, _ := json.Marshal(got)
			if string(wj) != string(gj) {
				t.Errorf("%s (%s) on two shards:\n%s\non one server:\n%s", r.name, when, gj, wj)
			}
		}
	}
	compare("live")

	// The rollup job's queries run on two shards too. (Its sums are not
	// compared: each shard being this process, a Distributed read adds
	// every stored sum twice.)
	if _, err := cluster.RefreshRollups(ctx); err != nil {
		t.Errorf("the rollup job on two shards: %v", err)
	}
	for _, r := range reads {
		if _, err := r.read(cluster, ctx); err != nil {
			t.Errorf("%s on two shards, from the rollups: %v", r.name, err)
		}
	}

	// The dashboards' queries, as Grafana's reader sends them, run on two
	// shards: every panel and variable, for all channels and for one.
	dashboards, err := grafanatest.Load(filepath.Join(repoRoot, "dashboards"))
	if err != nil {
		t.Fatal(err)
	}
	reader := chdbtest.Conn(t, sharded.ReaderOptions())
	ran := 0
	for _, channel := range []string{"__all", "SMS"} {
		vars := map[string]string{"profile": "__all", "channel": channel, "datasource": "ClickHouse"}
		for file, d := range dashboards {
			var queries []string
			for _, v := range d.Templating.List {
				if q, ok := v.Query.(string); ok && v.Type == "query" {
					queries = append(queries, q)
				}
			}
			for _, p := range d.Panels {
				for _, tg := range p.Targets {
					queries = append(queries, tg.RawSQL)
				}
			}
			for _, q := range queries {
				if q == "" {
					continue
				}
				sql, err := grafanatest.Expand(q, w.From, w.To, time.Minute, vars)
				if err != nil {
					t.Fatalf("%s: %v", file, err)
				}
				rows, err := reader.Query(ctx, sql)
				if err == nil {
					for rows.Next() {
					}
					err = cmp.Or(rows.Err(), rows.Close())
				}
				if err != nil {
					t.Errorf("%s (channel %s) on two shards: %v\n%s", file, channel, err, sql)
				}
				ran++
			}
		}
	}
	if ran < 40 {
		t.Errorf("ran %d dashboard queries; want every panel's and variable's", ran)
	}
}
