package poller

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/polltest"
)

// TestWatchWaitsForTheServer starts the view's watch of its bucket while the
// NATS server is down (as while JetStream restarts): the watch is retried,
// not given up — which would end the poller — and once the server is back
// the view follows the bucket.
func TestWatchWaitsForTheServer(t *testing.T) {
	srv := brokertest.NewServer(t)
	b := srv.Broker(t)
	s, err := openStore(t.Context(), b, time.Hour, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.watch(ctx, brokertest.Logger(t))
	}()
	select {
	case <-done:
		t.Fatal("the watch returned while the server was down")
	case <-time.After(500 * time.Millisecond):
	}

	srv.Start()
	data, _ := json.Marshal(Record{OTPID: "otp-1", API: "v4"})
	polltest.Until(t, 30*time.Second, "the record put once the server is back", func() bool {
		_, err := s.kv.Put(t.Context(), "otp-1", data)
		return err == nil
	})
	polltest.Until(t, 30*time.Second, "the view to follow the bucket", func() bool {
		s.mu.RLock()
		defer s.mu.RUnlock()
		return s.view["otp-1"].rec.OTPID == "otp-1"
	})
	cancel()
	<-done
}

// TestFinishedRecordsLeaveTheView: a finished record leaves the view, which
// would otherwise hold every OTP since the process started. Its mark keeps
// discovery and late watch updates from tracking it again until its OTP is
// past expiry plus grace; the record itself stays readable in the bucket.
func TestFinishedRecordsLeaveTheView(t *testing.T) {
	b := brokertest.NewServer(t).Broker(t)
	grace := time.Minute
	s, err := openStore(t.Context(), b, time.Hour, grace)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go s.watch(ctx, brokertest.Logger(t))
	<-s.ready

	expires := time.Now().Add(5 * time.Minute).UTC().Truncate(time.Millisecond)
	const n = 50
	var tracked Record
	for i := range n {
		id := fmt.Sprintf("otp-%02d", i)
		r, err := s.update(t.Context(), id, func(r *Record, exists bool) error {
			*r = Record{OTPID: id, API: "v4", Expires: expires}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			tracked = r
		}
	}
	// A tracked record as it was before it finished: the watch may deliver it
	// after the finish was remembered.
	before, err := s.kv.Get(t.Context(), "otp-00")
	if err != nil {
		t.Fatal(err)
	}
	for i := range n - 1 { // otp-49 stays tracked
		id := fmt.Sprintf("otp-%02d", i)
		if _, err := s.update(t.Context(), id, func(r *Record, _ bool) error {
			r.Done, r.DoneReason, r.Resends = true, "final", 1
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	s.remember("otp-00", tracked, before.Revision())

	polltest.Until(t, 10*time.Second, "the view to follow the bucket", func() bool {
		s.mu.RLock()
		defer s.mu.RUnlock()
		return len(s.view) == 1 && len(s.finished) == n-1
	})
	if recs := s.snapshot(); len(recs) != 1 || recs[0].OTPID != "otp-49" {
		t.Errorf("snapshot = %+v; want only otp-49 tracked", recs)
	}
	if r, ok := s.cached("otp-00"); !ok || !r.Done {
		t.Errorf("cached(otp-00) = %+v, %v; want a finished mark", r, ok)
	}
	r, ok, err := s.current(t.Context(), "otp-00")
	if err != nil || !ok || !r.Done || r.Resends != 1 || !r.Expires.Equal(expires) {
		t.Errorf("current(otp-00) = %+v, %v, %v; want the whole finished record from the bucket", r, ok, err)
	}
	if _, ok, err := s.current(t.Context(), "otp-unknown"); ok || err != nil {
		t.Errorf("current(otp-unknown) = %v, %v; want none", ok, err)
	}

	// Past expiry plus grace, the marks go.
	s.mu.Lock()
	s.forgetMarks(expires.Add(grace + time.Second))
	s.mu.Unlock()
	s.mu.RLock()
	marks := len(s.finished)
	s.mu.RUnlock()
	if marks != 0 {
		t.Errorf("%d finished marks past expiry plus grace; want 0", marks)
	}
	if _, ok := s.cached("otp-00"); ok {
		t.Error("otp-00 still cached past expiry plus grace")
	}
}

// TestMarksForgottenWithoutCycles: a replica that does not lead runs no
// cycle (snapshot), yet its view follows every finish; it forgets the
// marks as it adds them, so they do not grow with every OTP either.
func TestMarksForgottenWithoutCycles(t *testing.T) {
	every := forgetEvery
	forgetEvery = 0
	t.Cleanup(func() { forgetEvery = every })
	b := brokertest.NewServer(t).Broker(t)
	s, err := openStore(t.Context(), b, time.Hour, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	expired := time.Now().Add(-2 * time.Minute) // past expiry plus grace already
	for i := range 20 {
		id := fmt.Sprintf("otp-%02d", i)
		if _, err := s.update(t.Context(), id, func(r *Record, _ bool) error {
			*r = Record{OTPID: id, API: "v4", Expires: expired, Done: true, DoneReason: "final"}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	s.mu.RLock()
	marks, tracked := len(s.finished), len(s.view)
	s.mu.RUnlock()
	if marks != 0 || tracked != 0 {
		t.Errorf("%d marks and %d tracked records after 20 finished OTPs past expiry plus grace; want none", marks, tracked)
	}
	if r, ok, err := s.current(t.Context(), "otp-07"); err != nil || !ok || !r.Done {
		t.Errorf("current(otp-07) = %+v, %v, %v; want the finished record from the bucket", r, ok, err)
	}
}

// TestBusyCyclesFollowEachOther: a cycle that uses all its time (a poller
// spending its whole budget on a backlog) is followed by the next at once,
// not a whole interval later, which left half the budget unspent.
func TestBusyCyclesFollowEachOther(t *testing.T) {
	sched, err := cron.ParseStandard("@every 1s")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	type run struct{ start, end time.Time }
	var runs []run
	done := make(chan struct{})
	go func() {
		defer close(done)
		onSchedule(ctx, sched, func(cctx context.Context) {
			r := run{start: time.Now()}
			if len(runs)%2 == 1 {
				time.Sleep(1500 * time.Millisecond) // past its deadline
			} else {
				<-cctx.Done() // the whole time until the next tick
			}
			r.end = time.Now()
			runs = append(runs, r)
			if len(runs) == 4 {
				cancel()
			}
		})
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("four cycles did not run within 30 s")
	}
	for i := 1; i < len(runs); i++ {
		if gap := runs[i].start.Sub(runs[i-1].end); gap > 500*time.Millisecond {
			t.Errorf("cycle %d began %v after cycle %d ended; want at once (the interval is 1 s)", i+1, gap.Round(time.Millisecond), i)
		}
	}
}
