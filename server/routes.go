package server

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// routes is the one place that lists every route, with the access rule that
// guards it.
func (s *Server) routes() http.Handler {
	log := s.deps.Logger
	r := chi.NewRouter()
	r.Use(withRequestID, withRecovery(log), newHTTPMetrics(s.deps.Registry).middleware,
		s.withClientIP, withAccessLog(log), withBodyLimit(s.cfg.MaxBodyBytes))
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, log, Errorf(CodeNotFound, "no route for %s %s", r.Method, r.URL.Path))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, log, Errorf(CodeMethodNotAllowed, "method %s not allowed on %s", r.Method, r.URL.Path))
	})

	// Public: probes, metrics and API documentation.
	r.Get("/healthz", s.healthz)
	r.Get("/readyz", s.readyz)
	r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(s.deps.Registry, promhttp.HandlerOpts{}))
	r.Get("/api/docs/openapi.yaml", s.openAPI)
	r.Method(http.MethodGet, "/api/docs", swaggerUI())
	r.Method(http.MethodGet, "/api/docs/*", swaggerUI())
	return r
}
