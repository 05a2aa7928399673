package deploy_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/otpscope/otpscope/internal/grafanatest"
)

// The operations dashboard (dashboards/operations.json) reads Prometheus, not
// ClickHouse: its queries are held here to the metrics otpscope exports.

// metricsTable is the README's metrics table: each otpscope_ metric with the
// labels it has and the binaries that export it.
type metricsTable map[string]struct {
	labels, binaries []string
	shared           bool // the row names more metrics, whose labels it may give only some of
}

var (
	backticked = regexp.MustCompile("`([a-z0-9_]+)`")
	aside      = regexp.MustCompile(`\([^)]*\)`) // "(public, admin)", values not names
)

func readMetricsTable(t *testing.T) metricsTable {
	t.Helper()
	readme := string(readFile(t, filepath.Join(repoRoot, "README.md")))
	_, table, ok := strings.Cut(readme, "| metric | labels | binaries | what |")
	if !ok {
		t.Fatal("README has no metrics table")
	}
	out := metricsTable{}
	for _, line := range strings.Split(table, "\n")[2:] {
		if !strings.HasPrefix(line, "|") {
			break
		}
		cells := strings.Split(line, "|")[1:]
		if len(cells) < 4 {
			t.Fatalf("README metrics row %q", line)
		}
		var labels, binaries []string
		for _, m := range backticked.FindAllStringSubmatch(aside.ReplaceAllString(cells[1], ""), -1) {
			labels = append(labels, m[1])
		}
		for _, b := range strings.Split(cells[2], ",") {
			binaries = append(binaries, strings.TrimSpace(b))
		}
		names := backticked.FindAllStringSubmatch(cells[0], -1)
		for _, m := range names {
			out[m[1]] = struct {
				labels, binaries []string
				shared           bool
			}{labels, binaries, len(names) > 1}
		}
	}
	if len(out) < 40 {
		t.Fatalf("README metrics table: %d metrics read; want the table's", len(out))
	}
	return out
}

// standardMetrics are the metrics the panels may read beside otpscope's:
// Prometheus' own and the Go and process collectors every binary exports.
// ALERTS has the labels of its rules' expressions (otpscope-rules.yml).
var standardMetrics = map[string][]string{
	"up":                            nil,
	"ALERTS":                        {"alertname", "alertstate", "severity", "instance", "kind", "secret", "component"},
	"process_start_time_seconds":    nil,
	"process_resident_memory_bytes": nil,
	"process_cpu_seconds_total":     nil,
	"go_goroutines":                 nil,
}

// targetLabels are the labels Prometheus gives every scraped series.
var targetLabels = []string{"job", "instance"}

// labelsOf is the labels series of metric m may have, and whether m exists:
// a histogram's _bucket, _sum and _count are its metric's.
func (mt metricsTable) labelsOf(m string) ([]string, bool) {
	if l, ok := standardMetrics[m]; ok {
		if m == "ALERTS" {
			return l, true
		}
		return append(slices.Clone(targetLabels), l...), true
	}
	base, extra := m, []string(nil)
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if b, ok := strings.CutSuffix(m, suffix); ok && !strings.HasSuffix(b, "_total") {
			if _, hist := mt[b]; hist {
				base = b
				if suffix == "_bucket" {
					extra = []string{"le"}
				}
			}
		}
	}
	row, ok := mt[base]
	if !ok {
		return nil, false
	}
	return slices.Concat(targetLabels, row.labels, extra), true
}

// Grafana's variables as a test gives them: every job and instance.
var grafanaVars = strings.NewReplacer(
	"${job}", ".*", "$job", ".*",
	"${instance}", ".*", "$instance", ".*",
	"$__rate_interval", "5m", "$__range", "1h", "$__interval", "1m",
)

var (
	promString   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	promMatchers = regexp.MustCompile(`([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*\{([^}]*)\}`)
	promMatcher  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)`)
	promGrouping = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
	promRange    = regexp.MustCompile(`\[[^\]]*\]`)
	promNumber   = regexp.MustCompile(`\b\d[\w.]*`) // 0.99, 5m, 1e3
	promIdent    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?`)
	promKeywords = []string{"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right", "inf", "nan"}
)

