// Command console measures what a console tab left open costs the
// all-in-one: the process's CPU over a while with no tab, then with one
// headless Chromium tab on the Overview (it reads its window again every
// 5 s), on a data directory holding months of generated events up to now,
// with the simulator's traffic. Given several builds it runs them in turn,
// round after round, on the same data: the build before a change is the
// baseline of the same run.
//
//	OTPSCOPE_CHDB_LIB=.cache/chdb/libchdb.so go run ./bench/console -events 11100000 -dir /work/console-bench \
//	    -otpscope /tmp/otpscope-before,/tmp/otpscope-after -rounds 3
package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/prometheus/procfs"

	"github.com/otpscope/otpscope/bench/internal/history"
	"github.com/otpscope/otpscope/internal/console/browsertest"
	"github.com/otpscope/otpscope/internal/store"
)

func main() { os.Exit(run()) }

func run() int {
	events := flag.Int("events", 11_100_000, "delivery events over the 90 days up to now, generated into -dir when it has none (a kept directory is topped up to now at the same density)")
	dir := flag.String("dir", "", "the all-in-one's data directory, kept between runs (default: a temporary one, removed)")
	binaries := flag.String("otpscope", "", "comma-separated otpscope binaries to measure in turn (default: ./cmd/otpscope of this tree, built)")
	rounds := flag.Int("rounds", 3, "rounds; each runs every binary once")
	measure := flag.Duration("measure", time.Minute, "how long the CPU is measured, without the tab and with it")
	window := flag.String("range", "1h", "the Overview's window: 1h, 24h or 7d")
	flag.Parse()
	ctx := context.Background()
	chromium := browsertest.Find()
	if chromium == "" {
		fmt.Fprintln(os.Stderr, "no Chromium: apt-get install chromium, or set "+browsertest.EnvChromium)
		return 2
	}
	work, err := os.MkdirTemp("", "otpscope-console-bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(work)
	data := *dir
	if data == "" {
		data = filepath.Join(work, "data")
	}
	bins := strings.Split(*binaries, ",")
	if *binaries == "" {
		bins = []string{filepath.Join(work, "otpscope")}
		if out, err := exec.Command("go", "build", "-o", bins[0], "./cmd/otpscope").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build ./cmd/otpscope: %v\n%s", err, out)
			return 1
		}
	}
	if err := fill(ctx, data, *events); err != nil {
		fmt.Fprintln(os.Stderr, "fill:", err)
		return 1
	}
	fmt.Printf("| round | build | CPU s/min, no tab | CPU s/min, one tab | the tab's | /channels answers | their mean ms |\n|---|---|---|---|---|---|---|\n")
	results := map[string][]float64{}
	for r := 1; r <= *rounds; r++ {
		for _, bin := range bins {
			m, err := measureOnce(ctx, bin, data, work, chromium, *window, *measure)
			if err != nil {
				fmt.Fprintf(os.Stderr, "%s: %v\n", bin, err)
				return 1
			}
			perMin := func(s float64) float64 { return s * float64(time.Minute) / float64(*measure) }
			idle, tab := perMin(m.idle), perMin(m.tab)
			fmt.Printf("| %d | %s | %.1f | %.1f | %.1f | %d | %.0f |\n", r, filepath.Base(bin), idle, tab, tab-idle, m.loads, m.channelsMean*1000)
			results[bin] = append(results[bin], tab-idle)
		}
	}
	for _, bin := range bins {
		fmt.Printf("\n%s: the tab's CPU s/min, median of %d: %.1f\n", filepath.Base(bin), len(results[bin]), median(results[bin]))
	}
	return 0
}

// fill gives the data directory's engine n events over the 90 days up to a
// minute ago, or, when it has some, the days since its newest at the same
// density, so that the console's windows hold traffic.
func fill(ctx context.Context, dir string, n int) error {
	const span = 90 * 24 * time.Hour
	db, err := store.Open(ctx, store.Config{DataDir: dir, Listen: "127.0.0.1:0"}, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer db.Close()
	var newest time.Time
	if err := db.Conn().QueryRow(ctx, "SELECT max(event_time) FROM delivery_events").Scan(&newest); err != nil {
		return err
	}
	end := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
	from, count := end.Add(-span), n
	if newest.After(from) {
		from = newest.Truncate(time.Second).Add(time.Second)
		count = int(float64(n) * float64(end.Sub(from)) / float64(span))
	}
	if count <= 0 || !end.After(from) {
		return nil
	}
	t0 := time.Now()
	// The OTPs' ids follow the seed: another for each top-up.
	rows, err := history.Generate(ctx, db, count, from, end.Sub(from), int(from.Unix()))
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "%d events in %s (%s to %s), generated in %s\n", rows, dir, from.Format(time.RFC3339), end.Format(time.RFC3339), time.Since(t0).Round(time.Second))
	return nil
}

