package ops

import (
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/otpscope/otpscope/internal/httpurl"
	"github.com/otpscope/otpscope/internal/problem"
)

// BrowserGuard keeps web pages out of an API that takes no token. A page
// any browser on the network loads may send it a request: a form's POST
// (dead-letter replay, a backup) needs no CORS preflight, and the answer
// is not needed to do harm. So an unsafe method with another site's Origin
// is refused. A page may also rebind its own name to the API's address and
// then send and read as same-origin (Origin and Host both its name). On a
// loopback address a request whose Host is not a loopback address or
// localhost is refused for that; beyond loopback, where curl and
// Prometheus may well use a name, only a browser's (Origin or
// Sec-Fetch-Site sent) whose Host is neither an IP address, localhost nor
// one of names (the names operators browse to). And a request a page of
// another site made, but a link followed to it, is refused (Fetch
// Metadata: fromAnotherSite). Tokens make all of it
// moot (a page cannot send one), so the guard is for the open API only.
func BrowserGuard(loopback bool, names []string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case loopback && !httpurl.Loopback(r.Host):
				forbidden(w, r, "Host "+r.Host+" is not this machine's: this API without a token answers only requests to 127.0.0.1, [::1] or localhost")
			case !loopback && fromBrowser(r) && !knownHost(r.Host, names):
				forbidden(w, r, "Host "+r.Host+" is a name this API does not know (a web page may have pointed its own name here): without a token it answers a browser only at an IP address, localhost or --console-url's host; or set --api-token")
			case !safeMethod(r.Method) && httpurl.ForeignOrigin(r):
				forbidden(w, r, "Origin "+r.Header.Get("Origin")+" is another site: this API without a token takes no request a web page sends it")
			case fromAnotherSite(r):
				forbidden(w, r, "Sec-Fetch-Site "+r.Header.Get("Sec-Fetch-Site")+": this API without a token answers another site's page only a link followed to it")
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

// fromBrowser reports whether a browser sent r: they send Origin with
// every request but a same-origin GET, and Sec-Fetch-Site (since 2020–23)
// with every one; curl, the CLIs and Prometheus send neither.
func fromBrowser(r *http.Request) bool {
	return r.Header.Get("Origin") != "" || r.Header.Get("Sec-Fetch-Site") != ""
}

// knownHost reports whether host (a Host header) is an IP address, which
// no page can rebind, localhost, or one of names.
func knownHost(host string, names []string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return net.ParseIP(host) != nil || httpurl.Loopback(host) ||
		slices.ContainsFunc(names, func(n string) bool { return strings.EqualFold(n, host) })
}

// fromAnotherSite reports whether a browser sent r for a page of another
// site (Sec-Fetch-Site, sent by browsers since 2020–23), and not as a link
// followed (a navigation, GET): an <img> or a no-cors fetch of another
// site reads nothing, but would still start the API's heaviest reads and
// fill its places. An unsafe method says Origin too (above); a form posted
// with only Sec-Fetch-Site is refused here.
func fromAnotherSite(r *http.Request) bool {
	return httpurl.CrossSite(r) && (!safeMethod(r.Method) || r.Header.Get("Sec-Fetch-Mode") != "navigate")
}