// promNames reads a PromQL expression's metric names and the label names it
// uses: of each selector's matchers, by the selector's metric, and of its
// groupings (by, on, …), which name the labels of any metric in it.
func promNames(expr string) (metrics []string, matchers map[string][]string, grouped []string) {
	matchers = map[string][]string{}
	e := promString.ReplaceAllString(expr, `""`)
	for _, m := range promMatchers.FindAllStringSubmatch(e, -1) {
		for _, l := range promMatcher.FindAllStringSubmatch(m[2], -1) {
			if l[1] == "__name__" {
				continue
			}
			matchers[m[1]] = append(matchers[m[1]], l[1])
		}
	}
	e = promMatchers.ReplaceAllString(e, "$1 ")
	for _, g := range promGrouping.FindAllStringSubmatch(e, -1) {
		for _, l := range strings.Split(g[2], ",") {
			if l = strings.TrimSpace(l); l != "" {
				grouped = append(grouped, l)
			}
		}
	}
	e = promGrouping.ReplaceAllString(e, " ")
	e = promRange.ReplaceAllString(e, " ")
	e = promNumber.ReplaceAllString(e, " ")
	for _, id := range promIdent.FindAllStringSubmatch(e, -1) {
		if id[1] != "" || slices.Contains(promKeywords, strings.ToLower(id[0])) {
			continue // a function or an aggregation, or a keyword
		}
		if !slices.Contains(metrics, id[0]) {
			metrics = append(metrics, id[0])
		}
	}
	return metrics, matchers, grouped
}

// checkPromNames reports what expr names that otpscope does not export.
func checkPromNames(mt metricsTable, expr string) []string {
	var errs []string
	metrics, matchers, grouped := promNames(expr)
	if len(metrics) == 0 {
		errs = append(errs, "names no metric")
	}
	var have []string // the labels of every metric in the expression
	for _, m := range metrics {
		labels, ok := mt.labelsOf(m)
		if !ok {
			errs = append(errs, fmt.Sprintf("%s is not a metric otpscope exports (README, Metrics) nor a standard one", m))
			continue
		}
		have = append(have, labels...)
		for _, l := range matchers[m] {
			if !slices.Contains(labels, l) {
				errs = append(errs, fmt.Sprintf("%s has no label %s (it has %s)", m, l, strings.Join(labels, ", ")))
			}
		}
	}
	if l := matchers[""]; len(l) > 0 {
		errs = append(errs, fmt.Sprintf("a selector without a metric name (%v)", l))
	}
	for _, l := range grouped {
		if !slices.Contains(have, l) {
			errs = append(errs, fmt.Sprintf("groups by %s, a label none of %v has", l, metrics))
		}
	}
	return errs
}

