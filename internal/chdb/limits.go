package chdb

import (
	"fmt"
	"strconv"
	"time"
)

// Limits bound every statement on the engine's read-only connection, which
// serves every client of the endpoint but the owner. They are settings of
// that connection, and readonly=1 keeps clients from changing them (a
// client's own max_execution_time and the like are ignored). Zero leaves a
// limit off.
type Limits struct {
	// MaxExecutionTime stops a query after this long (max_execution_time).
	MaxExecutionTime time.Duration
	// MaxMemoryUsage stops a query that would use more memory
	// (max_memory_usage).
	MaxMemoryUsage uint64
	// MaxResultRows and MaxResultBytes stop a query whose result grows
	// larger (max_result_rows, max_result_bytes, result_overflow_mode=throw).
	MaxResultRows  uint64
	MaxResultBytes uint64
	// MaxRowsToRead stops a query that reads more rows from tables
	// (max_rows_to_read).
	MaxRowsToRead uint64
}

// DefaultLimits are the reader connection's limits unless WithReaderLimits
// says otherwise: ten seconds, 1 GiB of memory, a million result rows or
// 100 MiB of result, no bound on rows read (time bounds that).
var DefaultLimits = Limits{
	MaxExecutionTime: 10 * time.Second,
	MaxMemoryUsage:   1 << 30,
	MaxResultRows:    1_000_000,
	MaxResultBytes:   100 << 20,
}

// args are the limits as chdb_connect arguments.
func (l Limits) args() []string {
	var out []string
	add := func(name string, v uint64) {
		if v > 0 {
			out = append(out, fmt.Sprintf("--%s=%d", name, v))
		}
	}
	if l.MaxExecutionTime > 0 {
		out = append(out, "--max_execution_time="+strconv.FormatFloat(l.MaxExecutionTime.Seconds(), 'f', -1, 64))
		out = append(out, "--timeout_overflow_mode=throw")
	}
	add("max_memory_usage", l.MaxMemoryUsage)
	add("max_result_rows", l.MaxResultRows)
	add("max_result_bytes", l.MaxResultBytes)
	if l.MaxResultRows > 0 || l.MaxResultBytes > 0 {
		out = append(out, "--result_overflow_mode=throw")
	}
	add("max_rows_to_read", l.MaxRowsToRead)
	if l.MaxRowsToRead > 0 {
		out = append(out, "--read_overflow_mode=throw")
	}
	return out
}
