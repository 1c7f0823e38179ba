-- +goose Up
-- Retries run per target: one loop per webhook or integration takes its
-- due deliveries from this table (own_run false). Deliveries already waiting
-- when this version deploys keep their own delivery/<id> runs (own_run).
-- retry_base is the attempt count when the current round of the retry
-- policy began (a redelivery starts a new round).
ALTER TABLE deliveries
    ADD COLUMN own_run boolean NOT NULL DEFAULT false,
    ADD COLUMN retry_base integer NOT NULL DEFAULT 0;
UPDATE deliveries SET own_run = true WHERE state IN ('pending', 'retrying') AND NOT test;
-- circuit_open mirrors the target's retry loop's circuit breaker: while it
-- is open, batch runs leave new deliveries to the loop instead of sending
-- their first attempts to an endpoint known to be down.
ALTER TABLE webhooks ADD COLUMN circuit_open boolean NOT NULL DEFAULT false;
ALTER TABLE integrations ADD COLUMN circuit_open boolean NOT NULL DEFAULT false;
CREATE INDEX deliveries_webhook_due_idx ON deliveries (webhook_id, next_attempt_at)
    WHERE state IN ('pending', 'retrying') AND NOT own_run AND NOT test AND webhook_id IS NOT NULL;
CREATE INDEX deliveries_integration_due_idx ON deliveries (integration_id, next_attempt_at)
    WHERE state IN ('pending', 'retrying') AND NOT own_run AND NOT test AND integration_id IS NOT NULL;

-- +goose Down
ALTER TABLE integrations DROP COLUMN circuit_open;
ALTER TABLE webhooks DROP COLUMN circuit_open;
DROP INDEX deliveries_integration_due_idx;
DROP INDEX deliveries_webhook_due_idx;
ALTER TABLE deliveries DROP COLUMN retry_base, DROP COLUMN own_run;
