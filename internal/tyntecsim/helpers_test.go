package tyntecsim_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/otpscope/otpscope/internal/events"
)

// received is one webhook as the receiver saw it.
type received struct {
	ds     events.DeliveryStatus
	raw    []byte
	header http.Header
}

// receiver is a webhook endpoint that records what it gets and answers
// with status(n) for the n-th request (default 200).
type receiver struct {
	mu     sync.Mutex
	got    []received
	n      int
	status func(n int) int
}

func newReceiver(t testing.TB, status func(n int) int) (*receiver, string) {
	t.Helper()
	rc := &receiver{status: status}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.n++
		code := http.StatusOK
		if rc.status != nil {
			code = rc.status(rc.n)
		}
		if code >= 200 && code < 300 {
			var ds events.DeliveryStatus
			if err := json.Unmarshal(raw, &ds); err != nil {
				t.Errorf("webhook body %q: %v", raw, err)
			}
			rc.got = append(rc.got, received{ds: ds, raw: raw, header: r.Header.Clone()})
		}
		rc.mu.Unlock()
		w.WriteHeader(code)
	}))
	t.Cleanup(srv.Close)
	return rc, srv.URL
}

func (rc *receiver) all() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

func (rc *receiver) requests() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.n
}

// byOTP groups received webhooks by OTP ID, in arrival order.
func byOTP(rs []received) map[string][]events.DeliveryStatus {
	out := map[string][]events.DeliveryStatus{}
	for _, r := range rs {
		out[r.ds.OTPID] = append(out[r.ds.OTPID], r.ds)
	}
	return out
}