// operationsSeries are input series shaped as otpscope exports them: each
// metric the panels read, with the README's labels and values its code uses;
// the test adds each binary's job and instance (by the README's binaries
// column) and a histogram's buckets, sum and count. Values are per minute.
var operationsSeries = []struct{ series, values string }{
	{`otpscope_build_info{version="v1.0.0", goversion="go1.26.8"}`, `1x60`},
	{`up`, `1x60`},
	{`process_start_time_seconds`, `100x30 2000x30`},
	{`process_resident_memory_bytes`, `5e7+1e5x60`},
	{`process_cpu_seconds_total`, `0+3x60`},
	{`go_goroutines`, `40x60`},
	{`ALERTS{alertname="OtpscopeSinkLagging", alertstate="firing", severity="warning", instance="r1:8081"}`, `1x60`},
	{`ALERTS{alertname="OtpscopeReportsFailing", alertstate="pending", severity="warning", instance="r1:8081", kind="daily"}`, `1x60`},
	{`otpscope_http_requests_total{listener="public", handler="/webhooks/tyntec", method="POST", code="200"}`, `0+600x60`},
	{`otpscope_http_requests_total{listener="admin", handler="/api/v1/channels", method="GET", code="429"}`, `0+2x60`},
	{`otpscope_http_request_duration_seconds{listener="public", handler="/webhooks/tyntec", method="POST"}`, `histogram`},
	{`otpscope_http_request_duration_seconds{listener="admin", handler="/api/v1/channels", method="GET"}`, `histogram`},
	{`otpscope_secret_reload_failing{secret="webhook_tokens"}`, `0x60`},
	{`otpscope_nats_jetstream_ok`, `1x60`},
	{`otpscope_nats_stream_bytes`, `1e8+1e6x60`},
	{`otpscope_nats_store_bytes`, `2e8+1e6x60`},
	{`otpscope_nats_store_limit_bytes`, `1e10x60`},
	{`otpscope_ingest_requests_total{endpoint="webhook", outcome="accepted"}`, `0+600x60`},
	{`otpscope_ingest_requests_total{endpoint="silent_auth", outcome="bad_request"}`, `0+1x60`},
	{`otpscope_dead_letters_total{source="ingest"}`, `0+1x60`},
	{`otpscope_ingest_events_total{channel="SMS", status="DELIVERED"}`, `0+500x60`},
	{`otpscope_ingest_publish_seconds`, `histogram`},
	{`otpscope_sink_rows_total`, `0+500x60`},
	{`otpscope_sink_batch_rows`, `histogram`},
	{`otpscope_sink_insert_seconds`, `histogram`},
	{`otpscope_sink_failures_total{kind="dead_letter"}`, `0+1x60`},
	{`otpscope_sink_insert_failures_total{class="network"}`, `0x30 1+1x30`},
	{`otpscope_sink_store_healthy`, `1x30 0x30`},
	{`otpscope_sink_consumer_lag`, `10x60`},
	{`otpscope_sink_ack_pending`, `3x60`},
	{`otpscope_sink_stream_bound_share`, `0.01x60`},
	{`otpscope_clickhouse_endpoint_queries_total{client="guest", outcome="ok"}`, `0+5x60`},
	{`otpscope_clickhouse_endpoint_query_seconds{client="guest"}`, `histogram`},
	{`otpscope_reports_total{kind="rollups", outcome="ok"}`, `0+1x60`},
	{`otpscope_reports_last_success_timestamp_seconds{kind="rollups"}`, `0+60x60`},
	{`otpscope_reports_due_timestamp_seconds{kind="rollups"}`, `3600+60x60`},
	{`otpscope_reporter_leader`, `1x60`},
	{`otpscope_rollup_run_seconds`, `histogram`},
	{`otpscope_backup_last_taken_timestamp_seconds`, `60x60`},
	{`otpscope_alert_webhook_posts_total{outcome="ok"}`, `0+1x60`},
	{`otpscope_alertmanager_posts_total{outcome="error"}`, `0+1x60`},
	{`otpscope_alert_webhook_silenced_total{rule="delivery_rate_low"}`, `0+1x60`},
	{`otpscope_alert_silences{state="active"}`, `1x60`},
	{`otpscope_alert_silences{state="pending"}`, `0x60`},
	{`otpscope_slo_objective`, `0.99x60`},
	{`otpscope_slo_budget_remaining`, `0.8-0.01x60`},
	{`otpscope_slo_burn_rate{window="1h"}`, `2x60`},
	{`otpscope_tyntec_calls_total{op="get_otp", outcome="ok"}`, `0+50x60`},
	{`otpscope_tyntec_calls_total{op="get_otp", outcome="rate_limited"}`, `0+1x60`},
	{`otpscope_tyntec_call_duration_seconds{op="get_otp"}`, `histogram`},
	{`otpscope_tyntec_rate_limit_wait_seconds`, `histogram`},
	{`otpscope_poller_tracked_otps`, `57x60`},
	{`otpscope_poller_due_otps{kind="delivery"}`, `4x60`},
	{`otpscope_poller_oldest_unreconciled_seconds`, `12x60`},
	{`otpscope_poller_finished_total{reason="unreconciled"}`, `0+1x60`},
	{`otpscope_poller_rate_limited_total`, `0+1x60`},
	{`otpscope_poller_resends_total{result="failed"}`, `0+1x60`},
	{`otpscope_poller_leader`, `1x60`},
}

// Where each binary runs in the test's Prometheus, as deploy/prometheus
// scrapes docker-compose.yml.
var opsTargets = map[string][2]string{
	"ingest":   {"otpscope-ingest", "ingest:8083"},
	"poller":   {"otpscope-poller", "poller:8082"},
	"reporter": {"otpscope-reporter", "reporter:8081"},
}

