package poller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/otpscope/otpscope/internal/flagenv"
	"github.com/otpscope/otpscope/internal/httpurl"
	"github.com/otpscope/otpscope/internal/ingest"
	"github.com/otpscope/otpscope/internal/tyntec"
)

// MarkerHeader is sent with every webhook of the callback configuration
// otpscope registers; its value is the deployment's id (DeploymentID), so
// that RegisterCallback tells its own configuration from another
// deployment's (staging beside production on one tyntec account).
const MarkerHeader = "X-Otpscope-Callback"

// legacyMarker is the marker's value before deployments had ids.
const legacyMarker = "otpscope"

// DefaultDeploymentID derives a deployment's id from the host and the data
// directory: stable across restarts, different for two deployments on one
// host. Only a digest is sent to tyntec.
func DefaultDeploymentID(dataDir string) string {
	host, _ := os.Hostname()
	if abs, err := filepath.Abs(dataDir); err == nil {
		dataDir = abs
	}
	sum := sha256.Sum256([]byte(host + "\x00" + dataDir))
	return "otpscope-" + hex.EncodeToString(sum[:6])
}

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

// RegisterOptions say whose configuration RegisterCallback may change.
type RegisterOptions struct {
	// Deployment is this deployment's id, the value of MarkerHeader. Empty
	// takes the id of the otpscope configuration delivering to the URL
	// already (DeliveringDeployment), else Fallback: so replicas, restarted
	// pods and another host running register-callback share one id without
	// being told it. Given, it protects another deployment's configuration
	// even where this one is pointed at its URL by mistake.
	Deployment string
	// Fallback is the id of a first registration when Deployment is empty
	// (DefaultDeploymentID).
	Fallback string
	// Force takes over a configuration that points elsewhere: ours at an old
	// URL, or another deployment's. Without it such a configuration is never
	// patched or deleted.
	Force bool
}

// Change is one change of a CallbackPlan.
type Change struct {
	Action string // "create", "patch", "delete", "keep" or "leave" (not ours; untouched)
	ID     string
	URL    string // the configuration's URL now
	Reason string
}

func (c Change) String() string {
	id := c.ID
	if id == "" {
		id = "(new)"
	}
	return fmt.Sprintf("%-6s %s %s: %s", c.Action, id, flagenv.Shown("register-callback-url", c.URL), c.Reason)
}

// CallbackPlan is what RegisterCallback would change.
type CallbackPlan struct {
	// Deployment is the id the plan marks ours with, and From where it
	// came: "given", "delivering here" or "derived" (RegisterOptions).
	Deployment, From string
	Want             tyntec.NewCallbackConfig
	Changes          []Change
}

// String lists the plan, one change a line.
func (p CallbackPlan) String() string {
	var b strings.Builder
	for _, c := range p.Changes {
		b.WriteString(c.String() + "\n")
	}
	return b.String()
}

// RegisterResult says what RegisterCallback changed.
type RegisterResult struct {
	ID      string
	Action  string // "created", "patched", "taken over" or "unchanged"
	Removed int    // duplicates of ours deleted
	Left    int    // configurations pointing elsewhere left alone
	// Deployment and From are the plan's: the id ours is marked with, and
	// from where it came.
	Deployment, From string
}

