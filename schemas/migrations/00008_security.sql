-- +goose Up
-- Security: MFA methods, backup codes, login challenges, lockout, the IP
-- allowlist with expiring grants, and security alerts.

-- Lockout (PCI DSS 8.3.4): failed_logins counts consecutive failures
-- (password or MFA); the 10th sets locked_until (30 minutes) and resets the
-- count. mfa_enabled mirrors "has a verified MFA method", so the per-request
-- enrolment check needs no extra query.
ALTER TABLE users
    ADD COLUMN failed_logins integer     NOT NULL DEFAULT 0,
    ADD COLUMN locked_until  timestamptz,
    ADD COLUMN mfa_enabled   boolean     NOT NULL DEFAULT false;

-- One row: the admin MFA policy (off | admins | everyone).
CREATE TABLE security_settings (
    id           boolean     PRIMARY KEY DEFAULT true CHECK (id),
    mfa_required text        NOT NULL DEFAULT 'off' CHECK (mfa_required IN ('off', 'admins', 'everyone')),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    updated_by   uuid
);
INSERT INTO security_settings DEFAULT VALUES;

-- A user's second factors; at most one per type. secret_sealed is the TOTP
-- seed sealed with ENCRYPTION_KEY (internal/secretbox); phone is the SMS
-- number (E.164). last_totp_step is the last accepted RFC 6238 time step:
-- a code for that step or an earlier one is refused (no replay).
CREATE TABLE mfa_methods (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id        uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    type           text        NOT NULL CHECK (type IN ('totp', 'sms', 'email')),
    secret_sealed  bytea,
    phone          text,
    verified_at    timestamptz,
    last_totp_step bigint,
    last_used_at   timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, type),
    CHECK (type <> 'totp' OR secret_sealed IS NOT NULL),
    CHECK (type <> 'sms' OR phone IS NOT NULL)
);

-- Out-of-band codes (SMS, email): 6 digits, salted SHA-256, valid 10
-- minutes, at most 5 tries, used once. One live code per method; sends are
-- counted for the resend throttle.
CREATE TABLE mfa_codes (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    method_id   bigint      NOT NULL REFERENCES mfa_methods (id) ON DELETE CASCADE,
    code_hash   bytea       NOT NULL,
    salt        bytea       NOT NULL,
    attempts    integer     NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    consumed_at timestamptz
);
CREATE INDEX mfa_codes_method_idx ON mfa_codes (method_id, created_at DESC);

-- Backup codes: 10 per set, argon2id PHC strings (salted, slow), single use.
-- Regenerating deletes the old set.
CREATE TABLE mfa_backup_codes (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    used_at    timestamptz
);
CREATE INDEX mfa_backup_codes_user_idx ON mfa_backup_codes (user_id) WHERE used_at IS NULL;

-- A login waiting for its second factor: the password was right, the
-- mfa_token (stored as SHA-256) completes it once, within 5 minutes and 5
-- tries.
CREATE TABLE mfa_challenges (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_hash  bytea       NOT NULL UNIQUE,
    user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_ip   inet,
    attempts    integer     NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    consumed_at timestamptz
);
CREATE INDEX mfa_challenges_expiry_idx ON mfa_challenges (expires_at);

-- The IP allowlist. user_id NULL = a global entry (admins only). granted is
-- true for a per-user entry an admin created: a grant lets that user in from
-- outside the global list. expires_at makes an entry temporary; the
-- ipgrant/<id> workflow disables it at expiry (expired_at, enabled = false),
-- and the check ignores expired entries on its own.
CREATE TABLE ip_allowlist (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     uuid        REFERENCES users (id) ON DELETE CASCADE,
    cidr        cidr        NOT NULL,
    description text        NOT NULL DEFAULT '',
    enabled     boolean     NOT NULL DEFAULT true,
    granted     boolean     NOT NULL DEFAULT false,
    expires_at  timestamptz,
    expired_at  timestamptz,
    created_by  uuid,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (user_id IS NOT NULL OR NOT granted)
);
CREATE UNIQUE INDEX ip_allowlist_scope_cidr_key ON ip_allowlist (user_id, cidr) NULLS NOT DISTINCT;
CREATE INDEX ip_allowlist_user_idx ON ip_allowlist (user_id);

-- Every replica keeps the allowlist in memory; a change anywhere tells them
-- to reload.
-- +goose StatementBegin
CREATE FUNCTION ip_allowlist_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('streamspace_ip_allowlist', '');
    RETURN NULL;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER ip_allowlist_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ip_allowlist
    FOR EACH STATEMENT EXECUTE FUNCTION ip_allowlist_notify();

-- Sliding-window counters for alert rules (failed logins per account and per
-- address, refused admin requests per user): one row per occurrence.
CREATE TABLE security_signals (
    kind        text        NOT NULL,
    subject     text        NOT NULL,
    occurred_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX security_signals_idx ON security_signals (kind, subject, occurred_at);

-- Addresses and clients (User-Agent) a user has logged in from; a login from
-- one never seen before raises an unusual-access alert.
CREATE TABLE user_known_clients (
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       text        NOT NULL CHECK (kind IN ('ip', 'client')),
    value      text        NOT NULL,
    first_seen timestamptz NOT NULL DEFAULT now(),
    last_seen  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, kind, value)
);

-- Security alerts. An alert with the same dedup_key as an unresolved one is
-- folded into it (count, last_seen) instead of raising a new one, so a
-- burst raises one alert and one security.alert event.
CREATE TABLE security_alerts (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            text        NOT NULL CHECK (kind IN ('failed_login', 'unusual_access', 'mfa_change',
                                                       'ip_violation', 'privilege_escalation')),
    severity        text        NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    status          text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'acknowledged', 'resolved')),
    user_id         uuid        REFERENCES users (id) ON DELETE SET NULL,
    username        text        NOT NULL DEFAULT '',
    ip_address      inet,
    message         text        NOT NULL,
    details         jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(details) = 'object'),
    dedup_key       text        NOT NULL,
    count           integer     NOT NULL DEFAULT 1,
    first_seen      timestamptz NOT NULL DEFAULT now(),
    last_seen       timestamptz NOT NULL DEFAULT now(),
    acknowledged_at timestamptz,
    acknowledged_by uuid,
    resolved_at     timestamptz,
    resolved_by     uuid,
    resolution_note text        NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX security_alerts_open_key ON security_alerts (dedup_key) WHERE status <> 'resolved';
CREATE INDEX security_alerts_time_idx ON security_alerts (first_seen DESC, id DESC);
CREATE INDEX security_alerts_user_idx ON security_alerts (user_id, first_seen DESC, id DESC);

-- The webhook migration defaulted max_attempts to 9 while the code writes 8.
ALTER TABLE webhooks ALTER COLUMN max_attempts SET DEFAULT 8;

-- +goose Down
ALTER TABLE webhooks ALTER COLUMN max_attempts SET DEFAULT 9;
DROP TABLE security_alerts;
DROP TABLE user_known_clients;
DROP TABLE security_signals;
DROP TRIGGER ip_allowlist_changed ON ip_allowlist;
DROP FUNCTION ip_allowlist_notify();
DROP TABLE ip_allowlist;
DROP TABLE mfa_challenges;
DROP TABLE mfa_backup_codes;
DROP TABLE mfa_codes;
DROP TABLE mfa_methods;
DROP TABLE security_settings;
ALTER TABLE users DROP COLUMN mfa_enabled, DROP COLUMN locked_until, DROP COLUMN failed_logins;
