package schemas

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// The integration hub's rows (migration 00007): webhooks, integrations, and
// the deliveries of events to them with every attempt. Secrets (webhook
// signing secrets, extra headers, integration configs) are stored sealed
// (internal/secretbox) and only opened by the code that sends.

// Webhook is a webhook as stored; SecretEnc, PreviousSecretEnc and
// HeadersEnc are sealed.
type Webhook struct {
	ID                      uuid.UUID
	Name                    string
	Description             string
	URL                     string
	Events                  []string
	Enabled                 bool
	HeadersEnc              []byte
	SecretEnc               []byte
	PreviousSecretEnc       []byte
	PreviousSecretExpiresAt *time.Time
	MaxAttempts             int
	BackoffSeconds          []int // empty: DefaultRetrySchedule
	RateLimitPerSecond      int
	DisabledReason          string
	FailingSince            *time.Time
	CreatedBy               *uuid.UUID
	CreatedAt               time.Time
	UpdatedAt               time.Time
}

// DefaultRetrySchedule is the wait before each retry of a webhook without a
// backoff_seconds of its own: Svix's schedule (about 27 hours in all), jitter
// added by the sender.
var DefaultRetrySchedule = []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute,
	2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}

// DefaultMaxAttempts is the first attempt plus one per retry of the default
// schedule.
const DefaultMaxAttempts = 8

// Integration types.
const (
	IntegrationSlack     = "slack"
	IntegrationTeams     = "teams"
	IntegrationDiscord   = "discord"
	IntegrationPagerDuty = "pagerduty"
	IntegrationEmail     = "email"
)

// Integration is a notification channel as stored; ConfigEnc is the sealed
// JSON of its type's configuration.
type Integration struct {
	ID             uuid.UUID
	Type           string
	Name           string
	ConfigEnc      []byte
	Events         []string
	Enabled        bool
	DisabledReason string
	FailingSince   *time.Time
	CreatedBy      *uuid.UUID
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Delivery states.
const (
	DeliveryPending   = "pending"   // not attempted yet
	DeliverySucceeded = "succeeded" // a 2xx answer
	DeliveryRetrying  = "retrying"  // failed; another attempt is scheduled
	DeliveryFailed    = "failed"    // gave up (attempts exhausted, 410, disabled)
	DeliveryCancelled = "cancelled" // its target was disabled or deleted while it waited to retry
)

// Delivery is one event to one webhook or integration. Its ID is the
// webhook-id receivers see, the same for every attempt and redelivery.
type Delivery struct {
	ID            uuid.UUID
	EventID       *uuid.UUID // nil for a test send
	EventType     string
	WebhookID     *uuid.UUID
	IntegrationID *uuid.UUID
	Test          bool
	State         string
	Attempts      int
	NextAttemptAt *time.Time
	LastStatus    *int
	LastError     string
	CreatedAt     time.Time
	UpdatedAt     time.Time
	CompletedAt   *time.Time
}

// DeliveryAttempt is one attempt, as sent and as answered.
type DeliveryAttempt struct {
	DeliveryID      uuid.UUID
	Attempt         int
	StartedAt       time.Time
	Latency         time.Duration
	RequestURL      string
	RequestHeaders  map[string]string
	RequestBody     string
	ResponseStatus  *int
	ResponseHeaders map[string]string
	ResponseBody    string // first ResponseExcerptBytes
	Error           string
	Outcome         string // succeeded | retrying | failed
	NextAttemptAt   *time.Time
}

// ResponseExcerptBytes is how much of a response body an attempt keeps.
const ResponseExcerptBytes = 4096

// WebhookPayload is the body of every webhook request, the seed's format
// plus a stable delivery id. Signature is "sha256=" + the hex HMAC-SHA256,
// with the webhook's secret, of the exact body bytes as sent but with the
// signature field's value empty (`"signature":""`): a receiver replaces the
// value it got by "" in the raw body and recomputes (README, "Webhooks").
// The headers sign the raw body as sent.
type WebhookPayload struct {
	ID        string          `json:"id"` // the delivery id (= webhook-id header)
	Event     string          `json:"event"`
	Timestamp time.Time       `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
	Signature string          `json:"signature"`
}
