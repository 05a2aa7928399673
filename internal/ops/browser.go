package ops

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/otpscope/otpscope/internal/httpurl"
	"github.com/otpscope/otpscope/internal/problem"
)

// BrowserGuard keeps web pages out of an API that takes no token. A page
// any browser on the network loads may send it a request: a form's POST
// (dead-letter replay, a backup) needs no CORS preflight, and the answer
// is not needed to do harm. So an unsafe method with another site's Origin
// is refused. On a loopback address a page may also rebind its own name to
// 127.0.0.1 and then read the answers as same-origin: with loopback, a
// request whose Host is not a loopback address or localhost is refused
// too. Tokens make both moot (a page cannot send one), so the guard is for
// the open API only.
func BrowserGuard(loopback bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case loopback && !httpurl.Loopback(r.Host):
				forbidden(w, r, "Host "+r.Host+" is not this machine's: this API without a token answers only requests to 127.0.0.1, [::1] or localhost")
			case !safeMethod(r.Method) && !sameOrigin(r):
				forbidden(w, r, "Origin "+r.Header.Get("Origin")+" is another site: this API without a token takes no request a web page sends it")
			default:
				next.ServeHTTP(w, r)
			}
		})
	}
}

func forbidden(w http.ResponseWriter, r *http.Request, detail string) {
	problem.Write(w, problem.Details{Status: http.StatusForbidden, Title: "Refused from a browser", Detail: detail, Instance: r.URL.Path})
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// sameOrigin reports whether r has no Origin (a client that is not a
// browser) or one naming the host r was sent to.
func sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}
