package chdb_test

import (
	"net/http"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/chdb"
	"github.com/otpscope/otpscope/internal/chdb/chdbtest"
)

func TestObserveHearsEveryQuery(t *testing.T) {
	var mu sync.Mutex
	var heard []string
	srv := chdbtest.ServeConfig(t, chdb.HandlerConfig{Observe: func(guest bool, outcome string, _ time.Duration) {
		who := "owner"
		if guest {
			who = "guest"
		}
		mu.Lock()
		heard = append(heard, who+" "+outcome)
		mu.Unlock()
	}})
	for _, u := range []string{
		srv.DSN + "/?query=" + url.QueryEscape("SELECT 1"),                                       // the owner
		"http://" + srv.Addr + "/?query=" + url.QueryEscape("SELECT 1"),                          // a guest
		"http://" + srv.Addr + "/?query=" + url.QueryEscape("SELECT * FROM file('/etc/passwd')"), // refused
		"http://" + srv.Addr + "/?query=" + url.QueryEscape("SELECT no_such_column"),             // an error
	} {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"owner ok", "guest ok", "guest refused", "guest error"}; !slices.Equal(heard, want) {
		t.Errorf("Observe heard %q; want %q", heard, want)
	}
}