// PlanCallback lists tyntec's callback configurations and decides, changing
// nothing, how to make one of ours point at webhookURL with headers. Ours is
// a configuration carrying this deployment's marker at webhookURL, or one at
// webhookURL without a marker of another deployment (registered before
// markers had ids). A configuration pointing elsewhere — ours at an old URL,
// another deployment's, anyone else's — is left alone; with Force, ours at an
// old URL or another otpscope deployment's is taken over (never a
// configuration without an otpscope marker at another URL).
func PlanCallback(ctx context.Context, api CallbackAPI, webhookURL string, headers map[string]string, opts RegisterOptions) (CallbackPlan, error) {
	if opts.Deployment == "" && opts.Fallback == "" {
		return CallbackPlan{}, fmt.Errorf("register callback: no deployment id")
	}
	if err := checkCallbackURL(webhookURL); err != nil {
		return CallbackPlan{}, err
	}
	list, err := api.ListCallbacks(ctx)
	if err != nil {
		return CallbackPlan{}, fmt.Errorf("list callbacks: %w", err)
	}
	plan := CallbackPlan{Deployment: opts.Deployment, From: "given"}
	if plan.Deployment == "" {
		plan.Deployment, plan.From = DeliveringDeployment(list, webhookURL), "delivering here"
		if plan.Deployment == "" {
			plan.Deployment, plan.From = opts.Fallback, "derived"
		}
	}
	opts.Deployment = plan.Deployment
	want := tyntec.NewCallbackConfig{URL: webhookURL, Headers: maps.Clone(headers)}
	if want.Headers == nil {
		want.Headers = map[string]string{}
	}
	want.Headers[MarkerHeader] = opts.Deployment
	plan.Want = want
	var mine, stale, others []tyntec.CallbackConfig
	for _, cb := range list {
		marker := headerValue(cb.Headers, MarkerHeader)
		switch {
		case sameURL(cb.URL, webhookURL) && (marker == opts.Deployment || marker == "" || marker == legacyMarker):
			mine = append(mine, cb)
		case marker == opts.Deployment:
			stale = append(stale, cb)
		case marker != "":
			others = append(others, cb)
		default:
			plan.Changes = append(plan.Changes, Change{Action: "leave", ID: cb.ID, URL: cb.URL, Reason: "not otpscope's"})
		}
	}
	keep := -1
	for i, cb := range mine {
		if sameConfig(cb, want) {
			keep = i
			break
		}
	}
	switch {
	case keep >= 0:
		plan.Changes = append(plan.Changes, Change{Action: "keep", ID: mine[keep].ID, URL: mine[keep].URL, Reason: "ours, as wanted"})
	case len(mine) > 0:
		keep = 0
		plan.Changes = append(plan.Changes, Change{Action: "patch", ID: mine[0].ID, URL: mine[0].URL, Reason: "ours; headers or profile differ"})
	}
	for i, cb := range mine {
		if i != keep {
			plan.Changes = append(plan.Changes, Change{Action: "delete", ID: cb.ID, URL: cb.URL, Reason: "a duplicate of ours"})
		}
	}
	taken := keep >= 0
	for _, group := range []struct {
		cbs  []tyntec.CallbackConfig
		whom string
	}{{stale, "ours at another URL"}, {others, "another deployment's (" + MarkerHeader + ")"}} {
		for _, cb := range group.cbs {
			switch {
			case !opts.Force && sameURL(cb.URL, webhookURL):
				// tyntec refuses a second configuration at one URL, and this
				// one delivers here already.
				taken = true
				plan.Changes = append(plan.Changes, Change{Action: "leave", ID: cb.ID, URL: cb.URL, Reason: group.whom + " delivering here; --force makes it ours"})
			case !opts.Force:
				plan.Changes = append(plan.Changes, Change{Action: "leave", ID: cb.ID, URL: cb.URL, Reason: group.whom + "; --force takes it over"})
			case !taken:
				taken = true
				plan.Changes = append(plan.Changes, Change{Action: "patch", ID: cb.ID, URL: cb.URL, Reason: group.whom + ", taken over (--force)"})
			case group.whom == "ours at another URL":
				plan.Changes = append(plan.Changes, Change{Action: "delete", ID: cb.ID, URL: cb.URL, Reason: group.whom + ", a duplicate (--force)"})
			default:
				plan.Changes = append(plan.Changes, Change{Action: "leave", ID: cb.ID, URL: cb.URL, Reason: group.whom})
			}
		}
	}
	if !taken {
		plan.Changes = append(plan.Changes, Change{Action: "create", URL: webhookURL, Reason: "no configuration of ours points here"})
	}
	return plan, nil
}

