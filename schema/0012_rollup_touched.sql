-- Which OTPs (and method attempts, and linked ones) got a fact since when,
-- so that readers can patch a dirty hour instead of computing it live.
--
-- A fact marks the 49 hours around it dirty (0008) and they stay dirty until
-- the job has run RollupSlack after it: under steady traffic the last day is
-- always dirty, and readers computed it live from a day and a half of facts
-- on either side. Now a dirty hour that has a version is read from its
-- stored attempts and journeys, except those of the OTPs touched since that
-- version (less RollupSlack), which are computed live from their own facts
-- (internal/store: Window.patched; docs/analytics.md, "Exact while data
-- arrives"). Touched journeys are widened through journey_links to every
-- OTP of the same journeys, so a journey is read whole either way.
--
-- One row per fact, stamped like rollup_dirty's marks, ordered by that
-- stamp: readers ask for the rows since a recent time. Readers patch only
-- hours whose version is less than a day old; older ones are read live, so
-- three days of rows are enough.
CREATE TABLE IF NOT EXISTS {{table "rollup_touched"}} {{onCluster}}
(
    inserted_at DateTime64(3, 'UTC'),
    otp_id      UUID
)
ENGINE = {{engine "rollup_touched" "MergeTree"}}
ORDER BY inserted_at
TTL toDateTime(inserted_at) + INTERVAL 3 DAY;

{{distributed "rollup_touched" "cityHash64(otp_id)"}}

CREATE MATERIALIZED VIEW IF NOT EXISTS {{table "rollup_touched_delivery_mv"}} {{onCluster}}
TO {{table "rollup_touched"}} AS
SELECT DISTINCT now64(3) AS inserted_at, otp_id FROM {{table "delivery_events"}};

CREATE MATERIALIZED VIEW IF NOT EXISTS {{table "rollup_touched_status_mv"}} {{onCluster}}
TO {{table "rollup_touched"}} AS
SELECT DISTINCT now64(3) AS inserted_at, otp_id FROM {{table "otp_status"}};

CREATE MATERIALIZED VIEW IF NOT EXISTS {{table "rollup_touched_silent_mv"}} {{onCluster}}
TO {{table "rollup_touched"}} AS
SELECT DISTINCT now64(3) AS inserted_at, attempt_uuid AS otp_id FROM {{table "silent_auth_outcomes"}};

CREATE MATERIALIZED VIEW IF NOT EXISTS {{table "rollup_touched_push_mv"}} {{onCluster}}
TO {{table "rollup_touched"}} AS
SELECT DISTINCT now64(3) AS inserted_at, attempt_uuid AS otp_id FROM {{table "push_events"}};

CREATE MATERIALIZED VIEW IF NOT EXISTS {{table "rollup_touched_links_mv"}} {{onCluster}}
TO {{table "rollup_touched"}} AS
SELECT DISTINCT now64(3) AS inserted_at, otp_id FROM {{table "journey_links"}};
