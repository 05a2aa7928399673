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
