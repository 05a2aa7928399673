// Command analytics benchmarks the analytics API on the embedded engine: it
// generates 90 days of delivery events in bulk (realistic fallback shares),
// runs the rollup job, then times GET /api/v1/channels, /fallback,
// /timeseries and /events over the last hour, the last 24 h, 30 days aligned
// to hours, 30 days with edges at odd minutes and 90 days, checks that every
// answer equals the one computed from the raw events table, and times the
// rollup job absorbing a new hour of data and one old-dated event, the
// latter while /channels is read back to back beside it.
//
//	OTPSCOPE_CHDB_LIB=.cache/chdb/libchdb.so go run ./bench/analytics -events 1000000,10000000,100000000
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/otpscope/otpscope/bench/internal/history"
	"github.com/otpscope/otpscope/internal/chdb"
	"github.com/otpscope/otpscope/internal/reporter"
	"github.com/otpscope/otpscope/internal/store"
)

var start = time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)

const days = 90

func main() { os.Exit(run()) }

func run() int {
	sizes := flag.String("events", "1000000,10000000", "comma-separated numbers of delivery events")
	calls := flag.Int("calls", 20, "calls per endpoint and window")
	rawCalls := flag.Int("raw-calls", 3, "calls of each raw-events answer (the baseline; slow at 100M)")
	live := flag.Bool("live", false, "also time the API before the rollup job ran (every hour computed live)")
	keep := flag.String("dir", "", "keep the engine's data and the raw answers in this directory and reuse them in the next run (default: a temporary directory, removed)")
	rawWindows := flag.String("raw-windows", "", "comma-separated names of the windows whose raw answers are computed and compared (default: all)")
	freshList := flag.String("fresh", "5m", "comma-separated spans of new traffic inserted before a between-job read of the last 24 h, ascending")
	maxLag := flag.Duration("max-lag", 10*time.Minute, "also time the between-job reads with this max_lag (the hours as the job left them), compared with the answers before the new traffic; 0: not")
	steadyFor := flag.Duration("steady", 0, "at the end, replay the new hour's traffic second by second this long with the job every -every, reading the last 24 h exact and with -steady-lag back to back; 0: not")
	every := flag.Duration("every", 15*time.Second, "with -steady: how often the job runs")
	steadyLag := flag.Duration("steady-lag", time.Minute, "with -steady: the max_lag of the lagged reads")
	backup := flag.Bool("backup", false, "time a backup of the database and its restore alone (README, \"Backups and restores\"), with its size on disk, instead of the API")
	dashboards := flag.String("dashboards", "", "time every panel query of the Grafana dashboards in this directory (dashboards) as Grafana sends them, anonymously through the embedded endpoint, after the rollup job, instead of the API; a second, comma-separated directory (an older copy) is timed in the same run and every panel of the first must give its rows")
	zone := flag.String("tz", "", "also time /timeseries with this tz (an IANA name such as Europe/Berlin: buckets on its clock) as \"timeseries tz\", against its raw answer; empty: not")
	resends := flag.Int("resends", 0, "time /api/v1/resends alone, after giving the database this many resend decisions, one per failed fact, the newest facts first (fewer when it has fewer failures; a kept database keeps them); 0: not")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	dir := *keep
	if dir == "" {
		tmp, err := os.MkdirTemp("", "otpscope-bench-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	eng, err := chdb.Start(chdb.Config{Dir: dir, Addr: "127.0.0.1:0", Logger: logger, BackupDir: filepath.Join(dir, "backups")})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer eng.Close()
	ctx := context.Background()

	switch {
	case *backup:
		fmt.Printf("| events | | took | size | | took |\n|---|---|---|---|---|---|\n")
	case *dashboards != "":
		fmt.Printf("| events | window | dashboard | panel | p50 ms | max ms |\n|---|---|---|---|---|---|\n")
	default:
		fmt.Printf("| events | window | endpoint | source | p50 ms | p95 ms |\n|---|---|---|---|---|---|\n")
	}
	opts := options{zone: *zone, calls: *calls, rawCalls: *rawCalls, live: *live, keep: *keep != "", dir: dir, maxLag: *maxLag, resends: *resends, backup: *backup, readerAddr: eng.Addr(),
		steady: steadyOptions{span: *steadyFor, every: *every, maxLag: *steadyLag}}
	if *dashboards != "" {
		opts.dashboards = strings.Split(*dashboards, ",")
	}
	for _, f := range strings.Split(*freshList, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(f))
		if err != nil || d <= 0 || d > time.Hour {
			fmt.Fprintf(os.Stderr, "-fresh: %q is not a span of up to an hour\n", f)
			return 2
		}
		opts.fresh = append(opts.fresh, d)
	}
	if *rawWindows != "" {
		opts.rawWindows = map[string]bool{}
		for _, w := range strings.Split(*rawWindows, ",") {
			opts.rawWindows[strings.TrimSpace(w)] = true
		}
	}
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		if err := bench(ctx, eng.DSN(), n, opts, logger); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return 0
}

// window is a stretch of time an answer covers.
type window struct {
	name     string
	from, to time.Time
}

type options struct {
	calls, rawCalls int
	live            bool
	keep            bool            // reuse a database generated and rolled up by an earlier run
	dir             string          // the engine's data, and raw-<db>.json: the raw answers
	rawWindows      map[string]bool // nil: all
	fresh           []time.Duration // new traffic before each between-job read
	maxLag          time.Duration   // of the lagged between-job reads; 0: none
	steady          steadyOptions
	resends         int      // time /resends alone, over this many decisions
	backup          bool     // time a backup and its restore alone
	dashboards      []string // time these directories' Grafana dashboards alone, the first against the others
	readerAddr      string   // the endpoint, where -dashboards reads as Grafana does
	zone            string   // also time /timeseries in this time zone ("timeseries tz"); "": not
}

func bench(ctx context.Context, ownerDSN string, n int, o options, logger *slog.Logger) error {
	admin, err := store.Connect(ctx, ownerDSN, logger)
	if err != nil {
		return err
	}
	name := fmt.Sprintf("bench_%d", n)
	// A kept database is reused once a run has generated it and rolled it
	// up (the bench_done table says so); anything else starts afresh.
	var done uint64
	if o.keep {
		if err := admin.Conn().QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = 'bench_done'", name).Scan(&done); err != nil {
			return err
		}
	}
	reuse := done > 0
	if !reuse {
		if err := admin.Conn().Exec(ctx, "DROP DATABASE IF EXISTS "+name+" SYNC"); err != nil {
			return err
		}
		if err := admin.Conn().Exec(ctx, "CREATE DATABASE "+name); err != nil {
			return err
		}
		os.Remove(rawPath(o, name))
	}
	defer admin.Close()
	db, err := store.Open(ctx, store.Config{DSN: ownerDSN + "/" + name}, logger)
	if err != nil {
		return err
	}
	defer db.Close()
	end := start.AddDate(0, 0, days)
	var rows int
	if reuse {
		var n uint64
		if err := db.Conn().QueryRow(ctx, fmt.Sprintf("SELECT count() FROM delivery_events WHERE event_time < %s", history.SQLTime(end))).Scan(&n); err != nil {
			return err
		}
		rows = int(n)
		fmt.Fprintf(os.Stderr, "%d events reused from %s\n", rows, o.dir)
	} else {
		t0 := time.Now()
		if rows, err = history.Generate(ctx, db, n, start, end.Sub(start), 0); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "%d events stored (duplicates included) in %s\n", rows, time.Since(t0).Round(time.Millisecond))
	}

	if o.backup {
		return benchBackup(ctx, db, rows, filepath.Join(o.dir, "backups"))
	}

	r := chi.NewRouter()
	reporter.NewAPI(db, reporter.AlertRules{}, logger).Mount(r)
	api := httptest.NewServer(r)
	defer api.Close()

	odd := 17 * time.Minute
	windows := []window{
		{"last hour", end.Add(-time.Hour), end},
		{"last 24 h", end.Add(-24 * time.Hour), end},
		{"30 d aligned", end.AddDate(0, 0, -30), end},
		{"30 d at odd minutes", end.AddDate(0, 0, -30).Add(odd), end.Add(-odd - 26*time.Minute)},
		{"90 d", start, end},
	}
	endpoints := []string{"channels", "fallback", "timeseries", "events"}
	zone, err := store.Zone(o.zone)
	if err != nil {
		return err
	}
	if o.zone != "" {
		endpoints = append(endpoints, "timeseries tz")
	}

	// The raw answers: the store's own computation from delivery_events,
	// kept as JSON (and in o.dir, for the next run on a kept database).
	rawAnswers := map[string]json.RawMessage{}
	if b, err := os.ReadFile(rawPath(o, name)); err == nil {
		if err := json.Unmarshal(b, &rawAnswers); err != nil {
			return fmt.Errorf("%s: %w", rawPath(o, name), err)
		}
	}
	computeRaw := func(wins []window) error {
		if o.resends > 0 || len(o.dashboards) > 0 {
			return nil // -resends compares with its own computation from the facts; -dashboards with an older copy
		}
		for _, win := range wins {
			if o.rawWindows != nil && !o.rawWindows[win.name] {
				continue
			}
			for _, ep := range endpoints {
				if _, ok := rawAnswers[win.name+ep]; ok {
					continue
				}
				raw := store.Window{From: win.from, To: win.to, Raw: true}
				var answer any
				p50, p95, err := timeCalls(o.rawCalls, func() error {
					var err error
					switch ep {
					case "channels":
						answer, err = db.Channels(ctx, raw)
					case "fallback":
						answer, err = db.Fallback(ctx, raw)
					case "timeseries":
						answer, err = db.Timeseries(ctx, raw, reporter.DefaultStep(win.to.Sub(win.from)), nil)
					case "timeseries tz":
						answer, err = db.Timeseries(ctx, raw, reporter.DefaultStep(win.to.Sub(win.from)), zone)
					case "events":
						answer, err = rawEvents(ctx, db, win.from, win.to)
					}
					return err
				})
				if err != nil {
					return fmt.Errorf("raw %s %s: %w", win.name, ep, err)
				}
				if rawAnswers[win.name+ep], err = json.Marshal(answer); err != nil {
					return err
				}
				fmt.Printf("| %d | %s | /%s | raw events | %.0f | %.0f |\n", rows, win.name, ep, p50, p95)
				b, _ := json.Marshal(rawAnswers)
				if err := os.WriteFile(rawPath(o, name), b, 0o644); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := computeRaw(windows); err != nil {
		return err
	}
	// readDuringJob runs the job while calling /channels over win back to
	// back: on the embedded engine the API's reads run beside the job's
	// statements (on its reader connections), where they once waited for
	// each. Every answer must equal the one before the job: the job moves
	// no figure, only where it is read from.
	readDuringJob := func(what string, win window) error {
		q := windowQuery(win.from, win.to).Encode()
		get := func() ([]store.ChannelStats, error) {
			body, err := getBody(api.URL + "/api/v1/channels?" + q)
			if err != nil {
				return nil, err
			}
			var r reporter.ChannelsResponse
			err = json.Unmarshal(body, &r)
			return r.Channels, err
		}
		before, err := get()
		if err != nil {
			return err
		}
		t := time.Now()
		done := make(chan error, 1)
		var run store.RollupRun
		go func() {
			var err error
			run, err = db.RefreshRollups(ctx)
			done <- err
		}()
		var ds []float64
		var readErr error
		for running := true; running; {
			select {
			case err := <-done:
				if err != nil {
					return err
				}
				running = false
				continue
			default:
			}
			if readErr != nil {
				continue // wait for the job before returning
			}
			t1 := time.Now()
			got, err := get()
			ds = append(ds, float64(time.Since(t1).Microseconds())/1000)
			if err == nil && !reflect.DeepEqual(got, before) {
				err = fmt.Errorf("%s: /channels while the job ran differs from before it", win.name)
			}
			readErr = err
		}
		if readErr != nil {
			return readErr
		}
		took := time.Since(t)
		fmt.Fprintf(os.Stderr, "rollup job, %s: %s in %s, beside %d reads\n", what, runHours(run), took.Round(time.Millisecond), len(ds))
		fmt.Printf("| %d | rollup job | %s, beside reads | %s | %d | |\n", rows, what, runHours(run), took.Milliseconds())
		if len(ds) > 0 {
			slices.Sort(ds)
			fmt.Printf("| %d | %s | /channels | API while the job ran (%d calls, max %.0f ms) | %.0f | %.0f |\n",
				rows, win.name, len(ds), ds[len(ds)-1], ds[len(ds)/2], ds[min(len(ds)-1, int(0.95*float64(len(ds))))])
		}
		time.Sleep(store.RollupSlack)
		return nil
	}
	// timeAPIWith times the endpoints over windows with the extra query
	// parameters and checks each answer with check (nil: against the raw
	// answers).
	timeAPIWith := func(source string, windows []window, endpoints []string, extra url.Values, check func(win window, ep string, body []byte) (note string, err error)) error {
		for _, win := range windows {
			qv := windowQuery(win.from, win.to)
			for k, v := range extra {
				qv[k] = v
			}
			q := qv.Encode()
			for _, ep := range endpoints {
				var apiBody []byte
				p50, p95, first, err := timeCallsFirst(o.calls, func() (err error) {
					if ep == "timeseries tz" {
						apiBody, err = getBody(api.URL + "/api/v1/timeseries?" + q + "&tz=" + url.QueryEscape(o.zone))
						return err
					}
					apiBody, err = getBody(api.URL + "/api/v1/" + ep + "?" + q)
					return err
				})
				if err != nil {
					return err
				}
				if check != nil {
					note, err := check(win, ep, apiBody)
					fmt.Printf("| %d | %s | /%s | %s%s | %.0f | %.0f |\n", rows, win.name, ep, source, note, p50, p95)
					if err != nil {
						return fmt.Errorf("%s %s: %w", source, win.name, err)
					}
					continue
				}
				raw, compared := rawAnswers[win.name+ep]
				note := ""
				if first > 0 {
					note = fmt.Sprintf(" (first call %.0f ms)", first)
				}
				if !compared {
					note += " (not compared: no raw answer)"
				}
				fmt.Printf("| %d | %s | /%s | %s%s | %.0f | %.0f |\n", rows, win.name, ep, source, note, p50, p95)
				if !compared {
					continue
				}
				if err := same(ep, apiBody, raw); err != nil {
					return fmt.Errorf("%s %s: %w", source, win.name, err)
				}
			}
		}
		return nil
	}
	timeAPI := func(source string, windows []window) error {
		return timeAPIWith(source, windows, endpoints, nil, nil)
	}
	if o.live {
		if err := timeAPI("API, live", windows); err != nil {
			return err
		}
	}
	// The generator's inserts are visible once they return: the rollups may
	// trust marks made more than a second before their computation, as a
	// single server's do anyway (internal/store/settle.go); the sleeps
	// below let the marks of each insert age past that.
	store.RollupSlack = time.Second
	time.Sleep(store.RollupSlack)
	job := func(what string) error {
		t := time.Now()
		run, err := db.RefreshRollups(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "rollup job, %s: %s in %s\n", what, runHours(run), time.Since(t).Round(time.Millisecond))
		fmt.Printf("| %d | rollup job | %s | %s | %d | |\n", rows, what, runHours(run), time.Since(t).Milliseconds())
		time.Sleep(store.RollupSlack)
		return nil
	}
	if !reuse {
		if err := job("all history"); err != nil {
			return err
		}
		if o.keep {
			if err := db.Conn().Exec(ctx, "CREATE TABLE bench_done (at DateTime) ENGINE = Memory"); err != nil {
				return err
			}
		}
	}
	if reuse {
		// A kept database from before schema 0013 gets its day-level
		// histograms 31 days per run of the job.
		for range 3 {
			if _, err := db.RefreshRollups(ctx); err != nil {
				return err
			}
		}
		time.Sleep(store.RollupSlack)
	}
	if err := job("idle"); err != nil {
		return err
	}
	if len(o.dashboards) > 0 {
		// The job runs before each window, as its schedule would have in
		// the meantime (every minute): the panels trust an hour its runs
		// computed or checked lately (store.markedHours).
		refresh := func() error {
			_, err := db.RefreshRollups(ctx)
			return err
		}
		return benchDashboards(ctx, o.readerAddr, name, rows, o.calls, o.dashboards, refresh, []window{
			{"last 24 h", end.Add(-24 * time.Hour), end},
			{"7 d", end.AddDate(0, 0, -7), end},
			{"30 d", end.AddDate(0, 0, -30), end},
			{"90 d", start, end},
		})
	}
	if o.resends > 0 {
		var wins []resendWindow
		for _, w := range windows {
			wins = append(wins, resendWindow(w))
		}
		return benchResends(ctx, db, api.URL, rows, o, wins, rawPath(o, name))
	}
	if err := timeAPI("API, hourly rollups", windows); err != nil {
		return err
	}
	// A new hour of traffic after the history (outside every window), then
	// one event dated a month back: a replay of a stored one, as a
	// redelivery after JetStream's duplicate window would store it. Both
	// leave every window's answer as it was, so a kept database and its raw
	// answers stay valid.
	// First what a reader sees between two runs of the job while traffic
	// flows: the first minutes of the new hour (-fresh; by default 5: the
	// job runs every minute, and RollupSlack is 5 minutes in production)
	// have marked the day before them dirty, so the last 24 h up to now are
	// patched.
	// The same reads with max_lag read the hours as the job left them: their
	// answers must equal those read before the new traffic (the job has not
	// run since), and as_of must be before it.
	freshWindow := func(span time.Duration) window {
		return window{freshName(span), end.Add(-24*time.Hour + span), end.Add(span)}
	}
	lagged := []string{"channels", "fallback", "timeseries"} // /events lists raw events
	before := map[string][]byte{}
	if o.maxLag > 0 {
		// Under traffic the job brings the last day up to date every run;
		// here a replayed event marks it, and the job checks it, so that
		// max_lag applies from the next facts on (it reads only hours the
		// job computed or checked within it).
		if err := replay(ctx, db, end.Add(-time.Minute)); err != nil {
			return err
		}
		if err := job("the last day checked after a replayed event"); err != nil {
			return err
		}
		for _, span := range o.fresh {
			win := freshWindow(span)
			for _, ep := range lagged {
				b, err := getBody(api.URL + "/api/v1/" + ep + "?" + windowQuery(win.from, win.to).Encode())
				if err != nil {
					return err
				}
				before[win.name+ep] = b
			}
		}
	}
	insertedAt := time.Now()
	for _, span := range o.fresh {
		if _, err := history.GenerateUntil(ctx, db, n/(days*24), end, time.Hour, span, 1); err != nil {
			return err
		}
		time.Sleep(store.RollupSlack)
		fresh := []window{freshWindow(span)}
		if err := computeRaw(fresh); err != nil {
			return err
		}
		if err := timeAPI("API, between job runs", fresh); err != nil {
			return err
		}
		if o.maxLag == 0 {
			continue
		}
		source := fmt.Sprintf("API, between job runs, max_lag=%v", o.maxLag)
		err := timeAPIWith(source, fresh, lagged, url.Values{"max_lag": {o.maxLag.String()}}, func(win window, ep string, body []byte) (string, error) {
			return sameAsBefore(ep, body, before[win.name+ep], insertedAt)
		})
		if err != nil {
			return err
		}
	}
	if _, err := history.Generate(ctx, db, n/(days*24), end, time.Hour, 1); err != nil {
		return err
	}
	time.Sleep(store.RollupSlack)
	if err := job("a new hour"); err != nil {
		return err
	}
	if err := replay(ctx, db, end.AddDate(0, 0, -30).Add(90*time.Minute)); err != nil {
		return err
	}
	if err := readDuringJob("one old-dated event", windows[1]); err != nil {
		return err
	}
	if o.steady.span > 0 {
		if err := steady(ctx, db, api.URL, rows, end, o.steady); err != nil {
			return err
		}
	}
	if o.keep {
		return nil
	}
	return admin.Conn().Exec(ctx, "DROP DATABASE IF EXISTS "+name+" SYNC")
}

// replay stores again the first event at or after at, as a redelivery after
// JetStream's duplicate window would: it marks the hours around it dirty and
// changes no answer. Then it waits for the marks to age past the slack.
func replay(ctx context.Context, db *store.DB, at time.Time) error {
	err := storeAgain(ctx, db, fmt.Sprintf("event_time >= %s ORDER BY event_time LIMIT 1", history.SQLTime(at)))
	time.Sleep(store.RollupSlack)
	return err
}

// storeAgain inserts the stored events that selection (a WHERE condition,
// with ORDER BY or LIMIT if any) picks once more, received now: what
// JetStream redelivering them would store.
func storeAgain(ctx context.Context, db *store.DB, selection string) error {
	return db.Conn().Exec(ctx, `INSERT INTO delivery_events (event_id, otp_id, profile_id, channel, status, event_time, received_at, error_code, error_message, source)
SELECT event_id, otp_id, profile_id, channel, status, event_time, now64(3), error_code, error_message, source
FROM delivery_events WHERE `+selection)
}

// freshName names the window of a between-job read after span of new
// traffic: "last 24 h with 5 new minutes before the job".
func freshName(span time.Duration) string {
	if span == time.Minute {
		return "last 24 h with 1 new minute before the job"
	}
	if span%time.Minute == 0 {
		return fmt.Sprintf("last 24 h with %d new minutes before the job", int(span.Minutes()))
	}
	return fmt.Sprintf("last 24 h with %v new before the job", span)
}

func rawPath(o options, db string) string {
	return filepath.Join(o.dir, "raw-"+db+".json")
}

// rawEvents is the first page of /events as a plain query would list it.
func rawEvents(ctx context.Context, db *store.DB, from, to time.Time) ([]string, error) {
	rows, err := db.Conn().Query(ctx, fmt.Sprintf(`SELECT event_id FROM delivery_events FINAL
WHERE event_time >= %s AND event_time < %s ORDER BY event_time DESC, event_id DESC LIMIT 100`, history.SQLTime(from), history.SQLTime(to)))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// same checks that the API's answer equals the one computed from raw events
// (as JSON): each is decoded into the answer's type, so both compare alike.
func same(ep string, apiBody []byte, raw json.RawMessage) error {
	var got, want any
	switch ep {
	case "channels":
		var r reporter.ChannelsResponse
		var w []store.ChannelStats
		if err := decodeBoth(apiBody, &r, raw, &w); err != nil {
			return err
		}
		got, want = r.Channels, w
	case "fallback":
		var r reporter.FallbackResponse
		var w store.FallbackStats
		if err := decodeBoth(apiBody, &r, raw, &w); err != nil {
			return err
		}
		got, want = r.FallbackStats, w
	case "timeseries", "timeseries tz":
		var r reporter.TimeseriesResponse
		var w store.Timeseries
		if err := decodeBoth(apiBody, &r, raw, &w); err != nil {
			return err
		}
		got, want = r.Timeseries, w
	case "events":
		var r store.EventPage
		var w []string
		if err := decodeBoth(apiBody, &r, raw, &w); err != nil {
			return err
		}
		var ids []string
		for _, e := range r.Events {
			ids = append(ids, e.EventID)
		}
		got, want = ids, w
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		return fmt.Errorf("/%s differs from raw events:\n%s\n%s", ep, g, w)
	}
	return nil
}

// sameAsBefore checks that an answer read with max_lag equals the one read
// before the new traffic (as_of aside), and that its as_of is before the
// traffic's insert; its note says how far behind the answer was.
func sameAsBefore(ep string, body, before []byte, inserted time.Time) (note string, err error) {
	asOf, err := sameButAsOf(ep, body, before)
	if err != nil {
		return "", err
	}
	if !asOf.Before(inserted) {
		return "", fmt.Errorf("/%s: as_of %v is not before the new traffic (%v)", ep, asOf, inserted)
	}
	return fmt.Sprintf(" (equal to the answer before the new traffic; as_of %v behind)", time.Since(asOf).Round(time.Second)), nil
}

// sameButAsOf checks that two answers of ep are equal but for as_of, and
// returns the first's.
func sameButAsOf(ep string, body, before []byte) (asOf time.Time, err error) {
	var got, want map[string]any
	if err := decodeBoth(body, &got, before, &want); err != nil {
		return asOf, err
	}
	if asOf, err = time.Parse(time.RFC3339Nano, fmt.Sprint(got["as_of"])); err != nil {
		return asOf, fmt.Errorf("/%s: as_of: %w", ep, err)
	}
	delete(got, "as_of")
	delete(want, "as_of")
	if !reflect.DeepEqual(got, want) {
		return asOf, fmt.Errorf("/%s differs from the answer before:\n%s\n%s", ep, body, before)
	}
	return asOf, nil
}

// windowQuery is the API's query for the window [from, to).
func windowQuery(from, to time.Time) url.Values {
	return url.Values{"from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}}
}

// getBody GETs u and returns its body, failing unless it is a 200.
func getBody(u string) ([]byte, error) {
	resp, err := http.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s %s", u, resp.Status, b)
	}
	return b, err
}

func decodeBoth(apiBody []byte, api any, raw []byte, want any) error {
	if err := json.Unmarshal(apiBody, api); err != nil {
		return err
	}
	return json.Unmarshal(raw, want)
}

// timeCalls times n calls after a warm-up call; with n = 1 (a slow
// baseline) there is no warm-up.
func timeCalls(n int, call func() error) (p50, p95 float64, err error) {
	p50, p95, _, err = timeCallsFirst(n, call)
	return p50, p95, err
}

// timeCallsFirst is timeCalls that also returns how long the warm-up call
// took (0 without one): the first read of a window, before the reader
// kept its percentiles' values (internal/store/rollup_values.go).
func timeCallsFirst(n int, call func() error) (p50, p95, first float64, err error) {
	n = max(n, 1)
	if n > 1 {
		t := time.Now()
		if err := call(); err != nil { // warm-up, not counted
			return 0, 0, 0, err
		}
		first = float64(time.Since(t).Microseconds()) / 1000
	}
	ds := make([]float64, n)
	for i := range ds {
		t := time.Now()
		if err := call(); err != nil {
			return 0, 0, 0, err
		}
		ds[i] = float64(time.Since(t).Microseconds()) / 1000
	}
	p50, p95 = percentiles(ds)
	return p50, p95, first, nil
}

// percentiles are the p50 and p95 of ds.
func percentiles(ds []float64) (p50, p95 float64) {
	if len(ds) == 0 {
		return 0, 0
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	return ds[len(ds)/2], ds[min(len(ds)-1, int(0.95*float64(len(ds))))]
}

// runHours says what a run of the rollup job did to its hours.
func runHours(run store.RollupRun) string {
	return fmt.Sprintf("%d hours (%d computed, %d patched, %d checked)", len(run.Hours), run.Computed, run.Patched, run.Checked)
}

type resendWindow struct {
	name     string
	from, to time.Time
}

// benchResends gives the database o.resends resend decisions, one per
// failed fact, the newest facts first, decided 30 s after the failure
// (results and via spread over the policy's), runs the rollup job, which
// keeps their outcomes, and times /api/v1/resends over each window: right
// after the job, and with the OTPs of the newest 50, 250 and 2,500 decisions
// touched since by a late delivery, which a read computes from their
// facts. Each answer is compared with the
// store's computation of every outcome from the facts, timed once beside
// it; /channels of the same window is the baseline of the same run.
// rawFile holds the other endpoints' raw answers of a kept database: the
// late deliveries below change the facts they were computed from, so it is
// removed with the first of them.
func benchResends(ctx context.Context, db *store.DB, apiURL string, rows int, o options, windows []resendWindow, rawFile string) error {
	var have uint64
	if err := db.Conn().QueryRow(ctx, "SELECT count() FROM resends").Scan(&have); err != nil {
		return err
	}
	if more := o.resends - int(have); more > 0 {
		t0 := time.Now()
		if err := db.Conn().Exec(ctx, fmt.Sprintf(`INSERT INTO resends (event_id, otp_id, profile_id, decision_id, result, reason, via, trigger_channel, trigger_status, attempt, dry_run, decided_at, stream_seq)
SELECT concat('rs-bench-', toString(otp_id), '-', toString(event_time)), otp_id, profile_id, concat(toString(otp_id), '.', channel, '.', toString(event_time)),
  ['sent', 'dryrun', 'skipped', 'failed'][1 + cityHash64(otp_id) %% 4], 'bench', if(channel = 'SMS', 'VOICE', 'SMS'), channel, status, 1,
  cityHash64(otp_id) %% 4 = 1, event_time + INTERVAL 30 SECOND, 0
FROM delivery_events WHERE status IN ('UNDELIVERABLE', 'TIMED_OUT')
ORDER BY event_time DESC LIMIT %d`, more)); err != nil {
			return fmt.Errorf("resend decisions: %w", err)
		}
		fmt.Fprintf(os.Stderr, "%d resend decisions added in %s\n", more, time.Since(t0).Round(time.Millisecond))
	}
	// As in bench: what is touched more than the slack before a run is
	// the run's; sleeping it lets the reads after the run find only what
	// came after.
	time.Sleep(store.RollupSlack)
	job := func(what string) error {
		t0 := time.Now()
		run, err := db.RefreshRollups(ctx)
		if err != nil {
			return fmt.Errorf("rollup job: %w", err)
		}
		fmt.Printf("rollup job (%s): %d resend outcomes computed, %d hours, %s\n", what, run.Resends, len(run.Hours), time.Since(t0).Round(time.Millisecond))
		time.Sleep(store.RollupSlack)
		return nil
	}
	if err := job("the decisions kept"); err != nil {
		return err
	}
	fmt.Printf("\n| events | window | endpoint | reads | p50 ms | p95 ms |\n|---|---|---|---|---|---|\n")
	if err := timeResends(ctx, db, apiURL, rows, o, windows, "kept", true); err != nil {
		return err
	}
	// A late delivery via each of the newest decisions' via, a minute
	// after the decision: the OTPs touched since the job. About 50
	// decisions a minute are made at 111 M events, so 50 is what the job's
	// default schedule (every minute) leaves a read, 250 five minutes of
	// them, 2,500 fifty (each set takes in the one before).
	for _, touched := range []int{50, 250, 2500} {
		if err := db.Conn().Exec(ctx, fmt.Sprintf(`INSERT INTO delivery_events (event_id, otp_id, profile_id, channel, status, event_time, received_at, error_code, error_message, source,
  timestamp_from_receipt, unknown_channel, unknown_status, missed_webhook, stream_seq)
SELECT concat('late-', decision_id, '-', toString(now64(3))), otp_id, profile_id, via, 'DELIVERED', decided_at + INTERVAL 1 MINUTE, now64(3), '', '', 'webhook', false, false, false, false, 0
FROM resends FINAL ORDER BY decided_at DESC LIMIT %d`, touched)); err != nil {
			return fmt.Errorf("late deliveries: %w", err)
		}
		if err := os.Remove(rawFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		// No /channels baseline here: the late facts, spread over the
		// hours of the decisions, leave /channels patching each of them
		// (seconds, at 111 M past its connection pool); the one before is
		// the baseline.
		if err := timeResends(ctx, db, apiURL, rows, o, windows, fmt.Sprintf("kept, the OTPs of %d decisions touched since", touched), false); err != nil {
			return err
		}
	}
	return job("after the late deliveries")
}

// timeResends times /api/v1/resends over each window, checks its answer
// against the store's computation from the facts, and with baseline times
// /channels of the same window.
func timeResends(ctx context.Context, db *store.DB, apiURL string, rows int, o options, windows []resendWindow, reads string, baseline bool) error {
	for _, win := range windows {
		var got reporter.ResendsResponse
		p50, p95, err := timeCalls(o.calls, func() error {
			body, err := getBody(apiURL + "/api/v1/resends?" + windowQuery(win.from, win.to).Encode())
			if err != nil {
				return err
			}
			got = reporter.ResendsResponse{}
			return json.Unmarshal(body, &got)
		})
		if err != nil {
			return fmt.Errorf("resends %s: %w", win.name, err)
		}
		var want store.ResendReport
		f50, f95, err := timeCalls(o.rawCalls, func() (err error) {
			want, err = db.ResendsFromFacts(ctx, store.ResendFilter{From: win.from, To: win.to})
			return err
		})
		if err != nil {
			return fmt.Errorf("resends %s from the facts: %w", win.name, err)
		}
		a, _ := json.Marshal(got.ResendReport)
		b, _ := json.Marshal(want)
		if !bytes.Equal(a, b) {
			return fmt.Errorf("resends %s (%s): the answer differs from the facts' computation:\n%s\n%s", win.name, reads, a, b)
		}
		fmt.Printf("| %d | %s (%d decisions) | /resends | %s (equal to the facts') | %.0f | %.0f |\n", rows, win.name, got.Decisions, reads, p50, p95)
		fmt.Printf("| %d | %s | every outcome from the facts | facts | %.0f | %.0f |\n", rows, win.name, f50, f95)
		if !baseline {
			continue
		}
		// The baseline, in the same run: /channels of the same window.
		b50, b95, err := timeCalls(o.calls, func() error {
			_, err := getBody(apiURL + "/api/v1/channels?" + windowQuery(win.from, win.to).Encode())
			return err
		})
		if err != nil {
			return fmt.Errorf("channels %s: %w", win.name, err)
		}
		fmt.Printf("| %d | %s | /channels (baseline; /resends p50 %.1f×) | rollups | %.0f | %.0f |\n", rows, win.name, p50/b50, b50, b95)
	}
	return nil
}

// benchBackup times a backup of db (rows events) into dir and its restore,
// and checks that the restore holds the events the backup did.
func benchBackup(ctx context.Context, db *store.DB, rows int, dir string) error {
	var before uint64
	if err := db.Conn().QueryRow(ctx, "SELECT count() FROM delivery_events").Scan(&before); err != nil {
		return err
	}
	now := time.Now()
	t0 := time.Now()
	b, err := db.Backup(ctx, store.BackupName(now), 0, now)
	if err != nil {
		return err
	}
	took := time.Since(t0)
	var onDisk int64
	_ = filepath.WalkDir(filepath.Join(dir, b.Name), func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				onDisk += info.Size()
			}
		}
		return nil
	})
	t1 := time.Now()
	if _, err := db.Restore(ctx, b.Name, time.Now()); err != nil {
		return err
	}
	restored := time.Since(t1)
	var after uint64
	if err := db.Conn().QueryRow(ctx, "SELECT count() FROM delivery_events").Scan(&after); err != nil {
		return err
	}
	if after != before {
		return fmt.Errorf("restore holds %d delivery events; the backup was taken of %d", after, before)
	}
	fmt.Printf("| %d | backup | %.1f s | %.0f MB on disk, %d files | restore | %.1f s |\n", rows, took.Seconds(), float64(onDisk)/1e6, b.Files, restored.Seconds())
	return nil
}
