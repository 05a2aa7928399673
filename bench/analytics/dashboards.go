package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/otpscope/otpscope/internal/grafanatest"
)

// benchDashboards times every panel query of the Grafana dashboards on
// ClickHouse in dirs (dirs[0]; the others, older copies, in the same run)
// over windows, as Grafana sends them: expanded as the plugin expands them
// (all profiles, all channels) and read anonymously through the embedded
// endpoint, where the reader limits apply (README, "Dashboards and
// connecting Grafana"). The endpoint runs one reader query at a time, so a
// dashboard's panels wait for each other: its time to draw is about the sum
// of its variables' and panels' times, printed after them. A panel that fails (the
// reader's time limit) is printed, not fatal; a panel of dirs[0] whose rows
// differ from those of the same panel in another directory is fatal.
// refresh, a run of the rollup job, goes before each window.
func benchDashboards(ctx context.Context, addr, database string, rows, calls int, dirs []string, refresh func() error, windows []window) error {
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, Protocol: clickhouse.HTTP, Auth: clickhouse.Auth{Database: database}})
	if err != nil {
		return err
	}
	defer conn.Close()
	vars := map[string]string{"profile": grafanatest.All, "channel": grafanatest.All}
	for _, win := range windows {
		if err := refresh(); err != nil {
			return fmt.Errorf("rollup job: %w", err)
		}
		interval := grafanaInterval(win.to.Sub(win.from))
		// answers[dir][file/title/refId] are a panel's rows, sorted.
		answers := map[string]map[string][]string{}
		for _, dir := range dirs {
			boards, err := grafanatest.Load(dir)
			if err != nil {
				return fmt.Errorf("-dashboards %s (run from the repository's root): %w", dir, err)
			}
			answers[dir] = map[string][]string{}
			names := make([]string, 0, len(boards))
			for f := range boards {
				names = append(names, f)
			}
			slices.Sort(names)
			for _, f := range names {
				label := strings.TrimSuffix(f, ".json")
				if dir != dirs[0] {
					label += " (" + dir + ")"
				}
				var total float64
				failed := 0
				// The variables' lists, which Grafana reads first, then the
				// panels.
				type query struct{ title, refID, sql string }
				var queries []query
				for _, v := range boards[f].Templating.List {
					if q, ok := v.Query.(string); ok && v.Type == "query" {
						queries = append(queries, query{"variable " + v.Name, "", q})
					}
				}
				for _, p := range boards[f].Panels {
					for _, t := range p.Targets {
						queries = append(queries, query{p.Title, t.RefID, t.RawSQL})
					}
				}
				for _, q := range queries {
					if strings.TrimSpace(q.sql) == "" {
						continue
					}
					sql, err := grafanatest.Expand(q.sql, win.from, win.to, interval, vars)
					if err != nil {
						return fmt.Errorf("%s %q: %w", f, q.title, err)
					}
					p50, worst, got, qerr := timeQuery(ctx, conn, sql, calls)
					total += p50
					note := ""
					if qerr != nil {
						failed++
						note = " (failed: " + firstLine(qerr.Error()) + ")"
					} else {
						answers[dir][f+"/"+q.title+"/"+q.refID] = got
					}
					fmt.Printf("| %d | %s | %s | %s%s | %.0f | %.0f |\n", rows, win.name, label, q.title, note, p50, worst)
				}
				fmt.Printf("| %d | %s | %s | **every query, one after another** (%d failed) | %.0f | |\n", rows, win.name, label, failed, total)
				fmt.Fprintf(os.Stderr, "%s, %s: %.1f s for every query, %d failed\n", label, win.name, total/1000, failed)
			}
		}
		for _, dir := range dirs[1:] {
			same := 0
			for k, want := range answers[dir] {
				got, ok := answers[dirs[0]][k]
				if !ok {
					continue
				}
				if !slices.Equal(got, want) {
					return fmt.Errorf("%s, %s: %s gives %d rows %.300q; %s gives %d rows %.300q", win.name, k, dirs[0], len(got), got, dir, len(want), want)
				}
				same++
			}
			fmt.Fprintf(os.Stderr, "%s: %d panels of %s give the rows of %s\n", win.name, same, dirs[0], dir)
		}
	}
	return nil
}

// timeQuery runs sql calls times (until one fails): the median and the
// slowest time in ms, and the last call's rows.
func timeQuery(ctx context.Context, conn clickhouse.Conn, sql string, calls int) (p50, worst float64, rows []string, err error) {
	var ds []float64
	for range calls {
		t0 := time.Now()
		rows, err = grafanatest.ReadAll(ctx, conn, sql)
		ds = append(ds, float64(time.Since(t0).Microseconds())/1000)
		if err != nil {
			break
		}
	}
	slices.Sort(ds)
	return ds[len(ds)/2], ds[len(ds)-1], rows, err
}

// grafanaInterval is Grafana's $__interval for a range drawn in about
// 1,000 points (a wide panel): the range over 1,000, rounded up to one of
// Grafana's steps.
func grafanaInterval(d time.Duration) time.Duration {
	raw := d / 1000
	for _, s := range []time.Duration{time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
		time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
		time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour} {
		if raw <= s {
			return s
		}
	}
	return 24 * time.Hour
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}
