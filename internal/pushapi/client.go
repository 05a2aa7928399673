// Package pushapi is a client of the push-approval API (seed 003) for what
// otpscope needs of it: reading an approval request by uuid when its
// settling callback never came. The seed documents creating a request and
// reading it; the shape of the answer ({"success", "approval_request"}) and
// its statuses are assumptions the README lists.
package pushapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/httpurl"
)

// APIKeyHeader carries the API key (seed 003).
const APIKeyHeader = "X-TFA-API-Key"

// ErrNotFound is the answer for a uuid the API does not know.
var ErrNotFound = errors.New("approval request not found")

// Client reads approval requests.
type Client struct {
	base   string
	apiKey func() string
	http   *http.Client
	now    func() time.Time
}

// New returns a client of the API at baseURL (e.g. https://api.example.com,
// under which /onetouch/json/… lives). apiKey gives the key of each request
// (the poller's is read again from its file after a rotation). now stamps
// what it reads; nil is time.Now.
func New(baseURL string, apiKey func() string, timeout time.Duration, now func() time.Time) (*Client, error) {
	if _, err := httpurl.Parse(baseURL); err != nil {
		return nil, fmt.Errorf("push API URL %w", err)
	}
	if apiKey == nil || apiKey() == "" {
		return nil, errors.New("push API: no API key")
	}
	if now == nil {
		now = time.Now
	}
	return &Client{base: strings.TrimSuffix(baseURL, "/"), apiKey: apiKey, http: &http.Client{Timeout: timeout}, now: now}, nil
}

// StatusError is an answer other than 200 or 404.
type StatusError struct {
	Status int
	Body   string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("push API answered %d: %.200s", e.Status, e.Body)
}

// Get reads the approval request uuid: GET
// /onetouch/json/approval_requests/{uuid}. The request comes back as the
// callback would have reported it, with source poll.
func (c *Client) Get(ctx context.Context, uuid string) (events.PushEvent, error) {
	// A callback's uuid is any printable id: "." or ".." escaped as they
	// are would name another path of the push API.
	if strings.Trim(uuid, ".") == "" {
		return events.PushEvent{}, fmt.Errorf("get approval request %q: not an id a path can name", uuid)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/onetouch/json/approval_requests/"+url.PathEscape(uuid), nil)
	if err != nil {
		return events.PushEvent{}, err
	}
	req.Header.Set(APIKeyHeader, c.apiKey())
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return events.PushEvent{}, fmt.Errorf("get approval request %s: %w", uuid, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return events.PushEvent{}, fmt.Errorf("get approval request %s: %w", uuid, err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return events.PushEvent{}, fmt.Errorf("%w: %s", ErrNotFound, uuid)
	default:
		return events.PushEvent{}, &StatusError{Status: resp.StatusCode, Body: string(body)}
	}
	var answer struct {
		Success         bool            `json:"success"`
		ApprovalRequest json.RawMessage `json:"approval_request"`
	}
	if err := json.Unmarshal(body, &answer); err != nil || !answer.Success || len(answer.ApprovalRequest) == 0 {
		return events.PushEvent{}, fmt.Errorf("get approval request %s: unexpected answer %.200s", uuid, body)
	}
	p, ferr := events.DecodePushEvent(answer.ApprovalRequest, c.now(), events.SourcePoll)
	if ferr != nil {
		return events.PushEvent{}, fmt.Errorf("get approval request %s: %w", uuid, ferr)
	}
	if p.UUID != uuid {
		return events.PushEvent{}, fmt.Errorf("get approval request %s: the answer is request %s", uuid, p.UUID)
	}
	return p, nil
}
