package auth

import (
	"net/http"
	"sync"
)

// Route is one route of the API and the action it needs.
type Route struct {
	Pattern string // as http.ServeMux takes it: "METHOD /path/{id}"
	Action  Action
}

// Routes is every route under /api/ and the action each needs. The gate
// refuses a route that is not here to everyone but the shared token (deny
// by default), so a new route needs a line here; a test reads the
// handlers' sources and fails on a route missing from this table.
// GET also admits HEAD, as in http.ServeMux.
var Routes = []Route{
	// collector/api
	{"GET /api/v1/files", View},

	// collector/cases: inspections and breaches (table 4)
	{"GET /api/v1/cases", View},
	{"GET /api/v1/cases/unmatched", View},
	{"GET /api/v1/cases/{id}", View},
	{"GET /api/v1/cases/{id}/audit", View},
	{"POST /api/v1/cases/events", InspectionEvent},
	{"GET /api/v1/breaches", View},
	{"POST /api/v1/breaches/reason", BreachCause},

	// collector/availability: device time (table 3) and incidents
	{"GET /api/v1/availability", View},
	{"GET /api/v1/incidents", View},
	{"POST /api/v1/incidents/ack", AckIncident},
	{"POST /api/v1/incidents/{id}/report", AckIncident},

	// collector/report: the officers' entries (tables 2, 5, 6, counts)
	{"GET /api/v1/reports/entries", View},
	{"GET /api/v1/reports/entries/{id}", View},
	{"POST /api/v1/reports/entries", Entries},
	{"PUT /api/v1/reports/entries/{id}", Entries},
	{"GET /api/v1/reports/counts", View},
	{"PUT /api/v1/reports/counts", Entries},

	// collector/report: the reports
	{"GET /api/v1/reports/daily", View},
	{"GET /api/v1/reports/daily/versions", View},
	{"GET /api/v1/reports/daily/incomplete", View},
	{"POST /api/v1/reports/daily/publish", Publish},
	{"GET /api/v1/reports/monthly", View},
	{"GET /api/v1/reports/monthly/versions", View},
	{"GET /api/v1/reports/monthly/summary", View},
	{"POST /api/v1/reports/monthly/publish", Publish},
	{"GET /api/v1/reports/item36", View},
	{"POST /api/v1/reports/item36/decision", Decision},
	{"GET /api/v1/reports/relocations", View},
	{"GET /api/v1/reports/shift", View},

	// collector/reanalysis: re-analysis of images (items 8-11)
	{"GET /api/v1/reanalysis/scans", View},
	{"GET /api/v1/reanalysis/leads", View},
	{"GET /api/v1/reanalysis/sessions", View},
	{"GET /api/v1/reanalysis/sessions/{id}", View},
	{"POST /api/v1/reanalysis/sessions", Reanalysis},

	// collector/nshs: ICT incidents (НШС)
	{"GET /api/v1/nshs", View},
	{"GET /api/v1/nshs/{id}", View},
	{"GET /api/v1/nshs/mapping", View},
	{"PUT /api/v1/nshs/mapping", NSHS},
	{"POST /api/v1/nshs/{id}/correct", NSHS},
	{"GET /api/v1/nshs/form", View},
}

// routeTable matches a request to its Route with the same rules as the
// handlers' own http.ServeMux, so "/api/v1/nshs/mapping" is the mapping
// and not an НШС of ID "mapping".
var routeTable = sync.OnceValue(func() *http.ServeMux {
	mux := http.NewServeMux()
	for _, rt := range Routes {
		mux.Handle(rt.Pattern, routeAction(rt.Action))
	}
	return mux
})

// routeAction is a Route's action standing in as a handler: the table's
// ServeMux is asked which one matches, never run.
type routeAction Action

func (routeAction) ServeHTTP(http.ResponseWriter, *http.Request) {}

// ActionOf returns the action r's route needs; false for a route not in
// Routes (or a method the route does not take).
func ActionOf(r *http.Request) (Action, bool) {
	h, pattern := routeTable().Handler(r)
	a, ok := h.(routeAction)
	if !ok || pattern == "" {
		return "", false
	}
	return Action(a), true
}
