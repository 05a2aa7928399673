// Command analytics benchmarks the analytics API on the embedded engine: it
// generates 30 days of delivery events in bulk (realistic fallback shares),
// computes the answers from the raw events table, then times GET
// /api/v1/channels and /api/v1/fallback over the 30 days (aligned to days, and
// with partial edge days) and over the last day, first from the attempts
// aggregate, then after the rollup job computed the daily rollups, and checks
// that every answer equals the raw one.
//
//	OTPSCOPE_CHDB_LIB=.cache/chdb/libchdb.so go run ./bench/analytics -events 1000000,10000000
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/otpscope/otpscope/internal/chdb"
	"github.com/otpscope/otpscope/internal/reporter"
	"github.com/otpscope/otpscope/internal/store"
)

var start = time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)

const days = 30

func main() { os.Exit(run()) }

func run() int {
	sizes := flag.String("events", "1000000,10000000", "comma-separated numbers of delivery events")
	calls := flag.Int("calls", 20, "calls per endpoint and window")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	dir, err := os.MkdirTemp("", "otpscope-bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	eng, err := chdb.Start(chdb.Config{Dir: dir, Addr: "127.0.0.1:0", Logger: logger})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer eng.Close()
	ctx := context.Background()

	fmt.Printf("| events | window | endpoint | source | p50 ms | p95 ms |\n|---|---|---|---|---|---|\n")
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		if err := bench(ctx, eng.DSN(), n, *calls, logger); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return 0
}

// generate inserts about n delivery events: OTPs spread uniformly over 30
// days, on four priorities (SMS>VIBER, SMS>VOICE, WHATSAPP>SMS, SMS); the
// primary delivers 88 % of the time, a failure falls back when the priority
// has a second channel, which delivers 90 % of the time. A fifth of the OTPs
// also get a duplicate of their outcome event in a later insert.
func generate(ctx context.Context, db *store.DB, n int) (int, error) {
	otps := int(float64(n) / 2.16)
	const chunk = 500_000
	for lo := 0; lo < otps; lo += chunk {
		hi := min(otps, lo+chunk)
		q := fmt.Sprintf(`INSERT INTO delivery_events (event_id, otp_id, profile_id, channel, status, event_time, received_at, error_code, error_message, source)
SELECT concat('ds-', toString(otp), '-', e.1, '-', e.2), otp, profile, e.1, e.2, e.3, e.3 + toIntervalMillisecond(300),
    if(e.2 IN ('UNDELIVERABLE', 'TIMED_OUT'), concat('tyntec::', e.1, '::', lower(e.2)), ''), '', 'webhook'
FROM (
    SELECT
        reinterpretAsUUID(reverse(unhex(lpad(hex(cityHash64(number, 'otp')), 32, '0')))) AS otp,
        ['prof-register', 'prof-login', 'prof-payment'][number %% 3 + 1] AS profile,
        [['SMS', 'VIBER'], ['SMS', 'VOICE'], ['WHATSAPP', 'SMS'], ['SMS']][cityHash64(number, 1) %% 4 + 1] AS chans,
        toDateTime64('%s', 3, 'UTC') + toIntervalMillisecond(cityHash64(number, 2) %% %d) AS t0,
        cityHash64(number, 3) %% 100 < 88 AS ok1,
        cityHash64(number, 4) %% 100 < 90 AS ok2,
        toIntervalMillisecond(500 + cityHash64(number, 5) %% 15000) AS lat1,
        toIntervalMillisecond(500 + cityHash64(number, 6) %% 9000) AS lat2,
        arrayConcat(
            [(chans[1], 'DISPATCHED', t0), (chans[1], if(ok1, 'DELIVERED', if(cityHash64(number, 7) %% 10 = 0, 'TIMED_OUT', 'UNDELIVERABLE')), t0 + lat1)],
            if(NOT ok1 AND length(chans) = 2,
               [(chans[2], 'DISPATCHED', t0 + lat1 + toIntervalMillisecond(200)), (chans[2], if(ok2, 'DELIVERED', 'UNDELIVERABLE'), t0 + lat1 + toIntervalMillisecond(200) + lat2)],
               [])) AS evs
    FROM numbers(%d, %d)
)
ARRAY JOIN evs AS e`, start.Format("2006-01-02 15:04:05"), days*24*3600*1000, lo, hi-lo)
		if err := db.Conn().Exec(ctx, q); err != nil {
			return 0, fmt.Errorf("generate: %w", err)
		}
	}
	// Duplicates, as a redelivery after JetStream's window would store them.
	if err := db.Conn().Exec(ctx, `INSERT INTO delivery_events (event_id, otp_id, profile_id, channel, status, event_time, received_at, error_code, error_message, source)
SELECT event_id, otp_id, profile_id, channel, status, event_time, received_at, error_code, error_message, source
FROM delivery_events WHERE status != 'DISPATCHED' AND cityHash64(otp_id) % 5 = 0`); err != nil {
		return 0, fmt.Errorf("generate duplicates: %w", err)
	}
	var rows uint64
	if err := db.Conn().QueryRow(ctx, "SELECT count() FROM delivery_events").Scan(&rows); err != nil {
		return 0, err
	}
	return int(rows), nil
}

func bench(ctx context.Context, ownerDSN string, n, calls int, logger *slog.Logger) error {
	admin, err := store.Connect(ctx, ownerDSN, logger)
	if err != nil {
		return err
	}
	name := fmt.Sprintf("bench_%d", n)
	if err := admin.Conn().Exec(ctx, "DROP DATABASE IF EXISTS "+name+" SYNC"); err != nil {
		return err
	}
	if err := admin.Conn().Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return err
	}
	defer admin.Close()
	db, err := store.Open(ctx, store.Config{DSN: ownerDSN + "/" + name}, logger)
	if err != nil {
		return err
	}
	defer db.Close()
	t0 := time.Now()
	rows, err := generate(ctx, db, n)
	if err != nil {
		return err
	}
	var attempts uint64
	_ = db.Conn().QueryRow(ctx, "SELECT count() FROM attempts").Scan(&attempts)
	fmt.Fprintf(os.Stderr, "%d events stored (duplicates included), %d attempt rows, in %s\n", rows, attempts, time.Since(t0).Round(time.Millisecond))

	r := chi.NewRouter()
	reporter.NewAPI(db, logger).Mount(r)
	api := httptest.NewServer(r)
	defer api.Close()

	end := start.AddDate(0, 0, days)
	windows := []struct {
		name     string
		from, to time.Time
	}{
		{"30 d", start, end},
		{"30 d, partial edge days", start.Add(6 * time.Hour), end.Add(-6 * time.Hour)},
		{"1 d", end.AddDate(0, 0, -1), end},
	}
	// The raw answers, then the API before and after the daily rollups.
	rawAnswers := map[string]any{}
	for _, win := range windows {
		for _, ep := range []string{"channels", "fallback"} {
			raw := store.Window{From: win.from, To: win.to, Raw: true}
			var answer any
			p50, p95, err := timeCalls(calls, func() error {
				var err error
				if ep == "channels" {
					answer, err = db.Channels(ctx, raw)
				} else {
					answer, err = db.Fallback(ctx, raw)
				}
				return err
			})
			if err != nil {
				return err
			}
			rawAnswers[win.name+ep] = answer
			fmt.Printf("| %d | %s | /%s | raw events | %.0f | %.0f |\n", rows, win.name, ep, p50, p95)
		}
	}
	timeAPI := func(source string) error {
		for _, win := range windows {
			q := url.Values{"from": {win.from.Format(time.RFC3339)}, "to": {win.to.Format(time.RFC3339)}}.Encode()
			for _, ep := range []string{"channels", "fallback"} {
				var apiBody []byte
				p50, p95, err := timeCalls(calls, func() error {
					resp, err := http.Get(api.URL + "/api/v1/" + ep + "?" + q)
					if err != nil {
						return err
					}
					defer resp.Body.Close()
					apiBody, err = io.ReadAll(resp.Body)
					if resp.StatusCode != http.StatusOK {
						return fmt.Errorf("%s: %s %s", ep, resp.Status, apiBody)
					}
					return err
				})
				if err != nil {
					return err
				}
				fmt.Printf("| %d | %s | /%s | %s | %.0f | %.0f |\n", rows, win.name, ep, source, p50, p95)
				if err := same(ep, apiBody, rawAnswers[win.name+ep]); err != nil {
					return fmt.Errorf("%s: %w", source, err)
				}
			}
		}
		return nil
	}
	if err := timeAPI("API, attempts aggregate"); err != nil {
		return err
	}
	// The generator's inserts are visible once they return: the rollups may
	// trust rows inserted more than a few seconds before their computation.
	store.RollupSlack = 3 * time.Second
	time.Sleep(store.RollupSlack)
	t1 := time.Now()
	rolled, err := db.RefreshRollups(ctx, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "rollup job: %d days in %s\n", len(rolled), time.Since(t1).Round(time.Millisecond))
	t1 = time.Now()
	if rolled, err = db.RefreshRollups(ctx, time.Now()); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "idle rollup job: %d days in %s\n", len(rolled), time.Since(t1).Round(time.Millisecond))
	if err := timeAPI("API, daily rollups"); err != nil {
		return err
	}
	return admin.Conn().Exec(ctx, "DROP DATABASE IF EXISTS "+name+" SYNC")
}

// same checks that the API's answer equals the one computed from raw events.
func same(ep string, apiBody []byte, raw any) error {
	var got, want any
	if ep == "channels" {
		var r reporter.ChannelsResponse
		if err := json.Unmarshal(apiBody, &r); err != nil {
			return err
		}
		got = r.Channels
		want = raw
	} else {
		var r reporter.FallbackResponse
		if err := json.Unmarshal(apiBody, &r); err != nil {
			return err
		}
		got = r.FallbackStats
		want = raw
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		return fmt.Errorf("/%s from aggregates differs from raw events:\n%s\n%s", ep, g, w)
	}
	return nil
}

func timeCalls(n int, call func() error) (p50, p95 float64, err error) {
	if err := call(); err != nil { // warm-up, not counted
		return 0, 0, err
	}
	ds := make([]float64, n)
	for i := range ds {
		t := time.Now()
		if err := call(); err != nil {
			return 0, 0, err
		}
		ds[i] = float64(time.Since(t).Microseconds()) / 1000
	}
	slices.Sort(ds)
	return ds[n/2], ds[min(n-1, int(0.95*float64(n)))], nil
}
