-- +goose Up
-- Batched dispatch: the relay starts one DispatchEvents run per batch of
-- events (workflow ID events/<batch id>). Each event row records the run that
-- holds it (workflow_id and run_id), so the Web UI finds an event's run from
-- the events API. The partial index counts the events in flight for the
-- relay's back-pressure.
ALTER TABLE events ADD COLUMN run_id text;
CREATE INDEX events_in_flight_idx ON events (seq) WHERE dispatch_state = 'dispatched';
-- The backlog metrics count the deliveries not yet finished.
CREATE INDEX deliveries_unfinished_idx ON deliveries (created_at) WHERE state IN ('pending', 'retrying');

-- +goose Down
DROP INDEX deliveries_unfinished_idx;
DROP INDEX events_in_flight_idx;
ALTER TABLE events DROP COLUMN run_id;