// DeliveringDeployment is the deployment id marking the otpscope
// configuration at webhookURL in list ("" if none has an id: tyntec keeps
// one configuration per URL).
func DeliveringDeployment(list []tyntec.CallbackConfig, webhookURL string) string {
	for _, cb := range list {
		if m := headerValue(cb.Headers, MarkerHeader); sameURL(cb.URL, webhookURL) && m != "" && m != legacyMarker {
			return m
		}
	}
	return ""
}

// Apply makes the plan's changes.
func (p CallbackPlan) Apply(ctx context.Context, api CallbackAPI) (RegisterResult, error) {
	res := RegisterResult{Action: "unchanged", Deployment: p.Deployment, From: p.From}
	for _, c := range p.Changes {
		switch c.Action {
		case "keep":
			res.ID = c.ID
		case "leave":
			res.Left++
		case "create":
			id, err := api.CreateCallback(ctx, p.Want)
			if err != nil {
				return res, fmt.Errorf("create callback: %w", err)
			}
			res.ID, res.Action = id, "created"
		case "patch":
			if _, err := api.PatchCallback(ctx, c.ID, p.Want); err != nil {
				return res, fmt.Errorf("patch callback %s: %w", c.ID, err)
			}
			res.ID, res.Action = c.ID, "patched"
			if !sameURL(c.URL, p.Want.URL) {
				res.Action = "taken over"
			}
		case "delete":
			del, ok := api.(callbackDeleter)
			if !ok {
				continue
			}
			if err := del.DeleteCallback(ctx, c.ID); err != nil && !tyntec.IsNotFound(err) {
				return res, fmt.Errorf("delete duplicate callback %s: %w", c.ID, err)
			}
			res.Removed++
		}
	}
	return res, nil
}

// RegisterCallback makes one of this deployment's callback configurations
// point at webhookURL with headers, idempotently (PlanCallback, then Apply).
func RegisterCallback(ctx context.Context, api CallbackAPI, webhookURL string, headers map[string]string, opts RegisterOptions) (RegisterResult, error) {
	plan, err := PlanCallback(ctx, api, webhookURL, headers, opts)
	if err != nil {
		return RegisterResult{}, err
	}
	return plan.Apply(ctx, api)
}

// IngestCallbackURL is the callback URL of the ingest whose public base URL
// (--ingest-url) is base: base with ingest.WebhookPath added. A base that
// ends in that path already is refused: tyntec would post to
// …/webhooks/tyntec/webhooks/tyntec, which ingest answers 404.
//
// A base tyntec could not post to — not http(s)://host, or with a query or
// fragment, which the path would land in — is refused too: it used to be
// registered (ftp://x/webhooks/tyntec, https://h?token=abc/webhooks/tyntec),
// every webhook lost, and the command exit 0.
func IngestCallbackURL(base string) (string, error) {
	u, err := httpurl.ParseBase(base)
	if err != nil {
		return "", fmt.Errorf("--ingest-url %w, e.g. https://otpscope.example.com", err)
	}
	if strings.HasSuffix(strings.TrimRight(u.Path, "/"), ingest.WebhookPath) {
		return "", fmt.Errorf("--ingest-url %q: want ingest's base URL, e.g. https://otpscope.example.com, without %s (added to it); the poller's --register-callback-url takes the whole callback URL",
			u.Redacted(), ingest.WebhookPath)
	}
	return strings.TrimRight(base, "/") + ingest.WebhookPath, nil
}

// checkCallbackURL refuses a callback URL with the webhook path twice: a
// base URL given with the path that was added to it again.
func checkCallbackURL(webhookURL string) error {
	u, err := url.Parse(webhookURL)
	if err != nil || !strings.HasSuffix(strings.TrimRight(u.Path, "/"), ingest.WebhookPath+ingest.WebhookPath) {
		return nil
	}
	return fmt.Errorf("callback URL %q has %s twice: give --ingest-url ingest's base URL, e.g. https://otpscope.example.com, or --register-callback-url the callback URL with it once",
		u.Redacted(), ingest.WebhookPath)
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
