package server

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/streamspace/enterprise/internal/secretbox"
	"github.com/streamspace/enterprise/schemas"
	"github.com/streamspace/enterprise/workflows"
)

// Webhooks (admin): signed HTTP POSTs of events to an admin's URL. The
// signing secret is sealed at rest (Deps.Secrets) and shown only by create
// and rotate-secret; the extra headers are sealed too and shown by name.
//
//	POST   /api/webhooks                     201, with the secret (once)
//	GET    /api/webhooks                     ?enabled= ?event= ?limit= ?cursor=
//	GET    /api/webhooks/{id}
//	PATCH  /api/webhooks/{id}                partial; re-enabling clears disabled_reason and failing_since
//	DELETE /api/webhooks/{id}                204, with its deliveries
//	POST   /api/webhooks/{id}/rotate-secret  {grace_period?, secret?}: the new secret (once)
//
// The delivery log, redeliver and test are in webhook_deliveries.go.

// webhookRoutes mounts the webhook routes on an admin router.
func (s *Server) webhookRoutes(admin chi.Router) {
	h := func(fn handlerFunc) http.HandlerFunc { return handle(s.deps.Logger, fn) }
	admin.Post("/api/webhooks", h(s.createWebhook))
	admin.Get("/api/webhooks", h(s.listWebhooks))
	admin.Get("/api/webhooks/{id}", h(s.getWebhook))
	admin.Patch("/api/webhooks/{id}", h(s.patchWebhook))
	admin.Delete("/api/webhooks/{id}", h(s.deleteWebhook))
	admin.Post("/api/webhooks/{id}/rotate-secret", h(s.rotateWebhookSecret))
	admin.Get("/api/webhooks/{id}/deliveries", h(s.listWebhookDeliveries))
	admin.Get("/api/webhooks/{id}/deliveries/{delivery_id}", h(s.getWebhookDelivery))
	admin.Post("/api/webhooks/{id}/deliveries/{delivery_id}/redeliver", h(s.redeliverWebhookDelivery))
	admin.Post("/api/webhooks/{id}/test", h(s.testWebhook))
}

// errNoEncryptionKey answers the routes that store secrets when the server
// has no key to seal them with.
func errNoEncryptionKey() *Error {
	return Errorf(CodeUnavailable, "ENCRYPTION_KEY is not set: webhooks and integrations store secrets, "+
		"which this server cannot seal; set ENCRYPTION_KEY (32 bytes, hex or base64) and restart")
}

// secrets is the sealing box, or 503 when the server has none.
func (s *Server) secrets() (*secretbox.Box, error) {
	if s.deps.Secrets == nil {
		return nil, errNoEncryptionKey()
	}
	return s.deps.Secrets, nil
}

func webhookIDParam(r *http.Request) (uuid.UUID, error) {
	id, err := uuid.Parse(chi.URLParam(r, "id"))
	if err != nil {
		return uuid.Nil, errNoWebhook()
	}
	return id, nil
}

func errNoWebhook() *Error { return Errorf(CodeNotFound, "no such webhook") }

func webhookStoreError(err error) error {
	if errors.Is(err, schemas.ErrNotFound) {
		return errNoWebhook()
	}
	return err
}

// sealHeaders seals a webhook's extra headers as a JSON object; none: nil.
func sealHeaders(box *secretbox.Box, h map[string]string) ([]byte, error) {
	if len(h) == 0 {
		return nil, nil
	}
	data, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	sealed, err := box.Seal(data)
	if err != nil {
		return nil, fmt.Errorf("seal webhook headers: %w", err)
	}
	return sealed, nil
}

// openHeaderNames opens a webhook's sealed headers and returns their names.
func openHeaderNames(box *secretbox.Box, sealed []byte) ([]string, error) {
	if len(sealed) == 0 {
		return []string{}, nil
	}
	data, err := box.Open(sealed)
	if err != nil {
		return nil, fmt.Errorf("open webhook headers: %w", err)
	}
	var h map[string]string
	if err := json.Unmarshal(data, &h); err != nil {
		return nil, fmt.Errorf("decode webhook headers: %w", err)
	}
	return headerNames(h), nil
}