var seriesName = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?$`)

// inputSeries expands operationsSeries into promtool's input series.
func inputSeries(t *testing.T, mt metricsTable) []map[string]string {
	t.Helper()
	var out []map[string]string
	add := func(name, labels, values string) {
		out = append(out, map[string]string{"series": name + "{" + labels + "}", "values": values})
	}
	for _, s := range operationsSeries {
		m := seriesName.FindStringSubmatch(s.series)
		if m == nil {
			t.Fatalf("input series %q", s.series)
		}
		name, labels := m[1], m[2]
		allowed, ok := mt.labelsOf(name)
		if !ok {
			t.Errorf("input series %s: not a metric otpscope exports", name)
			continue
		}
		var given []string
		for _, l := range promMatcher.FindAllStringSubmatch(labels, -1) {
			given = append(given, l[1])
			if !slices.Contains(allowed, l[1]) {
				t.Errorf("input series %s: label %s, which the README does not give it", s.series, l[1])
			}
		}
		if row, ok := mt[name]; ok && !row.shared {
			for _, l := range row.labels {
				if !slices.Contains(given, l) {
					t.Errorf("input series %s: no label %s, which the README gives it", s.series, l)
				}
			}
		}
		if name == "ALERTS" {
			add(name, labels, s.values)
			continue
		}
		binaries := []string{"ingest", "poller", "reporter"}
		if row, ok := mt[name]; ok && !slices.Contains(row.binaries, "all") {
			binaries = slices.DeleteFunc(slices.Clone(row.binaries), func(b string) bool { return opsTargets[b] == [2]string{} })
		}
		for _, b := range binaries {
			target := fmt.Sprintf(`job=%q, instance=%q`, opsTargets[b][0], opsTargets[b][1])
			ls := target
			if labels != "" {
				ls += ", " + labels
			}
			if s.values != "histogram" {
				add(name, ls, s.values)
				continue
			}
			for _, le := range [][2]string{{"0.1", "0+5x60"}, {"1", "0+8x60"}, {"+Inf", "0+10x60"}} {
				add(name+"_bucket", ls+fmt.Sprintf(", le=%q", le[0]), le[1])
			}
			add(name+"_sum", ls, "0+4x60")
			add(name+"_count", ls, "0+10x60")
		}
	}
	return out
}

// TestOperationsDashboard holds dashboards/operations.json to the metrics
// otpscope exports: every panel reads the $datasource variable's Prometheus,
// names only metrics of the README's table (or Prometheus' and the Go
// collectors' own) with labels they have, and, run by Prometheus' rule
// engine (promtool) over series shaped as the binaries export them, returns
// a series. A renamed metric or label fails here.
func TestOperationsDashboard(t *testing.T) {
	mt := readMetricsTable(t)
	var d grafanatest.Dashboard
	if err := json.Unmarshal(readFile(t, filepath.Join(repoRoot, "dashboards", "operations.json")), &d); err != nil {
		t.Fatal(err)
	}

	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
		switch v.Type {
		case "datasource":
			if v.Name != "datasource" || v.Query != "prometheus" {
				t.Errorf("variable %s: want datasource, of type prometheus", v.Name)
			}
		case "query":
			if v.Datasource == nil || v.Datasource.Type != "prometheus" || v.Datasource.UID != "${datasource}" {
				t.Errorf("variable %s: want the $datasource variable", v.Name)
			}
			q, _ := v.Query.(map[string]any)
			qs, _ := q["query"].(string)
			m := regexp.MustCompile(`^label_values\((.+),\s*(\w+)\)$`).FindStringSubmatch(qs)
			if m == nil {
				t.Errorf("variable %s: query %q; want label_values(metric, label)", v.Name, qs)
				continue
			}
			for _, e := range checkPromNames(mt, grafanaVars.Replace(m[1])+" by ("+m[2]+")") {
				t.Errorf("variable %s: %s", v.Name, e)
			}
			if v.AllValue != ".*" {
				t.Errorf("variable %s: allValue %q; want .* (the panels match it as a regular expression)", v.Name, v.AllValue)
			}
		}
	}
	for _, v := range []string{"datasource", "job", "instance"} {
		if !vars[v] {
			t.Errorf("no %s variable", v)
		}
	}

	type query struct{ name, where, expr string }
	var queries []query
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		where := fmt.Sprintf("panel %q", p.Title)
		if p.Datasource.Type != "prometheus" || p.Datasource.UID != "${datasource}" {
			t.Errorf("%s: data source %+v; want the $datasource variable", where, p.Datasource)
		}
		if p.FieldConfig.Defaults.Unit == "" {
			t.Errorf("%s: no unit", where)
		}
		if len(p.Targets) == 0 {
			t.Errorf("%s: no query", where)
		}
		for _, tg := range p.Targets {
			where := where + " " + tg.RefID
			if !strings.Contains(tg.Expr, "ALERTS") && !strings.Contains(tg.Expr, `instance=~"$instance"`) {
				t.Errorf("%s: %s does not take the job and instance variables", where, tg.Expr)
			}
			expr := grafanaVars.Replace(tg.Expr)
			if strings.Contains(expr, "$") {
				t.Errorf("%s: a variable left in %s", where, expr)
			}
			for _, e := range checkPromNames(mt, expr) {
				t.Errorf("%s: %s", where, e)
			}
			queries = append(queries, query{fmt.Sprintf("operations_panel_%d_%s", p.ID, tg.RefID), where, expr})
		}
	}
	if len(queries) < 40 {
		t.Fatalf("%d panel queries; want the dashboard's", len(queries))
	}
	if t.Failed() {
		return
	}

	// Every query as a recording rule, evaluated over the input series:
	// each must give at least one series at the end.
	dir := t.TempDir()
	type rule struct {
		Record string `json:"record"`
		Expr   string `json:"expr"`
	}
	var rules []rule
	var exprTests []map[string]any
	for _, q := range queries {
		rules = append(rules, rule{q.name, q.expr})
		exprTests = append(exprTests, map[string]any{
			"expr": "count(" + q.name + ") > bool 0", "eval_time": "59m",
			"exp_samples": []map[string]any{{"labels": "{}", "value": 1}},
		})
	}
	// JSON is YAML: promtool reads both files as written here.
	write := func(name string, v any) {
		b, err := json.MarshalIndent(v, "", " ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("panels.yml", map[string]any{"groups": []any{map[string]any{"name": "operations", "rules": rules}}})
	write("panels.test.yml", map[string]any{
		"rule_files":          []string{"panels.yml"},
		"evaluation_interval": "1m",
		"tests": []any{map[string]any{
			"interval":         "1m",
			"input_series":     inputSeries(t, mt),
			"promql_expr_test": exprTests,
		}},
	})
	bin := promtool(t)
	for _, args := range [][]string{{"check", "rules", "panels.yml"}, {"test", "rules", "panels.test.yml"}} {
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
			for _, q := range queries {
				if strings.Contains(string(out), q.name+")") {
					t.Errorf("%s returns no series: %s", q.where, q.expr)
				}
			}
		}
	}
}

// TestPromNames holds the reading of PromQL names that
// TestOperationsDashboard relies on to what an expression names.
func TestPromNames(t *testing.T) {
	metrics, matchers, grouped := promNames(`histogram_quantile(0.99, sum by (le, handler) (rate(otpscope_x_bucket{job=~"a|b", code="4{2}9"}[5m])))` +
		` / on (job) group_left (version) max(up offset 5m) or vector(0) and ALERTS{alertstate="firing"}`)
	if want := []string{"otpscope_x_bucket", "up", "ALERTS"}; !slices.Equal(metrics, want) {
		t.Errorf("metrics %q; want %q", metrics, want)
	}
	if got := matchers["otpscope_x_bucket"]; !slices.Equal(got, []string{"job", "code"}) {
		t.Errorf("matchers %q", matchers)
	}
	if want := []string{"le", "handler", "job", "version"}; !slices.Equal(grouped, want) {
		t.Errorf("grouped %q; want %q", grouped, want)
	}
	mt := readMetricsTable(t)
	for expr, want := range map[string]int{
		`sum by (outcome) (rate(otpscope_ingest_requests_total{job="x"}[5m]))`:       0,
		`sum by (outcom) (rate(otpscope_ingest_requests_total[5m]))`:                 1,
		`rate(otpscope_ingest_request_total{outcome="accepted"}[5m])`:                1,
		`otpscope_ingest_requests_total{status="200"}`:                               1,
		`histogram_quantile(0.5, sum by (le) (otpscope_sink_insert_seconds_bucket))`: 0,
		`otpscope_sink_rows_total_bucket`:                                            1,
	} {
		if errs := checkPromNames(mt, expr); len(errs) != want {
			t.Errorf("%s: %q; want %d errors", expr, errs, want)
		}
	}
}
