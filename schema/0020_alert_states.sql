-- Alerts fire and resolve (README, "Reports and alerts"): `state` is firing
-- or resolved, `since` when the firing began (a resolution keeps the since
-- of the firing it ends). An alert stored before this migration fired, and
-- is taken to have begun when it was evaluated. On a cluster the
-- Distributed table gets the columns too, or inserts through it could not
-- name them.
ALTER TABLE {{table "alerts"}} {{onCluster}} ADD COLUMN IF NOT EXISTS state LowCardinality(String) DEFAULT 'firing' AFTER summary;

ALTER TABLE {{table "alerts"}} {{onCluster}} ADD COLUMN IF NOT EXISTS since DateTime64(3, 'UTC') DEFAULT evaluated_at AFTER state;

{{alterDistributed "alerts" "ADD COLUMN IF NOT EXISTS state LowCardinality(String) DEFAULT 'firing' AFTER summary"}}

{{alterDistributed "alerts" "ADD COLUMN IF NOT EXISTS since DateTime64(3, 'UTC') DEFAULT evaluated_at AFTER state"}}
