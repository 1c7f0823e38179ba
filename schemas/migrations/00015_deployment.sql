-- +goose Up
-- The deployment: one row, created once, whose random id names this
-- installation wherever its database is not enough, e.g. the default prefix
-- of its Temporal workflow IDs (two installations sharing a Temporal
-- namespace must not build the same IDs). Every replica reads the same row;
-- a second database gets another id.
CREATE TABLE deployment (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    id         uuid NOT NULL DEFAULT gen_random_uuid(),
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO deployment DEFAULT VALUES;

-- +goose Down
DROP TABLE deployment;
