-- Backups of the database (POST /api/v1/backups; README, "Backups and
-- restores"). A backup's row is written before the backup is taken, so the
-- backup holds its own: after a restore it says from where the sink inserts
-- the stream again. stream_seq: every event up to it was inserted before
-- the backup began (0 when unknown: then from started_at less a margin).
-- Once taken, a second row of the same name has its status and size.
CREATE TABLE IF NOT EXISTS {{table "backups"}} {{onCluster}}
(
    name        String,
    started_at  DateTime64(3, 'UTC'),
    stream_seq  UInt64,
    status      LowCardinality(String),
    bytes       UInt64,
    files       UInt64,
    error       String,
    updated_at  DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = {{engine "backups" "ReplacingMergeTree(updated_at)"}}
ORDER BY name;

{{distributed "backups" "rand()"}}

-- Restores, written by `otpscope restore` after it restored a backup: the
-- sink inserts the stream again from the backup's position, once (a row
-- with replayed = 1 replaces the restore's).
CREATE TABLE IF NOT EXISTS {{table "restores"}} {{onCluster}}
(
    name         String,
    restored_at  DateTime64(3, 'UTC'),
    started_at   DateTime64(3, 'UTC'),
    stream_seq   UInt64,
    replayed     UInt8,
    updated_at   DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = {{engine "restores" "ReplacingMergeTree(updated_at)"}}
ORDER BY (name, restored_at);

{{distributed "restores" "rand()"}}
