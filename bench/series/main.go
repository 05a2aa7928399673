// Command series times /api/v1/timeseries's reads (store.Timeseries) on a
// database bench/analytics kept (-dir), per zone, step and window length,
// the windows ending at the data's last whole hour: what a zone's clock
// costs where bench/analytics' windows do not go, such as a zone of half
// hours read by the hour, whose every bucket cuts hours. Exactness is the
// tests' (internal/store's grid tests compare with raw answers); this
// times. Build it at two commits to compare them, in turn, on one
// database:
//
//	go run ./bench/series -dir /work/bench-data -cases "Asia/Kolkata:1h:7d,Asia/Kolkata:1h:30d,Asia/Kolkata:24h:90d,Europe/Berlin:24h:90d"
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/otpscope/otpscope/internal/chdb"
	"github.com/otpscope/otpscope/internal/store"
)

func main() { os.Exit(run()) }

type seriesCase struct {
	zone *time.Location
	step time.Duration
	days int
}

func run() int {
	dir := flag.String("dir", "", "the data directory a bench/analytics run kept (-dir there)")
	database := flag.String("database", "bench_100000000", "the database in it (bench_<events>)")
	cases := flag.String("cases", "UTC:1h:7d,Asia/Kolkata:1h:7d,Asia/Kolkata:24h:90d,Europe/Berlin:24h:90d", "comma-separated zone:step:days, such as Asia/Kolkata:1h:7d")
	calls := flag.Int("calls", 5, "reads of each case")
	flag.Parse()
	if *dir == "" || *calls < 1 {
		fmt.Fprintln(os.Stderr, "series: -dir is required, -calls at least 1")
		return 2
	}
	var list []seriesCase
	for _, c := range strings.Split(*cases, ",") {
		sc, err := parseCase(strings.TrimSpace(c))
		if err != nil {
			fmt.Fprintln(os.Stderr, "series: -cases:", err)
			return 2
		}
		list = append(list, sc)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	eng, err := chdb.Start(chdb.Config{Dir: *dir, Addr: "127.0.0.1:0", Logger: logger, BackupDir: filepath.Join(*dir, "backups")})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer eng.Close()
	ctx := context.Background()
	db, err := store.Open(ctx, store.Config{DSN: eng.DSN() + "/" + *database}, logger)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer db.Close()
	var last time.Time
	if err := db.Conn().QueryRow(ctx, "SELECT max(event_time) FROM delivery_events").Scan(&last); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	end := last.Truncate(time.Hour)
	fmt.Printf("| zone | step | window | buckets | p50 ms | max ms |\n|---|---|---|---|---|---|\n")
	for _, c := range list {
		w := store.Window{From: end.AddDate(0, 0, -c.days), To: end}
		var ms []float64
		var buckets int
		for range *calls {
			t := time.Now()
			ts, err := db.Timeseries(ctx, w, c.step, c.zone)
			if err != nil {
				fmt.Fprintf(os.Stderr, "series: %s %v %dd: %v\n", c.zone, c.step, c.days, err)
				return 1
			}
			ms = append(ms, float64(time.Since(t).Microseconds())/1000)
			buckets = len(ts.Start)
		}
		slices.Sort(ms)
		fmt.Printf("| %s | %v | %d d | %d | %.0f | %.0f |\n", c.zone, c.step, c.days, buckets, ms[len(ms)/2], ms[len(ms)-1])
	}
	return 0
}

// parseCase reads zone:step:days ("Asia/Kolkata:1h:7d").
func parseCase(s string) (seriesCase, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return seriesCase{}, fmt.Errorf("%q: want zone:step:days", s)
	}
	zone, err := store.Zone(parts[0])
	if err != nil {
		return seriesCase{}, err
	}
	step, err := time.ParseDuration(parts[1])
	if err != nil {
		return seriesCase{}, fmt.Errorf("%q: %w", s, err)
	}
	days, err := strconv.Atoi(strings.TrimSuffix(parts[2], "d"))
	if err != nil || days < 1 {
		return seriesCase{}, fmt.Errorf("%q: days %q", s, parts[2])
	}
	return seriesCase{zone, step, days}, nil
}
