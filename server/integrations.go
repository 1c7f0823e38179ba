package server

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/streamspace/enterprise/internal/secretbox"
	"github.com/streamspace/enterprise/schemas"
	"github.com/streamspace/enterprise/workflows"
)

// Integrations (admin): Slack, Microsoft Teams, Discord, PagerDuty and email
// notifications of events. The config (webhook URLs, bot tokens, routing
// keys, recipients) is sealed at rest (Deps.Secrets) and shown redacted
// (notify.RedactConfig); deliveries go through the same durable engine as
// webhooks.
//
//	POST   /api/integrations                 201 {type, name, config, events[], enabled?}
//	GET    /api/integrations                 ?type= ?enabled= ?event= ?limit= ?cursor=
//	GET    /api/integrations/{id}
//	PATCH  /api/integrations/{id}            {name?, config? (replaces it), events?, enabled?}
//	DELETE /api/integrations/{id}            204, with its deliveries
//	POST   /api/integrations/{id}/test       200: a test notification sent now, and its outcome
//	GET    /api/integrations/{id}/deliveries                ?state= ?event_type= ?since= ?limit= ?cursor=
//	GET    /api/integrations/{id}/deliveries/{delivery_id}  with every attempt

// integrationRoutes mounts the integration routes on an admin router.
func (s *Server) integrationRoutes(admin chi.Router) {
	h := func(fn handlerFunc) http.HandlerFunc { return handle(s.deps.Logger, fn) }
	admin.Post("/api/integrations", h(s.createIntegration))
	admin.Get("/api/integrations", h(s.listIntegrations))
	admin.Get("/api/integrations/{id}", h(s.getIntegration))
	admin.Patch("/api/integrations/{id}", h(s.patchIntegration))
	admin.Delete("/api/integrations/{id}", h(s.deleteIntegration))
	admin.Post("/api/integrations/{id}/test", h(s.testIntegration))
	admin.Get("/api/integrations/{id}/deliveries", h(s.listIntegrationDeliveries))
	admin.Get("/api/integrations/{id}/deliveries/{delivery_id}", h(s.getIntegrationDelivery))
}

func errNoIntegration() *Error { return Errorf(CodeNotFound, "no such integration") }

func integrationIDParam(r *http.Request) (uuid.UUID, error) {
	id, err := uuid.Parse(chi.URLParam(r, "id"))
	if err != nil {
		return uuid.Nil, errNoIntegration()
	}
	return id, nil
}

func integrationStoreError(err error) error {
	if errors.Is(err, schemas.ErrNotFound) {
		return errNoIntegration()
	}
	return err
}

// integrationView opens the config to redact it. A config that cannot be
// opened (sealed with a key this server no longer has) shows as {}, so the
// integration can still be listed, fixed (PATCH config) or deleted.
func (s *Server) integrationView(r *http.Request, box *secretbox.Box, in schemas.Integration) integrationJSON {
	config, err := box.Open(in.ConfigEnc)
	if err != nil {
		s.deps.Logger.WarnContext(r.Context(), "cannot open an integration's config", "integration_id", in.ID, "err", err)
		config = nil
	}
	return toIntegrationJSON(in, config)
}

func (s *Server) createIntegration(w http.ResponseWriter, r *http.Request) error {
	box, err := s.secrets()
	if err != nil {
		return err
	}
	var req createIntegrationRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if err := validateIntegrationType(req.Type); err != nil {
		return err
	}
	if err := validateIntegrationName(req.Name); err != nil {
		return err
	}
	events, err := validateEvents(req.Events)
	if err != nil {
		return err
	}
	config, err := s.validateIntegrationConfig(req.Type, req.Config)
	if err != nil {
		return err
	}
	in := schemas.Integration{Type: req.Type, Name: req.Name, Events: events, Enabled: req.Enabled == nil || *req.Enabled}
	if in.ConfigEnc, err = box.Seal(config); err != nil {
		return fmt.Errorf("seal integration config: %w", err)
	}
	ctx := r.Context()
	if p, ok := principalFrom(ctx); ok && p.UserID != uuid.Nil {
		in.CreatedBy = &p.UserID
	}
	if err := s.deps.Store.InTx(ctx, func(tx pgx.Tx) error { return schemas.InsertIntegration(ctx, tx, &in) }); err != nil {
		return err
	}
	auditSetTarget(ctx, in.ID.String())
	auditSetDetail(ctx, "type", in.Type)
	auditSetDetail(ctx, "events", events)
	w.Header().Set("Location", "/api/integrations/"+in.ID.String())
	writeJSON(w, http.StatusCreated, toIntegrationJSON(in, config))
	return nil
}

