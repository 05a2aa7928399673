-- The day-level latency values of 0013 summed over profiles, for the
-- percentiles of every profile together (no profile filter: the API's and
-- the dashboards' default). A 90-day /timeseries read ~560 k rows of
-- day_latency for its cells' buckets, one per profile and value; these
-- tables hold one per value (2.5 times fewer in the benchmark's three
-- profiles), and the read took 80 ms instead of 50.
--
-- The job writes a day's totals with its day_latency rows, under the same
-- version, and records the day in rolled_day_totals (same columns as
-- rolled_day_histograms) only after both: readers take their day records
-- from rolled_day_totals, so a day they read from the day level always has
-- its totals. Days recorded only in rolled_day_histograms (summed before
-- this migration, or by a job of an older build during an upgrade) are
-- read by hours until the job sums them again; the first runs after the
-- upgrade do 31 days each, newest first. Replaced versions of both records
-- and of the day tables are deleted as before.
CREATE TABLE IF NOT EXISTS {{table "day_latency_total"}} {{onCluster}}
(
    metric     LowCardinality(String),
    key        String,
    bucket     Int64,
    hour       DateTime('UTC'),
    version    UInt64,
    ms         Int64,
    n          UInt64
)
ENGINE = {{engine "day_latency_total" "MergeTree"}}
PARTITION BY toYYYYMM(hour)
ORDER BY (metric, key, bucket, hour, version, ms);

{{distributed "day_latency_total" "cityHash64(hour)"}}

CREATE TABLE IF NOT EXISTS {{table "rolled_day_totals"}} {{onCluster}}
(
    hour        DateTime('UTC'),
    version     UInt64,
    hours       Array(Tuple(DateTime('UTC'), UInt64)),
    computed_at DateTime64(3, 'UTC')
)
ENGINE = {{engine "rolled_day_totals" "MergeTree"}}
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, version);

{{distributed "rolled_day_totals" "cityHash64(hour)"}}
