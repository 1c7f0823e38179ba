-- +goose Up
-- The last known health of each Kubernetes node, as the worker's node watcher
-- (worker/nodewatch) observes it; schemas/node_health.go writes it. It exists
-- so that node.unhealthy is published exactly once per healthy → unhealthy
-- transition, however many worker replicas observe it and however often they
-- restart: the row is upserted and the event published in one transaction,
-- and the upsert's row lock serialises concurrent observers.
CREATE TABLE node_health (
    node_name          text        PRIMARY KEY,
    healthy            boolean     NOT NULL,   -- the node's Ready condition is True
    reason             text        NOT NULL DEFAULT '',   -- the Ready condition's reason and message
    conditions         text[]      NOT NULL DEFAULT '{}', -- what is wrong: "Ready=False", "MemoryPressure=True", ...
    -- The Ready condition's lastTransitionTime as last observed: an
    -- observation older than this (a lagging watcher) is ignored.
    ready_since        timestamptz,
    -- The node.unhealthy event of the current unhealthy spell (events.id);
    -- NULL while healthy. No foreign key: events may be purged.
    unhealthy_event_id uuid,
    changed_at         timestamptz NOT NULL DEFAULT clock_timestamp(), -- when healthy last flipped (or first seen)
    observed_at        timestamptz NOT NULL DEFAULT clock_timestamp()  -- the last observation
);

-- +goose Down
DROP TABLE node_health;
