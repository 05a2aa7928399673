//go:build probe

package chdb

import (
	"fmt"
	"os"
	"sync"
	"testing"
	"time"
)

func TestProbeConcurrent(t *testing.T) {
	e, err := Open(os.Getenv("PROBE_DIR"))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	args := []string{"--path=" + e.dir, "--readonly=1"}
	a, _, err := connect(args)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := connect(args)
	if err != nil {
		t.Fatal(err)
	}
	sqlb, _ := os.ReadFile(os.Getenv("PROBE_Q"))
	q := "USE " + os.Getenv("PROBE_DB") + "; " + string(sqlb)
	run := func(c *conn) time.Duration {
		t0 := time.Now()
		r := c.query(q, "Null", nil)
		if r.hasError {
			t.Fatal(r.errorMessage)
		}
		return time.Since(t0)
	}
	for range 2 {
		run(a)
	}
	for i := range 5 {
		t0 := time.Now()
		d1 := run(a)
		d2 := run(b)
		serial := time.Since(t0)
		t0 = time.Now()
		var wg sync.WaitGroup
		var c1, c2 time.Duration
		wg.Add(2)
		go func() { defer wg.Done(); c1 = run(a) }()
		go func() { defer wg.Done(); c2 = run(b) }()
		wg.Wait()
		par := time.Since(t0)
		fmt.Printf("%d serial %v (%v + %v)  parallel %v (%v, %v)\n", i, serial.Round(time.Millisecond), d1.Round(time.Millisecond), d2.Round(time.Millisecond), par.Round(time.Millisecond), c1.Round(time.Millisecond), c2.Round(time.Millisecond))
	}
}
