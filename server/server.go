// Package server is the chi HTTP API: routes.go lists every route, errors.go
// maps errors to the seed's envelope, and each resource has its own file.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamspace/enterprise/activities"
	"github.com/streamspace/enterprise/activities/notify"
	"github.com/streamspace/enterprise/internal/authtoken"
	"github.com/streamspace/enterprise/internal/clientip"
	"github.com/streamspace/enterprise/internal/safehttp"
	"github.com/streamspace/enterprise/internal/secretbox"
	"github.com/streamspace/enterprise/schemas"
	"github.com/streamspace/enterprise/workflows"
)

// Config is the HTTP server's part of the server process configuration.
type Config struct {
	ListenAddr      string
	ReadTimeout     time.Duration
	WriteTimeout    time.Duration
	IdleTimeout     time.Duration
	ShutdownTimeout time.Duration
	MaxBodyBytes    int64
	// RefreshTTL is how long a refresh token (a login session) lasts.
	RefreshTTL time.Duration
	// OIDC, when Issuer is set, accepts bearer tokens from that issuer too.
	OIDC OIDCConfig
	// RateLimits are the API tiers and login limits (zero fields: defaults).
	RateLimits RateLimitConfig
	// EnterpriseEnabled is ENABLE_ENTERPRISE_FEATURES, read for the seed's
	// configuration. It gates nothing: switching the security routes off by
	// flag would drop MFA and allowlist enforcement for users who rely on
	// them; features are off by not being configured instead.
	EnterpriseEnabled bool
	// Sessions configures the session API (quota and timing defaults).
	Sessions SessionConfig
	// WebhookRateLimit is the rate_limit_per_second of a webhook created
	// without one (WEBHOOK_RATE_LIMIT); 0 = schemas.DefaultWebhookRateLimit.
	WebhookRateLimit int
	// MFAIssuer names the service in authenticator apps (MFA_ISSUER);
	// "" = "StreamSpace".
	MFAIssuer string
}

// Deps are what the handlers need.
type Deps struct {
	Logger   *slog.Logger
	Registry *prometheus.Registry // metrics registry served at /metrics
	Checks   []Check              // readiness checks for /readyz
	Store    *schemas.Store
	ClientIP *clientip.Resolver   // decides each request's client address
	Tokens   *authtoken.Authority // issues and verifies access tokens
	OIDC     TokenVerifier        // tokens of the OIDC issuer; nil when OIDC is off
	// Kube is the cluster that holds Sessions and Templates; nil: the
	// session, template and scaling routes answer 503.
	Kube *activities.Kube
	// Workflows starts and updates session lifecycle runs; nil: the session
	// routes answer 503.
	Workflows *workflows.Client
	// Secrets seals webhook secrets and integration configs at rest; nil
	// (ENCRYPTION_KEY unset): the webhook and integration routes answer 503.
	Secrets *secretbox.Box
	// Outbound is what webhook and integration URLs are checked against
	// (safehttp.CheckURL): https unless allowed, no private addresses
	// outside AllowedCIDRs.
	Outbound safehttp.Options
	// SMS sends MFA codes by text message; nil: SMS methods answer 503.
	SMS notify.SMSSender
	// Mail sends MFA codes by email; nil (SMTP unset): email methods
	// answer 503.
	Mail MailFunc
}

// MailFunc sends one plain-text email.
type MailFunc func(ctx context.Context, to, subject, text string) error

// Server is the StreamSpace HTTP API.
type Server struct {
	cfg        Config
	deps       Deps
	rateLimits *rateLimits
	handler    http.Handler
	// allowlist is the in-memory IP allowlist (allowlist_guard.go).
	allowlist allowlistGuard
	// mfaPolicy caches the MFA policy for the enrolment check
	// (security_policy.go).
	mfaPolicy mfaPolicyCache
}

// New builds the server and its router.
func New(cfg Config, deps Deps) *Server {
	if deps.ClientIP == nil {
		deps.ClientIP, _ = clientip.New(nil) // trust no proxy
	}
	s := &Server{cfg: cfg, deps: deps}
	var shared counter // nil: per-process counts, when there is no database
	if deps.Store != nil {
		shared = schemas.NewRateCounter(deps.Store.Pool, schemas.RateCounterOptions{Logger: deps.Logger})
	}
	s.rateLimits = newRateLimits(cfg.RateLimits, shared, deps.Logger)
	deps.Registry.MustRegister(s.rateLimits.Collectors()...)
	s.handler = s.routes()
	return s
}

// Handler is the router with every middleware, for tests and embedding.
func (s *Server) Handler() http.Handler { return s.handler }

// Run listens on the configured address and serves until ctx ends, then shuts
// down gracefully.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("listen on LISTEN_ADDR %s: %w", s.cfg.ListenAddr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx ends, then lets in-flight requests finish for
// up to ShutdownTimeout.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadTimeout:       s.cfg.ReadTimeout,
		ReadHeaderTimeout: s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.deps.Logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	// The IP allowlist follows changes made by other replicas until Serve
	// returns (allowlist_guard.go).
	watchCtx, stopWatch := context.WithCancel(ctx)
	var watchers sync.WaitGroup
	watchers.Go(func() { s.watchIPAllowlist(watchCtx) })
	defer watchers.Wait()
	defer stopWatch()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.deps.Logger.Info("api server listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
