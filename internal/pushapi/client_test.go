package pushapi_test

import (
	"errors"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/pushapi"
	"github.com/otpscope/otpscope/internal/tyntecsim"
	"github.com/otpscope/otpscope/internal/tyntecsim/simtest"
)

// TestKeyOfEachRequest: each request sends the key apiKey gives at that
// moment (the poller's, read again from its file after a rotation), and a
// refused key is a StatusError 401, not "not found".
func TestKeyOfEachRequest(t *testing.T) {
	_, url := simtest.Start(t, tyntecsim.Config{Seed: 1, APIKeys: []string{"new-push-key"}})
	key := "old-push-key"
	c, err := pushapi.New(url, func() string { return key }, 5*time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	const uuid = "0f8fad5b-d9cb-469f-a165-70867728950e"
	var se *pushapi.StatusError
	if _, err := c.Get(t.Context(), uuid); !errors.As(err, &se) || se.Status != 401 {
		t.Fatalf("with a key the API refuses: %v; want a StatusError 401", err)
	}
	key = "new-push-key"
	if _, err := c.Get(t.Context(), uuid); !errors.Is(err, pushapi.ErrNotFound) {
		t.Fatalf("with the rotated key: %v; want ErrNotFound for an unknown uuid", err)
	}
	for _, id := range []string{"..", ".", ""} { // would name another path
		if _, err := c.Get(t.Context(), id); err == nil || errors.Is(err, pushapi.ErrNotFound) {
			t.Errorf("Get(%q) = %v; want refused before any request", id, err)
		}
	}
	if _, err := pushapi.New(url, func() string { return "" }, time.Second, nil); err == nil {
		t.Error("New with an empty key succeeded")
	}
}
