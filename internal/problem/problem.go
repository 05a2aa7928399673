// Package problem writes RFC 9457 problem details (application/problem+json),
// the error body of every otpscope HTTP API.
package problem

import (
	"encoding/json"
	"net/http"
)

// ContentType is the media type of a problem details body.
const ContentType = "application/problem+json"

// Details is an RFC 9457 problem. Field and Index are otpscope's extension
// members naming the input that was wrong.
type Details struct {
	Type     string `json:"type,omitempty"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	Field    string `json:"field,omitempty"`
	Index    *int   `json:"index,omitempty"`
}

// Write sends p with its status; Title defaults to the status text.
func Write(w http.ResponseWriter, p Details) {
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	_, _ = w.Write(Body(p))
}

// Body is p as Write sends it (one JSON line), for servers other than
// net/http's (the public listener's fasthttp, internal/ingest).
func Body(p Details) []byte {
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	if p.Type == "" {
		p.Type = "about:blank"
	}
	b, _ := json.Marshal(p) // strings and ints: cannot fail
	return append(b, '\n')
}

// Error sends a problem with just a status and a detail.
func Error(w http.ResponseWriter, status int, detail string) {
	Write(w, Details{Status: status, Detail: detail})
}
