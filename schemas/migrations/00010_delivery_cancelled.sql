-- +goose Up
-- A delivery waiting to retry when its webhook or integration is disabled
-- is cancelled at once (and its retry run ended), not failed at its next
-- attempt.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_state_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_state_check
    CHECK (state IN ('pending', 'succeeded', 'retrying', 'failed', 'cancelled'));
CREATE INDEX deliveries_webhook_unfinished_idx ON deliveries (webhook_id) WHERE state IN ('pending', 'retrying') AND NOT test;
CREATE INDEX deliveries_integration_unfinished_idx ON deliveries (integration_id) WHERE state IN ('pending', 'retrying') AND NOT test;

-- +goose Down
DROP INDEX deliveries_integration_unfinished_idx;
DROP INDEX deliveries_webhook_unfinished_idx;
UPDATE deliveries SET state = 'failed' WHERE state = 'cancelled';
ALTER TABLE deliveries DROP CONSTRAINT deliveries_state_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_state_check
    CHECK (state IN ('pending', 'succeeded', 'retrying', 'failed'));
