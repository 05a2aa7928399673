-- Hours the rollup job found still exact at their version, so did not compute
-- again (internal/store/rollup_job.go): marked dirty by a fact, but no OTP
-- touched since the version has rows in them. checked_at is the job's
-- version clock (ms) when it checked: readers and the job take an hour as
-- exact from the newest of its version and the checks of that version.
-- Under steady traffic an hour is checked on every run for as long as new
-- facts keep marking it dirty (a day): only the newest check of a version
-- counts, and merges keep only it (ReplacingMergeTree), so the table holds
-- about one row per hour. Checks of a replaced version are deleted with its rows.
CREATE TABLE IF NOT EXISTS {{table "rolled_hour_checks"}} {{onCluster}}
(
    hour       DateTime('UTC'),
    version    UInt64,
    checked_at UInt64
)
ENGINE = {{engine "rolled_hour_checks" "ReplacingMergeTree(checked_at)"}}
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, version);

{{distributed "rolled_hour_checks" "cityHash64(hour)"}}
