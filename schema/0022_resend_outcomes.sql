-- What became of each resend decision's OTP, kept as the facts arrive, so
-- that /api/v1/resends reads a row per decision of its window instead of
-- the decisions' OTPs' facts (internal/store, resend_outcomes.go;
-- docs/analytics.md, "Resends").
--
-- The rollup job computes the outcome of every decision whose OTP was
-- touched (rollup_touched, 0012) since its last run, under the run's
-- version, and then records the run in resend_outcome_runs. Readers take a
-- decision's row at its greatest version (FINAL) unless its OTP was touched
-- since the last recorded run (less the slack): those they compute from
-- the facts, as the job would. A decision is touched by its own insert too
-- (the view below), so a new one is read live until the job has run.
--
-- Like the hourly rollups it outlives the facts it was computed from: it
-- is kept under --retention-rollups, by decided_at.
CREATE TABLE IF NOT EXISTS {{table "resend_outcomes"}} {{onCluster}}
(
    version         UInt64,
    decided_at      DateTime64(3, 'UTC'),
    decision_id     String,
    otp_id          UUID,
    profile_id      LowCardinality(String),
    result          LowCardinality(String),
    reason          String,
    via             LowCardinality(String),
    trigger_channel LowCardinality(String),
    trigger_status  LowCardinality(String),
    attempt         UInt16,
    dry_run         Bool,
    outcome         LowCardinality(String),
    first_at        DateTime64(3, 'UTC'),
    first_channel   LowCardinality(String)
)
ENGINE = {{engine "resend_outcomes" "ReplacingMergeTree(version)"}}
PARTITION BY toYYYYMM(decided_at)
ORDER BY (decided_at, decision_id, otp_id);

{{distributed "resend_outcomes" "cityHash64(otp_id)"}}

-- One row per finished run of the job's resend step, under its version.
CREATE TABLE IF NOT EXISTS {{table "resend_outcome_runs"}} {{onCluster}}
(
    version     UInt64,
    decisions   UInt64,
    computed_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = {{engine "resend_outcome_runs" "MergeTree"}}
ORDER BY version
TTL toDateTime(computed_at) + INTERVAL 3 DAY;

{{distributed "resend_outcome_runs" "rand()"}}

CREATE MATERIALIZED VIEW IF NOT EXISTS {{table "rollup_touched_resends_mv"}} {{onCluster}}
TO {{table "rollup_touched"}} AS
SELECT DISTINCT now64(3) AS inserted_at, otp_id FROM {{table "resends"}};
