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
		s.withClientIP, withAccessLog(log), s.withAudit, withBodyLimit(s.cfg.MaxBodyBytes))
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

	// The API. Access: public (no token), user (any signed-in user, who sees
	// only their own resources) or admin.
	r.Group(func(api chi.Router) {
		h := func(fn handlerFunc) http.HandlerFunc { return handle(log, fn) }

		// public (rate-limited per client IP; login also per account)
		api.With(s.rateLimits.API).Post("/api/auth/login", h(s.login))
		api.With(s.rateLimits.API).Post("/api/auth/refresh", h(s.refresh))
		api.With(s.rateLimits.API).Post("/api/auth/logout", h(s.logout))
		api.With(s.rateLimits.API).Post("/api/auth/mfa", h(s.loginMFA))          // the second step (auth_mfa.go)
		api.With(s.rateLimits.API).Post("/api/auth/mfa/send", h(s.loginMFASend)) // an SMS or email code for it

		api.Group(func(user chi.Router) {
			// the IP allowlist right after authentication, then limits per user,
			// by role; users an MFA policy covers must enrol before anything
			// but /api/me and /api/security/mfa (security_policy.go)
			user.Use(s.authenticate, s.enforceIPAllowlist, s.rateLimits.API, s.requireMFAEnrollment)
			// user
			user.Get("/api/me", h(s.getMe))
			user.Patch("/api/me", h(s.updateMe))
			user.Get("/api/me/quota", h(s.getMyQuota))
			user.Delete("/api/users/me/home", h(s.deleteMyHome))
			// user: templates (read), own sessions (admins: all)
			user.Get("/api/templates", h(s.listTemplates))
			user.Get("/api/templates/{id}", h(s.getTemplate))
			user.Post("/api/sessions", h(s.createSession))
			user.Get("/api/sessions", h(s.listSessions))
			user.Get("/api/sessions/{id}", h(s.getSession))
			user.Patch("/api/sessions/{id}", h(s.patchSession))
			user.Delete("/api/sessions/{id}", h(s.deleteSession))
			user.Post("/api/sessions/{id}/heartbeat", h(s.heartbeat))
			s.securityAlertRoutes(user) // /api/security/alerts (server/security_alerts.go)
			s.ipAllowlistRoutes(user)   // /api/security/ip-whitelist (server/ip_allowlist.go)
			s.mfaRoutes(user)           // /api/security/mfa (server/security_mfa.go)

			user.Group(func(admin chi.Router) {
				admin.Use(s.requireRole(RoleAdmin))
				// admin
				admin.Get("/api/admin/users", h(s.listUsers))
				admin.Post("/api/admin/users", h(s.createUser))
				admin.Get("/api/admin/users/{id}", h(s.getUser))
				admin.Patch("/api/admin/users/{id}", h(s.updateUser))
				admin.Delete("/api/admin/users/{id}", h(s.deleteUser))
				admin.Get("/api/admin/users/{id}/quota", h(s.getUserQuota))
				admin.Put("/api/admin/users/{id}/quota", h(s.putUserQuota))
				admin.Delete("/api/admin/users/{id}/home", h(s.deleteUserHome))
				admin.Post("/api/templates", h(s.createTemplate))
				admin.Put("/api/templates/{id}", h(s.putTemplate))
				admin.Delete("/api/templates/{id}", h(s.deleteTemplate))
				s.auditRoutes(admin) // GET /api/admin/audit, /api/admin/audit/export
				s.eventRoutes(admin) // GET /api/admin/events
				s.nodeRoutes(admin)  // GET /api/scaling/nodes
				// /api/webhooks and their deliveries (server/webhooks.go)
				s.webhookRoutes(admin)
				// /api/integrations, their test and deliveries (server/integrations.go)
				s.integrationRoutes(admin)
				// the MFA policy and account unlock (server/security_policy.go)
				s.securityPolicyRoutes(admin)
			})
		})
	})
	return r
}
