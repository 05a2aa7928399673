package app

import "github.com/go-chi/chi/v5"

// AdminRoutes are the routes of the API's listener, for tests that must
// cover every one (a route added later included).
func (a *App) AdminRoutes() chi.Routes {
	if a.admin != nil {
		return a.admin.Handler.(chi.Routes)
	}
	return a.srv.Handler.(chi.Routes)
}

// PublicRoutes are the routes of the webhooks' listener (fasthttp serves
// their POSTs, the router the rest).
func (a *App) PublicRoutes() chi.Routes { return a.public }

// BrowserNames are the names an open admin API beyond loopback answers a
// browser at, besides IP addresses and localhost.
func (c *Config) BrowserNames() []string { return c.browserNames() }
