// Package browsertest drives a real headless Chromium from tests (through
// chromedp) and collects what the page complained about: console.error
// calls, uncaught exceptions and the browser's own error log (a failed
// request, a refused script).
//
// Without a Chromium, tests skip with a message saying how to get one —
// unless CI=true: then they fail, since a CI run that skipped every browser
// test would look green (the same rule as chdbtest's for the engine).
package browsertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// EnvChromium names the browser to run; without it, chromium,
// chromium-browser or google-chrome on PATH.
const EnvChromium = "OTPSCOPE_CHROMIUM"

// EnvArtifacts is where Screenshot writes; without it, the test's TempDir.
const EnvArtifacts = "OTPSCOPE_ARTIFACTS"

// SkipMessage is what tests say when there is no browser.
const SkipMessage = "chromium not found: apt-get install chromium (or set " + EnvChromium + ")"

// Browser is one headless Chromium tab, closed when the test ends.
type Browser struct {
	// Ctx runs chromedp actions in the tab.
	Ctx context.Context
	t   testing.TB
	dir string

	mu     sync.Mutex
	errors []string
}

// Find returns the browser's path, or "".
func Find() string {
	if p := os.Getenv(EnvChromium); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Options start the browser at path headless, with its profile in
// userDataDir and nothing called home.
func Options(path, userDataDir string) []chromedp.ExecAllocatorOption {
	return append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // root in CI
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		// The machine's network is closed: no calls home, no update checks.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(userDataDir),
		chromedp.WindowSize(1400, 1000),
	)
}

// New starts Chromium headless with a fresh profile and a timeout for the
// whole test, or skips (fails under CI=true) without one.
func New(t testing.TB, timeout time.Duration) *Browser {
	t.Helper()
	path := Find()
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal(SkipMessage + " — CI=true: a browser test may not skip")
		}
		t.Skip(SkipMessage)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.WithoutCancel(t.Context()), Options(path, t.TempDir())...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() { cancelTimeout(); cancelTab(); cancelAlloc() })
	b := &Browser{Ctx: ctx, t: t, dir: os.Getenv(EnvArtifacts)}
	if b.dir == "" {
		b.dir = t.TempDir()
	}
	// Subscribe before the first navigation, so that nothing the page says
	// is lost; the goroutine ends with the tab's context.
	msgs := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				b.record(fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line))
			}
		}
	}()
	t.Cleanup(func() { cancelTimeout(); cancelTab(); <-done })
	return b
}

func (b *Browser) record(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.errors = append(b.errors, s)
}

// Errors are the page's complaints so far.
func (b *Browser) Errors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errors...)
}

// NoErrors fails the test with every complaint the page made, after what.
func (b *Browser) NoErrors(what string) {
	b.t.Helper()
	if errs := b.Errors(); len(errs) > 0 {
		b.t.Errorf("%s: the page reported errors:\n  %s", what, strings.Join(errs, "\n  "))
	}
}

// NoErrorsBut is NoErrors for a page that was made to fail on purpose: the
// complaints containing one of expected are let pass.
func (b *Browser) NoErrorsBut(what string, expected ...string) {
	b.t.Helper()
	var errs []string
	for _, e := range b.Errors() {
		if !slices.ContainsFunc(expected, func(x string) bool { return strings.Contains(e, x) }) {
			errs = append(errs, e)
		}
	}
	if len(errs) > 0 {
		b.t.Errorf("%s: the page reported errors:\n  %s", what, strings.Join(errs, "\n  "))
	}
}

// Do runs actions in the tab, failing the test on error.
func (b *Browser) Do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.Ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v (page errors: %q)", what, err, b.Errors())
	}
}

// Run runs one action in the tab and returns its value, failing the test on
// error.
func Run[T any](b *Browser, what string, action chromedp.Action[T]) T {
	b.t.Helper()
	v, err := chromedp.Run(b.Ctx, action)
	if err != nil {
		b.t.Fatalf("%s: %v (page errors: %q)", what, err, b.Errors())
	}
	return v
}

// Text is the text content of the first element sel matches, once it exists.
func (b *Browser) Text(sel string) string {
	b.t.Helper()
	return Run(b, "text of "+sel, chromedp.TextContent(sel, chromedp.NodeReady))
}

// Screenshot writes the whole page as name.png into the artefacts directory
// and returns its path.
func (b *Browser) Screenshot(name string) string {
	b.t.Helper()
	png := Run(b, "screenshot "+name, chromedp.FullScreenshot(100))
	path := filepath.Join(b.dir, name+".png")
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", path)
	return path
}
