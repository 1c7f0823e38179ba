-- +goose Up
-- Rate-limit counters shared by every API server replica (schemas/ratelimit.go,
-- RateCounter.Take; server/ratelimit.go uses it). One row per (key, window
-- start); an admitted request adds one with an upsert, in the same statement
-- that reads the previous window and decides. The sliding-window estimate
-- reads only the current and the previous window, so a row is dead two window
-- lengths after its window began: expires_at records that instant, and each
-- replica deletes expired rows at most once a minute (RateCounter.DeleteExpired),
-- in bounded batches.
--
-- UNLOGGED on purpose: every admitted API request writes here, and a count is
-- worth nothing after a crash. Skipping the WAL roughly halves the cost of each
-- write and keeps this churn out of WAL archiving and streaming replication.
-- The price: after a crash (or a failover to a standby, which never receives
-- unlogged data) the table starts empty, so every client gets one fresh
-- allowance. That is acceptable for rate limits, and for nothing else.
--
-- fillfactor 50 leaves room on each page so that the count update is a HOT
-- update (no indexed column changes), which keeps the indexes from bloating.
CREATE UNLOGGED TABLE rate_limit_counters (
    key          text        NOT NULL,
    window_start timestamptz NOT NULL,
    count        bigint      NOT NULL,
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (key, window_start)
) WITH (fillfactor = 50);

CREATE INDEX rate_limit_counters_expires_idx ON rate_limit_counters (expires_at);

-- +goose Down
DROP TABLE rate_limit_counters;
