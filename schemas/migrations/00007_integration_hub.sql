-- +goose Up
-- Webhooks: signed HTTP POSTs of events to an admin's URL.
CREATE TABLE webhooks (
    id                         uuid        PRIMARY KEY,
    name                       text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description                text        NOT NULL DEFAULT '',
    url                        text        NOT NULL,
    events                     text[]      NOT NULL CHECK (cardinality(events) > 0),
    enabled                    boolean     NOT NULL DEFAULT true,
    headers_enc                bytea,       -- sealed JSON object of extra request headers
    secret_enc                 bytea       NOT NULL, -- sealed signing secret (whsec_...)
    previous_secret_enc        bytea,       -- still signs until previous_secret_expires_at
    previous_secret_expires_at timestamptz,
    max_attempts               integer     NOT NULL DEFAULT 9 CHECK (max_attempts BETWEEN 1 AND 50),
    backoff_seconds            integer[]   NOT NULL DEFAULT '{}', -- empty: the default schedule
    rate_limit_per_second      integer     NOT NULL DEFAULT 10 CHECK (rate_limit_per_second BETWEEN 1 AND 10000),
    disabled_reason            text        NOT NULL DEFAULT '', -- why it was disabled automatically
    failing_since              timestamptz, -- start of the current run of failed deliveries
    created_by                 uuid        REFERENCES users (id) ON DELETE SET NULL,
    created_at                 timestamptz NOT NULL DEFAULT now(),
    updated_at                 timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhooks_events_idx ON webhooks USING gin (events) WHERE enabled;

-- Integrations: Slack, Teams, Discord, PagerDuty and email notifications.
CREATE TABLE integrations (
    id              uuid        PRIMARY KEY,
    type            text        NOT NULL CHECK (type IN ('slack', 'teams', 'discord', 'pagerduty', 'email')),
    name            text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    config_enc      bytea       NOT NULL, -- sealed JSON of the type's config (URLs and tokens are secrets)
    events          text[]      NOT NULL CHECK (cardinality(events) > 0),
    enabled         boolean     NOT NULL DEFAULT true,
    disabled_reason text        NOT NULL DEFAULT '',
    failing_since   timestamptz,
    created_by      uuid        REFERENCES users (id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX integrations_events_idx ON integrations USING gin (events) WHERE enabled;

-- One delivery per (event, target); its id is the webhook-id receivers see,
-- stable across attempts and redeliveries. Test sends have no event row.
CREATE TABLE deliveries (
    id              uuid        PRIMARY KEY,
    event_id        uuid,
    event_type      text        NOT NULL,
    webhook_id      uuid        REFERENCES webhooks (id) ON DELETE CASCADE,
    integration_id  uuid        REFERENCES integrations (id) ON DELETE CASCADE,
    test            boolean     NOT NULL DEFAULT false,
    state           text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'succeeded', 'retrying', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    last_status     integer,
    last_error      text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz,
    CHECK ((webhook_id IS NULL) <> (integration_id IS NULL)),
    CHECK (test OR event_id IS NOT NULL)
);
CREATE UNIQUE INDEX deliveries_webhook_event_key ON deliveries (webhook_id, event_id) WHERE webhook_id IS NOT NULL AND NOT test;
CREATE UNIQUE INDEX deliveries_integration_event_key ON deliveries (integration_id, event_id) WHERE integration_id IS NOT NULL AND NOT test;
CREATE INDEX deliveries_webhook_idx ON deliveries (webhook_id, created_at DESC, id DESC) WHERE webhook_id IS NOT NULL;
CREATE INDEX deliveries_integration_idx ON deliveries (integration_id, created_at DESC, id DESC) WHERE integration_id IS NOT NULL;

-- Every attempt of a delivery, as sent and as answered.
CREATE TABLE delivery_attempts (
    delivery_id      uuid        NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    attempt          integer     NOT NULL CHECK (attempt >= 1),
    started_at       timestamptz NOT NULL,
    latency_ms       integer     NOT NULL DEFAULT 0,
    request_url      text        NOT NULL DEFAULT '', -- for integrations: the host only (their URLs hold tokens)
    request_headers  jsonb       NOT NULL DEFAULT '{}',
    request_body     text        NOT NULL DEFAULT '',
    response_status  integer,
    response_headers jsonb       NOT NULL DEFAULT '{}',
    response_body    text        NOT NULL DEFAULT '', -- first 4 KiB
    error            text        NOT NULL DEFAULT '',
    outcome          text        NOT NULL CHECK (outcome IN ('succeeded', 'retrying', 'failed')),
    next_attempt_at  timestamptz,
    PRIMARY KEY (delivery_id, attempt)
);

-- +goose Down
DROP TABLE delivery_attempts;
DROP TABLE deliveries;
DROP TABLE integrations;
DROP TABLE webhooks;
