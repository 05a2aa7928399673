package sink

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// TestIsSpaceError: the checks for broken parts run after failures of
// disk space only, typed or as the HTTP endpoint's text.
func TestIsSpaceError(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&clickhouse.Exception{Code: 243, CodeName: "NOT_ENOUGH_SPACE", Message: "Cannot reserve 1.00 MiB, not enough space"}, true},
		{errors.New("insert 340 rows into delivery_events: batch sendStreamQuery: [HTTP 500] code: 243, message: Cannot reserve 1.00 MiB, not enough space. (NOT_ENOUGH_SPACE) (version 26.7.2.1)"), true},
		{fmt.Errorf("insert: %w", errors.New("code: 76, message: Cannot open file /data/tmp_insert_1/data.bin, errno: 28, strerror: No space left on device")), true},
		{&clickhouse.Exception{Code: 460, CodeName: "CANNOT_CREATE_TIMER", Message: "Failed to create thread timer, errno: 24, strerror: Too many open files"}, false},
		{&clickhouse.Exception{Code: 252, CodeName: "TOO_MANY_PARTS", Message: "Too many parts"}, false},
		{&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, false},
	} {
		if got := isSpaceError(tc.err); got != tc.want {
			t.Errorf("isSpaceError(%v) = %v; want %v", tc.err, got, tc.want)
		}
	}
}

// A refused sink setting names its flag: "positive batch limits and flush
// interval are required" named none of the four.
func TestValidateNamesTheFlag(t *testing.T) {
	ok := Config{Durable: "otpscope-sink", MaxRows: 10, MaxBytes: 10, FlushInterval: time.Second, AckWait: time.Minute}
	if err := ok.Validate(); err != nil {
		t.Fatalf("Validate(%+v) = %v; want ok", ok, err)
	}
	for flag, change := range map[string]func(*Config){
		"sink-batch-rows":     func(c *Config) { c.MaxRows = 0 },
		"sink-batch-bytes":    func(c *Config) { c.MaxBytes = -1 },
		"sink-flush-interval": func(c *Config) { c.FlushInterval = 0 },
		"sink-ack-wait":       func(c *Config) { c.AckWait = time.Second },
	} {
		c := ok
		change(&c)
		if err := c.Validate(); err == nil || !strings.HasPrefix(err.Error(), flag+" ") {
			t.Errorf("%s out of range: Validate() = %v; want it refused, naming --%s", flag, err, flag)
		}
	}
}