type measurement struct {
	idle, tab    float64 // CPU seconds over the measure
	loads        int     // /channels answers during the tab's measure
	channelsMean float64 // their mean time, s
}

// measureOnce runs bin as the all-in-one with the simulator on data, waits
// for the rollup job's first run, and measures its CPU without a tab and
// with one.
func measureOnce(ctx context.Context, bin, data, work, chromium, window string, measure time.Duration) (measurement, error) {
	var m measurement
	ports := make([]string, 5)
	for i := range ports {
		ports[i] = freeAddr()
	}
	logPath := filepath.Join(work, filepath.Base(bin)+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return m, err
	}
	defer logFile.Close()
	cmd := exec.Command(bin, "--simulate", "--data-dir", data,
		"--listen", ports[0], "--admin-listen", ports[1], "--nats-listen", ports[2], "--clickhouse-listen", ports[3], "--simulate-listen", ports[4])
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return m, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(2 * time.Minute):
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	admin := "http://" + ports[1]
	// Ready, and the rollup job has run once: the first run over fresh
	// data rolls up every hour (minutes at 10 M events).
	if err := until(10*time.Minute, exited, func() bool { return rollupRuns(admin) >= 1 }); err != nil {
		return m, fmt.Errorf("waiting for the rollup job's first run (%s): %w", logPath, err)
	}
	proc, err := procfs.NewProc(cmd.Process.Pid)
	if err != nil {
		return m, err
	}
	cpu := func() float64 {
		st, err := proc.Stat()
		if err != nil {
			return 0
		}
		return st.CPUTime()
	}
	c0 := cpu()
	time.Sleep(measure)
	m.idle = cpu() - c0

	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, browsertest.Options(chromium, filepath.Join(work, "chromium"))...)
	defer cancelAlloc()
	tab, cancelTab := chromedp.NewContext(actx)
	defer cancelTab()
	if err := chromedp.Do(tab, chromedp.Navigate(admin+"/console/#overview?range="+window), chromedp.WaitReady("#page-overview[data-loaded]")); err != nil {
		return m, fmt.Errorf("the console: %w", err)
	}
	sum0, n0 := channelsAnswers(admin)
	c0 = cpu()
	time.Sleep(measure)
	m.tab = cpu() - c0
	sum1, n1 := channelsAnswers(admin)
	if m.loads = n1 - n0; m.loads > 0 {
		m.channelsMean = (sum1 - sum0) / float64(m.loads)
	}
	return m, nil
}

// until polls cond every second until it holds, the process exits, or
// timeout passes.
func until(timeout time.Duration, exited <-chan error, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		select {
		case err := <-exited:
			return fmt.Errorf("otpscope exited: %v", err)
		case <-time.After(time.Second):
		}
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
	}
	return nil
}

// metric is the value of the /metrics line that begins with prefix, or 0.
func metric(admin, prefix string) float64 {
	resp, err := http.Get(admin + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			v, _ := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			_, _ = io.Copy(io.Discard, resp.Body)
			return v
		}
	}
	return 0
}

func rollupRuns(admin string) int {
	return int(metric(admin, `otpscope_reports_total{kind="rollups",outcome="ok"}`))
}

// channelsAnswers are the seconds /api/v1/channels took in all and its count.
func channelsAnswers(admin string) (float64, int) {
	const h = `{handler="/api/v1/channels",listener="admin",method="get"}`
	return metric(admin, "otpscope_http_request_duration_seconds_sum"+h), int(metric(admin, "otpscope_http_request_duration_seconds_count"+h))
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func median(xs []float64) float64 {
	s := slices.SortedFunc(slices.Values(xs), cmp.Compare[float64])
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