func (s *Server) webhookView(box *secretbox.Box, w schemas.Webhook) (webhookJSON, error) {
	names, err := openHeaderNames(box, w.HeadersEnc)
	if err != nil {
		return webhookJSON{}, err
	}
	return toWebhookJSON(w, names), nil
}

func (s *Server) createWebhook(w http.ResponseWriter, r *http.Request) error {
	box, err := s.secrets()
	if err != nil {
		return err
	}
	var req createWebhookRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if err := validateWebhookName(req.Name); err != nil {
		return err
	}
	if req.URL == "" {
		return fieldError("url", "is required")
	}
	url, err := checkWebhookURL("url", req.URL, s.deps.Outbound)
	if err != nil {
		return err
	}
	events, err := validateEvents(req.Events)
	if err != nil {
		return err
	}
	if err := validateWebhookDescription(req.Description); err != nil {
		return err
	}
	hook := schemas.Webhook{Name: req.Name, Description: req.Description, URL: url, Events: events,
		Enabled: req.Enabled == nil || *req.Enabled, MaxAttempts: schemas.DefaultMaxAttempts,
		BackoffSeconds: []int{}, RateLimitPerSecond: s.cfg.WebhookRateLimit}
	if hook.RateLimitPerSecond <= 0 {
		hook.RateLimitPerSecond = schemas.DefaultWebhookRateLimit
	}
	if err := applyRetryPolicy(&hook, req.RetryPolicy); err != nil {
		return err
	}
	if req.RateLimitPerSecond != nil {
		if err := validateRateLimit(*req.RateLimitPerSecond); err != nil {
			return err
		}
		hook.RateLimitPerSecond = *req.RateLimitPerSecond
	}
	headers, err := validateHeaders(req.Headers)
	if err != nil {
		return err
	}
	secret := generateSecret()
	if req.Secret != nil {
		if secret, err = normalizeSecret("secret", *req.Secret); err != nil {
			return err
		}
	}
	if hook.SecretEnc, err = box.SealString(secret); err != nil {
		return fmt.Errorf("seal webhook secret: %w", err)
	}
	if hook.HeadersEnc, err = sealHeaders(box, headers); err != nil {
		return err
	}
	ctx := r.Context()
	if p, ok := principalFrom(ctx); ok && p.UserID != uuid.Nil {
		hook.CreatedBy = &p.UserID
	}
	if err := s.deps.Store.InTx(ctx, func(tx pgx.Tx) error { return schemas.InsertWebhook(ctx, tx, &hook) }); err != nil {
		return err
	}
	auditSetTarget(ctx, hook.ID.String())
	auditSetDetail(ctx, "events", events)
	w.Header().Set("Location", "/api/webhooks/"+hook.ID.String())
	writeJSON(w, http.StatusCreated, webhookSecretJSON{webhookJSON: toWebhookJSON(hook, headerNames(headers)), Secret: secret})
	return nil
}

type webhookListResponse struct {
	Webhooks   []webhookJSON `json:"webhooks"`
	NextCursor *string       `json:"next_cursor"`
}

