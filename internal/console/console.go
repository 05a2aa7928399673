// Package console is the operator's web console: plain HTML, CSS and
// JavaScript embedded in the binary, with uPlot for the charts (a pinned
// copy committed under assets/vendor/, see scripts/setup-console.sh). The
// pages hold no data: everything they show they fetch from the /api/v1
// endpoints, with the API token the operator typed in (kept in the tab's
// sessionStorage) as a bearer token.
package console

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
)

// Path is where the console is served.
const Path = "/console/"

//go:embed assets
var assets embed.FS

// Assets are the console's files, as served under Path.
func Assets() fs.FS {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree always has assets/
	}
	return sub
}

// Config is what the pages are told before their first call
// (config.json).
type Config struct {
	// NeedToken tells the pages to ask for the API token before their
	// first call (so that they never show a refused request).
	NeedToken bool
	// MaxLag is the max_lag of the analytics reads the pages repeat every
	// few seconds (/channels, /fallback, /timeseries): answers as fresh as
	// the rollup job's last run, at the cost of a rolled-up read, rather
	// than exact ones that recompute the OTPs touched since at each
	// refresh. 0: exact reads.
	MaxLag time.Duration
}

// Mount serves the console under Path on r, and redirects / there.
//
// Mount it on a router without the API's bearer guard: a browser cannot send
// an Authorization header when it navigates, and the pages are only code —
// every figure comes from the guarded API, which the pages call with the
// token.
func Mount(r chi.Router, cfg Config) {
	type configJSON struct {
		Auth   bool   `json:"auth"`
		MaxLag string `json:"maxLag,omitempty"`
	}
	c := configJSON{Auth: cfg.NeedToken}
	if cfg.MaxLag > 0 {
		c.MaxLag = cfg.MaxLag.String()
	}
	config, err := json.Marshal(c)
	if err != nil {
		panic(err) // a bool and a string
	}
	r.Get(Path+"config.json", func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(config)
	})
	files := http.StripPrefix(Path, http.FileServerFS(Assets()))
	r.Get("/", func(w http.ResponseWriter, req *http.Request) {
		http.Redirect(w, req, Path, http.StatusFound)
	})
	r.Get("/console", func(w http.ResponseWriter, req *http.Request) {
		http.Redirect(w, req, Path, http.StatusMovedPermanently)
	})
	r.Get(Path+"*", func(w http.ResponseWriter, req *http.Request) {
		h := w.Header()
		// Only our own scripts, and no framing: a page that holds an API
		// token should run nothing else and not be clickjacked. uPlot sizes
		// its elements with inline styles.
		h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, req)
	})
}
