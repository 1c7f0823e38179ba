-- +goose Up
-- The read model of sessions: who owns each Session resource, what it holds
-- against quotas, and the phase its lifecycle workflow last recorded. The
-- Session custom resource in Kubernetes is the live object; this row is what
-- quotas, listings and reports read, and it outlives the resource.
CREATE TABLE sessions (
    id               text        PRIMARY KEY,  -- the Session's Kubernetes name
    namespace        text        NOT NULL,
    user_id          uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    username         text        NOT NULL,
    template         text        NOT NULL,
    state            text        NOT NULL CHECK (state IN ('running', 'hibernated', 'terminated')),
    phase            text        NOT NULL CHECK (phase IN ('Pending', 'Running', 'Hibernated', 'Failed', 'Terminated')),
    message          text        NOT NULL DEFAULT '',
    node_name        text        NOT NULL DEFAULT '',  -- placement: the node the pod runs on
    cpu_millis       bigint      NOT NULL DEFAULT 0 CHECK (cpu_millis >= 0),
    memory_bytes     bigint      NOT NULL DEFAULT 0 CHECK (memory_bytes >= 0),
    spec             jsonb       NOT NULL,         -- the Session spec as created
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    running_at       timestamptz,
    last_activity_at timestamptz,
    ended_at         timestamptz
);
CREATE INDEX sessions_user_idx ON sessions (user_id, created_at DESC);
CREATE INDEX sessions_live_idx ON sessions (user_id) WHERE phase NOT IN ('Failed', 'Terminated');
CREATE INDEX sessions_created_idx ON sessions (created_at DESC, id DESC);

-- Per-user limits; a NULL column (or no row) means the configured default.
CREATE TABLE user_quotas (
    user_id      uuid        PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    max_sessions integer     CHECK (max_sessions >= 0),
    cpu_millis   bigint      CHECK (cpu_millis >= 0),
    memory_bytes bigint      CHECK (memory_bytes >= 0),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE user_quotas;
DROP TABLE sessions;