func (s *Server) listIntegrations(w http.ResponseWriter, r *http.Request) error {
	box, err := s.secrets()
	if err != nil {
		return err
	}
	q, err := parseAdminListQuery(r, "type", "enabled", "event", "limit", "cursor")
	if err != nil {
		return err
	}
	f := schemas.IntegrationFilter{Cursor: q.Get("cursor")}
	if f.Type = q.Get("type"); f.Type != "" {
		if err := validateIntegrationType(f.Type); err != nil {
			return err
		}
	}
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
	list, next, err := s.deps.Store.ListIntegrations(r.Context(), f)
	if errors.Is(err, schemas.ErrInvalidCursor) {
		return errBadCursor()
	}
	if err != nil {
		return err
	}
	out := integrationListResponse{Integrations: make([]integrationJSON, 0, len(list)), NextCursor: optString(next)}
	for _, in := range list {
		out.Integrations = append(out.Integrations, s.integrationView(r, box, in))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getIntegration(w http.ResponseWriter, r *http.Request) error {
	box, err := s.secrets()
	if err != nil {
		return err
	}
	id, err := integrationIDParam(r)
	if err != nil {
		return err
	}
	in, err := s.deps.Store.GetIntegration(r.Context(), id)
	if err != nil {
		return integrationStoreError(err)
	}
	writeJSON(w, http.StatusOK, s.integrationView(r, box, in))
	return nil
}

func (s *Server) patchIntegration(w http.ResponseWriter, r *http.Request) error {
	box, err := s.secrets()
	if err != nil {
		return err
	}
	id, err := integrationIDParam(r)
	if err != nil {
		return err
	}
	var req patchIntegrationRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	// Validate what does not depend on the row before locking it.
	if req.Name != nil {
		if err := validateIntegrationName(*req.Name); err != nil {
			return err
		}
	}
	var events []string
	if req.Events != nil {
		if events, err = validateEvents(req.Events); err != nil {
			return err
		}
	}
	if req.Config != nil && string(req.Config) == "null" {
		return fieldError("config", "cannot be null; send the whole new config, or leave it out")
	}
	ctx := r.Context()
	var in schemas.Integration
	var config []byte
	var cancelled schemas.Cancelled
	err = s.deps.Store.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		if in, err = schemas.LockIntegration(ctx, tx, id); err != nil {
			return err
		}
		var changed []string
		if req.Config != nil {
			// the type is fixed, so the config is checked against the row's
			if config, err = s.validateIntegrationConfig(in.Type, req.Config); err != nil {
				return err
			}
			if in.ConfigEnc, err = box.Seal(config); err != nil {
				return fmt.Errorf("seal integration config: %w", err)
			}
			changed = append(changed, "config")
		}
		if req.Name != nil && *req.Name != in.Name {
			in.Name, changed = *req.Name, append(changed, "name")
		}
		if events != nil {
			in.Events, changed = events, append(changed, "events")
		}
		if req.Enabled != nil {
			if *req.Enabled && !in.Enabled {
				// Re-enabling starts afresh: the failure streak that may
				// have disabled it is forgotten.
				in.DisabledReason, in.FailingSince = "", nil
			}
			if *req.Enabled != in.Enabled {
				in.Enabled, changed = *req.Enabled, append(changed, "enabled")
			}
		}
		auditSetDetail(ctx, "changed", changed)
		if err := schemas.UpdateIntegration(ctx, tx, &in); err != nil {
			return err
		}
		if !in.Enabled {
			cancelled, err = schemas.CancelIntegrationDeliveries(ctx, tx, in.ID, "integration disabled")
		}
		return err
	})
	if err != nil {
		return integrationStoreError(err)
	}
	s.endDeliveryRuns(ctx, workflows.IntegrationTarget(in.ID), cancelled)
	auditSetTarget(ctx, in.ID.String())
	if config != nil {
		writeJSON(w, http.StatusOK, toIntegrationJSON(in, config))
		return nil
	}
	writeJSON(w, http.StatusOK, s.integrationView(r, box, in))
	return nil
}

