package poller

import (
	"context"
	"fmt"
	"maps"
	"strings"

	"github.com/otpscope/otpscope/internal/tyntec"
)

// MarkerHeader is sent with every webhook of the callback configuration
// otpscope registers; it is how RegisterCallback recognises its own
// configuration after the ingest URL moved.
const MarkerHeader = "X-Otpscope-Callback"

// CallbackAPI is the part of the tyntec client that manages callbacks
// (*tyntec.Client); a client that can also delete removes duplicates.
type CallbackAPI interface {
	ListCallbacks(ctx context.Context) ([]tyntec.CallbackConfig, error)
	CreateCallback(ctx context.Context, cfg tyntec.NewCallbackConfig) (string, error)
	PatchCallback(ctx context.Context, id string, cfg tyntec.NewCallbackConfig) (*tyntec.CallbackConfig, error)
}

// callbackDeleter removes duplicate configurations.
type callbackDeleter interface {
	DeleteCallback(ctx context.Context, id string) error
}

// RegisterResult says what RegisterCallback changed.
type RegisterResult struct {
	ID      string
	Action  string // "created", "patched" or "unchanged"
	Removed int    // duplicates of ours deleted
}

// RegisterCallback makes tyntec's v4 callback configuration point at
// webhookURL with headers, idempotently: it lists the configurations, keeps
// the one that is ours (same URL, or carrying MarkerHeader), patches it when
// it differs, creates one when there is none, and deletes duplicates of ours.
// Configurations of others (another URL, no marker) are left alone.
func RegisterCallback(ctx context.Context, api CallbackAPI, webhookURL string, headers map[string]string) (RegisterResult, error) {
	want := tyntec.NewCallbackConfig{URL: webhookURL, Headers: maps.Clone(headers)}
	if want.Headers == nil {
		want.Headers = map[string]string{}
	}
	want.Headers[MarkerHeader] = "otpscope"
	list, err := api.ListCallbacks(ctx)
	if err != nil {
		return RegisterResult{}, fmt.Errorf("list callbacks: %w", err)
	}
	var ours []tyntec.CallbackConfig
	for _, cb := range list {
		if sameURL(cb.URL, webhookURL) || headerValue(cb.Headers, MarkerHeader) != "" {
			ours = append(ours, cb)
		}
	}
	if len(ours) == 0 {
		id, err := api.CreateCallback(ctx, want)
		if err != nil {
			return RegisterResult{}, fmt.Errorf("create callback: %w", err)
		}
		return RegisterResult{ID: id, Action: "created"}, nil
	}
	// Prefer the one already right, so a repeat changes nothing.
	keep := 0
	for i, cb := range ours {
		if sameConfig(cb, want) {
			keep = i
			break
		}
	}
	res := RegisterResult{ID: ours[keep].ID, Action: "unchanged"}
	if !sameConfig(ours[keep], want) {
		if _, err := api.PatchCallback(ctx, ours[keep].ID, want); err != nil {
			return res, fmt.Errorf("patch callback %s: %w", ours[keep].ID, err)
		}
		res.Action = "patched"
	}
	if del, ok := api.(callbackDeleter); ok {
		for i, cb := range ours {
			if i == keep {
				continue
			}
			if err := del.DeleteCallback(ctx, cb.ID); err != nil && !tyntec.IsNotFound(err) {
				return res, fmt.Errorf("delete duplicate callback %s: %w", cb.ID, err)
			}
			res.Removed++
		}
	}
	return res, nil
}

func sameURL(a, b string) bool { return strings.TrimRight(a, "/") == strings.TrimRight(b, "/") }

func sameConfig(cb tyntec.CallbackConfig, want tyntec.NewCallbackConfig) bool {
	if !sameURL(cb.URL, want.URL) || cb.ProfileID != want.ProfileID || len(cb.Headers) != len(want.Headers) {
		return false
	}
	for k, v := range want.Headers {
		if headerValue(cb.Headers, k) != v {
			return false
		}
	}
	return true
}

// headerValue looks a header up case-insensitively, as HTTP does.
func headerValue(h map[string]string, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}
