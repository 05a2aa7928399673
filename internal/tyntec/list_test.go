package tyntec_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/tyntec"
)

// listServer answers GET /2fa/v4/otp with n OTPs and GET /2fa/v4/otp/{id}
// with one of body bytes; on the first list request, with cut, it sends
// half the list and drops the connection. It counts each path's requests.
type listServer struct {
	n, body int
	cut     bool
	// pause, when set, comes between ten parts of the list; stall, on
	// the first list request, before its second half.
	pause, stall time.Duration
	lists        atomic.Int32
	gets         atomic.Int32
}

func (s *listServer) list() []byte {
	otps := make([]tyntec.OTP, s.n)
	for i := range otps {
		otps[i] = tyntec.OTP{OTPID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i), OTPStatus: "ACTIVE", To: "+4917000000",
			OTPCreated: time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC), OTPExpire: time.Date(2026, 12, 6, 0, 5, 0, 0, time.UTC)}
	}
	b, _ := json.Marshal(otps)
	return b
}

func (s *listServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/2fa/v4/otp" {
		s.gets.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"otpId":"x","to":"%0*d"}`, s.body, 0)
		return
	}
	body := s.list()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	first := s.lists.Add(1) == 1
	if s.pause > 0 || (first && s.stall > 0) {
		parts := 10
		for i := range parts {
			_, _ = w.Write(body[i*len(body)/parts : (i+1)*len(body)/parts])
			w.(http.Flusher).Flush()
			if first && i == parts/2 {
				time.Sleep(s.stall)
			}
			time.Sleep(s.pause)
		}
		return
	}
	if first && s.cut {
		_, _ = w.Write(body[:len(body)/2])
		w.(http.Flusher).Flush()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	_, _ = w.Write(body)
}

func newListClient(t *testing.T, s *listServer) *tyntec.Client {
	t.Helper()
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	c, err := tyntec.New(tyntec.Config{BaseURL: srv.URL, APIKey: "k", RateLimit: 1000, MaxRetries: 2, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond,
		Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestListReadAsItArrives: GET /2fa/v4/otp lists every OTP tyntec keeps,
// past the bound of an answer read whole; it is read element by element,
// up to a bound of its own, past which it is not asked again (the same
// answer would come). One cut part-way is asked again, and the list holds
// each OTP once.
func TestListReadAsItArrives(t *testing.T) {
	tyntec.SetBounds(t, 16<<10, 1<<20) // a list of 1,000 OTPs is ~190 KiB

	s := &listServer{n: 1000, body: 32 << 10}
	c := newListClient(t, s)
	list, err := c.ListOTPs(t.Context(), tyntec.OTPFilter{})
	if err != nil || len(list) != 1000 || list[999].OTPID != "00000000-0000-4000-8000-000000000999" {
		t.Fatalf("ListOTPs past the whole answer's bound = %d OTPs, %v; want the 1,000", len(list), err)
	}
	if _, err := c.GetOTP(t.Context(), "x"); !errors.Is(err, tyntec.ErrTooLarge) || s.gets.Load() != 1 {
		t.Errorf("GetOTP of an answer past its bound = %v after %d requests; want ErrTooLarge after 1", err, s.gets.Load())
	}

	s = &listServer{n: 10000} // ~1.9 MiB
	c = newListClient(t, s)
	if _, err := c.ListOTPs(t.Context(), tyntec.OTPFilter{}); !errors.Is(err, tyntec.ErrTooLarge) || s.lists.Load() != 1 {
		t.Errorf("ListOTPs past the list's bound = %v after %d requests; want ErrTooLarge after 1", err, s.lists.Load())
	}

	s = &listServer{n: 1000, cut: true}
	c = newListClient(t, s)
	seen := map[string]int{}
	n := 0
	begins := 0
	err = c.EachOTP(t.Context(), tyntec.OTPFilter{}, func() { begins++ }, func(o tyntec.OTP) { seen[o.OTPID]++; n++ })
	if err != nil || s.lists.Load() != 2 || len(seen) != 1000 || n <= 1000 || begins != 2 {
		t.Errorf("EachOTP with the first answer cut: %v after %d requests, %d begins, %d OTPs (%d handed); want nil after 2, 2 begins, the 1,000, some handed twice", err, s.lists.Load(), begins, len(seen), n)
	}
	s = &listServer{n: 1000, cut: true}
	c = newListClient(t, s)
	if list, err := c.ListOTPs(t.Context(), tyntec.OTPFilter{}); err != nil || len(list) != 1000 || s.lists.Load() != 2 {
		t.Errorf("ListOTPs with the first answer cut = %d OTPs, %v after %d requests; want the 1,000 once each after 2", len(list), err, s.lists.Load())
	}
}

// TestListTimeoutIsIdle: a list that keeps arriving may take longer than
// an attempt's timeout in all; one that stops arriving for the timeout is
// asked for again.
func TestListTimeoutIsIdle(t *testing.T) {
	s := &listServer{n: 1000, pause: 60 * time.Millisecond} // 600 ms in all, timeout 200 ms
	c := newListClient(t, s)
	if list, err := c.ListOTPs(t.Context(), tyntec.OTPFilter{}); err != nil || len(list) != 1000 || s.lists.Load() != 1 {
		t.Errorf("a list arriving for 600 ms = %d OTPs, %v after %d requests; want the 1,000 after 1", len(list), err, s.lists.Load())
	}
	s = &listServer{n: 1000, stall: 500 * time.Millisecond}
	c = newListClient(t, s)
	if list, err := c.ListOTPs(t.Context(), tyntec.OTPFilter{}); err != nil || len(list) != 1000 || s.lists.Load() != 2 {
		t.Errorf("a list stalled 500 ms half-way, then whole = %d OTPs, %v after %d requests; want the 1,000 after 2", len(list), err, s.lists.Load())
	}
}
