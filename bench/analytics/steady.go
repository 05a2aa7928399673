package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/otpscope/otpscope/bench/internal/history"
	"github.com/otpscope/otpscope/internal/store"
)

// steadyOptions configure steady; span 0 skips it.
type steadyOptions struct {
	span, every, maxLag time.Duration
}

// steady is production under traffic: for o.span it stores the new hour's
// events again second by second (received now, as redeliveries: they mark
// and touch what new traffic would, and change no answer), runs the rollup
// job every o.every, and reads the 24 h up to the new hour's end back to
// back, exact and with max_lag o.maxLag in turn. Every answer must equal
// the one read before; it prints the reads' p50 and p95, how far behind
// the lagged ones' as_of was at most, and the job's runs.
func steady(ctx context.Context, db *store.DB, apiURL string, rows int, end time.Time, o steadyOptions) error {
	endpoints := []string{"channels", "fallback", "timeseries"}
	from, to := end.Add(time.Hour-24*time.Hour), end.Add(time.Hour)
	q := windowQuery(from, to)
	before := map[string][]byte{}
	for _, ep := range endpoints {
		b, err := getBody(apiURL + "/api/v1/" + ep + "?" + q.Encode())
		if err != nil {
			return err
		}
		before[ep] = b
	}
	lq := windowQuery(from, to)
	lq.Set("max_lag", o.maxLag.String())

	ctx, cancel := context.WithTimeout(ctx, o.span)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var bgErr error
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if bgErr == nil && ctx.Err() == nil {
			bgErr = err
		}
	}
	var inserted int
	wg.Add(2)
	go func() { // the traffic: one second of the new hour every second
		defer wg.Done()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for k := 0; ; k++ {
			sec := end.Add(time.Duration(k%3600) * time.Second)
			if err := storeAgain(ctx, db, fmt.Sprintf("event_time >= %s AND event_time < %s", history.SQLTime(sec), history.SQLTime(sec.Add(time.Second)))); err != nil {
				fail(fmt.Errorf("steady traffic: %w", err))
				return
			}
			inserted++
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	var runs []float64
	go func() { // the job, on its schedule
		defer wg.Done()
		tick := time.NewTicker(o.every)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			t := time.Now()
			if _, err := db.RefreshRollups(ctx); err != nil {
				fail(fmt.Errorf("steady job: %w", err))
				return
			}
			mu.Lock()
			runs = append(runs, float64(time.Since(t).Milliseconds()))
			mu.Unlock()
		}
	}()

	exact, lagged := map[string][]float64{}, map[string][]float64{}
	var behind time.Duration
	read := func(ep string, query url.Values, into map[string][]float64) error {
		t := time.Now()
		body, err := getBody(apiURL + "/api/v1/" + ep + "?" + query.Encode())
		if err != nil {
			return err
		}
		d := time.Since(t)
		asOf, err := sameButAsOf(ep, body, before[ep])
		if err != nil {
			return err
		}
		into[ep] = append(into[ep], float64(d.Microseconds())/1000)
		if query.Has("max_lag") {
			behind = max(behind, t.Sub(asOf))
		}
		return nil
	}
	var readErr error
	for ctx.Err() == nil && readErr == nil {
		for _, ep := range endpoints {
			if readErr = read(ep, q, exact); readErr == nil {
				readErr = read(ep, lq, lagged)
			}
			if readErr != nil {
				break
			}
		}
	}
	cancel()
	wg.Wait()
	if readErr != nil {
		return readErr
	}
	if bgErr != nil {
		return bgErr
	}
	name := fmt.Sprintf("last 24 h under steady traffic (%d s replayed), the job every %v", inserted, o.every)
	for _, ep := range endpoints {
		for _, r := range []struct {
			what string
			ds   []float64
		}{{"API, exact", exact[ep]}, {fmt.Sprintf("API, max_lag=%v (as_of at most %v behind)", o.maxLag, behind.Round(time.Second)), lagged[ep]}} {
			p50, p95 := percentiles(r.ds)
			fmt.Printf("| %d | %s | /%s | %s, %d calls | %.0f | %.0f |\n", rows, name, ep, r.what, len(r.ds), p50, p95)
		}
	}
	p50, _ := percentiles(runs)
	fmt.Printf("| %d | rollup job | every %v under steady traffic: %d runs | median, max | %.0f | %.0f |\n", rows, o.every, len(runs), p50, slices.Max(append(runs, 0)))
	fmt.Fprintf(os.Stderr, "steady: %d s of traffic replayed, %d job runs, lagged reads at most %v behind\n", inserted, len(runs), behind.Round(time.Millisecond))
	if behind > o.maxLag {
		return fmt.Errorf("steady: a lagged answer was %v behind, more than max_lag %v", behind, o.maxLag)
	}
	return nil
}
