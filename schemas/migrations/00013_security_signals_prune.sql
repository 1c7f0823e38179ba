-- +goose NO TRANSACTION
-- +goose Up
-- The hourly prune (PruneSecuritySignals) deletes occurrences past
-- SignalRetention whatever their subject, oldest first: an index on the time
-- alone lets each batch read only the rows it deletes. Built concurrently,
-- so logins that count signals are not blocked while a big table is indexed.
CREATE INDEX CONCURRENTLY IF NOT EXISTS security_signals_occurred_at_idx ON security_signals (occurred_at);

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS security_signals_occurred_at_idx;
