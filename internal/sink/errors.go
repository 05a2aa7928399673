package sink

import (
	"errors"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
)

// rowCodes are the ClickHouse errors that blame the data of an insert — a
// value the table's types reject — and not the server: only these may
// dead-letter a row, and only after the row failed alone. The list is an
// allowlist on purpose: an error the sink does not know (disk full, too many
// open files, memory, too many parts, a timeout, a new code) is the store's
// health and is retried for as long as it takes, so that no acknowledged
// event is parked because ClickHouse was unwell.
var rowCodes = map[int32]string{
	6:   "CANNOT_PARSE_TEXT",
	25:  "CANNOT_PARSE_ESCAPE_SEQUENCE",
	26:  "CANNOT_PARSE_QUOTED_STRING",
	27:  "CANNOT_PARSE_INPUT_ASSERTION_FAILED",
	38:  "CANNOT_PARSE_DATE",
	41:  "CANNOT_PARSE_DATETIME",
	43:  "ILLEGAL_TYPE_OF_ARGUMENT",
	44:  "ILLEGAL_COLUMN",
	53:  "TYPE_MISMATCH",
	69:  "ARGUMENT_OUT_OF_BOUND",
	70:  "CANNOT_CONVERT_TYPE",
	72:  "CANNOT_PARSE_NUMBER",
	117: "INCORRECT_DATA",
	131: "TOO_LARGE_STRING_SIZE",
	190: "SIZES_OF_ARRAYS_DONT_MATCH",
	321: "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE",
	349: "CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN",
	376: "CANNOT_PARSE_UUID",
	377: "ILLEGAL_SYNTAX_FOR_DATA_TYPE",
	407: "DECIMAL_OVERFLOW",
	467: "CANNOT_PARSE_BOOL",
	469: "VIOLATED_CONSTRAINT",
	691: "UNKNOWN_ELEMENT_OF_ENUM",
}

// Error classes, the label of otpscope_sink_insert_failures_total.
const (
	classRow     = "row"     // the data: a row error of rowCodes
	classServer  = "server"  // ClickHouse answered with any other exception
	classNetwork = "network" // no answer: connection refused or lost, timeout
)

// isRowError says whether err blames the rows of the insert: a ClickHouse
// exception of rowCodes, or a value the client could not convert to its
// column's type.
func isRowError(err error) bool {
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		_, ok := rowCodes[ex.Code]
		return ok
	}
	var conv *column.ColumnConverterError
	return errors.As(err, &conv)
}

// errorClass names the kind of an insert error for the metrics.
func errorClass(err error) string {
	var ex *clickhouse.Exception
	switch {
	case isRowError(err):
		return classRow
	case errors.As(err, &ex):
		return classServer
	default:
		return classNetwork
	}
}

// isSpaceError says whether err is ClickHouse short of disk space: an
// insert refused (NOT_ENOUGH_SPACE, "Cannot reserve …") or a write that
// failed (ENOSPC). Over HTTP the exception arrives as text.
func isSpaceError(err error) bool {
	var ex *clickhouse.Exception
	if errors.As(err, &ex) && ex.Code == 243 {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "NOT_ENOUGH_SPACE") || strings.Contains(msg, "not enough space") || strings.Contains(msg, "No space left on device")
}
