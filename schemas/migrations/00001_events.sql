-- +goose Up
-- The event outbox: a row is written in the same transaction as the change that
-- caused it; the relay in the worker turns each pending row into one DispatchEvent
-- workflow run and records how far it got.
CREATE TABLE events (
    id                uuid        PRIMARY KEY,
    seq               bigint      GENERATED ALWAYS AS IDENTITY UNIQUE,
    type              text        NOT NULL,
    payload           jsonb       NOT NULL,
    occurred_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    dispatch_state    text        NOT NULL DEFAULT 'pending'
                      CHECK (dispatch_state IN ('pending', 'dispatched', 'completed', 'failed')),
    dispatch_attempts integer     NOT NULL DEFAULT 0,
    next_attempt_at   timestamptz NOT NULL DEFAULT '-infinity',
    last_error        text,
    workflow_id       text,
    dispatched_at     timestamptz,
    completed_at      timestamptz
);

CREATE INDEX events_pending_idx ON events (next_attempt_at, seq) WHERE dispatch_state = 'pending';
CREATE INDEX events_type_time_idx ON events (type, occurred_at DESC);

-- Wake the relay when an insert commits. NOTIFY is transactional: a rolled-back
-- insert never notifies, and notifications in one transaction are folded into one.
-- +goose StatementBegin
CREATE FUNCTION events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('streamspace_events', '');
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER events_notify AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_notify();

-- +goose Down
DROP TRIGGER events_notify ON events;
DROP FUNCTION events_notify();
DROP TABLE events;
