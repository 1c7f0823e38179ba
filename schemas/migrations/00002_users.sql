-- +goose Up
CREATE TABLE users (
    id            uuid        PRIMARY KEY,
    username      text        NOT NULL CHECK (username ~ '^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$'),
    email         text,
    display_name  text        NOT NULL DEFAULT '',
    role          text        NOT NULL CHECK (role IN ('user', 'admin')),
    active        boolean     NOT NULL DEFAULT true,
    -- argon2id PHC string; NULL for users who only sign in through OIDC
    password_hash text,
    oidc_issuer   text,
    oidc_subject  text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    last_login_at timestamptz,
    UNIQUE (oidc_issuer, oidc_subject)
);
CREATE UNIQUE INDEX users_username_key ON users (lower(username));
CREATE UNIQUE INDEX users_email_key ON users (lower(email)) WHERE email IS NOT NULL;

-- Refresh tokens rotate: each use marks the row used and issues a new one in
-- the same family. Presenting a used token again means it was stolen, and the
-- whole family is revoked.
CREATE TABLE refresh_tokens (
    id         uuid        PRIMARY KEY,
    family_id  uuid        NOT NULL,
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash bytea       NOT NULL UNIQUE, -- SHA-256 of the opaque token
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    revoked_at timestamptz
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id);

-- +goose Down
DROP TABLE refresh_tokens;
DROP TABLE users;
