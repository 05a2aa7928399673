-- A day's latency values summed over profiles (those of 0014) as one row
-- per (metric, key, 256 ms bucket, day, version), its values as one
-- "ms:n,ms:n,…" list. A percentile without a profile filter
-- reads the values of the buckets that hold it: a 90-day window read ~165 k
-- rows of day_latency_total (one per value and day) and had the engine sum
-- them per value, 100–140 ms of a 250 ms answer at 100 M events; it now
-- reads one list per bucket and day (720 rows), which the reader adds up.
--
-- The job writes a day's lists with its other day tables, under the same
-- version, and records the day in rolled_day_lists (same columns as
-- rolled_day_totals) only after all of them: readers take their day
-- records from rolled_day_lists, so a day they read from the day level
-- always has its lists. Days recorded only in rolled_day_totals are read by
-- hours until the job sums them again (31 stale days a run, newest first).
-- rolled_day_totals and day_latency_total are no longer written nor read
-- for answers, but stay a while: a replica of an older build reads and
-- writes them during a rolling upgrade, and the versions rolled_day_totals
-- names are how the job deletes the replaced rows of every day table (and
-- of themselves) once the day is summed again — within the first few runs,
-- as every day summed before this migration is stale. A later migration
-- drops them.
CREATE TABLE IF NOT EXISTS {{table "day_latency_lists"}} {{onCluster}}
(
    metric     LowCardinality(String),
    key        String,
    bucket     Int64,
    hour       DateTime('UTC'),
    version    UInt64,
    vals       String
)
ENGINE = {{engine "day_latency_lists" "MergeTree"}}
PARTITION BY toYYYYMM(hour)
ORDER BY (metric, key, bucket, hour, version)
-- A granule of a bucket's days in a month, not the default 8,192 rows:
-- a list is kilobytes, and the default granules (cut at 10 MB) made a
-- read of a few buckets decompress tens of megabytes (60 ms, against 35).
SETTINGS index_granularity = 32;

{{distributed "day_latency_lists" "cityHash64(hour)"}}

CREATE TABLE IF NOT EXISTS {{table "rolled_day_lists"}} {{onCluster}}
(
    hour        DateTime('UTC'),
    version     UInt64,
    hours       Array(Tuple(DateTime('UTC'), UInt64)),
    computed_at DateTime64(3, 'UTC')
)
ENGINE = {{engine "rolled_day_lists" "MergeTree"}}
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, version);

{{distributed "rolled_day_lists" "cityHash64(hour)"}}
