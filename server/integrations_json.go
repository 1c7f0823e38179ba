package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/streamspace/enterprise/activities/notify"
	"github.com/streamspace/enterprise/schemas"
)

// createIntegrationRequest is POST /api/integrations. Config's shape depends
// on Type (activities/notify: SlackConfig, TeamsConfig, DiscordConfig,
// PagerDutyConfig, EmailConfig).
type createIntegrationRequest struct {
	Type    string          `json:"type"`
	Name    string          `json:"name"`
	Config  json.RawMessage `json:"config"`
	Events  []string        `json:"events"`
	Enabled *bool           `json:"enabled"`
}

// patchIntegrationRequest changes only the fields present; a config replaces
// the whole config.
type patchIntegrationRequest struct {
	Name    *string         `json:"name"`
	Config  json.RawMessage `json:"config"`
	Events  []string        `json:"events"`
	Enabled *bool           `json:"enabled"`
}

// integrationJSON is an integration as the API shows it: the config
// redacted (notify.RedactConfig), never its tokens, keys or webhook URLs.
type integrationJSON struct {
	ID             uuid.UUID      `json:"id"`
	Type           string         `json:"type"`
	Name           string         `json:"name"`
	Config         map[string]any `json:"config"`
	Events         []string       `json:"events"`
	Enabled        bool           `json:"enabled"`
	DisabledReason string         `json:"disabled_reason"`
	FailingSince   *time.Time     `json:"failing_since"`
	CreatedBy      *uuid.UUID     `json:"created_by"`
	CreatedAt      time.Time      `json:"created_at"`
	UpdatedAt      time.Time      `json:"updated_at"`
}

func toIntegrationJSON(in schemas.Integration, config json.RawMessage) integrationJSON {
	return integrationJSON{ID: in.ID, Type: in.Type, Name: in.Name, Config: notify.RedactConfig(in.Type, config),
		Events: in.Events, Enabled: in.Enabled, DisabledReason: in.DisabledReason, FailingSince: utcPtr(in.FailingSince),
		CreatedBy: in.CreatedBy, CreatedAt: in.CreatedAt.UTC(), UpdatedAt: in.UpdatedAt.UTC()}
}

type integrationListResponse struct {
	Integrations []integrationJSON `json:"integrations"`
	NextCursor   *string           `json:"next_cursor"`
}

// integrationDeliveryJSON is a delivery to an integration: the webhook
// deliveries' shape with integration_id in place of webhook_id.
type integrationDeliveryJSON struct {
	deliveryJSON
	IntegrationID *uuid.UUID `json:"integration_id"`
}

func toIntegrationDeliveryJSON(d schemas.Delivery) integrationDeliveryJSON {
	return integrationDeliveryJSON{deliveryJSON: toDeliveryJSON(d), IntegrationID: d.IntegrationID}
}

type integrationDeliveryListResponse struct {
	Deliveries []integrationDeliveryJSON `json:"deliveries"`
	NextCursor *string                   `json:"next_cursor"`
}

type integrationDeliveryDetailJSON struct {
	integrationDeliveryJSON
	Attempts []attemptJSON `json:"attempts"`
}

// toIntegrationAttemptJSON is an attempt as the webhook deliveries show it,
// but with the request headers as the sender recorded them: the senders
// already replaced credentials ("[redacted]"), and the other headers (an
// email's From, To and Subject) are worth reading.
func toIntegrationAttemptJSON(a schemas.DeliveryAttempt) attemptJSON {
	out := toAttemptJSON(a)
	h := make(map[string]string, len(a.RequestHeaders))
	for k, v := range a.RequestHeaders {
		switch strings.ToLower(k) {
		case "authorization", "cookie", "proxy-authorization":
			v = "[redacted]"
		}
		h[k] = v
	}
	out.Request.Headers = h
	return out
}

// integrationTestJSON answers POST /api/integrations/{id}/test: the one
// attempt's outcome (the webhooks' test answer, with the request URL, which
// for an integration is the scheme and host only).
type integrationTestJSON struct {
	DeliveryID uuid.UUID `json:"delivery_id"`
	Outcome    string    `json:"outcome"` // succeeded | failed
	Status     *int      `json:"status"`  // null when no answer came
	LatencyMS  int64     `json:"latency_ms"`
	Error      string    `json:"error"`
	RequestURL string    `json:"request_url"`
	Response   string    `json:"response"` // the first 4 KiB of the answer's body
}

func toIntegrationTestJSON(a schemas.DeliveryAttempt) integrationTestJSON {
	outcome := a.Outcome
	if outcome != schemas.DeliverySucceeded {
		outcome = schemas.DeliveryFailed // a test is sent once: nothing retries it
	}
	return integrationTestJSON{DeliveryID: a.DeliveryID, Outcome: outcome, Status: a.ResponseStatus,
		LatencyMS: a.Latency.Milliseconds(), Error: a.Error, RequestURL: a.RequestURL, Response: a.ResponseBody}
}

const integrationNameMax = 200

func validateIntegrationName(s string) error {
	if strings.TrimSpace(s) == "" || utf8.RuneCountInString(s) > integrationNameMax || !utf8.ValidString(s) ||
		strings.ContainsAny(s, "\x00\r\n") {
		return fieldError("name", fmt.Sprintf("must be 1-%d characters on one line", integrationNameMax))
	}
	return nil
}

func validateIntegrationType(t string) error {
	if t == "" {
		return fieldError("type", "is required: one of "+strings.Join(notify.Types, ", "))
	}
	if !notify.ValidType(t) {
		return fieldError("type", fmt.Sprintf("unknown integration type %q; known: %s", t, strings.Join(notify.Types, ", ")))
	}
	return nil
}

// validateIntegrationConfig checks a config for its type and returns it
// compacted, as it will be sealed.
func (s *Server) validateIntegrationConfig(typ string, config json.RawMessage) ([]byte, error) {
	if err := notify.ValidateConfig(typ, config, s.deps.Outbound); err != nil {
		var ce *notify.ConfigError
		if errors.As(err, &ce) {
			return nil, fieldError(ce.Field, ce.Issue)
		}
		return nil, fieldError("config", "is not valid")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, config); err != nil {
		return nil, fieldError("config", "is not valid JSON")
	}
	return buf.Bytes(), nil
}
