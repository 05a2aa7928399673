package reporter

import (
	"bytes"
	"cmp"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/otpscope/otpscope/internal/store"
)

// reportForms are the forms GET /api/v1/report answers in: the documents
// `reporter report` writes, to read or pass on, with their media types and
// file extensions. Its JSON form is not one of them: a program reads the
// API's own answers (/channels, /fallback, /timeseries…), or the
// summaries published as Report.v1.
var reportForms = map[string]struct{ media, ext string }{
	"html":  {"text/html; charset=utf-8", "html"},
	"csv":   {"text/csv; charset=utf-8", "csv"},
	"table": {"text/plain; charset=utf-8", "txt"},
}

// reportParams are the parameters /api/v1/report reads: the window and
// filters as the other answers (no max_lag: a report reads exactly, as
// `reporter report` does), the zone of its trend and times, and its form.
var reportParams = []string{"from", "to", "since", "profile", "channel", "tz", "format"}

// report answers GET /api/v1/report: the report of a window as `reporter
// report` writes it (html by default), with the alert thresholds the
// reporter evaluates, as a file to save (Content-Disposition).
func (a *API) report(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	format := cmp.Or(q.Get("format"), "html")
	form, ok := reportForms[format]
	if !ok {
		badRequest(w, r, "Invalid format", "format", fmt.Sprintf("format %.64q: want %s", format, strings.Join(slices.Sorted(maps.Keys(reportForms)), ", ")))
		return
	}
	win, ok := a.window(w, r)
	if !ok {
		return
	}
	zone, err := store.Zone(q.Get("tz"))
	if err != nil {
		badRequest(w, r, "Invalid tz", "tz", err.Error())
		return
	}
	rep, err := BuildReport(r.Context(), a.db, KindAdHoc, win, zone, a.now())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rep.Thresholds = a.rules.Thresholds()
	if err := rep.holdTo(r.Context(), a.db, win, a.rules.Objective); err != nil {
		a.fail(w, r, err)
		return
	}
	var body bytes.Buffer
	if err := rep.Render(&body, format); err != nil {
		a.fail(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", form.media)
	h.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", "otpscope-"+rep.Name()+"."+form.ext))
	// Figures and SVG, no script: opened from the API's origin, the
	// document may run none, nor load anything.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store") // as the JSON answers: figures of a moment
	w.Write(body.Bytes())
}