// listWebhooks answers one page of webhooks, newest first.
func (s *Server) listWebhooks(w http.ResponseWriter, r *http.Request) error {
	box, err := s.secrets()
	if err != nil {
		return err
	}
	q, err := parseAdminListQuery(r, "enabled", "event", "limit", "cursor")
	if err != nil {
		return err
	}
	f := schemas.WebhookFilter{Cursor: q.Get("cursor")}
	if v := q.Get("enabled"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fieldError("enabled", "must be true or false")
		}
		f.Enabled = &b
	}
	if v := q.Get("event"); v != "" {
		if _, ok := schemas.LookupEvent(schemas.EventType(v)); !ok {
			return fieldError("event", fmt.Sprintf("unknown event type %q", v))
		}
		f.Event = schemas.EventType(v)
	}
	if f.Limit, err = q.limit(); err != nil {
		return err
	}
	hooks, next, err := s.deps.Store.ListWebhooks(r.Context(), f)
	if errors.Is(err, schemas.ErrInvalidCursor) {
		return errBadCursor()
	}
	if err != nil {
		return err
	}
	out := webhookListResponse{Webhooks: make([]webhookJSON, 0, len(hooks)), NextCursor: optString(next)}
	for _, hook := range hooks {
		v, err := s.webhookView(box, hook)
		if err != nil {
			return err
		}
		out.Webhooks = append(out.Webhooks, v)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getWebhook(w http.ResponseWriter, r *http.Request) error {
	box, err := s.secrets()
	if err != nil {
		return err
	}
	id, err := webhookIDParam(r)
	if err != nil {
		return err
	}
	hook, err := s.deps.Store.GetWebhook(r.Context(), id)
	if err != nil {
		return webhookStoreError(err)
	}
	v, err := s.webhookView(box, hook)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) patchWebhook(w http.ResponseWriter, r *http.Request) error {
	box, err := s.secrets()
	if err != nil {
		return err
	}
	id, err := webhookIDParam(r)
	if err != nil {
		return err
	}
	var req patchWebhookRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	// Validate everything before touching the row.
	var url string
	if req.URL != nil {
		if url, err = checkWebhookURL("url", *req.URL, s.deps.Outbound); err != nil {
			return err
		}
	}
	var events []string
	if req.Events != nil {
		if events, err = validateEvents(req.Events); err != nil {
			return err
		}
	}
	if req.Name != nil {
		if err := validateWebhookName(*req.Name); err != nil {
			return err
		}
	}
	if req.Description != nil {
		if err := validateWebhookDescription(*req.Description); err != nil {
			return err
		}
	}
	if req.RateLimitPerSecond != nil {
		if err := validateRateLimit(*req.RateLimitPerSecond); err != nil {
			return err
		}
	}
	var headers map[string]string
	if req.Headers != nil {
		if headers, err = validateHeaders(*req.Headers); err != nil {
			return err
		}
	}
	ctx := r.Context()
	var hook schemas.Webhook
	var cancelled schemas.Cancelled
	err = s.deps.Store.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		if hook, err = schemas.LockWebhook(ctx, tx, id); err != nil {
			return err
		}
		var changed []string
		if req.Name != nil && *req.Name != hook.Name {
			hook.Name, changed = *req.Name, append(changed, "name")
		}
		if req.URL != nil && url != hook.URL {
			hook.URL, changed = url, append(changed, "url")
		}
		if events != nil {
			hook.Events, changed = events, append(changed, "events")
		}
		if req.Description != nil && *req.Description != hook.Description {
			hook.Description, changed = *req.Description, append(changed, "description")
		}
		if req.RateLimitPerSecond != nil && *req.RateLimitPerSecond != hook.RateLimitPerSecond {
			hook.RateLimitPerSecond, changed = *req.RateLimitPerSecond, append(changed, "rate_limit_per_second")
		}
		if req.RetryPolicy != nil {
			if err := applyRetryPolicy(&hook, req.RetryPolicy); err != nil {
				return err
			}
			changed = append(changed, "retry_policy")
		}
		if req.Headers != nil {
			if hook.HeadersEnc, err = sealHeaders(box, headers); err != nil {
				return err
			}
			changed = append(changed, "headers")
		}
		if req.Enabled != nil {
			if *req.Enabled && !hook.Enabled {
				// Re-enabling starts afresh: the failure streak that may
				// have disabled it is forgotten.
				hook.DisabledReason, hook.FailingSince = "", nil
			}
			if *req.Enabled != hook.Enabled {
				hook.Enabled, changed = *req.Enabled, append(changed, "enabled")
			}
		}
		auditSetDetail(ctx, "changed", changed)
		if err := schemas.UpdateWebhook(ctx, tx, &hook); err != nil {
			return err
		}
		if !hook.Enabled {
			cancelled, err = schemas.CancelWebhookDeliveries(ctx, tx, hook.ID, "webhook disabled")
		}
		return err
	})
	if err != nil {
		return webhookStoreError(err)
	}
	s.endDeliveryRuns(ctx, workflows.WebhookTarget(hook.ID), cancelled)
	v, err := s.webhookView(box, hook)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) deleteWebhook(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.secrets(); err != nil {
		return err
	}
	id, err := webhookIDParam(r)
	if err != nil {
		return err
	}
	waiting, err := s.deps.Store.DeleteWebhook(r.Context(), id)
	if err != nil {
		return webhookStoreError(err)
	}
	s.endDeliveryRuns(r.Context(), workflows.WebhookTarget(id), waiting)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Rotation's grace period: how long the previous secret keeps signing.
const (
	defaultSecretGrace = 24 * time.Hour
	maxSecretGrace     = 7 * 24 * time.Hour
)

// rotateWebhookSecret makes a new secret current; the old one keeps signing
// (a second signature in webhook-signature) for the grace period, replacing
// any earlier previous secret. A grace period of 0 drops the old secret at
// once.
func (s *Server) rotateWebhookSecret(w http.ResponseWriter, r *http.Request) error {
	box, err := s.secrets()
	if err != nil {
		return err
	}
	id, err := webhookIDParam(r)
	if err != nil {
		return err
	}
	var req rotateSecretRequest
	if err := decodeOptionalJSON(r, &req); err != nil {
		return err
	}
	grace := defaultSecretGrace
	if req.GracePeriod != nil {
		d, err := time.ParseDuration(*req.GracePeriod)
		if err != nil || d < 0 || d > maxSecretGrace {
			return fieldError("grace_period", fmt.Sprintf("must be a duration from 0s to %s, such as 24h or 30m", "168h"))
		}
		grace = d
	}
	secret := generateSecret()
	if req.Secret != nil {
		if secret, err = normalizeSecret("secret", *req.Secret); err != nil {
			return err
		}
	}
	sealed, err := box.SealString(secret)
	if err != nil {
		return fmt.Errorf("seal webhook secret: %w", err)
	}
	ctx := r.Context()
	var hook schemas.Webhook
	err = s.deps.Store.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		if hook, err = schemas.LockWebhook(ctx, tx, id); err != nil {
			return err
		}
		if grace > 0 {
			expires := time.Now().Add(grace).UTC().Truncate(time.Microsecond)
			hook.PreviousSecretEnc, hook.PreviousSecretExpiresAt = hook.SecretEnc, &expires
		} else {
			hook.PreviousSecretEnc, hook.PreviousSecretExpiresAt = nil, nil
		}
		hook.SecretEnc = sealed
		return schemas.UpdateWebhook(ctx, tx, &hook)
	})
	if err != nil {
		return webhookStoreError(err)
	}
	auditSetDetail(ctx, "grace_period", grace.String())
	writeJSON(w, http.StatusOK, rotateSecretJSON{ID: hook.ID, Secret: secret, PreviousSecretExpiresAt: hook.PreviousSecretExpiresAt})
	return nil
}

// decodeOptionalJSON is decodeJSON for a body that may be left out: an
// empty body leaves dst as it is.
func decodeOptionalJSON(r *http.Request, dst any) error {
	br := bufio.NewReader(r.Body)
	if _, err := br.Peek(1); errors.Is(err, io.EOF) {
		return nil
	}
	r.Body = struct {
		io.Reader
		io.Closer
	}{br, r.Body}
	return decodeJSON(r, dst)
}
