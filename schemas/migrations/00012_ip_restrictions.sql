-- +goose Up
-- Per-user restrictions on the IP allowlist (internal/ipset). restricted is
-- true for a per-user entry an admin made to confine that user: once a user
-- has an active restriction, every request of theirs from outside their
-- restrictions is refused, whatever the global list, their grants or their
-- own entries say. An entry is one kind: own (neither flag), grant or
-- restriction. A grant and a restriction may name the same network (a
-- contractor confined to, and let in from, their own office), so the kind is
-- part of the uniqueness key.
ALTER TABLE ip_allowlist ADD COLUMN restricted boolean NOT NULL DEFAULT false;
ALTER TABLE ip_allowlist ADD CONSTRAINT ip_allowlist_restriction_kind
    CHECK (NOT restricted OR (user_id IS NOT NULL AND NOT granted));
DROP INDEX ip_allowlist_scope_cidr_key;
CREATE UNIQUE INDEX ip_allowlist_scope_cidr_key ON ip_allowlist (user_id, cidr, restricted) NULLS NOT DISTINCT;

-- +goose Down
DELETE FROM ip_allowlist WHERE restricted;
DROP INDEX ip_allowlist_scope_cidr_key;
CREATE UNIQUE INDEX ip_allowlist_scope_cidr_key ON ip_allowlist (user_id, cidr) NULLS NOT DISTINCT;
ALTER TABLE ip_allowlist DROP CONSTRAINT ip_allowlist_restriction_kind;
ALTER TABLE ip_allowlist DROP COLUMN restricted;
