// Package notify renders events for people and sends them to Slack,
// Microsoft Teams, Discord, PagerDuty and email. Each integration type has a
// Sender; the delivery activities call it once per attempt and record the
// Result like a webhook attempt.
package notify

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// Event is what a Sender delivers: one outbox event, or a test.
type Event struct {
	DeliveryID string // stable across attempts: the dedup key where a provider takes one
	ID         string // the event id ("" for a test)
	Type       string // a catalogued event type, or "test"
	OccurredAt time.Time
	Data       json.RawMessage
}

// Result is one attempt as sent and as answered, for the delivery log. A
// Sender returns a Result even with an error when it got that far.
type Result struct {
	Status          int           // the provider's HTTP status (250 for an accepted email); 0: no answer
	RetryAfter      time.Duration // the provider's Retry-After, when it sent one
	Permanent       bool          // retrying cannot help (bad config, 4xx other than 408/429)
	RequestURL      string        // scheme and host only: integration URLs carry tokens
	RequestHeaders  map[string]string
	RequestBody     string
	ResponseHeaders map[string]string
	ResponseBody    string // an excerpt
}

// Sender delivers an event through one integration type, configured by the
// opened JSON of the integration's config.
type Sender interface {
	Send(ctx context.Context, config json.RawMessage, ev Event) (Result, error)
}

// Deps are what the senders need. HTTP must be an SSRF-safe client
// (internal/safehttp); the base URLs are overridable so tests can point the
// senders at local servers that speak the providers' protocols.
type Deps struct {
	HTTP               *http.Client
	SMTP               SMTPConfig
	SlackAPIURL        string // "" = https://slack.com/api/
	PagerDutyEventsURL string // "" = https://events.pagerduty.com/v2/enqueue
}

// SMTPConfig is the mail server email integrations send through.
type SMTPConfig struct {
	Host     string
	Port     int
	Username string
	Password string
	From     string
	TLS      string // starttls | tls | none
}
