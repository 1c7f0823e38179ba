package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/streamspace/enterprise/internal/clientip"
	"github.com/streamspace/enterprise/schemas"
	"github.com/streamspace/enterprise/server"
	"github.com/streamspace/enterprise/workflows"
)

func cmdServer(ctx context.Context, lookup func(string) (string, bool), stderr io.Writer) error {
	cfg, err := readServerConfig(lookup)
	if err != nil {
		return configError(err)
	}
	rt, err := openRuntime(ctx, cfg.Common, stderr)
	if err != nil {
		return err
	}
	defer rt.Close()
	if err := bootstrapAdmin(ctx, &schemas.Store{Pool: rt.Pool}, cfg.Auth, stderr); err != nil {
		return err
	}
	return runServer(ctx, cfg, rt)
}

// runServer serves the API until ctx ends.
func runServer(ctx context.Context, cfg ServerConfig, rt *runtime) error {
	checks := readinessChecks(rt, cfg.Common)
	tokens, err := newAuthority(cfg.Auth)
	if err != nil {
		return err
	}
	proxies, err := clientip.New(cfg.Auth.TrustedProxies)
	if err != nil {
		return err
	}
	store := &schemas.Store{Pool: rt.Pool}
	var oidc server.TokenVerifier
	if cfg.HTTP.OIDC.Issuer != "" {
		// Bad OIDC settings fail here; an IdP that is merely down is retried
		// lazily, and its tokens answer 503 meanwhile.
		if oidc, err = server.NewOIDCVerifier(ctx, cfg.HTTP.OIDC, store, &http.Client{Timeout: 10 * time.Second}, rt.Logger); err != nil {
			return fmt.Errorf("OIDC: %w", err)
		}
	}
	box, err := openSecretBox(cfg.Security)
	if err != nil {
		return err
	}
	if box == nil {
		rt.Logger.Warn("ENCRYPTION_KEY is not set: the webhook and integration routes answer 503 (their secrets are sealed with it)")
	}
	cfg.HTTP.WebhookRateLimit = cfg.Hub.RateLimit
	cfg.HTTP.MFAIssuer = cfg.Security.MFAIssuer
	sms, mail := mfaSenders(cfg.Common)
	cfg.HTTP.Sessions = server.SessionConfig{DefaultQuota: cfg.Sessions.Quota, StartTimeout: cfg.Sessions.StartTimeout,
		DefaultIdleTimeout: cfg.Sessions.IdleTimeout, DefaultMaxDuration: cfg.Sessions.MaxDuration}
	prefix, err := workflowIDPrefix(ctx, cfg.Temporal, rt)
	if err != nil {
		return err
	}
	srv := server.New(cfg.HTTP, server.Deps{
		Logger:   rt.Logger,
		Registry: rt.Metrics.Registry,
		Checks:   checks,
		Store:    store,
		ClientIP: proxies,
		Tokens:   tokens,
		OIDC:     oidc,
		Kube:     rt.Kube,
		Secrets:  box,
		Outbound: cfg.Hub.SafeHTTP(""),
		SMS:      sms,
		Mail:     mail,
		Workflows: &workflows.Client{Temporal: rt.Temporal, Namespace: cfg.Temporal.Namespace,
			TaskQueue: cfg.Temporal.TaskQueue, IDPrefix: prefix},
	})
	return srv.Run(ctx)
}
