-- +goose Up
-- The audit log: one row per mutating API request (POST/PUT/PATCH/DELETE, login
-- attempts included), whatever its outcome. Append-only: the triggers below make
-- UPDATE, DELETE and TRUNCATE fail, so no handler bug can rewrite history. The one
-- way to remove rows is audit_purge(before), for a retention policy; it never
-- removes rows younger than 30 days.
--
-- This protects against accidents and application bugs, not against someone who
-- holds the table owner's SQL credentials (who could drop the trigger): tamper
-- evidence against that needs a separate role or shipping the rows elsewhere.
CREATE TABLE audit_log (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- when the request arrived
    occurred_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- a snapshot of the caller: no foreign key, the row outlives the account
    actor_id       uuid,
    actor_username text,
    actor_role     text,
    client_ip      inet,
    method         text        NOT NULL,
    route          text        NOT NULL, -- the route pattern, e.g. /api/admin/users/{id}
    action         text        NOT NULL, -- "auth.login" or "METHOD /route/pattern"
    target_id      text,
    status         integer     NOT NULL,
    request_id     text        NOT NULL,
    details        jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(details) = 'object')
);

-- Every listing is newest first, keyset-paginated on (occurred_at, id).
CREATE INDEX audit_log_time_idx ON audit_log (occurred_at DESC, id DESC);
CREATE INDEX audit_log_actor_id_idx ON audit_log (actor_id, occurred_at DESC, id DESC);
CREATE INDEX audit_log_actor_name_idx ON audit_log (lower(actor_username), occurred_at DESC, id DESC);
CREATE INDEX audit_log_action_idx ON audit_log (action, occurred_at DESC, id DESC);

-- +goose StatementBegin
CREATE FUNCTION audit_log_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    purge_before timestamptz;
BEGIN
    -- A DELETE passes only inside audit_purge, which sets this transaction-local
    -- setting, and only for rows older than both it and the 30-day floor.
    IF TG_OP = 'DELETE' THEN
        purge_before := to_timestamp(nullif(current_setting('streamspace.audit_purge_before', true), '')::double precision);
        IF purge_before IS NOT NULL AND purge_before <= now() - interval '30 days'
           AND OLD.occurred_at < purge_before THEN
            RETURN OLD;
        END IF;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'rows older than 30 days are removed with SELECT audit_purge(before)';
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_guard();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_guard();

-- audit_purge deletes the rows that occurred before `before` and returns how
-- many; `before` must be at least 30 days ago. An operator (or a scheduled job)
-- applies a retention policy with e.g. SELECT audit_purge(now() - interval '400 days');
-- large backlogs can be purged in steps of increasing `before`.
-- +goose StatementBegin
CREATE FUNCTION audit_purge(before timestamptz) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    IF before IS NULL OR before > now() - interval '30 days' THEN
        RAISE EXCEPTION 'audit_purge: rows younger than 30 days are kept (asked to purge before %)', before
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM set_config('streamspace.audit_purge_before', extract(epoch FROM before)::text, true);
    DELETE FROM audit_log WHERE occurred_at < before;
    GET DIAGNOSTICS n = ROW_COUNT;
    PERFORM set_config('streamspace.audit_purge_before', '', true);
    RETURN n;
END;
$$;
-- +goose StatementEnd

COMMENT ON TABLE audit_log IS
    'Append-only audit trail of mutating API requests; purge old rows with SELECT audit_purge(before).';

-- +goose Down
DROP FUNCTION audit_purge(timestamptz);
DROP TABLE audit_log;
DROP FUNCTION audit_log_guard();