func (s *Server) deleteIntegration(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.secrets(); err != nil {
		return err
	}
	id, err := integrationIDParam(r)
	if err != nil {
		return err
	}
	waiting, err := s.deps.Store.DeleteIntegration(r.Context(), id)
	if err != nil {
		return integrationStoreError(err)
	}
	s.endDeliveryRuns(r.Context(), workflows.IntegrationTarget(id), waiting)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// deliveryIntegration checks that the integration of the URL exists and
// returns it.
func (s *Server) deliveryIntegration(r *http.Request) (schemas.Integration, error) {
	if _, err := s.secrets(); err != nil {
		return schemas.Integration{}, err
	}
	id, err := integrationIDParam(r)
	if err != nil {
		return schemas.Integration{}, err
	}
	in, err := s.deps.Store.GetIntegration(r.Context(), id)
	if err != nil {
		return schemas.Integration{}, integrationStoreError(err)
	}
	return in, nil
}

// testIntegration sends one test notification through the integration now
// (disabled or not: testing is how an admin checks a fix before
// re-enabling) and answers with the attempt's outcome. A failed send is
// still 200: the outcome says what the provider answered.
func (s *Server) testIntegration(w http.ResponseWriter, r *http.Request) error {
	in, err := s.deliveryIntegration(r)
	if err != nil {
		return err
	}
	if err := decodeOptionalJSON(r, &struct{}{}); err != nil {
		return err
	}
	if s.deps.Workflows == nil {
		return Errorf(CodeUnavailable, "integration tests need Temporal, and this server has no workflow client configured")
	}
	ctx := r.Context()
	auditSetTarget(ctx, in.ID.String())
	attempt, err := s.deps.Workflows.SendTest(ctx, workflows.TestTarget{IntegrationID: &in.ID})
	if err != nil {
		return integrationStoreError(err) // deleted meanwhile: 404
	}
	auditSetDetail(ctx, "delivery_id", attempt.DeliveryID.String())
	writeJSON(w, http.StatusOK, toIntegrationTestJSON(attempt))
	return nil
}

func (s *Server) listIntegrationDeliveries(w http.ResponseWriter, r *http.Request) error {
	in, err := s.deliveryIntegration(r)
	if err != nil {
		return err
	}
	f, err := deliveryFilterFrom(r)
	if err != nil {
		return err
	}
	f.IntegrationID = &in.ID
	list, next, err := s.deps.Store.ListDeliveries(r.Context(), f)
	if errors.Is(err, schemas.ErrInvalidCursor) {
		return errBadCursor()
	}
	if err != nil {
		return err
	}
	out := integrationDeliveryListResponse{Deliveries: make([]integrationDeliveryJSON, 0, len(list)), NextCursor: optString(next)}
	for _, d := range list {
		out.Deliveries = append(out.Deliveries, toIntegrationDeliveryJSON(d))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getIntegrationDelivery(w http.ResponseWriter, r *http.Request) error {
	in, err := s.deliveryIntegration(r)
	if err != nil {
		return err
	}
	notFound := Errorf(CodeNotFound, "no such delivery of this integration")
	id, err := uuid.Parse(chi.URLParam(r, "delivery_id"))
	if err != nil {
		return notFound
	}
	d, attempts, err := s.deps.Store.ReadDelivery(r.Context(), id)
	if errors.Is(err, schemas.ErrNotFound) || err == nil && (d.IntegrationID == nil || *d.IntegrationID != in.ID) {
		return notFound
	}
	if err != nil {
		return err
	}
	out := integrationDeliveryDetailJSON{integrationDeliveryJSON: toIntegrationDeliveryJSON(d),
		Attempts: make([]attemptJSON, 0, len(attempts))}
	for _, a := range attempts {
		out.Attempts = append(out.Attempts, toIntegrationAttemptJSON(a))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
