package chdb

import (
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// ClickHouse error codes the package produces or maps itself.
const (
	CodeUnknownSetting       = 115
	CodeReadonly             = 164
	CodeAccessDenied         = 497
	CodeTooManyQueries       = 202 // TOO_MANY_SIMULTANEOUS_QUERIES
	CodeQueryTooLarge        = 393 // QUERY_IS_TOO_LARGE
	CodeUnknownUser          = 192
	CodeRequiredPassword     = 194
	CodeAuthenticationFailed = 516
	CodeNotImplemented       = 48
	CodeSyntaxError          = 62
	CodeBadArguments         = 36
	CodeUnknownTable         = 60
	CodeUnknownDatabase      = 81
	CodeCannotDecompress     = 271
	CodeUnknownFormat        = 73
	CodeStdException         = 1001
	CodeQueryAlreadyRunning  = 216 // QUERY_WITH_SAME_ID_IS_ALREADY_RUNNING
)

// Exception is an error reported by the engine, in ClickHouse's terms.
type Exception struct {
	Code    int
	Name    string // e.g. UNKNOWN_TABLE, when the engine named it
	Message string // the full text, "Code: 60. DB::Exception: ..."
}

func (e *Exception) Error() string { return e.Message }

var (
	codeRe = regexp.MustCompile(`Code:\s*(\d+)\.`)
	nameRe = regexp.MustCompile(`\(([A-Z][A-Z0-9_]+)\)`)
)

// newException parses the engine's error text. Text without a code becomes
// a STD_EXCEPTION so that clients still see ClickHouse's shape.
func newException(text string) *Exception {
	text = strings.TrimSpace(text)
	e := &Exception{Message: text}
	if m := codeRe.FindStringSubmatch(text); m != nil {
		e.Code, _ = strconv.Atoi(m[1])
		if i := strings.Index(text, m[0]); i > 0 {
			// Keep the message starting at "Code:" as the server does.
			e.Message = text[i:]
		}
	} else {
		e.Code = CodeStdException
		e.Message = fmt.Sprintf("Code: %d. DB::Exception: %s. (STD_EXCEPTION)", CodeStdException, text)
	}
	if m := nameRe.FindAllStringSubmatch(e.Message, -1); m != nil {
		e.Name = m[len(m)-1][1]
	}
	return e
}

// exceptionf builds an Exception with ClickHouse's message layout.
func exceptionf(code int, name, format string, args ...any) *Exception {
	return &Exception{
		Code:    code,
		Name:    name,
		Message: fmt.Sprintf("Code: %d. DB::Exception: %s. (%s)", code, fmt.Sprintf(format, args...), name),
	}
}

// httpStatus maps an error code to the status ClickHouse's HTTP interface
// answers with.
func httpStatus(code int) int {
	switch code {
	case CodeAuthenticationFailed, CodeUnknownUser, CodeRequiredPassword:
		return http.StatusUnauthorized
	case CodeReadonly, CodeAccessDenied:
		return http.StatusForbidden
	case CodeTooManyQueries:
		return http.StatusServiceUnavailable
	case CodeUnknownTable, CodeUnknownDatabase, 47 /* UNKNOWN_IDENTIFIER */, 46 /* UNKNOWN_FUNCTION */, 16 /* NO_SUCH_COLUMN_IN_TABLE */ :
		return http.StatusNotFound
	case CodeSyntaxError, CodeBadArguments, CodeUnknownSetting, CodeUnknownFormat, CodeCannotDecompress,
		6, 26, 27, 38, 41, 72, 117, // CANNOT_PARSE_*, INCORRECT_DATA
		43, 53, // ILLEGAL_TYPE_OF_ARGUMENT, TYPE_MISMATCH
		456, 457: // UNKNOWN_QUERY_PARAMETER, BAD_QUERY_PARAMETER
		return http.StatusBadRequest
	case CodeNotImplemented:
		return http.StatusNotImplemented
	default:
		return http.StatusInternalServerError
	}
}
