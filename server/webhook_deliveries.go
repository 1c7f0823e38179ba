package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"go.temporal.io/api/serviceerror"

	"github.com/streamspace/enterprise/activities"
	"github.com/streamspace/enterprise/schemas"
	"github.com/streamspace/enterprise/workflows"
)

// A webhook's delivery log (admin): one delivery per (event, webhook), with
// every attempt as sent and as answered; redeliver; a test send.
//
//	GET  /api/webhooks/{id}/deliveries                ?state= ?event_type= ?since= ?limit= ?cursor=; newest first
//	GET  /api/webhooks/{id}/deliveries/{delivery_id}  with every attempt, oldest first
//	POST /api/webhooks/{id}/deliveries/{delivery_id}/redeliver  202: delivered again, same webhook-id
//	POST /api/webhooks/{id}/test                      200: one test event sent now, and its outcome

var eventTypePattern = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$`)

// deliveryWebhook checks that the webhook of the URL exists and returns its
// ID.
func (s *Server) deliveryWebhook(r *http.Request) (uuid.UUID, error) {
	if _, err := s.secrets(); err != nil {
		return uuid.Nil, err
	}
	id, err := webhookIDParam(r)
	if err != nil {
		return uuid.Nil, err
	}
	if _, err := s.deps.Store.GetWebhook(r.Context(), id); err != nil {
		return uuid.Nil, webhookStoreError(err)
	}
	return id, nil
}

// webhookDelivery loads the delivery of the URL, which must belong to the
// webhook of the URL.
func (s *Server) webhookDelivery(r *http.Request) (schemas.Delivery, []schemas.DeliveryAttempt, error) {
	webhookID, err := s.deliveryWebhook(r)
	if err != nil {
		return schemas.Delivery{}, nil, err
	}
	notFound := Errorf(CodeNotFound, "no such delivery of this webhook")
	id, err := uuid.Parse(chi.URLParam(r, "delivery_id"))
	if err != nil {
		return schemas.Delivery{}, nil, notFound
	}
	d, attempts, err := s.deps.Store.ReadDelivery(r.Context(), id)
	if errors.Is(err, schemas.ErrNotFound) || err == nil && (d.WebhookID == nil || *d.WebhookID != webhookID) {
		return schemas.Delivery{}, nil, notFound
	}
	if err != nil {
		return schemas.Delivery{}, nil, err
	}
	auditSetDetail(r.Context(), "delivery_id", d.ID.String())
	return d, attempts, nil
}

type deliveryListResponse struct {
	Deliveries []deliveryJSON `json:"deliveries"`
	NextCursor *string        `json:"next_cursor"`
}

func (s *Server) listWebhookDeliveries(w http.ResponseWriter, r *http.Request) error {
	webhookID, err := s.deliveryWebhook(r)
	if err != nil {
		return err
	}
	f, err := deliveryFilterFrom(r)
	if err != nil {
		return err
	}
	f.WebhookID = &webhookID
	list, next, err := s.deps.Store.ListDeliveries(r.Context(), f)
	if errors.Is(err, schemas.ErrInvalidCursor) {
		return errBadCursor()
	}
	if err != nil {
		return err
	}
	out := deliveryListResponse{Deliveries: make([]deliveryJSON, 0, len(list)), NextCursor: optString(next)}
	for _, d := range list {
		out.Deliveries = append(out.Deliveries, toDeliveryJSON(d))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// deliveryFilterFrom reads the query of a delivery listing (a webhook's or
// an integration's): ?state= ?event_type= ?since= ?limit= ?cursor=.
func deliveryFilterFrom(r *http.Request) (schemas.DeliveryFilter, error) {
	q, err := parseAdminListQuery(r, "state", "event_type", "since", "limit", "cursor")
	if err != nil {
		return schemas.DeliveryFilter{}, err
	}
	f := schemas.DeliveryFilter{Cursor: q.Get("cursor")}
	switch f.State = q.Get("state"); f.State {
	case "", schemas.DeliveryPending, schemas.DeliverySucceeded, schemas.DeliveryRetrying, schemas.DeliveryFailed,
		schemas.DeliveryCancelled:
	default:
		return f, fieldError("state", "must be pending, succeeded, retrying, failed or cancelled")
	}
	if f.EventType = q.Get("event_type"); f.EventType != "" && (len(f.EventType) > 64 || !eventTypePattern.MatchString(f.EventType)) {
		return f, fieldError("event_type", fmt.Sprintf("%q is not an event type, such as session.created", f.EventType))
	}
	if f.Since, err = q.time("since"); err != nil {
		return f, err
	}
	if f.Limit, err = q.limit(); err != nil {
		return f, err
	}
	return f, nil
}

func (s *Server) getWebhookDelivery(w http.ResponseWriter, r *http.Request) error {
	d, attempts, err := s.webhookDelivery(r)
	if err != nil {
		return err
	}
	out := deliveryDetailJSON{deliveryJSON: toDeliveryJSON(d), Attempts: make([]attemptJSON, 0, len(attempts))}
	for _, a := range attempts {
		out.Attempts = append(out.Attempts, toAttemptJSON(a))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// deliveryWorkflows is the workflow client, or 503 when the server has none.
func (s *Server) deliveryWorkflows() (*workflows.Client, error) {
	if s.deps.Workflows == nil {
		return nil, Errorf(CodeUnavailable, "webhook deliveries need Temporal, and this server has no workflow client configured")
	}
	return s.deps.Workflows, nil
}

// redeliverWebhookDelivery asks for one more attempt of a delivery, with
// the same delivery id (webhook-id) and the webhook's retry policy afresh if
// it fails. A delivery still pending (its first attempt under way) is 409.
func (s *Server) redeliverWebhookDelivery(w http.ResponseWriter, r *http.Request) error {
	d, _, err := s.webhookDelivery(r)
	if err != nil {
		return err
	}
	wf, err := s.deliveryWorkflows()
	if err != nil {
		return err
	}
	if d.State == schemas.DeliveryPending {
		return Errorf(CodeConflict, "delivery %s is pending: its first attempt is under way; redeliver once it has an outcome", d.ID)
	}
	// Asked for again (a cancelled one too): it is due at once in its
	// target's retry loop, or in its own run if it has one.
	how, err := s.deps.Store.PrepareRedelivery(r.Context(), d.ID)
	if err != nil {
		return err
	}
	if how.OwnRun {
		err = wf.Redeliver(r.Context(), d.ID)
	} else {
		var target activities.RetryTarget
		switch {
		case how.WebhookID != nil:
			target = workflows.WebhookTarget(*how.WebhookID)
		case how.IntegrationID != nil:
			target = workflows.IntegrationTarget(*how.IntegrationID)
		}
		err = wf.WakeTargetRetries(r.Context(), []activities.RetryTarget{target})
	}
	if err != nil {
		return deliveryWorkflowError(err)
	}
	writeJSON(w, http.StatusAccepted, toDeliveryJSON(d))
	return nil
}

// testSendWait bounds how long POST /api/webhooks/{id}/test waits for the
// attempt (itself bounded by WEBHOOK_TIMEOUT), within the default
// HTTP_WRITE_TIMEOUT.
const testSendWait = 50 * time.Second

// testWebhook sends one test event to the webhook now (enabled or not), in
// one attempt without retries, and answers with the attempt's outcome.
func (s *Server) testWebhook(w http.ResponseWriter, r *http.Request) error {
	id, err := s.deliveryWebhook(r)
	if err != nil {
		return err
	}
	if err := decodeOptionalJSON(r, &struct{}{}); err != nil {
		return err
	}
	wf, err := s.deliveryWorkflows()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), testSendWait)
	defer cancel()
	a, err := wf.SendTest(ctx, workflows.TestTarget{WebhookID: &id})
	if errors.Is(err, schemas.ErrNotFound) {
		return errNoWebhook()
	}
	if err != nil {
		if r.Context().Err() == nil && ctx.Err() != nil {
			return Errorf(CodeUnavailable, "the test send did not finish within %s (is a worker running?); "+
				"its outcome will show in GET /api/webhooks/%s/deliveries", testSendWait, id)
		}
		return deliveryWorkflowError(err)
	}
	auditSetDetail(r.Context(), "delivery_id", a.DeliveryID.String())
	outcome := a.Outcome
	if outcome != schemas.DeliverySucceeded {
		outcome = schemas.DeliveryFailed // one attempt, no retries
	}
	writeJSON(w, http.StatusOK, testResultJSON{DeliveryID: a.DeliveryID, Outcome: outcome, Status: a.ResponseStatus,
		LatencyMS: a.Latency.Milliseconds(), Error: a.Error, Response: a.ResponseBody})
	return nil
}

// deliveryWorkflowError maps an error of the delivery workflow client to
// an API error.
func deliveryWorkflowError(err error) error {
	var (
		unavail  *serviceerror.Unavailable
		deadline *serviceerror.DeadlineExceeded
	)
	if errors.As(err, &unavail) || errors.As(err, &deadline) || errors.Is(err, context.DeadlineExceeded) {
		return Errorf(CodeUnavailable, "the delivery service (Temporal) did not answer in time; try again")
	}
	return err
}
