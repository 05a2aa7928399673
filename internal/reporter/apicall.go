package reporter

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/otpscope/otpscope/internal/cli"
	"github.com/otpscope/otpscope/internal/flagenv"
	"github.com/otpscope/otpscope/internal/httpurl"
)

// APIFlags say where a command-line client (otpscope deadletters, backup,
// status) finds the API, and its token: the same two flags on each.
type APIFlags struct {
	API   string
	Token string
}

// Register registers --api, whose help names what (the process whose
// admin listener it is), and --api-token.
func (a *APIFlags) Register(fs *flag.FlagSet, what string) {
	fs.StringVar(&a.API, "api", DefaultAPI, "base URL of "+what)
	fs.StringVar(&a.Token, "api-token", "", "bearer token of the API, when it requires one (a list, as in the server's own token file, sends its first)")
}

// APICall is one request of a command-line client (otpscope deadletters,
// backup, status) to a running process's API.
type APICall struct {
	Method string
	// API is the process's base URL (--api), Path what to call under it
	// (with its query).
	API, Path string
	// Token is the API token; a list (comma- or line-separated, as the
	// server's token file holds one during a rotation) sends its first, so
	// a client in the server's own environment can use its file.
	Token string
	// Command names the client in the User-Agent, which the API's audit
	// line of an action shows (ops.Audit).
	Command string
	// Body, when set, is sent as JSON.
	Body []byte
	// Want is the status of success; 0 means 200.
	Want int
	// Timeout bounds the call; 0 leaves it to ctx.
	Timeout time.Duration
	// Limit is the most bytes of the answer read.
	Limit int64
}

// Do sends the call and returns the answer's body; another status than
// Want is an error naming it and the API's problem text.
func (c APICall) Do(ctx context.Context) ([]byte, error) {
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	shown := flagenv.Shown("api", c.API) // without a password it may hold
	if _, err := httpurl.ParseBase(c.API); err != nil {
		return nil, cli.Usage(fmt.Errorf("--api %q: want the API's base URL, such as %s", shown, DefaultAPI)) // exit 2, as any bad flag
	}
	var body io.Reader
	if c.Body != nil {
		body = bytes.NewReader(c.Body)
	}
	req, err := http.NewRequestWithContext(ctx, c.Method, strings.TrimRight(c.API, "/")+c.Path, body)
	if err != nil {
		return nil, err
	}
	if c.Body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	// As the server reads its token file: a list (flagenv.List).
	var tokens flagenv.List
	_ = tokens.Set(c.Token)
	if len(tokens) > 0 {
		req.Header.Set("Authorization", "Bearer "+tokens[0])
	}
	req.Header.Set("User-Agent", c.Command)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w (is otpscope running with its API at %s? --api or OTPSCOPE_API says where)", err, shown)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, c.Limit))
	if err != nil {
		return nil, err
	}
	want := c.Want
	if want == 0 {
		want = http.StatusOK
	}
	if resp.StatusCode != want {
		hint := ""
		if resp.StatusCode == http.StatusUnauthorized {
			hint = " (give one of the server's --api-token values: --api-token or OTPSCOPE_API_TOKEN)"
		}
		return nil, fmt.Errorf("%s %s: %s: %s%s", req.Method, req.URL.Path, resp.Status, bytes.TrimSpace(raw), hint)
	}
	return raw, nil
}
